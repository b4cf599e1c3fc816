//! The egress chokepoint, end to end: real `http-get` component, real loopback servers.

use flowstudio_host::audit::{AuditEvent, EgressDecision};
use flowstudio_host::passport::{Claims, JwtVerifier};
use flowstudio_tests::*;
use serde_json::json;

fn ok_server() -> impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static {
    |_, _| Reply::json(200, json!({"ok": true}))
}

fn bearer(seen: &Seen) -> Option<String> {
    seen.header("authorization").and_then(|v| v.strip_prefix("Bearer ")).map(str::to_string)
}

#[tokio::test]
async fn managed_identity_grant_gets_a_verifiable_jwt() {
    let server = RecordingServer::start(ok_server()).await;
    let rt = runtime();
    let grant = format!("{}=managed-identity", server.origin());
    let (result, audit, id) = run_node(&rt, "http-get", json!({"url": server.url("/employees?month=2026-12")}), policy(&[&grant])).await;
    let out = result.expect("http-get runs").output;
    assert_eq!(out["status"], 200);
    assert_eq!(out["json"], json!({"ok": true}));
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/employees?month=2026-12");
    let token = bearer(&seen[0]).expect("bearer token attached");
    let verifier = JwtVerifier::new(id.issuer.issuer(), AUDIENCE, &id.issuer.jwks()).unwrap();
    let claims: Claims = verifier.verify(&token).expect("token verifies against the passport key");
    assert_eq!(claims.sub, "dev-client");
    assert_eq!(claims.idtyp.as_deref(), Some("app"));
    // The audit names the identity and destination, never the token or the query string.
    let events = audit.events();
    assert_eq!(events.len(), 1);
    let AuditEvent::Egress(e) = &events[0] else { panic!("not an egress event") };
    assert_eq!(e.actor.managed_identity_id.as_deref(), Some("mi-dev"));
    assert_eq!(e.actor.client_id.as_deref(), Some("dev-client"));
    assert!(e.actor.service_account);
    assert_eq!(e.destination, server.origin());
    assert_eq!(e.decision, EgressDecision::Allowed);
    assert!(e.token_attached);
    assert_eq!(e.status, Some(200));
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains(&token) && !text.contains("month=2026-12"), "{text}");
}

#[tokio::test]
async fn none_grant_gets_no_authorization() {
    let server = RecordingServer::start(ok_server()).await;
    let rt = runtime();
    let grant = format!("{}=none", server.origin());
    let (result, audit, _) = run_node(&rt, "http-get", json!({"url": server.url("/public")}), policy(&[&grant])).await;
    assert_eq!(result.expect("runs").output["status"], 200);
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("authorization"), None);
    let AuditEvent::Egress(e) = &audit.events()[0] else { panic!("not an egress event") };
    assert!(!e.token_attached);
}

#[tokio::test]
async fn ungranted_host_is_denied_and_receives_nothing() {
    let granted = RecordingServer::start(ok_server()).await;
    let other = RecordingServer::start(ok_server()).await;
    let rt = runtime();
    let grant = format!("{}=managed-identity", granted.origin());
    let (result, audit, _) = run_node(&rt, "http-get", json!({"url": other.url("/")}), policy(&[&grant])).await;
    let err = result.expect_err("denied").to_string();
    assert!(err.contains("denied by host policy"), "{err}");
    assert!(other.seen().is_empty(), "the ungranted server must receive nothing");
    let AuditEvent::Egress(e) = &audit.events()[0] else { panic!("not an egress event") };
    assert!(matches!(&e.decision, EgressDecision::Denied(r) if r.contains("no grant")), "{e:?}");
}

#[tokio::test]
async fn node_cannot_set_authorization_on_a_managed_identity_grant() {
    let server = RecordingServer::start(ok_server()).await;
    let rt = runtime();
    let grant = format!("{}=managed-identity", server.origin());
    let input = json!({"attack": "set-authorization", "url": server.url("/")});
    let (result, _, _) = run_node(&rt, "misbehave", input, policy(&[&grant])).await;
    assert!(result.is_err(), "must be refused: {result:?}");
    assert!(server.seen().is_empty(), "nothing reaches the server");
    // ... but may on a `none` grant.
    let server = RecordingServer::start(ok_server()).await;
    let grant = format!("{}=none", server.origin());
    let input = json!({"attack": "set-authorization", "url": server.url("/")});
    let (result, _, _) = run_node(&rt, "misbehave", input, policy(&[&grant])).await;
    assert_eq!(result.expect("allowed").output["status"], 200);
    assert_eq!(server.seen()[0].header("authorization"), Some("Bearer stolen"));
}

#[tokio::test]
async fn redirect_to_another_host_is_not_followed_with_the_token() {
    let target = RecordingServer::start(ok_server()).await;
    let location = target.url("/steal");
    let redirector = RecordingServer::start(move |_, _| Reply {
        status: 302,
        headers: vec![("location".into(), location.clone())],
        body: String::new(),
    })
    .await;
    let rt = runtime();
    let grants = [format!("{}=managed-identity", redirector.origin()), format!("{}=none", target.origin())];
    let specs: Vec<&str> = grants.iter().map(String::as_str).collect();
    let (result, _, _) = run_node(&rt, "http-get", json!({"url": redirector.url("/start")}), policy(&specs)).await;
    assert_eq!(result.expect("runs").output["status"], 302, "the node sees the redirect itself");
    assert!(bearer(&redirector.seen()[0]).is_some());
    assert!(target.seen().is_empty(), "the host must not follow redirects");
}

#[tokio::test]
async fn granted_name_resolving_to_loopback_is_refused() {
    let server = RecordingServer::start(ok_server()).await;
    let rt = runtime();
    let grant = format!("http://localhost:{}=managed-identity", server.port);
    let url = format!("http://localhost:{}/", server.port);
    let (result, audit, _) = run_node(&rt, "http-get", json!({"url": url}), policy(&[&grant])).await;
    assert!(result.expect_err("refused").to_string().contains("denied"));
    assert!(server.seen().is_empty());
    let AuditEvent::Egress(e) = &audit.events()[0] else { panic!("not an egress event") };
    assert!(matches!(&e.decision, EgressDecision::Denied(r) if r.contains("loopback")), "{e:?}");
}

#[tokio::test]
async fn metadata_address_under_a_wildcard_grant_is_refused() {
    let rt = runtime();
    let (result, audit, _) =
        run_node(&rt, "http-get", json!({"url": "http://169.254.169.254/latest/meta-data/"}), policy(&["*://*:*=none"])).await;
    assert!(result.expect_err("refused").to_string().contains("denied"));
    let AuditEvent::Egress(e) = &audit.events()[0] else { panic!("not an egress event") };
    assert!(matches!(&e.decision, EgressDecision::Denied(r) if r.contains("169.254.169.254")), "{e:?}");
}

#[tokio::test]
async fn managed_identity_token_never_goes_over_plain_http_to_a_remote_host_by_default() {
    let server = RecordingServer::start(ok_server()).await;
    let rt = runtime();
    let grant = format!("{}=managed-identity", server.origin());
    let mut strict = policy(&[&grant]);
    strict.allow_loopback_plain_http_tokens = false;
    let (result, _, _) = run_node(&rt, "http-get", json!({"url": server.url("/")}), strict).await;
    assert!(result.is_err());
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn a_401_refreshes_once_and_replays_once() {
    // Always 401: exactly two requests (original + one replay), never a loop.
    let server = RecordingServer::start(|_, _| Reply::json(401, json!({"error": "invalid_token"}))).await;
    let rt = runtime();
    let grant = format!("{}=managed-identity", server.origin());
    let (result, _, id) = run_node(&rt, "http-get", json!({"url": server.url("/")}), policy(&[&grant])).await;
    assert_eq!(result.expect("runs").output["status"], 401, "the second 401 reaches the node");
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_ne!(bearer(&seen[0]), bearer(&seen[1]), "the replay carries a fresh token");
    assert_eq!(id.tokens.minted(), 2);

    // 401 then 200: the node sees only the success.
    let server = RecordingServer::start(|_, i| if i == 0 { Reply::json(401, json!({})) } else { Reply::json(200, json!({"n": i})) }).await;
    let grant = format!("{}=managed-identity", server.origin());
    let (result, _, _) = run_node(&rt, "http-get", json!({"url": server.url("/")}), policy(&[&grant])).await;
    assert_eq!(result.expect("runs").output["json"], json!({"n": 1}));

    // 403 is handed to the node as is, no replay.
    let server = RecordingServer::start(|_, _| Reply::json(403, json!({}))).await;
    let grant = format!("{}=managed-identity", server.origin());
    let (result, _, _) = run_node(&rt, "http-get", json!({"url": server.url("/")}), policy(&[&grant])).await;
    assert_eq!(result.expect("runs").output["status"], 403);
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn request_budget_is_enforced_per_run() {
    let server = RecordingServer::start(ok_server()).await;
    let rt = runtime();
    let grant = format!("{}=none", server.origin());
    let mut limited = policy(&[&grant]);
    limited.max_requests = 0;
    let (result, audit, _) = run_node(&rt, "http-get", json!({"url": server.url("/")}), limited).await;
    assert!(result.expect_err("over budget").to_string().contains("budget"));
    assert!(server.seen().is_empty());
    let AuditEvent::Egress(e) = &audit.events()[0] else { panic!("not an egress event") };
    assert!(matches!(&e.decision, EgressDecision::Denied(r) if r.contains("request budget")));
}

#[tokio::test]
async fn response_byte_budget_is_enforced() {
    let server = RecordingServer::start(|_, _| Reply::json(200, json!({"big": "z".repeat(10_000)}))).await;
    let rt = runtime();
    let grant = format!("{}=none", server.origin());
    let mut limited = policy(&[&grant]);
    limited.max_response_bytes = 1_000;
    let (result, _, _) = run_node(&rt, "http-get", json!({"url": server.url("/")}), limited).await;
    assert!(result.expect_err("over budget").to_string().contains("byte budget"));
}

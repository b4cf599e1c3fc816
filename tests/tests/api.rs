//! The admin API at router level, over a real host (SQLite in a temp data dir,
//! the embedded passport, real Wasm components, the running scheduler).

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use flowstudio_host::api::{route_table, Access};
use flowstudio_host::passport::{Claims, Issuer};
use flowstudio_tests::api::{seed_schedule, ApiHarness};
use flowstudio_tests::{RecordingServer, Reply};
use serde_json::{json, Value};

const SCHEDULES: &str = "/flowstudio/api/schedules";

fn fields(body: &Value) -> Vec<(String, String)> {
    body["error"]["fields"]
        .as_array()
        .map(|items| items.iter().map(|f| (f["field"].as_str().unwrap_or("").into(), f["message"].as_str().unwrap_or("").into())).collect())
        .unwrap_or_default()
}

/// The seed's identity and workflow, so the seed's schedule JSON can be posted.
async fn seed_world(h: &ApiHarness) -> String {
    h.register_identity("mi-guid-1234", &["workflow-runner"]).await;
    let digest = h.upload("payroll-calculation").await;
    h.workflow("wf-monthly-payroll", json!({ "id": "calculate", "component": digest })).await;
    digest
}

#[tokio::test]
async fn the_seed_schedule_json_is_accepted_verbatim_and_shows_its_next_five_fire_times() {
    let h = ApiHarness::start().await;
    seed_world(&h).await;
    let (status, created) = h.call(Method::POST, SCHEDULES, Some(seed_schedule())).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    // Every field comes back as it was written.
    for (key, value) in seed_schedule().as_object().expect("object") {
        assert_eq!(&created[key], value, "field {key}");
    }
    let next: Vec<&str> = created["nextFireTimes"].as_array().expect("next").iter().filter_map(Value::as_str).collect();
    assert_eq!(next.len(), 5);
    let cron = flowstudio_host::cron::Schedule::parse("0 6 25 * *", "UTC").expect("cron");
    let expected: Vec<String> = cron.upcoming(chrono::Utc::now(), 5).iter().map(|t| t.to_rfc3339()).collect();
    assert_eq!(next, expected);
    assert!(next.iter().all(|t| t.contains("-25T06:00:00")));

    let (status, one) = h.call(Method::GET, &format!("{SCHEDULES}/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["nextFireTimes"], created["nextFireTimes"]);
    let (_, list) = h.call(Method::GET, SCHEDULES, None).await;
    assert_eq!(list["schedules"].as_array().map(Vec::len), Some(1));

    // The create is audited with the admin caller as the actor.
    let (_, audit) = h.call(Method::GET, "/flowstudio/api/audit?action=schedule.created", None).await;
    let events = audit["events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "{audit}");
    assert_eq!(events[0]["actorId"], "flowstudio-admin");
    assert_eq!(events[0]["target"], format!("schedule {id}"));
}

#[tokio::test]
async fn each_invalid_schedule_field_gets_its_own_message() {
    let h = ApiHarness::start().await;
    let mut bad = seed_schedule();
    bad["cronExpression"] = json!("0 0 6 25 * *");
    bad["timezone"] = json!("Mars/Olympus");
    bad["retryPolicy"]["maxAttempts"] = json!(0);
    bad["inputData"]["payrollMonth"] = json!("{{schedule.triggerMonht}}");
    bad["secretReference"]["vaultUri"] = json!("not a url");
    bad["colour"] = json!("blue");
    let (status, body) = h.call(Method::POST, SCHEDULES, Some(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "invalid_request");
    let problems = fields(&body);
    let named: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
    for field in ["cronExpression", "timezone", "retryPolicy.maxAttempts", "inputData.payrollMonth", "secretReference.vaultUri", "colour"] {
        assert!(named.contains(&field), "no message for `{field}` in {named:?}");
    }
    // One message per field, each saying something about that field.
    let mut unique = named.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), named.len(), "{named:?}");
    assert!(problems.iter().all(|(_, m)| !m.is_empty()));
    assert_eq!(body["error"]["field"], json!(problems[0].0));

    // What the JSON refers to must exist: the workflow and the identity, each named.
    let (status, body) = h.call(Method::POST, SCHEDULES, Some(seed_schedule())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let named: Vec<String> = fields(&body).into_iter().map(|(f, _)| f).collect();
    assert_eq!(named, ["workflowId", "managedIdentityId"], "{body}");
    assert!(body["error"]["message"].as_str().unwrap_or("").contains("wf-monthly-payroll"));
}

#[tokio::test]
async fn a_missing_or_refused_token_is_401_and_a_token_without_the_admin_role_is_403() {
    let h = ApiHarness::start().await;
    let path = "/flowstudio/api/executions";
    let (status, body) = h.call_as(None, Method::GET, path, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");
    let request = Request::get(path).body(Body::empty()).expect("request");
    let (_, headers, _) = h.send_raw(request).await;
    assert!(headers.get("www-authenticate").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("Bearer")));

    let (status, _) = h.call_as(Some("not-a-jwt"), Method::GET, path, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let request = Request::get(path).header("authorization", format!("Basic {}", h.admin)).body(Body::empty()).expect("request");
    assert_eq!(h.send(request).await.0, StatusCode::UNAUTHORIZED, "only Bearer is accepted");

    // Signed by another key, expired, or for another audience: refused.
    let now = chrono::Utc::now().timestamp() as u64;
    let claims = |exp: u64, aud: &str| Claims {
        iss: h.app.issuer.issuer().into(),
        aud: aud.into(),
        sub: "flowstudio-admin".into(),
        exp,
        iat: now - 7200,
        nbf: now - 7200,
        tid: String::new(),
        client_id: "flowstudio-admin".into(),
        name: String::new(),
        roles: vec![h.app.config.server.admin_role.clone()],
        scope: String::new(),
        idtyp: None,
        mi: None,
        jti: "j".into(),
    };
    let stranger = Issuer::generate(h.app.issuer.issuer()).expect("issuer");
    let forged = stranger.sign(&claims(now + 600, "flowstudio")).expect("sign");
    assert_eq!(h.call_as(Some(forged.expose()), Method::GET, path, None).await.0, StatusCode::UNAUTHORIZED);
    let expired = h.sign(claims(now - 3600, "flowstudio"));
    let (status, body) = h.call_as(Some(&expired), Method::GET, path, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!body.to_string().contains(&expired), "the token is not echoed");
    let elsewhere = h.sign(claims(now + 600, "some-other-api"));
    assert_eq!(h.call_as(Some(&elsewhere), Method::GET, path, None).await.0, StatusCode::UNAUTHORIZED);

    let runner = h.token_with_roles("svc-runner", &["workflow-runner"]);
    let (status, body) = h.call_as(Some(&runner), Method::GET, path, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "forbidden");
    assert!(body["error"]["message"].as_str().unwrap_or("").contains(&h.app.config.server.admin_role));

    let (status, _) = h.call(Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK);
    // The OpenAPI document and the health routes need no token.
    for public in ["/flowstudio/api/openapi.json", "/healthz", "/readyz", "/metrics"] {
        assert_eq!(h.call_as(None, Method::GET, public, None).await.0, StatusCode::OK, "{public}");
    }
}

#[tokio::test]
async fn the_openapi_document_parses_and_every_route_in_it_is_served() {
    let h = ApiHarness::start().await;
    let request = Request::get("/flowstudio/api/openapi.json").body(Body::empty()).expect("request");
    let (status, headers, body) = h.send_raw(request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers.get("content-type").and_then(|v| v.to_str().ok()), Some("application/json"));
    let doc: Value = serde_json::from_slice(&body).expect("the document is JSON");
    let paths = doc["paths"].as_object().expect("paths");
    let mut documented = 0;
    for (path, item) in paths {
        for method in item.as_object().expect("item").keys().filter(|k| *k != "parameters") {
            documented += 1;
            let concrete = path.replace("{id}", "x-1").replace("{digest}", "sha256:0000");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let (status, body) = h.call(method.clone(), &concrete, None).await;
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            // A 404 here must be the resource's ("does not exist"), not a missing route.
            if status == StatusCode::NOT_FOUND {
                assert!(body["error"]["message"].as_str().unwrap_or("").contains("does not exist"), "{method} {path}: {body}");
            }
        }
    }
    assert_eq!(documented, route_table().len());
    // A route that does not exist answers with the JSON error shape.
    let (status, body) = h.call(Method::GET, "/flowstudio/api/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    let (status, body) = h.call(Method::PATCH, SCHEDULES, None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["error"]["code"], "method_not_allowed");
    assert!(route_table().iter().filter(|r| r.access == Access::Admin).count() > 25);
}

#[tokio::test]
async fn bodies_are_size_limited_typed_and_parsed_with_json_errors() {
    let h = ApiHarness::start().await;
    let big = json!({ "name": "x".repeat(2 << 20) });
    let (status, body) = h.call(Method::POST, SCHEDULES, Some(big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["code"], "payload_too_large");

    let request = Request::post(SCHEDULES)
        .header("authorization", format!("Bearer {}", h.admin))
        .header("content-type", "text/plain")
        .body(Body::from("{}"))
        .expect("request");
    let (status, body) = h.send(request).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["error"]["code"], "unsupported_media_type");

    let request = Request::post(SCHEDULES)
        .header("authorization", format!("Bearer {}", h.admin))
        .header("content-type", "application/json")
        .body(Body::from("{\"name\": "))
        .expect("request");
    let (status, body) = h.send(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_json");
    assert!(body["error"]["message"].as_str().unwrap_or("").contains("line 1"), "{body}");

    let (status, body) = h.call(Method::GET, "/flowstudio/api/executions?limit=0&sattus=failed", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let named: Vec<String> = fields(&body).into_iter().map(|(f, _)| f).collect();
    assert_eq!(named, ["limit", "sattus"]);
}

#[tokio::test]
async fn identities_never_return_their_secret() {
    let h = ApiHarness::start().await;
    let secret = "a+b/c:d%e=never-shown";
    let body = json!({ "id": "mi-1", "name": "Payroll", "clientId": "c-1", "tenantId": "t-1", "roles": ["workflow-runner"], "clientSecret": secret });
    let (status, created) = h.call(Method::POST, "/flowstudio/api/identities", Some(body.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["hasClientSecret"], true);
    let (status, again) = h.call(Method::POST, "/flowstudio/api/identities", Some(body)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    let (_, list) = h.call(Method::GET, "/flowstudio/api/identities", None).await;
    let (_, one) = h.call(Method::GET, "/flowstudio/api/identities/mi-1", None).await;
    let (status, disabled) = h.call(Method::POST, "/flowstudio/api/identities/mi-1/disable", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(disabled["enabled"], false);
    let (status, bad) = h.call(Method::PUT, "/flowstudio/api/identities/mi-1/secret", Some(json!({ "clientSecret": "short" }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(bad["error"]["field"], "clientSecret");
    for answer in [&created, &again, &list, &one, &disabled, &bad] {
        let text = answer.to_string();
        assert!(!text.contains(secret) && !text.contains("short\""), "secret in {text}");
        assert!(!text.to_lowercase().contains("hash"), "hash in {text}");
    }
    let (status, body) = h.call(Method::POST, "/flowstudio/api/identities", Some(json!({ "id": "x", "name": 7, "tenantId": "t", "rolez": [] }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let named: Vec<String> = fields(&body).into_iter().map(|(f, _)| f).collect();
    for field in ["rolez", "name", "clientId"] {
        assert!(named.iter().any(|n| n == field), "{field} in {named:?}");
    }
}

#[tokio::test]
async fn components_are_inspected_on_upload_and_workflows_pin_uploaded_ones() {
    let h = ApiHarness::start().await;
    let wasm = std::fs::read(flowstudio_tests::node_path("payroll-calculation")).expect("node");
    let digest = h.upload("payroll-calculation").await;
    assert_eq!(digest, flowstudio_host::runtime::digest(&wasm));
    let (status, node) = h.call(Method::GET, &format!("/flowstudio/api/nodes/{digest}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(node["inspection"]["compatible"], true);
    assert_eq!(node["name"], "payroll-calculation");
    assert_eq!(node["size"], wasm.len());
    let (_, list) = h.call(Method::GET, "/flowstudio/api/nodes", None).await;
    assert_eq!(list["nodes"].as_array().map(Vec::len), Some(1));

    // A guest that imports the host's files is refused, naming why.
    let escape = std::fs::read(flowstudio_tests::node_path("fs-escape")).expect("guest");
    let request = Request::post("/flowstudio/api/nodes")
        .header("authorization", format!("Bearer {}", h.admin))
        .header("content-type", "application/wasm")
        .body(Body::from(escape))
        .expect("request");
    let (status, body) = h.send(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "incompatible_component");
    assert!(body["error"]["message"].as_str().unwrap_or("").contains("wasi:filesystem"), "{body}");

    let missing = format!("sha256:{}", "ab".repeat(32));
    let (status, body) = h
        .call(Method::POST, "/flowstudio/api/workflows", Some(json!({ "id": "wf-1", "nodes": [{ "id": "a", "component": digest }, { "id": "b", "component": missing, "dependsOn": ["a"] }] })))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["field"], "nodes[1].component", "{body}");

    h.workflow("wf-monthly-payroll", json!({ "id": "calculate", "component": digest })).await;
    h.register_identity("mi-guid-1234", &["workflow-runner"]).await;
    let (status, created) = h.call(Method::POST, SCHEDULES, Some(seed_schedule())).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = h.call(Method::DELETE, "/flowstudio/api/workflows/wf-monthly-payroll", None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"]["message"].as_str().unwrap_or("").contains(created["id"].as_str().unwrap_or("?")));
}

#[tokio::test]
async fn trigger_runs_the_workflow_as_the_managed_identity_and_the_execution_shows_nodes_and_attempts() {
    let h = ApiHarness::start().await;
    let payroll = RecordingServer::start(|seen, _| match seen.header("authorization") {
        Some(a) if a.starts_with("Bearer ") => Reply::json(200, json!([{ "id": "e-1", "monthlySalaryCents": 100 }, { "id": "e-2", "monthlySalaryCents": 250 }])),
        _ => Reply::json(401, json!({ "error": "invalid_token" })),
    })
    .await;
    let reference = h.register_identity("mi-guid-1234", &["workflow-runner"]).await;
    let digest = h.upload("payroll-calculation").await;
    h.workflow(
        "wf-monthly-payroll",
        json!({ "id": "calculate", "component": digest, "config": { "employeesUrl": payroll.url("/employees") }, "grants": [format!("{}=managed-identity", payroll.origin())] }),
    )
    .await;
    let mut schedule = seed_schedule();
    schedule["secretReference"] = reference;
    let (_, created) = h.call(Method::POST, SCHEDULES, Some(schedule)).await;
    let id = created["id"].as_str().expect("id").to_string();

    // Paused schedules can still be triggered by hand.
    let (status, paused) = h.call(Method::POST, &format!("{SCHEDULES}/{id}/pause"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(paused["paused"], true);
    let (status, started) = h.call(Method::POST, &format!("{SCHEDULES}/{id}/trigger"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    assert_eq!(started["execution"]["triggeredBy"], "manual:flowstudio-admin");
    let execution = h.finished_execution(started["execution"]["id"].as_str().expect("id")).await;
    assert_eq!(execution["status"], "succeeded", "{execution}");
    assert_eq!(execution["output"]["calculate"]["totalCents"], 350);
    assert_eq!(execution["output"]["calculate"]["calculatedBy"], "client-mi-guid-1234");
    assert_eq!(execution["attempts"].as_array().map(Vec::len), Some(1));
    assert_eq!(execution["nodes"][0]["nodeId"], "calculate");
    assert_eq!(execution["nodes"][0]["status"], "succeeded");
    assert!(payroll.seen().iter().all(|s| s.header("authorization").is_some_and(|a| a.starts_with("Bearer "))));

    let exec_id = execution["id"].as_str().expect("id");
    let (_, listed) = h.call(Method::GET, &format!("/flowstudio/api/executions?scheduleId={id}&status=succeeded"), None).await;
    assert_eq!(listed["executions"][0]["id"], exec_id);
    let (_, audit) = h.call(Method::GET, &format!("/flowstudio/api/audit?executionId={exec_id}"), None).await;
    let actions: Vec<&str> = audit["events"].as_array().expect("events").iter().filter_map(|e| e["action"].as_str()).collect();
    for action in ["schedule.fired", "execution.started", "egress.call", "execution.succeeded"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    assert!(audit["events"].as_array().expect("events").iter().all(|e| e["actorId"] == "mi-guid-1234"), "{audit}");
    let (_, verify) = h.call(Method::GET, "/flowstudio/api/audit/verify", None).await;
    assert_eq!(verify["intact"], true);

    // Metrics count what ran.
    let request = Request::get("/metrics").body(Body::empty()).expect("request");
    let (_, _, metrics) = h.send_raw(request).await;
    let metrics = String::from_utf8(metrics).expect("text");
    assert!(metrics.contains("flowstudio_executions_total{outcome=\"succeeded\"} 1\n"), "{metrics}");
    assert!(metrics.contains("flowstudio_egress_calls_total{decision=\"allowed\"} 1\n"), "{metrics}");
    assert!(metrics.contains("flowstudio_token_mints_total{outcome=\"success\"} 1\n"), "{metrics}");

    // Backfill: each bad field named; the resume/delete round trip.
    let (status, body) = h.call(Method::POST, &format!("{SCHEDULES}/{id}/backfill"), Some(json!({ "from": "yesterday", "until": "x" }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let named: Vec<String> = fields(&body).into_iter().map(|(f, _)| f).collect();
    assert_eq!(named, ["until", "from", "to"], "{body}");
    assert_eq!(h.call(Method::POST, &format!("{SCHEDULES}/{id}/resume"), None).await.1["paused"], false);
    assert_eq!(h.call(Method::DELETE, &format!("{SCHEDULES}/{id}"), None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(h.call(Method::GET, &format!("{SCHEDULES}/{id}"), None).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_manual_trigger_needs_the_caller_to_pass_the_access_guard() {
    let h = ApiHarness::start().await;
    seed_world(&h).await;
    // The workflow's policy denies the admin client: the trigger is refused for the caller.
    let digest = h.upload("payroll-calculation").await;
    let (status, body) = h
        .call(
            Method::PUT,
            "/flowstudio/api/workflows/wf-monthly-payroll",
            Some(json!({ "nodes": [{ "id": "calculate", "component": digest }], "accessPolicy": { "statements": [{ "effect": "deny", "identities": ["flowstudio-admin"] }] } })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, created) = h.call(Method::POST, SCHEDULES, Some(seed_schedule())).await;
    let (status, body) = h.call(Method::POST, &format!("{SCHEDULES}/{}/trigger", created["id"].as_str().expect("id")), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (_, executions) = h.call(Method::GET, "/flowstudio/api/executions", None).await;
    assert_eq!(executions["executions"].as_array().map(Vec::len), Some(0), "no execution was created");
    let (_, audit) = h.call(Method::GET, "/flowstudio/api/audit?action=authorization.failure", None).await;
    assert_eq!(audit["events"][0]["actorId"], "flowstudio-admin", "{audit}");
}

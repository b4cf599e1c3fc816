//! The embedded passport over a real socket: client credentials with strict
//! RFC 6749 §2.3.1 Basic decoding and `client_secret_post`, OAuth errors,
//! tokens that verify against the JWKS it serves, and discovery.

use flowstudio_host::passport::{Claims, JwtVerifier, PassportServerConfig};
use flowstudio_host::secret::Secret;
use flowstudio_tests::identities::*;
use std::sync::Arc;

const SECRET: &str = "a+b/c:d%e=";

/// A passport with `mi-payroll` (client `payroll-client`, secret `a+b/c:d%e=`)
/// and a disabled `mi-off` (client `off-client`, same secret).
async fn passport(config: PassportServerConfig) -> (RunningPassport, TempDir) {
    let dir = TempDir::new("passport");
    let registry = Arc::new(registry(&dir));
    registry.create_with_client_secret(new_identity("mi-payroll", "payroll-client"), &Secret::new(SECRET)).expect("create");
    let mut off = new_identity("mi-off", "off-client");
    off.enabled = false;
    registry.create_with_client_secret(off, &Secret::new(SECRET)).expect("create disabled");
    (RunningPassport::start(registry, config).await, dir)
}

async fn json(response: reqwest::Response) -> serde_json::Value {
    response.json().await.expect("json body")
}

async fn verifier(passport: &RunningPassport, audience: &str) -> JwtVerifier {
    let jwks: serde_json::Value = reqwest::get(passport.url("/passport/jwks")).await.expect("jwks").json().await.expect("jwks json");
    JwtVerifier::new(passport.issuer.issuer(), audience, &jwks).expect("verifier")
}

#[tokio::test]
async fn a_form_encoded_basic_secret_gets_a_token_that_verifies_against_the_served_jwks() {
    let (passport, _dir) = passport(PassportServerConfig::default()).await;
    let response = passport.token_request(Some(&basic_auth("payroll-client", SECRET)), "grant_type=client_credentials").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    let body = json(response).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert!(body.get("scope").is_none(), "no scope asked, none granted: {body}");
    let token = body["access_token"].as_str().expect("access_token");

    let claims: Claims = verifier(&passport, "flowstudio").await.verify(token).expect("token verifies");
    assert_eq!(claims.iss, "flowstudio");
    assert_eq!(claims.aud, "flowstudio");
    assert_eq!(claims.sub, "payroll-client");
    assert_eq!(claims.client_id, "payroll-client");
    assert_eq!(claims.tid, "tenant-1");
    assert_eq!(claims.roles, ["workflow-runner", "payroll.read"]);
    assert_eq!(claims.idtyp.as_deref(), Some("app"));
    assert_eq!(claims.mi.as_deref(), Some("mi-payroll"));
    assert_eq!(claims.name, "Identity mi-payroll");
    assert_eq!(claims.exp - claims.iat, 3600);
    assert_eq!(claims.nbf, claims.iat);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("now").as_secs();
    assert!(claims.iat.abs_diff(now) < 60, "iat {} vs now {now}", claims.iat);
    assert_eq!(claims.jti.len(), 32);

    // Another token for the same client is a different token.
    let again = json(passport.token_request(Some(&basic_auth("payroll-client", SECRET)), "grant_type=client_credentials").await).await;
    assert_ne!(again["access_token"], body["access_token"]);
    // A verifier expecting another audience refuses it.
    assert!(verifier(&passport, "someone-else").await.verify::<Claims>(token).is_err());
}

async fn assert_invalid_client(response: reqwest::Response, case: &str) -> serde_json::Value {
    assert_eq!(response.status(), 401, "{case}");
    let challenge = response.headers().get("www-authenticate").expect("WWW-Authenticate").to_str().expect("text").to_string();
    assert!(challenge.starts_with("Basic "), "{case}: {challenge}");
    assert_eq!(response.headers()["cache-control"], "no-store", "{case}");
    let body = json(response).await;
    assert_eq!(body["error"], "invalid_client", "{case}: {body}");
    body
}

#[tokio::test]
async fn a_raw_basic_credential_of_the_same_secret_is_refused() {
    let (passport, _dir) = passport(PassportServerConfig::default()).await;
    // What reqwest's `basic_auth` would send: not form-encoded.
    let raw = raw_basic_auth(&format!("payroll-client:{SECRET}"));
    let body = assert_invalid_client(passport.token_request(Some(&raw), "grant_type=client_credentials").await, "raw").await;
    assert!(!body.to_string().contains(SECRET));
    // reqwest's own `basic_auth` is the same thing.
    let client = reqwest::Client::new();
    let response = client
        .post(passport.url("/passport/token"))
        .basic_auth("payroll-client", Some(SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .expect("send");
    assert_invalid_client(response, "reqwest basic_auth").await;
}

#[tokio::test]
async fn client_secret_post_works_and_can_be_turned_off() {
    let (passport, _dir) = passport(PassportServerConfig::default()).await;
    let body = format!("grant_type=client_credentials&client_id=payroll-client&client_secret={}", form_encode(SECRET));
    let response = passport.token_request(None, &body).await;
    assert_eq!(response.status(), 200);
    let token = json(response).await["access_token"].as_str().expect("token").to_string();
    let claims: Claims = verifier(&passport, "flowstudio").await.verify(&token).expect("verifies");
    assert_eq!(claims.mi.as_deref(), Some("mi-payroll"));

    let (strict, _dir2) = passport_without_post().await;
    assert_invalid_client(strict.token_request(None, &body).await, "post disabled").await;
    let discovery = json(reqwest::get(strict.url("/.well-known/openid-configuration")).await.expect("discovery")).await;
    assert_eq!(discovery["token_endpoint_auth_methods_supported"], serde_json::json!(["client_secret_basic"]));
}

async fn passport_without_post() -> (RunningPassport, TempDir) {
    passport(PassportServerConfig { allow_client_secret_post: false, ..Default::default() }).await
}

#[tokio::test]
async fn wrong_secret_unknown_client_and_disabled_identity_all_get_the_same_invalid_client() {
    let (passport, _dir) = passport(PassportServerConfig::default()).await;
    let grant = "grant_type=client_credentials";
    let cases = [
        ("wrong secret", Some(basic_auth("payroll-client", "a+b/c:d%e=x"))),
        ("unknown client", Some(basic_auth("nobody", SECRET))),
        ("disabled identity", Some(basic_auth("off-client", SECRET))),
        ("no credentials", None),
        ("bearer instead of basic", Some("Bearer abc".to_string())),
        ("not base64", Some("Basic !!!".to_string())),
    ];
    let mut bodies = Vec::new();
    for (case, auth) in &cases {
        let body = assert_invalid_client(passport.token_request(auth.as_deref(), grant).await, case).await;
        assert!(!body.to_string().contains(SECRET), "{case}: {body}");
        bodies.push(body);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "one answer for every cause: {bodies:?}");
    // The disabled identity is refused even with its right secret; enabling it lets it in.
    passport.registry.enable("mi-off").expect("enable");
    let response = passport.token_request(Some(&basic_auth("off-client", SECRET)), grant).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn malformed_requests_get_the_oauth_error_codes() {
    let (passport, _dir) = passport(PassportServerConfig::default()).await;
    let auth = basic_auth("payroll-client", SECRET);
    let cases = [
        ("grant_type=password&username=u&password=p", "unsupported_grant_type"),
        ("grant_type=authorization_code&code=x", "unsupported_grant_type"),
        ("scope=x", "invalid_request"),
        ("grant_type=client_credentials&grant_type=client_credentials", "invalid_request"),
        ("grant_type=client_credentials&scope=bad%22quote", "invalid_scope"),
        ("grant_type=client_credentials&audience=elsewhere", "invalid_target"),
        ("grant_type=client_credentials&scope=elsewhere/.default", "invalid_scope"),
        ("grant_type=client_credentials&client_secret=also", "invalid_request"),
        ("grant_type=client_credentials&client_id=other-client", "invalid_request"),
        ("grant_type=%zz", "invalid_request"),
    ];
    for (body, code) in cases {
        let response = passport.token_request(Some(&auth), body).await;
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(response.headers()["cache-control"], "no-store", "{body}");
        let answer = json(response).await;
        assert_eq!(answer["error"], code, "{body}: {answer}");
        assert!(answer["error_description"].as_str().is_some_and(|d| !d.is_empty()), "{body}: {answer}");
    }
    // A JSON body is not a token request.
    let client = reqwest::Client::new();
    let response = client
        .post(passport.url("/passport/token"))
        .header("authorization", &auth)
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 400);
    assert_eq!(json(response).await["error"], "invalid_request");
}

#[tokio::test]
async fn audience_lifetime_and_scope_follow_the_configuration() {
    let config = PassportServerConfig {
        issuer: "https://passport.example".into(),
        audience: "flowstudio".into(),
        additional_audiences: vec!["payroll-api".into()],
        token_lifetime_secs: 120,
        ..Default::default()
    };
    let (passport, _dir) = passport(config).await;
    let auth = basic_auth("payroll-client", SECRET);
    for body in [
        "grant_type=client_credentials&audience=payroll-api",
        "grant_type=client_credentials&resource=payroll-api",
        "grant_type=client_credentials&scope=payroll-api%2F.default",
    ] {
        let answer = json(passport.token_request(Some(&auth), body).await).await;
        assert_eq!(answer["expires_in"], 120, "{body}: {answer}");
        let claims: Claims = verifier(&passport, "payroll-api").await.verify(answer["access_token"].as_str().expect("token")).expect(body);
        assert_eq!((claims.aud.as_str(), claims.iss.as_str()), ("payroll-api", "https://passport.example"), "{body}");
        assert_eq!(claims.exp - claims.iat, 120);
    }
    // Scopes that are the identity's roles are granted; others are ignored (RFC 6749 §3.3).
    let answer = json(passport.token_request(Some(&auth), "grant_type=client_credentials&scope=payroll.read+admin").await).await;
    assert_eq!(answer["scope"], "payroll.read", "{answer}");
    let claims: Claims = verifier(&passport, "flowstudio").await.verify(answer["access_token"].as_str().expect("token")).expect("verifies");
    assert_eq!(claims.scope, "payroll.read");
    assert_eq!(claims.roles, ["workflow-runner", "payroll.read"], "roles are the identity's, whatever the scope");
}

#[tokio::test]
async fn the_discovery_document_points_at_endpoints_that_answer() {
    let (passport, _dir) = passport(PassportServerConfig::default()).await;
    for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
        let discovery = json(reqwest::get(passport.url(path)).await.expect("discovery")).await;
        assert_eq!(discovery["issuer"], "flowstudio");
        assert_eq!(discovery["grant_types_supported"], serde_json::json!(["client_credentials"]));
        assert_eq!(
            discovery["token_endpoint_auth_methods_supported"],
            serde_json::json!(["client_secret_basic", "client_secret_post"])
        );
        let token_endpoint = discovery["token_endpoint"].as_str().expect("token_endpoint");
        let jwks_uri = discovery["jwks_uri"].as_str().expect("jwks_uri");
        assert_eq!(token_endpoint, passport.url("/passport/token"));

        let jwks: serde_json::Value = reqwest::get(jwks_uri).await.expect("jwks").json().await.expect("json");
        assert_eq!(jwks["keys"][0]["kid"], passport.issuer.kid());
        assert_eq!(jwks, passport.issuer.jwks());
        let response = reqwest::Client::new()
            .post(token_endpoint)
            .header("authorization", basic_auth("payroll-client", SECRET))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .expect("token");
        assert_eq!(response.status(), 200);
        let token = json(response).await["access_token"].as_str().expect("token").to_string();
        let verifier = JwtVerifier::new(discovery["issuer"].as_str().expect("issuer"), "flowstudio", &jwks).expect("verifier");
        verifier.verify::<Claims>(&token).expect("verifies with what discovery names");
    }
}

#[tokio::test]
async fn a_configured_public_url_is_what_discovery_names() {
    let config = PassportServerConfig { public_url: Some("https://id.example.com/".into()), ..Default::default() };
    let (passport, _dir) = passport(config).await;
    let discovery = json(reqwest::get(passport.url("/.well-known/openid-configuration")).await.expect("discovery")).await;
    assert_eq!(discovery["token_endpoint"], "https://id.example.com/passport/token");
    assert_eq!(discovery["jwks_uri"], "https://id.example.com/passport/jwks");
}

#[test]
fn a_bad_configuration_is_refused_naming_the_fields() {
    let dir = TempDir::new("passport-config");
    let config = PassportServerConfig {
        audience: "".into(),
        token_lifetime_secs: 5,
        public_url: Some("ftp://x".into()),
        ..Default::default()
    };
    let issuer = Arc::new(flowstudio_host::passport::Issuer::generate("flowstudio").expect("issuer"));
    let err = flowstudio_host::passport::PassportState::new(Arc::new(registry(&dir)), issuer, config).expect_err("invalid");
    let fields: Vec<_> = err.0.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["audience", "token-lifetime-secs", "public-url"]);
    let config: Result<PassportServerConfig, _> = serde_json::from_value(serde_json::json!({"token-lifetime-secs": 600, "lifetime": 1}));
    assert!(config.is_err(), "unknown keys are refused");
}

//! What the passport writes to its logs: never a secret or a token, whatever
//! the request. Runs the router in-process with a capturing `tracing` subscriber.

use super::*;
use crate::identity::NewManagedIdentity;
use crate::secret::Secret;
use axum::body::Body;
use axum::http::Request;
use base64::Engine as _;
use std::sync::Mutex;
use tower::ServiceExt as _;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut log) = self.0.lock() {
            log.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn token_request(authorization: Option<String>, body: &str) -> Request<Body> {
    let mut request = Request::post(TOKEN_PATH).header("content-type", "application/x-www-form-urlencoded");
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.body(Body::from(body.to_string())).expect("request")
}

#[tokio::test]
async fn neither_secrets_nor_tokens_reach_the_log() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(move || writer.clone()).finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = std::env::temp_dir().join(format!("flowstudio-passport-log-{}-{:x}", std::process::id(), rand::random::<u64>()));
    let registry = Arc::new(IdentityRegistry::open(&crate::db::path_in(&dir)).expect("registry").with_hash_iterations(1_000));
    let new = NewManagedIdentity {
        id: "mi-1".into(),
        name: "One".into(),
        client_id: "client-1".into(),
        tenant_id: "t".into(),
        roles: vec![],
        enabled: true,
    };
    let secret = "log-needle-a+b/c:d%e=";
    registry.create_with_client_secret(new, &Secret::new(secret)).expect("create");
    let issuer = Arc::new(Issuer::generate("flowstudio").expect("issuer"));
    let app = router(PassportState::new(registry.clone(), issuer, PassportServerConfig::default()).expect("state"));

    let encoded = "log-needle-a%2Bb%2Fc%3Ad%25e%3D";
    let basic = |s: &str| Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("client-1:{s}"))));
    let mut tokens = Vec::new();
    for (auth, body) in [
        (basic(encoded), "grant_type=client_credentials".to_string()),
        (basic(secret), "grant_type=client_credentials".to_string()),
        (basic("log-needle-wrong"), "grant_type=client_credentials".to_string()),
        (None, format!("grant_type=client_credentials&client_id=client-1&client_secret={encoded}")),
        (None, format!("grant_type=client_credentials&client_id=nobody&client_secret={encoded}")),
    ] {
        let response = app.clone().oneshot(token_request(auth, &body)).await.expect("response");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
        let answer: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        if status == StatusCode::OK {
            tokens.push(answer["access_token"].as_str().expect("token").to_string());
        }
    }
    assert_eq!(tokens.len(), 2, "the Basic and the post request succeeded");
    let log = String::from_utf8(captured.0.lock().expect("log").clone()).expect("utf-8");
    assert!(log.contains("token minted"), "the passport does log: {log}");
    assert!(log.contains("token request refused"), "{log}");
    assert!(!log.contains("log-needle"), "a secret (or part of one) was logged: {log}");
    for token in &tokens {
        let signature = token.rsplit('.').next().expect("signature");
        assert!(!log.contains(signature), "a token was logged: {log}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

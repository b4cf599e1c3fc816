//! Neither client secrets nor tokens show up in logs, errors or `Debug` output.

use chrono::Utc;
use flowstudio_host::clock::ManualClock;
use flowstudio_host::secret::Secret;
use flowstudio_host::token::{PassportClient, RefreshSettings, TokenRequest, TokenSource};
use flowstudio_tests::tokens::*;
use flowstudio_tests::{RecordingServer, Reply};
use serde_json::json;
use std::sync::Arc;

const SECRET: &str = "s3cr3t+/:%=value";
const NEW_SECRET: &str = "n3w-s3cr3t+/:%=value";

#[tokio::test]
async fn secrets_and_tokens_never_reach_logs_errors_or_debug_output() {
    captured_logs();
    let passport = PassportMock::start(SECRET, 3600);
    let secrets = MemorySecrets::new(SECRET, "v1");
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let settings = RefreshSettings { retry_initial_seconds: 1, ..Default::default() };
    let source = managed_source(&passport.config(), secrets.clone(), settings, clock.clone());
    let mut outputs: Vec<String> = Vec::new();
    let mut tokens: Vec<String> = Vec::new();

    let token = source.token(None).await.expect("token");
    tokens.push(token.token.expose().to_string());
    outputs.push(format!("{token:?} {source:?} {:?}", source.id_info()));

    // Rotation: invalid_client, bypass read, success.
    secrets.rotate(NEW_SECRET, "v2");
    passport.set(json!({"secret": NEW_SECRET})).await;
    source.invalidate(&token);
    let rotated = source.token(None).await.expect("after rotation");
    tokens.push(rotated.token.expose().to_string());
    assert_eq!(secrets.bypass_reads(), 1);

    // Refused for good: a clear error, still without the secret.
    passport.set(json!({"secret": "nobody-has-this"})).await;
    source.invalidate(&rotated);
    let refused = source.token(None).await.expect_err("refused");
    outputs.push(format!("{refused} {refused:?}"));

    // Passport down, then verification failures.
    passport.set(json!({"secret": NEW_SECRET, "failTokens": 1})).await;
    clock.advance(chrono::Duration::seconds(2));
    let down = source.token(None).await.expect_err("503");
    outputs.push(format!("{down} {down:?}"));
    passport.set(json!({"claims": {"aud": "someone-else"}})).await;
    clock.advance(chrono::Duration::seconds(3));
    let bad = source.token(None).await.expect_err("wrong aud");
    outputs.push(format!("{bad} {bad:?}"));

    // A passport that echoes what it got must not get it into our errors.
    let echo = RecordingServer::start(|seen, _| {
        let auth = seen.header("authorization").unwrap_or_default().to_string();
        Reply::json(400, json!({"error": "invalid_request", "error_description": format!("got {auth}")}))
    })
    .await;
    let client = PassportClient::new(&flowstudio_host::token::PassportConfig::new(echo.origin())).expect("client");
    let secret = Secret::new(SECRET);
    let err = client
        .request_token(TokenRequest { client_id: CLIENT_ID, client_secret: &secret, audience: None, scope: None })
        .await
        .expect_err("refused");
    outputs.push(format!("{err} {err:?}"));

    let logs = captured_text();
    assert!(logs.contains("token obtained"), "the capture works: {logs}");
    assert!(logs.contains("token refresh failed"), "failures are logged: {logs}");
    let mut forbidden = vec![SECRET.to_string(), NEW_SECRET.to_string(), form_encoded(SECRET), form_encoded(NEW_SECRET)];
    forbidden.push(basic_blob(SECRET));
    forbidden.push(basic_blob(NEW_SECRET));
    forbidden.extend(tokens.iter().cloned());
    // A JWT's signature alone is enough to identify it.
    forbidden.extend(tokens.iter().filter_map(|t| t.rsplit('.').next().map(str::to_string)));
    for text in outputs.iter().chain(std::iter::once(&logs)) {
        for needle in &forbidden {
            assert!(!text.contains(needle.as_str()), "leaked `{needle}` in: {text}");
        }
    }
}

/// `application/x-www-form-urlencoded` of one value.
fn form_encoded(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => (b as char).to_string(),
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The base64 part of the Basic credentials for `CLIENT_ID` and `secret`.
fn basic_blob(secret: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", form_encoded(CLIENT_ID), form_encoded(secret)))
}

//! The passport client against an independent, strict passport (oauth2-mock-server).

use flowstudio_host::secret::Secret;
use flowstudio_host::token::{AuthMethod, PassportClient, PassportError, TokenRequest};
use flowstudio_tests::tokens::*;
use flowstudio_tests::{RecordingServer, Reply};
use serde_json::json;

const SPECIAL: &str = "a+b/c:d%e=";

fn request<'a>(secret: &'a Secret) -> TokenRequest<'a> {
    TokenRequest { client_id: CLIENT_ID, client_secret: secret, audience: Some("flowstudio"), scope: None }
}

#[tokio::test]
async fn a_secret_full_of_form_characters_authenticates_with_client_secret_basic() {
    let passport = PassportMock::start(SPECIAL, 3600);
    // The server is strict: the raw (not form-encoded) credentials reqwest's basic_auth sends are refused.
    let raw = reqwest::Client::new()
        .post(passport.token_url())
        .basic_auth(CLIENT_ID, Some(SPECIAL))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("raw request");
    assert_eq!(raw.status(), 401);
    assert_eq!(raw.json::<serde_json::Value>().await.expect("json")["error"], "invalid_client");

    let client = PassportClient::new(&passport.config()).expect("client");
    let secret = Secret::new(SPECIAL);
    let answer = client.request_token(request(&secret)).await.expect("form-encoded basic credentials are accepted");
    assert_eq!(answer.expires_in, Some(3600));
    assert!(answer.access_token.expose().split('.').count() == 3, "a JWT");
    let stats = passport.stats().await;
    assert_eq!(stats["accepted"], 1);
    assert_eq!(stats["methods"], json!(["basic", "basic"]));
}

#[tokio::test]
async fn client_secret_post_sends_the_credentials_in_the_body() {
    let passport = PassportMock::start(SPECIAL, 600);
    let mut config = passport.config();
    config.auth_method = AuthMethod::ClientSecretPost;
    let client = PassportClient::new(&config).expect("client");
    let secret = Secret::new(SPECIAL);
    let answer = client.request_token(request(&secret)).await.expect("accepted");
    assert_eq!(answer.expires_in, Some(600));
    assert_eq!(passport.stats().await["methods"], json!(["post"]));
}

#[tokio::test]
async fn a_wrong_secret_is_invalid_client_and_a_string_expires_in_is_read() {
    let passport = PassportMock::start("right", 120);
    let client = PassportClient::new(&passport.config()).expect("client");
    let wrong = Secret::new("wrong");
    let err = client.request_token(request(&wrong)).await.expect_err("refused");
    assert!(matches!(err, PassportError::InvalidClient { .. }), "{err:?}");
    assert!(!err.is_transient());

    passport.set(json!({"expiresInAsString": true})).await;
    let right = Secret::new("right");
    assert_eq!(client.request_token(request(&right)).await.expect("accepted").expires_in, Some(120));
    passport.set(json!({"omitExpiresIn": true})).await;
    assert_eq!(client.request_token(request(&right)).await.expect("accepted").expires_in, None);
}

#[tokio::test]
async fn a_passport_that_is_down_or_overloaded_is_transient() {
    let passport = PassportMock::start("right", 120);
    passport.set(json!({"failTokens": 1})).await;
    let client = PassportClient::new(&passport.config()).expect("client");
    let secret = Secret::new("right");
    let err = client.request_token(request(&secret)).await.expect_err("503");
    assert!(err.is_transient(), "{err:?}");
    let url = passport.url();
    drop(passport);
    let mut config = flowstudio_host::token::PassportConfig::new(url);
    config.timeout_seconds = 2;
    let err = PassportClient::new(&config).expect("client").request_token(request(&secret)).await.expect_err("nobody listens");
    assert!(err.is_transient(), "{err:?}");
}

#[tokio::test]
async fn other_oauth_errors_are_rejections() {
    let server = RecordingServer::start(|_, _| Reply::json(400, json!({"error": "unauthorized_client", "error_description": "client is disabled"}))).await;
    let client = PassportClient::new(&flowstudio_host::token::PassportConfig::new(server.origin())).expect("client");
    let secret = Secret::new("s");
    let err = client.request_token(request(&secret)).await.expect_err("refused");
    assert_eq!(err, PassportError::Rejected { code: "unauthorized_client".into(), description: Some("client is disabled".into()) });
    assert_eq!(server.seen()[0].path, "/passport/token", "the default token path");
}

#[tokio::test]
async fn a_redirect_is_not_followed_with_the_credentials() {
    let target = RecordingServer::start(|_, _| Reply::json(200, json!({"access_token": "stolen"}))).await;
    let location = target.url("/steal");
    let redirector = RecordingServer::start(move |_, _| Reply {
        status: 307,
        headers: vec![("location".into(), location.clone())],
        body: String::new(),
    })
    .await;
    let client = PassportClient::new(&flowstudio_host::token::PassportConfig::new(redirector.origin())).expect("client");
    let secret = Secret::new(SPECIAL);
    let err = client.request_token(request(&secret)).await.expect_err("a redirect is not a token");
    assert!(matches!(err, PassportError::Malformed { .. }), "{err:?}");
    assert!(target.seen().is_empty(), "the redirect target received nothing");
    assert!(redirector.seen()[0].header("authorization").is_some_and(|a| a.starts_with("Basic ")));
}

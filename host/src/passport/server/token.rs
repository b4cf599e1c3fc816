//! `POST /passport/token`: the client credentials grant.
//!
//! The request's shape (content type, grant type, audience, scope syntax) is
//! checked before the client is authenticated: those checks are cheap, and
//! the secret check is deliberately slow. Every authentication failure,
//! including a disabled identity, answers the same 401 `invalid_client`, so a
//! caller cannot learn which client ids exist or are disabled.
//!
//! Audience and scope: the token's `aud` is the configured audience unless
//! the request names another served one (`audience` or `resource` parameter,
//! or a scope token `AUDIENCE` or `AUDIENCE/.default`, the Entra habit). Other
//! scope tokens are granted when they are one of the identity's roles and
//! otherwise ignored (RFC 6749 §3.3); the response's `scope` says what was granted.

use super::client_auth::{client_credentials, ClientCredentials, CredentialsProblem};
use super::form::TokenForm;
use super::PassportState;
use crate::identity::{ClientAuthError, ManagedIdentity};
use crate::passport::Claims;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;

/// An OAuth error answer (RFC 6749 §5.2).
#[derive(Debug)]
struct OAuthError {
    status: StatusCode,
    code: &'static str,
    description: String,
}

impl OAuthError {
    fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        OAuthError { status, code, description: description.into() }
    }

    fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    fn invalid_client() -> Self {
        // One description for every cause: which one it was stays in the host's log.
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", "client authentication failed")
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.code, "error_description": self.description });
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        no_store(headers);
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"flowstudio-passport\", charset=\"UTF-8\""));
        }
        response
    }
}

fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

pub(super) async fn token(State(state): State<Arc<PassportState>>, headers: HeaderMap, body: Bytes) -> Response {
    match issue(&state, &headers, &body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn issue(state: &Arc<PassportState>, headers: &HeaderMap, body: &[u8]) -> Result<Response, OAuthError> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if !form_type {
        return Err(OAuthError::invalid_request("the body must be `application/x-www-form-urlencoded`"));
    }
    let form = TokenForm::parse(body).map_err(OAuthError::invalid_request)?;
    match form.get("grant_type") {
        None => return Err(OAuthError::invalid_request("`grant_type` is missing")),
        Some("client_credentials") => {}
        Some(other) => {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!("grant type `{}` is not supported; use `client_credentials`", other.escape_debug()),
            ))
        }
    }
    let request = requested_audience_and_scope(state, &form)?;
    let credentials = client_credentials(headers, &form, state.config.allow_client_secret_post).map_err(|problem| match problem {
        CredentialsProblem::Malformed(why) => OAuthError::invalid_request(why),
        CredentialsProblem::Unauthenticated(why) => {
            tracing::info!(target: "flowstudio::passport", "token request refused: {why}");
            OAuthError::invalid_client()
        }
    })?;
    let identity = authenticate(state, credentials).await?;
    let granted: Vec<&str> = request.scopes.iter().copied().filter(|s| identity.roles.iter().any(|r| r == s)).collect();
    mint(state, &identity, request.audience, &granted.join(" "))
}

struct TokenRequest<'a> {
    audience: &'a str,
    /// Scope tokens that are not audience selectors.
    scopes: Vec<&'a str>,
}

fn requested_audience_and_scope<'a>(state: &'a PassportState, form: &'a TokenForm) -> Result<TokenRequest<'a>, OAuthError> {
    let invalid_target = |what: &str| {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_target", format!("audience `{}` is not served by this passport", what.escape_debug()))
    };
    let mut audience: Option<&str> = None;
    let mut choose = |candidate: &'a str, error: fn(&str) -> OAuthError| -> Result<(), OAuthError> {
        match audience {
            Some(chosen) if chosen != candidate => Err(error("the request names more than one audience")),
            _ => {
                audience = Some(candidate);
                Ok(())
            }
        }
    };
    for name in ["audience", "resource"] {
        if let Some(value) = form.get(name) {
            if !state.config.serves_audience(value) {
                return Err(invalid_target(value));
            }
            choose(value, |m| OAuthError::invalid_request(m))?;
        }
    }
    let mut scopes = Vec::new();
    if let Some(scope) = form.get("scope") {
        for token in scope.split(' ') {
            let valid = !token.is_empty() && token.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
            if !valid {
                return Err(OAuthError::new(StatusCode::BAD_REQUEST, "invalid_scope", "`scope` is not a space-separated list of scope tokens"));
            }
            if let Some(target) = token.strip_suffix("/.default") {
                if !state.config.serves_audience(target) {
                    return Err(OAuthError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_scope",
                        format!("audience `{target}` is not served by this passport"),
                    ));
                }
                choose(target, |m| OAuthError::new(StatusCode::BAD_REQUEST, "invalid_scope", m))?;
            } else if state.config.serves_audience(token) {
                choose(token, |m| OAuthError::new(StatusCode::BAD_REQUEST, "invalid_scope", m))?;
            } else {
                scopes.push(token);
            }
        }
    }
    Ok(TokenRequest { audience: audience.unwrap_or(&state.config.audience), scopes })
}

async fn authenticate(state: &Arc<PassportState>, credentials: ClientCredentials) -> Result<ManagedIdentity, OAuthError> {
    let server_error = || OAuthError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "the passport could not check the client");
    let _permit = state.verifications.acquire().await.map_err(|_| server_error())?;
    let registry = state.registry.clone();
    let ClientCredentials { client_id, secret, method } = credentials;
    let checked = tokio::task::spawn_blocking(move || registry.verify_client(&client_id, &secret))
        .await
        .map_err(|_| server_error())?;
    match checked {
        Ok(identity) => {
            tracing::debug!(target: "flowstudio::passport", identity = %identity.id, ?method, "client authenticated");
            Ok(identity)
        }
        Err(ClientAuthError::Store(e)) => {
            tracing::error!(target: "flowstudio::passport", "client check failed: {e}");
            Err(server_error())
        }
        Err(refused) => {
            tracing::info!(target: "flowstudio::passport", "token request refused: {refused}");
            Err(OAuthError::invalid_client())
        }
    }
}

fn mint(state: &PassportState, identity: &ManagedIdentity, audience: &str, scope: &str) -> Result<Response, OAuthError> {
    let now = u64::try_from(state.clock.now().timestamp()).unwrap_or(0);
    let lifetime = state.config.token_lifetime_secs;
    let claims = Claims {
        iss: state.config.issuer.clone(),
        aud: audience.into(),
        sub: identity.client_id.clone(),
        exp: now + lifetime,
        iat: now,
        nbf: now,
        tid: identity.tenant_id.clone(),
        client_id: identity.client_id.clone(),
        name: identity.name.clone(),
        roles: identity.roles.clone(),
        scope: scope.into(),
        idtyp: Some("app".into()),
        mi: Some(identity.id.clone()),
        jti: hex::encode(rand::random::<[u8; 16]>()),
    };
    let token = state.issuer.sign(&claims).map_err(|e| {
        tracing::error!(target: "flowstudio::passport", identity = %identity.id, "token signing failed: {e}");
        OAuthError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "the passport could not sign a token")
    })?;
    tracing::info!(target: "flowstudio::passport", identity = %identity.id, audience, jti = %claims.jti, "token minted");
    let mut body = serde_json::json!({ "access_token": token.expose(), "token_type": "Bearer", "expires_in": lifetime });
    if !scope.is_empty() {
        body["scope"] = scope.into();
    }
    let mut response = Json(body).into_response();
    no_store(response.headers_mut());
    Ok(response)
}

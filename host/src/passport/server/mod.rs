//! The embedded passport's HTTP side: an axum [`Router`] over the identity
//! registry and the [`Issuer`], serving
//!
//! - `POST /passport/token`: OAuth 2.0 client credentials (RFC 6749 §4.4),
//!   `client_secret_basic` or `client_secret_post`;
//! - `GET /passport/jwks`: the issuer's public keys;
//! - `GET /.well-known/openid-configuration` (and the RFC 8414 twin
//!   `/.well-known/oauth-authorization-server`): where those are.
//!
//! Mount [`router`] into a larger app, or run it alone with [`serve`].

mod client_auth;
mod form;
mod token;

use super::Issuer;
use crate::clock::{Clock, SystemClock};
use crate::identity::IdentityRegistry;
use crate::validation::FieldError;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub const TOKEN_PATH: &str = "/passport/token";
pub const JWKS_PATH: &str = "/passport/jwks";
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
pub const OAUTH_METADATA_PATH: &str = "/.well-known/oauth-authorization-server";

/// How the embedded passport mints tokens (the config file's `[passport.embedded]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct PassportServerConfig {
    /// The `iss` claim and the discovery document's `issuer`.
    pub issuer: String,
    /// The `aud` claim of a token whose request names no audience.
    pub audience: String,
    /// Further audiences a client may ask for (`audience`/`resource` parameter,
    /// or a scope `AUDIENCE` / `AUDIENCE/.default`).
    pub additional_audiences: Vec<String>,
    /// Token lifetime in seconds (`expires_in`).
    pub token_lifetime_secs: u64,
    /// Accept `client_secret_post` besides `client_secret_basic`.
    pub allow_client_secret_post: bool,
    /// The passport's public base URL, for the discovery document. Unset: taken
    /// from the request's `Host` header, over http.
    pub public_url: Option<String>,
}

pub const DEFAULT_ISSUER: &str = "flowstudio";
pub const DEFAULT_AUDIENCE: &str = "flowstudio";
pub const DEFAULT_TOKEN_LIFETIME_SECS: u64 = 3600;
const MIN_LIFETIME: u64 = 60;
const MAX_LIFETIME: u64 = 86_400;

impl Default for PassportServerConfig {
    fn default() -> Self {
        PassportServerConfig {
            issuer: DEFAULT_ISSUER.into(),
            audience: DEFAULT_AUDIENCE.into(),
            additional_audiences: Vec::new(),
            token_lifetime_secs: DEFAULT_TOKEN_LIFETIME_SECS,
            allow_client_secret_post: true,
            public_url: None,
        }
    }
}

impl PassportServerConfig {
    /// Every problem, with fields named as in the config file.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let plain = |v: &str| !v.is_empty() && !v.chars().any(|c| c.is_whitespace() || c.is_control());
        if !plain(&self.issuer) {
            errors.push(FieldError::new("issuer", "must be non-empty text without whitespace"));
        }
        if !plain(&self.audience) {
            errors.push(FieldError::new("audience", "must be non-empty text without whitespace"));
        }
        for (i, audience) in self.additional_audiences.iter().enumerate() {
            if !plain(audience) {
                errors.push(FieldError::new(format!("additional-audiences[{i}]"), "must be non-empty text without whitespace"));
            }
        }
        if !(MIN_LIFETIME..=MAX_LIFETIME).contains(&self.token_lifetime_secs) {
            errors.push(FieldError::new(
                "token-lifetime-secs",
                format!("must be between {MIN_LIFETIME} and {MAX_LIFETIME} seconds, not {}", self.token_lifetime_secs),
            ));
        }
        if let Some(public) = &self.public_url {
            match url::Url::parse(public) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.query().is_none() => {}
                _ => errors.push(FieldError::new("public-url", format!("`{public}` is not an http(s) base URL"))),
            }
        }
        errors
    }

    fn serves_audience(&self, audience: &str) -> bool {
        self.audience == audience || self.additional_audiences.iter().any(|a| a == audience)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid passport server configuration: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct PassportConfigError(pub Vec<FieldError>);

/// What the passport's handlers share.
pub struct PassportState {
    registry: Arc<IdentityRegistry>,
    issuer: Arc<Issuer>,
    config: PassportServerConfig,
    clock: Arc<dyn Clock>,
    /// Secret checks are deliberately slow; bound how many run at once so a
    /// flood of bad requests cannot take every core.
    verifications: Semaphore,
}

impl std::fmt::Debug for PassportState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassportState").field("issuer", &self.issuer).field("config", &self.config).finish_non_exhaustive()
    }
}

impl PassportState {
    pub fn new(
        registry: Arc<IdentityRegistry>,
        issuer: Arc<Issuer>,
        config: PassportServerConfig,
    ) -> Result<Arc<PassportState>, PassportConfigError> {
        Self::with_clock(registry, issuer, config, Arc::new(SystemClock))
    }

    pub fn with_clock(
        registry: Arc<IdentityRegistry>,
        issuer: Arc<Issuer>,
        config: PassportServerConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<PassportState>, PassportConfigError> {
        let errors = config.validate();
        if !errors.is_empty() {
            return Err(PassportConfigError(errors));
        }
        let parallel = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 4);
        Ok(Arc::new(PassportState { registry, issuer, config, clock, verifications: Semaphore::new(parallel) }))
    }

    pub fn config(&self) -> &PassportServerConfig {
        &self.config
    }
}

/// The passport's routes, to serve alone or merge into the host's API router.
pub fn router(state: Arc<PassportState>) -> Router {
    Router::new()
        .route(TOKEN_PATH, post(token::token).layer(axum::extract::DefaultBodyLimit::max(16 * 1024)))
        .route(JWKS_PATH, get(jwks))
        .route(DISCOVERY_PATH, get(discovery))
        .route(OAUTH_METADATA_PATH, get(discovery))
        .with_state(state)
}

/// Serve the passport on `listener` until the task is dropped or the listener fails.
pub async fn serve(listener: TcpListener, state: Arc<PassportState>) -> std::io::Result<()> {
    axum::serve(listener, router(state)).await
}

async fn jwks(State(state): State<Arc<PassportState>>) -> Response {
    cacheable(Json(state.issuer.jwks()))
}

async fn discovery(State(state): State<Arc<PassportState>>, headers: HeaderMap) -> Response {
    let Some(base) = base_url(&state.config, &headers) else {
        return (StatusCode::BAD_REQUEST, "the request has no usable `Host` header").into_response();
    };
    let mut methods = vec!["client_secret_basic"];
    if state.config.allow_client_secret_post {
        methods.push("client_secret_post");
    }
    cacheable(Json(serde_json::json!({
        "issuer": state.config.issuer,
        "token_endpoint": format!("{base}{TOKEN_PATH}"),
        "jwks_uri": format!("{base}{JWKS_PATH}"),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": methods,
        "response_types_supported": [],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
        "claims_supported": ["iss", "aud", "sub", "client_id", "tid", "name", "roles", "scope", "idtyp", "mi", "iat", "nbf", "exp", "jti"],
    })))
}

/// Discovery and keys change only on rotation; let clients cache them briefly.
fn cacheable(body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    response
}

/// The public base URL: configured, or `http://<Host>` when the Host header is a plain authority.
fn base_url(config: &PassportServerConfig, headers: &HeaderMap) -> Option<String> {
    if let Some(public) = &config.public_url {
        return Some(public.trim_end_matches('/').to_string());
    }
    let host = headers.get(header::HOST)?.to_str().ok()?;
    // Only an authority: no path, userinfo or spaces can be smuggled into the URLs we print.
    let plain = !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    plain.then(|| format!("http://{host}"))
}

#[cfg(test)]
mod tests;

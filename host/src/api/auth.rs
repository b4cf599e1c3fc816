//! Admin authentication for the REST API: a bearer JWT from the passport,
//! verified exactly like a run's IDInfo (pinned algorithms, `iss`/`aud`/`exp`
//! required), whose roles must include the configured admin role.
//!
//! No token or a refused token: 401 with `WWW-Authenticate: Bearer`. A valid
//! token without the admin role: 403, logged with the caller's id (the audit
//! log's authorization events are about workflows, not API routes). The verified caller is put into the request's
//! extensions as [`Caller`] for handlers that audit or act as the caller.

use super::error::ApiError;
use super::ApiState;
use crate::audit::AuditActor;
use crate::identity::IdInfo;
use crate::passport::JwtVerifier;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use serde::Deserialize;
use std::sync::Arc;

/// The verified identity of an API caller.
#[derive(Debug, Clone)]
pub struct Caller(pub IdInfo);

impl Caller {
    pub fn actor(&self) -> AuditActor {
        AuditActor::from_id_info(&self.0)
    }

    /// `manual:<caller>`: how a run started by this caller is labelled.
    pub fn triggered_by(&self, kind: &str) -> String {
        format!("{kind}:{}", self.actor().id())
    }
}

/// Checks bearer tokens and the admin role.
pub struct AdminAuth {
    verifier: JwtVerifier,
    admin_role: String,
    tenant_claim: String,
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAuth").field("verifier", &self.verifier).field("admin_role", &self.admin_role).finish()
    }
}

/// The claims the admin check reads; the rest of the token is ignored.
#[derive(Debug, Deserialize)]
struct AdminClaims {
    sub: String,
    #[serde(default)]
    exp: u64,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    roles: Option<StringOrList>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    idtyp: Option<String>,
    #[serde(default)]
    mi: Option<String>,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

/// Some issuers send a list claim as one space-separated string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum StringOrList {
    List(Vec<String>),
    One(String),
}

impl StringOrList {
    fn into_vec(self) -> Vec<String> {
        match self {
            StringOrList::List(v) => v,
            StringOrList::One(s) => s.split_whitespace().map(str::to_string).collect(),
        }
    }
}

impl AdminAuth {
    /// `verifier` checks signature, issuer, audience and times; `admin_role`
    /// is the role an admin token must carry.
    pub fn new(verifier: JwtVerifier, admin_role: impl Into<String>) -> AdminAuth {
        AdminAuth { verifier, admin_role: admin_role.into(), tenant_claim: "tid".into() }
    }

    /// Which claim holds the tenant (default `tid`).
    pub fn with_tenant_claim(mut self, claim: impl Into<String>) -> AdminAuth {
        self.tenant_claim = claim.into();
        self
    }

    pub fn admin_role(&self) -> &str {
        &self.admin_role
    }

    /// Verify a bearer token and map it to the caller's identity (401 on failure).
    pub fn verify(&self, token: &str) -> Result<IdInfo, ApiError> {
        let claims: AdminClaims = self
            .verifier
            .verify(token)
            .map_err(|e| ApiError::unauthorized(format!("the bearer token was refused: {e}")))?;
        let client_id = claims.client_id.or(claims.azp).unwrap_or_default();
        let roles = match claims.roles {
            Some(roles) => roles.into_vec(),
            None => claims.scope.as_deref().unwrap_or_default().split_whitespace().map(str::to_string).collect(),
        };
        let tenant_id = claims.rest.get(&self.tenant_claim).and_then(|v| v.as_str()).unwrap_or_default().to_string();
        Ok(IdInfo {
            is_service_account: claims.sub == client_id || claims.idtyp.as_deref() == Some("app"),
            user_id: claims.sub,
            tenant_id,
            client_id,
            display_name: claims.name.unwrap_or_default(),
            roles,
            scopes: claims.scope.as_deref().unwrap_or_default().split_whitespace().map(str::to_string).collect(),
            managed_identity_id: claims.mi,
            token_expires_at: claims.exp,
        })
    }

    /// The whole check for one request's `Authorization` header value.
    pub fn authorize(&self, authorization: Option<&str>) -> Result<IdInfo, AuthFailure> {
        let Some(value) = authorization else {
            return Err(AuthFailure::Unauthenticated(ApiError::unauthorized(
                "this route needs an admin token: send `Authorization: Bearer <token>` (see `flowstudio admin token`)",
            )));
        };
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| AuthFailure::Unauthenticated(ApiError::unauthorized("the `Authorization` header must be `Bearer <token>`")))?;
        let caller = self.verify(token).map_err(AuthFailure::Unauthenticated)?;
        if !caller.roles.contains(&self.admin_role) {
            let who = AuditActor::from_id_info(&caller);
            let error = ApiError::forbidden(format!("`{}` does not have the admin role `{}`", who.id(), self.admin_role));
            return Err(AuthFailure::Forbidden { caller, error });
        }
        Ok(caller)
    }
}

/// Why a request was refused before it reached its handler.
#[derive(Debug)]
pub enum AuthFailure {
    Unauthenticated(ApiError),
    Forbidden { caller: IdInfo, error: ApiError },
}

/// The middleware in front of every `/flowstudio/api/` route except the OpenAPI document.
pub async fn require_admin(State(state): State<Arc<ApiState>>, mut request: Request, next: Next) -> Result<Response, ApiError> {
    let header = request.headers().get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or(""));
    match state.auth.authorize(header) {
        Ok(caller) => {
            request.extensions_mut().insert(Caller(caller));
            Ok(next.run(request).await)
        }
        Err(AuthFailure::Unauthenticated(error)) => Err(error),
        Err(AuthFailure::Forbidden { caller, error }) => {
            let who = AuditActor::from_id_info(&caller);
            tracing::warn!(target: "flowstudio::api", caller = who.id(), method = %request.method(), path = request.uri().path(), "admin role missing");
            Err(error)
        }
    }
}

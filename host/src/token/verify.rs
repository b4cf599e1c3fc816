//! From a verified access token to the `IdInfo` every node sees (DESIGN §6).
//!
//! Mapping: user id ← `sub`; tenant ← the configured claim (`tid`); roles ←
//! `roles`, else `scope` split on spaces; scopes ← `scp`, else `scope`;
//! client id ← `client_id`, `azp` or `appid`; service account ← `sub ==
//! client id` or `idtyp == "app"`; display name ← `name`; token expiry ← `exp`.
//! Claims that are lists may also come as one space-separated string.

use super::config::PassportConfig;
use super::jwks::{JwksCache, VerifyError};
use super::keys::{numeric_claim, Expectations, DEFAULT_LEEWAY_SECS};
use crate::clock::Clock;
use crate::identity::IdInfo;
use crate::secret::Secret;
use serde_json::{Map, Value};
use std::sync::Arc;

pub struct IdInfoVerifier {
    jwks: Arc<JwksCache>,
    issuer: String,
    audience: String,
    tenant_claim: String,
    leeway_secs: u64,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for IdInfoVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdInfoVerifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("jwks", &self.jwks)
            .finish_non_exhaustive()
    }
}

impl IdInfoVerifier {
    pub fn new(jwks: Arc<JwksCache>, issuer: impl Into<String>, audience: impl Into<String>, clock: Arc<dyn Clock>) -> IdInfoVerifier {
        IdInfoVerifier {
            jwks,
            issuer: issuer.into(),
            audience: audience.into(),
            tenant_claim: "tid".into(),
            leeway_secs: DEFAULT_LEEWAY_SECS,
            clock,
        }
    }

    /// A verifier for the passport a configuration names, with its own key cache.
    pub fn from_config(config: &PassportConfig, clock: Arc<dyn Clock>) -> Result<IdInfoVerifier, VerifyError> {
        let jwks = Arc::new(JwksCache::new(config.jwks_url(), config.jwks.clone(), config.timeout(), clock.clone())?);
        Ok(IdInfoVerifier::new(jwks, config.issuer(), config.audience.clone(), clock).with_tenant_claim(config.tenant_claim.clone()))
    }

    pub fn with_tenant_claim(mut self, claim: impl Into<String>) -> Self {
        self.tenant_claim = claim.into();
        self
    }

    /// The audience expected of tokens minted without a grant audience.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    pub fn jwks(&self) -> &Arc<JwksCache> {
        &self.jwks
    }

    /// Verify a token and map its claims. A token minted for a grant's
    /// audience may carry that audience instead of the configured one.
    pub async fn verify(&self, token: &Secret, requested_audience: Option<&str>) -> Result<IdInfo, VerifyError> {
        let mut audiences = vec![self.audience.as_str()];
        audiences.extend(requested_audience.filter(|a| *a != self.audience));
        let now = self.clock.now().timestamp().max(0) as u64;
        let expect = Expectations { issuer: &self.issuer, audiences: &audiences, now, leeway_secs: self.leeway_secs };
        let claims = self.jwks.verify(token.expose(), &expect).await?;
        Ok(id_info_from_claims(&claims, &self.tenant_claim)?)
    }
}

/// Map verified claims to an `IdInfo` (without the managed identity id, which the caller knows).
pub fn id_info_from_claims(claims: &Map<String, Value>, tenant_claim: &str) -> Result<IdInfo, super::keys::JwtError> {
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_string);
    let user_id = text("sub").unwrap_or_default();
    let client_id = ["client_id", "azp", "appid"].iter().find_map(|c| text(c)).unwrap_or_default();
    let scope = list(claims.get("scope"));
    let roles = match claims.get("roles") {
        Some(r) => list(Some(r)),
        None => scope.clone(),
    };
    let scopes = if claims.contains_key("scp") { list(claims.get("scp")) } else { scope };
    let is_service_account = (!client_id.is_empty() && user_id == client_id) || text("idtyp").as_deref() == Some("app");
    Ok(IdInfo {
        user_id,
        tenant_id: text(tenant_claim).unwrap_or_default(),
        client_id,
        display_name: text("name").unwrap_or_default(),
        roles,
        scopes,
        is_service_account,
        managed_identity_id: None,
        token_expires_at: numeric_claim(claims, "exp")?.unwrap_or_default(),
    })
}

/// A claim that is an array of strings or one space-separated string.
fn list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    #[test]
    fn claims_map_to_id_info() {
        let claims = map(json!({
            "sub": "app-1", "client_id": "app-1", "tid": "t-9", "name": "Payroll",
            "roles": ["workflow.execute"], "scope": "api.read api.write", "exp": 1_900_000_000u64,
        }));
        let info = id_info_from_claims(&claims, "tid").expect("maps");
        assert_eq!(info.user_id, "app-1");
        assert_eq!(info.tenant_id, "t-9");
        assert_eq!(info.client_id, "app-1");
        assert_eq!(info.display_name, "Payroll");
        assert_eq!(info.roles, ["workflow.execute"]);
        assert_eq!(info.scopes, ["api.read", "api.write"]);
        assert!(info.is_service_account);
        assert_eq!(info.token_expires_at, 1_900_000_000);
    }

    #[test]
    fn fallbacks_apply() {
        let claims = map(json!({"sub": "u-1", "azp": "web", "scope": "a b", "scp": "x", "org": "o-1", "exp": 5}));
        let info = id_info_from_claims(&claims, "org").expect("maps");
        assert_eq!(info.roles, ["a", "b"], "roles fall back to scope");
        assert_eq!(info.scopes, ["x"], "scp wins for scopes");
        assert_eq!(info.client_id, "web");
        assert_eq!(info.tenant_id, "o-1");
        assert!(!info.is_service_account);
        let app = map(json!({"sub": "oid-7", "appid": "c-1", "idtyp": "app", "roles": "r1 r2", "exp": 5}));
        let info = id_info_from_claims(&app, "tid").expect("maps");
        assert!(info.is_service_account);
        assert_eq!(info.roles, ["r1", "r2"]);
        assert_eq!(info.client_id, "c-1");
    }
}

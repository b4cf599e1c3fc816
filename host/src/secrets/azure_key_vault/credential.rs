//! The host's own Entra token for Key Vault: client credentials
//! (`POST {authority}/{tenant}/oauth2/v2.0/token`, scope `{resource}/.default`)
//! or the machine's managed identity through IMDS. Tokens are cached per
//! (tenant, resource) and renewed ahead of expiry; one fetch at a time.

use super::challenge::Challenge;
use crate::clock::Clock;
use crate::secret::Secret;
use crate::secrets::http::{self, Answer};
use crate::secrets::SecretError;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug)]
pub(crate) enum Credential {
    ClientSecret { authority: url::Url, tenant: Option<String>, client_id: String, client_secret: Secret },
    ManagedIdentity { endpoint: url::Url, client_id: Option<String> },
}

#[derive(Debug, Clone)]
struct Cached {
    token: Secret,
    renew_at: DateTime<Utc>,
}

pub(crate) struct HostTokens {
    credential: Credential,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    cache: tokio::sync::Mutex<HashMap<(String, String), Cached>>,
}

#[derive(serde::Deserialize)]
struct TokenAnswer {
    access_token: Secret,
    /// Entra sends a number, IMDS a string.
    expires_in: serde_json::Value,
}

impl HostTokens {
    pub fn new(credential: Credential, client: reqwest::Client, clock: Arc<dyn Clock>) -> HostTokens {
        HostTokens { credential, client, clock, cache: tokio::sync::Mutex::new(HashMap::new()) }
    }

    /// A token for what `challenge` asks, from the cache while it is not near expiry.
    pub async fn token(&self, challenge: &Challenge, named: &str) -> Result<Secret, SecretError> {
        let key = self.cache_key(challenge);
        let mut cache = self.cache.lock().await;
        let now = self.clock.now();
        if let Some(cached) = cache.get(&key).filter(|c| now < c.renew_at) {
            return Ok(cached.token.clone());
        }
        let (token, lifetime) = self.fetch(challenge, named).await?;
        // Renew 5 minutes ahead (as azure-identity does), or halfway for short-lived tokens.
        let margin = (lifetime / 2).min(chrono::Duration::minutes(5));
        cache.insert(key, Cached { token: token.clone(), renew_at: self.clock.now() + lifetime - margin });
        Ok(token)
    }

    /// Drop the cached token for `challenge`: the vault refused it.
    pub async fn forget(&self, challenge: &Challenge) {
        let key = self.cache_key(challenge);
        self.cache.lock().await.remove(&key);
    }

    fn cache_key(&self, challenge: &Challenge) -> (String, String) {
        (self.tenant(challenge).unwrap_or_default(), challenge.resource.clone())
    }

    fn tenant(&self, challenge: &Challenge) -> Option<String> {
        match &self.credential {
            Credential::ClientSecret { tenant: Some(tenant), .. } => Some(tenant.clone()),
            _ => challenge.tenant.clone(),
        }
    }

    async fn fetch(&self, challenge: &Challenge, named: &str) -> Result<(Secret, chrono::Duration), SecretError> {
        let (url, request, what) = match &self.credential {
            Credential::ClientSecret { authority, client_id, client_secret, .. } => {
                // The tenant comes from the config, else from the vault's challenge; the authority is always ours.
                let tenant = self.tenant(challenge).ok_or_else(|| SecretError::NotConfigured {
                    provider: "azure-key-vault".into(),
                    reason: "no `tenant-id` in [secrets.azure-key-vault] and the vault's challenge names none".into(),
                })?;
                let url = http::join_segments(authority, &[&tenant, "oauth2", "v2.0", "token"]).map_err(|reason| SecretError::NotConfigured { provider: "azure-key-vault".into(), reason })?;
                let form = [
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id.as_str()),
                    ("client_secret", client_secret.expose()),
                    ("scope", &challenge.scope()),
                ];
                let request = self.client.post(url.clone()).form(&form);
                (url.clone(), request, format!("Entra token endpoint {}", url.origin().ascii_serialization()))
            }
            Credential::ManagedIdentity { endpoint, client_id } => {
                let mut url = http::join_segments(endpoint, &["metadata", "identity", "oauth2", "token"]).map_err(|reason| SecretError::NotConfigured { provider: "azure-key-vault".into(), reason })?;
                {
                    let mut query = url.query_pairs_mut();
                    query.append_pair("api-version", "2018-02-01").append_pair("resource", &challenge.resource);
                    if let Some(id) = client_id {
                        query.append_pair("client_id", id);
                    }
                }
                let request = self.client.get(url.clone()).header("Metadata", "true");
                (url.clone(), request, format!("managed identity endpoint {}", url.origin().ascii_serialization()))
            }
        };
        let answer = http::send(request, &what).await.map_err(|e| match e {
            SecretError::Unavailable { reason, .. } => SecretError::Unavailable { reference: named.to_string(), reason: format!("{what}: {reason}") },
            other => other,
        })?;
        if answer.is_redirect() {
            return Err(http::redirect_error(named, &url, &answer));
        }
        if answer.status != 200 {
            return Err(token_error(named, &what, &answer));
        }
        let parsed: TokenAnswer = answer.json().ok_or_else(|| SecretError::Invalid { reference: named.to_string(), reason: format!("{what} answered without `access_token` and `expires_in`") })?;
        let seconds = match &parsed.expires_in {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
        .ok_or_else(|| SecretError::Invalid { reference: named.to_string(), reason: format!("{what} answered an unreadable `expires_in`") })?;
        Ok((parsed.access_token, chrono::Duration::seconds(seconds.min(86_400 * 7) as i64)))
    }
}

impl std::fmt::Debug for HostTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostTokens").field("credential", &self.credential).finish_non_exhaustive()
    }
}

/// An OAuth error answer: `{error, error_description}`.
fn token_error(named: &str, what: &str, answer: &Answer) -> SecretError {
    #[derive(serde::Deserialize)]
    struct OAuthError {
        error: Option<String>,
        error_description: Option<String>,
    }
    let detail = answer
        .json::<OAuthError>()
        .map(|e| match (e.error, e.error_description) {
            (Some(code), Some(text)) => format!("{code}: {}", http::short(&text)),
            (Some(code), None) => code,
            (None, Some(text)) => http::short(&text),
            (None, None) => "no error message".into(),
        })
        .unwrap_or_else(|| "no error message".into());
    let reason = format!("{what} refused the host's token request ({}): {detail}", answer.status);
    let reference = named.to_string();
    match answer.status {
        400 | 401 | 403 => SecretError::AccessDenied { reference, reason },
        // IMDS answers 410 while it is being updated.
        410 => SecretError::Unavailable { reference, reason },
        s if http::is_transient_status(s) => SecretError::Unavailable { reference, reason },
        _ => SecretError::Invalid { reference, reason },
    }
}

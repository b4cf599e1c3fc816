//! The `azure-key-vault` provider: `GET {vaultUri}secrets/{name}[/{version}]?api-version=7.6`,
//! answer `{value, id, attributes}`, the version being the last segment of `id`.
//!
//! Authentication follows Key Vault's challenge flow: the first request to a
//! vault goes without a token; its 401 `WWW-Authenticate` names the resource
//! (and tenant) to get a token for. A challenge whose resource is not the
//! vault's own domain is refused before any token is requested. The accepted
//! challenge is remembered per vault, so later reads send the cached token
//! straight away; a 401 to a token drops it and fetches a new one, once.

mod challenge;
mod credential;

use super::config::{self, AzureKeyVaultConfig};
use super::http::{self, Answer};
use super::{Freshness, SecretError, SecretReference, SecretValue, SecretsProvider};
use crate::clock::Clock;
use challenge::Challenge;
use credential::{Credential, HostTokens};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PROVIDER: &str = "azure-key-vault";

pub struct AzureKeyVaultProvider {
    settings: Result<Settings, String>,
    /// Accepted challenges by vault origin.
    challenges: Mutex<HashMap<String, Challenge>>,
}

struct Settings {
    api_version: String,
    client: reqwest::Client,
    tokens: HostTokens,
}

impl AzureKeyVaultProvider {
    pub fn new(config: Option<&AzureKeyVaultConfig>, clock: Arc<dyn Clock>) -> AzureKeyVaultProvider {
        AzureKeyVaultProvider { settings: Settings::from_config(config, clock), challenges: Mutex::new(HashMap::new()) }
    }

    async fn read_now(&self, reference: &SecretReference) -> Result<SecretValue, SecretError> {
        let SecretReference::AzureKeyVault { vault_uri, secret_name, version } = reference else {
            return Err(SecretError::NotConfigured { provider: PROVIDER.into(), reason: format!("asked to read {reference}") });
        };
        let named = reference.to_string();
        let settings = self.settings.as_ref().map_err(|reason| SecretError::NotConfigured { provider: PROVIDER.into(), reason: reason.clone() })?;
        let invalid = |reason: String| SecretError::Invalid { reference: named.clone(), reason };
        let vault = url::Url::parse(vault_uri).map_err(|e| invalid(format!("vaultUri: {e}")))?;
        let mut segments = vec!["secrets", secret_name.as_str()];
        segments.extend(version.as_deref());
        let mut url = http::join_segments(&vault, &segments).map_err(invalid)?;
        url.query_pairs_mut().append_pair("api-version", &settings.api_version);
        let origin = vault.origin().ascii_serialization();

        let known = self.challenges.lock().ok().and_then(|c| c.get(&origin).cloned());
        let mut answer = match &known {
            Some(challenge) => {
                let token = settings.tokens.token(challenge, &named).await?;
                http::send(settings.client.get(url.clone()).bearer_auth(token.expose()), &named).await?
            }
            None => http::send(settings.client.get(url.clone()), &named).await?,
        };
        if answer.status == 401 {
            let challenge = accept_challenge(&named, &vault, &answer)?;
            if let Some(old) = &known {
                // The token we sent was refused: never offer it again.
                settings.tokens.forget(old).await;
            }
            if let Ok(mut challenges) = self.challenges.lock() {
                challenges.insert(origin.clone(), challenge.clone());
            }
            let token = settings.tokens.token(&challenge, &named).await?;
            answer = http::send(settings.client.get(url.clone()).bearer_auth(token.expose()), &named).await?;
            if answer.status == 401 {
                settings.tokens.forget(&challenge).await;
            }
        }
        read_answer(&named, &url, &answer)
    }
}

/// The challenge of a 401, if it is one we may answer.
fn accept_challenge(named: &str, vault: &url::Url, answer: &Answer) -> Result<Challenge, SecretError> {
    let header = answer.header("www-authenticate").unwrap_or_default();
    let challenge = challenge::parse(header).ok_or_else(|| SecretError::AccessDenied {
        reference: named.to_string(),
        reason: "the vault answered 401 without a Bearer challenge naming a resource".into(),
    })?;
    if !challenge::matches_vault(&challenge.resource, vault) {
        return Err(SecretError::Invalid {
            reference: named.to_string(),
            reason: format!(
                "the vault's challenge asks for a token for `{}`, which is not the vault's domain `{}`; refused, no token was requested",
                challenge.resource,
                vault.host_str().unwrap_or_default()
            ),
        });
    }
    Ok(challenge)
}

fn read_answer(named: &str, url: &url::Url, answer: &Answer) -> Result<SecretValue, SecretError> {
    let reference = named.to_string();
    if answer.is_redirect() {
        return Err(http::redirect_error(named, url, answer));
    }
    if answer.status != 200 {
        return Err(classify_error(reference, answer));
    }
    #[derive(serde::Deserialize)]
    struct Bundle {
        value: Option<crate::secret::Secret>,
        id: Option<String>,
        #[serde(default)]
        attributes: Attributes,
    }
    #[derive(serde::Deserialize, Default)]
    struct Attributes {
        enabled: Option<bool>,
    }
    let bundle: Bundle = answer.json().ok_or_else(|| SecretError::Invalid { reference: reference.clone(), reason: "the answer is not a secret bundle".into() })?;
    if bundle.attributes.enabled == Some(false) {
        return Err(SecretError::Disabled { reference });
    }
    let value = bundle.value.filter(|v| !v.expose().is_empty()).ok_or_else(|| SecretError::Invalid { reference: reference.clone(), reason: "the secret bundle has no `value`".into() })?;
    let version = bundle.id.as_deref().and_then(|id| id.trim_end_matches('/').rsplit('/').next()).filter(|v| !v.is_empty()).map(str::to_string);
    Ok(SecretValue { value, version })
}

/// `{"error": {"code", "message", "innererror": {"code"}}}` by status and code.
fn classify_error(reference: String, answer: &Answer) -> SecretError {
    let body = answer.json::<serde_json::Value>().unwrap_or_default();
    let error = &body["error"];
    let code = error["code"].as_str().unwrap_or_default();
    let inner = error["innererror"]["code"].as_str().unwrap_or_default();
    let message = error["message"].as_str().map(http::short).unwrap_or_default();
    let reason = match (code, inner) {
        ("", _) => format!("vault answered {}", answer.status),
        (code, "") => format!("{code}: {message}"),
        (code, inner) => format!("{code} ({inner}): {message}"),
    };
    if code == "SecretDisabled" || inner == "SecretDisabled" {
        return SecretError::Disabled { reference };
    }
    match answer.status {
        401 => SecretError::AccessDenied { reference, reason: format!("the vault refused the host's token: {reason}") },
        403 => SecretError::AccessDenied { reference, reason },
        404 => SecretError::NotFound { reference },
        s if http::is_transient_status(s) => SecretError::Unavailable { reference, reason },
        _ => SecretError::Invalid { reference, reason },
    }
}

impl Settings {
    fn from_config(config: Option<&AzureKeyVaultConfig>, clock: Arc<dyn Clock>) -> Result<Settings, String> {
        let config = config.ok_or("no [secrets.azure-key-vault] section: add `client-id` + `client-secret` (and `tenant-id`), or `managed-identity = true`")?;
        let credential = match (&config.client_id, &config.client_secret, config.managed_identity) {
            (Some(client_id), Some(client_secret), false) => Credential::ClientSecret {
                authority: config::endpoint(&config.authority).map_err(|m| format!("authority: {m}"))?,
                tenant: config.tenant_id.clone(),
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
            },
            (None, None, true) => Credential::ManagedIdentity {
                // IMDS is plain http on a link-local address by design; only the config can point there.
                endpoint: url::Url::parse(&config.imds_endpoint).map_err(|e| format!("imds-endpoint: {e}"))?,
                client_id: config.managed_identity_client_id.clone(),
            },
            _ => return Err("[secrets.azure-key-vault] needs exactly one of `client-id` + `client-secret`, or `managed-identity = true`".into()),
        };
        let client = http::client(PROVIDER, Duration::from_secs(config.timeout_seconds)).map_err(|e| e.to_string())?;
        Ok(Settings { api_version: config.api_version.clone(), tokens: HostTokens::new(credential, client.clone(), clock), client })
    }
}

impl SecretsProvider for AzureKeyVaultProvider {
    fn read<'a>(&'a self, reference: &'a SecretReference, _freshness: Freshness) -> BoxFuture<'a, Result<SecretValue, SecretError>> {
        Box::pin(self.read_now(reference))
    }
}

impl std::fmt::Debug for AzureKeyVaultProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let settings = self.settings.as_ref().map(|s| &s.tokens);
        f.debug_struct("AzureKeyVaultProvider").field("settings", &settings).finish_non_exhaustive()
    }
}

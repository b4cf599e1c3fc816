//! The `hashicorp-vault` provider: KV v2 reads
//! (`GET {address}/v1/{mount}/data/{path}`, value at `data.data.<key>`,
//! version `data.metadata.version`) with the host's token or an AppRole login.
//!
//! The host's Vault credential goes only to the addresses listed in the config:
//! the address in a reference is user input. AppRole tokens are cached for
//! their lease per (address, namespace) and a 403 triggers one fresh login.

use super::config::{self, HashicorpVaultConfig};
use super::http::{self, Answer};
use super::{Freshness, SecretError, SecretReference, SecretValue, SecretsProvider};
use crate::clock::Clock;
use crate::secret::Secret;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const PROVIDER: &str = "hashicorp-vault";

#[derive(Debug)]
enum Auth {
    Token(Secret),
    AppRole { mount: String, role_id: String, secret_id: Secret },
}

#[derive(Debug, Clone)]
struct LoginToken {
    token: Secret,
    /// `None`: the token does not expire.
    renew_at: Option<DateTime<Utc>>,
}

pub struct HashicorpVaultProvider {
    settings: Result<Settings, String>,
    clock: Arc<dyn Clock>,
    /// AppRole tokens by (address, namespace); one login at a time.
    logins: tokio::sync::Mutex<HashMap<(String, Option<String>), LoginToken>>,
}

#[derive(Debug)]
struct Settings {
    addresses: Vec<url::Url>,
    auth: Auth,
    client: reqwest::Client,
}

impl HashicorpVaultProvider {
    pub fn new(config: Option<&HashicorpVaultConfig>, clock: Arc<dyn Clock>) -> HashicorpVaultProvider {
        HashicorpVaultProvider { settings: Settings::from_config(config), clock, logins: tokio::sync::Mutex::new(HashMap::new()) }
    }

    async fn read_now(&self, reference: &SecretReference) -> Result<SecretValue, SecretError> {
        let SecretReference::HashicorpVault { address, mount, path, key, namespace } = reference else {
            return Err(SecretError::NotConfigured { provider: PROVIDER.into(), reason: format!("asked to read {reference}") });
        };
        let named = reference.to_string();
        let settings = self.settings.as_ref().map_err(|reason| SecretError::NotConfigured { provider: PROVIDER.into(), reason: reason.clone() })?;
        let base = settings.allowed(address).ok_or_else(|| SecretError::NotConfigured {
            provider: PROVIDER.into(),
            reason: format!("`{address}` is not one of [secrets.hashicorp-vault] addresses; the host sends its Vault credential only there"),
        })?;
        let mut segments = vec!["v1"];
        segments.extend(mount.split('/').filter(|s| !s.is_empty()));
        segments.push("data");
        segments.extend(path.split('/').filter(|s| !s.is_empty()));
        let url = http::join_segments(&base, &segments).map_err(|reason| SecretError::Invalid { reference: named.clone(), reason })?;
        let login_key = (base.to_string(), namespace.clone());

        let mut fresh_login = false;
        loop {
            let token = self.token(settings, &base, namespace.as_deref(), &login_key, &named).await?;
            let mut request = settings.client.get(url.clone()).header("X-Vault-Token", token.expose());
            if let Some(ns) = namespace {
                request = request.header("X-Vault-Namespace", ns.as_str());
            }
            let answer = http::send(request, &named).await?;
            // A 403 with an AppRole token may mean it was revoked or outlived its lease: log in again, once.
            if answer.status == 403 && matches!(settings.auth, Auth::AppRole { .. }) && !fresh_login {
                self.logins.lock().await.remove(&login_key);
                fresh_login = true;
                continue;
            }
            return read_answer(&named, &url, key, &answer);
        }
    }

    /// The token to send: the configured one, or a cached/new AppRole login.
    async fn token(&self, settings: &Settings, base: &url::Url, namespace: Option<&str>, login_key: &(String, Option<String>), named: &str) -> Result<Secret, SecretError> {
        let (mount, role_id, secret_id) = match &settings.auth {
            Auth::Token(token) => return Ok(token.clone()),
            Auth::AppRole { mount, role_id, secret_id } => (mount, role_id, secret_id),
        };
        let mut logins = self.logins.lock().await;
        let now = self.clock.now();
        if let Some(login) = logins.get(login_key).filter(|l| l.renew_at.is_none_or(|at| now < at)) {
            return Ok(login.token.clone());
        }
        let mut segments = vec!["v1", "auth"];
        segments.extend(mount.split('/'));
        segments.push("login");
        let url = http::join_segments(base, &segments).map_err(|reason| SecretError::Invalid { reference: named.to_string(), reason })?;
        let body = serde_json::json!({ "role_id": role_id, "secret_id": secret_id.expose() });
        let mut request = settings.client.post(url.clone()).json(&body);
        if let Some(ns) = namespace {
            request = request.header("X-Vault-Namespace", ns);
        }
        let what = format!("AppRole login at {}", url.origin().ascii_serialization());
        let answer = http::send(request, &what).await?;
        if answer.is_redirect() {
            return Err(http::redirect_error(named, &url, &answer));
        }
        if answer.status != 200 {
            let reason = format!("AppRole login failed ({}): {}", answer.status, vault_errors(&answer));
            return Err(match answer.status {
                400 | 401 | 403 => SecretError::AccessDenied { reference: named.to_string(), reason },
                s if http::is_transient_status(s) => SecretError::Unavailable { reference: named.to_string(), reason },
                _ => SecretError::Invalid { reference: named.to_string(), reason },
            });
        }
        #[derive(serde::Deserialize)]
        struct LoginAnswer {
            auth: LoginAuth,
        }
        #[derive(serde::Deserialize)]
        struct LoginAuth {
            client_token: Secret,
            #[serde(default)]
            lease_duration: u64,
        }
        let login: LoginAnswer = answer.json().ok_or_else(|| SecretError::Invalid { reference: named.to_string(), reason: "the AppRole login answer has no `auth.client_token`".into() })?;
        // Renew at 90% of the lease: a read must not race the token's expiry.
        let renew_at = (login.auth.lease_duration > 0).then(|| now + chrono::Duration::milliseconds((login.auth.lease_duration * 900) as i64));
        let token = login.auth.client_token;
        logins.insert(login_key.clone(), LoginToken { token: token.clone(), renew_at });
        Ok(token)
    }
}

impl Settings {
    fn from_config(config: Option<&HashicorpVaultConfig>) -> Result<Settings, String> {
        let config = config.ok_or("no [secrets.hashicorp-vault] section: add `addresses` and a `token` or `role-id` + `secret-id`")?;
        let addresses = config
            .addresses
            .iter()
            .map(|a| config::endpoint(a).map_err(|m| format!("addresses: {m}")))
            .collect::<Result<Vec<_>, _>>()?;
        if addresses.is_empty() {
            return Err("[secrets.hashicorp-vault] addresses is empty".into());
        }
        let auth = match (&config.token, &config.role_id, &config.secret_id) {
            (Some(token), None, None) => Auth::Token(token.clone()),
            (None, Some(role_id), Some(secret_id)) => Auth::AppRole { mount: config.approle_mount.clone(), role_id: role_id.clone(), secret_id: secret_id.clone() },
            _ => return Err("[secrets.hashicorp-vault] needs exactly one of `token`, or `role-id` + `secret-id`".into()),
        };
        let client = http::client(PROVIDER, Duration::from_secs(config.timeout_seconds)).map_err(|e| e.to_string())?;
        Ok(Settings { addresses, auth, client })
    }

    /// The configured address the reference names (compared as origin + path), if any.
    fn allowed(&self, address: &str) -> Option<url::Url> {
        let wanted = url::Url::parse(address).ok()?;
        let trimmed = |u: &url::Url| format!("{}{}", u.origin().ascii_serialization(), u.path().trim_end_matches('/'));
        self.addresses.iter().find(|a| trimmed(a) == trimmed(&wanted)).cloned()
    }
}

impl SecretsProvider for HashicorpVaultProvider {
    fn read<'a>(&'a self, reference: &'a SecretReference, _freshness: Freshness) -> BoxFuture<'a, Result<SecretValue, SecretError>> {
        Box::pin(self.read_now(reference))
    }
}

impl std::fmt::Debug for HashicorpVaultProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashicorpVaultProvider").field("settings", &self.settings).finish_non_exhaustive()
    }
}

fn read_answer(named: &str, url: &url::Url, key: &str, answer: &Answer) -> Result<SecretValue, SecretError> {
    let reference = named.to_string();
    match answer.status {
        200 => {}
        s if (300..400).contains(&s) => return Err(http::redirect_error(named, url, answer)),
        403 => return Err(SecretError::AccessDenied { reference, reason: format!("vault answered 403: {}", vault_errors(answer)) }),
        404 => return Err(SecretError::NotFound { reference }),
        s if http::is_transient_status(s) => return Err(SecretError::Unavailable { reference, reason: format!("vault answered {s}: {}", vault_errors(answer)) }),
        s => return Err(SecretError::Invalid { reference, reason: format!("vault answered {s}: {}", vault_errors(answer)) }),
    }
    #[derive(serde::Deserialize)]
    struct ReadAnswer {
        data: ReadData,
    }
    #[derive(serde::Deserialize)]
    struct ReadData {
        data: Option<HashMap<String, KvValue>>,
        metadata: Option<Metadata>,
    }
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum KvValue {
        Text(Secret),
        Other(serde::de::IgnoredAny),
    }
    #[derive(serde::Deserialize)]
    struct Metadata {
        version: Option<u64>,
    }
    let parsed: ReadAnswer = answer
        .json()
        .ok_or_else(|| SecretError::Invalid { reference: reference.clone(), reason: "the answer is not a KV v2 read (is the mount KV version 2?)".into() })?;
    let version = parsed.data.metadata.and_then(|m| m.version).map(|v| v.to_string());
    let mut data = parsed.data.data.ok_or_else(|| SecretError::NotFound { reference: reference.clone() })?;
    match data.remove(key) {
        Some(KvValue::Text(value)) if !value.expose().is_empty() => Ok(SecretValue { value, version }),
        Some(KvValue::Text(_)) => Err(SecretError::Invalid { reference, reason: format!("key `{key}` is empty") }),
        Some(KvValue::Other(_)) => Err(SecretError::Invalid { reference, reason: format!("key `{key}` does not hold a string") }),
        None => Err(SecretError::NotFound { reference }),
    }
}

/// Vault's `{"errors": [...]}`, joined and shortened.
fn vault_errors(answer: &Answer) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<String>,
    }
    let errors = answer.json::<Errors>().map(|e| e.errors.join("; ")).unwrap_or_default();
    if errors.is_empty() {
        "no error message".into()
    } else {
        http::short(&errors)
    }
}

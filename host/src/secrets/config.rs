//! The host's own settings for its secret stores: the `[secrets.*]` sections
//! of the config file (endpoints, the host's credentials for each store, the
//! cache). Credential fields deserialize straight into [`Secret`].
//!
//! Every section is optional; a provider without its section answers
//! `NotConfigured` naming what to add. `env` and `file` are development
//! providers and are off unless their section says what they may read.

use crate::secret::Secret;
use crate::validation::FieldError;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SecretsConfig {
    pub azure_key_vault: Option<AzureKeyVaultConfig>,
    pub aws_secrets_manager: Option<AwsSecretsManagerConfig>,
    pub hashicorp_vault: Option<HashicorpVaultConfig>,
    pub env: Option<EnvConfig>,
    pub file: Option<FileConfig>,
    #[serde(default)]
    pub cache: CacheConfig,
}

/// How the host authenticates to Key Vault: Entra client credentials
/// (`client-id` + `client-secret`) or the machine's managed identity via IMDS
/// (`managed-identity = true`), exactly one of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AzureKeyVaultConfig {
    /// The Entra tenant; when absent, the tenant named by the vault's challenge.
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    #[serde(default = "default_authority")]
    pub authority: String,
    #[serde(default)]
    pub managed_identity: bool,
    /// A user-assigned managed identity; absent = the system-assigned one.
    pub managed_identity_client_id: Option<String>,
    #[serde(default = "default_imds")]
    pub imds_endpoint: String,
    #[serde(default = "default_api_version")]
    pub api_version: String,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

/// The host's AWS credentials; absent fields fall back to `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AwsSecretsManagerConfig {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    pub session_token: Option<Secret>,
    /// Instead of `https://secretsmanager.{region}.amazonaws.com` (tests, VPC endpoints).
    pub endpoint: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

/// The host's Vault credential (a token, or an AppRole) and the Vault servers
/// it may send that credential to: a reference naming any other address is refused.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HashicorpVaultConfig {
    pub addresses: Vec<String>,
    pub token: Option<Secret>,
    pub role_id: Option<String>,
    pub secret_id: Option<Secret>,
    #[serde(default = "default_approle_mount")]
    pub approle_mount: String,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

/// Which environment variables the `env` provider may read: names, or
/// prefixes ending in `*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EnvConfig {
    pub allow: Vec<String>,
}

/// The folder the `file` provider may read from; relative paths are inside it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    pub root: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CacheConfig {
    /// How long a read value is served without asking the store; 0 turns the cache off.
    #[serde(default = "default_ttl")]
    pub ttl_seconds: u64,
    /// How old a value may be and still be served while its store is unavailable.
    #[serde(default = "default_max_stale")]
    pub max_stale_seconds: u64,
}

impl Default for AwsSecretsManagerConfig {
    fn default() -> Self {
        AwsSecretsManagerConfig { access_key_id: None, secret_access_key: None, session_token: None, endpoint: None, timeout_seconds: default_timeout() }
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { ttl_seconds: default_ttl(), max_stale_seconds: default_max_stale() }
    }
}

fn default_authority() -> String {
    "https://login.microsoftonline.com".into()
}
fn default_imds() -> String {
    "http://169.254.169.254".into()
}
fn default_api_version() -> String {
    "7.6".into()
}
fn default_timeout() -> u64 {
    10
}
fn default_approle_mount() -> String {
    "approle".into()
}
fn default_ttl() -> u64 {
    300
}
fn default_max_stale() -> u64 {
    3600
}

impl SecretsConfig {
    /// Read the `[secrets]` table of a config document (other tables are not
    /// ours and are ignored), then validate it.
    pub fn from_toml(document: &str) -> Result<SecretsConfig, Vec<FieldError>> {
        let table: toml::Table = toml::from_str(document).map_err(|e| vec![FieldError::new("", format!("not valid TOML: {}", e.message()))])?;
        let Some(secrets) = table.get("secrets") else { return Ok(SecretsConfig::default()) };
        let Some(sections) = secrets.as_table() else { return Err(vec![FieldError::new("secrets", "must be a table of provider sections")]) };
        // Section by section, so an error names the section it is in.
        let mut errors = Vec::new();
        let known = ["azure-key-vault", "aws-secrets-manager", "hashicorp-vault", "env", "file", "cache"];
        for name in sections.keys().filter(|k| !known.contains(&k.as_str())) {
            errors.push(FieldError::new(format!("secrets.{name}"), format!("is not a secrets section; one of {}", known.join(", "))));
        }
        let config = SecretsConfig {
            azure_key_vault: section(sections, "azure-key-vault", &mut errors),
            aws_secrets_manager: section(sections, "aws-secrets-manager", &mut errors),
            hashicorp_vault: section(sections, "hashicorp-vault", &mut errors),
            env: section(sections, "env", &mut errors),
            file: section(sections, "file", &mut errors),
            cache: section(sections, "cache", &mut errors).unwrap_or_default(),
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        config.validate()?;
        Ok(config)
    }

    /// Check what serde cannot: credentials that must come in pairs, URLs,
    /// limits. Field paths are as written in the file (`secrets.azure-key-vault.client-id`).
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if let Some(azure) = &self.azure_key_vault {
            azure.check(&mut errors);
        }
        if let Some(aws) = &self.aws_secrets_manager {
            aws.check(&mut errors);
        }
        if let Some(vault) = &self.hashicorp_vault {
            vault.check(&mut errors);
        }
        if let Some(env) = &self.env {
            if env.allow.is_empty() || env.allow.iter().any(|p| p.trim().is_empty()) {
                errors.push(FieldError::new("secrets.env.allow", "must list at least one variable name or prefix (`APP_*`), none empty"));
            }
        }
        if let Some(file) = &self.file {
            if file.root.as_os_str().is_empty() {
                errors.push(FieldError::new("secrets.file.root", "must not be empty"));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

impl AzureKeyVaultConfig {
    fn check(&self, errors: &mut Vec<FieldError>) {
        let field = |name: &str| format!("secrets.azure-key-vault.{name}");
        let secret = self.client_id.is_some() || self.client_secret.is_some();
        match (secret, self.managed_identity) {
            (true, true) => errors.push(FieldError::new(field("managed-identity"), "choose one: `client-id` + `client-secret`, or `managed-identity = true`")),
            (false, false) => errors.push(FieldError::new(field("client-id"), "set `client-id` and `client-secret` (Entra client credentials) or `managed-identity = true` (IMDS)")),
            (true, false) => {
                if self.client_id.as_deref().is_none_or(|c| c.trim().is_empty()) {
                    errors.push(FieldError::new(field("client-id"), "is required with `client-secret`"));
                }
                if self.client_secret.as_ref().is_none_or(|s| s.expose().is_empty()) {
                    errors.push(FieldError::new(field("client-secret"), "is required with `client-id`"));
                }
                if let Err(message) = endpoint(&self.authority) {
                    errors.push(FieldError::new(field("authority"), message));
                }
            }
            (false, true) => {
                if let Err(message) = url::Url::parse(&self.imds_endpoint).map_err(|e| e.to_string()).and_then(|u| plain_origin(&u)) {
                    errors.push(FieldError::new(field("imds-endpoint"), message));
                }
            }
        }
        if let Some(tenant) = &self.tenant_id {
            if tenant.is_empty() || !tenant.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
                errors.push(FieldError::new(field("tenant-id"), "must be a tenant id or domain (letters, digits, `-`, `.`)"));
            }
        }
        if self.api_version.trim().is_empty() {
            errors.push(FieldError::new(field("api-version"), "must not be empty"));
        }
        timeout(errors, &field("timeout-seconds"), self.timeout_seconds);
    }
}

impl AwsSecretsManagerConfig {
    fn check(&self, errors: &mut Vec<FieldError>) {
        let field = |name: &str| format!("secrets.aws-secrets-manager.{name}");
        if self.access_key_id.is_some() != self.secret_access_key.is_some() {
            errors.push(FieldError::new(field("secret-access-key"), "`access-key-id` and `secret-access-key` go together"));
        }
        if self.session_token.is_some() && self.access_key_id.is_none() {
            errors.push(FieldError::new(field("session-token"), "needs `access-key-id` and `secret-access-key`"));
        }
        if let Some(url) = &self.endpoint {
            if let Err(message) = endpoint(url) {
                errors.push(FieldError::new(field("endpoint"), message));
            }
        }
        timeout(errors, &field("timeout-seconds"), self.timeout_seconds);
    }
}

impl HashicorpVaultConfig {
    fn check(&self, errors: &mut Vec<FieldError>) {
        let field = |name: &str| format!("secrets.hashicorp-vault.{name}");
        if self.addresses.is_empty() {
            errors.push(FieldError::new(field("addresses"), "must list the Vault servers the host may send its credential to"));
        }
        for (i, address) in self.addresses.iter().enumerate() {
            if let Err(message) = endpoint(address) {
                errors.push(FieldError::new(format!("{}[{i}]", field("addresses")), message));
            }
        }
        let approle = self.role_id.is_some() || self.secret_id.is_some();
        match (self.token.is_some(), approle) {
            (true, true) => errors.push(FieldError::new(field("token"), "choose one: `token`, or `role-id` + `secret-id` (AppRole)")),
            (false, false) => errors.push(FieldError::new(field("token"), "set `token`, or `role-id` + `secret-id` (AppRole)")),
            (false, true) if self.role_id.is_none() => errors.push(FieldError::new(field("role-id"), "is required with `secret-id`")),
            (false, true) if self.secret_id.is_none() => errors.push(FieldError::new(field("secret-id"), "is required with `role-id`")),
            _ => {}
        }
        if self.approle_mount.trim().is_empty() || self.approle_mount.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
            errors.push(FieldError::new(field("approle-mount"), "must be a mount path like `approle`"));
        }
        timeout(errors, &field("timeout-seconds"), self.timeout_seconds);
    }
}

fn section<T: serde::de::DeserializeOwned>(sections: &toml::Table, name: &str, errors: &mut Vec<FieldError>) -> Option<T> {
    let value = sections.get(name)?;
    match T::deserialize(value.clone()) {
        Ok(section) => Some(section),
        Err(e) => {
            errors.push(FieldError::new(format!("secrets.{name}"), e.message().to_string()));
            None
        }
    }
}

fn timeout(errors: &mut Vec<FieldError>, field: &str, seconds: u64) {
    if seconds == 0 || seconds > 300 {
        errors.push(FieldError::new(field, "must be between 1 and 300 seconds"));
    }
}

/// An https endpoint (plain http only to loopback) without credentials, query or fragment.
pub(crate) fn endpoint(value: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(value).map_err(|e| format!("`{value}` is not a URL: {e}"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => return Err(format!("`{value}` must use https (plain http is allowed only to loopback)")),
        other => return Err(format!("`{value}` has scheme `{other}`; use https")),
    }
    plain_origin(&url)?;
    Ok(url)
}

fn plain_origin(url: &url::Url) -> Result<(), String> {
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{url}` has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("`{url}` must not have a query or fragment"));
    }
    Ok(())
}

pub(crate) fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_config_reads_and_credentials_become_secrets() {
        let config = SecretsConfig::from_toml(
            r#"
            [server]
            listen = "ignored: not ours"
            [secrets.azure-key-vault]
            tenant-id = "contoso"
            client-id = "host-app"
            client-secret = "a+b/c:d%e="
            [secrets.aws-secrets-manager]
            endpoint = "http://127.0.0.1:4566"
            [secrets.hashicorp-vault]
            addresses = ["https://vault.internal:8200"]
            role-id = "r"
            secret-id = "s"
            [secrets.cache]
            ttl-seconds = 60
            "#,
        )
        .expect("valid");
        let azure = config.azure_key_vault.as_ref().expect("azure");
        assert_eq!(azure.client_secret.as_ref().map(Secret::expose), Some("a+b/c:d%e="));
        assert_eq!(azure.authority, "https://login.microsoftonline.com");
        assert_eq!(config.cache.ttl_seconds, 60);
        assert_eq!(config.cache.max_stale_seconds, 3600);
        assert!(!format!("{config:?}").contains("a+b/c"), "Debug of the config shows a credential");
    }

    #[test]
    fn unknown_and_incomplete_settings_name_their_field() {
        let fields = |doc: &str| SecretsConfig::from_toml(doc).unwrap_err().into_iter().map(|e| e.field).collect::<Vec<_>>();
        let unknown = SecretsConfig::from_toml("[secrets.azure-key-vault]\nclient-secrt = \"x\"").unwrap_err();
        assert!(unknown[0].message.contains("client-secrt"), "{unknown:?}");
        assert_eq!(unknown[0].field, "secrets.azure-key-vault");
        assert_eq!(fields("[secrets.azure]\nx = 1"), ["secrets.azure"]);
        assert_eq!(fields("[secrets.azure-key-vault]\nclient-id = \"x\""), ["secrets.azure-key-vault.client-secret"]);
        assert_eq!(fields("[secrets.azure-key-vault]\ntenant-id = \"t\""), ["secrets.azure-key-vault.client-id"]);
        assert_eq!(fields("[secrets.aws-secrets-manager]\naccess-key-id = \"x\""), ["secrets.aws-secrets-manager.secret-access-key"]);
        assert_eq!(fields("[secrets.aws-secrets-manager]\nendpoint = \"http://aws.example\""), ["secrets.aws-secrets-manager.endpoint"]);
        assert_eq!(fields("[secrets.hashicorp-vault]\naddresses = []\ntoken = \"t\""), ["secrets.hashicorp-vault.addresses"]);
        assert_eq!(fields("[secrets.hashicorp-vault]\naddresses = [\"http://127.0.0.1:8200\"]"), ["secrets.hashicorp-vault.token"]);
        assert_eq!(fields("[secrets.env]\nallow = []"), ["secrets.env.allow"]);
    }
}

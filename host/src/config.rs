//! The host's configuration file (`flowstudio.toml`, kebab-case keys).
//!
//! Every section is optional; with no file at all the host runs on its
//! embedded defaults: SQLite in the data dir, the embedded passport, the
//! `file` secrets provider rooted at `<data-dir>/secrets`, and the built-in
//! roles. An unknown key anywhere is an error naming its dotted path.
//!
//! ```toml
//! [server]
//! listen = "127.0.0.1:8080"
//! admin-role = "flowstudio.admin"
//!
//! [passport.external]          # absent: the embedded passport
//! url = "https://passport.example.com"
//!
//! [passport.embedded]          # the embedded passport's token settings
//! token-lifetime-secs = 3600
//!
//! [secrets.hashicorp-vault]
//! addresses = ["https://vault.example.com"]
//! role-id = "…"
//! secret-id = "…"
//!
//! [roles]
//! workflow-runner = ["workflow.execute"]
//!
//! [egress]
//! allow-loopback-plain-http-tokens = false
//! ```

use crate::guard::{RolePermissions, WORKFLOW_EXECUTE};
use crate::passport::PassportServerConfig;
use crate::runtime::NodeLimits;
use crate::secrets::SecretsConfig;
use crate::token::PassportConfig;
use crate::validation::FieldError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The admin role of the built-in role map.
pub const DEFAULT_ADMIN_ROLE: &str = "flowstudio.admin";
/// The role of the built-in role map that may run workflows.
pub const DEFAULT_RUNNER_ROLE: &str = "workflow-runner";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file `{path}` could not be read: {reason}")]
    Read { path: String, reason: String },
    #[error("config file `{path}` is not valid TOML: {reason}")]
    Syntax { path: String, reason: String },
    #[error("config file `{path}`: {}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid { path: String, errors: Vec<FieldError> },
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub passport: PassportSection,
    #[serde(default)]
    pub secrets: SecretsConfig,
    /// Role name → permissions. Absent: [`Config::default_roles`].
    pub roles: Option<RolePermissions>,
    #[serde(default)]
    pub egress: EgressSection,
    #[serde(default)]
    pub runtime: RuntimeSection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ServerConfig {
    pub listen: String,
    /// Role a bearer token needs for the admin API.
    pub admin_role: String,
    /// Largest request body the API accepts (component uploads included).
    pub max_body_bytes: usize,
    /// How long running executions may finish after SIGTERM/SIGINT.
    pub shutdown_grace_seconds: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            admin_role: DEFAULT_ADMIN_ROLE.into(),
            max_body_bytes: 16 << 20,
            shutdown_grace_seconds: 30,
        }
    }
}

/// Which passport mints the identities' tokens.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PassportSection {
    /// The platform's passport. When set, the embedded one still serves the
    /// admin clients of this host but no managed identity tokens come from it.
    pub external: Option<PassportConfig>,
    #[serde(default)]
    pub embedded: PassportServerConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EgressSection {
    /// Attach tokens over plain http to loopback destinations (development only).
    #[serde(default)]
    pub allow_loopback_plain_http_tokens: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RuntimeSection {
    /// Per node run; absent fields keep the runtime's defaults (64 MiB, 30 s, 1 MiB, 64 KiB).
    pub memory_bytes: Option<usize>,
    pub deadline_ms: Option<u64>,
    pub max_output_bytes: Option<usize>,
    pub max_log_bytes: Option<usize>,
}

impl Config {
    /// Read `path`, or `./flowstudio.toml` when it exists, else the embedded defaults.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let implicit = PathBuf::from("flowstudio.toml");
        let path = match path {
            Some(p) => p.to_path_buf(),
            None if implicit.exists() => implicit,
            None => return Ok(Config::default()),
        };
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::Read { path: shown.clone(), reason: e.to_string() })?;
        Config::parse(&text).map_err(|e| match e {
            ParseError::Syntax(reason) => ConfigError::Syntax { path: shown.clone(), reason },
            ParseError::Invalid(errors) => ConfigError::Invalid { path: shown, errors },
        })
    }

    /// Parse and validate a config document.
    pub fn parse(text: &str) -> Result<Config, ParseError> {
        let deserializer = toml::Deserializer::parse(text).map_err(|e| ParseError::Syntax(e.message().to_string()))?;
        let config: Config = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let field = e.path().to_string();
            ParseError::Invalid(vec![FieldError::new(if field == "." { String::new() } else { field }, e.into_inner().message().to_string())])
        })?;
        config.validate().map_err(ParseError::Invalid)?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            errors.push(FieldError::new("server.listen", format!("`{}` is not an address like 127.0.0.1:8080", self.server.listen)));
        }
        if self.server.admin_role.trim().is_empty() {
            errors.push(FieldError::new("server.admin-role", "must not be empty"));
        }
        if let Some(external) = &self.passport.external {
            errors.extend(external.validate().err().unwrap_or_default().into_iter().map(|e| e.nested("passport.external")));
        }
        errors.extend(self.passport.embedded.validate().into_iter().map(|e| e.nested("passport.embedded")));
        errors.extend(self.secrets.validate().err().unwrap_or_default());
        if let Some(roles) = &self.roles {
            errors.extend(roles.validate().err().unwrap_or_default());
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The role map in force: the file's `[roles]`, else the built-in one
    /// (`flowstudio.admin` may do everything, `workflow-runner` may run workflows).
    pub fn roles(&self) -> RolePermissions {
        self.roles.clone().unwrap_or_else(|| {
            RolePermissions::new(BTreeMap::from([
                (DEFAULT_ADMIN_ROLE.to_string(), vec!["*".to_string()]),
                (DEFAULT_RUNNER_ROLE.to_string(), vec![WORKFLOW_EXECUTE.to_string()]),
            ]))
        })
    }

    /// The secrets settings in force: the embedded default turns the `file`
    /// provider on, rooted at `<data-dir>/secrets`, when no secrets section says otherwise.
    pub fn secrets(&self, data_dir: &Path) -> SecretsConfig {
        let mut secrets = self.secrets.clone();
        let nothing_configured = secrets.azure_key_vault.is_none()
            && secrets.aws_secrets_manager.is_none()
            && secrets.hashicorp_vault.is_none()
            && secrets.env.is_none()
            && secrets.file.is_none();
        if nothing_configured {
            secrets.file = Some(crate::secrets::FileConfig { root: data_dir.join("secrets") });
        }
        secrets
    }

    pub fn node_limits(&self) -> NodeLimits {
        let r = &self.runtime;
        let mut limits = NodeLimits::default();
        limits.memory_bytes = r.memory_bytes.unwrap_or(limits.memory_bytes);
        limits.deadline = r.deadline_ms.map(std::time::Duration::from_millis).unwrap_or(limits.deadline);
        limits.max_output_bytes = r.max_output_bytes.unwrap_or(limits.max_output_bytes);
        limits.max_log_bytes = r.max_log_bytes.unwrap_or(limits.max_log_bytes);
        limits
    }
}

/// Why a config document was refused (before the file name is attached).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    Syntax(String),
    Invalid(Vec<FieldError>),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(text: &str) -> Vec<FieldError> {
        match Config::parse(text) {
            Err(ParseError::Invalid(errors)) => errors,
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    #[test]
    fn no_file_means_embedded_defaults() {
        let config = Config::parse("").expect("empty config");
        assert!(config.passport.external.is_none());
        assert_eq!(config.server.admin_role, DEFAULT_ADMIN_ROLE);
        let secrets = config.secrets(Path::new("/data"));
        assert_eq!(secrets.file.map(|f| f.root), Some(PathBuf::from("/data/secrets")));
    }

    #[test]
    fn unknown_keys_are_named_with_their_path() {
        assert_eq!(invalid("[server]\nlisten = \"127.0.0.1:1\"\nlisten-on = 1\n")[0].field, "server.listen-on");
        assert_eq!(invalid("[secrets.hashicorp-vault]\naddresses = []\ntokn = \"x\"\n")[0].field, "secrets.hashicorp-vault.tokn");
        assert_eq!(invalid("[nope]\n")[0].field, "nope");
    }

    #[test]
    fn bad_values_are_named() {
        assert_eq!(invalid("[server]\nlisten = \"everywhere\"\n")[0].field, "server.listen");
        assert!(matches!(Config::parse("[server"), Err(ParseError::Syntax(_))));
    }

    #[test]
    fn a_configured_store_turns_off_the_default_file_provider() {
        let config = Config::parse("[secrets.env]\nallow = [\"FS_*\"]\n").expect("config");
        assert!(config.secrets(Path::new("/d")).file.is_none());
    }
}

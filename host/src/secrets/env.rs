//! The `env` provider (development): a client secret from an environment
//! variable of the host process. Only variables the config allows can be
//! read, so a schedule cannot make the host hand out, say, its own cloud keys.

use super::config::EnvConfig;
use super::extract::content_version;
use super::{Freshness, SecretError, SecretReference, SecretValue, SecretsProvider};
use crate::secret::Secret;
use futures::future::BoxFuture;
use std::fmt;

type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

pub struct EnvProvider {
    allow: Vec<String>,
    lookup: Box<Lookup>,
}

impl EnvProvider {
    /// Reads the real process environment.
    pub fn new(config: &EnvConfig) -> EnvProvider {
        EnvProvider::with_lookup(config, |name| std::env::var(name).ok())
    }

    /// Reads through `lookup` instead of the process environment (tests that run in parallel).
    pub fn with_lookup(config: &EnvConfig, lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> EnvProvider {
        EnvProvider { allow: config.allow.clone(), lookup: Box::new(lookup) }
    }

    fn allowed(&self, name: &str) -> bool {
        self.allow.iter().any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == pattern,
        })
    }

    fn read_now(&self, reference: &SecretReference) -> Result<SecretValue, SecretError> {
        let SecretReference::Env { name } = reference else {
            return Err(SecretError::NotConfigured { provider: "env".into(), reason: format!("asked to read {reference}") });
        };
        if !self.allowed(name) {
            return Err(SecretError::AccessDenied {
                reference: reference.to_string(),
                reason: format!("`{name}` is not allowed by [secrets.env] allow"),
            });
        }
        let value = (self.lookup)(name).map(Secret::new).ok_or_else(|| SecretError::NotFound { reference: reference.to_string() })?;
        if value.expose().is_empty() {
            return Err(SecretError::Invalid { reference: reference.to_string(), reason: "the variable is empty".into() });
        }
        let version = Some(content_version(value.expose()));
        Ok(SecretValue { value, version })
    }
}

impl SecretsProvider for EnvProvider {
    fn read<'a>(&'a self, reference: &'a SecretReference, _freshness: Freshness) -> BoxFuture<'a, Result<SecretValue, SecretError>> {
        Box::pin(async move { self.read_now(reference) })
    }
}

impl fmt::Debug for EnvProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvProvider").field("allow", &self.allow).finish_non_exhaustive()
    }
}

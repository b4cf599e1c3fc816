//! [`SecretStore`]: one provider per reference kind, built from the config,
//! and the dispatch from a reference to its provider. A kind without a
//! provider answers `NotConfigured` naming the config section to add.

use super::aws_secrets_manager::AwsSecretsManagerProvider;
use super::azure_key_vault::AzureKeyVaultProvider;
use super::config::SecretsConfig;
use super::env::EnvProvider;
use super::file::FileProvider;
use super::hashicorp_vault::HashicorpVaultProvider;
use super::{Freshness, SecretError, SecretReference, SecretValue, SecretsProvider};
use crate::clock::Clock;
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Every provider kind a reference can name.
pub const PROVIDER_KINDS: [&str; 5] = ["azure-key-vault", "aws-secrets-manager", "hashicorp-vault", "env", "file"];

#[derive(Clone, Default)]
pub struct SecretStore {
    providers: BTreeMap<&'static str, Arc<dyn SecretsProvider>>,
}

impl SecretStore {
    /// A store with no providers; add them with [`with_provider`](Self::with_provider).
    pub fn empty() -> SecretStore {
        SecretStore::default()
    }

    /// The providers the config describes. The three cloud stores are always
    /// present (answering `NotConfigured` with what is missing when their
    /// section is absent or incomplete; AWS can also take its credentials from
    /// the environment); `env` and `file` only when their section is there.
    pub fn from_config(config: &SecretsConfig, clock: Arc<dyn Clock>) -> SecretStore {
        let mut store = SecretStore::empty()
            .with_provider("azure-key-vault", Arc::new(AzureKeyVaultProvider::new(config.azure_key_vault.as_ref(), clock.clone())))
            .with_provider("aws-secrets-manager", Arc::new(AwsSecretsManagerProvider::new(config.aws_secrets_manager.as_ref())))
            .with_provider("hashicorp-vault", Arc::new(HashicorpVaultProvider::new(config.hashicorp_vault.as_ref(), clock)));
        if let Some(env) = &config.env {
            store = store.with_provider("env", Arc::new(EnvProvider::new(env)));
        }
        if let Some(file) = &config.file {
            store = store.with_provider("file", Arc::new(FileProvider::new(file)));
        }
        store
    }

    /// Use `provider` for references of `kind` (one of [`PROVIDER_KINDS`]), replacing any before it.
    pub fn with_provider(mut self, kind: &'static str, provider: Arc<dyn SecretsProvider>) -> SecretStore {
        self.providers.insert(kind, provider);
        self
    }

    /// The kinds this store can read.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.providers.keys().copied().collect()
    }
}

impl SecretsProvider for SecretStore {
    fn read<'a>(&'a self, reference: &'a SecretReference, freshness: Freshness) -> BoxFuture<'a, Result<SecretValue, SecretError>> {
        let kind = reference.provider();
        match self.providers.get(kind) {
            Some(provider) => provider.read(reference, freshness),
            None => Box::pin(async move {
                let reason = match kind {
                    "env" => "the `env` provider is for development and is off: add [secrets.env] with `allow = [...]` names".to_string(),
                    "file" => "the `file` provider is for development and is off: add [secrets.file] with a `root` folder".to_string(),
                    _ => format!("no provider is registered; add a [secrets.{kind}] section"),
                };
                Err(SecretError::NotConfigured { provider: kind.to_string(), reason })
            }),
        }
    }
}

impl std::fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretStore").field("providers", &self.kinds()).finish()
    }
}

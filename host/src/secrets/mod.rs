//! Reading client secrets from where the platform keeps them (DESIGN §6).
//!
//! The [`SecretsProvider`] trait is the seam; each store is one provider, and
//! a caching layer wraps them. A secret value only ever lives in a
//! [`Secret`](crate::secret::Secret).
//!
//! | file | job |
//! |---|---|
//! | `reference.rs` | [`SecretReference`]: the `secretReference` shapes and their validation |
//! | `config.rs` | [`SecretsConfig`]: the `[secrets.*]` settings (endpoints, the host's own credentials, cache) |
//! | `azure_key_vault/` | [`AzureKeyVaultProvider`]: REST reads, the 401 challenge flow, Entra/IMDS tokens |
//! | `aws_secrets_manager.rs` | [`AwsSecretsManagerProvider`]: `GetSecretValue`, SigV4, errors by `__type` |
//! | `hashicorp_vault.rs` | [`HashicorpVaultProvider`]: KV v2 reads, token or AppRole auth |
//! | `env.rs`, `file.rs` | [`EnvProvider`], [`FileProvider`]: development stores, off unless configured |
//! | `store.rs` | [`SecretStore`]: dispatch by reference kind |
//! | `cache.rs` | [`SecretCache`]: TTL, bypass, bounded stale-while-revalidate, single flight |
//! | `http.rs`, `extract.rs` | no redirects, timeouts, bounded bodies; JSON keys and content versions |
//!
//! The usual assembly is [`from_config`]: a cached store over every provider.

mod aws_secrets_manager;
mod azure_key_vault;
mod cache;
mod config;
mod env;
mod extract;
mod file;
mod hashicorp_vault;
mod http;
mod reference;
mod store;

pub use aws_secrets_manager::AwsSecretsManagerProvider;
pub use azure_key_vault::AzureKeyVaultProvider;
pub use cache::SecretCache;
pub use config::{AwsSecretsManagerConfig, AzureKeyVaultConfig, CacheConfig, EnvConfig, FileConfig, HashicorpVaultConfig, SecretsConfig};
pub use env::EnvProvider;
pub use file::FileProvider;
pub use hashicorp_vault::HashicorpVaultProvider;
pub use reference::SecretReference;
pub use store::{SecretStore, PROVIDER_KINDS};

/// The secrets the host reads for its schedules: every configured provider
/// behind one cache.
pub fn from_config(config: &SecretsConfig, clock: std::sync::Arc<dyn crate::clock::Clock>) -> SecretCache<SecretStore> {
    SecretCache::new(SecretStore::from_config(config, clock.clone()), clock, &config.cache)
}

use crate::secret::Secret;
use futures::future::BoxFuture;

/// A secret as read from its store.
#[derive(Debug, Clone)]
pub struct SecretValue {
    pub value: Secret,
    /// The store's version of the secret, when it has one; a change of version
    /// drops the tokens minted with the old secret.
    pub version: Option<String>,
}

/// Whether a read may be answered from a cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// A cached value within its TTL is fine.
    Cached,
    /// Ask the store itself (the secret may have been rotated).
    Bypass,
}

/// Why a secret could not be read. Messages name the reference, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("secret {reference} was not found")]
    NotFound { reference: String },
    #[error("access to secret {reference} was denied: {reason}")]
    AccessDenied { reference: String, reason: String },
    #[error("secret {reference} is disabled")]
    Disabled { reference: String },
    /// The store could not be reached or answered 5xx/429: worth retrying.
    #[error("secret store for {reference} is unavailable: {reason}")]
    Unavailable { reference: String, reason: String },
    /// The host's own settings for this provider are missing or wrong.
    #[error("secrets provider `{provider}` is not configured: {reason}")]
    NotConfigured { provider: String, reason: String },
    /// The store answered, but not with a usable secret.
    #[error("secret {reference} is unusable: {reason}")]
    Invalid { reference: String, reason: String },
}

impl SecretError {
    /// Whether reading again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, SecretError::Unavailable { .. })
    }
}

/// Reads one secret. Implementations never follow redirects with credentials
/// and never put a secret value into an error.
pub trait SecretsProvider: Send + Sync {
    fn read<'a>(&'a self, reference: &'a SecretReference, freshness: Freshness) -> BoxFuture<'a, Result<SecretValue, SecretError>>;
}

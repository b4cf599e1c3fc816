//! Tokens for managed identities (DESIGN §6).
//!
//! The [`TokenSource`] seam is what the egress asks for a bearer token. The
//! real one is [`ManagedTokenSource`]: it reads the identity's client secret
//! through a [`SecretsProvider`](crate::secrets::SecretsProvider), mints a
//! token at the passport with [`PassportClient`] (OAuth 2.0 client
//! credentials), verifies it with [`IdInfoVerifier`] against the passport's
//! [`JwksCache`] and caches and refreshes it per audience.
//!
//! | module | job |
//! |---|---|
//! | [`config`] | the `passport` configuration section |
//! | [`client`] | one token request, errors classified |
//! | [`keys`] | key pinning and JWT checks (shared with [`crate::passport::JwtVerifier`]) |
//! | [`jwks`] | the passport's key set, fetched and cached by `kid` |
//! | [`verify`] | verified claims → `IdInfo` |
//! | [`schedule`] | when to refresh, until when to hand a token out, backoff |
//! | [`managed`] | the token source of one managed identity |

pub mod client;
pub mod config;
pub mod jwks;
pub mod keys;
pub mod managed;
pub mod schedule;
pub mod verify;

pub use client::{PassportClient, PassportError, TokenRequest, TokenResponse};
pub use config::{AuthMethod, JwksSettings, PassportConfig, RefreshSettings};
pub use jwks::{JwksCache, VerifyError};
pub use managed::{ManagedIdentity, ManagedTokenSource, TokenStats};
pub use verify::IdInfoVerifier;

use crate::identity::IdInfo;
use crate::secret::Secret;
use std::future::Future;
use std::pin::Pin;

/// Lifetime assumed for a token whose response has no `expires_in` and whose
/// `exp` is already (nearly) past on our clock: short, so it is renewed soon.
pub const DEFAULT_LIFETIME_SECS: u64 = 300;

/// A bearer token and what it says about its holder.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: Secret,
    /// Unix seconds.
    pub expires_at: u64,
    pub id_info: IdInfo,
}

/// Why no token could be had. Messages name the identity, never a secret or token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The passport, the key set or the secret store could not be reached (network,
    /// timeout, 5xx, 429): the only transient kind.
    #[error("token source for `{identity}` is unavailable: {reason}")]
    Unavailable { identity: String, reason: String },
    /// The passport refused the identity (`invalid_client` even with a freshly read
    /// secret, `unauthorized_client`, `invalid_scope`, a disabled client, ...).
    #[error("managed identity `{identity}` was refused by the passport: {reason}")]
    Rejected { identity: String, reason: String },
    /// The client secret is missing, denied or unusable in its store.
    #[error("client secret of managed identity `{identity}` could not be read: {reason}")]
    Secret { identity: String, reason: String },
    /// The passport answered with something that is not an acceptable token.
    #[error("the passport gave managed identity `{identity}` no acceptable token: {reason}")]
    InvalidToken { identity: String, reason: String },
}

impl TokenError {
    /// Whether asking again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, TokenError::Unavailable { .. })
    }
}

pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<AccessToken, TokenError>> + Send + 'a>>;

/// Mints, caches and refreshes tokens for one identity.
///
/// `audience` is the grant's audience/scope, when it names one. `invalidate`
/// is called when a destination answers 401 `invalid_token`: the next `token`
/// call must not return the same token.
pub trait TokenSource: Send + Sync {
    fn token<'a>(&'a self, audience: Option<&'a str>) -> TokenFuture<'a>;
    fn invalidate(&self, rejected: &AccessToken);
    /// The identity as of the current token.
    fn id_info(&self) -> IdInfo;
}

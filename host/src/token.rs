//! The `TokenSource` seam: where the egress gets a bearer token for the run's identity.

use crate::identity::IdInfo;
use crate::secret::Secret;
use std::future::Future;
use std::pin::Pin;

/// A bearer token and what it says about its holder.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: Secret,
    /// Unix seconds.
    pub expires_at: u64,
    pub id_info: IdInfo,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    #[error("token source for `{identity}` is unavailable: {reason}")]
    Unavailable { identity: String, reason: String },
    #[error("managed identity `{0}` was refused by the passport")]
    Rejected(String),
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

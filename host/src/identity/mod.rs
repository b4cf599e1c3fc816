//! Who a run acts as: [`IdInfo`], as handed to every node (never the token),
//! and the [`registry`] of managed identities (service accounts) behind it,
//! including the hashed client secrets of the embedded passport.

mod client_secret;
pub mod registry;
mod validate;

pub use client_secret::{generate_client_secret, DEFAULT_HASH_ITERATIONS, MIN_HASH_ITERATIONS};
pub use registry::{ClientAuthError, IdentityError, IdentityRegistry, ManagedIdentity, NewManagedIdentity};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct IdInfo {
    pub user_id: String,
    pub tenant_id: String,
    pub client_id: String,
    pub display_name: String,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
    pub is_service_account: bool,
    pub managed_identity_id: Option<String>,
    /// Unix seconds at which the current token expires.
    pub token_expires_at: u64,
}

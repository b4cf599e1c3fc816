//! Who a run acts as, as handed to every node. Never carries the token.

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

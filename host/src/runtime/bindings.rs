//! Host bindings generated from `wit/` (the same source the SDK reads).

wasmtime::component::bindgen!({
    path: "../wit",
    world: "flowstudio:node/node",
    exports: { default: async },
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
    },
});

pub use flowstudio::node::types::{IdInfo as WitIdInfo, LogLevel};

impl From<&crate::identity::IdInfo> for WitIdInfo {
    fn from(id: &crate::identity::IdInfo) -> Self {
        WitIdInfo {
            user_id: id.user_id.clone(),
            tenant_id: id.tenant_id.clone(),
            client_id: id.client_id.clone(),
            display_name: id.display_name.clone(),
            roles: id.roles.clone(),
            scopes: id.scopes.clone(),
            is_service_account: id.is_service_account,
            managed_identity_id: id.managed_identity_id.clone(),
            token_expires_at: id.token_expires_at,
        }
    }
}

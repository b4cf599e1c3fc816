//! Egress: the one chokepoint every outbound call of every node passes.
//!
//! Order (DESIGN §5): parse → grant check (deny by default) → resolve and
//! check the address → attach the token (only where the grant asks for it) →
//! send to the checked address, never following redirects → audit.
//! This is the only module that touches wasmtime-wasi-http's hook.

mod address;
mod grant;
mod hooks;
mod send;

pub use address::refusal as address_refusal;
pub use grant::{Grant, GrantAuth, GrantError};
pub use hooks::{EgressHooks, RunEgress};

use std::time::Duration;

/// Limits and switches for the egress of one run. Defaults are the safe ones.
#[derive(Debug, Clone)]
pub struct EgressPolicy {
    pub grants: Vec<Grant>,
    pub max_requests: u32,
    pub max_response_bytes: u64,
    /// Largest request body kept for a replay after a 401 (and accepted at all).
    pub max_request_body_bytes: usize,
    pub max_concurrent_requests: usize,
    /// Upper bound for connect, first byte and whole-response time; the guest may only lower it.
    pub request_timeout: Duration,
    /// Attach tokens over plain http to loopback destinations (development and tests only).
    pub allow_loopback_plain_http_tokens: bool,
}

impl Default for EgressPolicy {
    fn default() -> Self {
        EgressPolicy {
            grants: Vec::new(),
            max_requests: 100,
            max_response_bytes: 16 << 20,
            max_request_body_bytes: 1 << 20,
            max_concurrent_requests: 8,
            request_timeout: Duration::from_secs(30),
            allow_loopback_plain_http_tokens: false,
        }
    }
}

impl EgressPolicy {
    /// The most specific grant for a destination, if any.
    pub fn grant_for(&self, scheme: &str, host: &str, port: u16) -> Option<&Grant> {
        self.grants.iter().filter(|g| g.matches(scheme, host, port)).max_by_key(|g| g.specificity())
    }
}

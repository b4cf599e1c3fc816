//! The `AuditSink` seam and the events the runtime reports through it.

use serde::Serialize;
use std::sync::Mutex;

/// One outbound call of a node, allowed or not. Never holds a token or a query string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EgressEvent {
    pub execution_id: String,
    pub node_id: String,
    /// Managed identity id, else the identity's client id.
    pub identity: String,
    pub method: String,
    /// `scheme://host:port`, no path or query.
    pub destination: String,
    pub status: Option<u16>,
    pub response_bytes: u64,
    pub latency_ms: u64,
    pub decision: EgressDecision,
    pub token_attached: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "reason", rename_all = "kebab-case")]
pub enum EgressDecision {
    Allowed,
    Denied(String),
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum AuditEvent {
    Egress(EgressEvent),
}

/// Where audit events go. Must not block: it is called on the request path.
pub trait AuditSink: Send + Sync {
    fn record(&self, event: AuditEvent);
}

/// Writes each event as a structured `tracing` line (target `flowstudio::audit`).
#[derive(Debug, Default)]
pub struct TracingAuditSink;

impl AuditSink for TracingAuditSink {
    fn record(&self, event: AuditEvent) {
        match serde_json::to_string(&event) {
            Ok(line) => tracing::info!(target: "flowstudio::audit", event = %line),
            Err(e) => tracing::warn!(target: "flowstudio::audit", "audit event could not be encoded: {e}"),
        }
    }
}

/// Keeps events in memory; for tests and the CLI's run summary.
#[derive(Debug, Default)]
pub struct MemoryAuditSink {
    events: Mutex<Vec<AuditEvent>>,
}

impl MemoryAuditSink {
    pub fn events(&self) -> Vec<AuditEvent> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl AuditSink for MemoryAuditSink {
    fn record(&self, event: AuditEvent) {
        if let Ok(mut events) = self.events.lock() {
            events.push(event);
        }
    }
}

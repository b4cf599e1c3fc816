//! The audit log: the `AuditSink` seam, the events of DESIGN §8 and the
//! tamper-evident store in the state database.
//!
//! - [`event`]: every event type and its common columns (actor, action,
//!   target, execution, outcome, reason); none can hold a `Secret`.
//! - [`scrub`]: strips query strings, userinfo and token-shaped text from
//!   free-text fields on the way into a record.
//! - [`record`]: a stored event and its SHA-256 over a canonical encoding,
//!   chained to the previous event.
//! - [`store`]: the append-only `audit_events` table, `verify` and `query`.
//! - [`writer`]: [`SqliteAuditSink`], a background writer with a bounded queue.

pub mod event;
pub mod record;
mod scrub;
pub mod store;
pub mod writer;

pub use event::{
    AuditActor, AuditEvent, AuthorizationEvent, EgressDecision, EgressEvent, EventSummary, ExecutionEvent, FiringEvent,
    NodeEvent, Outcome, ScheduleEvent, SecretReadEvent, TokenEvent,
};
pub use record::{AuditRecord, GENESIS_HASH};
pub use scrub::scrub;
pub use store::{AuditFilter, AuditStore, AuditStoreError, ChainBreak, ChainSummary};
pub use writer::SqliteAuditSink;

use std::sync::Mutex;

/// Where audit events go. Must not block for long: it is called on the request path.
pub trait AuditSink: Send + Sync {
    fn record(&self, event: AuditEvent);
}

/// Writes each event as a structured `tracing` line (target `flowstudio::audit`).
#[derive(Debug, Default)]
pub struct TracingAuditSink;

impl AuditSink for TracingAuditSink {
    fn record(&self, event: AuditEvent) {
        let summary = event.summary();
        let details = event.details();
        tracing::info!(
            target: "flowstudio::audit",
            action = summary.action,
            actor = summary.actor.id(),
            resource = %summary.target,
            outcome = summary.outcome.as_str(),
            event = %details,
        );
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

/// Sends every event to several sinks (e.g. the store and the tracing log).
pub struct FanOutAuditSink(pub Vec<std::sync::Arc<dyn AuditSink>>);

impl AuditSink for FanOutAuditSink {
    fn record(&self, event: AuditEvent) {
        if let Some((last, rest)) = self.0.split_last() {
            rest.iter().for_each(|sink| sink.record(event.clone()));
            last.record(event);
        }
    }
}

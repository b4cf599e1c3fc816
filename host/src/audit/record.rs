//! One stored audit event ([`AuditRecord`]) and its hash over a canonical encoding.
//!
//! The hash is SHA-256 over a versioned, length-prefixed encoding of every
//! column exactly as stored (the JSON columns as their stored text), so
//! `verify` recomputes it from the row alone and no JSON key order or float
//! formatting can change it. `prev_hash` of the first event is 64 zeros.

use super::event::{AuditActor, AuditEvent, Outcome};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first event in the chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Names the encoding inside the hash, so a future change cannot collide with it.
const ENCODING_TAG: &[u8] = b"flowstudio-audit-v1";

/// An audit event as stored: its place in the chain, the common columns and its details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// RFC 3339 UTC with microseconds (`2026-12-25T06:00:00.000000Z`): sorts as text.
    pub time: String,
    pub action: String,
    /// [`AuditActor::id`]: what `--identity` matches.
    pub actor_id: String,
    pub actor: AuditActor,
    pub target: String,
    pub execution_id: Option<String>,
    pub outcome: String,
    pub reason: Option<String>,
    /// The event's own fields (see [`AuditEvent`]).
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// The columns of one row as text, in the order the hash covers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    pub seq: i64,
    pub time: String,
    pub action: String,
    pub actor_id: String,
    pub actor_client_id: Option<String>,
    pub actor: String,
    pub target: String,
    pub execution_id: Option<String>,
    pub outcome: String,
    pub reason: Option<String>,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

/// An event with its time, ready to be chained (everything but seq and hashes).
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub time: String,
    pub action: String,
    pub actor_id: String,
    pub actor_client_id: Option<String>,
    pub actor: String,
    pub target: String,
    pub execution_id: Option<String>,
    pub outcome: String,
    pub reason: Option<String>,
    pub details: String,
}

/// The fixed-width UTC text the `time` column holds.
pub fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl Pending {
    pub fn from_event(event: &AuditEvent, time: DateTime<Utc>) -> Pending {
        let summary = event.summary();
        Pending {
            time: format_time(time),
            action: summary.action.to_string(),
            actor_id: summary.actor.id().to_string(),
            actor_client_id: summary.actor.client_id.clone(),
            actor: serde_json::to_string(&summary.actor).unwrap_or_else(|_| "{}".into()),
            target: summary.target,
            execution_id: summary.execution_id,
            outcome: summary.outcome.as_str().to_string(),
            reason: summary.reason,
            details: event.details().to_string(),
        }
    }

    /// Place it after `prev` (seq, hash) in the chain.
    pub fn chain(self, seq: i64, prev_hash: String) -> Row {
        let mut row = Row {
            seq,
            time: self.time,
            action: self.action,
            actor_id: self.actor_id,
            actor_client_id: self.actor_client_id,
            actor: self.actor,
            target: self.target,
            execution_id: self.execution_id,
            outcome: self.outcome,
            reason: self.reason,
            details: self.details,
            prev_hash,
            hash: String::new(),
        };
        row.hash = row.compute_hash();
        row
    }
}

impl Row {
    /// SHA-256 (hex) over the canonical encoding of every column but `hash`.
    pub fn compute_hash(&self) -> String {
        let mut h = Sha256::new();
        field(&mut h, Some(ENCODING_TAG));
        field(&mut h, Some(&self.seq.to_be_bytes()));
        for text in [
            Some(&self.time),
            Some(&self.action),
            Some(&self.actor_id),
            self.actor_client_id.as_ref(),
            Some(&self.actor),
            Some(&self.target),
            self.execution_id.as_ref(),
            Some(&self.outcome),
            self.reason.as_ref(),
            Some(&self.details),
            Some(&self.prev_hash),
        ] {
            field(&mut h, text.map(|t| t.as_bytes()));
        }
        hex::encode(h.finalize())
    }

    pub fn into_record(self) -> AuditRecord {
        AuditRecord {
            seq: self.seq,
            time: self.time,
            action: self.action,
            actor_id: self.actor_id,
            actor: serde_json::from_str(&self.actor).unwrap_or_default(),
            target: self.target,
            execution_id: self.execution_id,
            outcome: self.outcome,
            reason: self.reason,
            details: serde_json::from_str(&self.details).unwrap_or(serde_json::Value::Null),
            prev_hash: self.prev_hash,
            hash: self.hash,
        }
    }

    /// `event 3 (egress.call at 2026-…)`: how errors name a row.
    pub fn label(&self) -> String {
        format!("event {} ({} at {})", self.seq, self.action, self.time)
    }
}

/// A NULL is one byte 0; a value is byte 1, its length (u64 BE) and its bytes.
fn field(h: &mut Sha256, value: Option<&[u8]>) {
    match value {
        None => h.update([0u8]),
        Some(bytes) => {
            h.update([1u8]);
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        }
    }
}

impl Outcome {
    pub fn parse(text: &str) -> Option<Outcome> {
        match text {
            "success" => Some(Outcome::Success),
            "failure" => Some(Outcome::Failure),
            "denied" => Some(Outcome::Denied),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending() -> Pending {
        Pending {
            time: "2026-01-01T00:00:00.000000Z".into(),
            action: "schedule.created".into(),
            actor_id: "admin".into(),
            actor_client_id: None,
            actor: "{}".into(),
            target: "schedule s-1".into(),
            execution_id: None,
            outcome: "success".into(),
            reason: None,
            details: "{}".into(),
        }
    }

    #[test]
    fn the_hash_covers_every_column_and_tells_null_from_empty() {
        let row = pending().chain(1, GENESIS_HASH.into());
        assert_eq!(row.hash, row.compute_hash());
        let mut edited = row.clone();
        edited.reason = Some(String::new());
        assert_ne!(edited.compute_hash(), row.hash);
        let mut moved = row.clone();
        moved.seq = 2;
        assert_ne!(moved.compute_hash(), row.hash);
        // Length prefixes: moving a byte from one field to the next changes the hash.
        let mut shifted = row.clone();
        shifted.action = "schedule.create".into();
        shifted.actor_id = "dadmin".into();
        assert_ne!(shifted.compute_hash(), row.hash);
    }
}

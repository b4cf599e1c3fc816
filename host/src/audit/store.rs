//! The audit log in the state database: table `audit_events`, append-only and
//! hash-chained, plus `audit_head` (the last seq and hash, written in the same
//! transaction as the events it covers).
//!
//! Tamper evidence does not depend on the triggers that refuse UPDATE and
//! DELETE: [`AuditStore::verify`] recomputes every hash, checks the links and
//! the seq numbers, and compares the last event with `audit_head`, so an
//! edited, deleted, reordered or cut-off event is named even when someone
//! dropped the triggers first. What a hash chain cannot catch on its own is a
//! writer who rewrites the whole chain and the head consistently; for that,
//! keep the head hash `verify` prints somewhere else and compare.

use super::event::AuditEvent;
use super::record::{AuditRecord, Pending, Row, GENESIS_HASH};
use crate::db::DbError;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::Path;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit_events (
    seq INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    action TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    actor_client_id TEXT,
    actor TEXT NOT NULL,
    target TEXT NOT NULL,
    execution_id TEXT,
    outcome TEXT NOT NULL,
    reason TEXT,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_events_by_execution ON audit_events(execution_id);
CREATE INDEX IF NOT EXISTS audit_events_by_actor ON audit_events(actor_id);
CREATE INDEX IF NOT EXISTS audit_events_by_time ON audit_events(time);
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_head_no_delete BEFORE DELETE ON audit_head
BEGIN SELECT RAISE(ABORT, 'the audit head cannot be deleted'); END;
";

const COLUMNS: &str =
    "seq, time, action, actor_id, actor_client_id, actor, target, execution_id, outcome, reason, details, prev_hash, hash";

#[derive(Debug, thiserror::Error)]
pub enum AuditStoreError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("audit log query failed: {0}")]
    Query(#[from] rusqlite::Error),
    /// The background writer stopped or could not write a batch.
    #[error("audit writer: {0}")]
    Writer(String),
}

/// The first thing wrong with the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at event {seq}: {problem}")]
pub struct ChainBreak {
    /// The seq of the first bad (or missing) event.
    pub seq: i64,
    pub problem: String,
}

/// A chain that checked out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainSummary {
    pub events: i64,
    /// The last event's seq and hash (`None` for an empty log).
    pub head_seq: Option<i64>,
    pub head_hash: Option<String>,
}

/// What `query` returns; every field narrows, `None` means any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub execution_id: Option<String>,
    /// Matches the actor id (managed identity, else user) or the client id.
    pub identity: Option<String>,
    /// An action (`egress.call`) or a prefix ending in `*` (`execution.*`).
    pub action: Option<String>,
    /// Inclusive.
    pub since: Option<DateTime<Utc>>,
    /// Exclusive.
    pub until: Option<DateTime<Utc>>,
    pub limit: Option<u32>,
}

/// One connection to the audit tables of the state database.
pub struct AuditStore {
    conn: Connection,
}

impl AuditStore {
    /// Open the state database at `path` (see [`crate::db::open`]) and create the audit tables.
    pub fn open(path: &Path) -> Result<AuditStore, AuditStoreError> {
        let conn = crate::db::open(path)?;
        conn.execute_batch(SCHEMA)?;
        Ok(AuditStore { conn })
    }

    /// Append events in one transaction, chained after the current last event.
    /// The head is read inside an IMMEDIATE transaction, so several writers
    /// (threads or processes) on one database still form one chain.
    pub fn append(&mut self, events: &[(AuditEvent, DateTime<Utc>)]) -> Result<(), AuditStoreError> {
        // Serialized before the write lock is taken: the lock is shared with the
        // state store, and only the chaining needs it.
        let rows: Vec<Pending> = events.iter().map(|(event, time)| Pending::from_event(event, *time)).collect();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let last: Option<(i64, String)> = tx
            .query_row("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let (mut seq, mut prev) = last.unwrap_or((0, GENESIS_HASH.to_string()));
        {
            let mut insert = tx.prepare_cached(&format!(
                "INSERT INTO audit_events ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
            ))?;
            for pending in rows {
                seq += 1;
                let row = pending.chain(seq, prev);
                insert.execute(params![
                    row.seq,
                    row.time,
                    row.action,
                    row.actor_id,
                    row.actor_client_id,
                    row.actor,
                    row.target,
                    row.execution_id,
                    row.outcome,
                    row.reason,
                    row.details,
                    row.prev_hash,
                    row.hash
                ])?;
                prev = row.hash;
            }
        }
        tx.execute(
            "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?1, ?2) ON CONFLICT(id) DO UPDATE SET seq = ?1, hash = ?2",
            params![seq, prev],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Walk the whole chain. `Ok(Err(break))` names the first bad event.
    pub fn verify(&self) -> Result<Result<ChainSummary, ChainBreak>, AuditStoreError> {
        let mut stmt = self.conn.prepare(&format!("SELECT {COLUMNS} FROM audit_events ORDER BY seq"))?;
        let mut rows = stmt.query([])?;
        let mut expected_seq = 1i64;
        let mut prev_hash = GENESIS_HASH.to_string();
        let mut prev_label = String::from("the start of the log");
        while let Some(r) = rows.next()? {
            // A column edited to the wrong type (text seq, NULL hash) is tampering too, not a query error.
            let row = match read_row(r) {
                Ok(row) => row,
                Err(e) => {
                    let problem = format!("the event after {prev_label} cannot be read as an audit event ({e})");
                    return Ok(Err(ChainBreak { seq: expected_seq, problem }));
                }
            };
            if row.seq != expected_seq {
                let problem = if row.seq > expected_seq {
                    format!("missing: {} follows {prev_label} (deleted rows)", row.label())
                } else {
                    format!("{} is out of order after {prev_label}", row.label())
                };
                return Ok(Err(ChainBreak { seq: expected_seq, problem }));
            }
            if row.compute_hash() != row.hash {
                let problem = format!("{} was altered: its content does not match its hash", row.label());
                return Ok(Err(ChainBreak { seq: row.seq, problem }));
            }
            if row.prev_hash != prev_hash {
                let problem =
                    format!("{} does not link to {prev_label} (an event before it was removed, replaced or reordered)", row.label());
                return Ok(Err(ChainBreak { seq: row.seq, problem }));
            }
            prev_hash = row.hash.clone();
            prev_label = row.label();
            expected_seq += 1;
        }
        let events = expected_seq - 1;
        let head: Option<(i64, String)> =
            self.conn.query_row("SELECT seq, hash FROM audit_head WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
        match head {
            None if events == 0 => Ok(Ok(ChainSummary { events: 0, head_seq: None, head_hash: None })),
            None => Ok(Err(ChainBreak { seq: events, problem: "the audit head record is missing".into() })),
            Some((seq, _)) if seq > events => Ok(Err(ChainBreak {
                seq: events + 1,
                problem: format!("missing: the head says the log ends at event {seq}, but the last event is {events} (deleted rows)"),
            })),
            Some((seq, hash)) if seq != events || hash != prev_hash => Ok(Err(ChainBreak {
                seq: seq.min(events),
                problem: format!("the audit head (event {seq}) does not match the last event {events}"),
            })),
            Some((seq, hash)) => Ok(Ok(ChainSummary { events, head_seq: Some(seq), head_hash: Some(hash) })),
        }
    }

    /// Events matching `filter`, oldest first.
    pub fn query(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, AuditStoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM audit_events WHERE 1 = 1");
        let mut args: Vec<String> = Vec::new();
        let mut arg = |sql: &mut String, clause: &str, value: String| {
            args.push(value);
            sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
        };
        if let Some(id) = &filter.execution_id {
            arg(&mut sql, " AND execution_id = ?", id.clone());
        }
        if let Some(id) = &filter.identity {
            arg(&mut sql, " AND (actor_id = ? OR actor_client_id = ?)", id.clone());
        }
        match filter.action.as_deref() {
            Some(prefix) if prefix.ends_with('*') => {
                // `substr` keeps `_` and `%` in action names literal (LIKE would not).
                let prefix = prefix.trim_end_matches('*').to_string();
                let len = prefix.chars().count();
                arg(&mut sql, &format!(" AND substr(action, 1, {len}) = ?"), prefix);
            }
            Some(action) => arg(&mut sql, " AND action = ?", action.to_string()),
            None => {}
        }
        if let Some(since) = filter.since {
            arg(&mut sql, " AND time >= ?", super::record::format_time(since));
        }
        if let Some(until) = filter.until {
            arg(&mut sql, " AND time < ?", super::record::format_time(until));
        }
        sql.push_str(" ORDER BY seq");
        if let Some(limit) = filter.limit {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), read_row)?;
        rows.map(|r| r.map(Row::into_record).map_err(AuditStoreError::from)).collect()
    }

    /// How many events the log holds.
    pub fn count(&self) -> Result<i64, AuditStoreError> {
        Ok(self.conn.query_row("SELECT count(*) FROM audit_events", [], |r| r.get(0))?)
    }
}

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        seq: r.get(0)?,
        time: r.get(1)?,
        action: r.get(2)?,
        actor_id: r.get(3)?,
        actor_client_id: r.get(4)?,
        actor: r.get(5)?,
        target: r.get(6)?,
        execution_id: r.get(7)?,
        outcome: r.get(8)?,
        reason: r.get(9)?,
        details: r.get(10)?,
        prev_hash: r.get(11)?,
        hash: r.get(12)?,
    })
}

//! [`StateStore`] on the SQLite state database (`db::open`, WAL), in tables of
//! its own (`sched_*`). One connection per store; every write that must be
//! atomic runs in an `IMMEDIATE` transaction, so two stores on one file (two
//! engines, or an engine and the API) claim a firing at most once between them.
//! Every statement is taken from the connection's prepared-statement cache:
//! parsing the SQL anew on each call cost about a tenth of an execution's CPU
//! time (`benches/end_to_end`).

use super::*;
use crate::schedule::Schedule;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

mod rows;

use rows::decode_workflow;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sched_schedules (
    id TEXT PRIMARY KEY, spec TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
    last_evaluated INTEGER);
CREATE TABLE IF NOT EXISTS sched_revision (id INTEGER PRIMARY KEY CHECK (id = 1), revision INTEGER NOT NULL);
INSERT OR IGNORE INTO sched_revision (id, revision) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS sched_workflows (id TEXT PRIMARY KEY, definition TEXT NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sched_executions (
    id TEXT PRIMARY KEY, schedule_id TEXT NOT NULL, workflow_id TEXT NOT NULL, firing_key TEXT NOT NULL,
    nominal_time INTEGER NOT NULL, triggered_by TEXT NOT NULL, status TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0, interruptions INTEGER NOT NULL DEFAULT 0, error TEXT, output TEXT,
    owner TEXT, lease_until INTEGER, created_at INTEGER NOT NULL, finished_at INTEGER,
    UNIQUE (schedule_id, firing_key));
CREATE INDEX IF NOT EXISTS sched_executions_unfinished ON sched_executions (finished_at, lease_until);
CREATE TABLE IF NOT EXISTS sched_attempts (
    execution_id TEXT NOT NULL, attempt INTEGER NOT NULL, status TEXT NOT NULL, error TEXT,
    transient INTEGER NOT NULL DEFAULT 0, started_at INTEGER NOT NULL, finished_at INTEGER,
    PRIMARY KEY (execution_id, attempt));
CREATE TABLE IF NOT EXISTS sched_node_results (
    execution_id TEXT NOT NULL, attempt INTEGER NOT NULL, node_id TEXT NOT NULL, status TEXT NOT NULL,
    output TEXT, error TEXT, duration_ms INTEGER NOT NULL, PRIMARY KEY (execution_id, attempt, node_id));
";

const EXECUTION_COLUMNS: &str = "id, schedule_id, workflow_id, firing_key, nominal_time, triggered_by, status, attempt, \
     interruptions, error, output, created_at, finished_at";

pub struct SqliteStateStore {
    conn: Mutex<Connection>,
}

/// Room for every distinct statement of this store (about 30).
const STATEMENT_CACHE: usize = 64;

/// `execute` and `query_row` through the prepared-statement cache.
trait Cached {
    fn execute_cached(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize>;
    fn query_row_cached<T>(&self, sql: &str, params: impl rusqlite::Params, f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn execute_cached(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn query_row_cached<T>(&self, sql: &str, params: impl rusqlite::Params, f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn instant(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn corrupt(what: &str, reason: impl fmt::Display) -> StateError {
    StateError::Corrupt { what: what.to_string(), reason: reason.to_string() }
}

fn ready<'a, T: Send + 'a>(result: Result<T, StateError>) -> StateFuture<'a, T> {
    Box::pin(std::future::ready(result))
}

impl SqliteStateStore {
    /// Open the store on the state database at `path` (created if needed).
    pub fn open(path: &Path) -> Result<SqliteStateStore, StateError> {
        let conn = crate::db::open(path)?;
        conn.execute_batch(SCHEMA)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(SqliteStateStore { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> Result<MutexGuard<'_, Connection>, StateError> {
        self.conn.lock().map_err(|_| StateError::Query("state connection lock poisoned".into()))
    }

    fn bump_revision(conn: &Connection) -> Result<(), StateError> {
        conn.execute_cached("UPDATE sched_revision SET revision = revision + 1 WHERE id = 1", [])?;
        Ok(())
    }

    fn schedule(conn: &Connection, id: &str) -> Result<Option<Schedule>, StateError> {
        let row = conn
            .query_row_cached("SELECT id, spec, created_at, updated_at FROM sched_schedules WHERE id = ?1", [id], Self::schedule_from_row)
            .optional()?;
        row.map(Self::decode_schedule).transpose()
    }

    fn write_spec(conn: &Connection, id: &str, spec: &ScheduleSpec, now: DateTime<Utc>) -> Result<Schedule, StateError> {
        let changed = conn.execute_cached(
            "UPDATE sched_schedules SET spec = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, spec.to_json().to_string(), millis(now)],
        )?;
        if changed == 0 {
            return Err(StateError::ScheduleNotFound(id.to_string()));
        }
        Self::bump_revision(conn)?;
        Self::schedule(conn, id)?.ok_or_else(|| StateError::ScheduleNotFound(id.to_string()))
    }

    fn execution(conn: &Connection, id: &str) -> Result<Option<Execution>, StateError> {
        let sql = format!("SELECT {EXECUTION_COLUMNS} FROM sched_executions WHERE id = ?1");
        conn.query_row_cached(&sql, [id], Self::execution_from_row).optional()?.transpose()
    }

    /// Insert one claimed execution (and, when it starts now, its first attempt);
    /// `None` when its firing key is taken.
    fn insert_claim(conn: &Connection, firing: NewExecution) -> Result<Option<Execution>, StateError> {
        let finished = (firing.status == ExecutionStatus::Skipped).then(|| millis(firing.created_at));
        let starts = firing.status == ExecutionStatus::Running;
        let inserted = conn.execute_cached(
            "INSERT INTO sched_executions (id, schedule_id, workflow_id, firing_key, nominal_time, triggered_by, status,
                 attempt, owner, lease_until, created_at, finished_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT (schedule_id, firing_key) DO NOTHING",
            params![
                firing.id,
                firing.schedule_id,
                firing.workflow_id,
                firing.firing_key,
                millis(firing.nominal_time),
                firing.trigger.to_string(),
                firing.status.as_str(),
                u32::from(starts),
                firing.owner,
                millis(firing.lease_until),
                millis(firing.created_at),
                finished,
            ],
        )?;
        if inserted == 0 {
            return Ok(None);
        }
        if starts {
            conn.execute_cached(
                "INSERT INTO sched_attempts (execution_id, attempt, status, started_at) VALUES (?1, 1, 'running', ?2)",
                params![firing.id, millis(firing.created_at)],
            )?;
        }
        // What reading the row back would give (times in whole milliseconds), without the read.
        Ok(Some(Execution {
            id: firing.id,
            schedule_id: firing.schedule_id,
            workflow_id: firing.workflow_id,
            firing_key: firing.firing_key,
            nominal_time: instant(millis(firing.nominal_time)),
            triggered_by: firing.trigger,
            status: firing.status,
            attempt: u32::from(starts),
            interruptions: 0,
            error: None,
            output: None,
            created_at: instant(millis(firing.created_at)),
            finished_at: finished.map(instant),
        }))
    }

    fn claim_all(&self, claims: Vec<Claim>) -> Result<Vec<Option<Execution>>, StateError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut claimed = Vec::with_capacity(claims.len());
        for Claim { execution, mark } in claims {
            let schedule_id = execution.schedule_id.clone();
            claimed.push(Self::insert_claim(&tx, execution)?);
            if let Some(mark) = mark {
                Self::mark(&tx, &schedule_id, mark)?;
            }
        }
        tx.commit()?;
        Ok(claimed)
    }

    fn mark(conn: &Connection, schedule_id: &str, nominal: DateTime<Utc>) -> Result<(), StateError> {
        conn.execute_cached(
            "UPDATE sched_schedules SET last_evaluated = MAX(COALESCE(last_evaluated, ?2), ?2) WHERE id = ?1",
            params![schedule_id, millis(nominal)],
        )?;
        Ok(())
    }

    fn finish(conn: &Connection, execution_id: &str, end: ExecutionEnd, now: DateTime<Utc>) -> Result<(), StateError> {
        let output = end.output.map(|o| o.to_string());
        let changed = conn.execute_cached(
            "UPDATE sched_executions SET status = ?2, error = ?3, output = ?4, finished_at = ?5, lease_until = NULL
             WHERE id = ?1",
            params![execution_id, end.status.as_str(), end.error, output, millis(now)],
        )?;
        if changed == 0 {
            return Err(StateError::ExecutionNotFound(execution_id.to_string()));
        }
        Ok(())
    }

    /// Mark the running attempt of one execution interrupted; returns how many were.
    fn interrupt_attempt(conn: &Connection, execution_id: &str, now: DateTime<Utc>) -> Result<usize, StateError> {
        let n = conn.execute_cached(
            "UPDATE sched_attempts SET status = 'interrupted', error = 'the host stopped during this attempt', finished_at = ?2
             WHERE execution_id = ?1 AND status = 'running'",
            params![execution_id, millis(now)],
        )?;
        if n > 0 {
            conn.execute_cached(
                "UPDATE sched_executions SET status = 'interrupted', interruptions = interruptions + ?2 WHERE id = ?1",
                params![execution_id, n as i64],
            )?;
        }
        Ok(n)
    }

    fn take(&self, owner: &str, now: DateTime<Utc>, lease_until: DateTime<Utc>, others: bool) -> Result<Vec<Execution>, StateError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let ids: Vec<String> = {
            let mut stmt = tx.prepare_cached(
                "SELECT id FROM sched_executions WHERE finished_at IS NULL
                   AND (lease_until IS NULL OR lease_until < ?2 OR (?3 AND (owner IS NULL OR owner <> ?1)))
                 ORDER BY nominal_time, created_at, id",
            )?;
            let rows = stmt.query_map(params![owner, millis(now), others], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut taken = Vec::with_capacity(ids.len());
        for id in ids {
            Self::interrupt_attempt(&tx, &id, now)?;
            tx.execute_cached(
                "UPDATE sched_executions SET status = CASE WHEN status = 'running' THEN 'interrupted' ELSE status END,
                     owner = ?2, lease_until = ?3 WHERE id = ?1",
                params![id, owner, millis(lease_until)],
            )?;
            if let Some(e) = Self::execution(&tx, &id)? {
                taken.push(e);
            }
        }
        tx.commit()?;
        Ok(taken)
    }

    fn list<T>(&self, sql: &str, args: impl rusqlite::Params, map: impl Fn(&Row<'_>) -> rusqlite::Result<T>) -> Result<Vec<T>, StateError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map(args, map)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

}

fn new_schedule_id() -> String {
    format!("sch-{}", hex::encode(rand::random::<[u8; 8]>()))
}

impl StateStore for SqliteStateStore {
    fn create_schedule(&self, spec: ScheduleSpec, now: DateTime<Utc>) -> StateFuture<'_, Schedule> {
        ready((|| {
            let conn = self.conn()?;
            let id = new_schedule_id();
            conn.execute_cached(
                "INSERT INTO sched_schedules (id, spec, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
                params![id, spec.to_json().to_string(), millis(now)],
            )?;
            Self::bump_revision(&conn)?;
            Self::schedule(&conn, &id)?.ok_or(StateError::ScheduleNotFound(id))
        })())
    }

    fn update_schedule<'a>(&'a self, id: &'a str, spec: ScheduleSpec, now: DateTime<Utc>) -> StateFuture<'a, Schedule> {
        ready(self.conn().and_then(|conn| Self::write_spec(&conn, id, &spec, now)))
    }

    fn delete_schedule<'a>(&'a self, id: &'a str) -> StateFuture<'a, ()> {
        ready((|| {
            let conn = self.conn()?;
            if conn.execute_cached("DELETE FROM sched_schedules WHERE id = ?1", [id])? == 0 {
                return Err(StateError::ScheduleNotFound(id.to_string()));
            }
            Self::bump_revision(&conn)
        })())
    }

    fn get_schedule<'a>(&'a self, id: &'a str) -> StateFuture<'a, Option<Schedule>> {
        ready(self.conn().and_then(|conn| Self::schedule(&conn, id)))
    }

    fn list_schedules(&self) -> StateFuture<'_, Vec<Schedule>> {
        ready((|| {
            let rows = self.list(
                "SELECT id, spec, created_at, updated_at FROM sched_schedules ORDER BY created_at, id",
                [],
                Self::schedule_from_row,
            )?;
            rows.into_iter().map(Self::decode_schedule).collect()
        })())
    }

    fn schedules_page<'a>(&'a self, after: Option<&'a str>, limit: u32) -> StateFuture<'a, Vec<(Schedule, Option<DateTime<Utc>>)>> {
        ready((|| {
            let rows = self.list(
                "SELECT id, spec, created_at, updated_at, last_evaluated FROM sched_schedules
                 WHERE ?1 IS NULL OR id > ?1 ORDER BY id LIMIT ?2",
                params![after, limit],
                |row| Ok((Self::schedule_from_row(row)?, row.get::<_, Option<i64>>(4)?)),
            )?;
            rows.into_iter().map(|(row, mark)| Ok((Self::decode_schedule(row)?, mark.map(instant)))).collect()
        })())
    }

    fn set_paused<'a>(&'a self, id: &'a str, paused: bool, now: DateTime<Utc>) -> StateFuture<'a, Schedule> {
        ready((|| {
            let mut conn = self.conn()?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut spec = Self::schedule(&tx, id)?.ok_or_else(|| StateError::ScheduleNotFound(id.to_string()))?.spec;
            let was_paused = spec.paused;
            spec.paused = paused;
            let schedule = Self::write_spec(&tx, id, &spec, now)?;
            if was_paused && !paused {
                // Resuming starts the clock again from now: paused time is not caught up.
                Self::mark(&tx, id, now)?;
            }
            tx.commit()?;
            Ok(schedule)
        })())
    }

    fn schedules_revision(&self) -> StateFuture<'_, u64> {
        ready(self.conn().and_then(|conn| {
            Ok(conn.query_row_cached("SELECT revision FROM sched_revision WHERE id = 1", [], |r| r.get::<_, i64>(0))? as u64)
        }))
    }

    fn last_evaluated<'a>(&'a self, schedule_id: &'a str) -> StateFuture<'a, Option<DateTime<Utc>>> {
        ready(self.conn().and_then(|conn| {
            let mark: Option<Option<i64>> = conn
                .query_row_cached("SELECT last_evaluated FROM sched_schedules WHERE id = ?1", [schedule_id], |r| r.get(0))
                .optional()?;
            Ok(mark.flatten().map(instant))
        }))
    }

    fn mark_evaluated<'a>(&'a self, schedule_id: &'a str, nominal: DateTime<Utc>) -> StateFuture<'a, ()> {
        ready(self.conn().and_then(|conn| Self::mark(&conn, schedule_id, nominal)))
    }

    fn claim_firings(&self, claims: Vec<Claim>) -> StateFuture<'_, Vec<Option<Execution>>> {
        ready(self.claim_all(claims))
    }

    fn start_attempt<'a>(&'a self, execution_id: &'a str, attempt: u32, now: DateTime<Utc>) -> StateFuture<'a, ()> {
        ready((|| {
            let mut conn = self.conn()?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let changed = tx.execute_cached(
                "UPDATE sched_executions SET status = 'running', attempt = ?2 WHERE id = ?1 AND finished_at IS NULL",
                params![execution_id, attempt],
            )?;
            if changed == 0 {
                return Err(StateError::ExecutionNotFound(execution_id.to_string()));
            }
            tx.execute_cached(
                "INSERT OR REPLACE INTO sched_attempts (execution_id, attempt, status, started_at) VALUES (?1, ?2, 'running', ?3)",
                params![execution_id, attempt, millis(now)],
            )?;
            tx.commit()?;
            Ok(())
        })())
    }

    fn end_attempt<'a>(
        &'a self,
        execution_id: &'a str,
        attempt: u32,
        end: AttemptEnd,
        finish: Option<ExecutionEnd>,
        now: DateTime<Utc>,
    ) -> StateFuture<'a, ()> {
        ready((|| {
            let mut conn = self.conn()?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute_cached(
                "UPDATE sched_attempts SET status = ?3, error = ?4, transient = ?5, finished_at = ?6
                 WHERE execution_id = ?1 AND attempt = ?2",
                params![execution_id, attempt, end.status.as_str(), end.error, end.transient, millis(now)],
            )?;
            if let Some(finish) = finish {
                Self::finish(&tx, execution_id, finish, now)?;
            }
            tx.commit()?;
            Ok(())
        })())
    }

    fn finish_execution<'a>(
        &'a self,
        execution_id: &'a str,
        status: ExecutionStatus,
        error: Option<String>,
        output: Option<serde_json::Value>,
        now: DateTime<Utc>,
    ) -> StateFuture<'a, ()> {
        ready(self.conn().and_then(|conn| Self::finish(&conn, execution_id, ExecutionEnd { status, error, output }, now)))
    }

    fn record_node_result(&self, r: NodeResult) -> StateFuture<'_, ()> {
        ready(self.conn().and_then(|conn| {
            conn.execute_cached(
                "INSERT OR REPLACE INTO sched_node_results (execution_id, attempt, node_id, status, output, error, duration_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![r.execution_id, r.attempt, r.node_id, r.status, r.output.map(|o| o.to_string()), r.error, r.duration_ms as i64],
            )?;
            Ok(())
        }))
    }

    fn get_execution<'a>(&'a self, id: &'a str) -> StateFuture<'a, Option<Execution>> {
        ready(self.conn().and_then(|conn| Self::execution(&conn, id)))
    }

    fn list_executions<'a>(&'a self, schedule_id: Option<&'a str>, limit: u32) -> StateFuture<'a, Vec<Execution>> {
        ready((|| {
            let sql = format!(
                "SELECT {EXECUTION_COLUMNS} FROM sched_executions WHERE (?1 IS NULL OR schedule_id = ?1)
                 ORDER BY created_at DESC, nominal_time DESC, id DESC LIMIT ?2"
            );
            self.list(&sql, params![schedule_id, limit], Self::execution_from_row)?.into_iter().collect()
        })())
    }

    fn attempts<'a>(&'a self, execution_id: &'a str) -> StateFuture<'a, Vec<AttemptRecord>> {
        ready((|| {
            self.list(
                "SELECT execution_id, attempt, status, error, transient, started_at, finished_at FROM sched_attempts
                 WHERE execution_id = ?1 ORDER BY attempt",
                [execution_id],
                Self::attempt_from_row,
            )?
            .into_iter()
            .collect()
        })())
    }

    fn node_results<'a>(&'a self, execution_id: &'a str) -> StateFuture<'a, Vec<NodeResult>> {
        ready((|| {
            let rows = self.list(
                "SELECT execution_id, attempt, node_id, status, output, error, duration_ms FROM sched_node_results
                 WHERE execution_id = ?1 ORDER BY attempt, rowid",
                [execution_id],
                |r| {
                    let output: Option<String> = r.get(4)?;
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, output, r.get(5)?, r.get::<_, i64>(6)?))
                },
            )?;
            rows.into_iter()
                .map(|(execution_id, attempt, node_id, status, output, error, ms)| {
                    let output = output
                        .map(|o| serde_json::from_str(&o))
                        .transpose()
                        .map_err(|e| corrupt(&format!("node result of `{execution_id}`"), e))?;
                    Ok(NodeResult { execution_id, attempt, node_id, status, output, error, duration_ms: ms as u64 })
                })
                .collect()
        })())
    }

    fn renew_leases<'a>(&'a self, owner: &'a str, until: DateTime<Utc>) -> StateFuture<'a, ()> {
        ready(self.conn().and_then(|conn| {
            conn.execute_cached(
                "UPDATE sched_executions SET lease_until = ?2 WHERE owner = ?1 AND finished_at IS NULL",
                params![owner, millis(until)],
            )?;
            Ok(())
        }))
    }

    fn take_abandoned<'a>(
        &'a self,
        owner: &'a str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        other_owners: bool,
    ) -> StateFuture<'a, Vec<Execution>> {
        ready(self.take(owner, now, lease_until, other_owners))
    }

    fn release<'a>(&'a self, execution_id: &'a str, now: DateTime<Utc>) -> StateFuture<'a, ()> {
        ready((|| {
            let mut conn = self.conn()?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            Self::interrupt_attempt(&tx, execution_id, now)?;
            tx.execute_cached(
                "UPDATE sched_executions SET lease_until = ?2 WHERE id = ?1 AND finished_at IS NULL",
                params![execution_id, millis(now) - 1],
            )?;
            tx.commit()?;
            Ok(())
        })())
    }

    fn put_workflow<'a>(&'a self, workflow: &'a Workflow, now: DateTime<Utc>) -> StateFuture<'a, ()> {
        ready(self.conn().and_then(|conn| {
            conn.execute_cached(
                "INSERT INTO sched_workflows (id, definition, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET definition = excluded.definition, updated_at = excluded.updated_at",
                params![workflow.id, workflow.to_json().to_string(), millis(now)],
            )?;
            Ok(())
        }))
    }

    fn get_workflow<'a>(&'a self, id: &'a str) -> StateFuture<'a, Option<Workflow>> {
        ready((|| {
            let conn = self.conn()?;
            let text: Option<String> =
                conn.query_row_cached("SELECT definition FROM sched_workflows WHERE id = ?1", [id], |r| r.get(0)).optional()?;
            text.map(|t| decode_workflow(id, &t)).transpose()
        })())
    }

    fn list_workflows(&self) -> StateFuture<'_, Vec<Workflow>> {
        ready((|| {
            let rows = self.list("SELECT id, definition FROM sched_workflows ORDER BY id", [], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            rows.iter().map(|(id, text)| decode_workflow(id, text)).collect()
        })())
    }

    fn delete_workflow<'a>(&'a self, id: &'a str) -> StateFuture<'a, ()> {
        ready((|| {
            let conn = self.conn()?;
            if conn.execute_cached("DELETE FROM sched_workflows WHERE id = ?1", [id])? == 0 {
                return Err(StateError::WorkflowNotFound(id.to_string()));
            }
            Ok(())
        })())
    }
}

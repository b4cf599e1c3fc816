//! Durable scheduler state behind the [`StateStore`] seam: schedules,
//! workflows, firing claims, executions with their attempts and node results,
//! and the last evaluated nominal time of each schedule.
//!
//! The trait is written for more than one backend ([`SqliteStateStore`] now,
//! PostgreSQL next), so it states its semantics instead of leaning on SQLite:
//! * **Claims.** A firing is identified by `(schedule id, firing key)`; the key
//!   is the nominal time (RFC 3339, UTC) for timed and backfill firings and
//!   `manual:<id>` for trigger-now. [`StateStore::claim_firing`] creates the
//!   execution and succeeds at most once per key, atomically with advancing the
//!   schedule's evaluation mark. [`StateStore::claim_firings`] claims many in one
//!   transaction (the firings of one timer tick), and a claim may start the
//!   execution's first attempt in that same transaction.
//! * **Leases.** Every unfinished execution has an owner (one engine instance)
//!   and a lease expiry. Owners renew their leases; [`StateStore::take_abandoned`]
//!   hands executions whose lease expired (or, for a single-process store on
//!   startup, all executions of other owners) to the caller: `running` ones are
//!   marked `interrupted` first.
//! * **Identifiers** are strings chosen by the caller or generated here
//!   (`sch-…`); no database row ids leave the store. Times are whole milliseconds.

mod sqlite;

pub use sqlite::SqliteStateStore;

use crate::schedule::{Schedule, ScheduleSpec};
use crate::workflow::Workflow;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::Serialize;
use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("schedule `{0}` does not exist")]
    ScheduleNotFound(String),
    #[error("workflow `{0}` does not exist")]
    WorkflowNotFound(String),
    #[error("execution `{0}` does not exist")]
    ExecutionNotFound(String),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error("state database query failed: {0}")]
    Query(String),
    #[error("stored {what} is unreadable: {reason}")]
    Corrupt { what: String, reason: String },
}

impl From<rusqlite::Error> for StateError {
    fn from(e: rusqlite::Error) -> Self {
        StateError::Query(e.to_string())
    }
}

pub type StateFuture<'a, T> = BoxFuture<'a, Result<T, StateError>>;

/// How an execution came about; `triggered-by` in the node's context.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// The schedule's timer (`schedule:<name>`).
    Schedule { name: String },
    /// Trigger-now by a user (`manual:<user>`).
    Manual { user: String },
    /// A backfill over a time range (`backfill`).
    Backfill,
}

impl Trigger {
    pub fn parse(text: &str) -> Option<Trigger> {
        if text == "backfill" {
            return Some(Trigger::Backfill);
        }
        match text.split_once(':') {
            Some(("schedule", name)) => Some(Trigger::Schedule { name: name.to_string() }),
            Some(("manual", user)) => Some(Trigger::Manual { user: user.to_string() }),
            _ => None,
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::Schedule { name } => write!(f, "schedule:{name}"),
            Trigger::Manual { user } => write!(f, "manual:{user}"),
            Trigger::Backfill => f.write_str("backfill"),
        }
    }
}

impl Serialize for Trigger {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExecutionStatus {
    /// Claimed, waiting to start (buffered behind another execution, or about to run).
    Pending,
    /// An attempt is running, or the execution waits for its next attempt.
    Running,
    Succeeded,
    Failed,
    /// Refused with 403 semantics (identity disabled, access denied); never retried.
    Rejected,
    /// The host stopped while it ran and it could not be resumed.
    Interrupted,
    /// Not run: the overlap policy dropped it.
    Skipped,
}

impl ExecutionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Pending => "pending",
            ExecutionStatus::Running => "running",
            ExecutionStatus::Succeeded => "succeeded",
            ExecutionStatus::Failed => "failed",
            ExecutionStatus::Rejected => "rejected",
            ExecutionStatus::Interrupted => "interrupted",
            ExecutionStatus::Skipped => "skipped",
        }
    }

    pub fn parse(text: &str) -> Option<ExecutionStatus> {
        [
            ExecutionStatus::Pending,
            ExecutionStatus::Running,
            ExecutionStatus::Succeeded,
            ExecutionStatus::Failed,
            ExecutionStatus::Rejected,
            ExecutionStatus::Interrupted,
            ExecutionStatus::Skipped,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    pub fn is_final(self) -> bool {
        !matches!(self, ExecutionStatus::Pending | ExecutionStatus::Running)
    }
}

/// The key of a timed or backfill firing: its nominal time.
pub fn nominal_key(nominal: DateTime<Utc>) -> String {
    nominal.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A firing to claim.
#[derive(Debug, Clone)]
pub struct NewExecution {
    pub id: String,
    pub schedule_id: String,
    pub workflow_id: String,
    pub firing_key: String,
    pub nominal_time: DateTime<Utc>,
    pub trigger: Trigger,
    /// `Pending` normally; `Running` also starts attempt 1 (at `created_at`);
    /// `Skipped` records a firing the overlap policy dropped.
    pub status: ExecutionStatus,
    pub owner: String,
    pub lease_until: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// One firing of a [`StateStore::claim_firings`] batch.
#[derive(Debug, Clone)]
pub struct Claim {
    pub execution: NewExecution,
    /// The evaluation mark to move forward in the same transaction, claimed or not.
    pub mark: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    pub id: String,
    pub schedule_id: String,
    pub workflow_id: String,
    pub firing_key: String,
    #[serde(serialize_with = "crate::schedule::rfc3339::instant")]
    pub nominal_time: DateTime<Utc>,
    pub triggered_by: Trigger,
    pub status: ExecutionStatus,
    /// The last attempt started (0 before the first).
    pub attempt: u32,
    /// How many attempts the host's stopping cut short.
    pub interruptions: u32,
    pub error: Option<String>,
    pub output: Option<serde_json::Value>,
    #[serde(serialize_with = "crate::schedule::rfc3339::instant")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::schedule::rfc3339::option")]
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttemptStatus {
    Running,
    Succeeded,
    Failed,
    Rejected,
    Interrupted,
}

impl AttemptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptStatus::Running => "running",
            AttemptStatus::Succeeded => "succeeded",
            AttemptStatus::Failed => "failed",
            AttemptStatus::Rejected => "rejected",
            AttemptStatus::Interrupted => "interrupted",
        }
    }

    fn parse(text: &str) -> Option<AttemptStatus> {
        [AttemptStatus::Running, AttemptStatus::Succeeded, AttemptStatus::Failed, AttemptStatus::Rejected, AttemptStatus::Interrupted]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptRecord {
    pub execution_id: String,
    pub attempt: u32,
    pub status: AttemptStatus,
    pub error: Option<String>,
    /// Whether the failure was transient (worth another attempt).
    pub transient: bool,
    #[serde(serialize_with = "crate::schedule::rfc3339::instant")]
    pub started_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::schedule::rfc3339::option")]
    pub finished_at: Option<DateTime<Utc>>,
}

/// One node's run within one attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeResult {
    pub execution_id: String,
    pub attempt: u32,
    pub node_id: String,
    /// `succeeded` or `failed`.
    pub status: String,
    pub output: Option<serde_json::Value>,
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// What an attempt ended as.
#[derive(Debug, Clone)]
pub struct AttemptEnd {
    pub status: AttemptStatus,
    pub error: Option<String>,
    pub transient: bool,
}

/// What an execution ended as, recorded with its last attempt's end.
#[derive(Debug, Clone)]
pub struct ExecutionEnd {
    pub status: ExecutionStatus,
    pub error: Option<String>,
    pub output: Option<serde_json::Value>,
}

/// The durable state of the scheduler. All methods are atomic on their own.
pub trait StateStore: Send + Sync {
    // Schedules. `create` generates the id; `set_paused(false)` also moves the
    // schedule's evaluation mark to `now`, so paused time is never caught up.
    fn create_schedule(&self, spec: ScheduleSpec, now: DateTime<Utc>) -> StateFuture<'_, Schedule>;
    fn update_schedule<'a>(&'a self, id: &'a str, spec: ScheduleSpec, now: DateTime<Utc>) -> StateFuture<'a, Schedule>;
    fn delete_schedule<'a>(&'a self, id: &'a str) -> StateFuture<'a, ()>;
    fn get_schedule<'a>(&'a self, id: &'a str) -> StateFuture<'a, Option<Schedule>>;
    fn list_schedules(&self) -> StateFuture<'_, Vec<Schedule>>;
    /// Up to `limit` schedules with ids after `after`, by id, each with its
    /// evaluation mark (see [`StateStore::last_evaluated`]): how an engine loads
    /// a large store without holding all of it twice.
    fn schedules_page<'a>(&'a self, after: Option<&'a str>, limit: u32) -> StateFuture<'a, Vec<(Schedule, Option<DateTime<Utc>>)>>;
    fn set_paused<'a>(&'a self, id: &'a str, paused: bool, now: DateTime<Utc>) -> StateFuture<'a, Schedule>;
    /// Grows on every schedule change (by anyone sharing the store): engines poll it to reload.
    fn schedules_revision(&self) -> StateFuture<'_, u64>;

    /// The latest nominal time this schedule's timer has dealt with (fired, skipped or
    /// let pass); `None` before its first evaluation.
    fn last_evaluated<'a>(&'a self, schedule_id: &'a str) -> StateFuture<'a, Option<DateTime<Utc>>>;
    /// Move the evaluation mark forward (never back).
    fn mark_evaluated<'a>(&'a self, schedule_id: &'a str, nominal: DateTime<Utc>) -> StateFuture<'a, ()>;

    /// Claim firings, all in one transaction: create each execution unless its
    /// `(schedule id, firing key)` is already claimed. One answer per claim, in
    /// order; `None` = someone (maybe another replica) has it. Each claim's
    /// `mark` moves that schedule's evaluation mark forward in the same
    /// transaction. A claim whose status is `Running` starts attempt 1 too.
    fn claim_firings(&self, claims: Vec<Claim>) -> StateFuture<'_, Vec<Option<Execution>>>;

    /// [`StateStore::claim_firings`] with one claim.
    fn claim_firing(&self, execution: NewExecution, mark: Option<DateTime<Utc>>) -> StateFuture<'_, Option<Execution>> {
        Box::pin(async move { Ok(self.claim_firings(vec![Claim { execution, mark }]).await?.pop().flatten()) })
    }

    /// Start attempt `attempt` (status `running`).
    fn start_attempt<'a>(&'a self, execution_id: &'a str, attempt: u32, now: DateTime<Utc>) -> StateFuture<'a, ()>;
    /// End attempt `attempt`; with `finish`, the execution ends in the same
    /// transaction (as [`StateStore::finish_execution`] would end it).
    fn end_attempt<'a>(
        &'a self,
        execution_id: &'a str,
        attempt: u32,
        end: AttemptEnd,
        finish: Option<ExecutionEnd>,
        now: DateTime<Utc>,
    ) -> StateFuture<'a, ()>;
    /// Finish the execution and release its lease.
    fn finish_execution<'a>(
        &'a self,
        execution_id: &'a str,
        status: ExecutionStatus,
        error: Option<String>,
        output: Option<serde_json::Value>,
        now: DateTime<Utc>,
    ) -> StateFuture<'a, ()>;
    fn record_node_result(&self, result: NodeResult) -> StateFuture<'_, ()>;

    fn get_execution<'a>(&'a self, id: &'a str) -> StateFuture<'a, Option<Execution>>;
    /// Newest first; `schedule_id` narrows to one schedule.
    fn list_executions<'a>(&'a self, schedule_id: Option<&'a str>, limit: u32) -> StateFuture<'a, Vec<Execution>>;
    fn attempts<'a>(&'a self, execution_id: &'a str) -> StateFuture<'a, Vec<AttemptRecord>>;
    fn node_results<'a>(&'a self, execution_id: &'a str) -> StateFuture<'a, Vec<NodeResult>>;

    /// Extend the leases of every unfinished execution `owner` holds.
    fn renew_leases<'a>(&'a self, owner: &'a str, until: DateTime<Utc>) -> StateFuture<'a, ()>;
    /// Take over unfinished executions that nobody holds any more: those whose lease
    /// expired before `now`, or with `other_owners`, every one not held by `owner`.
    /// `running` ones are marked `interrupted` (their attempt too, counted in
    /// `interruptions`); all come back owned by `owner` with a lease until `lease_until`.
    fn take_abandoned<'a>(
        &'a self,
        owner: &'a str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        other_owners: bool,
    ) -> StateFuture<'a, Vec<Execution>>;
    /// Give up the lease of an unfinished execution (graceful shutdown): its
    /// running attempt is marked `interrupted`, so the next owner resumes it.
    fn release<'a>(&'a self, execution_id: &'a str, now: DateTime<Utc>) -> StateFuture<'a, ()>;

    // Workflows.
    fn put_workflow<'a>(&'a self, workflow: &'a Workflow, now: DateTime<Utc>) -> StateFuture<'a, ()>;
    fn get_workflow<'a>(&'a self, id: &'a str) -> StateFuture<'a, Option<Workflow>>;
    fn list_workflows(&self) -> StateFuture<'_, Vec<Workflow>>;
    fn delete_workflow<'a>(&'a self, id: &'a str) -> StateFuture<'a, ()>;
}

#[cfg(test)]
mod tests;

//! The scheduler: one engine over all schedules that fires each at its nominal
//! instant on the [`Clock`], claims every firing once by its idempotency key
//! (schedule id, nominal time), applies the overlap and catch-up policies,
//! retries transient failures with backoff, and hands each attempt to a
//! [`FiringHandler`] (DESIGN §7).
//!
//! * **One timer structure**: a sorted set of `(instant, timer)` for every
//!   schedule's next fire time, every pending retry and the lease heartbeat. There
//!   is no task per schedule; the engine is one task that sleeps until the first
//!   entry, a command, or an execution finishing.
//! * **Exactly once**: a firing runs only after [`StateStore::claim_firings`]
//!   created its execution; a second engine (or a restart) finds it claimed.
//!   On start the engine takes over unfinished executions (see
//!   [`SchedulerConfig::take_over_on_start`]): pending ones run, interrupted ones
//!   get their next attempt, then every schedule catches up per its policy.
//! * **Overlap** (timed firings): `skip` records the firing as skipped while one
//!   runs; `buffer-one` keeps one waiting (more are skipped); `buffer-all` queues
//!   all; `allow-all` runs them side by side. Firings caught up after downtime
//!   queue behind each other (the policy asked for them). Trigger-now always runs at once (its
//!   own key, allowed while paused). Backfill firings queue behind each other,
//!   one at a time per schedule, apart from the timed ones, and are never skipped.
//! * **Retry**: attempt `n+1` of the same execution after a transient failure,
//!   waiting [`retry::delay`] on the clock; attempts the host cut short do not
//!   count against `maxAttempts` (at most [`MAX_INTERRUPTIONS`] of them).
//! * **Shutdown**: stop firing, give running executions the grace period, then
//!   mark the rest interrupted and release them for the next start.

mod due;
mod engine;
mod handler;
pub mod retry;

pub use due::{plan, DuePlan, MISFIRE_GRACE};
pub use handler::{FixedTokenSource, TokenSourceFactory, WorkflowHandler};
pub use crate::workflow::NodeObserver;

use crate::clock::Clock;
use crate::schedule::{Schedule, ScheduleSpec, TemplateVars};
use crate::state::{Execution, ExecutionStatus, StateError, StateStore, Trigger};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc, oneshot};

/// Attempts cut short by the host stopping, after which an execution is given up.
pub const MAX_INTERRUPTIONS: u32 = 3;

/// One attempt of one firing, as handed to the [`FiringHandler`].
#[derive(Debug, Clone)]
pub struct Firing {
    pub schedule: Arc<Schedule>,
    /// The nominal fire time (for trigger-now: when it was triggered).
    pub nominal_time: DateTime<Utc>,
    pub execution_id: String,
    pub trigger: Trigger,
    /// 1-based attempt within the execution.
    pub attempt: u32,
}

impl Firing {
    /// `triggered-by` for the node context: `schedule:<name>`, `manual:<user>`, `backfill`.
    pub fn triggered_by(&self) -> String {
        self.trigger.to_string()
    }

    /// The values of the `inputData` template variables for this attempt.
    pub fn template_vars(&self) -> Result<TemplateVars, crate::cron::CronError> {
        Ok(TemplateVars {
            schedule_id: self.schedule.id.clone(),
            schedule_name: self.schedule.spec.name.clone(),
            zone: self.schedule.spec.zone()?,
            nominal_time: self.nominal_time,
            execution_id: self.execution_id.clone(),
            attempt: self.attempt,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Network, 5xx/429, token endpoint unavailable, a node's `retryable`: try again.
    Transient,
    /// Anything else that failed: never retried.
    Permanent,
    /// Refused with 403 semantics (disabled identity, access denied): never retried.
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    /// Names what failed; never holds a secret or token.
    pub reason: String,
}

impl Failure {
    pub fn transient(reason: impl Into<String>) -> Failure {
        Failure { kind: FailureKind::Transient, reason: reason.into() }
    }
    pub fn permanent(reason: impl Into<String>) -> Failure {
        Failure { kind: FailureKind::Permanent, reason: reason.into() }
    }
    pub fn rejected(reason: impl Into<String>) -> Failure {
        Failure { kind: FailureKind::Rejected, reason: reason.into() }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExecutionOutcome {
    Succeeded { output: serde_json::Value },
    Failed(Failure),
}

/// Runs one attempt of a firing. The engine records the outcome and decides on retries.
pub trait FiringHandler: Send + Sync {
    fn run(&self, firing: Firing) -> BoxFuture<'_, ExecutionOutcome>;
}

/// What the engine did; subscribe with [`Scheduler::events`] (tests, metrics, logs).
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    Claimed { execution_id: String, schedule_id: String, nominal_time: DateTime<Utc>, trigger: Trigger },
    /// Recorded as skipped by the overlap policy.
    Skipped { execution_id: String, schedule_id: String, nominal_time: DateTime<Utc> },
    /// Due times the catch-up policy dropped (at least this many).
    Missed { schedule_id: String, count: usize },
    AttemptStarted { execution_id: String, attempt: u32 },
    RetryScheduled { execution_id: String, next_attempt: u32, at: DateTime<Utc> },
    Finished { execution_id: String, status: ExecutionStatus, error: Option<String> },
    /// Shutdown began: nothing new starts; running executions have the grace period.
    Stopping { running: usize },
}

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// This engine instance's name on leases; unique per start.
    pub owner: String,
    /// How long a lease on an unfinished execution lasts without renewal.
    pub lease: chrono::Duration,
    /// The most due firings a single catch-up or backfill enumerates.
    pub max_firings: usize,
    /// Take over every unfinished execution of other owners on start, not only those
    /// whose lease expired. Right for one process on its own database (the SQLite
    /// default); wrong for replicas sharing one (set `false` there).
    pub take_over_on_start: bool,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            owner: format!("engine-{}", hex::encode(rand::random::<[u8; 6]>())),
            lease: chrono::Duration::seconds(60),
            max_firings: 1000,
            take_over_on_start: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("schedule `{0}` does not exist")]
    ScheduleNotFound(String),
    #[error("backfill range: {0}")]
    BadRange(String),
    #[error("schedule `{id}` cannot be evaluated: {reason}")]
    BadSchedule { id: String, reason: String },
    #[error("the scheduler has stopped")]
    Stopped,
}

/// What a backfill claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillReport {
    /// Executions created, oldest nominal time first.
    pub claimed: Vec<String>,
    /// Nominal times in the range that already had a firing (timed or an earlier backfill).
    pub already_claimed: usize,
}

/// How shutdown went.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShutdownReport {
    /// Executions that finished within the grace period.
    pub finished: Vec<String>,
    /// Executions cut short and marked interrupted (resumed on the next start).
    pub interrupted: Vec<String>,
}

enum Command {
    Sync(oneshot::Sender<()>),
    Reload(oneshot::Sender<()>),
    TriggerNow { schedule_id: String, user: String, reply: oneshot::Sender<Result<Execution, SchedulerError>> },
    Backfill {
        schedule_id: String,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        reply: oneshot::Sender<Result<BackfillReport, SchedulerError>>,
    },
    Shutdown { grace: std::time::Duration, reply: oneshot::Sender<ShutdownReport> },
}

/// A running scheduler. Dropping it without [`Scheduler::shutdown`] stops the engine
/// at once (running executions are then interrupted by the next start).
pub struct Scheduler {
    commands: mpsc::UnboundedSender<Command>,
    events: broadcast::Sender<EngineEvent>,
    store: Arc<dyn StateStore>,
    clock: Arc<dyn Clock>,
}

impl Scheduler {
    /// Take over unfinished executions, load every schedule, and start firing.
    pub async fn start(
        store: Arc<dyn StateStore>,
        handler: Arc<dyn FiringHandler>,
        clock: Arc<dyn Clock>,
        config: SchedulerConfig,
    ) -> Result<Scheduler, SchedulerError> {
        let (events, _) = broadcast::channel(4096);
        let (commands, rx) = mpsc::unbounded_channel();
        let engine = engine::Engine::start(store.clone(), handler, clock.clone(), config, events.clone()).await?;
        tokio::spawn(engine.run(rx));
        Ok(Scheduler { commands, events, store, clock })
    }

    /// Everything the engine does from now on.
    pub fn events(&self) -> broadcast::Receiver<EngineEvent> {
        self.events.subscribe()
    }

    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.store
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, SchedulerError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).map_err(|_| SchedulerError::Stopped)?;
        rx.await.map_err(|_| SchedulerError::Stopped)
    }

    /// Returns once the engine has dealt with everything due at the clock's current time.
    pub async fn sync(&self) -> Result<(), SchedulerError> {
        self.ask(Command::Sync).await
    }

    /// Re-read schedules from the store (after a change made elsewhere).
    pub async fn reload(&self) -> Result<(), SchedulerError> {
        self.ask(Command::Reload).await
    }

    pub async fn create_schedule(&self, spec: ScheduleSpec) -> Result<Schedule, SchedulerError> {
        let schedule = self.store.create_schedule(spec, self.clock.now()).await?;
        self.reload().await?;
        Ok(schedule)
    }

    pub async fn update_schedule(&self, id: &str, spec: ScheduleSpec) -> Result<Schedule, SchedulerError> {
        let schedule = self.store.update_schedule(id, spec, self.clock.now()).await?;
        self.reload().await?;
        Ok(schedule)
    }

    pub async fn delete_schedule(&self, id: &str) -> Result<(), SchedulerError> {
        self.store.delete_schedule(id).await?;
        self.reload().await
    }

    pub async fn pause(&self, id: &str) -> Result<Schedule, SchedulerError> {
        let schedule = self.store.set_paused(id, true, self.clock.now()).await?;
        self.reload().await?;
        Ok(schedule)
    }

    /// Resume from now: what fell due while paused is not caught up.
    pub async fn resume(&self, id: &str) -> Result<Schedule, SchedulerError> {
        let schedule = self.store.set_paused(id, false, self.clock.now()).await?;
        self.reload().await?;
        Ok(schedule)
    }

    /// Run the schedule's workflow now as `manual:<user>` (also while paused).
    pub async fn trigger_now(&self, schedule_id: &str, user: &str) -> Result<Execution, SchedulerError> {
        let (schedule_id, user) = (schedule_id.to_string(), user.to_string());
        self.ask(|reply| Command::TriggerNow { schedule_id, user, reply }).await?
    }

    /// Claim every nominal time of the schedule in `from..=to` not claimed yet, and run
    /// them one after another as `backfill`.
    pub async fn backfill(&self, schedule_id: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<BackfillReport, SchedulerError> {
        let schedule_id = schedule_id.to_string();
        self.ask(|reply| Command::Backfill { schedule_id, from, to, reply }).await?
    }

    /// Stop firing; wait up to `grace` (real time) for running executions, then mark
    /// the rest interrupted so the next start resumes them.
    pub async fn shutdown(self, grace: std::time::Duration) -> Result<ShutdownReport, SchedulerError> {
        self.ask(|reply| Command::Shutdown { grace, reply }).await
    }
}

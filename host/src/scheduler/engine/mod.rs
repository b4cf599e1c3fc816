//! The engine task: one sorted timer set over all schedules, retries and the
//! lease heartbeat; per-schedule lanes for the overlap policy. Take-over,
//! trigger-now, backfill and shutdown live in `operations`.
//!
//! Writes per execution are kept few because they are what limits firing
//! lateness and throughput (`benches/scheduler`, `benches/end_to_end`): the
//! firings of one tick are claimed in one transaction, a firing admitted to
//! run starts its first attempt in its claim's transaction, and the last
//! attempt ends together with its execution.

use super::{due, retry, Command, EngineEvent, ExecutionOutcome, FailureKind, Firing, FiringHandler, SchedulerConfig, SchedulerError};
use crate::clock::Clock;
use crate::schedule::{OverlapPolicy, Schedule};
use crate::state::{nominal_key, AttemptEnd, AttemptStatus, ExecutionEnd, ExecutionStatus, StateStore, Trigger};
use chrono::{DateTime, Utc};
use futures::FutureExt;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};
use tokio::task::AbortHandle;

mod claims;
mod operations;

use claims::Prepared;

/// Schedules read per query while (re)loading.
const RELOAD_PAGE: u32 = 1_000;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Heartbeat,
    Fire(String),
    Retry(String),
}

/// Which queue of its schedule an execution belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Regular,
    Backfill,
}

/// An admitted execution: running, waiting for its next attempt, or queued.
struct Admitted {
    firing: Firing,
    slot: Slot,
    interruptions: u32,
}

#[derive(Default)]
struct Lane {
    /// Regular executions running or waiting for a retry.
    active: usize,
    queue: VecDeque<Admitted>,
    backfill_active: bool,
    backfill: VecDeque<Admitted>,
}

struct Done {
    execution_id: String,
    attempt: u32,
    outcome: ExecutionOutcome,
}

#[derive(Clone, Copy)]
pub(super) enum Admission {
    Run,
    Queue,
    Skip,
}

/// What follows an attempt's end.
enum AfterAttempt {
    Finish(ExecutionEnd),
    Retry { reason: String },
    /// Stopping: the next start makes the next attempt.
    Release,
}

pub(super) struct Engine {
    store: Arc<dyn StateStore>,
    handler: Arc<dyn FiringHandler>,
    clock: Arc<dyn Clock>,
    config: SchedulerConfig,
    events: broadcast::Sender<EngineEvent>,
    schedules: HashMap<String, Arc<Schedule>>,
    marks: HashMap<String, DateTime<Utc>>,
    timers: BTreeSet<(DateTime<Utc>, Timer)>,
    fire_at: HashMap<String, DateTime<Utc>>,
    lanes: HashMap<String, Lane>,
    running: HashMap<String, (Admitted, AbortHandle)>,
    waiting: HashMap<String, Admitted>,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: Option<mpsc::UnboundedReceiver<Done>>,
    revision: u64,
    stopping: bool,
}

impl Engine {
    pub(super) async fn start(
        store: Arc<dyn StateStore>,
        handler: Arc<dyn FiringHandler>,
        clock: Arc<dyn Clock>,
        config: SchedulerConfig,
        events: broadcast::Sender<EngineEvent>,
    ) -> Result<Engine, SchedulerError> {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let mut engine = Engine {
            store,
            handler,
            clock,
            config,
            events,
            schedules: HashMap::new(),
            marks: HashMap::new(),
            timers: BTreeSet::new(),
            fire_at: HashMap::new(),
            lanes: HashMap::new(),
            running: HashMap::new(),
            waiting: HashMap::new(),
            done_tx,
            done_rx: Some(done_rx),
            revision: 0,
            stopping: false,
        };
        let now = engine.clock.now();
        let taken = engine.store.take_abandoned(&engine.config.owner, now, now + engine.config.lease, engine.config.take_over_on_start).await?;
        engine.reload().await?;
        engine.adopt(taken).await;
        engine.timers.insert((now + engine.heartbeat(), Timer::Heartbeat));
        Ok(engine)
    }

    fn heartbeat(&self) -> chrono::Duration {
        self.config.lease / 3
    }

    fn emit(&self, event: EngineEvent) {
        let _ = self.events.send(event);
    }

    pub(super) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let Some(mut done_rx) = self.done_rx.take() else { return };
        loop {
            self.process_due().await;
            let sleep = match self.timers.first() {
                Some((at, _)) => self.clock.sleep_until(*at),
                None => Box::pin(futures::future::pending()),
            };
            tokio::select! {
                _ = sleep => {}
                Some(done) = done_rx.recv() => self.on_done(done).await,
                command = commands.recv() => match command {
                    None => {
                        self.shutdown(std::time::Duration::ZERO, &mut done_rx).await;
                        return;
                    }
                    Some(Command::Shutdown { grace, reply }) => {
                        let report = self.shutdown(grace, &mut done_rx).await;
                        let _ = reply.send(report);
                        return;
                    }
                    Some(command) => self.on_command(command).await,
                },
            }
        }
    }

    async fn on_command(&mut self, command: Command) {
        match command {
            Command::Sync(reply) => {
                self.process_due().await;
                let _ = reply.send(());
            }
            Command::Reload(reply) => {
                if let Err(e) = self.reload().await {
                    tracing::error!("schedules could not be reloaded: {e}");
                }
                self.process_due().await;
                let _ = reply.send(());
            }
            Command::TriggerNow { schedule_id, user, reply } => {
                let _ = reply.send(self.trigger_now(&schedule_id, user).await);
            }
            Command::Backfill { schedule_id, from, to, reply } => {
                let _ = reply.send(self.backfill(&schedule_id, from, to).await);
            }
            Command::Shutdown { .. } => {}
        }
    }

    // ---- schedules and timers ----

    /// Load every schedule and its mark, arm its timer, and drop the ones gone.
    /// Paged, so a store of 100k schedules is never held twice in memory
    /// (`benches/scheduler`: peak RSS while loading).
    async fn reload(&mut self) -> Result<(), SchedulerError> {
        self.revision = self.store.schedules_revision().await?;
        let mut present = HashSet::with_capacity(self.schedules.len());
        let mut after: Option<String> = None;
        loop {
            let page = self.store.schedules_page(after.as_deref(), RELOAD_PAGE).await?;
            let complete = page.len() < RELOAD_PAGE as usize;
            after = page.last().map(|(schedule, _)| schedule.id.clone());
            for (schedule, mark) in page {
                present.insert(schedule.id.clone());
                if let Some(mark) = mark {
                    self.marks.insert(schedule.id.clone(), mark);
                }
                let schedule = Arc::new(schedule);
                self.schedules.insert(schedule.id.clone(), schedule.clone());
                self.arm(&schedule);
            }
            if complete || after.is_none() {
                break;
            }
        }
        let gone: Vec<String> = self.schedules.keys().filter(|id| !present.contains(*id)).cloned().collect();
        for id in gone {
            self.schedules.remove(&id);
            self.marks.remove(&id);
            self.disarm(&id);
        }
        Ok(())
    }

    fn mark_of(&self, schedule: &Schedule) -> DateTime<Utc> {
        self.marks.get(&schedule.id).copied().unwrap_or_else(|| {
            let created = schedule.created_at;
            match schedule.spec.start_at {
                Some(start) => created.max(start - chrono::Duration::milliseconds(1)),
                None => created,
            }
        })
    }

    fn disarm(&mut self, id: &str) {
        if let Some(at) = self.fire_at.remove(id) {
            self.timers.remove(&(at, Timer::Fire(id.to_string())));
        }
    }

    /// Set the schedule's timer to its next nominal time after its mark.
    fn arm(&mut self, schedule: &Schedule) {
        match schedule.spec.cron() {
            Ok(cron) => self.arm_with(schedule, &cron),
            Err(_) => {
                self.disarm(&schedule.id);
                tracing::error!(schedule = %schedule.id, "stored schedule has an invalid cron expression; it will not fire");
            }
        }
    }

    /// [`Engine::arm`] with the schedule's cron expression parsed already: a
    /// firing has it at hand, and a thousand firings in one tick parse a
    /// thousand fewer (`benches/scheduler`: planning them 18 → 17 ms).
    fn arm_with(&mut self, schedule: &Schedule, cron: &crate::cron::Schedule) {
        self.disarm(&schedule.id);
        if schedule.spec.paused || self.stopping {
            return;
        }
        let mut after = self.mark_of(schedule);
        if let Some(start) = schedule.spec.start_at {
            after = after.max(start - chrono::Duration::milliseconds(1));
        }
        let Some(next) = cron.next_after(after) else { return };
        if schedule.spec.end_at.is_some_and(|end| next > end) {
            return;
        }
        self.fire_at.insert(schedule.id.clone(), next);
        self.timers.insert((next, Timer::Fire(schedule.id.clone())));
    }

    /// Handle every timer due now. The schedules' firings are claimed together,
    /// in one transaction, after the loop: a thousand schedules due in the same
    /// second cost one commit, not a thousand (`benches/scheduler`).
    async fn process_due(&mut self) {
        let now = self.clock.now();
        let mut due_claims = Vec::new();
        while let Some((at, timer)) = self.timers.first().cloned() {
            if at > now || self.stopping {
                break;
            }
            self.timers.remove(&(at, timer.clone()));
            match timer {
                Timer::Heartbeat => self.heartbeat_tick(now).await,
                Timer::Fire(id) => {
                    self.fire_at.remove(&id);
                    self.fire(&id, now, &mut due_claims).await;
                }
                Timer::Retry(id) => {
                    if let Some(admitted) = self.waiting.remove(&id) {
                        self.launch(admitted).await;
                    }
                }
            }
        }
        if !due_claims.is_empty() {
            self.claim_all(due_claims).await;
        }
    }

    async fn heartbeat_tick(&mut self, now: DateTime<Utc>) {
        let until = now + self.config.lease;
        if let Err(e) = self.store.renew_leases(&self.config.owner, until).await {
            tracing::error!("leases could not be renewed: {e}");
        }
        match self.store.schedules_revision().await {
            Ok(rev) if rev != self.revision => {
                if let Err(e) = self.reload().await {
                    tracing::error!("schedules could not be reloaded: {e}");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::error!("schedule revision could not be read: {e}"),
        }
        // Another replica's expired work.
        match self.store.take_abandoned(&self.config.owner, now, until, false).await {
            Ok(taken) => self.adopt(taken).await,
            Err(e) => tracing::error!("abandoned executions could not be taken over: {e}"),
        }
        self.timers.insert((now + self.heartbeat(), Timer::Heartbeat));
    }

    /// Plan a schedule's due firings. A single one (the usual case) joins
    /// `batch`; several (catching up) are claimed here one after the other, as
    /// each one's admission depends on the ones before it.
    async fn fire(&mut self, id: &str, now: DateTime<Utc>, batch: &mut Vec<Prepared>) {
        let Some(schedule) = self.schedules.get(id).cloned() else { return };
        if schedule.spec.paused {
            return;
        }
        let Ok(cron) = schedule.spec.cron() else { return };
        let plan = due::plan(&schedule.spec, &cron, self.mark_of(&schedule), now, self.config.max_firings);
        if plan.dropped > 0 {
            tracing::info!(schedule = %id, dropped = plan.dropped, "missed firings dropped by the catch-up policy");
            self.emit(EngineEvent::Missed { schedule_id: id.to_string(), count: plan.dropped });
        }
        let trigger = Trigger::Schedule { name: schedule.spec.name.clone() };
        if let [nominal] = plan.run[..] {
            let catching_up = now - nominal > due::MISFIRE_GRACE;
            // The claim moves the mark to the newest due time (≥ `nominal`), claimed or not.
            let mark = plan.mark.unwrap_or(nominal);
            batch.push(self.prepare(&schedule, nominal, nominal_key(nominal), trigger, Some(mark), now, catching_up));
            self.marks.insert(id.to_string(), mark);
            self.arm_with(&schedule, &cron);
            return;
        }
        let mut stored_mark = None;
        for nominal in plan.run {
            // Firings caught up after downtime run in turn; the overlap policy is for on-time ones.
            let catching_up = now - nominal > due::MISFIRE_GRACE;
            let prepared = self.prepare(&schedule, nominal, nominal_key(nominal), trigger.clone(), Some(nominal), now, catching_up);
            let claimed = self.claim_one(prepared).await;
            stored_mark = claimed.map(|_| nominal);
        }
        if let Some(mark) = plan.mark {
            // A claim that created its execution moved the mark in its own transaction;
            // writing it again would be one more commit per firing.
            if stored_mark != Some(mark) {
                if let Err(e) = self.store.mark_evaluated(id, mark).await {
                    tracing::error!(schedule = %id, "evaluation mark could not be saved: {e}");
                }
            }
            self.marks.insert(id.to_string(), mark);
        }
        self.arm_with(&schedule, &cron);
    }

    fn admission(&mut self, schedule: &Schedule, trigger: &Trigger, catching_up: bool) -> Admission {
        let lane = self.lanes.entry(schedule.id.clone()).or_default();
        match trigger {
            Trigger::Manual { .. } => Admission::Run,
            Trigger::Backfill => Admission::Queue,
            Trigger::Schedule { .. } if catching_up => Admission::Queue,
            Trigger::Schedule { .. } => match schedule.spec.overlap {
                OverlapPolicy::AllowAll => Admission::Run,
                _ if lane.active == 0 && lane.queue.is_empty() => Admission::Run,
                OverlapPolicy::Skip => Admission::Skip,
                OverlapPolicy::BufferOne if lane.queue.is_empty() => Admission::Queue,
                OverlapPolicy::BufferOne => Admission::Skip,
                OverlapPolicy::BufferAll => Admission::Queue,
            },
        }
    }

    async fn enqueue(&mut self, admitted: Admitted) {
        let schedule_id = admitted.firing.schedule.id.clone();
        let lane = self.lanes.entry(schedule_id.clone()).or_default();
        match admitted.slot {
            Slot::Regular => lane.queue.push_back(admitted),
            Slot::Backfill => lane.backfill.push_back(admitted),
        }
        self.pump(&schedule_id).await;
    }

    /// Start what the lane's policy lets start now.
    async fn pump(&mut self, schedule_id: &str) {
        if self.stopping {
            return;
        }
        loop {
            let Some(lane) = self.lanes.get_mut(schedule_id) else { return };
            let allow_all = lane
                .queue
                .front()
                .is_some_and(|a| a.firing.schedule.spec.overlap == OverlapPolicy::AllowAll);
            let next = if !lane.backfill_active && !lane.backfill.is_empty() {
                lane.backfill.pop_front()
            } else if !lane.queue.is_empty() && (lane.active == 0 || allow_all) {
                lane.queue.pop_front()
            } else {
                None
            };
            match next {
                Some(admitted) => self.begin(admitted).await,
                None => return,
            }
        }
    }

    /// Count an admitted execution as active in its lane and start its attempt.
    async fn begin(&mut self, admitted: Admitted) {
        self.count_active(&admitted);
        self.launch(admitted).await;
    }

    fn count_active(&mut self, admitted: &Admitted) {
        let lane = self.lanes.entry(admitted.firing.schedule.id.clone()).or_default();
        match admitted.slot {
            Slot::Regular => lane.active += 1,
            Slot::Backfill => lane.backfill_active = true,
        }
    }

    /// Record the attempt's start, then run it.
    async fn launch(&mut self, admitted: Admitted) {
        let now = self.clock.now();
        let id = admitted.firing.execution_id.clone();
        let attempt = admitted.firing.attempt;
        match self.store.start_attempt(&id, attempt, now).await {
            Ok(()) => self.spawn_attempt(admitted),
            Err(e) => {
                tracing::error!(execution = %id, "attempt {attempt} could not be recorded: {e}");
                // Reported like any other end, through the engine loop.
                let outcome = ExecutionOutcome::Failed(super::Failure::permanent(format!("attempt could not be recorded: {e}")));
                let done = self.done_tx.clone();
                let task = tokio::spawn(async move {
                    let _ = done.send(Done { execution_id: id, attempt, outcome });
                });
                self.running.insert(admitted.firing.execution_id.clone(), (admitted, task.abort_handle()));
            }
        }
    }

    /// Run an attempt whose start is recorded.
    fn spawn_attempt(&mut self, admitted: Admitted) {
        let id = admitted.firing.execution_id.clone();
        let attempt = admitted.firing.attempt;
        self.emit(EngineEvent::AttemptStarted { execution_id: id.clone(), attempt });
        let (handler, done, firing) = (self.handler.clone(), self.done_tx.clone(), admitted.firing.clone());
        let task = tokio::spawn(async move {
            // A panicking handler must not leave the execution running forever.
            let outcome = std::panic::AssertUnwindSafe(handler.run(firing))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| ExecutionOutcome::Failed(super::Failure::permanent("the firing handler panicked")));
            let _ = done.send(Done { execution_id: id, attempt, outcome });
        });
        self.running.insert(admitted.firing.execution_id.clone(), (admitted, task.abort_handle()));
    }

    async fn on_done(&mut self, done: Done) {
        let Some((admitted, _)) = self.running.remove(&done.execution_id) else { return };
        let now = self.clock.now();
        let id = done.execution_id;
        let (status, error, transient) = match &done.outcome {
            ExecutionOutcome::Succeeded { .. } => (AttemptStatus::Succeeded, None, false),
            ExecutionOutcome::Failed(f) => {
                let status = if f.kind == FailureKind::Rejected { AttemptStatus::Rejected } else { AttemptStatus::Failed };
                (status, Some(f.reason.clone()), f.kind == FailureKind::Transient)
            }
        };
        let end = AttemptEnd { status, error, transient };
        let policy = admitted.firing.schedule.spec.retry_policy;
        let counted = done.attempt.saturating_sub(admitted.interruptions);
        let after = match done.outcome {
            ExecutionOutcome::Succeeded { output } => {
                AfterAttempt::Finish(ExecutionEnd { status: ExecutionStatus::Succeeded, error: None, output: Some(output) })
            }
            ExecutionOutcome::Failed(failure) if failure.kind == FailureKind::Transient && retry::may_try_again(&policy, counted) => {
                if self.stopping {
                    AfterAttempt::Release
                } else {
                    AfterAttempt::Retry { reason: failure.reason }
                }
            }
            ExecutionOutcome::Failed(failure) => {
                let status = if failure.kind == FailureKind::Rejected { ExecutionStatus::Rejected } else { ExecutionStatus::Failed };
                AfterAttempt::Finish(ExecutionEnd { status, error: Some(failure.reason), output: None })
            }
        };
        match after {
            AfterAttempt::Finish(finish) => {
                let (status, error) = (finish.status, finish.error.clone());
                // The attempt and the execution end in one transaction.
                if let Err(e) = self.store.end_attempt(&id, done.attempt, end, Some(finish), now).await {
                    tracing::error!(execution = %id, "execution end could not be recorded: {e}");
                }
                self.settle(admitted, status, error).await;
            }
            AfterAttempt::Release => {
                self.end_attempt(&id, done.attempt, end, now).await;
                // Leave the retry to the next start.
                self.release(&id, now).await;
            }
            AfterAttempt::Retry { reason } => {
                self.end_attempt(&id, done.attempt, end, now).await;
                let at = now + retry::delay(&policy, counted, rand::random::<f64>());
                let next_attempt = done.attempt + 1;
                tracing::info!(execution = %id, attempt = done.attempt, %at, "transient failure, retrying: {reason}");
                self.emit(EngineEvent::RetryScheduled { execution_id: id.clone(), next_attempt, at });
                let mut admitted = admitted;
                admitted.firing.attempt = next_attempt;
                self.waiting.insert(id.clone(), admitted);
                self.timers.insert((at, Timer::Retry(id)));
            }
        }
    }

    async fn end_attempt(&self, id: &str, attempt: u32, end: AttemptEnd, now: DateTime<Utc>) {
        if let Err(e) = self.store.end_attempt(id, attempt, end, None, now).await {
            tracing::error!(execution = %id, "attempt end could not be recorded: {e}");
        }
    }

    /// Record the execution's end, then let its lane move on.
    async fn finish(&mut self, admitted: Admitted, status: ExecutionStatus, error: Option<String>, output: Option<serde_json::Value>) {
        let id = admitted.firing.execution_id.clone();
        if let Err(e) = self.store.finish_execution(&id, status, error.clone(), output, self.clock.now()).await {
            tracing::error!(execution = %id, "execution end could not be recorded: {e}");
        }
        self.settle(admitted, status, error).await;
    }

    /// An execution whose end is recorded: announce it and start what its lane lets start.
    async fn settle(&mut self, admitted: Admitted, status: ExecutionStatus, error: Option<String>) {
        let id = admitted.firing.execution_id.clone();
        self.emit(EngineEvent::Finished { execution_id: id, status, error });
        let schedule_id = admitted.firing.schedule.id.clone();
        if let Some(lane) = self.lanes.get_mut(&schedule_id) {
            match admitted.slot {
                Slot::Regular => lane.active = lane.active.saturating_sub(1),
                Slot::Backfill => lane.backfill_active = false,
            }
        }
        self.pump(&schedule_id).await;
    }

    async fn release(&mut self, id: &str, now: DateTime<Utc>) {
        if let Err(e) = self.store.release(id, now).await {
            tracing::error!(execution = %id, "execution could not be released: {e}");
        }
    }
}

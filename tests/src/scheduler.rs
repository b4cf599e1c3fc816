//! Helpers for the scheduler tests: a temp data dir with a real SQLite state
//! database, a manual clock, a recording [`FiringHandler`] that can hold
//! firings open, waiting on engine events, and the real workflow handler.

use flowstudio_host::audit::{AuditSink, MemoryAuditSink};
use flowstudio_host::clock::ManualClock;
use flowstudio_host::schedule::ScheduleSpec;
use flowstudio_host::scheduler::{
    EngineEvent, ExecutionOutcome, Firing, FiringHandler, FixedTokenSource, Scheduler, SchedulerConfig, WorkflowHandler,
};
use flowstudio_host::state::{SqliteStateStore, StateStore};
use flowstudio_host::token::TokenSource;
use flowstudio_host::workflow::{ComponentStore, Workflow, WorkflowExecutor};
use chrono::{DateTime, TimeZone, Utc};
use futures::future::BoxFuture;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, Semaphore};

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("flowstudio-{tag}-{}-{}", std::process::id(), rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).single().expect("valid time")
}

/// A data dir, its state database and a manual clock.
pub struct Env {
    pub dir: TempDir,
    pub clock: Arc<ManualClock>,
    pub store: Arc<SqliteStateStore>,
}

impl Env {
    pub fn new(start: DateTime<Utc>) -> Env {
        let dir = TempDir::new("sched");
        let store = Arc::new(SqliteStateStore::open(&dir.0.join("state.db")).expect("state store"));
        Env { dir, clock: Arc::new(ManualClock::new(start)), store }
    }

    /// Another connection to the same database file (another engine, a restart).
    pub fn reopen(&self) -> Arc<SqliteStateStore> {
        Arc::new(SqliteStateStore::open(&self.dir.0.join("state.db")).expect("state store"))
    }

    pub async fn start(&self, store: Arc<SqliteStateStore>, handler: Arc<dyn FiringHandler>) -> Scheduler {
        Scheduler::start(store, handler, self.clock.clone(), SchedulerConfig::default()).await.expect("scheduler starts")
    }

    /// Move the clock and let the engine deal with everything now due.
    pub async fn set(&self, scheduler: &Scheduler, to: DateTime<Utc>) {
        self.clock.set(to);
        scheduler.sync().await.expect("sync");
    }

    pub fn components(&self) -> ComponentStore {
        ComponentStore::in_data_dir(&self.dir.0)
    }
}

/// Schedule JSON with the given cron, zone and extra top-level fields.
pub fn spec(cron: &str, tz: &str, extra: serde_json::Value) -> ScheduleSpec {
    let mut v = serde_json::json!({
        "workflowId": "wf-test", "name": "test schedule", "cronExpression": cron, "timezone": tz,
        "managedIdentityId": "mi-test", "secretReference": {"provider": "env", "name": "FLOWSTUDIO_TEST_SECRET"},
    });
    if let (Some(obj), Some(more)) = (v.as_object_mut(), extra.as_object()) {
        obj.extend(more.clone());
    }
    ScheduleSpec::from_json(&v).expect("valid test schedule")
}

/// Records every firing; optionally holds each open until a permit is released,
/// and answers with a scripted outcome.
pub struct RecordingHandler {
    pub firings: Mutex<Vec<Firing>>,
    gate: Option<Arc<Semaphore>>,
    outcome: Box<dyn Fn(&Firing) -> ExecutionOutcome + Send + Sync>,
}

impl RecordingHandler {
    pub fn succeeding() -> Arc<RecordingHandler> {
        Arc::new(RecordingHandler { firings: Mutex::default(), gate: None, outcome: Box::new(ok) })
    }

    /// Each firing waits for one permit of the returned semaphore.
    pub fn gated() -> (Arc<RecordingHandler>, Arc<Semaphore>) {
        let gate = Arc::new(Semaphore::new(0));
        (Arc::new(RecordingHandler { firings: Mutex::default(), gate: Some(gate.clone()), outcome: Box::new(ok) }), gate)
    }

    pub fn scripted(outcome: impl Fn(&Firing) -> ExecutionOutcome + Send + Sync + 'static) -> Arc<RecordingHandler> {
        Arc::new(RecordingHandler { firings: Mutex::default(), gate: None, outcome: Box::new(outcome) })
    }

    pub fn seen(&self) -> Vec<Firing> {
        self.firings.lock().expect("firings").clone()
    }

    /// Nominal times seen, in the order the handler was called.
    pub fn nominal_times(&self) -> Vec<DateTime<Utc>> {
        self.seen().iter().map(|f| f.nominal_time).collect()
    }
}

fn ok(firing: &Firing) -> ExecutionOutcome {
    ExecutionOutcome::Succeeded { output: serde_json::json!({"nominal": firing.nominal_time.to_rfc3339()}) }
}

impl FiringHandler for RecordingHandler {
    fn run(&self, firing: Firing) -> BoxFuture<'_, ExecutionOutcome> {
        Box::pin(async move {
            self.firings.lock().expect("firings").push(firing.clone());
            if let Some(gate) = &self.gate {
                gate.acquire().await.expect("gate").forget();
            }
            (self.outcome)(&firing)
        })
    }
}

/// Wait (up to 20 s) for an event matching `pick`; returns what `pick` returned.
pub async fn wait_for<T>(events: &mut broadcast::Receiver<EngineEvent>, mut pick: impl FnMut(&EngineEvent) -> Option<T>) -> T {
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Some(t) = pick(&event) {
                        return t;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(e) => panic!("engine events ended: {e}"),
            }
        }
    })
    .await;
    found.expect("timed out waiting for an engine event")
}

/// Wait for `n` executions to finish; returns their ids and statuses.
pub async fn wait_finished(events: &mut broadcast::Receiver<EngineEvent>, n: usize) -> Vec<(String, flowstudio_host::state::ExecutionStatus)> {
    let mut out = Vec::new();
    while out.len() < n {
        out.push(wait_for(events, |e| match e {
            EngineEvent::Finished { execution_id, status, .. } => Some((execution_id.clone(), *status)),
            _ => None,
        })
        .await);
    }
    out
}

/// The real workflow handler on the env's store, with a fixed token source.
pub fn workflow_handler(env: &Env, tokens: Arc<dyn TokenSource>, audit: Arc<dyn AuditSink>) -> Arc<WorkflowHandler> {
    let policy = crate::policy(&[]);
    let executor = Arc::new(WorkflowExecutor::new(Arc::new(crate::runtime()), env.components(), policy));
    Arc::new(WorkflowHandler::new(env.store.clone(), executor, Arc::new(FixedTokenSource(tokens)), audit))
}

pub fn memory_audit() -> Arc<MemoryAuditSink> {
    Arc::new(MemoryAuditSink::default())
}

/// Store a node from `$FLOWSTUDIO_NODES_DIR` in the env's component store; returns its digest.
pub fn put_node(env: &Env, name: &str) -> String {
    env.components().put_file(&crate::node_path(name)).expect("component stored")
}

/// Parse and store a workflow.
pub async fn put_workflow(env: &Env, json: serde_json::Value) -> Workflow {
    let workflow = Workflow::from_json(&json).expect("valid workflow");
    env.store.put_workflow(&workflow, env.clock.now_utc()).await.expect("workflow stored");
    workflow
}

/// `now()` without importing the trait everywhere.
pub trait NowUtc {
    fn now_utc(&self) -> DateTime<Utc>;
}

impl NowUtc for ManualClock {
    fn now_utc(&self) -> DateTime<Utc> {
        flowstudio_host::clock::Clock::now(self)
    }
}

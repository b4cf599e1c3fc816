//! `end_to_end` (a bench binary: `cargo bench --bench end_to_end`): executions
//! per second and their latency for a three-node workflow on the assembled host
//! (`App`), with everything persisted in its SQLite state database.
//!
//! Each execution is a trigger-now of one schedule and takes the whole path:
//! claim + attempt rows, the trigger sequence (identity from the registry,
//! secret, cached token from the embedded passport, access guard with the
//! workflow's policy), three Wasm nodes (`hello` → `echo` → `echo`, each in its
//! own store and sandbox with a fresh `RunEgress`), each node's result row, the
//! attempt end and the execution end, and the hash-chained audit trail (flushed
//! before the clock stops). Latency is from the trigger-now call to the
//! engine's `Finished` event.
//!
//! Two phases on a 2-worker runtime: one execution at a time (latency alone),
//! then a closed loop with CONCURRENCY in flight (throughput; goal ≥ 2,000/s).

mod support;

use flowstudio_host::app::App;
use flowstudio_host::clock::SystemClock;
use flowstudio_host::config::Config;
use flowstudio_host::identity::NewManagedIdentity;
use flowstudio_host::schedule::ScheduleSpec;
use flowstudio_host::scheduler::{EngineEvent, Scheduler, SchedulerConfig};
use flowstudio_host::secret::Secret;
use flowstudio_host::state::ExecutionStatus;
use flowstudio_host::workflow::Workflow;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{ms, percentile};
use tokio::sync::{broadcast, Semaphore};

const WARM_UP: usize = 100;
const SERIAL: usize = 500;
const CONCURRENT: usize = 10_000;
const CONCURRENCY: usize = 32;
const SECRET: &str = "end-to-end-bench-client-secret";

enum Seen {
    Started(Instant),
    Finished(Instant),
}

/// Pairs each trigger with its `Finished` event, whichever is seen first.
#[derive(Default)]
struct Latencies {
    seen: Mutex<HashMap<String, Seen>>,
    done: Mutex<Vec<Duration>>,
}

impl Latencies {
    fn meet(&self, id: String, seen: Seen, permits: &Semaphore) {
        let mut map = self.seen.lock().expect("seen");
        let latency = match (map.remove(&id), seen) {
            (Some(Seen::Started(s)), Seen::Finished(f)) | (Some(Seen::Finished(f)), Seen::Started(s)) => f - s,
            (None, seen) => {
                map.insert(id, seen);
                return;
            }
            _ => panic!("execution {id} seen twice"),
        };
        drop(map);
        self.done.lock().expect("done").push(latency);
        permits.add_permits(1);
    }

    fn take(&self) -> Vec<Duration> {
        let mut all = std::mem::take(&mut *self.done.lock().expect("done"));
        all.sort();
        all
    }
}

async fn host(dir: &std::path::Path) -> (App, String) {
    let app = App::open(Config::parse("").expect("config"), dir, Arc::new(SystemClock)).await.expect("host");
    std::fs::create_dir_all(dir.join("secrets")).expect("secrets dir");
    std::fs::write(dir.join("secrets/bench-client-secret"), format!("{SECRET}\n")).expect("secret file");
    app.identities
        .create_with_client_secret(
            NewManagedIdentity {
                id: "mi-bench".into(),
                name: "Bench identity".into(),
                client_id: "bench-client".into(),
                tenant_id: "bench".into(),
                roles: vec!["workflow-runner".into()],
                enabled: true,
            },
            &Secret::new(SECRET),
        )
        .expect("identity");
    let components = app.executor.components();
    let hello = components.put(&support::node_wasm("hello")).expect("hello");
    let echo = components.put(&support::node_wasm("echo")).expect("echo");
    let workflow = Workflow::from_json(&json!({
        "id": "wf-bench",
        "nodes": [
            { "id": "greet", "component": hello, "config": { "greeting": "hi" } },
            { "id": "first", "component": echo, "dependsOn": ["greet"] },
            { "id": "second", "component": echo, "dependsOn": ["first"] },
        ],
    }))
    .expect("workflow");
    app.store.put_workflow(&workflow, chrono::Utc::now()).await.expect("workflow stored");
    let spec = ScheduleSpec::from_json(&json!({
        "workflowId": "wf-bench",
        "name": "end to end bench",
        "cronExpression": "0 6 25 * *",
        "timezone": "UTC",
        "managedIdentityId": "mi-bench",
        "secretReference": { "provider": "file", "path": "bench-client-secret" },
        "inputData": { "month": "{{schedule.triggerMonth}}" },
    }))
    .expect("schedule");
    let schedule = app.store.create_schedule(spec, chrono::Utc::now()).await.expect("schedule stored");
    (app, schedule.id)
}

/// Run `count` executions with at most `in_flight` at once; returns the wall time
/// (audit flushed) and the sorted latencies.
async fn drive(app: &App, scheduler: &Arc<Scheduler>, schedule: &str, count: usize, in_flight: usize) -> (Duration, Vec<Duration>) {
    let permits = Arc::new(Semaphore::new(in_flight));
    let latencies = Arc::new(Latencies::default());
    let mut events = scheduler.events();
    let listener = {
        let (permits, latencies) = (permits.clone(), latencies.clone());
        tokio::spawn(async move {
            let mut finished = 0;
            while finished < count {
                match events.recv().await {
                    Ok(EngineEvent::Finished { execution_id, status, error }) => {
                        assert_eq!(status, ExecutionStatus::Succeeded, "{error:?}");
                        latencies.meet(execution_id, Seen::Finished(Instant::now()), &permits);
                        finished += 1;
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => panic!("the bench fell {n} engine events behind"),
                    Err(e) => panic!("engine events ended: {e}"),
                }
            }
        })
    };
    let started = Instant::now();
    for _ in 0..count {
        permits.acquire().await.expect("permit").forget();
        let (scheduler, latencies, permits, schedule) = (scheduler.clone(), latencies.clone(), permits.clone(), schedule.to_string());
        tokio::spawn(async move {
            let at = Instant::now();
            let execution = scheduler.trigger_now(&schedule, "bench").await.expect("triggered");
            latencies.meet(execution.id, Seen::Started(at), &permits);
        });
    }
    listener.await.expect("listener");
    let audit = app.audit.clone();
    tokio::task::spawn_blocking(move || audit.flush()).await.expect("join").expect("audit flushed");
    (started.elapsed(), latencies.take())
}

async fn run() {
    let dir = support::TempDir::new("end-to-end");
    let (app, schedule) = host(&dir.0).await;
    let scheduler = Arc::new(app.start_scheduler(SchedulerConfig::default()).await.expect("scheduler"));

    // Compile caches, token minted, SQLite pages warm.
    drive(&app, &scheduler, &schedule, WARM_UP, 4).await;
    let (serial_time, serial) = drive(&app, &scheduler, &schedule, SERIAL, 1).await;
    let (time, concurrent) = drive(&app, &scheduler, &schedule, CONCURRENT, CONCURRENCY).await;

    let executions = app.store.list_executions(Some(&schedule), (WARM_UP + SERIAL + CONCURRENT + 10) as u32).await.expect("executions");
    assert_eq!(executions.len(), WARM_UP + SERIAL + CONCURRENT, "every execution is in the state db");
    let sample = &executions[0];
    let nodes = app.store.node_results(&sample.id).await.expect("node results");
    assert_eq!(nodes.iter().map(|n| n.node_id.as_str()).collect::<Vec<_>>(), ["greet", "first", "second"]);
    assert_eq!(sample.output.as_ref().and_then(|o| o["second"]["input"]["upstream"]["first"]["nodeId"].as_str()), Some("first"));

    let per_second = |n: usize, t: Duration| n as f64 / t.as_secs_f64();
    println!("end_to_end: 3-node workflow (hello → echo → echo), trigger-now → Finished, SQLite state + audit, 2 worker threads");
    println!("  one at a time ({SERIAL}):      {:>7.0} executions/s, latency p50 {:.2} ms, p99 {:.2} ms",
        per_second(SERIAL, serial_time), ms(percentile(&serial, 50.0)), ms(percentile(&serial, 99.0)));
    println!("  {CONCURRENCY} in flight ({CONCURRENT}):  {:>7.0} executions/s, latency p50 {:.2} ms, p99 {:.2} ms  (goal ≥ 2,000/s)",
        per_second(CONCURRENT, time), ms(percentile(&concurrent, 50.0)), ms(percentile(&concurrent, 99.0)));
    match Arc::try_unwrap(scheduler) {
        Ok(scheduler) => drop(scheduler.shutdown(Duration::from_secs(10)).await.expect("shutdown")),
        Err(_) => panic!("the scheduler is still shared"),
    }
}

fn main() {
    if !support::selected("end_to_end") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    rt.block_on(run());
}

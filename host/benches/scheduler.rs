//! `scheduler` (a bench binary: `cargo bench --bench scheduler`): the engine
//! with 100,000 schedules in a real SQLite state database.
//!
//! Prints, for 100k schedules of mixed cron expressions and zones:
//! - resident memory of the process with the schedules in the store, and with
//!   them loaded and armed in the engine (goal: ≤ 200 MB);
//! - the time to compute the next wake: `Scheduler::start` reading every
//!   schedule and computing its next fire instant (one timer set), and the
//!   cron part of that alone;
//! - firing lateness when 1,000 of them fire in the same second: from the
//!   nominal instant to the handler being called, p50/p99/max (goal: p99 ≤ 50 ms).
//!
//! The firing phase runs on real time: the engine's clock is the system clock
//! shifted so that a minute boundary (the nominal instant) lies a little ahead
//! of the moment the engine has started. Every other schedule's next fire is
//! minutes after that boundary, so only the 1,000 fire. The handler does no
//! work: what is measured is the engine (claim, record the attempt, launch).

mod support;

use chrono::{DateTime, Duration as TimeDelta, TimeZone, Utc};
use flowstudio_host::clock::{Clock, ManualClock, SystemClock};
use flowstudio_host::schedule::ScheduleSpec;
use flowstudio_host::scheduler::{ExecutionOutcome, Firing, FiringHandler, Scheduler, SchedulerConfig};
use flowstudio_host::state::{ExecutionStatus, SqliteStateStore, StateStore};
use futures::future::BoxFuture;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{mb, ms, percentile, resident_memory};

const SCHEDULES: usize = 100_000;
const SAME_SECOND: usize = 1_000;
/// Zones with whole-hour offsets: a schedule at minute ≥ 5 never fires at the boundary.
const ZONES: &[&str] = &["UTC", "Europe/Zurich", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "Pacific/Auckland"];

/// The system clock shifted by a fixed amount: real time passes, at another instant.
struct ShiftedClock {
    shift: TimeDelta,
}

impl Clock for ShiftedClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.shift
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> BoxFuture<'static, ()> {
        SystemClock.sleep_until(at - self.shift)
    }
}

/// Notes how late each firing reached it, and succeeds at once.
struct LatenessHandler {
    clock: Arc<dyn Clock>,
    late: Mutex<Vec<Duration>>,
}

impl FiringHandler for LatenessHandler {
    fn run(&self, firing: Firing) -> BoxFuture<'_, ExecutionOutcome> {
        let late = (self.clock.now() - firing.nominal_time).to_std().unwrap_or(Duration::ZERO);
        self.late.lock().expect("lateness").push(late);
        Box::pin(std::future::ready(ExecutionOutcome::Succeeded { output: serde_json::json!({}) }))
    }
}

/// Schedule `i`'s cron expression and zone.
fn cron_of(i: usize) -> (String, &'static str) {
    let zone = ZONES[i % ZONES.len()];
    let cron = if i < SAME_SECOND {
        "* * * * *".to_string()
    } else {
        let (minute, hour) = (5 + i % 55, i % 24);
        match i % 5 {
            0 => format!("{minute} {hour} * * *"),
            1 => format!("{minute} {hour} * * 1-5"),
            2 => format!("{minute} */2 * * *"),
            3 => format!("{minute} {hour} 1,15 * *"),
            _ => format!("{minute}/15 * * * *"),
        }
    };
    (cron, zone)
}

fn spec(i: usize) -> ScheduleSpec {
    let (cron, zone) = cron_of(i);
    ScheduleSpec::from_json(&serde_json::json!({
        "workflowId": "wf-bench",
        "name": format!("bench schedule {i}"),
        "cronExpression": cron,
        "timezone": zone,
        "managedIdentityId": "mi-bench",
        "secretReference": { "provider": "env", "name": "BENCH_SECRET" },
        "inputData": { "month": "{{schedule.triggerMonth}}", "n": i },
    }))
    .expect("valid schedule")
}

async fn run() {
    let dir = support::TempDir::new("scheduler");
    let store: Arc<dyn StateStore> = Arc::new(SqliteStateStore::open(&flowstudio_host::db::path_in(&dir.0)).expect("store"));
    // The nominal instant every-minute schedules fire at.
    let boundary = Utc.with_ymd_and_hms(2026, 6, 15, 12, 1, 0).single().expect("time");
    let created = boundary - TimeDelta::seconds(30);
    let (rss_empty, _) = resident_memory();

    let seeding = Instant::now();
    for i in 0..SCHEDULES {
        store.create_schedule(spec(i), created).await.expect("created");
    }
    let seeding = seeding.elapsed();
    let (rss_stored, _) = resident_memory();

    // 1. Load and arm everything, on a clock that stays before the boundary.
    let frozen: Arc<dyn Clock> = Arc::new(ManualClock::new(created));
    let idle = Arc::new(LatenessHandler { clock: frozen.clone(), late: Mutex::default() });
    let started = Instant::now();
    let scheduler = Scheduler::start(store.clone(), idle.clone(), frozen.clone(), SchedulerConfig::default()).await.expect("start");
    let start_time = started.elapsed();
    let (rss_loaded, peak_loading) = resident_memory();
    scheduler.shutdown(Duration::from_secs(5)).await.expect("shutdown");
    assert!(idle.late.lock().expect("lateness").is_empty(), "nothing fires before the boundary");

    // The cron part alone: parse every expression and find its next instant.
    let crons: Vec<(String, &str)> = (0..SCHEDULES).map(cron_of).collect();
    let cron_started = Instant::now();
    let mut soonest = None::<DateTime<Utc>>;
    for (expr, zone) in &crons {
        let next = flowstudio_host::cron::Schedule::parse(expr, zone).expect("cron").next_after(created).expect("next");
        soonest = Some(soonest.map_or(next, |t| t.min(next)));
    }
    let cron_time = cron_started.elapsed();
    assert_eq!(soonest, Some(boundary), "the every-minute schedules are the first to fire");
    drop(crons);

    // 2. Fire: a second engine on real time, the boundary a little after its start.
    let lead = TimeDelta::from_std(start_time * 2 + Duration::from_secs(2)).expect("lead");
    let clock: Arc<dyn Clock> = Arc::new(ShiftedClock { shift: (boundary - lead) - Utc::now() });
    let handler = Arc::new(LatenessHandler { clock: clock.clone(), late: Mutex::default() });
    let scheduler = Scheduler::start(store.clone(), handler.clone(), clock.clone(), SchedulerConfig::default()).await.expect("start");
    assert!(clock.now() < boundary, "the engine started before the boundary");
    let deadline = Instant::now() + lead.to_std().expect("lead") + Duration::from_secs(40);
    while handler.late.lock().expect("lateness").len() < SAME_SECOND {
        assert!(Instant::now() < deadline, "the 1,000 firings did not all start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let report = scheduler.shutdown(Duration::from_secs(10)).await.expect("shutdown");
    let (rss_end, rss_peak) = resident_memory();

    let executions = store.list_executions(None, 10 * SAME_SECOND as u32).await.expect("executions");
    let succeeded = executions.iter().filter(|e| e.status == ExecutionStatus::Succeeded).count();
    assert_eq!(executions.len(), SAME_SECOND, "each firing claimed once, nothing else fired");
    assert_eq!(succeeded, SAME_SECOND, "every firing ran ({} interrupted)", report.interrupted.len());

    let mut late = handler.late.lock().expect("lateness").clone();
    late.sort();
    println!("scheduler: {SCHEDULES} schedules ({SAME_SECOND} every minute, the rest daily/weekday/2-hourly/twice-monthly/quarter-hourly in {} zones), SQLite state db", ZONES.len());
    println!("  seed (create_schedule x {SCHEDULES}):    {:>9.1} ms", ms(seeding));
    println!("  next wake: Scheduler::start (read + arm all): {:>9.1} ms  ({:.2} µs per schedule)", ms(start_time), start_time.as_secs_f64() * 1e6 / SCHEDULES as f64);
    println!("  next wake: cron parse + next_after only: {:>9.1} ms  ({:.2} µs per schedule)", ms(cron_time), cron_time.as_secs_f64() * 1e6 / SCHEDULES as f64);
    println!("  RSS: empty store {:.1} MB, stored {:.1} MB, loaded in engine {:.1} MB (peak while loading {:.1} MB), after firing {:.1} MB (peak {:.1} MB)  (goal ≤ 200 MB)",
        mb(rss_empty), mb(rss_stored), mb(rss_loaded), mb(peak_loading), mb(rss_end), mb(rss_peak));
    println!("  lateness of {SAME_SECOND} firings due in the same second: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms  (goal p99 ≤ 50 ms)",
        ms(percentile(&late, 50.0)), ms(percentile(&late, 99.0)), ms(percentile(&late, 100.0)));
}

fn main() {
    if !support::selected("scheduler") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    rt.block_on(run());
}

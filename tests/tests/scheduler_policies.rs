//! Engine policies on a manual clock and a real SQLite file: overlap, catch-up,
//! pause/resume, trigger-now, backfill, idempotency across engines and restarts.

use chrono::{DateTime, Datelike, Utc};
use flowstudio_host::scheduler::EngineEvent;
use flowstudio_host::state::{ExecutionStatus, StateStore, Trigger};
use flowstudio_tests::scheduler::*;
use serde_json::json;
use std::collections::BTreeMap;

async fn statuses(env: &Env, schedule_id: &str) -> BTreeMap<DateTime<Utc>, Vec<ExecutionStatus>> {
    let mut out: BTreeMap<DateTime<Utc>, Vec<ExecutionStatus>> = BTreeMap::new();
    for e in env.store.list_executions(Some(schedule_id), 1000).await.unwrap() {
        out.entry(e.nominal_time).or_default().push(e.status);
    }
    out
}

/// How many `Claimed` and `Finished` events an engine has sent so far.
fn claimed_and_finished(events: &mut tokio::sync::broadcast::Receiver<EngineEvent>) -> (usize, usize) {
    let (mut claimed, mut finished) = (0, 0);
    while let Ok(e) = events.try_recv() {
        claimed += usize::from(matches!(e, EngineEvent::Claimed { .. }));
        finished += usize::from(matches!(e, EngineEvent::Finished { .. }));
    }
    (claimed, finished)
}

/// Fire at 00:01 (held open), then 00:02, 00:03 and 00:04 while it runs; release all.
async fn overlap_run(policy: &str) -> (Vec<DateTime<Utc>>, BTreeMap<DateTime<Utc>, Vec<ExecutionStatus>>, usize) {
    let env = Env::new(utc(2026, 3, 1, 0, 0, 30));
    let (handler, gate) = RecordingHandler::gated();
    let scheduler = env.start(env.store.clone(), handler.clone()).await;
    let mut events = scheduler.events();
    let s = scheduler.create_schedule(spec("* * * * *", "UTC", json!({"overlap": policy}))).await.unwrap();
    for minute in 1..=4 {
        env.set(&scheduler, utc(2026, 3, 1, 0, minute, 0)).await;
    }
    // Everything admitted at once has started by now (starting is part of `sync`).
    let started_while_held = env.store.list_executions(Some(&s.id), 100).await.unwrap().iter().filter(|e| e.attempt > 0).count();
    let to_run = statuses(&env, &s.id).await.values().flatten().filter(|s| **s != ExecutionStatus::Skipped).count();
    gate.add_permits(100);
    wait_finished(&mut events, to_run).await;
    (handler.nominal_times(), statuses(&env, &s.id).await, started_while_held)
}

#[tokio::test]
async fn overlap_skip_drops_firings_while_one_runs() {
    let (ran, statuses, started) = overlap_run("skip").await;
    assert_eq!(ran, [utc(2026, 3, 1, 0, 1, 0)]);
    assert_eq!(started, 1);
    assert_eq!(statuses.values().filter(|s| s[..] == [ExecutionStatus::Skipped]).count(), 3, "{statuses:?}");
}

#[tokio::test]
async fn overlap_buffer_one_keeps_one_waiting() {
    let (ran, statuses, started) = overlap_run("buffer-one").await;
    assert_eq!(ran, [utc(2026, 3, 1, 0, 1, 0), utc(2026, 3, 1, 0, 2, 0)]);
    assert_eq!(started, 1, "the buffered one waits for the first to finish");
    assert_eq!(statuses[&utc(2026, 3, 1, 0, 3, 0)], [ExecutionStatus::Skipped]);
    assert_eq!(statuses[&utc(2026, 3, 1, 0, 4, 0)], [ExecutionStatus::Skipped]);
    assert_eq!(statuses[&utc(2026, 3, 1, 0, 2, 0)], [ExecutionStatus::Succeeded]);
}

#[tokio::test]
async fn overlap_buffer_all_runs_every_firing_in_turn() {
    let (ran, statuses, started) = overlap_run("buffer-all").await;
    assert_eq!(ran, (1..=4).map(|m| utc(2026, 3, 1, 0, m, 0)).collect::<Vec<_>>());
    assert_eq!(started, 1, "one at a time");
    assert!(statuses.values().all(|s| s[..] == [ExecutionStatus::Succeeded]), "{statuses:?}");
}

#[tokio::test]
async fn overlap_allow_all_runs_them_side_by_side() {
    let (ran, statuses, started) = overlap_run("allow-all").await;
    assert_eq!(ran.len(), 4);
    assert_eq!(started, 4, "all four ran while the first was still held");
    assert!(statuses.values().all(|s| s[..] == [ExecutionStatus::Succeeded]));
}

/// Daily at 06:00; runs on the 1st, the host is down from the 1st 07:00 to the 4th 12:00.
async fn outage(catch_up: serde_json::Value) -> (Vec<DateTime<Utc>>, Vec<DateTime<Utc>>) {
    let env = Env::new(utc(2026, 3, 1, 5, 0, 0));
    let first = RecordingHandler::succeeding();
    let scheduler = env.start(env.store.clone(), first.clone()).await;
    let mut events = scheduler.events();
    let s = scheduler.create_schedule(spec("0 6 * * *", "UTC", json!({"catchUp": catch_up}))).await.unwrap();
    env.set(&scheduler, utc(2026, 3, 1, 6, 0, 0)).await;
    wait_finished(&mut events, 1).await;
    scheduler.shutdown(std::time::Duration::from_secs(5)).await.unwrap();
    assert_eq!(first.nominal_times(), [utc(2026, 3, 1, 6, 0, 0)]);

    env.clock.set(utc(2026, 3, 4, 12, 0, 0));
    let after = RecordingHandler::succeeding();
    let scheduler = env.start(env.reopen(), after.clone()).await;
    let mut events = scheduler.events();
    scheduler.sync().await.unwrap();
    let caught_up = env.store.list_executions(Some(&s.id), 100).await.unwrap().len() - 1;
    wait_finished(&mut events, caught_up).await;
    let during = after.nominal_times();
    // Back to normal: the next 06:00 fires whatever the mode.
    env.set(&scheduler, utc(2026, 3, 5, 6, 0, 0)).await;
    wait_finished(&mut events, 1).await;
    let all = after.nominal_times();
    assert_eq!(all.last(), Some(&utc(2026, 3, 5, 6, 0, 0)));
    (during, all)
}

#[tokio::test]
async fn catch_up_all_runs_every_missed_firing_within_the_window() {
    let (during, _) = outage(json!({"mode": "all", "windowSeconds": 4 * 86_400})).await;
    assert_eq!(during, [utc(2026, 3, 2, 6, 0, 0), utc(2026, 3, 3, 6, 0, 0), utc(2026, 3, 4, 6, 0, 0)]);
}

#[tokio::test]
async fn catch_up_latest_only_runs_the_newest_within_the_window() {
    let (during, _) = outage(json!({"mode": "latest-only", "windowSeconds": 86_400})).await;
    assert_eq!(during, [utc(2026, 3, 4, 6, 0, 0)]);
    let (during, _) = outage(json!({"mode": "latest-only", "windowSeconds": 3_600})).await;
    assert!(during.is_empty(), "6 h late is outside a 1 h window: {during:?}");
}

#[tokio::test]
async fn catch_up_none_runs_nothing_missed() {
    let (during, all) = outage(json!({"mode": "none", "windowSeconds": 4 * 86_400})).await;
    assert!(during.is_empty(), "{during:?}");
    assert_eq!(all, [utc(2026, 3, 5, 6, 0, 0)]);
}

#[tokio::test]
async fn paused_time_is_not_caught_up_and_trigger_now_works_while_paused() {
    let env = Env::new(utc(2026, 3, 1, 0, 30, 0));
    let handler = RecordingHandler::succeeding();
    let scheduler = env.start(env.store.clone(), handler.clone()).await;
    let mut events = scheduler.events();
    let s = scheduler
        .create_schedule(spec("0 * * * *", "UTC", json!({"catchUp": {"mode": "all", "windowSeconds": 86_400}})))
        .await
        .unwrap();
    env.set(&scheduler, utc(2026, 3, 1, 1, 0, 0)).await;
    wait_finished(&mut events, 1).await;
    assert!(scheduler.pause(&s.id).await.unwrap().spec.paused);
    for h in 2..=5 {
        env.set(&scheduler, utc(2026, 3, 1, h, 0, 0)).await;
    }
    let manual = scheduler.trigger_now(&s.id, "alice").await.expect("trigger-now while paused");
    assert_eq!(manual.triggered_by, Trigger::Manual { user: "alice".into() });
    assert!(manual.firing_key.starts_with("manual:"));
    wait_finished(&mut events, 1).await;
    env.clock.set(utc(2026, 3, 1, 5, 30, 0));
    scheduler.resume(&s.id).await.unwrap();
    scheduler.sync().await.unwrap();
    env.set(&scheduler, utc(2026, 3, 1, 6, 0, 0)).await;
    wait_finished(&mut events, 1).await;
    let seen: Vec<(DateTime<Utc>, String)> = handler.seen().iter().map(|f| (f.nominal_time, f.triggered_by())).collect();
    assert_eq!(
        seen,
        [
            (utc(2026, 3, 1, 1, 0, 0), "schedule:test schedule".to_string()),
            (utc(2026, 3, 1, 5, 0, 0), "manual:alice".to_string()),
            (utc(2026, 3, 1, 6, 0, 0), "schedule:test schedule".to_string()),
        ]
    );
}

#[tokio::test]
async fn backfill_claims_each_nominal_time_once() {
    let env = Env::new(utc(2026, 3, 10, 0, 0, 0));
    let handler = RecordingHandler::succeeding();
    let scheduler = env.start(env.store.clone(), handler.clone()).await;
    let mut events = scheduler.events();
    let s = scheduler.create_schedule(spec("0 6 * * *", "UTC", json!({}))).await.unwrap();
    env.set(&scheduler, utc(2026, 3, 10, 6, 0, 0)).await;
    wait_finished(&mut events, 1).await;
    let report = scheduler.backfill(&s.id, utc(2026, 3, 6, 6, 0, 0), utc(2026, 3, 10, 6, 0, 0)).await.unwrap();
    assert_eq!(report.claimed.len(), 4, "the 10th already ran on its timer");
    assert_eq!(report.already_claimed, 1);
    wait_finished(&mut events, 4).await;
    let again = scheduler.backfill(&s.id, utc(2026, 3, 1, 0, 0, 0), utc(2026, 3, 10, 6, 0, 0)).await.unwrap();
    assert_eq!((again.claimed.len(), again.already_claimed), (5, 5), "only the 1st-5th are new");
    wait_finished(&mut events, 5).await;
    let mut ran = handler.nominal_times();
    ran.sort();
    assert_eq!(ran, (1..=10).map(|d| utc(2026, 3, d, 6, 0, 0)).collect::<Vec<_>>(), "each day exactly once");
    assert!(handler.seen().iter().filter(|f| f.nominal_time.day0() < 9).all(|f| f.trigger == Trigger::Backfill));
    let future = scheduler.backfill(&s.id, utc(2026, 3, 1, 0, 0, 0), utc(2026, 4, 1, 0, 0, 0)).await;
    assert!(future.unwrap_err().to_string().contains("in the future"));
}

#[tokio::test]
async fn two_engines_on_one_database_run_each_firing_once() {
    let env = Env::new(utc(2026, 3, 1, 0, 0, 30));
    let handler = RecordingHandler::succeeding();
    let a = env.start(env.store.clone(), handler.clone()).await;
    let b = env.start(env.reopen(), handler.clone()).await;
    let (mut ea, mut eb) = (a.events(), b.events());
    a.create_schedule(spec("* * * * *", "UTC", json!({"overlap": "allow-all"}))).await.unwrap();
    b.reload().await.unwrap();
    for minute in 1..=10 {
        env.clock.set(utc(2026, 3, 1, 0, minute, 0));
        let (ra, rb) = tokio::join!(a.sync(), b.sync());
        ra.unwrap();
        rb.unwrap();
    }
    let ((na, fa), (nb, fb)) = (claimed_and_finished(&mut ea), claimed_and_finished(&mut eb));
    assert_eq!(na + nb, 10, "each of the ten firings claimed by exactly one engine (a {na}, b {nb})");
    let executions = env.store.list_executions(None, 100).await.unwrap();
    assert_eq!(executions.len(), 10);
    // Each engine finishes what it claimed; then count what the handler ran.
    wait_finished(&mut ea, na - fa).await;
    wait_finished(&mut eb, nb - fb).await;
    let mut ran = handler.nominal_times();
    ran.sort();
    ran.dedup();
    assert_eq!(ran.len(), 10);
    assert_eq!(handler.seen().len(), 10, "no firing ran twice");
}

/// Schedules due in the same tick are claimed in one batch; two engines racing
/// batch for batch still run each firing exactly once.
#[tokio::test]
async fn many_schedules_due_in_one_tick_run_once_across_two_engines() {
    const SCHEDULES: usize = 25;
    let env = Env::new(utc(2026, 3, 1, 0, 0, 30));
    let handler = RecordingHandler::succeeding();
    let a = env.start(env.store.clone(), handler.clone()).await;
    let b = env.start(env.reopen(), handler.clone()).await;
    let (mut ea, mut eb) = (a.events(), b.events());
    let mut ids = Vec::new();
    for i in 0..SCHEDULES {
        let overlap = if i % 2 == 0 { "buffer-all" } else { "allow-all" };
        ids.push(a.create_schedule(spec("*/2 * * * *", "UTC", json!({"overlap": overlap}))).await.unwrap().id);
    }
    b.reload().await.unwrap();
    for minute in [2, 4, 6] {
        env.clock.set(utc(2026, 3, 1, 0, minute, 0));
        let (ra, rb) = tokio::join!(a.sync(), b.sync());
        ra.unwrap();
        rb.unwrap();
    }
    let executions = env.store.list_executions(None, 1000).await.unwrap();
    assert_eq!(executions.len(), 3 * SCHEDULES, "one execution per schedule and minute");
    let mut keys: Vec<(String, String)> = executions.iter().map(|e| (e.schedule_id.clone(), e.firing_key.clone())).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 3 * SCHEDULES);
    // Each engine finishes what it claimed.
    let ((na, fa), (nb, fb)) = (claimed_and_finished(&mut ea), claimed_and_finished(&mut eb));
    assert_eq!(na + nb, 3 * SCHEDULES, "each firing claimed by exactly one engine (a {na}, b {nb})");
    wait_finished(&mut ea, na - fa).await;
    wait_finished(&mut eb, nb - fb).await;
    let executions = env.store.list_executions(None, 1000).await.unwrap();
    assert!(executions.iter().all(|e| e.status == ExecutionStatus::Succeeded && e.attempt == 1), "{executions:?}");
    for id in &ids {
        let attempts = env.store.attempts(&executions.iter().find(|e| &e.schedule_id == id).unwrap().id).await.unwrap();
        assert_eq!(attempts.len(), 1, "the attempt row started with the claim, once");
    }
    let mut ran: Vec<(String, DateTime<Utc>)> = handler.seen().iter().map(|f| (f.schedule.id.clone(), f.nominal_time)).collect();
    assert_eq!(ran.len(), 3 * SCHEDULES, "no firing ran twice");
    ran.sort();
    ran.dedup();
    assert_eq!(ran.len(), 3 * SCHEDULES);
    let marks = futures::future::join_all(ids.iter().map(|id| env.store.last_evaluated(id))).await;
    assert!(marks.into_iter().all(|m| m.unwrap() == Some(utc(2026, 3, 1, 0, 6, 0))), "every schedule's mark moved with its claim");
}

#[tokio::test]
async fn a_restart_runs_every_due_firing_exactly_once() {
    let env = Env::new(utc(2026, 3, 1, 0, 0, 30));
    let (held, _gate) = RecordingHandler::gated();
    let scheduler = env.start(env.store.clone(), held.clone()).await;
    let s = scheduler
        .create_schedule(spec("* * * * *", "UTC", json!({"overlap": "buffer-all", "catchUp": {"mode": "all", "windowSeconds": 3600}})))
        .await
        .unwrap();
    env.set(&scheduler, utc(2026, 3, 1, 0, 1, 0)).await;
    env.set(&scheduler, utc(2026, 3, 1, 0, 2, 0)).await;
    // The host stops with 00:01 running and 00:02 queued.
    let report = scheduler.shutdown(std::time::Duration::ZERO).await.unwrap();
    assert_eq!(report.interrupted.len(), 1);
    let interrupted = env.store.get_execution(&report.interrupted[0]).await.unwrap().unwrap();
    assert_eq!(interrupted.status, ExecutionStatus::Interrupted);

    env.clock.set(utc(2026, 3, 1, 0, 5, 0));
    let after = RecordingHandler::succeeding();
    let scheduler = env.start(env.reopen(), after.clone()).await;
    let mut events = scheduler.events();
    scheduler.sync().await.unwrap();
    wait_finished(&mut events, 5).await;
    let mut ran = after.nominal_times();
    ran.sort();
    assert_eq!(ran, (1..=5).map(|m| utc(2026, 3, 1, 0, m, 0)).collect::<Vec<_>>(), "each minute exactly once");
    let resumed = after.seen().into_iter().find(|f| f.execution_id == interrupted.id).expect("interrupted one resumed");
    assert_eq!(resumed.attempt, 2, "the interrupted attempt was the first");
    let by_time = statuses(&env, &s.id).await;
    assert!(by_time.values().all(|v| v[..] == [ExecutionStatus::Succeeded]), "{by_time:?}");
    // A third start finds nothing left to do.
    scheduler.shutdown(std::time::Duration::from_secs(5)).await.unwrap();
    let third = RecordingHandler::succeeding();
    let scheduler = env.start(env.reopen(), third.clone()).await;
    scheduler.sync().await.unwrap();
    assert!(third.seen().is_empty());
}

#[tokio::test]
async fn shutdown_lets_running_executions_finish_within_the_grace() {
    let env = Env::new(utc(2026, 3, 1, 0, 0, 30));
    let (handler, gate) = RecordingHandler::gated();
    let scheduler = env.start(env.store.clone(), handler.clone()).await;
    scheduler.create_schedule(spec("* * * * *", "UTC", json!({}))).await.unwrap();
    env.set(&scheduler, utc(2026, 3, 1, 0, 1, 0)).await;
    let mut events = scheduler.events();
    let stopping = tokio::spawn(scheduler.shutdown(std::time::Duration::from_secs(10)));
    // Only once shutdown has begun does the running execution get to finish.
    let running = wait_for(&mut events, |e| match e {
        EngineEvent::Stopping { running } => Some(*running),
        _ => None,
    })
    .await;
    assert_eq!(running, 1);
    gate.add_permits(1);
    let report = stopping.await.unwrap().unwrap();
    assert_eq!(report.finished.len(), 1);
    assert!(report.interrupted.is_empty());
    let e = env.store.get_execution(&report.finished[0]).await.unwrap().unwrap();
    assert_eq!(e.status, ExecutionStatus::Succeeded);
}

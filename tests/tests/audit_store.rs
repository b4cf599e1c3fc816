//! The audit log in the state database: chain, tamper detection, queries, concurrency.

use chrono::{TimeZone, Utc};
use flowstudio_host::audit::*;
use flowstudio_host::clock::{ManualClock, SystemClock};
use flowstudio_tests::audit::*;
use std::sync::Arc;

#[test]
fn every_event_type_is_appended_and_the_chain_verifies() {
    let dir = temp_data_dir("audit-append");
    let events = every_kind_of_event("exec-1", "mi-1");
    let count = events.len() as i64;
    record_all(&dir, events);
    let store = store(&dir);
    let summary = store.verify().expect("query").expect("intact");
    assert_eq!(summary.events, count);
    assert_eq!(summary.head_seq, Some(count));
    let records = store.query(&AuditFilter::default()).expect("query");
    let actions: Vec<&str> = records.iter().map(|r| r.action.as_str()).collect();
    for action in [
        "schedule.created", "schedule.updated", "schedule.deleted", "schedule.fired", "execution.started",
        "execution.succeeded", "execution.failed", "execution.rejected", "node.started", "node.finished",
        "token.minted", "token.refreshed", "secret.read", "egress.call", "authorization.failure",
    ] {
        assert!(actions.contains(&action), "{action} missing from {actions:?}");
    }
    // Chained: each event carries the previous one's hash, the first the genesis hash.
    assert_eq!(records[0].prev_hash, GENESIS_HASH);
    for pair in records.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
        assert_eq!(pair[1].seq, pair[0].seq + 1);
    }
    // The common columns are filled for every event.
    let secret = records.iter().find(|r| r.action == "secret.read").expect("secret.read");
    assert_eq!(secret.actor_id, "mi-1");
    assert_eq!(secret.actor.client_id.as_deref(), Some("client-mi-1"));
    assert!(secret.actor.service_account);
    assert_eq!(secret.execution_id.as_deref(), Some("exec-1"));
    assert_eq!(secret.outcome, "success");
    assert!(secret.target.contains("payroll-scheduler-client-secret"), "{}", secret.target);
    let rejected = records.iter().find(|r| r.action == "execution.rejected").expect("rejected");
    assert_eq!(rejected.outcome, "denied");
    assert!(rejected.reason.as_deref().unwrap_or_default().contains("policy statement 1"));
}

#[test]
fn a_fresh_log_verifies_as_empty() {
    let dir = temp_data_dir("audit-empty");
    let summary = store(&dir).verify().expect("query").expect("intact");
    assert_eq!(summary, ChainSummary { events: 0, head_seq: None, head_hash: None });
}

#[test]
fn the_triggers_refuse_update_and_delete() {
    let dir = temp_data_dir("audit-triggers");
    record_all(&dir, every_kind_of_event("exec-1", "mi-1"));
    let conn = raw_connection(&dir);
    let update = conn.execute("UPDATE audit_events SET reason = 'nothing to see' WHERE seq = 2", []);
    assert!(update.expect_err("update refused").to_string().contains("append-only"));
    let delete = conn.execute("DELETE FROM audit_events WHERE seq = 2", []);
    assert!(delete.expect_err("delete refused").to_string().contains("append-only"));
}

#[test]
fn an_edited_row_is_named_even_with_the_triggers_dropped() {
    let dir = temp_data_dir("audit-edit");
    record_all(&dir, every_kind_of_event("exec-1", "mi-1"));
    let conn = raw_connection(&dir);
    drop_audit_triggers(&conn);
    let changed = conn.execute("UPDATE audit_events SET outcome = 'success', reason = NULL WHERE seq = 13", []).expect("edit");
    assert_eq!(changed, 1);
    let broken = store(&dir).verify().expect("query").expect_err("tampered");
    assert_eq!(broken.seq, 13);
    assert!(broken.problem.contains("event 13") && broken.problem.contains("altered"), "{broken}");
}

#[test]
fn an_edit_that_also_recomputes_the_rows_hash_breaks_the_next_link() {
    let dir = temp_data_dir("audit-rehash");
    record_all(&dir, every_kind_of_event("exec-1", "mi-1"));
    let conn = raw_connection(&dir);
    drop_audit_triggers(&conn);
    // Someone who knows the scheme edits row 4 and fixes its own hash, but not every later one.
    conn.execute("UPDATE audit_events SET target = 'nothing', hash = 'ab' || substr(hash, 3) WHERE seq = 4", []).expect("edit");
    let broken = store(&dir).verify().expect("query").expect_err("tampered");
    assert_eq!(broken.seq, 4, "{broken}");
}

#[test]
fn a_deleted_row_is_detected() {
    let dir = temp_data_dir("audit-delete");
    record_all(&dir, every_kind_of_event("exec-1", "mi-1"));
    let conn = raw_connection(&dir);
    drop_audit_triggers(&conn);
    conn.execute("DELETE FROM audit_events WHERE seq = 5", []).expect("delete");
    let broken = store(&dir).verify().expect("query").expect_err("gap");
    assert_eq!(broken.seq, 5);
    assert!(broken.problem.contains("missing") && broken.problem.contains("event 6"), "{broken}");
}

#[test]
fn deleting_the_newest_rows_is_detected_through_the_head() {
    let dir = temp_data_dir("audit-truncate");
    let events = every_kind_of_event("exec-1", "mi-1");
    let last = events.len() as i64;
    record_all(&dir, events);
    let conn = raw_connection(&dir);
    drop_audit_triggers(&conn);
    conn.execute("DELETE FROM audit_events WHERE seq >= ?1", [last - 1]).expect("delete tail");
    let broken = store(&dir).verify().expect("query").expect_err("cut off");
    assert_eq!(broken.seq, last - 1, "{broken}");
    // Deleting the head row as well is caught too (opening the store re-created the triggers).
    drop_audit_triggers(&conn);
    conn.execute("DELETE FROM audit_head", []).expect("delete head");
    let broken = store(&dir).verify().expect("query").expect_err("no head");
    assert!(broken.problem.contains("head"), "{broken}");
}

#[test]
fn reordered_rows_are_detected() {
    let dir = temp_data_dir("audit-reorder");
    record_all(&dir, every_kind_of_event("exec-1", "mi-1"));
    let conn = raw_connection(&dir);
    drop_audit_triggers(&conn);
    // Swap events 3 and 4 (seq is the primary key, so go through a free number).
    conn.execute_batch(
        "UPDATE audit_events SET seq = -1 WHERE seq = 3; UPDATE audit_events SET seq = 3 WHERE seq = 4; UPDATE audit_events SET seq = 4 WHERE seq = -1;",
    )
    .expect("swap");
    let broken = store(&dir).verify().expect("query").expect_err("reordered");
    assert_eq!(broken.seq, 3, "{broken}");
}

#[test]
fn queries_filter_by_execution_identity_action_and_time() {
    let dir = temp_data_dir("audit-query");
    let start = Utc.with_ymd_and_hms(2026, 12, 25, 6, 0, 0).single().expect("time");
    let clock = Arc::new(ManualClock::new(start));
    let sink = SqliteAuditSink::open(&flowstudio_host::db::path_in(&dir), clock.clone()).expect("sink");
    for event in every_kind_of_event("exec-1", "mi-1") {
        sink.record(event);
    }
    clock.advance(chrono::Duration::hours(1));
    for event in every_kind_of_event("exec-2", "mi-2") {
        sink.record(event);
    }
    sink.flush().expect("flush");
    let store = store(&dir);
    let q = |filter: AuditFilter| store.query(&filter).expect("query");

    let exec2 = q(AuditFilter { execution_id: Some("exec-2".into()), ..Default::default() });
    assert!(!exec2.is_empty() && exec2.iter().all(|r| r.execution_id.as_deref() == Some("exec-2")));

    let mi1 = q(AuditFilter { identity: Some("mi-1".into()), ..Default::default() });
    assert!(!mi1.is_empty() && mi1.iter().all(|r| r.actor_id == "mi-1"), "{mi1:?}");
    // A client id finds the same identity's events that carry it.
    let by_client = q(AuditFilter { identity: Some("client-mi-1".into()), ..Default::default() });
    assert!(!by_client.is_empty() && by_client.iter().all(|r| r.actor_id == "mi-1"));
    let admin = q(AuditFilter { identity: Some("admin".into()), ..Default::default() });
    assert_eq!(admin.len(), 6, "{admin:?}");

    let egress = q(AuditFilter { action: Some("egress.call".into()), ..Default::default() });
    assert_eq!(egress.len(), 2);
    let executions = q(AuditFilter { action: Some("execution.*".into()), ..Default::default() });
    assert_eq!(executions.len(), 8);
    assert!(executions.iter().all(|r| r.action.starts_with("execution.")));

    let later = q(AuditFilter { since: Some(start + chrono::Duration::minutes(30)), ..Default::default() });
    assert!(!later.is_empty() && later.iter().all(|r| r.details.to_string().contains("mi-2") || r.actor_id == "admin"));
    let earlier = q(AuditFilter { until: Some(start + chrono::Duration::minutes(30)), ..Default::default() });
    assert_eq!(earlier.len() + later.len(), store.count().expect("count") as usize);
    assert!(earlier.iter().all(|r| r.time.starts_with("2026-12-25T06:00:00")));

    let combined = q(AuditFilter {
        execution_id: Some("exec-1".into()),
        action: Some("node.*".into()),
        since: Some(start),
        until: Some(start + chrono::Duration::minutes(1)),
        ..Default::default()
    });
    assert_eq!(combined.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(), ["node.started", "node.finished"]);
    let limited = q(AuditFilter { limit: Some(3), ..Default::default() });
    assert_eq!(limited.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_from_many_tasks_and_two_sinks_keep_one_valid_chain() {
    let dir = temp_data_dir("audit-concurrent");
    let path = flowstudio_host::db::path_in(&dir);
    // Two sinks = two connections to one file, like two modules or two processes.
    let sinks: Vec<Arc<SqliteAuditSink>> =
        (0..2).map(|_| Arc::new(SqliteAuditSink::with_queue(&path, Arc::new(SystemClock), 8).expect("sink"))).collect();
    let mut tasks = Vec::new();
    for task in 0..32 {
        let sink = sinks[task % 2].clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                sink.record(egress_event(&format!("exec-{task}"), "mi-1", &format!("https://h{i}.example:443")));
                if i % 10 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    for sink in &sinks {
        let sink = sink.clone();
        tokio::task::spawn_blocking(move || sink.flush()).await.expect("join").expect("flush");
    }
    let store = store(&dir);
    let summary = store.verify().expect("query").expect("intact");
    assert_eq!(summary.events, 32 * 25);
    for task in 0..32 {
        let mine = store.query(&AuditFilter { execution_id: Some(format!("exec-{task}")), ..Default::default() }).expect("query");
        assert_eq!(mine.len(), 25, "exec-{task}");
    }
}

#[test]
fn dropping_the_sink_flushes_what_was_recorded() {
    let dir = temp_data_dir("audit-drop");
    let sink = SqliteAuditSink::open(&flowstudio_host::db::path_in(&dir), Arc::new(SystemClock)).expect("sink");
    for i in 0..100 {
        sink.record(egress_event(&format!("exec-{i}"), "mi-1", "https://x.example:443"));
    }
    drop(sink);
    assert_eq!(store(&dir).count().expect("count"), 100);
}

#[test]
fn a_column_edited_to_the_wrong_type_is_a_chain_break_not_a_crash() {
    let dir = temp_data_dir("audit-types");
    record_all(&dir, every_kind_of_event("exec-1", "mi-1"));
    let conn = raw_connection(&dir);
    drop_audit_triggers(&conn);
    conn.execute("UPDATE audit_events SET hash = X'00ff' WHERE seq = 7", []).expect("edit");
    let broken = store(&dir).verify().expect("query").expect_err("tampered");
    assert_eq!(broken.seq, 7, "{broken}");
    assert!(broken.problem.contains("event 6"), "{broken}");
}

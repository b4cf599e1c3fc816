use super::*;
use crate::schedule::ScheduleSpec;
use chrono::TimeZone;
use serde_json::json;

fn temp_db() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("flowstudio-state-{}", rand::random::<u64>())).join("state.db")
}

fn spec() -> ScheduleSpec {
    ScheduleSpec::from_json(&json!({
        "workflowId": "wf", "name": "n", "cronExpression": "0 6 * * *", "timezone": "UTC",
        "managedIdentityId": "mi", "secretReference": {"provider": "env", "name": "X"}
    }))
    .unwrap()
}

fn t(h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, h, 0, 0).unwrap()
}

fn firing(schedule: &str, id: &str, key: DateTime<Utc>, owner: &str) -> NewExecution {
    NewExecution {
        id: id.into(),
        schedule_id: schedule.into(),
        workflow_id: "wf".into(),
        firing_key: nominal_key(key),
        nominal_time: key,
        trigger: Trigger::Schedule { name: "n".into() },
        status: ExecutionStatus::Pending,
        owner: owner.into(),
        lease_until: key + chrono::Duration::minutes(1),
        created_at: key,
    }
}

#[tokio::test]
async fn a_firing_is_claimed_once_across_two_connections() {
    let path = temp_db();
    let a = SqliteStateStore::open(&path).unwrap();
    let b = SqliteStateStore::open(&path).unwrap();
    let s = a.create_schedule(spec(), t(0)).await.unwrap();
    assert!(a.claim_firing(firing(&s.id, "e1", t(6), "a"), Some(t(6))).await.unwrap().is_some());
    assert!(b.claim_firing(firing(&s.id, "e2", t(6), "b"), Some(t(6))).await.unwrap().is_none());
    assert_eq!(b.last_evaluated(&s.id).await.unwrap(), Some(t(6)));
    // The mark never moves back.
    b.mark_evaluated(&s.id, t(1)).await.unwrap();
    assert_eq!(a.last_evaluated(&s.id).await.unwrap(), Some(t(6)));
    assert_eq!(a.list_executions(Some(&s.id), 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn abandoned_running_executions_come_back_interrupted() {
    let store = SqliteStateStore::open(&temp_db()).unwrap();
    let s = store.create_schedule(spec(), t(0)).await.unwrap();
    store.claim_firing(firing(&s.id, "e1", t(6), "old"), None).await.unwrap().unwrap();
    store.claim_firing(firing(&s.id, "e2", t(7), "old"), None).await.unwrap().unwrap();
    store.start_attempt("e1", 1, t(6)).await.unwrap();
    // Leases still valid: nothing to take unless other owners' work is taken too.
    assert!(store.take_abandoned("new", t(6), t(8), false).await.unwrap().is_empty());
    let taken = store.take_abandoned("new", t(6), t(8), true).await.unwrap();
    let ids: Vec<(&str, ExecutionStatus, u32)> = taken.iter().map(|e| (e.id.as_str(), e.status, e.interruptions)).collect();
    assert_eq!(ids, [("e1", ExecutionStatus::Interrupted, 1), ("e2", ExecutionStatus::Pending, 0)]);
    assert_eq!(store.attempts("e1").await.unwrap()[0].status, AttemptStatus::Interrupted);
    store.finish_execution("e1", ExecutionStatus::Succeeded, None, Some(json!({"ok": true})), t(9)).await.unwrap();
    let e1 = store.get_execution("e1").await.unwrap().unwrap();
    assert_eq!((e1.status, e1.output), (ExecutionStatus::Succeeded, Some(json!({"ok": true}))));
    // Finished work is never handed out again.
    let again = store.take_abandoned("third", t(23), t(23), true).await.unwrap();
    assert_eq!(again.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["e2"]);
}

#[tokio::test]
async fn resuming_moves_the_mark_and_changes_bump_the_revision() {
    let store = SqliteStateStore::open(&temp_db()).unwrap();
    let r0 = store.schedules_revision().await.unwrap();
    let s = store.create_schedule(spec(), t(0)).await.unwrap();
    assert!(store.set_paused(&s.id, true, t(1)).await.unwrap().spec.paused);
    assert_eq!(store.last_evaluated(&s.id).await.unwrap(), None);
    assert!(!store.set_paused(&s.id, false, t(5)).await.unwrap().spec.paused);
    assert_eq!(store.last_evaluated(&s.id).await.unwrap(), Some(t(5)));
    assert!(store.schedules_revision().await.unwrap() >= r0 + 3);
    store.delete_schedule(&s.id).await.unwrap();
    assert!(store.get_schedule(&s.id).await.unwrap().is_none());
    assert!(matches!(store.delete_schedule(&s.id).await, Err(StateError::ScheduleNotFound(_))));
}

#[tokio::test]
async fn a_batch_claims_what_is_free_starts_what_runs_and_moves_every_mark() {
    let path = temp_db();
    let store = SqliteStateStore::open(&path).unwrap();
    let (s1, s2) = (store.create_schedule(spec(), t(0)).await.unwrap(), store.create_schedule(spec(), t(0)).await.unwrap());
    store.claim_firing(firing(&s2.id, "taken", t(6), "other"), None).await.unwrap().unwrap();
    let mut runs = firing(&s1.id, "e1", t(6), "me");
    runs.status = ExecutionStatus::Running;
    let claims = vec![
        Claim { execution: runs, mark: Some(t(7)) },
        Claim { execution: firing(&s2.id, "e2", t(6), "me"), mark: Some(t(6)) },
    ];
    let claimed = store.claim_firings(claims).await.unwrap();
    assert_eq!(claimed.len(), 2);
    let e1 = claimed[0].clone().expect("e1 claimed");
    assert!(claimed[1].is_none(), "s2's 06:00 firing belongs to `other`");
    // What the claim answers is what the store holds.
    assert_eq!(store.get_execution("e1").await.unwrap(), Some(e1.clone()));
    assert_eq!((e1.status, e1.attempt), (ExecutionStatus::Running, 1));
    let attempts = store.attempts("e1").await.unwrap();
    assert_eq!(attempts.iter().map(|a| (a.attempt, a.status, a.started_at)).collect::<Vec<_>>(), [(1, AttemptStatus::Running, t(6))]);
    assert_eq!(store.last_evaluated(&s1.id).await.unwrap(), Some(t(7)));
    assert_eq!(store.last_evaluated(&s2.id).await.unwrap(), Some(t(6)), "the mark moves even when the claim is taken");
    assert!(store.get_execution("e2").await.unwrap().is_none());
}

#[tokio::test]
async fn an_attempt_can_end_with_its_execution_in_one_call() {
    let store = SqliteStateStore::open(&temp_db()).unwrap();
    let s = store.create_schedule(spec(), t(0)).await.unwrap();
    let mut runs = firing(&s.id, "e1", t(6), "me");
    runs.status = ExecutionStatus::Running;
    store.claim_firing(runs, None).await.unwrap().unwrap();
    let failed = AttemptEnd { status: AttemptStatus::Failed, error: Some("boom".into()), transient: true };
    store.end_attempt("e1", 1, failed, None, t(7)).await.unwrap();
    assert_eq!(store.get_execution("e1").await.unwrap().unwrap().status, ExecutionStatus::Running, "no finish: it waits for a retry");
    store.start_attempt("e1", 2, t(8)).await.unwrap();
    let ok = AttemptEnd { status: AttemptStatus::Succeeded, error: None, transient: false };
    let finish = ExecutionEnd { status: ExecutionStatus::Succeeded, error: None, output: Some(json!({"n": 2})) };
    store.end_attempt("e1", 2, ok, Some(finish), t(9)).await.unwrap();
    let e1 = store.get_execution("e1").await.unwrap().unwrap();
    assert_eq!((e1.status, e1.attempt, e1.output, e1.finished_at), (ExecutionStatus::Succeeded, 2, Some(json!({"n": 2})), Some(t(9))));
    let attempts = store.attempts("e1").await.unwrap();
    assert_eq!(attempts.iter().map(|a| (a.status, a.finished_at)).collect::<Vec<_>>(), [(AttemptStatus::Failed, Some(t(7))), (AttemptStatus::Succeeded, Some(t(9)))]);
    // A finish for an execution that does not exist fails and writes nothing.
    let ghost = ExecutionEnd { status: ExecutionStatus::Succeeded, error: None, output: None };
    let end = AttemptEnd { status: AttemptStatus::Succeeded, error: None, transient: false };
    assert!(matches!(store.end_attempt("ghost", 1, end, Some(ghost), t(9)).await, Err(StateError::ExecutionNotFound(_))));
}

#[tokio::test]
async fn schedules_come_in_pages_by_id_with_their_marks() {
    let store = SqliteStateStore::open(&temp_db()).unwrap();
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(store.create_schedule(spec(), t(0)).await.unwrap().id);
    }
    ids.sort();
    store.mark_evaluated(&ids[3], t(6)).await.unwrap();
    let (mut seen, mut after, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let page = store.schedules_page(after.as_deref(), 2).await.unwrap();
        if page.is_empty() {
            break;
        }
        pages += 1;
        after = page.last().map(|(s, _)| s.id.clone());
        seen.extend(page.into_iter().map(|(s, mark)| (s.id, mark)));
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(), ids);
    assert_eq!(seen.iter().map(|(_, mark)| *mark).collect::<Vec<_>>(), [None, None, None, Some(t(6)), None]);
}

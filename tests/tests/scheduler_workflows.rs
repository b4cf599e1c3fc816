//! The scheduler driving real Wasm nodes: the seed's payroll schedule with a
//! retry after a 503, no retry on denials or limit traps, a three-node workflow,
//! templates from the nominal time, and a fresh token before every node.

use chrono::{DateTime, Duration, Utc};
use flowstudio_host::clock::{Clock, ManualClock};
use flowstudio_host::identity::IdInfo;
use flowstudio_host::passport::DevTokenSource;
use flowstudio_host::schedule::ScheduleSpec;
use flowstudio_host::scheduler::{EngineEvent, Scheduler};
use flowstudio_host::secret::Secret;
use flowstudio_host::state::{AttemptStatus, Execution, ExecutionStatus, StateStore};
use flowstudio_host::token::{AccessToken, TokenFuture, TokenSource};
use flowstudio_tests::scheduler::*;
use flowstudio_tests::{dev_identity, RecordingServer, Reply};
use serde_json::json;
use std::sync::{Arc, Mutex};

fn seed() -> serde_json::Value {
    json!({ "workflowId": "wf-monthly-payroll", "name": "Monthly Payroll Run",
            "cronExpression": "0 6 25 * *", "timezone": "UTC", "managedIdentityId": "mi-guid-1234",
            "secretReference": { "provider": "azure-key-vault",
                                 "vaultUri": "https://company-vault.vault.azure.net/",
                                 "secretName": "payroll-scheduler-client-secret" },
            "inputData": { "payrollMonth": "{{schedule.triggerMonth}}" },
            "retryPolicy": { "maxAttempts": 3, "backoffSeconds": 60 } })
}

fn employees() -> Reply {
    Reply::json(200, json!([{"id": "e-1", "monthlySalaryCents": 500_000}, {"id": "e-2", "monthlySalaryCents": 250_000}]))
}

async fn finished(events: &mut tokio::sync::broadcast::Receiver<EngineEvent>, id: &str) -> ExecutionStatus {
    wait_for(events, |e| match e {
        EngineEvent::Finished { execution_id, status, .. } if execution_id == id => Some(*status),
        _ => None,
    })
    .await
}

async fn the_execution(env: &Env, schedule_id: &str) -> Execution {
    let all = env.store.list_executions(Some(schedule_id), 10).await.unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    all.into_iter().next().unwrap()
}

#[tokio::test]
async fn the_seed_schedule_fires_on_the_25th_and_retries_a_503_after_its_backoff() {
    let env = Env::new(utc(2026, 12, 1, 0, 0, 0));
    let server = RecordingServer::start(|_, i| if i == 0 { Reply::json(503, json!({"error": "busy"})) } else { employees() }).await;
    let payroll = put_node(&env, "payroll-calculation");
    put_workflow(&env, json!({"id": "wf-monthly-payroll", "nodes": [{
        "id": "calculate", "component": payroll,
        "config": {"employeesUrl": server.url("/employees")},
        "grants": [format!("{}=managed-identity", server.origin())],
    }]}))
    .await;
    let id = dev_identity();
    let audit = memory_audit();
    let scheduler = env.start(env.store.clone(), workflow_handler(&env, id.tokens.clone(), audit.clone())).await;
    let mut events = scheduler.events();
    let spec = ScheduleSpec::from_json(&seed()).expect("the seed's JSON, verbatim");
    let s = scheduler.create_schedule(spec).await.unwrap();

    env.set(&scheduler, utc(2026, 12, 25, 5, 59, 59)).await;
    assert!(env.store.list_executions(Some(&s.id), 10).await.unwrap().is_empty(), "not before 06:00 UTC");
    env.set(&scheduler, utc(2026, 12, 25, 6, 0, 0)).await;
    let execution = the_execution(&env, &s.id).await;
    assert_eq!(execution.nominal_time, utc(2026, 12, 25, 6, 0, 0));
    let (next, at) = wait_for(&mut events, |e| match e {
        EngineEvent::RetryScheduled { next_attempt, at, .. } => Some((*next_attempt, *at)),
        _ => None,
    })
    .await;
    assert_eq!(next, 2);
    let failed_at = utc(2026, 12, 25, 6, 0, 0);
    assert!(at >= failed_at + Duration::seconds(54) && at <= failed_at + Duration::seconds(66), "60 s ±10 %: {at}");

    env.set(&scheduler, at - Duration::seconds(1)).await;
    assert_eq!(env.store.attempts(&execution.id).await.unwrap().len(), 1, "no second attempt before the backoff ends");
    env.set(&scheduler, at).await;
    assert_eq!(env.store.attempts(&execution.id).await.unwrap().len(), 2, "the second attempt starts at the backoff's end");
    assert_eq!(finished(&mut events, &execution.id).await, ExecutionStatus::Succeeded);

    let done = env.store.get_execution(&execution.id).await.unwrap().unwrap();
    let out = &done.output.as_ref().expect("output")["calculate"];
    assert_eq!(out["payrollMonth"], "2026-12");
    assert_eq!(out["totalCents"], 750_000);
    assert_eq!(out["calculatedBy"], "dev-client");
    let attempts = env.store.attempts(&execution.id).await.unwrap();
    assert_eq!(attempts.iter().map(|a| a.status).collect::<Vec<_>>(), [AttemptStatus::Failed, AttemptStatus::Succeeded]);
    assert!(attempts[0].transient && attempts[0].error.as_deref().unwrap_or_default().contains("503"));
    let nodes = env.store.node_results(&execution.id).await.unwrap();
    assert_eq!(nodes.iter().map(|n| (n.attempt, n.status.as_str())).collect::<Vec<_>>(), [(1, "failed"), (2, "succeeded")]);

    // Both calls carried the identity's token; none of it is in the state database.
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    let mut db = Vec::new();
    for entry in std::fs::read_dir(&env.dir.0).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            db.extend(std::fs::read(path).unwrap());
        }
    }
    let db = String::from_utf8_lossy(&db);
    for request in &seen {
        let bearer = request.header("authorization").expect("token attached");
        let token = bearer.strip_prefix("Bearer ").expect("bearer");
        assert!(token.len() > 20);
        assert!(!db.contains(token), "a token reached the state database");
    }
    assert!(!format!("{:?}", audit.events()).contains(seen[0].header("authorization").unwrap()));
}

async fn one_attempt_only(env: &Env, scheduler: &Scheduler, workflow: serde_json::Value) -> (ExecutionStatus, Vec<AttemptStatus>, Option<String>) {
    let mut events = scheduler.events();
    let wf = put_workflow(env, workflow).await;
    let s = scheduler
        .create_schedule(spec("0 0 1 1 *", "UTC", json!({"workflowId": wf.id, "retryPolicy": {"maxAttempts": 3, "backoffSeconds": 0}})))
        .await
        .unwrap();
    let e = scheduler.trigger_now(&s.id, "tester").await.unwrap();
    let status = finished(&mut events, &e.id).await;
    let attempts = env.store.attempts(&e.id).await.unwrap().into_iter().map(|a| a.status).collect();
    (status, attempts, env.store.get_execution(&e.id).await.unwrap().unwrap().error)
}

#[tokio::test]
async fn denials_and_limit_traps_are_never_retried_but_retryable_errors_are() {
    let env = Env::new(utc(2026, 6, 1, 0, 0, 0));
    let server = RecordingServer::start(|_, _| Reply::json(403, json!({"error": "forbidden"}))).await;
    let (payroll, http_get, misbehave, echo) =
        (put_node(&env, "payroll-calculation"), put_node(&env, "http-get"), put_node(&env, "misbehave"), put_node(&env, "echo"));
    let id = dev_identity();
    let scheduler = env.start(env.store.clone(), workflow_handler(&env, id.tokens.clone(), memory_audit())).await;

    let (status, attempts, error) = one_attempt_only(&env, &scheduler, json!({"id": "wf-403", "nodes": [{
        "id": "calculate", "component": payroll,
        "config": {"employeesUrl": server.url("/employees"), "payrollMonth": "2026-06"},
        "grants": [format!("{}=managed-identity", server.origin())]}]})).await;
    assert_eq!((status, attempts), (ExecutionStatus::Failed, vec![AttemptStatus::Failed]));
    assert!(error.unwrap().contains("403"));

    let (status, attempts, error) = one_attempt_only(&env, &scheduler, json!({"id": "wf-no-grant", "nodes": [{
        "id": "fetch", "component": http_get, "config": {"url": server.url("/x")}}]})).await;
    assert_eq!((status, attempts), (ExecutionStatus::Failed, vec![AttemptStatus::Failed]));
    assert!(error.unwrap().contains("denied"));

    let (status, attempts, error) = one_attempt_only(&env, &scheduler, json!({"id": "wf-loop", "nodes": [{
        "id": "spin", "component": misbehave, "config": {"attack": "loop"}, "limits": {"deadline": 300}}]})).await;
    assert_eq!((status, attempts), (ExecutionStatus::Failed, vec![AttemptStatus::Failed]));
    assert!(error.unwrap().contains("deadline of 300 ms"));

    let (status, attempts, _) = one_attempt_only(&env, &scheduler, json!({"id": "wf-flaky", "nodes": [{
        "id": "flaky", "component": echo, "config": {"fail": "retryable"}}]})).await;
    assert_eq!(status, ExecutionStatus::Failed);
    assert_eq!(attempts, [AttemptStatus::Failed; 3], "retryable: every allowed attempt is used");
    assert_eq!(server.seen().len(), 1, "only the 403 workflow reached the server");
}

#[tokio::test]
async fn downstream_nodes_see_upstream_outputs_and_the_rendered_input() {
    let env = Env::new(utc(2026, 6, 1, 0, 0, 0));
    let (hello, echo) = (put_node(&env, "hello"), put_node(&env, "echo"));
    put_workflow(&env, json!({"id": "wf-chain", "nodes": [
        {"id": "greet", "component": hello, "config": {"greeting": "hi"}},
        {"id": "relay", "component": echo, "dependsOn": ["greet"]},
        {"id": "report", "component": echo, "config": {"extra": 1}},
    ], "edges": [{"from": "relay", "to": "report"}, {"from": "greet", "to": "report"}]}))
    .await;
    let id = dev_identity();
    let scheduler = env.start(env.store.clone(), workflow_handler(&env, id.tokens.clone(), memory_audit())).await;
    let mut events = scheduler.events();
    let s = scheduler
        .create_schedule(spec("0 0 1 1 *", "UTC", json!({"workflowId": "wf-chain",
            "inputData": {"month": "{{schedule.triggerMonth}}", "run": "{{execution.id}}#{{execution.attempt}}"}})))
        .await
        .unwrap();
    let e = scheduler.trigger_now(&s.id, "alice").await.unwrap();
    assert_eq!(finished(&mut events, &e.id).await, ExecutionStatus::Succeeded);
    let out = env.store.get_execution(&e.id).await.unwrap().unwrap().output.unwrap();
    let relay = &out["relay"];
    assert_eq!(relay["input"]["month"], "2026-06");
    assert_eq!(relay["input"]["run"], format!("{}#1", e.id));
    assert_eq!(relay["input"]["upstream"]["greet"]["message"], "hi, Local Developer");
    assert_eq!(relay["triggeredBy"], "manual:alice");
    let report = &out["report"]["input"];
    assert_eq!(report["extra"], 1);
    assert_eq!(report["upstream"]["relay"]["input"]["upstream"]["greet"]["message"], "hi, Local Developer");
    assert_eq!(report["upstream"]["greet"]["message"], "hi, Local Developer");
    let nodes: Vec<String> = env.store.node_results(&e.id).await.unwrap().into_iter().map(|n| n.node_id).collect();
    assert_eq!(nodes, ["greet", "relay", "report"]);
}

#[tokio::test]
async fn templates_come_from_the_nominal_time_in_the_schedule_zone() {
    let env = Env::new(utc(2026, 1, 31, 0, 0, 0));
    let echo = put_node(&env, "echo");
    put_workflow(&env, json!({"id": "wf-echo", "nodes": [{"id": "echo", "component": echo}]})).await;
    let id = dev_identity();
    let scheduler = env.start(env.store.clone(), workflow_handler(&env, id.tokens.clone(), memory_audit())).await;
    let mut events = scheduler.events();
    // 00:30 on the 1st in Auckland is 11:30 UTC on the last day of the previous month.
    let s = scheduler
        .create_schedule(spec("30 0 1 * *", "Pacific/Auckland", json!({"workflowId": "wf-echo", "inputData": {
            "month": "{{schedule.triggerMonth}}", "date": "{{schedule.triggerDate}}", "time": "{{schedule.triggerTime}}",
            "day": "{{schedule.triggerDay}}", "year": "{{schedule.triggerYear}}", "zone": "{{schedule.timezone}}"}})))
        .await
        .unwrap();
    // The engine runs 20 s late: templates still say 00:30:00.
    env.set(&scheduler, utc(2026, 1, 31, 11, 30, 20)).await;
    let e = the_execution(&env, &s.id).await;
    assert_eq!(e.nominal_time, utc(2026, 1, 31, 11, 30, 0));
    assert_eq!(finished(&mut events, &e.id).await, ExecutionStatus::Succeeded);
    let out = env.store.get_execution(&e.id).await.unwrap().unwrap().output.unwrap();
    assert_eq!(
        out["echo"]["input"],
        json!({"month": "2026-02", "date": "2026-02-01", "time": "2026-02-01T00:30:00+13:00", "day": "01",
               "year": "2026", "zone": "Pacific/Auckland", "upstream": {}})
    );
    assert_eq!(out["echo"]["scheduledTime"], "2026-01-31T11:30:00Z");
}

/// Tokens that live `lifetime` seconds on a manual clock.
struct ClockTokens {
    clock: Arc<ManualClock>,
    lifetime: i64,
    current: Mutex<Option<AccessToken>>,
    /// Every token minted and its expiry (unix seconds).
    minted: Mutex<Vec<(String, i64)>>,
}

impl TokenSource for ClockTokens {
    fn token<'a>(&'a self, _audience: Option<&'a str>) -> TokenFuture<'a> {
        Box::pin(async move {
            let now = self.clock.now().timestamp();
            let mut current = self.current.lock().unwrap();
            if let Some(t) = current.as_ref().filter(|t| t.expires_at as i64 > now + 1) {
                return Ok(t.clone());
            }
            let mut minted = self.minted.lock().unwrap();
            let value = format!("clock-token-{}-{}", minted.len(), rand::random::<u64>());
            let exp = now + self.lifetime;
            minted.push((value.clone(), exp));
            let id_info = IdInfo { token_expires_at: exp as u64, ..DevTokenSource::dev_identity() };
            let token = AccessToken { token: Secret::new(value), expires_at: exp as u64, id_info };
            *current = Some(token.clone());
            Ok(token)
        })
    }

    fn invalidate(&self, _rejected: &AccessToken) {
        *self.current.lock().unwrap() = None;
    }

    fn id_info(&self) -> IdInfo {
        self.current.lock().unwrap().as_ref().map(|t| t.id_info.clone()).unwrap_or_else(DevTokenSource::dev_identity)
    }
}

#[tokio::test]
async fn every_node_starts_with_a_fresh_token_when_the_run_outlives_it() {
    let env = Env::new(utc(2026, 6, 1, 0, 0, 0));
    let clock = env.clock.clone();
    let received: Arc<Mutex<Vec<(String, DateTime<Utc>)>>> = Arc::default();
    let log = received.clone();
    // Each call "takes" 10 s of the clock, so two nodes run 20 s with 5 s tokens.
    let server = RecordingServer::start(move |seen, _| {
        let token = seen.header("authorization").unwrap_or_default().trim_start_matches("Bearer ").to_string();
        log.lock().unwrap().push((token, clock.now()));
        clock.advance(Duration::seconds(10));
        Reply::json(200, json!({"ok": true}))
    })
    .await;
    let http_get = put_node(&env, "http-get");
    let grant = format!("{}=managed-identity", server.origin());
    put_workflow(&env, json!({"id": "wf-long", "nodes": [
        {"id": "first", "component": http_get, "config": {"url": server.url("/one")}, "grants": [grant]},
        {"id": "second", "component": http_get, "config": {"url": server.url("/two")}, "grants": [grant], "dependsOn": ["first"]},
    ]}))
    .await;
    let tokens = Arc::new(ClockTokens { clock: env.clock.clone(), lifetime: 5, current: Mutex::default(), minted: Mutex::default() });
    let scheduler = env.start(env.store.clone(), workflow_handler(&env, tokens.clone(), memory_audit())).await;
    let mut events = scheduler.events();
    let s = scheduler.create_schedule(spec("0 0 1 1 *", "UTC", json!({"workflowId": "wf-long"}))).await.unwrap();
    let e = scheduler.trigger_now(&s.id, "tester").await.unwrap();
    assert_eq!(finished(&mut events, &e.id).await, ExecutionStatus::Succeeded);

    let received = received.lock().unwrap().clone();
    let minted = tokens.minted.lock().unwrap().clone();
    assert_eq!(received.len(), 2);
    assert_ne!(received[0].0, received[1].0, "the second node got a new token");
    assert!(minted.len() >= 2);
    for (token, at) in &received {
        let exp = minted.iter().find(|(t, _)| t == token).map(|(_, exp)| *exp).expect("a token this source minted");
        assert!(exp > at.timestamp(), "token used at {at} had expired at {exp}");
    }
}

//! The whole trigger sequence (DESIGN §2) on the assembled host: a schedule's
//! managed identity, its client secret in a real secrets store (the `file`
//! provider), a token from the embedded passport over real HTTP, verified into
//! IDInfo, the access guard, a real Wasm node whose outbound call carries the
//! token, and the audit trail of it all in the state database.

use flowstudio_host::app::App;
use flowstudio_host::audit::{AuditFilter, AuditStore};
use flowstudio_host::clock::SystemClock;
use flowstudio_host::config::Config;
use flowstudio_host::identity::NewManagedIdentity;
use flowstudio_host::passport::JwtVerifier;
use flowstudio_host::scheduler::{EngineEvent, SchedulerConfig};
use flowstudio_host::schedule::ScheduleSpec;
use flowstudio_host::secret::Secret;
use flowstudio_host::state::ExecutionStatus;
use flowstudio_host::workflow::Workflow;
use flowstudio_tests::scheduler::{wait_for, TempDir};
use flowstudio_tests::{node_path, RecordingServer, Reply};
use serde_json::json;
use std::sync::Arc;

const SECRET: &str = "a+b/c:d%e=-payroll-secret";

struct Host {
    _dir: TempDir,
    data_dir: std::path::PathBuf,
    app: App,
    server: RecordingServer,
}

/// A host on embedded defaults (plus loopback tokens over http, for the local
/// payroll server), an identity `mi-payroll` whose secret sits in the file
/// store, and a one-node workflow calling the server with the identity's token.
async fn host(roles: &[&str], policy: serde_json::Value) -> Host {
    let dir = TempDir::new("trigger");
    let data_dir = dir.0.clone();
    let config = Config::parse("[egress]\nallow-loopback-plain-http-tokens = true\n").expect("config");
    let app = App::open(config, &data_dir, Arc::new(SystemClock)).await.expect("host");
    std::fs::create_dir_all(data_dir.join("secrets")).expect("secrets dir");
    std::fs::write(data_dir.join("secrets/payroll-client-secret"), format!("{SECRET}\n")).expect("secret file");
    app.identities
        .create_with_client_secret(
            NewManagedIdentity {
                id: "mi-payroll".into(),
                name: "Payroll scheduler".into(),
                client_id: "payroll-scheduler".into(),
                tenant_id: "contoso".into(),
                roles: roles.iter().map(|r| r.to_string()).collect(),
                enabled: true,
            },
            &Secret::new(SECRET),
        )
        .expect("identity");
    let server = RecordingServer::start(|_, _| Reply::json(200, json!({"employees": 3}))).await;
    let digest = app.executor.components().put_file(&node_path("http-get")).expect("component");
    let workflow = Workflow::from_json(&json!({
        "id": "wf-monthly-payroll",
        "nodes": [{ "id": "fetch", "component": digest, "grants": [format!("{}=managed-identity", server.origin())] }],
        "accessPolicy": policy,
    }))
    .expect("workflow");
    app.store.put_workflow(&workflow, chrono::Utc::now()).await.expect("workflow stored");
    Host { _dir: dir, data_dir, app, server }
}

fn seed_schedule(server: &RecordingServer, identity: &str) -> ScheduleSpec {
    ScheduleSpec::from_json(&json!({
        "workflowId": "wf-monthly-payroll",
        "name": "Monthly Payroll Run",
        "cronExpression": "0 6 25 * *",
        "timezone": "UTC",
        "managedIdentityId": identity,
        "secretReference": { "provider": "file", "path": "payroll-client-secret" },
        "inputData": { "url": server.url("/employees"), "payrollMonth": "{{schedule.triggerMonth}}" },
        "retryPolicy": { "maxAttempts": 3, "backoffSeconds": 60 }
    }))
    .expect("schedule")
}

/// Trigger the schedule now and wait for its execution to finish.
async fn run_once(host: &Host, identity: &str) -> (String, ExecutionStatus, Option<String>) {
    let scheduler = host.app.start_scheduler(SchedulerConfig::default()).await.expect("scheduler");
    let schedule = scheduler.create_schedule(seed_schedule(&host.server, identity)).await.expect("created");
    let mut events = scheduler.events();
    let execution = scheduler.trigger_now(&schedule.id, "tester").await.expect("triggered");
    let (status, error) = wait_for(&mut events, |e| match e {
        EngineEvent::Finished { execution_id, status, error } if *execution_id == execution.id => Some((*status, error.clone())),
        _ => None,
    })
    .await;
    scheduler.shutdown(std::time::Duration::from_secs(5)).await.expect("shutdown");
    let audit = host.app.audit.clone();
    tokio::task::spawn_blocking(move || audit.flush()).await.expect("join").expect("audit flushed");
    (execution.id, status, error)
}

fn actions(host: &Host, execution_id: &str) -> Vec<String> {
    let store = AuditStore::open(&flowstudio_host::db::path_in(&host.data_dir)).expect("audit store");
    let all = store.query(&AuditFilter::default()).expect("query");
    // Secret reads and tokens belong to the identity, not to one execution: keep them in the trail.
    all.into_iter()
        .filter(|r| r.execution_id.as_deref() == Some(execution_id) || r.action.starts_with("token.") || r.action == "secret.read")
        .map(|r| r.action)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scheduled_run_acts_as_its_managed_identity_end_to_end() {
    let host = host(&["workflow-runner"], json!(null)).await;
    let (execution, status, error) = run_once(&host, "mi-payroll").await;
    assert_eq!(status, ExecutionStatus::Succeeded, "{error:?}");

    // The node's call carried a token the passport's JWKS verifies, for the identity.
    let seen = host.server.seen();
    assert_eq!(seen.len(), 1);
    let bearer = seen[0].header("authorization").and_then(|h| h.strip_prefix("Bearer ")).expect("bearer token").to_string();
    let jwks = reqwest::get(host.app.passport_client.jwks_url())
        .await
        .expect("jwks")
        .json::<serde_json::Value>()
        .await
        .expect("jwks json");
    let verifier = JwtVerifier::new("flowstudio", "flowstudio", &jwks).expect("verifier");
    let claims: serde_json::Value = verifier.verify(&bearer).expect("token verifies");
    assert_eq!(claims["sub"], "payroll-scheduler");
    assert_eq!(claims["mi"], "mi-payroll");

    // The audit trail, in order, names the identity throughout.
    assert_eq!(
        actions(&host, &execution),
        [
            "schedule.fired",
            "execution.started",
            "secret.read",
            "token.minted",
            "node.started",
            "egress.call",
            "node.finished",
            "execution.succeeded"
        ]
    );
    let store = AuditStore::open(&flowstudio_host::db::path_in(&host.data_dir)).expect("audit store");
    for record in store.query(&AuditFilter::default()).expect("query") {
        assert_eq!(record.actor.managed_identity_id.as_deref(), Some("mi-payroll"), "{} names the identity", record.action);
    }
    assert!(store.verify().expect("verify").is_ok(), "the chain is intact");

    // Neither the secret nor the token reached the database.
    let files = ["state.db", "state.db-wal"].map(|f| std::fs::read(host.data_dir.join(f)).unwrap_or_default());
    for bytes in &files {
        let text = String::from_utf8_lossy(bytes);
        assert!(!text.contains(SECRET), "the client secret is in the state database");
        assert!(!text.contains(&bearer), "the token is in the state database");
        assert!(!text.contains(bearer.rsplit('.').next().unwrap_or("-")), "the token's signature is in the state database");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_identity_without_workflow_execute_is_rejected_before_any_node_runs() {
    let host = host(&["viewer"], json!(null)).await;
    let (execution, status, error) = run_once(&host, "mi-payroll").await;
    assert_eq!(status, ExecutionStatus::Rejected);
    assert!(error.as_deref().unwrap_or_default().contains("workflow.execute"), "{error:?}");
    assert!(host.server.seen().is_empty(), "no node ran");
    let trail = actions(&host, &execution);
    assert!(trail.ends_with(&["authorization.failure".to_string(), "execution.rejected".to_string()]), "{trail:?}");
    assert!(!trail.iter().any(|a| a.starts_with("node.")), "{trail:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_workflows_policy_can_deny_the_identity() {
    let policy = json!({ "statements": [{ "effect": "deny", "identities": ["mi-payroll"] }] });
    let host = host(&["workflow-runner"], policy).await;
    let (_, status, error) = run_once(&host, "mi-payroll").await;
    assert_eq!(status, ExecutionStatus::Rejected);
    assert!(error.as_deref().unwrap_or_default().contains("deny identity mi-payroll"), "{error:?}");
    assert!(host.server.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disabled_identity_stops_the_run_without_minting_a_token() {
    let host = host(&["workflow-runner"], json!(null)).await;
    host.app.identities.disable("mi-payroll").expect("disabled");
    let (execution, status, error) = run_once(&host, "mi-payroll").await;
    assert_eq!(status, ExecutionStatus::Failed);
    assert!(error.as_deref().unwrap_or_default().contains("managed identity `mi-payroll` is disabled"), "{error:?}");
    let trail = actions(&host, &execution);
    assert!(!trail.iter().any(|a| a.starts_with("token.") || a == "secret.read"), "{trail:?}");
    assert!(host.server.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn identity_check_prints_idinfo_or_names_the_failing_step() {
    let host = host(&["workflow-runner"], json!(null)).await;
    let reference = flowstudio_host::secrets::SecretReference::File { path: "payroll-client-secret".into(), key: None };
    let info = host.app.pipeline.check("mi-payroll", &reference).await.expect("check passes");
    assert_eq!(info.client_id, "payroll-scheduler");
    assert_eq!(info.tenant_id, "contoso");
    assert_eq!(info.managed_identity_id.as_deref(), Some("mi-payroll"));
    assert!(info.is_service_account);
    assert_eq!(info.roles, ["workflow-runner"]);

    let missing = flowstudio_host::secrets::SecretReference::File { path: "no-such-secret".into(), key: None };
    let err = host.app.pipeline.check("mi-payroll", &missing).await.expect_err("no secret");
    assert!(err.to_string().starts_with("step 2 (client secret)"), "{err}");
    let err = host.app.pipeline.check("mi-nobody", &reference).await.expect_err("no identity");
    assert_eq!(err.to_string(), "step 1 (managed identity): managed identity `mi-nobody` does not exist");
}

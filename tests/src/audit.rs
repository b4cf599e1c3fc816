//! Helpers for the audit and guard tests: temp data dirs, one event of every
//! type, identities, and direct access to the audit table for tampering.

use flowstudio_host::audit::*;
use flowstudio_host::identity::IdInfo;
use flowstudio_host::secrets::SecretReference;
use std::path::{Path, PathBuf};

/// A fresh, unique data dir under the temp dir (not created).
pub fn temp_data_dir(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("flowstudio-{tag}-{}-{}", std::process::id(), rand::random::<u64>()))
}

/// A managed identity as the verified token would describe it.
pub fn managed_identity(id: &str, roles: &[&str]) -> IdInfo {
    IdInfo {
        user_id: format!("client-{id}"),
        tenant_id: "tenant-1".into(),
        client_id: format!("client-{id}"),
        display_name: format!("Managed identity {id}"),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        scopes: vec![],
        is_service_account: true,
        managed_identity_id: Some(id.into()),
        token_expires_at: 1_900_000_000,
    }
}

/// A person calling the API.
pub fn human(user: &str, tenant: &str, roles: &[&str]) -> IdInfo {
    IdInfo {
        user_id: user.into(),
        tenant_id: tenant.into(),
        client_id: "flowstudio-console".into(),
        display_name: user.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        scopes: vec![],
        is_service_account: false,
        managed_identity_id: None,
        token_expires_at: 1_900_000_000,
    }
}

pub fn egress_event(execution: &str, identity: &str, destination: &str) -> AuditEvent {
    AuditEvent::Egress(EgressEvent {
        execution_id: execution.into(),
        node_id: "fetch".into(),
        actor: AuditActor::managed_identity(identity),
        method: "GET".into(),
        destination: destination.into(),
        status: Some(200),
        response_bytes: 12,
        latency_ms: 3,
        decision: EgressDecision::Allowed,
        token_attached: true,
    })
}

pub fn execution_event(execution: &str, identity: &str) -> ExecutionEvent {
    ExecutionEvent {
        actor: AuditActor::from_id_info(&managed_identity(identity, &["workflow-runner"])),
        execution_id: execution.into(),
        workflow_id: "wf-monthly-payroll".into(),
        triggered_by: "schedule:Monthly Payroll Run".into(),
        attempt: 1,
        reason: None,
    }
}

/// One event of every type DESIGN §8 lists, for execution `execution` run as `identity`.
pub fn every_kind_of_event(execution: &str, identity: &str) -> Vec<AuditEvent> {
    let info = managed_identity(identity, &["workflow-runner"]);
    let actor = AuditActor::from_id_info(&info);
    let schedule = ScheduleEvent {
        actor: AuditActor::user("admin"),
        schedule_id: "s-1".into(),
        workflow_id: "wf-monthly-payroll".into(),
        name: "Monthly Payroll Run".into(),
        managed_identity_id: identity.into(),
    };
    let node = NodeEvent {
        actor: actor.clone(),
        execution_id: execution.into(),
        workflow_id: "wf-monthly-payroll".into(),
        node_id: "calc".into(),
        attempt: 1,
        outcome: Outcome::Success,
        reason: None,
        duration_ms: None,
    };
    let token = TokenEvent {
        actor: actor.clone(),
        execution_id: Some(execution.into()),
        audience: Some("payroll-api".into()),
        expires_at: 1_900_000_000,
        outcome: Outcome::Success,
        reason: None,
    };
    let reference = SecretReference::AzureKeyVault {
        vault_uri: "https://company-vault.vault.azure.net/".into(),
        secret_name: "payroll-scheduler-client-secret".into(),
        version: None,
    };
    let mut secret_read = SecretReadEvent::new(actor.clone(), &reference, Outcome::Success);
    secret_read.execution_id = Some(execution.into());
    vec![
        AuditEvent::ScheduleCreated(schedule.clone()),
        AuditEvent::ScheduleUpdated(schedule.clone()),
        AuditEvent::Fired(FiringEvent {
            schedule_id: "s-1".into(),
            workflow_id: "wf-monthly-payroll".into(),
            managed_identity_id: identity.into(),
            nominal_time: "2026-12-25T06:00:00Z".into(),
            triggered_by: "schedule:Monthly Payroll Run".into(),
            execution_id: Some(execution.into()),
            outcome: Outcome::Success,
            reason: None,
        }),
        AuditEvent::SecretRead(secret_read),
        AuditEvent::TokenMinted(token.clone()),
        AuditEvent::ExecutionStarted(execution_event(execution, identity)),
        AuditEvent::NodeStarted(node.clone()),
        egress_event(execution, identity, "https://payroll.example:443"),
        AuditEvent::TokenRefreshed(token),
        AuditEvent::NodeFinished(NodeEvent { duration_ms: Some(40), ..node }),
        AuditEvent::ExecutionSucceeded(execution_event(execution, identity)),
        AuditEvent::AuthorizationFailure(AuthorizationEvent {
            actor: actor.clone(),
            action: "workflow.execute".into(),
            workflow_id: "wf-other".into(),
            execution_id: Some(format!("{execution}-b")),
            rule: "policy statement 1 (deny identity mi-1)".into(),
        }),
        AuditEvent::ExecutionRejected(ExecutionEvent {
            execution_id: format!("{execution}-b"),
            reason: Some("403 forbidden: policy statement 1 (deny identity mi-1)".into()),
            ..execution_event(execution, identity)
        }),
        AuditEvent::ExecutionFailed(ExecutionEvent { reason: Some("node calc failed".into()), ..execution_event(execution, identity) }),
        AuditEvent::ScheduleDeleted(schedule),
    ]
}

/// A plain connection to the state database, as someone with file access would open it.
pub fn raw_connection(data_dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(flowstudio_host::db::path_in(data_dir)).expect("open state.db")
}

/// Drop the triggers that protect the audit table, so edits go through.
pub fn drop_audit_triggers(conn: &rusqlite::Connection) {
    conn.execute_batch(
        "DROP TRIGGER IF EXISTS audit_events_no_update; DROP TRIGGER IF EXISTS audit_events_no_delete; DROP TRIGGER IF EXISTS audit_head_no_delete;",
    )
    .expect("drop triggers");
}

/// Record `events` through a `SqliteAuditSink` on `data_dir` and flush.
pub fn record_all(data_dir: &Path, events: Vec<AuditEvent>) {
    let sink = SqliteAuditSink::open(&flowstudio_host::db::path_in(data_dir), std::sync::Arc::new(flowstudio_host::clock::SystemClock))
        .expect("open sink");
    for event in events {
        sink.record(event);
    }
    sink.flush().expect("flush");
}

pub fn store(data_dir: &Path) -> AuditStore {
    AuditStore::open(&flowstudio_host::db::path_in(data_dir)).expect("open store")
}

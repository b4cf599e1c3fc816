//! The ProcessAccessGuard: roles → permissions, resource policies, denials that name their rule.

use flowstudio_host::audit::{AuditEvent, AuditSink, MemoryAuditSink};
use flowstudio_host::guard::*;
use flowstudio_tests::audit::{human, managed_identity};
use serde_json::json;

fn guard() -> AccessGuard {
    // The `[roles]` table as the config file's deserializer hands it over.
    let roles: RolePermissions = serde_json::from_value(json!({
        "workflow-runner": ["workflow.execute"],
        "payroll-operator": ["workflow.*"],
        "viewer": ["workflow.read"],
        "admin": ["*"],
    }))
    .expect("roles");
    roles.validate().expect("valid roles");
    AccessGuard::new(roles)
}

fn policy(value: serde_json::Value) -> ResourcePolicy {
    ResourcePolicy::from_json(&value).expect("valid policy")
}

#[test]
fn a_managed_identity_with_the_permission_through_its_role_may_execute() {
    let grant = guard()
        .authorize(&managed_identity("mi-1", &["workflow-runner"]), WORKFLOW_EXECUTE, "wf-1", &ResourcePolicy::default())
        .expect("granted");
    assert_eq!(grant.role, "workflow-runner");
    assert_eq!(grant.statement, None);
    // Wildcards in the roles map grant too.
    let grant = guard().authorize(&managed_identity("mi-2", &["viewer", "admin"]), WORKFLOW_EXECUTE, "wf-1", &ResourcePolicy::default());
    assert_eq!(grant.expect("admin").role, "admin");
}

#[test]
fn a_missing_permission_is_denied_naming_it_with_403_semantics() {
    let denial = guard()
        .authorize(&managed_identity("mi-1", &["viewer", "unknown-role"]), WORKFLOW_EXECUTE, "wf-1", &ResourcePolicy::default())
        .expect_err("denied");
    assert_eq!(denial.rule, DenyRule::MissingPermission { roles: vec!["viewer".into(), "unknown-role".into()], action: WORKFLOW_EXECUTE.into() });
    assert_eq!(denial.to_string(), "`mi-1` may not workflow.execute workflow `wf-1`: role set [viewer, unknown-role] has no workflow.execute");
    assert_eq!(Denial::STATUS, 403);
    let empty = guard().authorize(&managed_identity("mi-1", &[]), WORKFLOW_EXECUTE, "wf-1", &ResourcePolicy::default());
    assert!(empty.expect_err("no roles").to_string().contains("role set is empty"));
}

#[test]
fn a_deny_statement_by_identity_denies_and_names_the_statement() {
    let p = policy(json!({"statements": [
        {"effect": "deny", "identities": ["mi-9"]},
        {"effect": "deny", "identities": ["mi-1"]},
    ]}));
    let denial = guard().authorize(&managed_identity("mi-1", &["workflow-runner"]), WORKFLOW_EXECUTE, "wf-1", &p).expect_err("denied");
    assert_eq!(denial.rule.to_string(), "policy statement 2 (deny identity mi-1)");
    assert!(guard().authorize(&managed_identity("mi-2", &["workflow-runner"]), WORKFLOW_EXECUTE, "wf-1", &p).is_ok());
}

#[test]
fn deny_statements_by_role_and_by_service_account_flag() {
    let by_role = policy(json!({"statements": [{"effect": "deny", "roles": ["contractor"]}]}));
    let denial = guard()
        .authorize(&managed_identity("mi-1", &["workflow-runner", "contractor"]), WORKFLOW_EXECUTE, "wf-1", &by_role)
        .expect_err("denied by role");
    assert_eq!(denial.rule.to_string(), "policy statement 1 (deny role contractor)");

    let no_robots = policy(json!({"statements": [{"effect": "deny", "serviceAccount": true}]}));
    let denial = guard().authorize(&managed_identity("mi-1", &["workflow-runner"]), WORKFLOW_EXECUTE, "wf-1", &no_robots).expect_err("denied");
    assert_eq!(denial.rule.to_string(), "policy statement 1 (deny service accounts)");
    // The same statement does not touch a person.
    assert!(guard().authorize(&human("alice", "tenant-1", &["workflow-runner"]), WORKFLOW_EXECUTE, "wf-1", &no_robots).is_ok());
}

#[test]
fn allow_by_role_makes_the_allow_list_exclusive() {
    let p = policy(json!({"statements": [{"effect": "allow", "roles": ["payroll-operator"]}]}));
    let grant = guard().authorize(&managed_identity("mi-1", &["payroll-operator"]), WORKFLOW_EXECUTE, "wf-1", &p).expect("allowed");
    assert_eq!((grant.role.as_str(), grant.statement), ("payroll-operator", Some(1)));
    // Holding workflow.execute through another role is not enough once the policy lists who may.
    let denial = guard().authorize(&managed_identity("mi-2", &["workflow-runner"]), WORKFLOW_EXECUTE, "wf-1", &p).expect_err("not listed");
    assert_eq!(denial.rule, DenyRule::NoAllowMatched { allow_statements: vec![1] });
    // And an allow statement never grants a permission the roles lack.
    let viewer_allowed = policy(json!({"statements": [{"effect": "allow", "roles": ["viewer"]}]}));
    let denial = guard().authorize(&managed_identity("mi-3", &["viewer"]), WORKFLOW_EXECUTE, "wf-1", &viewer_allowed).expect_err("no permission");
    assert!(matches!(denial.rule, DenyRule::MissingPermission { .. }));
}

#[test]
fn deny_wins_over_allow_wherever_it_stands() {
    let p = policy(json!({"statements": [
        {"effect": "allow", "identities": ["mi-1"]},
        {"effect": "allow", "roles": ["workflow-runner"]},
        {"effect": "deny", "identities": ["mi-1"], "actions": ["workflow.execute"]},
    ]}));
    let denial = guard().authorize(&managed_identity("mi-1", &["workflow-runner"]), WORKFLOW_EXECUTE, "wf-1", &p).expect_err("deny wins");
    assert_eq!(denial.rule.to_string(), "policy statement 3 (deny identity mi-1)");
    let grant = guard().authorize(&managed_identity("mi-2", &["workflow-runner"]), WORKFLOW_EXECUTE, "wf-1", &p).expect("mi-2 allowed");
    assert_eq!(grant.statement, Some(2));
}

#[test]
fn statements_for_other_actions_do_not_apply() {
    let p = policy(json!({"statements": [
        {"effect": "deny", "identities": ["mi-1"], "actions": ["workflow.edit"]},
        {"effect": "allow", "identities": ["someone-else"], "actions": ["workflow.edit"]},
    ]}));
    assert!(guard().authorize(&managed_identity("mi-1", &["workflow-runner"]), WORKFLOW_EXECUTE, "wf-1", &p).is_ok());
    let denial = guard().authorize(&managed_identity("mi-1", &["admin"]), "workflow.edit", "wf-1", &p).expect_err("edit denied");
    assert_eq!(denial.rule.to_string(), "policy statement 1 (deny identity mi-1)");
}

#[test]
fn a_human_actor_is_checked_with_the_callers_roles() {
    let p = policy(json!({"statements": [{"effect": "allow", "identities": ["alice", "auth0|5f3c"]}, {"effect": "allow", "roles": ["admin"]}]}));
    let grant = guard().authorize(&human("alice", "tenant-1", &["workflow-runner"]), WORKFLOW_EXECUTE, "wf-1", &p).expect("alice");
    assert_eq!(grant.statement, Some(1));
    // Bob is named nowhere and his roles lack the permission: the role check speaks first.
    let denial = guard().authorize(&human("bob", "tenant-1", &["viewer"]), WORKFLOW_EXECUTE, "wf-1", &p).expect_err("bob");
    assert_eq!(denial.to_string(), "`bob` may not workflow.execute workflow `wf-1`: role set [viewer] has no workflow.execute");
    // Carol is an admin: statement 2.
    assert_eq!(guard().authorize(&human("carol", "tenant-1", &["admin"]), WORKFLOW_EXECUTE, "wf-1", &p).expect("carol").statement, Some(2));
}

#[test]
fn a_tenant_condition_limits_who_matches() {
    let p = policy(json!({"statements": [
        {"effect": "deny", "tenants": ["tenant-evil"]},
        {"effect": "allow", "tenants": ["tenant-1"], "roles": ["workflow-runner"]},
    ]}));
    assert!(guard().authorize(&human("alice", "tenant-1", &["workflow-runner"]), WORKFLOW_EXECUTE, "wf-1", &p).is_ok());
    let other = guard().authorize(&human("dave", "tenant-2", &["workflow-runner"]), WORKFLOW_EXECUTE, "wf-1", &p).expect_err("tenant-2");
    assert_eq!(other.rule, DenyRule::NoAllowMatched { allow_statements: vec![2] });
    let evil = guard().authorize(&human("eve", "tenant-evil", &["workflow-runner"]), WORKFLOW_EXECUTE, "wf-1", &p).expect_err("evil");
    assert_eq!(evil.rule.to_string(), "policy statement 1 (deny tenant tenant-evil)");
}

#[test]
fn bad_policies_are_refused_naming_the_field() {
    let cases = [
        (json!({"statements": [{"identities": ["mi-1"]}]}), "statements[0].effect", "required"),
        (json!({"statements": [{"effect": "maybe"}]}), "statements[0].effect", "allow"),
        (json!({"statements": [{"effect": "deny"}, {"effect": "deny", "identity": ["mi-1"]}]}), "statements[1].identity", "not a statement field"),
        (json!({"statements": [{"effect": "deny", "identities": "mi-1"}]}), "statements[0].identities", "list"),
        (json!({"statements": [{"effect": "deny", "roles": []}]}), "statements[0].roles", "empty"),
        (json!({"statements": [{"effect": "deny", "identities": ["mi 1"]}]}), "statements[0].identities[0]", "identity id"),
        (json!({"statements": [{"effect": "allow", "actions": ["Run It"]}]}), "statements[0].actions[0]", "permission"),
        (json!({"statements": [{"effect": "allow", "serviceAccount": "yes"}]}), "statements[0].serviceAccount", "true or false"),
        (json!({"statement": []}), "statement", "only `statements`"),
        (json!([]), "", "object"),
    ];
    for (value, field, needle) in cases {
        let errors = ResourcePolicy::from_json(&value).expect_err(&value.to_string());
        assert!(errors.iter().any(|e| e.field == field && e.message.contains(needle)), "{value}: {errors:?}");
    }
    // Nesting under the workflow's field keeps the path readable.
    let e = ResourcePolicy::from_json(&json!({"statements": [{"effect": "x"}]})).expect_err("bad")[0].clone().nested("accessPolicy");
    assert_eq!(e.field, "accessPolicy.statements[0].effect");
}

#[test]
fn a_policy_round_trips_through_its_camel_case_json() {
    let value = json!({"statements": [{"effect": "allow", "identities": ["mi-1"], "roles": ["r"], "serviceAccount": true, "tenants": ["t"], "actions": ["workflow.*"]}]});
    let parsed = policy(value.clone());
    assert_eq!(serde_json::to_value(&parsed).expect("json"), value);
    assert_eq!(serde_json::from_value::<ResourcePolicy>(value).expect("serde"), parsed);
}

#[test]
fn a_denial_becomes_the_authorization_failure_and_rejection_events() {
    let p = policy(json!({"statements": [{"effect": "deny", "identities": ["mi-1"]}]}));
    let denial = guard().authorize(&managed_identity("mi-1", &["workflow-runner"]), WORKFLOW_EXECUTE, "wf-1", &p).expect_err("denied");
    let sink = MemoryAuditSink::default();
    sink.record(denial.audit_event(Some("exec-7")));
    sink.record(denial.rejection_event("exec-7", "schedule:nightly", 1));
    let events = sink.events();
    let AuditEvent::AuthorizationFailure(failure) = &events[0] else { panic!("{events:?}") };
    assert_eq!(failure.rule, "policy statement 1 (deny identity mi-1)");
    assert_eq!(failure.actor.managed_identity_id.as_deref(), Some("mi-1"));
    assert_eq!(failure.actor.client_id.as_deref(), Some("client-mi-1"));
    assert!(failure.actor.service_account);
    let summary = events[1].summary();
    assert_eq!(summary.action, "execution.rejected");
    assert_eq!(summary.outcome, flowstudio_host::audit::Outcome::Denied);
    assert_eq!(summary.reason.as_deref(), Some("403 forbidden: policy statement 1 (deny identity mi-1)"));
}

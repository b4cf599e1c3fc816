//! Nothing secret leaves the host's secret types during whole runs: every
//! `tracing` line at TRACE level, every error string the runs produced (engine
//! events, executions, attempts, node results), the audit table and the
//! state database are searched for the client secrets (as stored, form-encoded
//! and inside a Basic header), the host's Vault token and every token the
//! destination saw. The runs cover the sore spots: a rotation (401, refresh,
//! `invalid_client`, re-read past the cache, replay), a passport refusing for
//! good, and a store denying. `identity check` at `FLOWSTUDIO_LOG=trace` is
//! searched the same way.
//!
//! The log capture is process-wide, so the first test's search also covers
//! whatever the second does in this process.

use base64::Engine as _;
use flowstudio_host::state::ExecutionStatus;
use flowstudio_tests::identities::form_encode;
use flowstudio_tests::peers::*;
use flowstudio_tests::secrets::BAO_ROOT_TOKEN;
use flowstudio_tests::tokens::{captured_logs, captured_text, CLIENT_ID};
use serde_json::json;

const OLD_SECRET: &str = "old+secret/v1:%=leaks";
const NEW_SECRET: &str = "new+secret/v2:%=leaks";

/// Everything that would give a secret or token away.
fn forbidden(tokens: &[String], vault_token: &str) -> Vec<String> {
    let mut out = vec![vault_token.to_string(), BAO_ROOT_TOKEN.to_string()];
    for secret in [OLD_SECRET, NEW_SECRET] {
        out.push(secret.to_string());
        out.push(form_encode(secret));
        let basic = format!("{}:{}", form_encode(CLIENT_ID), form_encode(secret));
        out.push(base64::engine::general_purpose::STANDARD.encode(basic));
    }
    for token in tokens {
        out.push(token.clone());
        // The signature alone identifies a JWT; so does its payload.
        out.extend(token.split('.').skip(1).map(str::to_string));
    }
    out
}

fn assert_clean(what: &str, text: &str, forbidden: &[String]) {
    for needle in forbidden {
        assert!(!text.contains(needle.as_str()), "{what} leaked `{needle}`:\n{text}");
    }
    assert!(!text.contains("eyJ"), "{what} holds something like a JWT (base64 of `{{\"`):\n{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_log_line_error_or_audit_record_of_whole_runs_holds_a_secret_or_token() {
    captured_logs();
    let mut rig = VaultRig::start(OLD_SECRET).await;
    let mut errors: Vec<String> = Vec::new();
    let mut runs = Vec::new();

    // A good run, then a rotation the next run has to work through.
    let first = rig.host.run().await;
    assert_eq!(first.status, ExecutionStatus::Succeeded, "{first:?}");
    let old_token = rig.host.destination.tokens()[0].clone();
    rig.rotate(NEW_SECRET, &old_token).await;
    let second = rig.host.run().await;
    assert_eq!(second.status, ExecutionStatus::Succeeded, "{second:?}");
    let new_token = rig.host.destination.tokens().last().cloned().expect("a token");

    // The passport stops accepting the identity altogether: the run fails, clearly.
    rig.mock.set(json!({ "secret": "a-secret-the-host-never-had" })).await;
    rig.host.destination.revoke(&new_token);
    let third = rig.host.run().await;
    assert_eq!(third.status, ExecutionStatus::Failed, "{third:?}");
    let reason = third.error.clone().unwrap_or_default();
    assert!(reason.contains("refused by the passport"), "{reason}");

    // The store denies: the host's Vault token may not read another team's path.
    let mut elsewhere = rig.reference();
    elsewhere["path"] = "other-team/app".into();
    let check = rig.host.app.pipeline.check(IDENTITY, &serde_json::from_value(elsewhere).expect("reference")).await;
    let denied = check.expect_err("the store denies");
    assert!(denied.to_string().starts_with("step 2 (client secret)"), "{denied}");
    errors.push(format!("{denied} {denied:?}"));
    runs.extend([first, second, third]);

    rig.host.stop().await;
    for run in &runs {
        errors.push(format!("{run:?}"));
        let store = &rig.host.app.store;
        let execution = store.get_execution(&run.execution_id).await.expect("store").expect("execution");
        errors.push(serde_json::to_string(&execution).expect("json"));
        errors.push(serde_json::to_string(&store.attempts(&run.execution_id).await.expect("attempts")).expect("json"));
        errors.push(serde_json::to_string(&store.node_results(&run.execution_id).await.expect("node results")).expect("json"));
    }
    let tokens = rig.host.destination.tokens();
    assert!(tokens.len() >= 3, "{tokens:?}");
    let forbidden = forbidden(&tokens, &rig.reader);

    let logs = captured_text();
    assert!(logs.contains("TRACE") || logs.contains("DEBUG"), "the capture sees below INFO");
    assert!(logs.contains("token obtained"), "the capture sees the token path");
    assert!(logs.contains("token refresh failed"), "and its failures");
    assert_clean("the tracing output", &logs, &forbidden);
    for error in &errors {
        assert_clean("an error of the runs", error, &forbidden);
    }
    let records = rig.host.audit_records();
    assert!(records.iter().any(|r| r.action == "secret.read" && r.outcome == "failure"), "the denial is audited");
    for record in &records {
        assert_clean("the audit table", &serde_json::to_string(record).expect("json"), &forbidden);
    }
    assert_clean("the state database", &rig.host.database_text(), &forbidden);
}

#[tokio::test(flavor = "multi_thread")]
async fn identity_check_at_trace_level_prints_neither_secret_nor_token() {
    let rig = VaultRig::start(OLD_SECRET).await;
    let config = format!("{}{}", external_passport(&rig.mock), vault_token_section(&rig.bao, &rig.reader));
    let host = CheckHost::new("peers-leaks-check", &config);
    host.register(None);

    let out = host.check_logging(&rig.reference(), "trace").await;
    assert_external_id_info(&out.id_info());
    assert!(out.stderr.contains("TRACE"), "trace lines were written: {}", out.stderr);
    assert!(out.stderr.contains("token obtained"), "{}", out.stderr);

    // Refused with the secret it holds, and re-read past the cache: the error path at trace level.
    rig.mock.set(json!({ "secret": NEW_SECRET })).await;
    let refused = host.check_logging(&rig.reference(), "trace").await;
    refused.assert_fails_at("step 3 (token)", "refused by the passport");

    // The destination saw no token here; forbid every JWT and the secrets.
    let forbidden = forbidden(&[], &rig.reader);
    for out in [&out, &refused] {
        assert_clean("identity check", &out.text(), &forbidden);
    }
}

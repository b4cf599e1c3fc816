//! A whole scheduled run (trigger-now) on the assembled host with the client
//! secret in OpenBao and the independent passport (PassportMock), then a
//! rotation while the host keeps running.
//!
//! The rotation is what a platform does: a new secret version in Vault, the
//! passport accepting only the new secret, and the tokens minted with the old
//! one revoked (the destination answers 401 `invalid_token` to them). The
//! host's secret cache still holds the old secret, so the next run goes:
//! cached token → 401 → cached secret → `invalid_client` → one read of the
//! store past the cache → new secret → new token → replay. OpenBao itself
//! counts the reads that reached it (the host's token has a use count).

use flowstudio_host::audit::AuditRecord;
use flowstudio_host::passport::JwtVerifier;
use flowstudio_host::state::ExecutionStatus;
use flowstudio_tests::peers::*;
use flowstudio_tests::tokens::{PassportMock, CLIENT_ID};
use serde_json::json;

const OLD_SECRET: &str = "old+secret/v1:%=payroll";
const NEW_SECRET: &str = "new+secret/v2:%=payroll";

async fn verify_at(mock: &PassportMock, token: &str) -> serde_json::Value {
    let jwks = mock.jwks().await;
    JwtVerifier::new(&mock.issuer, "flowstudio", &jwks).expect("verifier").verify(token).expect("the token verifies at the passport")
}

fn secret_read_versions(records: &[AuditRecord]) -> Vec<String> {
    records
        .iter()
        .filter(|r| r.action == "secret.read")
        .map(|r| format!("{}:{}", r.outcome, r.details["version"].as_str().unwrap_or("-")))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_secret_in_openbao_is_picked_up_by_the_next_run_without_a_restart() {
    let mut rig = VaultRig::start(OLD_SECRET).await;

    // Run 1: one read of the store, one token, and the node's call carries it.
    let first = rig.host.run().await;
    assert_eq!(first.status, ExecutionStatus::Succeeded, "{first:?}");
    let tokens = rig.host.destination.tokens();
    assert_eq!(tokens.len(), 1);
    let old_token = tokens[0].clone();
    let claims = verify_at(&rig.mock, &old_token).await;
    assert_eq!(claims["sub"], CLIENT_ID);
    assert_eq!(rig.store_reads().await, 1);
    assert_eq!(rig.mock.stats().await["accepted"].as_u64(), Some(1));

    // Rotation, while the host runs on.
    rig.rotate(NEW_SECRET, &old_token).await;

    // Run 2 succeeds with exactly one extra read of the store.
    let second = rig.host.run().await;
    assert_eq!(second.status, ExecutionStatus::Succeeded, "{second:?}");
    assert_eq!(rig.store_reads().await, 2, "exactly one extra read, past the cache");
    let stats = rig.mock.stats().await;
    assert_eq!((stats["refused"].as_u64(), stats["accepted"].as_u64()), (Some(1), Some(2)), "the cached old secret once, then the new one: {stats}");
    let tokens = rig.host.destination.tokens();
    assert_eq!(tokens.len(), 3, "the revoked token, then the replay: {tokens:?}");
    assert_eq!(tokens[1], old_token, "the cached token was tried first");
    let new_token = tokens[2].clone();
    assert_ne!(new_token, old_token);
    assert_eq!(verify_at(&rig.mock, &new_token).await["sub"], CLIENT_ID);
    let execution = rig.host.app.store.get_execution(&second.execution_id).await.expect("store").expect("execution");
    assert_eq!(execution.output.as_ref().map(|o| o["fetch"]["status"].clone()), Some(json!(200)), "the node saw the replay's answer");

    // Run 3: the old token is gone for good; the new one serves without asking anyone.
    let third = rig.host.run().await;
    assert_eq!(third.status, ExecutionStatus::Succeeded, "{third:?}");
    assert_eq!(rig.host.destination.tokens()[3..], [new_token]);
    assert_eq!(rig.store_reads().await, 2);
    assert_eq!(rig.mock.token_requests().await, 3);

    rig.host.stop().await;
    let records = rig.host.audit_records();
    // Reads as the host saw them: the store (v1), the cache (still v1), the store past the cache (v2).
    assert_eq!(secret_read_versions(&records), ["success:1", "success:1", "success:2"]);
    let minted: Vec<_> = records.iter().filter(|r| r.action.starts_with("token.")).map(|r| (r.action.as_str(), r.outcome.as_str())).collect();
    assert_eq!(minted, [("token.minted", "success"), ("token.minted", "success")], "{minted:?}");
    let egress: Vec<_> = records
        .iter()
        .filter(|r| r.action == "egress.call")
        .map(|r| (r.execution_id.clone().unwrap_or_default(), r.details["status"].clone()))
        .collect();
    assert_eq!(
        egress,
        [(first.execution_id, json!(200)), (second.execution_id, json!(200)), (third.execution_id, json!(200))],
        "one audited call per run, with the status the node got"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_passport_refusing_the_identity_for_good_fails_the_run_at_once_saying_so() {
    let rig = VaultRig::start(OLD_SECRET).await;
    let first = rig.host.run().await;
    assert_eq!(first.status, ExecutionStatus::Succeeded, "{first:?}");
    // The identity's client is gone at the passport, and its tokens with it.
    rig.mock.set(json!({"secret": "a-secret-the-host-never-had"})).await;
    rig.host.destination.revoke(&rig.host.destination.tokens()[0]);

    let second = rig.host.run().await;
    assert_eq!(second.status, ExecutionStatus::Failed, "{second:?}");
    let error = second.error.unwrap_or_default();
    assert!(
        error.starts_with("no token for node `fetch`: managed identity `mi-payroll` was refused by the passport: invalid_client"),
        "the run names the refusal, not the node's network error: {error}"
    );
    // A refusal is not retried, though the schedule allows 3 attempts.
    let attempts = rig.host.app.store.attempts(&second.execution_id).await.expect("attempts");
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert!(!attempts[0].transient);
    assert_eq!(rig.store_reads().await, 2, "the cached secret, then one read past the cache that found the same");
}

//! HashiCorp Vault KV v2 against an OpenBao dev server: token and AppRole
//! auth, not found, denied by policy, namespaces, and the address allowlist.

use flowstudio_host::clock::SystemClock;
use flowstudio_host::secret::Secret;
use flowstudio_host::secrets::{Freshness, HashicorpVaultConfig, HashicorpVaultProvider, SecretError, SecretReference, SecretsProvider};
use flowstudio_tests::secrets::*;
use serde_json::json;
use std::sync::Arc;

fn config(bao: &OpenBao) -> HashicorpVaultConfig {
    HashicorpVaultConfig {
        addresses: vec![bao.address()],
        token: None,
        role_id: None,
        secret_id: None,
        approle_mount: "approle".into(),
        timeout_seconds: 10,
    }
}

fn with_token(bao: &OpenBao, token: &str) -> HashicorpVaultProvider {
    HashicorpVaultProvider::new(Some(&HashicorpVaultConfig { token: Some(Secret::new(token)), ..config(bao) }), Arc::new(SystemClock))
}

fn reference(bao: &OpenBao, path: &str, key: &str, namespace: Option<&str>) -> SecretReference {
    SecretReference::HashicorpVault { address: bao.address(), mount: "secret".into(), path: path.into(), key: key.into(), namespace: namespace.map(str::to_string) }
}

const READ_PAYROLL: &str = r#"path "secret/data/payroll/*" { capabilities = ["read"] }"#;

#[tokio::test]
async fn a_token_reads_the_key_and_its_version() {
    let bao = OpenBao::start().await;
    bao.put_secret(None, "payroll/app", json!({ "client_secret": "first", "client_id": "payroll" })).await;
    bao.put_secret(None, "payroll/app", json!({ "client_secret": AWKWARD_SECRET, "client_id": "payroll" })).await;
    bao.put_policy("read-payroll", READ_PAYROLL).await;
    let token = bao.token_with(&["read-payroll"]).await;
    let vault = with_token(&bao, &token);

    let read = vault.read(&reference(&bao, "payroll/app", "client_secret", None), Freshness::Cached).await.expect("read");
    assert_eq!(read.value.expose(), AWKWARD_SECRET);
    assert_eq!(read.version.as_deref(), Some("2"));

    let missing_key = vault.read(&reference(&bao, "payroll/app", "password", None), Freshness::Cached).await.unwrap_err();
    assert!(matches!(&missing_key, SecretError::NotFound { reference } if reference.ends_with("#password")), "{missing_key:?}");
    let missing_path = vault.read(&reference(&bao, "payroll/none", "client_secret", None), Freshness::Cached).await.unwrap_err();
    assert!(matches!(missing_path, SecretError::NotFound { .. }), "{missing_path:?}");
    let outside_policy = {
        bao.put_secret(None, "hr/app", json!({ "client_secret": "hr-secret" })).await;
        vault.read(&reference(&bao, "hr/app", "client_secret", None), Freshness::Cached).await.unwrap_err()
    };
    assert!(matches!(&outside_policy, SecretError::AccessDenied { reason, .. } if reason.contains("permission denied")), "{outside_policy:?}");
    for error in [&missing_key, &missing_path, &outside_policy] {
        assert_redacted(error, &[AWKWARD_SECRET, "hr-secret", &token]);
    }
    assert_no_secret(&format!("{vault:?}"), &[&token]);
}

#[tokio::test]
async fn approle_logs_in_caches_its_token_and_logs_in_again_after_a_403() {
    let bao = OpenBao::start().await;
    bao.put_secret(None, "payroll/app", json!({ "client_secret": AWKWARD_SECRET })).await;
    bao.put_policy("read-payroll", READ_PAYROLL).await;
    let (role_id, secret_id) = bao.approle("scheduler", &["read-payroll"], "1h").await;
    let vault = HashicorpVaultProvider::new(
        Some(&HashicorpVaultConfig { role_id: Some(role_id.clone()), secret_id: Some(Secret::new(secret_id.clone())), ..config(&bao) }),
        Arc::new(SystemClock),
    );
    let target = reference(&bao, "payroll/app", "client_secret", None);
    assert_eq!(vault.read(&target, Freshness::Cached).await.expect("first read").value.expose(), AWKWARD_SECRET);
    assert_eq!(vault.read(&target, Freshness::Cached).await.expect("second read").value.expose(), AWKWARD_SECRET);
    let logins = || async {
        let accessors = bao.root(reqwest::Method::GET, "auth/token/accessors?list=true", None, None).await;
        accessors["data"]["keys"].as_array().map(Vec::len).unwrap_or_default()
    };
    let tokens_after_two_reads = logins().await;

    // Revoke every token the role got: the next read meets a 403, logs in again and succeeds.
    let accessors = bao.root(reqwest::Method::GET, "auth/token/accessors?list=true", None, None).await;
    for accessor in accessors["data"]["keys"].as_array().expect("keys") {
        let info = bao.root(reqwest::Method::POST, "auth/token/lookup-accessor", None, Some(json!({ "accessor": accessor }))).await;
        if info["data"]["meta"]["role_name"] == "scheduler" {
            bao.root(reqwest::Method::POST, "auth/token/revoke-accessor", None, Some(json!({ "accessor": accessor }))).await;
        }
    }
    assert_eq!(vault.read(&target, Freshness::Cached).await.expect("read after revocation").value.expose(), AWKWARD_SECRET);
    // Root + one AppRole token for the first two reads (the login was cached), then one new login.
    assert_eq!(tokens_after_two_reads, 2, "two reads logged in once");
    assert_eq!(logins().await, 2, "the revoked token was replaced by exactly one new login");

    let wrong = HashicorpVaultProvider::new(
        Some(&HashicorpVaultConfig { role_id: Some(role_id), secret_id: Some(Secret::new("not-the-secret-id")), ..config(&bao) }),
        Arc::new(SystemClock),
    );
    let refused = wrong.read(&target, Freshness::Cached).await.unwrap_err();
    assert!(matches!(&refused, SecretError::AccessDenied { reason, .. } if reason.contains("AppRole login failed")), "{refused:?}");
    assert_redacted(&refused, &[AWKWARD_SECRET, &secret_id, "not-the-secret-id"]);
}

#[tokio::test]
async fn a_namespace_is_sent_and_scopes_the_read() {
    let bao = OpenBao::start().await;
    bao.namespace("team-a").await;
    bao.put_secret(Some("team-a"), "payroll/app", json!({ "client_secret": AWKWARD_SECRET })).await;
    let vault = with_token(&bao, BAO_ROOT_TOKEN);
    let read = vault.read(&reference(&bao, "payroll/app", "client_secret", Some("team-a")), Freshness::Cached).await.expect("namespaced read");
    assert_eq!(read.value.expose(), AWKWARD_SECRET);
    // The same path outside the namespace does not exist: the header really scoped the read.
    let root_ns = vault.read(&reference(&bao, "payroll/app", "client_secret", None), Freshness::Cached).await.unwrap_err();
    assert!(matches!(root_ns, SecretError::NotFound { .. }), "{root_ns:?}");
}

#[tokio::test]
async fn an_address_outside_the_allowlist_never_gets_the_token() {
    let bao = OpenBao::start().await;
    let recorder = flowstudio_tests::RecordingServer::start(|_, _| flowstudio_tests::Reply::json(200, json!({}))).await;
    let vault = with_token(&bao, BAO_ROOT_TOKEN);
    let elsewhere = SecretReference::HashicorpVault {
        address: recorder.origin(),
        mount: "secret".into(),
        path: "payroll/app".into(),
        key: "client_secret".into(),
        namespace: None,
    };
    let error = vault.read(&elsewhere, Freshness::Cached).await.unwrap_err();
    assert!(matches!(&error, SecretError::NotConfigured { reason, .. } if reason.contains("addresses")), "{error:?}");
    assert!(recorder.seen().is_empty(), "the unlisted address was contacted");

    let unconfigured = HashicorpVaultProvider::new(None, Arc::new(SystemClock));
    let error = unconfigured.read(&reference(&bao, "p", "k", None), Freshness::Cached).await.unwrap_err();
    assert!(matches!(&error, SecretError::NotConfigured { reason, .. } if reason.contains("[secrets.hashicorp-vault]")), "{error:?}");
}

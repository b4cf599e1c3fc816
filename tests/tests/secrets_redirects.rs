//! A secret store that redirects to another host: nothing is followed, the
//! other host receives no credential (it receives nothing at all), and the
//! error names where the store pointed.

use flowstudio_host::clock::SystemClock;
use flowstudio_host::secret::Secret;
use flowstudio_host::secrets::*;
use flowstudio_tests::secrets::*;
use flowstudio_tests::{RecordingServer, Reply};
use std::sync::Arc;

fn assert_names_target(error: &SecretError, target: &RecordingServer) {
    assert!(
        matches!(error, SecretError::Invalid { reason, .. } if reason.contains(&format!("127.0.0.1:{}", target.port)) && reason.contains("redirect")),
        "{error:?}"
    );
}

fn assert_untouched(target: &RecordingServer) {
    let seen = target.seen();
    assert!(seen.iter().all(|s| s.header("authorization").is_none() && s.header("x-vault-token").is_none()), "a credential was forwarded: {seen:?}");
    assert!(seen.is_empty(), "the redirect was followed: {seen:?}");
}

#[tokio::test]
async fn vault_redirect_keeps_the_token_here() {
    let elsewhere = RecordingServer::start(|_, _| Reply::json(200, serde_json::json!({}))).await;
    let target_url = elsewhere.url("/stolen");
    let store = RecordingServer::start(move |_, _| Reply { status: 302, headers: vec![("location".into(), target_url.clone())], body: String::new() }).await;
    let config = HashicorpVaultConfig {
        addresses: vec![store.origin()],
        token: Some(Secret::new("host-vault-token")),
        role_id: None,
        secret_id: None,
        approle_mount: "approle".into(),
        timeout_seconds: 5,
    };
    let vault = HashicorpVaultProvider::new(Some(&config), Arc::new(SystemClock));
    let reference = SecretReference::HashicorpVault { address: store.origin(), mount: "secret".into(), path: "app".into(), key: "k".into(), namespace: None };
    let error = vault.read(&reference, Freshness::Cached).await.unwrap_err();
    assert_names_target(&error, &elsewhere);
    assert_untouched(&elsewhere);
    assert_eq!(store.seen().len(), 1);
    assert_redacted(&error, &["host-vault-token"]);
}

#[tokio::test]
async fn key_vault_redirect_after_the_challenge_keeps_the_bearer_token_here() {
    let entra = AzureVaultEmulator::start().await;
    let elsewhere = RecordingServer::start(|_, _| Reply::json(200, serde_json::json!({}))).await;
    let elsewhere_url = elsewhere.url("/stolen");
    let authorization = format!("{}/{}", entra.origin(), entra.state.tenant);
    let vault_server = RecordingServer::start(move |seen, _| match seen.header("authorization") {
        None => Reply {
            status: 401,
            headers: vec![("www-authenticate".into(), format!(r#"Bearer authorization="{authorization}", resource="https://127.0.0.1""#))],
            body: String::new(),
        },
        Some(_) => Reply { status: 307, headers: vec![("location".into(), elsewhere_url.clone())], body: String::new() },
    })
    .await;
    let config = AzureKeyVaultConfig {
        tenant_id: None,
        client_id: Some(entra.state.client_id.clone()),
        client_secret: Some(Secret::new(entra.state.client_secret.clone())),
        authority: entra.origin(),
        managed_identity: false,
        managed_identity_client_id: None,
        imds_endpoint: "http://169.254.169.254".into(),
        api_version: "7.6".into(),
        timeout_seconds: 5,
    };
    let vault = AzureKeyVaultProvider::new(Some(&config), Arc::new(SystemClock));
    let reference = SecretReference::AzureKeyVault { vault_uri: vault_server.url("/"), secret_name: "payroll".into(), version: None };
    let error = vault.read(&reference, Freshness::Cached).await.unwrap_err();
    assert_names_target(&error, &elsewhere);
    assert_untouched(&elsewhere);
    assert!(vault_server.seen()[1].header("authorization").is_some(), "the vault itself did get the token");
    assert_redacted(&error, &[AWKWARD_SECRET]);
}

#[tokio::test]
async fn entra_token_endpoint_redirect_keeps_the_client_secret_here() {
    let elsewhere = RecordingServer::start(|_, _| Reply::json(200, serde_json::json!({}))).await;
    let redirecting_authority = RecordingServer::start({
        let target = elsewhere.url("/stolen");
        move |_, _| Reply { status: 308, headers: vec![("location".into(), target.clone())], body: String::new() }
    })
    .await;
    let vault_server = RecordingServer::start(|_, _| Reply {
        status: 401,
        headers: vec![("www-authenticate".into(), r#"Bearer authorization="https://login.example/tenant-1", resource="https://127.0.0.1""#.into())],
        body: String::new(),
    })
    .await;
    let toml = format!(
        "[secrets.azure-key-vault]\nclient-id = \"host\"\nclient-secret = \"{AWKWARD_SECRET}\"\nauthority = \"{}\"\n",
        redirecting_authority.origin()
    );
    let config = SecretsConfig::from_toml(&toml).expect("config");
    let vault = AzureKeyVaultProvider::new(config.azure_key_vault.as_ref(), Arc::new(SystemClock));
    let reference = SecretReference::AzureKeyVault { vault_uri: vault_server.url("/"), secret_name: "payroll".into(), version: None };
    let error = vault.read(&reference, Freshness::Cached).await.unwrap_err();
    assert_names_target(&error, &elsewhere);
    assert_untouched(&elsewhere);
    assert!(redirecting_authority.seen()[0].path.starts_with("/tenant-1/oauth2/v2.0/token"), "the tenant came from the challenge");
    assert_redacted(&error, &[AWKWARD_SECRET]);
}

#[tokio::test]
async fn secrets_manager_redirect_keeps_the_signature_here() {
    let elsewhere = RecordingServer::start(|_, _| Reply::json(200, serde_json::json!({}))).await;
    let store = RecordingServer::start({
        let target = elsewhere.url("/stolen");
        move |_, _| Reply { status: 307, headers: vec![("location".into(), target.clone())], body: String::new() }
    })
    .await;
    let config = AwsSecretsManagerConfig {
        access_key_id: Some("AKIAEXAMPLE".into()),
        secret_access_key: Some(Secret::new("aws-secret-key")),
        session_token: Some(Secret::new("aws-session-token")),
        endpoint: Some(store.origin()),
        timeout_seconds: 5,
    };
    let aws = AwsSecretsManagerProvider::with_env(Some(&config), |_| None);
    let reference = SecretReference::AwsSecretsManager { region: "eu-west-1".into(), secret_id: "payroll".into(), version_stage: None, json_key: None };
    let error = aws.read(&reference, Freshness::Cached).await.unwrap_err();
    assert_names_target(&error, &elsewhere);
    assert_untouched(&elsewhere);
    assert_eq!(store.seen()[0].header("x-amz-security-token"), Some("aws-session-token"), "the store itself got the signed request");
    assert_redacted(&error, &["aws-secret-key", "aws-session-token"]);
}

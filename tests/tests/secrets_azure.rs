//! Azure Key Vault against our emulator of its REST contract: the challenge
//! flow with Entra client credentials or IMDS, versions, not found, denied,
//! disabled, and a challenge for a foreign resource refused.

use flowstudio_host::clock::SystemClock;
use flowstudio_host::secret::Secret;
use flowstudio_host::secrets::{AzureKeyVaultConfig, AzureKeyVaultProvider, Freshness, SecretError, SecretReference, SecretsConfig, SecretsProvider};
use flowstudio_tests::secrets::*;
use std::sync::atomic::Ordering;
use std::sync::Arc;

fn client_secret_config(azure: &AzureVaultEmulator) -> AzureKeyVaultConfig {
    let toml = format!(
        "[secrets.azure-key-vault]\nclient-id = \"{}\"\nclient-secret = \"{}\"\nauthority = \"{}\"\n",
        azure.state.client_id,
        azure.state.client_secret,
        azure.origin()
    );
    SecretsConfig::from_toml(&toml).expect("config").azure_key_vault.expect("section")
}

fn provider(config: &AzureKeyVaultConfig) -> AzureKeyVaultProvider {
    AzureKeyVaultProvider::new(Some(config), Arc::new(SystemClock))
}

fn reference(azure: &AzureVaultEmulator, name: &str, version: Option<&str>) -> SecretReference {
    SecretReference::AzureKeyVault { vault_uri: azure.vault_uri(), secret_name: name.into(), version: version.map(str::to_string) }
}

#[tokio::test]
async fn the_challenge_flow_reads_the_latest_and_a_pinned_version() {
    let azure = AzureVaultEmulator::start().await;
    let first = azure.set_secret("payroll-client-secret", "old-value", true);
    let latest = azure.set_secret("payroll-client-secret", AWKWARD_SECRET, true);
    let vault = provider(&client_secret_config(&azure));

    let read = vault.read(&reference(&azure, "payroll-client-secret", None), Freshness::Cached).await.expect("read");
    assert_eq!(read.value.expose(), AWKWARD_SECRET);
    assert_eq!(read.version.as_deref(), Some(latest.as_str()));
    let pinned = vault.read(&reference(&azure, "payroll-client-secret", Some(&first)), Freshness::Cached).await.expect("pinned");
    assert_eq!(pinned.value.expose(), "old-value");
    assert_eq!(pinned.version.as_deref(), Some(first.as_str()));

    // First request unauthenticated, then with the token; the second read sends the cached token at once.
    let requests = azure.vault_requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    assert!(requests[0].authorization.is_none());
    assert!(requests[1].authorization.as_deref().is_some_and(|a| a.starts_with("Bearer emulated-")));
    assert_eq!(requests[2].authorization, requests[1].authorization);
    let tokens = azure.token_requests();
    assert_eq!(tokens.len(), 1, "one token for both reads");
    assert_eq!(tokens[0].tenant, azure.state.tenant, "the tenant came from the challenge");
    assert_eq!(tokens[0].form.get("scope").map(String::as_str), Some("https://127.0.0.1/.default"));
    assert_eq!(tokens[0].form.get("client_secret").map(String::as_str), Some(AWKWARD_SECRET), "the awkward secret arrived intact");
}

#[tokio::test]
async fn not_found_denied_and_disabled_are_distinct_errors() {
    let azure = AzureVaultEmulator::start().await;
    azure.set_secret("locked", AWKWARD_SECRET, true);
    azure.state.denied.lock().expect("denied").insert("locked".into());
    azure.set_secret("retired", "retired-value", false);
    let vault = provider(&client_secret_config(&azure));

    let missing = vault.read(&reference(&azure, "absent", None), Freshness::Cached).await.unwrap_err();
    assert!(matches!(missing, SecretError::NotFound { .. }), "{missing:?}");
    let denied = vault.read(&reference(&azure, "locked", None), Freshness::Cached).await.unwrap_err();
    assert!(matches!(&denied, SecretError::AccessDenied { reason, .. } if reason.contains("ForbiddenByRbac")), "{denied:?}");
    let disabled = vault.read(&reference(&azure, "retired", None), Freshness::Cached).await.unwrap_err();
    assert!(matches!(disabled, SecretError::Disabled { .. }), "{disabled:?}");
    azure.state.down.store(true, Ordering::SeqCst);
    let down = vault.read(&reference(&azure, "locked", None), Freshness::Cached).await.unwrap_err();
    assert!(matches!(down, SecretError::Unavailable { .. }), "{down:?}");
    for error in [&missing, &denied, &disabled, &down] {
        assert_redacted(error, &[AWKWARD_SECRET, "retired-value"]);
    }
    assert_no_secret(&format!("{vault:?}"), &[AWKWARD_SECRET]);
}

#[tokio::test]
async fn a_challenge_for_another_resource_is_refused_before_any_token_request() {
    let azure = AzureVaultEmulator::start().await;
    azure.set_secret("payroll-client-secret", AWKWARD_SECRET, true);
    *azure.state.resource.lock().expect("resource") = "https://management.example.com".into();
    let vault = provider(&client_secret_config(&azure));
    let error = vault.read(&reference(&azure, "payroll-client-secret", None), Freshness::Cached).await.unwrap_err();
    assert!(
        matches!(&error, SecretError::Invalid { reason, .. } if reason.contains("https://management.example.com") && reason.contains("no token was requested")),
        "{error:?}"
    );
    assert!(azure.token_requests().is_empty(), "a token was requested for a foreign resource");
    assert_eq!(azure.vault_requests().len(), 1);
    assert!(azure.vault_requests()[0].authorization.is_none());
}

#[tokio::test]
async fn a_wrong_host_credential_is_access_denied_and_never_echoed() {
    let azure = AzureVaultEmulator::start().await;
    azure.set_secret("payroll-client-secret", AWKWARD_SECRET, true);
    let mut config = client_secret_config(&azure);
    config.client_secret = Some(Secret::new("wrong-host-secret"));
    let error = provider(&config).read(&reference(&azure, "payroll-client-secret", None), Freshness::Cached).await.unwrap_err();
    assert!(matches!(&error, SecretError::AccessDenied { reason, .. } if reason.contains("invalid_client")), "{error:?}");
    assert_redacted(&error, &[AWKWARD_SECRET, "wrong-host-secret"]);
}

#[tokio::test]
async fn imds_gives_the_host_its_token_with_a_string_expiry() {
    let azure = AzureVaultEmulator::start().await;
    azure.set_secret("payroll-client-secret", AWKWARD_SECRET, true);
    let toml = format!("[secrets.azure-key-vault]\nmanaged-identity = true\nimds-endpoint = \"{}\"\n", azure.origin());
    let config = SecretsConfig::from_toml(&toml).expect("config").azure_key_vault.expect("section");
    let vault = provider(&config);
    let target = reference(&azure, "payroll-client-secret", None);
    assert_eq!(vault.read(&target, Freshness::Cached).await.expect("read").value.expose(), AWKWARD_SECRET);
    assert_eq!(vault.read(&target, Freshness::Cached).await.expect("again").value.expose(), AWKWARD_SECRET);
    let imds = azure.state.imds_requests.lock().expect("log").clone();
    assert_eq!(imds.len(), 1, "the IMDS token was cached: {imds:?}");
    assert_eq!(imds[0].get("resource").map(String::as_str), Some("https://127.0.0.1"));
    assert!(azure.token_requests().is_empty());
}

#[tokio::test]
async fn a_missing_section_names_what_to_add() {
    let azure = AzureVaultEmulator::start().await;
    let vault = AzureKeyVaultProvider::new(None, Arc::new(SystemClock));
    let error = vault.read(&reference(&azure, "x", None), Freshness::Cached).await.unwrap_err();
    assert!(matches!(&error, SecretError::NotConfigured { provider, reason } if provider == "azure-key-vault" && reason.contains("client-secret")), "{error:?}");
    assert!(azure.vault_requests().is_empty());
}

#[tokio::test]
async fn a_refused_cached_token_is_replaced_once() {
    let azure = AzureVaultEmulator::start().await;
    azure.set_secret("payroll-client-secret", AWKWARD_SECRET, true);
    let vault = provider(&client_secret_config(&azure));
    let target = reference(&azure, "payroll-client-secret", None);
    vault.read(&target, Freshness::Cached).await.expect("first read");
    azure.revoke_tokens();
    assert_eq!(vault.read(&target, Freshness::Cached).await.expect("read after revocation").value.expose(), AWKWARD_SECRET);
    assert_eq!(azure.token_requests().len(), 2, "exactly one new token");
    let requests = azure.vault_requests();
    assert_eq!(requests.len(), 4, "challenge, read, refused read, retried read: {requests:?}");
    assert_ne!(requests[3].authorization, requests[2].authorization, "the refused token was not sent again");
}

//! Refusals end to end, through `flowstudio identity check`: a Key Vault
//! challenge naming another resource, and secret stores (and a passport)
//! redirecting to another host. Each check fails at its step naming why,
//! and nothing — no host credential, no client secret — goes anywhere else.
//! (The provider tests cover each case at unit level; this is the whole path once.)

use flowstudio_tests::peers::*;
use flowstudio_tests::secrets::*;
use flowstudio_tests::{RecordingServer, Reply};
use serde_json::json;

/// A server that takes whatever is sent to it (it must receive nothing).
async fn elsewhere() -> RecordingServer {
    RecordingServer::start(|_, _| Reply::json(200, json!({"value": "stolen", "access_token": "stolen"}))).await
}

/// A server answering every request with `status` to `target`.
async fn redirecting_to(target: &RecordingServer, status: u16) -> RecordingServer {
    let location = target.url("/collect");
    RecordingServer::start(move |_, _| Reply { status, headers: vec![("location".into(), location.clone())], body: String::new() }).await
}

fn assert_untouched(target: &RecordingServer) {
    assert!(target.seen().is_empty(), "the redirect was followed: {:?}", target.seen());
}

#[tokio::test]
async fn a_key_vault_challenge_for_another_resource_is_refused_before_any_token_is_requested() {
    let azure = AzureVaultEmulator::start().await;
    azure.set_secret("payroll-client-secret", AWKWARD_SECRET, true);
    // A look-alike vault announcing someone else's resource: a token for it would be a token for them.
    *azure.state.resource.lock().expect("resource") = "https://vault.evil.example".into();
    let host = CheckHost::new("peers-challenge", &azure_section(&azure));
    host.register(Some(AWKWARD_SECRET));
    let reference = json!({"provider": "azure-key-vault", "vaultUri": azure.vault_uri(), "secretName": "payroll-client-secret"});

    let out = host.check(&reference).await;
    out.assert_fails_at("step 2 (client secret)", "asks for a token for `https://vault.evil.example`, which is not the vault's domain `127.0.0.1`");
    out.assert_no_leak(&[AWKWARD_SECRET]);
    assert!(azure.token_requests().is_empty(), "the host asked Entra for a token for the foreign resource");
    let requests = azure.vault_requests();
    assert_eq!(requests.len(), 1, "one unauthenticated probe, no retry with a token: {requests:?}");
    assert!(requests[0].authorization.is_none());
    assert_eq!(azure.state.reads.load(std::sync::atomic::Ordering::SeqCst), 0);

    // The same vault announcing its own resource again works: the refusal was about the resource only.
    *azure.state.resource.lock().expect("resource") = "https://127.0.0.1".into();
    assert_embedded_id_info(&host.check(&reference).await.id_info());
}

#[tokio::test]
async fn a_vault_redirect_keeps_the_hosts_vault_token_here() {
    let target = elsewhere().await;
    let store = redirecting_to(&target, 307).await;
    let host_token = "hvs.flowstudio-host-vault-token";
    let host = CheckHost::new("peers-redirect-vault", &format!("[secrets.hashicorp-vault]\naddresses = [\"{}\"]\ntoken = \"{host_token}\"\n", store.origin()));
    host.register(Some(AWKWARD_SECRET));
    let reference = json!({"provider": "hashicorp-vault", "address": store.origin(), "mount": "secret", "path": "payroll", "key": "client_secret"});

    let out = host.check(&reference).await;
    out.assert_fails_at("step 2 (client secret)", &format!("redirecting to `127.0.0.1:{}`; redirects are not followed", target.port));
    out.assert_no_leak(&[host_token, AWKWARD_SECRET]);
    assert_untouched(&target);
    let seen = store.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].header("x-vault-token"), Some(host_token), "the store itself was asked");
}

#[tokio::test]
async fn a_secrets_manager_redirect_keeps_the_signed_request_here() {
    let target = elsewhere().await;
    let store = redirecting_to(&target, 307).await;
    let secret_key = "wJalrXUtnFEMI/K7MDENG/flowstudio-test-key";
    let section = format!(
        "[secrets.aws-secrets-manager]\nendpoint = \"{}\"\naccess-key-id = \"AKIAFLOWSTUDIOTEST01\"\nsecret-access-key = \"{secret_key}\"\n",
        store.origin()
    );
    let host = CheckHost::new("peers-redirect-aws", &section);
    host.register(Some(AWKWARD_SECRET));
    let reference = json!({"provider": "aws-secrets-manager", "region": "eu-west-1", "secretId": "payroll/client-secret"});

    let out = host.check(&reference).await;
    out.assert_fails_at("step 2 (client secret)", &format!("redirecting to `127.0.0.1:{}`", target.port));
    out.assert_no_leak(&[secret_key, AWKWARD_SECRET]);
    assert_untouched(&target);
    assert!(store.seen()[0].header("authorization").is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256")), "the store got the signed request");
}

#[tokio::test]
async fn a_key_vault_redirect_after_the_challenge_keeps_the_bearer_token_here() {
    let entra = AzureVaultEmulator::start().await;
    let target = elsewhere().await;
    let location = target.url("/collect");
    let authorization = format!("{}/{}", entra.origin(), entra.state.tenant);
    let vault = RecordingServer::start(move |seen, _| match seen.header("authorization") {
        None => Reply {
            status: 401,
            headers: vec![("www-authenticate".into(), format!(r#"Bearer authorization="{authorization}", resource="https://127.0.0.1""#))],
            body: String::new(),
        },
        Some(_) => Reply { status: 302, headers: vec![("location".into(), location.clone())], body: String::new() },
    })
    .await;
    let host = CheckHost::new("peers-redirect-azure", &azure_section(&entra));
    host.register(Some(AWKWARD_SECRET));
    let reference = json!({"provider": "azure-key-vault", "vaultUri": vault.url("/"), "secretName": "payroll-client-secret"});

    let out = host.check(&reference).await;
    out.assert_fails_at("step 2 (client secret)", &format!("redirecting to `127.0.0.1:{}`", target.port));
    out.assert_no_leak(&[AWKWARD_SECRET]);
    assert_untouched(&target);
    assert_eq!(entra.token_requests().len(), 1, "the host's Entra token was for the vault's own resource");
    assert!(vault.seen()[1].header("authorization").is_some_and(|a| a.starts_with("Bearer emulated-")), "the vault itself got the token");
}

#[tokio::test]
async fn a_passport_redirect_keeps_the_client_secret_here() {
    let target = elsewhere().await;
    let passport = redirecting_to(&target, 307).await;
    let root = TempDir::new("peers-redirect-passport-secrets");
    std::fs::write(root.0.join("payroll-client-secret"), AWKWARD_SECRET).expect("secret file");
    let config = format!(
        "[secrets.file]\nroot = \"{}\"\n[passport.external]\nurl = \"{}\"\n",
        root.0.display(),
        passport.origin()
    );
    let host = CheckHost::new("peers-redirect-passport", &config);
    host.register(None);

    let out = host.check(&json!({"provider": "file", "path": "payroll-client-secret"})).await;
    out.assert_fails_at("steps 3-4 (token, IDInfo)", "redirect (redirects are not followed)");
    out.assert_no_leak(&[AWKWARD_SECRET]);
    assert_untouched(&target);
    let seen = passport.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].header("authorization").is_some_and(|a| a.starts_with("Basic ")), "the passport itself got the credentials");
}

//! The development providers (`env`, `file`), the store's dispatch from a
//! config file, and a scan that no error or store description shows a secret.

use flowstudio_host::clock::{Clock, SystemClock};
use flowstudio_host::secrets::*;
use flowstudio_tests::secrets::*;
use std::sync::Arc;

fn clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

#[tokio::test]
async fn env_reads_only_allowed_variables() {
    let env = EnvProvider::with_lookup(&EnvConfig { allow: vec!["PAYROLL_*".into(), "EXACT_NAME".into()] }, |name| match name {
        "PAYROLL_CLIENT_SECRET" | "EXACT_NAME" | "HOST_KEY" => Some(AWKWARD_SECRET.to_string()),
        _ => None,
    });
    let read = |name: &str| {
        let reference = SecretReference::Env { name: name.into() };
        let env = &env;
        async move { env.read(&reference, Freshness::Cached).await }
    };
    let found = read("PAYROLL_CLIENT_SECRET").await.expect("allowed by prefix");
    assert_eq!(found.value.expose(), AWKWARD_SECRET);
    assert!(found.version.is_some());
    read("EXACT_NAME").await.expect("allowed by name");
    let denied = read("HOST_KEY").await.unwrap_err();
    assert!(matches!(&denied, SecretError::AccessDenied { reason, .. } if reason.contains("[secrets.env]")), "{denied:?}");
    let missing = read("PAYROLL_OTHER").await.unwrap_err();
    assert!(matches!(missing, SecretError::NotFound { .. }), "{missing:?}");
    assert_redacted(&denied, &[AWKWARD_SECRET]);
}

#[tokio::test]
async fn file_reads_content_or_a_key_inside_its_root_and_versions_follow_rotation() {
    let root = TempDir::new("secrets-file");
    let outside = TempDir::new("secrets-outside");
    std::fs::write(root.0.join("client-secret"), format!("{AWKWARD_SECRET}\n")).expect("write");
    std::fs::write(root.0.join("app.json"), format!(r#"{{"client_secret": "{AWKWARD_SECRET}"}}"#)).expect("write");
    std::fs::write(outside.0.join("host-key"), "outside-value").expect("write");
    std::os::unix::fs::symlink(outside.0.join("host-key"), root.0.join("link")).expect("symlink");
    let files = FileProvider::new(&FileConfig { root: root.0.clone() });
    let file = |path: &str, key: Option<&str>| SecretReference::File { path: path.into(), key: key.map(str::to_string) };

    let whole = files.read(&file("client-secret", None), Freshness::Cached).await.expect("whole file");
    assert_eq!(whole.value.expose(), AWKWARD_SECRET, "the trailing newline is trimmed");
    let keyed = files.read(&file("app.json", Some("client_secret")), Freshness::Cached).await.expect("key");
    assert_eq!(keyed.value.expose(), AWKWARD_SECRET);
    let missing_key = files.read(&file("app.json", Some("password")), Freshness::Cached).await.unwrap_err();
    assert!(matches!(&missing_key, SecretError::NotFound { reference } if reference.contains("#password")), "{missing_key:?}");

    let absolute = outside.0.join("host-key").display().to_string();
    let dotdot = format!("../{}/host-key", outside.0.file_name().expect("name").to_string_lossy());
    for escape in [dotdot.as_str(), "link", absolute.as_str()] {
        let error = files.read(&file(escape, None), Freshness::Cached).await.unwrap_err();
        assert!(matches!(&error, SecretError::AccessDenied { reason, .. } if reason.contains("outside")), "{escape}: {error:?}");
        assert_redacted(&error, &["outside-value"]);
    }
    let missing = files.read(&file("nope", None), Freshness::Cached).await.unwrap_err();
    assert!(matches!(missing, SecretError::NotFound { .. }), "{missing:?}");

    std::fs::write(root.0.join("client-secret"), "rotated\n").expect("rotate");
    let rotated = files.read(&file("client-secret", None), Freshness::Cached).await.expect("rotated");
    assert_ne!(rotated.version, whole.version, "a rewrite is a new version");
    assert_eq!(files.read(&file("client-secret", None), Freshness::Cached).await.expect("again").version, rotated.version);
}

#[tokio::test]
async fn the_store_dispatches_by_kind_and_names_what_is_not_configured() {
    let root = TempDir::new("secrets-store");
    std::fs::write(root.0.join("s"), AWKWARD_SECRET).expect("write");
    let toml = format!("[secrets.file]\nroot = \"{}\"\n", root.0.display());
    let config = SecretsConfig::from_toml(&toml).expect("config");
    let store = flowstudio_host::secrets::from_config(&config, clock());
    let read = store.read(&SecretReference::File { path: "s".into(), key: None }, Freshness::Cached).await.expect("file via store");
    assert_eq!(read.value.expose(), AWKWARD_SECRET);

    let env = store.read(&SecretReference::Env { name: "HOME".into() }, Freshness::Cached).await.unwrap_err();
    assert!(matches!(&env, SecretError::NotConfigured { provider, reason } if provider == "env" && reason.contains("[secrets.env]")), "{env:?}");
    let azure = SecretReference::AzureKeyVault { vault_uri: "https://v.vault.azure.net/".into(), secret_name: "s".into(), version: None };
    let error = store.read(&azure, Freshness::Cached).await.unwrap_err();
    assert!(matches!(&error, SecretError::NotConfigured { provider, .. } if provider == "azure-key-vault"), "{error:?}");
    let vault = SecretReference::HashicorpVault { address: "https://vault.internal:8200".into(), mount: "secret".into(), path: "p".into(), key: "k".into(), namespace: None };
    let error = store.read(&vault, Freshness::Cached).await.unwrap_err();
    assert!(matches!(&error, SecretError::NotConfigured { provider, .. } if provider == "hashicorp-vault"), "{error:?}");
    assert_eq!(store.inner().kinds(), ["aws-secrets-manager", "azure-key-vault", "file", "hashicorp-vault"]);
}

/// Every credential of a full config, every error each provider gives here:
/// none of them shows a secret value in `Debug` or `Display`.
#[tokio::test]
async fn no_error_or_store_description_shows_a_secret() {
    let root = TempDir::new("secrets-scan");
    std::fs::write(root.0.join("app.json"), format!(r#"{{"other": "{AWKWARD_SECRET}"}}"#)).expect("write");
    std::fs::write(root.0.join("plain"), AWKWARD_SECRET).expect("write");
    let host_secrets = ["azure-host-secret", "aws-host-key", "aws-host-session", "vault-host-token"];
    let toml = format!(
        r#"
        [secrets.azure-key-vault]
        tenant-id = "t"
        client-id = "c"
        client-secret = "{}"
        authority = "http://127.0.0.1:9"
        timeout-seconds = 1
        [secrets.aws-secrets-manager]
        access-key-id = "AKIAEXAMPLE"
        secret-access-key = "{}"
        session-token = "{}"
        endpoint = "http://127.0.0.1:9"
        timeout-seconds = 1
        [secrets.hashicorp-vault]
        addresses = ["http://127.0.0.1:9"]
        token = "{}"
        timeout-seconds = 1
        [secrets.env]
        allow = ["FLOWSTUDIO_SCAN_*"]
        [secrets.file]
        root = "{}"
        "#,
        host_secrets[0],
        host_secrets[1],
        host_secrets[2],
        host_secrets[3],
        root.0.display()
    );
    let config = SecretsConfig::from_toml(&toml).expect("config");
    let store = flowstudio_host::secrets::from_config(&config, clock());
    let mut all = host_secrets.to_vec();
    all.push(AWKWARD_SECRET);
    assert_no_secret(&format!("{config:?}"), &all);
    assert_no_secret(&format!("{store:?}"), &all);

    let references = [
        SecretReference::AzureKeyVault { vault_uri: "http://127.0.0.1:9/".into(), secret_name: "s".into(), version: None },
        SecretReference::AwsSecretsManager { region: "eu-west-1".into(), secret_id: "s".into(), version_stage: None, json_key: None },
        SecretReference::HashicorpVault { address: "http://127.0.0.1:9".into(), mount: "secret".into(), path: "p".into(), key: "k".into(), namespace: None },
        SecretReference::Env { name: "FLOWSTUDIO_SCAN_NONE".into() },
        SecretReference::File { path: "app.json".into(), key: Some("client_secret".into()) },
        SecretReference::File { path: "plain".into(), key: Some("client_secret".into()) },
    ];
    for reference in &references {
        let error = store.read(reference, Freshness::Bypass).await.expect_err("nothing is listening on port 9");
        assert_redacted(&error, &all);
    }
    // With a cached value in place, the description still shows none.
    store.read(&SecretReference::File { path: "plain".into(), key: None }, Freshness::Cached).await.expect("read");
    assert_no_secret(&format!("{store:?}"), &all);
}

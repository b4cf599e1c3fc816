//! `flowstudio identity check` through the built binary with a `--config`
//! file, once per secret store — AWS Secrets Manager on moto (SigV4 and IAM
//! enforced), HashiCorp Vault on OpenBao (token auth and AppRole), Azure Key
//! Vault on our emulator (challenge flow, the host's Entra credential) and the
//! `file` store — each minting at the independent issuer (PassportMock via
//! `[passport.external]`) and at the embedded passport.
//!
//! A passing check prints the IDInfo; a wrong secret, a missing one, a store
//! that denies and a disabled identity each exit 1 naming the failing step.
//! No output ever holds the client secret, the host's store credential or a token.

use flowstudio_tests::peers::*;
use flowstudio_tests::secrets::*;
use flowstudio_tests::tokens::PassportMock;
use serde_json::{json, Value};

/// One store, set up, and how to reach it.
struct Store {
    label: &'static str,
    /// `[secrets.*]` with a host credential allowed to read the client secret.
    section: String,
    /// `[secrets.*]` with a host credential the store refuses (or a reference it refuses).
    denied_section: String,
    /// Where the client secret (`AWKWARD_SECRET`) is.
    reference: Value,
    /// What the denied host reads.
    denied_reference: Value,
    /// A secret in the store that is not the identity's.
    wrong_reference: Value,
    /// Nothing there.
    missing_reference: Value,
    /// The host's own store credentials: never printed either.
    credentials: Vec<String>,
    /// What the store's denial says.
    denial: &'static str,
}

enum Passport {
    Embedded,
    External(PassportMock),
}

impl Passport {
    fn section(&self) -> String {
        match self {
            Passport::Embedded => String::new(),
            Passport::External(mock) => external_passport(mock),
        }
    }

    /// A data dir with `secrets` and this passport, the identity registered for it.
    fn host(&self, label: &str, secrets: &str) -> CheckHost {
        let host = CheckHost::new(label, &format!("{secrets}\n{}", self.section()));
        match self {
            // The embedded passport checks the secret against its own (hashed) copy.
            Passport::Embedded => host.register(Some(AWKWARD_SECRET)),
            Passport::External(_) => host.register(None),
        }
        host
    }
}

/// Everything the issue asks of one store, at one passport.
async fn exercise_at(store: &Store, passport: &Passport) {
    let mut forbidden: Vec<&str> = vec![AWKWARD_SECRET];
    forbidden.extend(store.credentials.iter().map(String::as_str));
    let host = passport.host(store.label, &store.section);

    let out = host.check(&store.reference).await;
    match passport {
        Passport::Embedded => assert_embedded_id_info(&out.id_info()),
        Passport::External(mock) => {
            assert_external_id_info(&out.id_info());
            let stats = mock.stats().await;
            assert_eq!((stats["accepted"].as_u64(), stats["refused"].as_u64()), (Some(1), Some(0)), "{stats}");
            assert_eq!(stats["methods"], json!(["basic"]), "client_secret_basic by default");
        }
    }
    out.assert_no_leak(&forbidden);

    // The store holds a secret, but not this identity's: the passport refuses it,
    // also after one re-read past the cache (it might have been rotated).
    let out = host.check(&store.wrong_reference).await;
    out.assert_fails_at("step 3 (token)", "was refused by the passport: invalid_client");
    out.assert_no_leak(&forbidden);
    if let Passport::External(mock) = passport {
        assert_eq!(mock.stats().await["refused"].as_u64(), Some(1), "one token request: the re-read found the same secret");
    }

    let out = host.check(&store.missing_reference).await;
    out.assert_fails_at("step 2 (client secret)", "was not found");
    out.assert_no_leak(&forbidden);

    let denied = passport.host(store.label, &store.denied_section);
    let out = denied.check(&store.denied_reference).await;
    out.assert_fails_at("step 2 (client secret)", store.denial);
    out.assert_no_leak(&forbidden);

    host.disable();
    let out = host.check(&store.reference).await;
    out.assert_fails_at("step 1 (managed identity)", &format!("managed identity `{IDENTITY}` is disabled"));
    out.assert_no_leak(&forbidden);
    host.enable();
    host.check(&store.reference).await.id_info();

    if let Passport::External(mock) = passport {
        let stats = mock.stats().await;
        assert_eq!(stats["accepted"].as_u64(), Some(2), "no token was asked for when a step before the passport failed: {stats}");
    }
}

async fn exercise(store: Store) {
    exercise_at(&store, &Passport::Embedded).await;
    exercise_at(&store, &Passport::External(PassportMock::start(AWKWARD_SECRET, 3600))).await;
}

#[tokio::test]
async fn aws_secrets_manager_on_moto() {
    let moto = Moto::start().await;
    let reference = |secret_id: &str, json_key: Option<&str>| {
        let mut r = json!({"provider": "aws-secrets-manager", "region": MOTO_REGION, "secretId": secret_id});
        if let Some(key) = json_key {
            r["jsonKey"] = key.into();
        }
        r
    };
    exercise(Store {
        label: "peers-aws",
        section: aws_section(&moto, &moto.reader),
        denied_section: aws_section(&moto, &moto.nobody),
        reference: reference(MOTO_PLAIN_SECRET, None),
        denied_reference: reference(MOTO_PLAIN_SECRET, None),
        // `{"client_id": "payroll", ...}`: the client id is not the secret.
        wrong_reference: reference(MOTO_JSON_SECRET, Some("client_id")),
        missing_reference: reference("payroll/no-such-secret", None),
        credentials: vec![moto.reader.secret_access_key.clone(), moto.nobody.secret_access_key.clone()],
        denial: "was denied: AccessDenied",
    })
    .await;
}

/// OpenBao with the client secret at `secret/flowstudio/payroll` and a policy that may read it.
async fn bao_with_secret() -> OpenBao {
    let bao = OpenBao::start().await;
    bao.put_secret(None, "flowstudio/payroll", json!({"client_secret": AWKWARD_SECRET, "client_id": "payroll"})).await;
    bao.put_secret(None, "other/app", json!({"client_secret": "not-yours"})).await;
    bao.put_policy("read-payroll", r#"path "secret/data/flowstudio/*" { capabilities = ["read"] }"#).await;
    bao.put_policy("read-other", r#"path "secret/data/other/*" { capabilities = ["read"] }"#).await;
    bao
}

fn bao_reference(bao: &OpenBao, path: &str, key: &str) -> Value {
    json!({"provider": "hashicorp-vault", "address": bao.address(), "mount": "secret", "path": path, "key": key})
}

#[tokio::test]
async fn hashicorp_vault_on_openbao_with_token_auth() {
    let bao = bao_with_secret().await;
    let reader = bao.token_with(&["read-payroll"]).await;
    let other = bao.token_with(&["read-other"]).await;
    exercise(Store {
        label: "peers-bao-token",
        section: vault_token_section(&bao, &reader),
        denied_section: vault_token_section(&bao, &other),
        reference: bao_reference(&bao, "flowstudio/payroll", "client_secret"),
        denied_reference: bao_reference(&bao, "flowstudio/payroll", "client_secret"),
        wrong_reference: bao_reference(&bao, "flowstudio/payroll", "client_id"),
        missing_reference: bao_reference(&bao, "flowstudio/no-such-secret", "client_secret"),
        credentials: vec![reader, other, BAO_ROOT_TOKEN.to_string()],
        denial: "was denied: vault answered 403",
    })
    .await;
}

#[tokio::test]
async fn hashicorp_vault_on_openbao_with_approle() {
    let bao = bao_with_secret().await;
    let (role_id, secret_id) = bao.approle("payroll-host", &["read-payroll"], "1h").await;
    // The denied host presents a secret id OpenBao never issued for the role.
    exercise(Store {
        label: "peers-bao-approle",
        section: vault_approle_section(&bao, &role_id, &secret_id),
        denied_section: vault_approle_section(&bao, &role_id, "not-the-secret-id"),
        reference: bao_reference(&bao, "flowstudio/payroll", "client_secret"),
        denied_reference: bao_reference(&bao, "flowstudio/payroll", "client_secret"),
        wrong_reference: bao_reference(&bao, "flowstudio/payroll", "client_id"),
        missing_reference: bao_reference(&bao, "flowstudio/no-such-secret", "client_secret"),
        credentials: vec![secret_id, BAO_ROOT_TOKEN.to_string()],
        denial: "was denied: AppRole login failed",
    })
    .await;
}

#[tokio::test]
async fn azure_key_vault_on_the_emulator() {
    let azure = AzureVaultEmulator::start().await;
    azure.set_secret("payroll-client-secret", AWKWARD_SECRET, true);
    azure.set_secret("locked-client-secret", AWKWARD_SECRET, true);
    azure.set_secret("someone-elses-secret", "not-yours", true);
    azure.state.denied.lock().expect("denied").insert("locked-client-secret".into());
    let reference = |name: &str| json!({"provider": "azure-key-vault", "vaultUri": azure.vault_uri(), "secretName": name});
    exercise(Store {
        label: "peers-azure",
        section: azure_section(&azure),
        denied_section: azure_section(&azure),
        reference: reference("payroll-client-secret"),
        // The host's identity has no RBAC role on this secret.
        denied_reference: reference("locked-client-secret"),
        wrong_reference: reference("someone-elses-secret"),
        missing_reference: reference("no-such-secret"),
        credentials: vec![azure.state.client_secret.clone()],
        denial: "was denied: Forbidden (ForbiddenByRbac)",
    })
    .await;
    // Every read went through the challenge flow with the host's own Entra token.
    let tokens = azure.token_requests();
    assert!(!tokens.is_empty());
    for request in &tokens {
        assert_eq!(request.tenant, azure.state.tenant, "the tenant came from the vault's challenge");
        assert_eq!(request.form.get("client_id"), Some(&azure.state.client_id));
        assert_eq!(request.form.get("scope").map(String::as_str), Some("https://127.0.0.1/.default"));
    }
}

#[tokio::test]
async fn the_file_store() {
    let root = TempDir::new("peers-file-root");
    std::fs::write(root.0.join("payroll-client-secret"), format!("{AWKWARD_SECRET}\n")).expect("secret file");
    std::fs::write(root.0.join("someone-elses-secret"), "not-yours\n").expect("secret file");
    let outside = TempDir::new("peers-file-outside");
    std::fs::write(outside.0.join("payroll-client-secret"), AWKWARD_SECRET).expect("secret file");
    // A link inside the root that leads out of it.
    std::os::unix::fs::symlink(outside.0.join("payroll-client-secret"), root.0.join("linked-client-secret")).expect("symlink");
    let section = format!("[secrets.file]\nroot = \"{}\"\n", root.0.display());
    let reference = |path: &str| json!({"provider": "file", "path": path});
    exercise(Store {
        label: "peers-file",
        section: section.clone(),
        denied_section: section,
        reference: reference("payroll-client-secret"),
        // The link resolves outside the root: refused, though the file exists and is readable.
        denied_reference: reference("linked-client-secret"),
        wrong_reference: reference("someone-elses-secret"),
        missing_reference: reference("no-such-secret"),
        credentials: vec![],
        denial: "was denied: the file is outside [secrets.file] root",
    })
    .await;
}

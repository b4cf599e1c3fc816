//! Helpers for the end-to-end identity tests against every real peer:
//! `flowstudio identity check` through the built binary on a data dir with a
//! config file, the config sections that point the host at each peer, a
//! payroll host (the assembled `App`) whose destination can revoke tokens,
//! and OpenBao's own use count of a token to count what reached the store.

use crate::secrets::{Moto, OpenBao, TempDir};
use crate::tokens::{PassportMock, CLIENT_ID};
use crate::{node_path, RecordingServer, Reply};
use flowstudio_host::app::App;
use flowstudio_host::clock::SystemClock;
use flowstudio_host::config::Config;
use flowstudio_host::identity::{IdentityRegistry, NewManagedIdentity};
use flowstudio_host::scheduler::{EngineEvent, Scheduler, SchedulerConfig};
use flowstudio_host::schedule::ScheduleSpec;
use flowstudio_host::secret::Secret;
use flowstudio_host::state::ExecutionStatus;
use flowstudio_host::workflow::Workflow;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The managed identity every test here checks or runs as.
pub const IDENTITY: &str = "mi-payroll";

/// Cheap hashing for the embedded passport's copy of the secret (see `identities`).
const HASH_ITERATIONS: u32 = crate::identities::TEST_HASH_ITERATIONS;

/// The built `flowstudio` binary.
pub fn flowstudio_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("debug/flowstudio");
    assert!(bin.exists(), "{} is missing: `cargo build --bin flowstudio` first", bin.display());
    bin
}

// ---------------------------------------------------------------- config sections

/// `[passport.external]` pointing at the independent issuer.
pub fn external_passport(mock: &PassportMock) -> String {
    format!("[passport.external]\nurl = \"{}\"\nissuer = \"{}\"\naudience-parameter = \"aud\"\n", mock.url(), mock.issuer)
}

/// `[secrets.aws-secrets-manager]` on moto with `keys`.
pub fn aws_section(moto: &Moto, keys: &crate::secrets::AwsKeys) -> String {
    format!(
        "[secrets.aws-secrets-manager]\nendpoint = \"{}\"\naccess-key-id = \"{}\"\nsecret-access-key = \"{}\"\n",
        moto.endpoint(),
        keys.access_key_id,
        keys.secret_access_key
    )
}

/// `[secrets.hashicorp-vault]` on OpenBao with a token.
pub fn vault_token_section(bao: &OpenBao, token: &str) -> String {
    format!("[secrets.hashicorp-vault]\naddresses = [\"{}\"]\ntoken = \"{token}\"\n", bao.address())
}

/// `[secrets.hashicorp-vault]` on OpenBao with an AppRole.
pub fn vault_approle_section(bao: &OpenBao, role_id: &str, secret_id: &str) -> String {
    format!("[secrets.hashicorp-vault]\naddresses = [\"{}\"]\nrole-id = \"{role_id}\"\nsecret-id = \"{secret_id}\"\n", bao.address())
}

/// `[secrets.azure-key-vault]` with Entra client credentials at the emulator's authority.
pub fn azure_section(azure: &crate::secrets::AzureVaultEmulator) -> String {
    format!(
        "[secrets.azure-key-vault]\nclient-id = \"{}\"\nclient-secret = \"{}\"\nauthority = \"{}\"\n",
        azure.state.client_id,
        azure.state.client_secret,
        azure.origin()
    )
}

// ---------------------------------------------------------------- identity check through the binary

/// A data dir with a `flowstudio.toml`, for running `flowstudio identity check`.
pub struct CheckHost {
    pub dir: TempDir,
    pub config: PathBuf,
}

/// What one run of the binary printed.
#[derive(Debug)]
pub struct Checked {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Checked {
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// The IDInfo JSON of a passing check.
    pub fn id_info(&self) -> Value {
        assert_eq!(self.code, Some(0), "the check failed: {}", self.text());
        serde_json::from_str(&self.stdout).expect("IDInfo JSON on stdout")
    }

    /// Exit 1, nothing on stdout, and stderr naming `step` and containing `why`.
    pub fn assert_fails_at(&self, step: &str, why: &str) {
        assert_eq!(self.code, Some(1), "{}", self.text());
        assert!(self.stdout.is_empty(), "a failed check printed: {}", self.stdout);
        let expected = format!("failed at {step}");
        assert!(self.stderr.contains(&expected), "`{expected}` is not named in: {}", self.stderr);
        assert!(self.stderr.contains(why), "`{why}` is not in: {}", self.stderr);
    }

    /// Neither stdout nor stderr contains any of `secrets`, a JWT or an emulated Entra token.
    pub fn assert_no_leak(&self, secrets: &[&str]) {
        let text = self.text();
        crate::secrets::assert_no_secret(&text, secrets);
        assert!(!text.contains("eyJ"), "a JWT was printed: {text}");
        assert!(!text.contains("emulated-"), "an Entra token was printed: {text}");
    }
}

impl CheckHost {
    /// A fresh data dir whose config file is `config`.
    pub fn new(label: &str, config: &str) -> CheckHost {
        let dir = TempDir::new(label);
        Config::parse(config).unwrap_or_else(|e| panic!("test config is invalid: {e:?}\n{config}"));
        let path = dir.0.join("flowstudio.toml");
        std::fs::write(&path, config).expect("config file");
        CheckHost { dir, config: path }
    }

    fn registry(&self) -> IdentityRegistry {
        IdentityRegistry::open(&flowstudio_host::db::path_in(&self.dir.0)).expect("registry").with_hash_iterations(HASH_ITERATIONS)
    }

    /// Register `IDENTITY` as client `CLIENT_ID`; `secret` is what the embedded passport accepts.
    pub fn register(&self, secret: Option<&str>) {
        let registry = self.registry();
        let new = NewManagedIdentity {
            id: IDENTITY.into(),
            name: "Payroll scheduler".into(),
            client_id: CLIENT_ID.into(),
            tenant_id: "contoso".into(),
            roles: vec!["workflow-runner".into()],
            enabled: true,
        };
        match secret {
            Some(secret) => registry.create_with_client_secret(new, &Secret::new(secret)).expect("identity"),
            None => registry.create(new).expect("identity"),
        };
    }

    pub fn disable(&self) {
        self.registry().disable(IDENTITY).expect("disabled");
    }

    pub fn enable(&self) {
        self.registry().enable(IDENTITY).expect("enabled");
    }

    /// `flowstudio --config … --data-dir … identity check IDENTITY --secret-reference REFERENCE`.
    pub async fn check(&self, reference: &Value) -> Checked {
        self.check_logging(reference, "warn").await
    }

    /// [`CheckHost::check`] with `FLOWSTUDIO_LOG` set to `log_filter` (`trace`: everything, to stderr).
    pub async fn check_logging(&self, reference: &Value, log_filter: &str) -> Checked {
        let out = tokio::process::Command::new(flowstudio_binary())
            .arg("--config")
            .arg(&self.config)
            .arg("--data-dir")
            .arg(&self.dir.0)
            .args(["identity", "check", IDENTITY, "--secret-reference", &reference.to_string()])
            .env("FLOWSTUDIO_LOG", log_filter)
            .output()
            .await
            .expect("run flowstudio");
        Checked {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Assert the IDInfo of a check against the embedded passport (claims from the registry).
pub fn assert_embedded_id_info(info: &Value) {
    assert_eq!(info["clientId"], CLIENT_ID);
    assert_eq!(info["userId"], CLIENT_ID);
    assert_eq!(info["tenantId"], "contoso");
    assert_eq!(info["managedIdentityId"], IDENTITY);
    assert_eq!(info["isServiceAccount"], true);
    assert_eq!(info["roles"], json!(["workflow-runner"]));
    assert!(info["tokenExpiresAt"].as_u64().is_some_and(|exp| exp > crate::tokens::unix_now()), "{info}");
}

/// Assert the IDInfo of a check against the PassportMock (claims from its token).
pub fn assert_external_id_info(info: &Value) {
    assert_eq!(info["clientId"], CLIENT_ID);
    assert_eq!(info["userId"], CLIENT_ID);
    assert_eq!(info["tenantId"], "tenant-1", "the tenant is the independent issuer's `tid`");
    assert_eq!(info["displayName"], "Payroll Scheduler");
    assert_eq!(info["managedIdentityId"], IDENTITY);
    assert_eq!(info["isServiceAccount"], true);
    assert!(info["tokenExpiresAt"].as_u64().is_some_and(|exp| exp > crate::tokens::unix_now()), "{info}");
}

// ---------------------------------------------------------------- OpenBao counting the host's reads

/// A token with `policies` that OpenBao lets make `uses` requests; each
/// request the host makes with it is counted down by OpenBao itself.
pub async fn counted_token(bao: &OpenBao, policies: &[&str], uses: u64) -> String {
    let body = json!({ "policies": policies, "no_default_policy": true, "num_uses": uses });
    let answer = bao.root(reqwest::Method::POST, "auth/token/create", None, Some(body)).await;
    answer["auth"]["client_token"].as_str().expect("token").to_string()
}

/// How many more requests OpenBao allows `token` (looked up with the root token, which costs it none).
pub async fn uses_left(bao: &OpenBao, token: &str) -> u64 {
    let answer = bao.root(reqwest::Method::POST, "auth/token/lookup", None, Some(json!({ "token": token }))).await;
    answer["data"]["num_uses"].as_u64().expect("num_uses")
}

// ---------------------------------------------------------------- a payroll host on the assembled App

/// A destination that records every call and answers 401 `invalid_token` to revoked tokens.
pub struct Destination {
    pub server: RecordingServer,
    revoked: Arc<Mutex<HashSet<String>>>,
}

impl Destination {
    pub async fn start() -> Destination {
        let revoked: Arc<Mutex<HashSet<String>>> = Arc::default();
        let refuse = revoked.clone();
        let server = RecordingServer::start(move |seen, _| {
            let token = seen.header("authorization").and_then(|a| a.strip_prefix("Bearer ")).unwrap_or_default();
            if refuse.lock().expect("revoked").contains(token) {
                let mut reply = Reply::json(401, json!({"error": "invalid_token"}));
                reply.headers.push(("www-authenticate".into(), r#"Bearer error="invalid_token", error_description="the token was revoked""#.into()));
                return reply;
            }
            Reply::json(200, json!({"employees": 3}))
        })
        .await;
        Destination { server, revoked }
    }

    /// Answer 401 to `token` from now on (as after the credential behind it was rotated).
    pub fn revoke(&self, token: &str) {
        self.revoked.lock().expect("revoked").insert(token.to_string());
    }

    /// The bearer tokens of every call so far, in order.
    pub fn tokens(&self) -> Vec<String> {
        self.server
            .seen()
            .iter()
            .map(|s| s.header("authorization").and_then(|a| a.strip_prefix("Bearer ")).expect("every call carries a bearer token").to_string())
            .collect()
    }
}

/// The assembled host with `config`, `IDENTITY` registered, and a one-node
/// workflow whose `http-get` node calls the destination with the identity's token.
pub struct PayrollHost {
    pub dir: TempDir,
    pub app: App,
    pub destination: Destination,
    pub scheduler: Option<Scheduler>,
    schedule_id: String,
}

/// Outcome of one triggered run.
#[derive(Debug, Clone)]
pub struct Run {
    pub execution_id: String,
    pub status: ExecutionStatus,
    pub error: Option<String>,
}

impl PayrollHost {
    /// `config` gets `[egress] allow-loopback-plain-http-tokens` added (the destination is local http).
    pub async fn start(config: &str, reference: Value) -> PayrollHost {
        let dir = TempDir::new("peers-host");
        let config = Config::parse(&format!("{config}\n[egress]\nallow-loopback-plain-http-tokens = true\n")).expect("config");
        let app = App::open(config, &dir.0, Arc::new(SystemClock)).await.expect("host");
        let new = NewManagedIdentity {
            id: IDENTITY.into(),
            name: "Payroll scheduler".into(),
            client_id: CLIENT_ID.into(),
            tenant_id: "contoso".into(),
            roles: vec!["workflow-runner".into()],
            enabled: true,
        };
        app.identities.create(new).expect("identity");
        let destination = Destination::start().await;
        let digest = app.executor.components().put_file(&node_path("http-get")).expect("component");
        let workflow = Workflow::from_json(&json!({
            "id": "wf-monthly-payroll",
            "nodes": [{ "id": "fetch", "component": digest, "grants": [format!("{}=managed-identity", destination.server.origin())] }],
        }))
        .expect("workflow");
        app.store.put_workflow(&workflow, chrono::Utc::now()).await.expect("workflow stored");
        let scheduler = app.start_scheduler(SchedulerConfig::default()).await.expect("scheduler");
        let spec = ScheduleSpec::from_json(&json!({
            "workflowId": "wf-monthly-payroll",
            "name": "Monthly Payroll Run",
            "cronExpression": "0 6 25 * *",
            "timezone": "UTC",
            "managedIdentityId": IDENTITY,
            "secretReference": reference,
            "inputData": { "url": destination.server.url("/employees") },
            "retryPolicy": { "maxAttempts": 3, "backoffSeconds": 1 }
        }))
        .expect("schedule");
        let schedule = scheduler.create_schedule(spec).await.expect("schedule created");
        PayrollHost { dir, app, destination, scheduler: Some(scheduler), schedule_id: schedule.id }
    }

    fn scheduler(&self) -> &Scheduler {
        self.scheduler.as_ref().expect("scheduler running")
    }

    /// Trigger the schedule now and wait for that execution to finish.
    pub async fn run(&self) -> Run {
        let mut events = self.scheduler().events();
        let execution = self.scheduler().trigger_now(&self.schedule_id, "tester").await.expect("triggered");
        let (status, error) = crate::scheduler::wait_for(&mut events, |e| match e {
            EngineEvent::Finished { execution_id, status, error } if *execution_id == execution.id => Some((*status, error.clone())),
            _ => None,
        })
        .await;
        Run { execution_id: execution.id, status, error }
    }

    /// Stop the scheduler and write every audit event out.
    pub async fn stop(&mut self) {
        if let Some(scheduler) = self.scheduler.take() {
            scheduler.shutdown(std::time::Duration::from_secs(5)).await.expect("shutdown");
        }
        self.flush_audit().await;
    }

    pub async fn flush_audit(&self) {
        let audit = self.app.audit.clone();
        tokio::task::spawn_blocking(move || audit.flush()).await.expect("join").expect("audit flushed");
    }

    /// Every audit record, as stored.
    pub fn audit_records(&self) -> Vec<flowstudio_host::audit::AuditRecord> {
        let store = flowstudio_host::audit::AuditStore::open(&flowstudio_host::db::path_in(&self.dir.0)).expect("audit store");
        store.query(&flowstudio_host::audit::AuditFilter::default()).expect("query")
    }

    /// The state database files as text (what a leak would look like on disk).
    pub fn database_text(&self) -> String {
        ["state.db", "state.db-wal"]
            .iter()
            .map(|f| String::from_utf8_lossy(&std::fs::read(self.dir.0.join(f)).unwrap_or_default()).into_owned())
            .collect()
    }
}

// ---------------------------------------------------------------- OpenBao + independent passport + payroll host

/// Where the client secret lives in OpenBao.
pub const SECRET_PATH: &str = "flowstudio/payroll";

/// The payroll host reading its client secret from OpenBao (with a use-counted
/// token) and minting at the PassportMock, which accepts `secret`.
pub struct VaultRig {
    pub bao: OpenBao,
    /// The host's Vault token.
    pub reader: String,
    pub mock: PassportMock,
    pub host: PayrollHost,
}

impl VaultRig {
    const USES: u64 = 1_000;

    pub async fn start(secret: &str) -> VaultRig {
        let bao = OpenBao::start().await;
        bao.put_secret(None, SECRET_PATH, json!({ "client_secret": secret })).await;
        bao.put_policy("read-payroll", r#"path "secret/data/flowstudio/*" { capabilities = ["read"] }"#).await;
        let reader = counted_token(&bao, &["read-payroll"], Self::USES).await;
        let mock = PassportMock::start(secret, 3600);
        // The mock's own role claim is not in the host's role map; this one is.
        mock.set(json!({ "claims": { "roles": ["workflow-runner"] } })).await;
        let config = format!("{}{}", external_passport(&mock), vault_token_section(&bao, &reader));
        let host = PayrollHost::start(&config, Self::reference_in(&bao)).await;
        VaultRig { bao, reader, mock, host }
    }

    fn reference_in(bao: &OpenBao) -> Value {
        json!({ "provider": "hashicorp-vault", "address": bao.address(), "mount": "secret", "path": SECRET_PATH, "key": "client_secret" })
    }

    pub fn reference(&self) -> Value {
        Self::reference_in(&self.bao)
    }

    /// What a platform does on rotation: a new version in Vault, the passport
    /// accepting only the new secret, and `token` (minted with the old one) revoked.
    pub async fn rotate(&self, new_secret: &str, token: &str) {
        self.bao.put_secret(None, SECRET_PATH, json!({ "client_secret": new_secret })).await;
        self.mock.set(json!({ "secret": new_secret })).await;
        self.host.destination.revoke(token);
    }

    /// Requests the host made to OpenBao, as OpenBao counted them.
    pub async fn store_reads(&self) -> u64 {
        Self::USES - uses_left(&self.bao, &self.reader).await
    }
}

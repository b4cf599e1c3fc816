//! Helpers for the managed-identity and embedded-passport tests: temporary
//! state dirs, registries, a passport served on a real 127.0.0.1 socket, and
//! RFC 6749 §2.3.1 client credentials built by hand.

use base64::Engine as _;
use flowstudio_host::identity::{IdentityRegistry, NewManagedIdentity};
use flowstudio_host::passport::{Issuer, PassportServerConfig, PassportState};
use std::path::PathBuf;
use std::sync::Arc;

/// A fresh, unique directory under the system temp dir (removed on drop).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("flowstudio-{label}-{}-{:016x}", std::process::id(), rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    pub fn db(&self) -> PathBuf {
        flowstudio_host::db::path_in(&self.0)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Hashing cost for test registries: far below production (600k rounds take
/// seconds in a debug build), still above the registry's floor.
pub const TEST_HASH_ITERATIONS: u32 = 2_000;

pub fn registry(dir: &TempDir) -> IdentityRegistry {
    IdentityRegistry::open(&dir.db()).expect("registry").with_hash_iterations(TEST_HASH_ITERATIONS)
}

pub fn new_identity(id: &str, client_id: &str) -> NewManagedIdentity {
    NewManagedIdentity {
        id: id.into(),
        name: format!("Identity {id}"),
        client_id: client_id.into(),
        tenant_id: "tenant-1".into(),
        roles: vec!["workflow-runner".into(), "payroll.read".into()],
        enabled: true,
    }
}

/// `application/x-www-form-urlencoded` encoding of one value (what a correct client sends).
pub fn form_encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `Basic base64(form(id):form(secret))`, per RFC 6749 §2.3.1.
pub fn basic_auth(client_id: &str, secret: &str) -> String {
    raw_basic_auth(&format!("{}:{}", form_encode(client_id), form_encode(secret)))
}

/// `Basic base64(credentials)` without form-encoding (what reqwest's `basic_auth` sends).
pub fn raw_basic_auth(credentials: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(credentials))
}

/// The embedded passport on a real socket; stopped on drop.
pub struct RunningPassport {
    pub base: String,
    pub issuer: Arc<Issuer>,
    pub registry: Arc<IdentityRegistry>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningPassport {
    pub async fn start(registry: Arc<IdentityRegistry>, config: PassportServerConfig) -> RunningPassport {
        let issuer = Arc::new(Issuer::generate(config.issuer.clone()).expect("issuer"));
        Self::start_with_issuer(registry, issuer, config).await
    }

    pub async fn start_with_issuer(registry: Arc<IdentityRegistry>, issuer: Arc<Issuer>, config: PassportServerConfig) -> RunningPassport {
        let state = PassportState::new(registry.clone(), issuer.clone(), config).expect("passport state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(flowstudio_host::passport::serve(listener, state));
        RunningPassport { base, issuer, registry, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POST a form body to the token endpoint with optional `Authorization`.
    pub async fn token_request(&self, authorization: Option<&str>, body: &str) -> reqwest::Response {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        let mut request = client
            .post(self.url("/passport/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string());
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        request.send().await.expect("token request")
    }
}

impl Drop for RunningPassport {
    fn drop(&mut self) {
        self.task.abort();
    }
}

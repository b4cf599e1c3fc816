//! Test pieces for the managed-identity token path: an independent passport
//! (oauth2-mock-server behind `fixtures/passport-mock.mjs`), an in-memory
//! secrets store with a cache in front of it, and a log capture.

use flowstudio_host::clock::Clock;
use flowstudio_host::secret::Secret;
use flowstudio_host::secrets::{Freshness, SecretError, SecretReference, SecretValue, SecretsProvider};
use flowstudio_host::token::{IdInfoVerifier, ManagedIdentity, ManagedTokenSource, PassportConfig, RefreshSettings};
use futures::future::BoxFuture;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub const CLIENT_ID: &str = "mi-client";
pub const MANAGED_IDENTITY: &str = "mi-guid-1234";

/// oauth2-mock-server on a free port, as a passport; killed on drop.
pub struct PassportMock {
    child: Child,
    pub port: u16,
    pub issuer: String,
    http: reqwest::Client,
}

impl PassportMock {
    /// A passport accepting `CLIENT_ID` with `secret`, minting tokens of `lifetime_secs`.
    pub fn start(secret: &str, lifetime_secs: u64) -> PassportMock {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/passport-mock.mjs");
        let modules = std::env::var("FLOWSTUDIO_OAUTH2_MOCK_MODULES")
            .expect("FLOWSTUDIO_OAUTH2_MOCK_MODULES is not set: source scripts/env.sh (peers from scripts/install-peers.sh)");
        let mut child = Command::new("node")
            .arg(script)
            .env("FLOWSTUDIO_OAUTH2_MOCK_MODULES", modules)
            .env("PASSPORT_CLIENT_ID", CLIENT_ID)
            .env("PASSPORT_CLIENT_SECRET", secret)
            .env("PASSPORT_LIFETIME", lifetime_secs.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if !line.trim().is_empty() => line,
            other => {
                let _ = child.kill();
                panic!("passport mock did not start: {other:?}");
            }
        };
        let ready: Value = serde_json::from_str(&line).expect("ready line is JSON");
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        PassportMock {
            child,
            port: ready["port"].as_u64().expect("port") as u16,
            issuer: ready["issuer"].as_str().expect("issuer").to_string(),
            http,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn token_url(&self) -> String {
        format!("{}/passport/token", self.url())
    }

    /// The passport's section of the host config, pointed at this mock.
    pub fn config(&self) -> PassportConfig {
        let mut config = PassportConfig::new(self.url());
        config.issuer = Some(self.issuer.clone());
        config.audience_parameter = "aud".into();
        config
    }

    async fn control(&self, route: &str, body: Value) -> Value {
        let url = format!("{}/control/{route}", self.url());
        let request = if route == "stats" { self.http.get(url) } else { self.http.post(url).json(&body) };
        let response = request.send().await.expect("control request");
        assert!(response.status().is_success(), "control {route}: {}", response.status());
        response.json().await.expect("control answer")
    }

    /// `{tokenRequests, jwksRequests, accepted, refused, methods, kid}`.
    pub async fn stats(&self) -> Value {
        self.control("stats", Value::Null).await
    }

    pub async fn token_requests(&self) -> u64 {
        self.stats().await["tokenRequests"].as_u64().expect("count")
    }

    pub async fn jwks_requests(&self) -> u64 {
        self.stats().await["jwksRequests"].as_u64().expect("count")
    }

    /// Change settings: `secret`, `lifetime`, `expiresInAsString`, `omitExpiresIn`, `failTokens`, `jwksDown`, `claims`.
    pub async fn set(&self, settings: Value) {
        self.control("config", settings).await;
    }

    /// A new signing key; the old one is no longer published. Returns the new `kid`.
    pub async fn rotate(&self) -> String {
        self.control("rotate", json!({})).await["kid"].as_str().expect("kid").to_string()
    }

    /// `payload` signed RS256 with the current key.
    pub async fn sign(&self, payload: Value) -> String {
        self.control("sign", json!({"payload": payload})).await["token"].as_str().expect("token").to_string()
    }

    /// `payload` signed with a key the JWKS does not hold, under `kid`.
    pub async fn sign_with_unknown_key(&self, payload: Value, kid: &str) -> String {
        let answer = self.control("sign", json!({"payload": payload, "unknownKid": kid})).await;
        answer["token"].as_str().expect("token").to_string()
    }

    /// The published key set.
    pub async fn jwks(&self) -> Value {
        self.http.get(format!("{}/passport/jwks", self.url())).send().await.expect("jwks").json().await.expect("json")
    }
}

impl Drop for PassportMock {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.flush();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A secrets store with a cache in front of it: `Cached` reads see the
/// cached copy (filled on first read), `Bypass` reads see the store and
/// refresh the cache. `rotate` changes the store only, like a rotation the
/// cache has not seen yet.
#[derive(Default)]
pub struct MemorySecrets {
    store: Mutex<Option<(String, String)>>,
    cache: Mutex<Option<(String, String)>>,
    pub reads: AtomicU64,
    pub bypass_reads: AtomicU64,
}

impl MemorySecrets {
    pub fn new(value: &str, version: &str) -> Arc<MemorySecrets> {
        let secrets = MemorySecrets::default();
        *secrets.store.lock().expect("store") = Some((value.into(), version.into()));
        Arc::new(secrets)
    }

    pub fn rotate(&self, value: &str, version: &str) {
        *self.store.lock().expect("store") = Some((value.into(), version.into()));
    }

    /// Rotate and let the cache see it too (its TTL ran out).
    pub fn rotate_everywhere(&self, value: &str, version: &str) {
        self.rotate(value, version);
        *self.cache.lock().expect("cache") = Some((value.into(), version.into()));
    }

    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    pub fn bypass_reads(&self) -> u64 {
        self.bypass_reads.load(Ordering::Relaxed)
    }
}

impl SecretsProvider for MemorySecrets {
    fn read<'a>(&'a self, reference: &'a SecretReference, freshness: Freshness) -> BoxFuture<'a, Result<SecretValue, SecretError>> {
        Box::pin(async move {
            self.reads.fetch_add(1, Ordering::Relaxed);
            let stored = self.store.lock().expect("store").clone();
            let Some(stored) = stored else {
                return Err(SecretError::NotFound { reference: reference.to_string() });
            };
            let mut cache = self.cache.lock().expect("cache");
            let (value, version) = match freshness {
                Freshness::Bypass => {
                    self.bypass_reads.fetch_add(1, Ordering::Relaxed);
                    *cache = Some(stored.clone());
                    stored
                }
                Freshness::Cached => cache.get_or_insert(stored).clone(),
            };
            Ok(SecretValue { value: Secret::new(value), version: Some(version) })
        })
    }
}

pub fn secret_reference() -> SecretReference {
    SecretReference::HashicorpVault {
        address: "https://vault.test:8200".into(),
        mount: "secret".into(),
        path: "flowstudio/payroll".into(),
        key: "client_secret".into(),
        namespace: None,
    }
}

/// A token source for `MANAGED_IDENTITY` at `mock`.
pub fn managed_source(
    config: &PassportConfig,
    secrets: Arc<MemorySecrets>,
    settings: RefreshSettings,
    clock: Arc<dyn Clock>,
) -> Arc<ManagedTokenSource> {
    let identity = ManagedIdentity {
        managed_identity_id: MANAGED_IDENTITY.into(),
        client_id: CLIENT_ID.into(),
        secret_reference: secret_reference(),
    };
    let verifier = Arc::new(IdInfoVerifier::from_config(config, clock.clone()).expect("verifier"));
    let config = PassportConfig { refresh: settings, ..config.clone() };
    Arc::new(ManagedTokenSource::for_passport(identity, secrets, &config, verifier, clock).expect("source"))
}

/// Everything `tracing` writes in this test binary, at every level.
pub fn captured_logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<&'static Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer: &'static Mutex<Vec<u8>> = Box::leak(Box::new(Mutex::new(Vec::new())));
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || LogWriter(buffer))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber per test binary");
        buffer
    })
}

pub fn captured_text() -> String {
    String::from_utf8_lossy(&captured_logs().lock().expect("logs")).into_owned()
}

struct LogWriter(&'static Mutex<Vec<u8>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The `exp` of a JWT, read without verifying (what a destination would check).
pub fn jwt_exp(token: &str) -> Option<u64> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<Value>(&bytes).ok()?["exp"].as_u64()
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

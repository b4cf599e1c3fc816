//! Helpers for the admin API tests: a real host ([`App`]) in its own temp data
//! dir with the scheduler running, its router called in-process, admin tokens
//! from the bootstrap client, and tokens with other roles signed by the same
//! passport key.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use flowstudio_host::api::{self, ApiState};
use flowstudio_host::app::App;
use flowstudio_host::clock::SystemClock;
use flowstudio_host::config::Config;
use flowstudio_host::passport::Claims;
use flowstudio_host::scheduler::SchedulerConfig;
use flowstudio_host::server::bootstrap;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt as _;

/// A fresh, empty directory under the system temp dir (removed on drop).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}-{:016x}", std::process::id(), rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Development settings: tokens may go over plain http to loopback test servers.
pub const DEV_CONFIG: &str = "[egress]\nallow-loopback-plain-http-tokens = true\n";

pub struct ApiHarness {
    pub dir: TempDir,
    pub app: Arc<App>,
    pub state: Arc<ApiState>,
    pub router: axum::Router,
    pub admin: String,
}

impl ApiHarness {
    pub async fn start() -> ApiHarness {
        let dir = TempDir::new("flowstudio-api");
        let config = Config::parse(DEV_CONFIG).expect("config");
        let app = Arc::new(App::open(config, &dir.0, Arc::new(SystemClock)).await.expect("app"));
        let role = app.config.server.admin_role.clone();
        bootstrap::ensure_admin_client(&dir.0, &app.identities, &role).expect("admin client");
        let admin = bootstrap::admin_token(&dir.0, app.identities.clone(), &app.config.passport.embedded).await.expect("admin token");
        let state = Arc::new(ApiState::for_app(&app).expect("api state"));
        let scheduler = app.start_scheduler(SchedulerConfig::default()).await.expect("scheduler");
        *state.scheduler.write().expect("slot") = Some(Arc::new(scheduler));
        state.readiness.mark_started();
        let router = api::router(state.clone());
        ApiHarness { dir, app, state, router, admin: admin.expose().to_string() }
    }

    /// A token from this host's passport key with the given roles.
    pub fn token_with_roles(&self, sub: &str, roles: &[&str]) -> String {
        let now = chrono::Utc::now().timestamp() as u64;
        self.sign(Claims {
            iss: self.app.issuer.issuer().to_string(),
            aud: self.app.config.passport.embedded.audience.clone(),
            sub: sub.into(),
            exp: now + 600,
            iat: now,
            nbf: now,
            tid: "t-1".into(),
            client_id: sub.into(),
            name: sub.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            scope: String::new(),
            idtyp: Some("app".into()),
            mi: None,
            jti: format!("{:x}", rand::random::<u64>()),
        })
    }

    pub fn sign(&self, claims: Claims) -> String {
        self.app.issuer.sign(&claims).expect("sign").expose().to_string()
    }

    /// Call the router as the admin.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let token = self.admin.clone();
        self.call_as(Some(&token), method, path, body).await
    }

    pub async fn call_as(&self, token: Option<&str>, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request.header("content-type", "application/json").body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .expect("request");
        self.send(request).await
    }

    pub async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let (status, _, body) = self.send_raw(request).await;
        let value = if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).unwrap_or(Value::String(String::from_utf8_lossy(&body).into())) };
        (status, value)
    }

    pub async fn send_raw(&self, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let response = self.router.clone().oneshot(request).await.expect("router answers");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 64 << 20).await.expect("body").to_vec();
        (status, headers, body)
    }

    /// Upload a component from `nodes/`; returns its digest.
    pub async fn upload(&self, node: &str) -> String {
        let wasm = std::fs::read(crate::node_path(node)).expect("node");
        let request = Request::post(format!("/flowstudio/api/nodes?name={node}"))
            .header("authorization", format!("Bearer {}", self.admin))
            .header("content-type", "application/wasm")
            .body(Body::from(wasm))
            .expect("request");
        let (status, body) = self.send(request).await;
        assert_eq!(status, StatusCode::CREATED, "upload {node}: {body}");
        body["digest"].as_str().expect("digest").to_string()
    }

    /// Register `id` with a client secret kept in the data dir's `file` provider; returns the secret reference JSON.
    pub async fn register_identity(&self, id: &str, roles: &[&str]) -> Value {
        let secret = format!("s3cret+/:%={:x}", rand::random::<u64>());
        let file = format!("{id}.secret");
        std::fs::create_dir_all(self.dir.0.join("secrets")).expect("secrets dir");
        std::fs::write(self.dir.0.join("secrets").join(&file), &secret).expect("secret file");
        let body = json!({ "id": id, "name": format!("identity {id}"), "clientId": format!("client-{id}"), "tenantId": "t-1", "roles": roles, "clientSecret": secret });
        let (status, answer) = self.call(Method::POST, "/flowstudio/api/identities", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        json!({ "provider": "file", "path": file })
    }

    /// Create workflow `id` of one node.
    pub async fn workflow(&self, id: &str, node: Value) {
        let (status, body) = self.call(Method::PUT, &format!("/flowstudio/api/workflows/{id}"), Some(json!({ "id": id, "nodes": [node] }))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// Poll an execution until it is final (at most 60 s).
    pub async fn finished_execution(&self, id: &str) -> Value {
        for _ in 0..600 {
            let (status, body) = self.call(Method::GET, &format!("/flowstudio/api/executions/{id}"), None).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            if !matches!(body["status"].as_str(), Some("pending" | "running")) {
                return body;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("execution {id} did not finish within 60 s");
    }
}

/// The seed's schedule JSON, exactly as DESIGN §2 gives it.
pub fn seed_schedule() -> Value {
    serde_json::from_str(
        r#"{ "workflowId": "wf-monthly-payroll", "name": "Monthly Payroll Run",
  "cronExpression": "0 6 25 * *", "timezone": "UTC", "managedIdentityId": "mi-guid-1234",
  "secretReference": { "provider": "azure-key-vault",
                       "vaultUri": "https://company-vault.vault.azure.net/",
                       "secretName": "payroll-scheduler-client-secret" },
  "inputData": { "payrollMonth": "{{schedule.triggerMonth}}" },
  "retryPolicy": { "maxAttempts": 3, "backoffSeconds": 60 } }"#,
    )
    .expect("seed JSON")
}

/// Where `cargo build` put a binary or example of the workspace.
pub fn built(relative: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target.join("debug").join(relative);
    assert!(path.exists(), "{} is missing: run `cargo build --bin flowstudio --example payroll_service` first", path.display());
    path
}

//! Test peers for the secret stores, each on its own free 127.0.0.1 port and
//! gone when dropped: moto (AWS Secrets Manager with SigV4/IAM enforced after
//! setup), an OpenBao dev server (Vault API), and our Azure Key Vault
//! emulator (axum, following Key Vault's REST contract, with an Entra token
//! endpoint and an IMDS endpoint beside it).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The awkward client secret DESIGN §6 asks every path to carry intact.
pub const AWKWARD_SECRET: &str = "a+b/c:d%e=";

/// Panics if `text` contains any of `secrets`.
pub fn assert_no_secret(text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!text.contains(secret), "a secret value leaked into: {text}");
    }
}

/// Checks the `Debug` and `Display` of a value (an error, a store) for secrets.
pub fn assert_redacted<T: std::fmt::Debug + std::fmt::Display>(value: &T, secrets: &[&str]) {
    assert_no_secret(&format!("{value:?}"), secrets);
    assert_no_secret(&format!("{value}"), secrets);
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A fresh folder under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!("flowstudio-{label}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A spawned peer process, killed on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn peer_binary(var: &str) -> PathBuf {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| panic!("{var} is not set: source scripts/env.sh"));
    assert!(path.exists(), "{} is missing: run scripts/install-peers.sh", path.display());
    path
}

/// Start `command` on a free port (given to `make`) and wait until `ready_path` answers.
/// A port taken between choosing and binding makes the process exit; then try another.
async fn spawn_ready(make: impl Fn(u16) -> Command, ready_path: &str) -> (Process, u16) {
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let port = free_port();
        let mut command = make(port);
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        let mut process = Process(command.spawn().expect("spawn peer"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if process.0.try_wait().expect("peer status").is_some() {
                break;
            }
            if client.get(format!("http://127.0.0.1:{port}{ready_path}")).send().await.is_ok() {
                return (process, port);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("peer did not start");
}

// ---------------------------------------------------------------- moto

/// IAM credentials moto issued.
#[derive(Debug, Clone)]
pub struct AwsKeys {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// moto with two secrets and two IAM users, and SigV4 + IAM enforced for
/// every request after that setup.
pub struct Moto {
    _process: Process,
    pub port: u16,
    /// May read secrets (`secretsmanager:GetSecretValue` on `*`).
    pub reader: AwsKeys,
    /// Exists, but has no policy.
    pub nobody: AwsKeys,
}

/// The secrets moto is set up with.
pub const MOTO_PLAIN_SECRET: &str = "payroll/client-secret";
pub const MOTO_JSON_SECRET: &str = "payroll/app";
pub const MOTO_BINARY_SECRET: &str = "payroll/binary";
pub const MOTO_REGION: &str = "eu-west-1";

impl Moto {
    pub async fn start() -> Moto {
        // Exactly the setup calls below are free; the next one must be signed by a user allowed to make it.
        const SETUP_ACTIONS: usize = 8;
        let binary = peer_binary("FLOWSTUDIO_MOTO");
        let (process, port) = spawn_ready(
            |port| {
                let mut command = Command::new(&binary);
                command.args(["-H", "127.0.0.1", "-p", &port.to_string()]).env("INITIAL_NO_AUTH_ACTION_COUNT", SETUP_ACTIONS.to_string());
                command
            },
            "/moto-api/",
        )
        .await;
        let base = format!("http://127.0.0.1:{port}/");
        let client = reqwest::Client::new();
        // Unsigned setup: moto only needs the credential scope to route the call to a service and region.
        let scope = |service: &str| format!("AWS4-HMAC-SHA256 Credential=setup/20260101/{MOTO_REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0");
        let secrets_call = |target: &str, body: Value| {
            client
                .post(&base)
                .header("authorization", scope("secretsmanager"))
                .header("x-amz-target", format!("secretsmanager.{target}"))
                .header("content-type", "application/x-amz-json-1.1")
                .body(body.to_string())
                .send()
        };
        let iam_call = |params: &[(&str, &str)]| {
            let mut form: Vec<(&str, &str)> = vec![("Version", "2010-05-08")];
            form.extend_from_slice(params);
            client.post(&base).header("authorization", scope("iam")).form(&form).send()
        };
        let ok = |r: reqwest::Response| {
            assert!(r.status().is_success(), "moto setup call failed: {}", r.status());
            r
        };
        ok(secrets_call("CreateSecret", json!({"Name": MOTO_PLAIN_SECRET, "SecretString": AWKWARD_SECRET})).await.expect("create"));
        ok(secrets_call("CreateSecret", json!({"Name": MOTO_JSON_SECRET, "SecretString": json!({"client_id": "payroll", "client_secret": AWKWARD_SECRET}).to_string()})).await.expect("create"));
        use base64::Engine;
        let binary_value = base64::engine::general_purpose::STANDARD.encode(AWKWARD_SECRET);
        ok(secrets_call("CreateSecret", json!({"Name": MOTO_BINARY_SECRET, "SecretBinary": binary_value})).await.expect("create"));
        let mut keys = Vec::new();
        for user in ["reader", "nobody"] {
            ok(iam_call(&[("Action", "CreateUser"), ("UserName", user)]).await.expect("user"));
            let xml = ok(iam_call(&[("Action", "CreateAccessKey"), ("UserName", user)]).await.expect("key")).text().await.expect("xml");
            let tag = |name: &str| {
                let start = xml.find(&format!("<{name}>")).expect("tag") + name.len() + 2;
                xml[start..start + xml[start..].find('<').expect("end")].to_string()
            };
            keys.push(AwsKeys { access_key_id: tag("AccessKeyId"), secret_access_key: tag("SecretAccessKey") });
        }
        let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}).to_string();
        ok(iam_call(&[("Action", "PutUserPolicy"), ("UserName", "reader"), ("PolicyName", "read-secrets"), ("PolicyDocument", &policy)]).await.expect("policy"));
        let nobody = keys.pop().expect("nobody");
        let reader = keys.pop().expect("reader");
        Moto { _process: process, port, reader, nobody }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

// ---------------------------------------------------------------- OpenBao

pub const BAO_ROOT_TOKEN: &str = "flowstudio-root-token";

/// An OpenBao dev server (KV v2 at `secret/`), with helpers to set it up as root.
pub struct OpenBao {
    _process: Process,
    _home: TempDir,
    pub port: u16,
    client: reqwest::Client,
}

impl OpenBao {
    pub async fn start() -> OpenBao {
        let binary = peer_binary("FLOWSTUDIO_BAO");
        // The dev server writes a token helper file to $HOME: give it its own.
        let home = TempDir::new("bao-home");
        let (process, port) = spawn_ready(
            |port| {
                let mut command = Command::new(&binary);
                command
                    .args(["server", "-dev", &format!("-dev-listen-address=127.0.0.1:{port}"), &format!("-dev-root-token-id={BAO_ROOT_TOKEN}")])
                    .env("HOME", &home.0);
                command
            },
            "/v1/sys/health",
        )
        .await;
        OpenBao { _process: process, _home: home, port, client: reqwest::Client::new() }
    }

    pub fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A root call to `/v1/{path}`, optionally inside a namespace; panics unless it succeeds.
    pub async fn root(&self, method: reqwest::Method, path: &str, namespace: Option<&str>, body: Option<Value>) -> Value {
        let mut request = self.client.request(method, format!("{}/v1/{path}", self.address())).header("X-Vault-Token", BAO_ROOT_TOKEN);
        if let Some(ns) = namespace {
            request = request.header("X-Vault-Namespace", ns);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("bao call");
        let status = response.status();
        let text = response.text().await.expect("bao body");
        assert!(status.is_success(), "bao {path} answered {status}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    pub async fn put_secret(&self, namespace: Option<&str>, path: &str, data: Value) {
        self.root(reqwest::Method::POST, &format!("secret/data/{path}"), namespace, Some(json!({ "data": data }))).await;
    }

    pub async fn put_policy(&self, name: &str, hcl: &str) {
        self.root(reqwest::Method::PUT, &format!("sys/policies/acl/{name}"), None, Some(json!({ "policy": hcl }))).await;
    }

    /// A token with just these policies.
    pub async fn token_with(&self, policies: &[&str]) -> String {
        let answer = self.root(reqwest::Method::POST, "auth/token/create", None, Some(json!({ "policies": policies, "no_default_policy": true }))).await;
        answer["auth"]["client_token"].as_str().expect("token").to_string()
    }

    /// Enable AppRole and make a role with these policies: (role id, secret id).
    pub async fn approle(&self, role: &str, policies: &[&str], token_ttl: &str) -> (String, String) {
        self.root(reqwest::Method::POST, "sys/auth/approle", None, Some(json!({ "type": "approle" }))).await;
        self.root(reqwest::Method::POST, &format!("auth/approle/role/{role}"), None, Some(json!({ "token_policies": policies, "token_ttl": token_ttl }))).await;
        let role_id = self.root(reqwest::Method::GET, &format!("auth/approle/role/{role}/role-id"), None, None).await;
        let secret_id = self.root(reqwest::Method::POST, &format!("auth/approle/role/{role}/secret-id"), None, None).await;
        (role_id["data"]["role_id"].as_str().expect("role id").into(), secret_id["data"]["secret_id"].as_str().expect("secret id").into())
    }

    /// Create a namespace with its own KV v2 mount at `secret/`.
    pub async fn namespace(&self, name: &str) {
        self.root(reqwest::Method::POST, &format!("sys/namespaces/{name}"), None, Some(json!({}))).await;
        self.root(reqwest::Method::POST, "sys/mounts/secret", Some(name), Some(json!({ "type": "kv", "options": { "version": "2" } }))).await;
    }
}

// ---------------------------------------------------------------- Azure Key Vault emulator

/// One request the emulated vault received.
#[derive(Debug, Clone)]
pub struct VaultRequest {
    pub path: String,
    pub authorization: Option<String>,
}

/// One request the emulated Entra token endpoint received.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub tenant: String,
    pub form: HashMap<String, String>,
}

#[derive(Debug, Clone)]
struct StoredVersion {
    id: String,
    value: String,
    enabled: bool,
}

pub struct AzureState {
    port: u16,
    pub tenant: String,
    pub client_id: String,
    pub client_secret: String,
    /// The resource the vault's challenge announces.
    pub resource: Mutex<String>,
    secrets: Mutex<HashMap<String, Vec<StoredVersion>>>,
    /// Secret names the host's identity has no RBAC role for.
    pub denied: Mutex<HashSet<String>>,
    /// Tokens issued and the resource each is for.
    issued: Mutex<Vec<(String, String)>>,
    /// Answer 503 to every vault read.
    pub down: AtomicBool,
    pub vault_requests: Mutex<Vec<VaultRequest>>,
    pub token_requests: Mutex<Vec<TokenRequest>>,
    pub imds_requests: Mutex<Vec<HashMap<String, String>>>,
    /// Successful secret reads.
    pub reads: AtomicUsize,
}

/// Key Vault at `/secrets/...`, Entra at `/{tenant}/oauth2/v2.0/token`, IMDS at `/metadata/identity/oauth2/token`.
pub struct AzureVaultEmulator {
    pub state: Arc<AzureState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AzureVaultEmulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl AzureVaultEmulator {
    pub async fn start() -> AzureVaultEmulator {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(AzureState {
            port,
            tenant: "contoso-tenant".into(),
            client_id: "flowstudio-host".into(),
            client_secret: AWKWARD_SECRET.into(),
            resource: Mutex::new("https://127.0.0.1".into()),
            secrets: Mutex::new(HashMap::new()),
            denied: Mutex::new(HashSet::new()),
            issued: Mutex::new(Vec::new()),
            down: AtomicBool::new(false),
            vault_requests: Mutex::new(Vec::new()),
            token_requests: Mutex::new(Vec::new()),
            imds_requests: Mutex::new(Vec::new()),
            reads: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/secrets/{name}", get(get_latest))
            .route("/secrets/{name}/{version}", get(get_version))
            .route("/{tenant}/oauth2/v2.0/token", post(entra_token))
            .route("/metadata/identity/oauth2/token", get(imds_token))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        AzureVaultEmulator { state, task }
    }

    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.state.port)
    }

    pub fn vault_uri(&self) -> String {
        format!("{}/", self.origin())
    }

    /// Store a new version of `name`; returns its version id.
    pub fn set_secret(&self, name: &str, value: &str, enabled: bool) -> String {
        let id = format!("{:032x}", rand::random::<u128>());
        self.state.secrets.lock().expect("secrets").entry(name.into()).or_default().push(StoredVersion { id: id.clone(), value: value.into(), enabled });
        id
    }

    /// Make every token issued so far invalid (as after a key rollover).
    pub fn revoke_tokens(&self) {
        self.state.issued.lock().expect("issued").clear();
    }

    pub fn vault_requests(&self) -> Vec<VaultRequest> {
        self.state.vault_requests.lock().expect("log").clone()
    }

    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.state.token_requests.lock().expect("log").clone()
    }
}

fn vault_error(status: StatusCode, code: &str, message: &str, inner: Option<&str>) -> Response {
    let mut error = json!({ "code": code, "message": message });
    if let Some(inner) = inner {
        error["innererror"] = json!({ "code": inner });
    }
    (status, Json(json!({ "error": error }))).into_response()
}

async fn get_latest(State(state): State<Arc<AzureState>>, Path(name): Path<String>, Query(query): Query<HashMap<String, String>>, headers: HeaderMap) -> Response {
    read_secret(&state, &name, None, &query, &headers)
}

async fn get_version(
    State(state): State<Arc<AzureState>>,
    Path((name, version)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    read_secret(&state, &name, Some(&version), &query, &headers)
}

fn read_secret(state: &AzureState, name: &str, version: Option<&str>, query: &HashMap<String, String>, headers: &HeaderMap) -> Response {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
    let path = match version {
        Some(v) => format!("/secrets/{name}/{v}"),
        None => format!("/secrets/{name}"),
    };
    state.vault_requests.lock().expect("log").push(VaultRequest { path, authorization: authorization.clone() });
    if state.down.load(Ordering::SeqCst) {
        return vault_error(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", "The service is temporarily unavailable.", None);
    }
    if !query.get("api-version").is_some_and(|v| v.starts_with("7.")) {
        return vault_error(StatusCode::BAD_REQUEST, "BadParameter", "The request URI contains an invalid or missing api-version.", None);
    }
    let resource = state.resource.lock().expect("resource").clone();
    let token_ok = authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .is_some_and(|t| state.issued.lock().expect("issued").iter().any(|(token, for_resource)| token == t && *for_resource == resource));
    if !token_ok {
        let challenge = format!(r#"Bearer authorization="http://127.0.0.1:{}/{}", resource="{resource}""#, state.port, state.tenant);
        let mut response = vault_error(StatusCode::UNAUTHORIZED, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.", None);
        response.headers_mut().insert("www-authenticate", challenge.parse().expect("header"));
        return response;
    }
    if state.denied.lock().expect("denied").contains(name) {
        return vault_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "Caller is not authorized to perform action on resource. Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'",
            Some("ForbiddenByRbac"),
        );
    }
    let secrets = state.secrets.lock().expect("secrets");
    let found = secrets.get(name).and_then(|versions| match version {
        Some(v) => versions.iter().find(|s| s.id == v),
        None => versions.last(),
    });
    let Some(found) = found else {
        return vault_error(StatusCode::NOT_FOUND, "SecretNotFound", &format!("A secret with (name/id) {name} was not found in this key vault."), None);
    };
    if !found.enabled {
        return vault_error(StatusCode::FORBIDDEN, "Forbidden", "Operation get is not allowed on a disabled secret.", Some("SecretDisabled"));
    }
    state.reads.fetch_add(1, Ordering::SeqCst);
    Json(json!({
        "value": found.value,
        "id": format!("http://127.0.0.1:{}/secrets/{name}/{}", state.port, found.id),
        "attributes": { "enabled": true, "created": 1767225600, "updated": 1767225600, "recoveryLevel": "Recoverable+Purgeable" },
        "tags": {}
    }))
    .into_response()
}

fn issue(state: &AzureState, resource: &str) -> String {
    let token = format!("emulated-{:032x}", rand::random::<u128>());
    state.issued.lock().expect("issued").push((token.clone(), resource.to_string()));
    token
}

async fn entra_token(State(state): State<Arc<AzureState>>, Path(tenant): Path<String>, Form(form): Form<HashMap<String, String>>) -> Response {
    state.token_requests.lock().expect("log").push(TokenRequest { tenant: tenant.clone(), form: form.clone() });
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if tenant != state.tenant {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_request", "error_description": "AADSTS90002: Tenant not found."}))).into_response();
    }
    if field("grant_type") != "client_credentials" {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "unsupported_grant_type"}))).into_response();
    }
    if field("client_id") != state.client_id || field("client_secret") != state.client_secret {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}))).into_response();
    }
    let Some(resource) = field("scope").strip_suffix("/.default") else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_scope"}))).into_response();
    };
    let token = issue(&state, resource);
    Json(json!({ "token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token })).into_response()
}

async fn imds_token(State(state): State<Arc<AzureState>>, Query(query): Query<HashMap<String, String>>, headers: HeaderMap) -> Response {
    state.imds_requests.lock().expect("log").push(query.clone());
    if headers.get("metadata").and_then(|v| v.to_str().ok()) != Some("true") {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_request", "error_description": "Required metadata header not specified"}))).into_response();
    }
    if query.get("api-version").map(String::as_str) != Some("2018-02-01") {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_request", "error_description": "api-version is required"}))).into_response();
    }
    let Some(resource) = query.get("resource") else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_request", "error_description": "resource is required"}))).into_response();
    };
    let token = issue(&state, resource);
    // IMDS sends numbers as strings.
    Json(json!({ "access_token": token, "expires_in": "3599", "expires_on": "1767229199", "resource": resource, "token_type": "Bearer" })).into_response()
}

//! `flowstudio serve` as a real process on a real socket: the API over HTTP,
//! `admin token`, graceful shutdown on SIGTERM, a SIGKILL mid-execution and a
//! restart (every due firing runs exactly once), and the main job script.

use flowstudio_tests::api::{built, TempDir, DEV_CONFIG};
use serde_json::{json, Value};
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A running `flowstudio serve`; killed on drop.
struct Serve {
    child: Child,
    url: String,
}

impl Serve {
    fn start(data_dir: &std::path::Path, config: &str) -> Serve {
        let config_path = data_dir.with_extension("toml");
        std::fs::write(&config_path, config).expect("config");
        let mut child = Command::new(built("flowstudio"))
            .args(["--config", config_path.to_str().expect("path"), "--data-dir", data_dir.to_str().expect("path"), "serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("first line");
        let first: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("serve printed {line:?}"));
        Serve { child, url: first["listening"].as_str().expect("url").to_string() }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.child.id().to_string()]).status().expect("kill");
        assert!(status.success());
    }

    fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "serve did not exit within {limit:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn admin_token(data_dir: &std::path::Path) -> String {
    let out = Command::new(built("flowstudio")).args(["--data-dir", data_dir.to_str().expect("path"), "admin", "token"]).output().expect("admin token");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf8").trim().to_string()
}

struct Client {
    http: reqwest::Client,
    api: String,
    token: String,
}

impl Client {
    fn new(serve: &Serve, data_dir: &std::path::Path) -> Client {
        Client { http: reqwest::Client::new(), api: format!("{}/flowstudio/api", serve.url), token: admin_token(data_dir) }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.api)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn upload(&self, node: &str) -> String {
        let wasm = std::fs::read(flowstudio_tests::node_path(node)).expect("node");
        let response = self
            .http
            .post(format!("{}/nodes", self.api))
            .bearer_auth(&self.token)
            .header("content-type", "application/wasm")
            .body(wasm)
            .send()
            .await
            .expect("upload");
        assert_eq!(response.status().as_u16(), 201);
        response.json::<Value>().await.expect("json")["digest"].as_str().expect("digest").to_string()
    }

    /// Identity, secret file, payroll node and workflow calling `origin`, and a schedule; returns its id.
    async fn payroll_world(&self, data_dir: &std::path::Path, origin: &str, cron: &str, extra: Value) -> String {
        std::fs::write(data_dir.join("secrets/mi.secret"), "payroll-secret-1+/:%=").expect("secret");
        let identity = json!({ "id": "mi-guid-1234", "name": "Payroll", "clientId": "payroll", "tenantId": "t-1", "roles": ["workflow-runner"], "clientSecret": "payroll-secret-1+/:%=" });
        assert_eq!(self.call(reqwest::Method::POST, "/identities", Some(identity)).await.0, 201);
        let digest = self.upload("payroll-calculation").await;
        let workflow = json!({ "id": "wf-monthly-payroll", "nodes": [{ "id": "calculate", "component": digest,
            "config": { "employeesUrl": format!("{origin}/employees") }, "grants": [format!("{origin}=managed-identity")] }] });
        assert_eq!(self.call(reqwest::Method::POST, "/workflows", Some(workflow)).await.0, 201);
        let schedule = json!({ "workflowId": "wf-monthly-payroll", "name": "Payroll", "cronExpression": cron, "timezone": "UTC",
            "managedIdentityId": "mi-guid-1234", "secretReference": { "provider": "file", "path": "mi.secret" },
            "inputData": { "payrollMonth": "{{schedule.triggerMonth}}" } });
        let mut schedule = schedule;
        if let (Some(target), Some(extra)) = (schedule.as_object_mut(), extra.as_object()) {
            target.extend(extra.clone());
        }
        let (status, created) = self.call(reqwest::Method::POST, "/schedules", Some(schedule)).await;
        assert_eq!(status, 201, "{created}");
        created["id"].as_str().expect("id").to_string()
    }

    async fn executions(&self, schedule: &str) -> Vec<Value> {
        let (_, body) = self.call(reqwest::Method::GET, &format!("/executions?scheduleId={schedule}"), None).await;
        body["executions"].as_array().cloned().unwrap_or_default()
    }
}

/// A payroll service whose answers wait while the gate is closed. Counts requests.
struct GatedPayroll {
    origin: String,
    requests: Arc<AtomicUsize>,
    gate: tokio::sync::watch::Sender<bool>,
}

impl GatedPayroll {
    async fn start() -> GatedPayroll {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let origin = format!("http://127.0.0.1:{}", listener.local_addr().expect("addr").port());
        let requests = Arc::new(AtomicUsize::new(0));
        let (gate, open) = tokio::sync::watch::channel(false);
        let counter = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let counter = counter.clone();
                let mut open = open.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let Ok(n) = stream.read(&mut buf).await else { return };
                    if n == 0 || !String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase().contains("authorization: bearer ") {
                        let _ = stream.write_all(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                        return;
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    let _ = open.wait_for(|o| *o).await;
                    let body = r#"[{"id":"e-1","monthlySalaryCents":100}]"#;
                    let reply = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                    let _ = stream.write_all(reply.as_bytes()).await;
                });
            }
        });
        GatedPayroll { origin, requests, gate }
    }

    async fn wait_for_requests(&self, n: usize) {
        for _ in 0..600 {
            if self.requests.load(Ordering::SeqCst) >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the payroll service did not see {n} requests within 60 s");
    }
}

async fn all_final(client: &Client, schedule: &str, count: usize) -> Vec<Value> {
    for _ in 0..900 {
        let executions = client.executions(schedule).await;
        if executions.len() >= count && executions.iter().all(|e| !matches!(e["status"].as_str(), Some("pending" | "running"))) {
            return executions;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("executions of {schedule} did not all finish within 90 s: {:?}", client.executions(schedule).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_over_a_real_socket_and_stops_gracefully_on_sigterm() {
    let dir = TempDir::new("flowstudio-serve");
    let data = dir.0.join("data");
    let mut serve = Serve::start(&data, DEV_CONFIG);
    let http = reqwest::Client::new();
    assert_eq!(http.get(format!("{}/healthz", serve.url)).send().await.expect("healthz").status().as_u16(), 200);
    let ready: Value = http.get(format!("{}/readyz", serve.url)).send().await.expect("readyz").json().await.expect("json");
    assert_eq!(ready["status"], "ready");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(data.join("admin-client.json")).expect("admin client file").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the bootstrap admin client is private");
    let unauthorized = http.get(format!("{}/flowstudio/api/schedules", serve.url)).send().await.expect("request");
    assert_eq!(unauthorized.status().as_u16(), 401);
    assert!(unauthorized.headers().contains_key("www-authenticate"));

    // A run in progress when SIGTERM arrives finishes within the grace period.
    let payroll = GatedPayroll::start().await;
    let client = Client::new(&serve, &data);
    let schedule = client.payroll_world(&data, &payroll.origin, "0 6 25 * *", json!({})).await;
    let (status, started) = client.call(reqwest::Method::POST, &format!("/schedules/{schedule}/trigger"), None).await;
    assert_eq!(status, 202, "{started}");
    payroll.wait_for_requests(1).await;
    serve.signal("-TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let draining = http.get(format!("{}/readyz", serve.url)).send().await.expect("readyz while draining");
    assert_eq!(draining.status().as_u16(), 503, "not ready while shutting down");
    let _ = payroll.gate.send(true);
    assert!(serve.wait(Duration::from_secs(30)).success());

    // On the next start the execution is recorded as finished, not resumed.
    let serve = Serve::start(&data, DEV_CONFIG);
    let client = Client::new(&serve, &data);
    let executions = all_final(&client, &schedule, 1).await;
    assert_eq!(executions.len(), 1);
    assert_eq!(executions[0]["status"], "succeeded", "{executions:?}");
    assert_eq!(executions[0]["interruptions"], 0);
    assert_eq!(payroll.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serve_killed_mid_execution_and_restarted_runs_every_due_firing_exactly_once() {
    let dir = TempDir::new("flowstudio-kill");
    let data = dir.0.join("data");
    let serve = Serve::start(&data, DEV_CONFIG);
    let payroll = GatedPayroll::start().await;
    let client = Client::new(&serve, &data);
    let cron = "*/20 * * * *";
    // The schedule ends now, so no timed firing can join in while the test runs.
    let now = chrono::Utc::now();
    let end = json!({ "endAt": flowstudio_host::schedule::rfc3339::format(&now) });
    let schedule = client.payroll_world(&data, &payroll.origin, cron, end).await;

    // Three past nominal times, run one after another; the first hangs in the payroll call.
    let (from, to) = (now - chrono::Duration::minutes(61), now - chrono::Duration::minutes(1));
    let plan = flowstudio_host::cron::Schedule::parse(cron, "UTC").expect("cron");
    let mut due: Vec<String> = plan
        .upcoming(from - chrono::Duration::seconds(1), 10)
        .into_iter()
        .map(|t| t.with_timezone(&chrono::Utc))
        .filter(|t| *t >= from && *t <= to)
        .map(|t| flowstudio_host::schedule::rfc3339::format(&t))
        .collect();
    due.sort();
    assert_eq!(due.len(), 3);
    let backfill = json!({ "from": flowstudio_host::schedule::rfc3339::format(&from), "to": flowstudio_host::schedule::rfc3339::format(&to) });
    let (status, report) = client.call(reqwest::Method::POST, &format!("/schedules/{schedule}/backfill"), Some(backfill)).await;
    assert_eq!(status, 202, "{report}");
    assert_eq!(report["claimed"].as_array().map(Vec::len), Some(3));
    payroll.wait_for_requests(1).await;

    // SIGKILL: no shutdown code runs.
    drop(serve);
    let _ = payroll.gate.send(true);
    let serve = Serve::start(&data, DEV_CONFIG);
    let client = Client::new(&serve, &data);
    let executions = all_final(&client, &schedule, 3).await;
    let mut nominal: Vec<String> = executions.iter().map(|e| e["nominalTime"].as_str().unwrap_or("").to_string()).collect();
    nominal.sort();
    assert_eq!(nominal, due, "one execution per due firing: {executions:?}");
    for execution in &executions {
        assert_eq!(execution["status"], "succeeded", "{execution}");
        let (_, detail) = client.call(reqwest::Method::GET, &format!("/executions/{}", execution["id"].as_str().expect("id")), None).await;
        let succeeded = detail["nodes"].as_array().expect("nodes").iter().filter(|n| n["status"] == "succeeded").count();
        assert_eq!(succeeded, 1, "the node completed once: {detail}");
    }
    assert_eq!(executions.iter().filter(|e| e["interruptions"] == 1).count(), 1, "the killed one was resumed: {executions:?}");
    // Four calls: the one cut off by the kill, then one per firing.
    assert_eq!(payroll.requests.load(Ordering::SeqCst), 4);
}

#[test]
fn the_main_job_plays_the_seed_over_the_rest_api_in_non_interactive_mode() {
    let dir = TempDir::new("flowstudio-main-job");
    built("flowstudio");
    built("examples/payroll_service");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/main-job.sh");
    let out = Command::new(script)
        .arg("--non-interactive")
        .env("FLOWSTUDIO_SKIP_BUILD", "1")
        .env("FLOWSTUDIO_DATA_DIR", dir.0.join("data"))
        .output()
        .expect("main job");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "main job failed:\n{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|_| panic!("no summary in {stdout}"));
    assert_eq!(summary["status"], "succeeded", "{summary}");
    assert_eq!(summary["output"]["calculate"]["employeeCount"], 3);
    assert_eq!(summary["payrollVerifiedTokens"], 1, "the payroll service verified the token");
    assert_eq!(summary["payrollCallers"][0]["managedIdentity"], "mi-guid-1234");
    assert_eq!(summary["auditActors"], json!(["mi-guid-1234"]));
    for action in ["schedule.fired", "token.minted", "egress.call", "execution.succeeded"] {
        assert!(summary["auditActions"].as_array().expect("actions").iter().any(|a| a == action), "{action} in {summary}");
    }
    assert!(stderr.contains("next fire times"), "{stderr}");
    assert!(stderr.contains("-25T06:00:00+00:00"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_outlasting_the_grace_period_is_checkpointed_as_interrupted_and_resumed_on_the_next_start() {
    let dir = TempDir::new("flowstudio-grace");
    let data = dir.0.join("data");
    let config = format!("{DEV_CONFIG}\n[server]\nshutdown-grace-seconds = 1\n");
    let mut serve = Serve::start(&data, &config);
    let payroll = GatedPayroll::start().await;
    let client = Client::new(&serve, &data);
    let schedule = client.payroll_world(&data, &payroll.origin, "0 6 25 * *", json!({})).await;
    let (status, _) = client.call(reqwest::Method::POST, &format!("/schedules/{schedule}/trigger"), None).await;
    assert_eq!(status, 202);
    payroll.wait_for_requests(1).await;
    let asked = std::time::Instant::now();
    serve.signal("-INT");
    assert!(serve.wait(Duration::from_secs(20)).success());
    assert!(asked.elapsed() < Duration::from_secs(15), "the grace period bounds the stop");
    drop(serve);

    let _ = payroll.gate.send(true);
    let serve = Serve::start(&data, &config);
    let client = Client::new(&serve, &data);
    let executions = all_final(&client, &schedule, 1).await;
    assert_eq!(executions.len(), 1);
    assert_eq!(executions[0]["status"], "succeeded", "{executions:?}");
    assert_eq!(executions[0]["interruptions"], 1, "{executions:?}");
    assert_eq!(payroll.requests.load(Ordering::SeqCst), 2);
}

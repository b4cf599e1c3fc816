//! Shared pieces of FlowStudio's integration tests: where the real node
//! components are, a recording HTTP server on 127.0.0.1, and a runtime with
//! the embedded passport's dev identity.

pub mod api;
pub mod audit;
pub mod identities;
pub mod peers;
pub mod scheduler;
pub mod secrets;
pub mod tokens;

use flowstudio_host::audit::MemoryAuditSink;
use flowstudio_host::egress::{EgressPolicy, Grant, RunEgress};
use flowstudio_host::passport::{DevTokenSource, Issuer};
use flowstudio_host::runtime::{Invocation, NodeOutput, RunContext, RunError, Runtime, RuntimeConfig};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A component built from `nodes/` by `scripts/build-nodes.sh`.
pub fn node_path(name: &str) -> PathBuf {
    let dir = std::env::var_os("FLOWSTUDIO_NODES_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../nodes/target/wasm32-wasip2/release")
    });
    let path = dir.join(format!("{}.wasm", name.replace('-', "_")));
    assert!(path.exists(), "{} is missing: build the nodes with scripts/build-nodes.sh", path.display());
    path
}

pub fn runtime() -> Runtime {
    let cache = std::env::temp_dir().join("flowstudio-test-components");
    Runtime::new(RuntimeConfig { cache_dir: Some(cache), ..Default::default() }).expect("runtime")
}

/// The embedded passport and a token source for the dev identity.
pub struct DevIdentity {
    pub issuer: Arc<Issuer>,
    pub tokens: Arc<DevTokenSource>,
}

pub const AUDIENCE: &str = "flowstudio-tests";

pub fn dev_identity() -> DevIdentity {
    let issuer = Arc::new(Issuer::generate("https://passport.test").expect("issuer"));
    let tokens = Arc::new(DevTokenSource::new(issuer.clone(), AUDIENCE, DevTokenSource::dev_identity(), 3600));
    DevIdentity { issuer, tokens }
}

pub fn grants(specs: &[&str]) -> Vec<Grant> {
    specs.iter().map(|s| Grant::parse_spec(s).expect("grant")).collect()
}

pub fn policy(specs: &[&str]) -> EgressPolicy {
    EgressPolicy { grants: grants(specs), allow_loopback_plain_http_tokens: true, ..Default::default() }
}

pub fn context(node_id: &str) -> RunContext {
    RunContext {
        execution_id: "exec-1".into(),
        workflow_id: "wf-test".into(),
        node_id: node_id.into(),
        attempt: 1,
        triggered_by: "manual:tester".into(),
        scheduled_time: Some("2026-12-25T06:00:00Z".into()),
        tenant_id: "dev-tenant".into(),
    }
}

/// Run one node with the dev identity and the given egress policy.
pub async fn run_node(
    runtime: &Runtime,
    name: &str,
    input: serde_json::Value,
    policy: EgressPolicy,
) -> (Result<NodeOutput, RunError>, Arc<MemoryAuditSink>, DevIdentity) {
    let id = dev_identity();
    let audit = Arc::new(MemoryAuditSink::default());
    let node = runtime.load_file(&node_path(name)).expect("load node");
    let egress = RunEgress::new(policy, id.tokens.clone(), audit.clone(), "exec-1");
    let result = runtime.run(&node, Invocation { context: context(name), input, egress, limits: None }).await;
    (result, audit, id)
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply { status, headers: vec![("content-type".into(), "application/json".into())], body: body.to_string() }
    }
}

type Responder = dyn Fn(&Seen, usize) -> Reply + Send + Sync;

/// An HTTP/1.1 server on 127.0.0.1 that records every request and answers
/// through a closure (given the request and its index).
pub struct RecordingServer {
    pub port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl RecordingServer {
    pub async fn start(respond: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> RecordingServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let respond: Arc<Responder> = Arc::new(respond);
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let log = log.clone();
                let respond = respond.clone();
                tokio::spawn(async move {
                    let Some(request) = read_head(&mut stream).await else { return };
                    let index = {
                        let mut log = log.lock().expect("log");
                        log.push(request.clone());
                        log.len() - 1
                    };
                    let reply = respond(&request, index);
                    let mut out = format!("HTTP/1.1 {} X\r\ncontent-length: {}\r\nconnection: close\r\n", reply.status, reply.body.len());
                    for (k, v) in &reply.headers {
                        out.push_str(&format!("{k}: {v}\r\n"));
                    }
                    out.push_str("\r\n");
                    out.push_str(&reply.body);
                    let _ = stream.write_all(out.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        RecordingServer { port, seen }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("log").clone()
    }
}

async fn read_head(stream: &mut tokio::net::TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(Seen { method, path, headers })
}

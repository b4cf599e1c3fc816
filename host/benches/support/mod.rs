//! Shared by the benches: where the built nodes are, a dev identity, a
//! loopback HTTP server that answers every request with a small body, temp
//! dirs, percentiles and the process's resident memory; the embedded passport
//! on loopback in [`passport`].

#![allow(dead_code)]

pub mod passport;

use flowstudio_host::passport::{DevTokenSource, Issuer};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// A component built from `nodes/` by `scripts/build-nodes.sh`.
pub fn node_wasm(name: &str) -> Vec<u8> {
    let dir = std::env::var_os("FLOWSTUDIO_NODES_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../nodes/target/wasm32-wasip2/release")
    });
    let path = dir.join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run scripts/build-nodes.sh)", path.display()))
}

pub fn dev_tokens() -> Arc<DevTokenSource> {
    let issuer = Arc::new(Issuer::generate("https://passport.bench").expect("issuer"));
    Arc::new(DevTokenSource::new(issuer, "bench", DevTokenSource::dev_identity(), 3600))
}

/// An HTTP/1.1 server on 127.0.0.1 answering `200 ok` to everything, on its own thread.
pub fn ok_server() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        rt.block_on(async move {
            listener.set_nonblocking(true).expect("nonblocking");
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let app = axum::Router::new().fallback(|| async { "ok" });
            axum::serve(listener, app).await.expect("serve");
        });
    });
    addr
}

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("flowstudio-bench-{tag}-{}-{}", std::process::id(), rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `p`-th percentile (0..=100, nearest rank) of `sorted`.
pub fn percentile(sorted: &[std::time::Duration], p: f64) -> std::time::Duration {
    if sorted.is_empty() {
        return std::time::Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `(VmRSS, VmHWM)` of this process in bytes, from `/proc/self/status`.
pub fn resident_memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

pub fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Whether a bench binary named `name` should run: `cargo bench -- FILTER`
/// passes the filter to every bench, so one that does not match stays quiet.
pub fn selected(name: &str) -> bool {
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()) || f.contains(name))
}

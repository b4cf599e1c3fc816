//! Shared by the criterion suites: where the built nodes are, a dev identity,
//! and a loopback HTTP server that answers every request with a small body.

#![allow(dead_code)]

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

//! `egress`: one GET through the chokepoint (grant check, address check, token
//! attach, send, audit) against the same GET sent directly, both over a fresh
//! HTTP/1.1 connection to the same loopback server (the chokepoint does not pool
//! connections, so the baseline does not either). Goal: ≤ +100 µs.

mod support;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use flowstudio_host::audit::MemoryAuditSink;
use flowstudio_host::egress::{EgressHooks, EgressPolicy, Grant, RunEgress};
use http_body_util::{BodyExt, Empty, Full};
use std::sync::Arc;
use wasmtime_wasi_http::WasiHttpHooks;

fn egress(c: &mut Criterion) {
    let addr = support::ok_server();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    let origin = format!("http://{addr}");
    let policy = EgressPolicy {
        grants: vec![Grant::parse_spec(&format!("{origin}=managed-identity")).expect("grant")],
        allow_loopback_plain_http_tokens: true,
        max_requests: u32::MAX,
        max_response_bytes: u64::MAX,
        ..Default::default()
    };
    // Events stay in memory: a few MB over a whole run of this bench.
    let audit = Arc::new(MemoryAuditSink::default());
    let run = RunEgress::new(policy, support::dev_tokens(), audit, "bench");
    let mut hooks = EgressHooks::new(run, "bench-node");
    let url = format!("{origin}/x");

    let mut group = c.benchmark_group("egress");
    group.bench_function("flowstudio", |b| {
        b.iter(|| {
            let request = http::Request::get(&url)
                .body(Full::new(Bytes::new()).map_err(|never| match never {}).boxed_unsync())
                .expect("request");
            let future = hooks.send_request(request, None, Box::new(async { Ok(()) }));
            let (response, _) = rt.block_on(Box::into_pin(future)).expect("allowed");
            assert_eq!(response.status(), 200);
        })
    });
    group.bench_function("direct", |b| {
        b.iter(|| {
            rt.block_on(async {
                let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
                let (mut sender, conn) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await.expect("handshake");
                let driver = tokio::spawn(conn);
                let request = hyper::Request::get("/x")
                    .header(hyper::header::HOST, addr.to_string())
                    .body(Empty::<Bytes>::new())
                    .expect("request");
                let response = sender.send_request(request).await.expect("send");
                assert_eq!(response.status(), 200);
                response.into_body().collect().await.expect("body");
                driver.abort();
            })
        })
    });
    group.finish();
}

criterion_group!(benches, egress);
criterion_main!(benches);

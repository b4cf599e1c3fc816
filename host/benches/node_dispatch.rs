//! `node_dispatch`: our whole per-run path (fresh store, sandbox limits, egress
//! hooks, token + context, call, output checks) against a plain wasmtime
//! `InstancePre` instantiate + call of the same component on the same engine,
//! in one group and one run. Goal: flowstudio / raw_wasmtime ≤ 1.3.

mod support;

use criterion::{criterion_group, criterion_main, Criterion};
use flowstudio_host::audit::MemoryAuditSink;
use flowstudio_host::egress::{EgressPolicy, RunEgress};
use flowstudio_host::identity::IdInfo;
use flowstudio_host::runtime::bindings::{self, ExecutionContext, NodePre, WitIdInfo};
use flowstudio_host::runtime::{Invocation, RunContext, Runtime, RuntimeConfig};
use std::sync::Arc;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::Store;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// The least a store needs to run a node: WASI, wasi-http with the default hooks, no-op host functions.
struct Bare {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
}

impl WasiView for Bare {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for Bare {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: wasmtime_wasi_http::default_hooks() }
    }
}

impl bindings::flowstudio::node::types::Host for Bare {}

impl bindings::flowstudio::node::host::Host for Bare {
    fn log(&mut self, _level: bindings::LogLevel, _message: String) {}
    fn actor(&mut self) -> WitIdInfo {
        WitIdInfo::from(&IdInfo::default())
    }
}

fn bare_pre(runtime: &Runtime, wasm: &[u8]) -> NodePre<Bare> {
    let engine = runtime.engine();
    let mut linker: Linker<Bare> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("wasi");
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).expect("wasi-http");
    bindings::flowstudio::node::types::add_to_linker::<Bare, HasSelf<Bare>>(&mut linker, |s| s).expect("types");
    bindings::flowstudio::node::host::add_to_linker::<Bare, HasSelf<Bare>>(&mut linker, |s| s).expect("host");
    let component = Component::new(engine, wasm).expect("component");
    NodePre::new(linker.instantiate_pre(&component).expect("instantiate_pre")).expect("node pre")
}

fn node_dispatch(c: &mut Criterion) {
    let wasm = support::node_wasm("hello");
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let node = runtime.load(&wasm).expect("load");
    let bare = bare_pre(&runtime, &wasm);
    let tokens = support::dev_tokens();
    let egress = RunEgress::new(EgressPolicy::default(), tokens.clone(), Arc::new(MemoryAuditSink::default()), "bench");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    let context = RunContext { node_id: "hello".into(), execution_id: "bench".into(), ..Default::default() };
    let input = serde_json::json!({ "greeting": "hi" });

    let mut group = c.benchmark_group("node_dispatch");
    group.bench_function("flowstudio", |b| {
        b.iter(|| {
            let invocation =
                Invocation { context: context.clone(), input: input.clone(), egress: egress.clone(), limits: None };
            rt.block_on(runtime.run(&node, invocation)).expect("run")
        })
    });
    let actor = WitIdInfo::from(&flowstudio_host::passport::DevTokenSource::dev_identity());
    let ctx = ExecutionContext {
        execution_id: "bench".into(),
        workflow_id: String::new(),
        node_id: "hello".into(),
        attempt: 1,
        triggered_by: String::new(),
        scheduled_time: None,
        tenant_id: String::new(),
        actor,
    };
    let input_text = input.to_string();
    group.bench_function("raw_wasmtime", |b| {
        b.iter(|| {
            rt.block_on(async {
                let state = Bare { wasi: WasiCtx::builder().build(), table: ResourceTable::new(), http: WasiHttpCtx::new() };
                let mut store = Store::new(runtime.engine(), state);
                // The shared engine has epoch interruption on; this store never runs out.
                store.set_epoch_deadline(u64::MAX / 2);
                let instance = bare.instantiate_async(&mut store).await.expect("instantiate");
                instance.call_run(&mut store, &ctx, &input_text).await.expect("call").expect("node ok")
            })
        })
    });
    group.finish();
}

criterion_group!(benches, node_dispatch);
criterion_main!(benches);

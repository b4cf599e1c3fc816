//! Measures one full node run (fresh store + instantiate + call + drop) of a
//! component, e.g. `hello`: `cargo run --release --example run_cost -- hello.wasm`.
//! The criterion suites (issue 7) replace this with side-by-side baselines.

use flowstudio_host::audit::MemoryAuditSink;
use flowstudio_host::egress::{EgressPolicy, RunEgress};
use flowstudio_host::passport::{DevTokenSource, Issuer};
use flowstudio_host::runtime::{Invocation, RunContext, Runtime, RuntimeConfig};
use std::sync::Arc;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).ok_or_else(|| anyhow::anyhow!("usage: run_cost FILE.wasm [RUNS]"))?;
    let runs: usize = std::env::args().nth(2).map(|n| n.parse()).transpose()?.unwrap_or(2_000);
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let node = runtime.load_file(path.as_ref())?;
    let issuer = Arc::new(Issuer::generate("bench")?);
    let tokens = Arc::new(DevTokenSource::new(issuer, "bench", DevTokenSource::dev_identity(), 3600));
    let egress = RunEgress::new(EgressPolicy::default(), tokens, Arc::new(MemoryAuditSink::default()), "bench");
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut samples = Vec::with_capacity(runs);
    tokio.block_on(async {
        for _ in 0..runs {
            let invocation = Invocation {
                context: RunContext { node_id: "hello".into(), ..Default::default() },
                input: serde_json::json!({}),
                egress: egress.clone(),
                limits: None,
            };
            let started = Instant::now();
            runtime.run(&node, invocation).await?;
            samples.push(started.elapsed());
        }
        anyhow::Ok(())
    })?;
    samples.sort();
    let pct = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)];
    println!("{runs} runs: p50 {:?}, p90 {:?}, p99 {:?}", pct(50), pct(90), pct(99));
    Ok(())
}

//! Measures what recording an audit event costs the caller, and why the store
//! writes in the background: `cargo run --release --example audit_cost [EVENTS]`.
//!
//! 1. a mutex + one INSERT transaction per event (`AuditStore::append` of one),
//! 2. `SqliteAuditSink::record` (enqueue) per event, then one `flush`,
//! 3. the same while another connection holds the write lock for 200 ms.

use flowstudio_host::audit::{AuditActor, AuditEvent, AuditSink, AuditStore, EgressDecision, EgressEvent, SqliteAuditSink};
use flowstudio_host::clock::SystemClock;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn event(i: usize) -> AuditEvent {
    AuditEvent::Egress(EgressEvent {
        execution_id: format!("exec-{}", i % 10),
        node_id: "fetch".into(),
        actor: AuditActor::managed_identity("mi-1"),
        method: "GET".into(),
        destination: "https://api.example:443".into(),
        status: Some(200),
        response_bytes: 512,
        latency_ms: 4,
        decision: EgressDecision::Allowed,
        token_attached: true,
    })
}

fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    format!("p50 {:?}  p99 {:?}  max {:?}", at(0.5), at(0.99), at(1.0))
}

fn main() -> anyhow::Result<()> {
    let events: usize = std::env::args().nth(1).map(|n| n.parse()).transpose()?.unwrap_or(5_000);
    let dir = std::env::temp_dir().join(format!("flowstudio-audit-cost-{}", std::process::id()));
    let path = flowstudio_host::db::path_in(&dir);

    let mut store = AuditStore::open(&path)?;
    let mut direct = Vec::with_capacity(events);
    let started = Instant::now();
    for i in 0..events {
        let t = Instant::now();
        store.append(&[(event(i), chrono::Utc::now())])?;
        direct.push(t.elapsed());
    }
    println!("insert per event:   {events} events in {:?}; per call {}", started.elapsed(), percentiles(direct));

    let sink = SqliteAuditSink::open(&path, Arc::new(SystemClock))?;
    let mut queued = Vec::with_capacity(events);
    let started = Instant::now();
    for i in 0..events {
        let t = Instant::now();
        sink.record(event(i));
        queued.push(t.elapsed());
    }
    let enqueued = started.elapsed();
    sink.flush()?;
    println!(
        "background writer:  {events} events enqueued in {enqueued:?}, committed after {:?}; per record {}",
        started.elapsed(),
        percentiles(queued)
    );

    // Another module holding the database's write lock: the insert waits, record does not.
    let blocker = std::thread::spawn({
        let path = path.clone();
        move || -> anyhow::Result<()> {
            let conn = flowstudio_host::db::open(&path)?;
            conn.execute_batch("BEGIN IMMEDIATE")?;
            std::thread::sleep(Duration::from_millis(200));
            conn.execute_batch("COMMIT")?;
            Ok(())
        }
    });
    std::thread::sleep(Duration::from_millis(20));
    let t = Instant::now();
    sink.record(event(0));
    let record_wait = t.elapsed();
    let t = Instant::now();
    store.append(&[(event(0), chrono::Utc::now())])?;
    println!("write lock held elsewhere: record {record_wait:?}, insert {:?}", t.elapsed());
    blocker.join().map_err(|_| anyhow::anyhow!("blocker panicked"))??;
    sink.flush()?;
    println!("chain after all writers: {:?}", store.verify()?.map_err(|b| anyhow::anyhow!("{b}"))?);
    drop(sink);
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

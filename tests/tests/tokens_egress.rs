//! Managed-identity tokens through the real runtime and egress (`http-get`
//! node): short-lived tokens refreshed ahead of time, 401 handling.

use flowstudio_host::audit::MemoryAuditSink;
use flowstudio_host::clock::SystemClock;
use flowstudio_host::egress::RunEgress;
use flowstudio_host::runtime::Invocation;
use flowstudio_host::token::{RefreshSettings, TokenSource};
use flowstudio_tests::tokens::*;
use flowstudio_tests::{context, node_path, policy, runtime, RecordingServer, Reply, Seen};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn bearer(seen: &Seen) -> Option<String> {
    seen.header("authorization").and_then(|v| v.strip_prefix("Bearer ")).map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_five_second_token_is_refreshed_ahead_through_a_twenty_second_run() {
    let passport = PassportMock::start("secret-v1", 5);
    let secrets = MemorySecrets::new("secret-v1", "v1");
    let source = managed_source(&passport.config(), secrets, RefreshSettings::default(), Arc::new(SystemClock));
    // The destination refuses any token that has expired by its own clock.
    let destination = RecordingServer::start(|seen, _| match bearer(seen).as_deref().and_then(jwt_exp) {
        Some(exp) if exp > unix_now() => Reply::json(200, json!({"ok": true})),
        _ => Reply::json(401, json!({"error": "invalid_token"})),
    })
    .await;
    let rt = runtime();
    let node = rt.load_file(&node_path("http-get")).expect("load");
    let grant = format!("{}=managed-identity", destination.origin());
    let audit = Arc::new(MemoryAuditSink::default());
    let tokens: Arc<dyn TokenSource> = source.clone();
    let mut long_run = policy(&[&grant]);
    long_run.max_requests = 10_000;
    let egress = RunEgress::new(long_run, tokens, audit, "exec-long");

    let started = Instant::now();
    let mut calls = 0;
    while started.elapsed() < Duration::from_secs(20) {
        let invocation = Invocation { context: context("http-get"), input: json!({"url": destination.url("/payroll")}), egress: egress.clone(), limits: None };
        let out = rt.run(&node, invocation).await.expect("node runs").output;
        assert_eq!(out["status"], 200, "call {calls} at {:?}: the node must never see a 401", started.elapsed());
        calls += 1;
        // Pace the calls like a node doing work between requests.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let seen = destination.seen();
    assert_eq!(seen.len(), calls, "no 401 replays were needed");
    let distinct: std::collections::HashSet<_> = seen.iter().filter_map(bearer).collect();
    let stats = source.stats();
    assert!(distinct.len() >= 5, "refreshed over 20 s of 5 s tokens: {} tokens", distinct.len());
    assert!(calls > 2 * distinct.len(), "tokens are reused: {calls} calls, {} tokens", distinct.len());
    assert!(stats.refreshed >= 4, "{stats:?}");
    assert_eq!(stats.failures, 0, "{stats:?}");
    assert_eq!(passport.token_requests().await, stats.token_requests);
}

#[tokio::test]
async fn a_401_causes_one_refresh_and_one_replay_and_a_403_reaches_the_node() {
    let passport = PassportMock::start("secret-v1", 3600);
    let secrets = MemorySecrets::new("secret-v1", "v1");
    let source = managed_source(&passport.config(), secrets, RefreshSettings::default(), Arc::new(SystemClock));
    let rt = runtime();
    let node = rt.load_file(&node_path("http-get")).expect("load");
    let run = |url: String, origin: String| {
        let tokens: Arc<dyn TokenSource> = source.clone();
        let egress = RunEgress::new(policy(&[&format!("{origin}=managed-identity")]), tokens, Arc::new(MemoryAuditSink::default()), "exec-1");
        let invocation = Invocation { context: context("http-get"), input: json!({"url": url}), egress, limits: None };
        let (rt, node) = (&rt, &node);
        async move { rt.run(node, invocation).await.expect("runs").output }
    };

    let always_401 = RecordingServer::start(|_, _| Reply::json(401, json!({"error": "invalid_token"}))).await;
    let out = run(always_401.url("/"), always_401.origin()).await;
    assert_eq!(out["status"], 401, "the replay's 401 reaches the node; no loop");
    let seen = always_401.seen();
    assert_eq!(seen.len(), 2, "original + one replay");
    assert_ne!(bearer(&seen[0]), bearer(&seen[1]), "the replay carries a newly minted token");
    assert_eq!(passport.token_requests().await, 2, "the first token, then exactly one refresh");

    let forbidden = RecordingServer::start(|_, _| Reply::json(403, json!({"error": "forbidden"}))).await;
    let out = run(forbidden.url("/"), forbidden.origin()).await;
    assert_eq!(out["status"], 403);
    assert_eq!(forbidden.seen().len(), 1, "no replay on 403");
    assert_eq!(passport.token_requests().await, 2, "and no new token");
}

//! The sandbox: real components from `nodes/`, limits always on, the host survives.

use flowstudio_host::runtime::RunError;
use flowstudio_host::token::TokenSource;
use flowstudio_tests::*;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn every_id_info_field_arrives_in_the_node() {
    let rt = runtime();
    let (result, _, id) = run_node(&rt, "hello", json!({"greeting": "hi"}), policy(&[])).await;
    let out = result.expect("hello runs").output;
    assert_eq!(out["message"], "hi, Local Developer");
    let ctx = &out["context"];
    assert_eq!(ctx["executionId"], "exec-1");
    assert_eq!(ctx["workflowId"], "wf-test");
    assert_eq!(ctx["nodeId"], "hello");
    assert_eq!(ctx["attempt"], 1);
    assert_eq!(ctx["triggeredBy"], "manual:tester");
    assert_eq!(ctx["scheduledTime"], "2026-12-25T06:00:00Z");
    assert_eq!(ctx["tenantId"], "dev-tenant");
    let actor = &ctx["actor"];
    assert_eq!(actor["userId"], "dev-client");
    assert_eq!(actor["tenantId"], "dev-tenant");
    assert_eq!(actor["clientId"], "dev-client");
    assert_eq!(actor["displayName"], "Local Developer");
    assert_eq!(actor["roles"], json!(["workflow.operator"]));
    assert_eq!(actor["scopes"], json!(["api.read"]));
    assert_eq!(actor["isServiceAccount"], true);
    assert_eq!(actor["managedIdentityId"], "mi-dev");
    let expiry = actor["tokenExpiresAt"].as_u64().expect("expiry");
    assert_eq!(expiry, id.tokens.id_info().token_expires_at, "the expiry of the token actually minted");
    assert!(expiry > 0);
}

#[tokio::test]
async fn node_logs_are_captured_and_bad_input_is_typed() {
    let rt = runtime();
    let (result, _, _) = run_node(&rt, "hello", json!({}), policy(&[])).await;
    let out = result.expect("runs");
    assert_eq!(out.logs.len(), 1);
    assert_eq!(out.logs[0].message, "greeting Local Developer");
    let (result, _, _) = run_node(&rt, "http-get", json!({"nope": 1}), policy(&[])).await;
    match result {
        Err(RunError::InvalidInput { node, message }) => {
            assert_eq!(node, "http-get");
            assert!(message.contains("url"), "{message}");
        }
        other => panic!("expected invalid input, got {other:?}"),
    }
}

async fn assert_host_still_runs(rt: &flowstudio_host::runtime::Runtime) {
    let (result, _, _) = run_node(rt, "hello", json!({}), policy(&[])).await;
    assert!(result.is_ok(), "another node must run fine after an attack: {result:?}");
}

#[tokio::test]
async fn infinite_loop_hits_the_deadline_within_budget() {
    let rt = runtime();
    let id = dev_identity();
    let node = rt.load_file(&node_path("misbehave")).unwrap();
    let audit = std::sync::Arc::new(flowstudio_host::audit::MemoryAuditSink::default());
    let egress = flowstudio_host::egress::RunEgress::new(policy(&[]), id.tokens.clone(), audit, "exec-loop");
    let mut limits = rt.default_limits();
    limits.deadline = Duration::from_millis(500);
    let started = Instant::now();
    let result = rt
        .run(&node, flowstudio_host::runtime::Invocation {
            context: context("misbehave"),
            input: json!({"attack": "loop"}),
            egress,
            limits: Some(limits),
        })
        .await;
    let elapsed = started.elapsed();
    match result {
        Err(RunError::DeadlineExceeded { limit_ms, .. }) => assert_eq!(limit_ms, 500),
        other => panic!("expected deadline error, got {other:?}"),
    }
    assert!(elapsed < Duration::from_millis(500 + 100), "stopped after {elapsed:?}");
    assert_host_still_runs(&rt).await;
}

#[tokio::test]
async fn memory_bomb_hits_the_memory_limit() {
    let rt = runtime();
    let (result, _, _) = run_node(&rt, "misbehave", json!({"attack": "memory"}), policy(&[])).await;
    match result {
        Err(RunError::MemoryLimit { limit_bytes, .. }) => assert_eq!(limit_bytes, 64 << 20),
        other => panic!("expected memory limit, got {other:?}"),
    }
    assert_host_still_runs(&rt).await;
}

#[tokio::test]
async fn deep_recursion_is_a_stack_error() {
    let rt = runtime();
    let (result, _, _) = run_node(&rt, "misbehave", json!({"attack": "recursion"}), policy(&[])).await;
    assert!(matches!(result, Err(RunError::StackOverflow { .. })), "got {result:?}");
    assert_host_still_runs(&rt).await;
}

#[tokio::test]
async fn oversized_output_hits_the_output_cap() {
    let rt = runtime();
    let (result, _, _) = run_node(&rt, "misbehave", json!({"attack": "output"}), policy(&[])).await;
    match result {
        Err(RunError::OutputTooLarge { limit, actual, .. }) => {
            assert_eq!(limit, 1 << 20);
            assert!(actual > limit);
        }
        other => panic!("expected output cap, got {other:?}"),
    }
    assert_host_still_runs(&rt).await;
}

#[tokio::test]
async fn log_volume_is_capped_not_fatal() {
    let rt = runtime();
    let (result, _, _) = run_node(&rt, "misbehave", json!({"attack": "logs"}), policy(&[])).await;
    let out = result.expect("a chatty node still finishes");
    let kept: usize = out.logs.iter().map(|l| l.message.len()).sum();
    assert!(kept <= 64 << 10, "kept {kept} bytes");
    assert!(out.logs_dropped > 0);
    assert_eq!(out.logs.len() as u64 + out.logs_dropped, 100_000);
}

#[tokio::test]
async fn a_node_sees_no_host_environment() {
    std::env::set_var("FLOWSTUDIO_TEST_SECRET", "do-not-leak");
    let rt = runtime();
    let (result, _, _) = run_node(&rt, "misbehave", json!({"attack": "env"}), policy(&[])).await;
    assert_eq!(result.expect("runs").output, json!([]));
}

#[tokio::test]
async fn filesystem_and_socket_guests_are_refused_at_load_naming_the_import() {
    let rt = runtime();
    for (guest, import) in [("fs-escape", "wasi:filesystem/"), ("net-escape", "wasi:sockets/")] {
        let err = match rt.load_file(&node_path(guest)) {
            Ok(_) => panic!("{guest} must be refused"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(import), "{guest}: {err}");
        assert!(err.contains("refused"), "{guest}: {err}");
    }
    assert_host_still_runs(&rt).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_runs_of_hello_succeed() {
    let rt = std::sync::Arc::new(runtime());
    let node = rt.load_file(&node_path("hello")).unwrap();
    let id = dev_identity();
    let mut tasks = Vec::new();
    for i in 0..100 {
        let rt = rt.clone();
        let node = node.clone();
        let tokens = id.tokens.clone();
        tasks.push(tokio::spawn(async move {
            let audit = std::sync::Arc::new(flowstudio_host::audit::MemoryAuditSink::default());
            let egress = flowstudio_host::egress::RunEgress::new(policy(&[]), tokens, audit, format!("exec-{i}"));
            let input = json!({"greeting": format!("hi {i}")});
            rt.run(&node, flowstudio_host::runtime::Invocation { context: context("hello"), input, egress, limits: None })
                .await
                .map(|o| o.output["message"].as_str().unwrap_or_default().to_string())
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap().expect("run"), format!("hi {i}, Local Developer"));
    }
    assert_eq!(id.tokens.minted(), 1, "one token serves all runs of the identity");
}

#[tokio::test]
async fn compiled_components_are_cached_by_digest() {
    let dir = tempdir();
    let config = || flowstudio_host::runtime::RuntimeConfig { cache_dir: Some(dir.clone()), ..Default::default() };
    let wasm = std::fs::read(node_path("hello")).unwrap();
    let rt = flowstudio_host::runtime::Runtime::new(config()).unwrap();
    let node = rt.load(&wasm).unwrap();
    assert!(node.digest.starts_with("sha256:"));
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(files.len(), 1);
    assert!(files[0].starts_with(node.digest.trim_start_matches("sha256:")), "{files:?}");
    // A second runtime loads from the cache and runs the same node.
    let rt2 = flowstudio_host::runtime::Runtime::new(config()).unwrap();
    let again = rt2.load(&wasm).unwrap();
    assert_eq!(again.digest, node.digest);
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("flowstudio-cache-test-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

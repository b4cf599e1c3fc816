use super::*;
use serde_json::json;

const D: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

fn errors(v: Value) -> Vec<(String, String)> {
    Workflow::from_json(&v).expect_err("invalid").into_iter().map(|e| (e.field, e.message)).collect()
}

#[test]
fn nodes_come_in_dependency_order_with_edges_merged() {
    let wf = Workflow::from_json(&json!({
        "id": "wf-1",
        "nodes": [
            {"id": "report", "component": D, "dependsOn": ["calc"]},
            {"id": "calc", "component": D, "grants": ["http://127.0.0.1:8080=managed-identity"]},
            {"id": "notify", "component": D},
        ],
        "edges": [{"from": "report", "to": "notify"}],
    }))
    .expect("valid");
    let order: Vec<&str> = wf.nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(order, ["calc", "report", "notify"]);
    assert_eq!(wf.node("notify").unwrap().depends_on, ["report"]);
    assert_eq!(wf.node("calc").unwrap().grants().len(), 1);
    assert_eq!(Workflow::from_json(&wf.to_json()).expect("round trip"), wf);
}

#[test]
fn each_problem_is_named() {
    let errs = errors(json!({
        "id": "wf 1",
        "nodes": [
            {"id": "a", "component": "sha256:abc", "grants": ["ftp://x"], "config": [1]},
            {"id": "a", "component": D, "dependsOn": ["ghost"], "extra": 1},
        ],
        "edges": [{"from": "a", "to": "nobody"}],
    }));
    let fields: Vec<&str> = errs.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        ["id", "nodes[0].component", "nodes[0].config", "nodes[0].grants[0]", "nodes[1].extra", "nodes[1].id", "nodes[1].dependsOn[0]", "edges[0].to"]
    );
    let errs = errors(json!({"id": "w", "nodes": [{"id": "a", "component": D}, {"id": "a", "component": D}]}));
    assert_eq!(errs, [("nodes[1].id".to_string(), "`a` is already the id of nodes[0]".to_string())]);
    assert_eq!(errors(json!({"id": "w", "nodes": []}))[0].0, "nodes");
}

#[test]
fn cycles_are_rejected_and_named() {
    let errs = errors(json!({"id": "w", "nodes": [
        {"id": "a", "component": D, "dependsOn": ["c"]},
        {"id": "b", "component": D, "dependsOn": ["a"]},
        {"id": "c", "component": D, "dependsOn": ["b"]},
        {"id": "free", "component": D},
    ]}));
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].0, "nodes");
    assert!(errs[0].1.starts_with("dependency cycle: "), "{}", errs[0].1);
    for id in ["a", "b", "c"] {
        assert!(errs[0].1.contains(id), "{}", errs[0].1);
    }
    assert!(!errs[0].1.contains("free"));
    let self_loop = errors(json!({"id": "w", "nodes": [{"id": "a", "component": D, "dependsOn": ["a"]}]}));
    assert_eq!(self_loop[0].1, "a node cannot depend on itself");
}

#[test]
fn node_input_overlays_config_and_adds_upstream() {
    let upstream = Map::from_iter([("calc".to_string(), json!({"total": 3}))]);
    let input = node_input(&json!({"month": "2026-12", "url": "from-input", "upstream": "lost"}), &json!({"url": "from-config"}), upstream);
    assert_eq!(input, json!({"month": "2026-12", "url": "from-config", "upstream": {"calc": {"total": 3}}}));
}

#[test]
fn the_component_store_is_content_addressed_and_checks_on_read() {
    let dir = std::env::temp_dir().join(format!("flowstudio-components-{}", rand::random::<u64>()));
    let store = ComponentStore::new(&dir);
    let digest = store.put(b"not really wasm").expect("put");
    assert_eq!(digest, crate::runtime::digest(b"not really wasm"));
    assert_eq!(store.put(b"not really wasm").expect("again"), digest);
    assert_eq!(store.get(&digest).expect("get"), b"not really wasm");
    assert!(matches!(store.get(D), Err(ComponentError::NotFound(_))));
    assert!(matches!(store.get("sha256:../../etc/passwd"), Err(ComponentError::BadDigest(_))));
    std::fs::write(dir.join(format!("{}.wasm", digest.replace(':', "-"))), b"swapped").unwrap();
    assert!(matches!(store.get(&digest), Err(ComponentError::Tampered { .. })));
    let _ = std::fs::remove_dir_all(dir);
}

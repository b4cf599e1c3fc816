//! What a component imports and exports, and whether this host can run it.

use serde::Serialize;
use wasmtime::component::Component;
use wasmtime::Engine;

/// Interfaces a node must never get: the host's files and raw sockets.
const FORBIDDEN_PREFIXES: &[&str] = &["wasi:filesystem/", "wasi:sockets/"];

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inspection {
    pub digest: String,
    pub world: &'static str,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    pub compatible: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

pub fn inspect(engine: &Engine, component: &Component, digest: String) -> Inspection {
    let ty = component.component_type();
    let imports: Vec<String> = ty.imports(engine).map(|(name, _)| name.to_string()).collect();
    let exports: Vec<String> = ty.exports(engine).map(|(name, _)| name.to_string()).collect();
    let mut problems: Vec<String> = imports
        .iter()
        .filter(|i| FORBIDDEN_PREFIXES.iter().any(|p| i.starts_with(p)))
        .map(|i| format!("imports `{i}`, which nodes are not given (no host files or raw sockets)"))
        .collect();
    if !exports.iter().any(|e| e == "run") {
        problems.push("does not export `run` of world `flowstudio:node/node@0.1.0`".into());
    }
    Inspection {
        digest,
        world: "flowstudio:node/node@0.1.0",
        compatible: problems.is_empty(),
        imports,
        exports,
        problems,
    }
}

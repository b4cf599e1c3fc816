//! Running a workflow: nodes in dependency order, one at a time, each through
//! [`Runtime::run`] (which makes the token fresh before the node starts).
//!
//! **What a node is given** (its JSON input): the workflow input object (the
//! schedule's rendered `inputData`), overlaid key by key with the node's
//! `config` (config wins), plus the key `upstream` holding the outputs of the
//! nodes it depends on directly, by node id:
//! ```json
//! { "payrollMonth": "2026-12", "employeesUrl": "https://…", "upstream": { "fetch": { … } } }
//! ```
//! `upstream` is reserved: it replaces a key of that name from input or config,
//! and is `{}` for a node without dependencies.
//!
//! **Egress.** Each node run gets its own [`RunEgress`] holding only *that node's*
//! grants (a node never borrows another node's capabilities), with the token source
//! and audit sink of the execution. Budgets therefore apply per node run.
//!
//! The first failing node stops the workflow; later nodes do not run.

use super::{ComponentError, ComponentStore, Workflow};
use crate::audit::{AuditActor, AuditEvent, AuditSink, NodeEvent, Outcome};
use crate::egress::{EgressPolicy, RunEgress};
use crate::runtime::{Invocation, LoadError, LoadedNode, RunContext, RunError, Runtime};
use crate::token::TokenSource;
use futures::future::BoxFuture;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error("node `{node}`: {source}")]
    Component { node: String, source: ComponentError },
    #[error("node `{node}`: {source}")]
    Load { node: String, source: LoadError },
    #[error(transparent)]
    Node(#[from] RunError),
}

impl WorkflowError {
    /// Whether another attempt may succeed (DESIGN §7): only transient node failures.
    pub fn is_transient(&self) -> bool {
        matches!(self, WorkflowError::Node(e) if e.is_transient())
    }

    /// The node that failed.
    pub fn node(&self) -> Option<&str> {
        match self {
            WorkflowError::Component { node, .. } | WorkflowError::Load { node, .. } => Some(node),
            WorkflowError::Node(_) => None,
        }
    }
}

/// One execution attempt of a workflow, apart from the workflow itself.
pub struct ExecuteRequest {
    pub execution_id: String,
    pub attempt: u32,
    /// `schedule:<name>`, `manual:<user>`, `backfill`, `cli:<user>`.
    pub triggered_by: String,
    /// Nominal fire time, RFC 3339.
    pub scheduled_time: Option<String>,
    pub input: Value,
    pub tokens: Arc<dyn TokenSource>,
    pub audit: Arc<dyn AuditSink>,
}

/// How one node ended.
#[derive(Debug, Clone)]
pub struct NodeReport {
    pub node_id: String,
    /// The node's output, or the error message.
    pub result: Result<Value, String>,
    pub duration: Duration,
}

/// Told about each node as it finishes (to record results as they happen).
pub trait NodeObserver: Send + Sync {
    fn node_finished<'a>(&'a self, report: &'a NodeReport) -> BoxFuture<'a, ()>;
}

#[derive(Debug, Clone)]
pub struct WorkflowRun {
    /// The nodes that ran, in order.
    pub nodes: Vec<NodeReport>,
    /// Every node's output by node id.
    pub output: Value,
}

pub struct WorkflowExecutor {
    runtime: Arc<Runtime>,
    components: ComponentStore,
    base_policy: EgressPolicy,
    loaded: Mutex<HashMap<String, Arc<LoadedNode>>>,
}

impl WorkflowExecutor {
    /// `base_policy` gives budgets and switches; its grants are ignored (they come from each node).
    pub fn new(runtime: Arc<Runtime>, components: ComponentStore, base_policy: EgressPolicy) -> WorkflowExecutor {
        WorkflowExecutor { runtime, components, base_policy, loaded: Mutex::new(HashMap::new()) }
    }

    pub fn components(&self) -> &ComponentStore {
        &self.components
    }

    fn load(&self, node: &str, digest: &str) -> Result<Arc<LoadedNode>, WorkflowError> {
        if let Some(found) = self.loaded.lock().ok().and_then(|m| m.get(digest).cloned()) {
            return Ok(found);
        }
        let wasm = self.components.get(digest).map_err(|source| WorkflowError::Component { node: node.to_string(), source })?;
        let loaded = self.runtime.load(&wasm).map_err(|source| WorkflowError::Load { node: node.to_string(), source })?;
        if let Ok(mut map) = self.loaded.lock() {
            map.insert(digest.to_string(), loaded.clone());
        }
        Ok(loaded)
    }

    /// Run every node of `workflow` once, in order. On failure, the error and the nodes
    /// that ran (the last one failed) are returned.
    pub async fn execute(
        &self,
        workflow: &Workflow,
        request: ExecuteRequest,
        observer: Option<&dyn NodeObserver>,
    ) -> Result<WorkflowRun, (WorkflowError, Vec<NodeReport>)> {
        let mut outputs: Map<String, Value> = Map::new();
        let mut reports = Vec::with_capacity(workflow.nodes.len());
        let tenant_id = request.tokens.id_info().tenant_id;
        for node in &workflow.nodes {
            let started = std::time::Instant::now();
            // The token was made fresh for the previous node (or the trigger); its actor is current.
            let node_event = |outcome, reason, duration_ms| NodeEvent {
                actor: AuditActor::from_id_info(&request.tokens.id_info()),
                execution_id: request.execution_id.clone(),
                workflow_id: workflow.id.clone(),
                node_id: node.id.clone(),
                attempt: request.attempt,
                outcome,
                reason,
                duration_ms,
            };
            request.audit.record(AuditEvent::NodeStarted(node_event(Outcome::Success, None, None)));
            let result = async {
                let loaded = self.load(&node.id, &node.component)?;
                let upstream: Map<String, Value> =
                    node.depends_on.iter().filter_map(|d| outputs.get(d).map(|o| (d.clone(), o.clone()))).collect();
                let policy = EgressPolicy { grants: node.grants(), ..self.base_policy.clone() };
                let egress = RunEgress::new(policy, request.tokens.clone(), request.audit.clone(), request.execution_id.clone());
                let invocation = Invocation {
                    context: RunContext {
                        execution_id: request.execution_id.clone(),
                        workflow_id: workflow.id.clone(),
                        node_id: node.id.clone(),
                        attempt: request.attempt,
                        triggered_by: request.triggered_by.clone(),
                        scheduled_time: request.scheduled_time.clone(),
                        tenant_id: tenant_id.clone(),
                    },
                    input: node_input(&request.input, &node.config, upstream),
                    egress,
                    limits: node.limits,
                };
                Ok::<_, WorkflowError>(self.runtime.run(&loaded, invocation).await?)
            }
            .await;
            let report = NodeReport {
                node_id: node.id.clone(),
                result: result.as_ref().map(|o| o.output.clone()).map_err(|e| e.to_string()),
                duration: started.elapsed(),
            };
            let (outcome, reason) = match &report.result {
                Ok(_) => (Outcome::Success, None),
                Err(e) => (Outcome::Failure, Some(e.clone())),
            };
            let duration_ms = Some(report.duration.as_millis() as u64);
            request.audit.record(AuditEvent::NodeFinished(node_event(outcome, reason, duration_ms)));
            if let Some(observer) = observer {
                observer.node_finished(&report).await;
            }
            reports.push(report);
            match result {
                Ok(out) => {
                    outputs.insert(node.id.clone(), out.output);
                }
                Err(e) => return Err((e, reports)),
            }
        }
        Ok(WorkflowRun { nodes: reports, output: Value::Object(outputs) })
    }
}

/// The input of one node: workflow input, overlaid with config, plus `upstream`.
pub fn node_input(workflow_input: &Value, config: &Value, upstream: Map<String, Value>) -> Value {
    let mut input = match workflow_input {
        Value::Object(map) => map.clone(),
        Value::Null => Map::new(),
        other => Map::from_iter([("input".to_string(), other.clone())]),
    };
    if let Value::Object(config) = config {
        input.extend(config.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    input.insert("upstream".into(), Value::Object(upstream));
    Value::Object(input)
}

//! The ready [`FiringHandler`]: runs the schedule's workflow with the node
//! runtime and records each node's result in the state store.
//!
//! Where the token comes from is the [`TokenSourceFactory`] seam: the trigger
//! sequence (identity → secret → token → IDInfo → guard) plugs in there and
//! answers with the execution's token source or a typed [`Failure`]
//! (`rejected` for a disabled identity or a denial, `transient` for an
//! unavailable secret store or token endpoint). [`FixedTokenSource`] serves one
//! source for every firing (development and tests).

use super::{ExecutionOutcome, Failure, Firing, FiringHandler};
use crate::audit::AuditSink;
use crate::schedule::{render, rfc3339};
use crate::state::{NodeResult, StateStore};
use crate::token::TokenSource;
use crate::workflow::{ExecuteRequest, NodeObserver, NodeReport, WorkflowExecutor};
use futures::future::BoxFuture;
use std::sync::Arc;

/// Gives each attempt of a firing the token source it runs with.
pub trait TokenSourceFactory: Send + Sync {
    fn token_source<'a>(&'a self, firing: &'a Firing) -> BoxFuture<'a, Result<Arc<dyn TokenSource>, Failure>>;
}

/// The same token source for every firing.
pub struct FixedTokenSource(pub Arc<dyn TokenSource>);

impl TokenSourceFactory for FixedTokenSource {
    fn token_source<'a>(&'a self, _firing: &'a Firing) -> BoxFuture<'a, Result<Arc<dyn TokenSource>, Failure>> {
        Box::pin(std::future::ready(Ok(self.0.clone())))
    }
}

pub struct WorkflowHandler {
    store: Arc<dyn StateStore>,
    executor: Arc<WorkflowExecutor>,
    tokens: Arc<dyn TokenSourceFactory>,
    audit: Arc<dyn AuditSink>,
}

impl WorkflowHandler {
    pub fn new(
        store: Arc<dyn StateStore>,
        executor: Arc<WorkflowExecutor>,
        tokens: Arc<dyn TokenSourceFactory>,
        audit: Arc<dyn AuditSink>,
    ) -> WorkflowHandler {
        WorkflowHandler { store, executor, tokens, audit }
    }

    async fn attempt(&self, firing: Firing) -> Result<serde_json::Value, Failure> {
        let spec = &firing.schedule.spec;
        let workflow = match self.store.get_workflow(&spec.workflow_id).await {
            Ok(Some(w)) => w,
            Ok(None) => return Err(Failure::permanent(format!("workflow `{}` does not exist", spec.workflow_id))),
            Err(e) => return Err(Failure::transient(e.to_string())),
        };
        let vars = firing.template_vars().map_err(|e| Failure::permanent(e.to_string()))?;
        let input = render(&spec.input_data, &vars).map_err(|e| Failure::permanent(e.to_string()))?;
        let tokens = self.tokens.token_source(&firing).await?;
        let request = ExecuteRequest {
            execution_id: firing.execution_id.clone(),
            attempt: firing.attempt,
            triggered_by: firing.triggered_by(),
            scheduled_time: Some(rfc3339::format(&firing.nominal_time)),
            input,
            tokens,
            audit: self.audit.clone(),
        };
        let recorder = Recorder { store: self.store.clone(), execution_id: firing.execution_id.clone(), attempt: firing.attempt };
        match self.executor.execute(&workflow, request, Some(&recorder)).await {
            Ok(run) => Ok(run.output),
            Err((error, _)) if error.is_transient() => Err(Failure::transient(error.to_string())),
            Err((error, _)) => Err(Failure::permanent(error.to_string())),
        }
    }
}

impl FiringHandler for WorkflowHandler {
    fn run(&self, firing: Firing) -> BoxFuture<'_, ExecutionOutcome> {
        Box::pin(async move {
            match self.attempt(firing).await {
                Ok(output) => ExecutionOutcome::Succeeded { output },
                Err(failure) => ExecutionOutcome::Failed(failure),
            }
        })
    }
}

/// Writes each node's result as soon as the node ends.
struct Recorder {
    store: Arc<dyn StateStore>,
    execution_id: String,
    attempt: u32,
}

impl NodeObserver for Recorder {
    fn node_finished<'a>(&'a self, report: &'a NodeReport) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let (status, output, error) = match &report.result {
                Ok(out) => ("succeeded", Some(out.clone()), None),
                Err(e) => ("failed", None, Some(e.clone())),
            };
            let result = NodeResult {
                execution_id: self.execution_id.clone(),
                attempt: self.attempt,
                node_id: report.node_id.clone(),
                status: status.to_string(),
                output,
                error,
                duration_ms: report.duration.as_millis() as u64,
            };
            if let Err(e) = self.store.record_node_result(result).await {
                tracing::error!(execution = %self.execution_id, node = %report.node_id, "node result could not be recorded: {e}");
            }
        })
    }
}

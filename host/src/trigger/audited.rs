//! Audit events of the execution lifecycle around any [`FiringHandler`]:
//! `schedule.fired` (first attempt), `execution.started`, and how it ended.
//! Token, secret, guard, node and egress events come from their own steps,
//! so a full run reads in order: fired, started, secret read, token minted,
//! node started, egress call, node finished, succeeded.

use crate::audit::{AuditActor, AuditEvent, AuditSink, ExecutionEvent, FiringEvent, Outcome};
use crate::scheduler::{ExecutionOutcome, FailureKind, Firing, FiringHandler};
use crate::schedule::rfc3339;
use futures::future::BoxFuture;
use std::sync::Arc;

pub struct AuditedHandler {
    inner: Arc<dyn FiringHandler>,
    audit: Arc<dyn AuditSink>,
}

impl AuditedHandler {
    pub fn new(inner: Arc<dyn FiringHandler>, audit: Arc<dyn AuditSink>) -> AuditedHandler {
        AuditedHandler { inner, audit }
    }
}

impl FiringHandler for AuditedHandler {
    fn run(&self, firing: Firing) -> BoxFuture<'_, ExecutionOutcome> {
        Box::pin(async move {
            let spec = &firing.schedule.spec;
            let actor = AuditActor::managed_identity(&spec.managed_identity_id);
            let triggered_by = firing.triggered_by();
            if firing.attempt == 1 {
                self.audit.record(AuditEvent::Fired(FiringEvent {
                    schedule_id: firing.schedule.id.clone(),
                    workflow_id: spec.workflow_id.clone(),
                    managed_identity_id: spec.managed_identity_id.clone(),
                    nominal_time: rfc3339::format(&firing.nominal_time),
                    triggered_by: triggered_by.clone(),
                    execution_id: Some(firing.execution_id.clone()),
                    outcome: Outcome::Success,
                    reason: None,
                }));
            }
            let event = |reason: Option<String>| ExecutionEvent {
                actor: actor.clone(),
                execution_id: firing.execution_id.clone(),
                workflow_id: spec.workflow_id.clone(),
                triggered_by: triggered_by.clone(),
                attempt: firing.attempt,
                reason,
            };
            self.audit.record(AuditEvent::ExecutionStarted(event(None)));
            let outcome = self.inner.run(firing.clone()).await;
            match &outcome {
                ExecutionOutcome::Succeeded { .. } => self.audit.record(AuditEvent::ExecutionSucceeded(event(None))),
                // The guard already wrote the rejection with the rule that denied.
                ExecutionOutcome::Failed(f) if f.kind == FailureKind::Rejected => {}
                ExecutionOutcome::Failed(f) => self.audit.record(AuditEvent::ExecutionFailed(event(Some(f.reason.clone())))),
            }
            outcome
        })
    }
}

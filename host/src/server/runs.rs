//! How `serve` gives each firing its identity: steps 1–5 of the trigger
//! sequence (DESIGN §2) behind the scheduler's [`TokenSourceFactory`] seam,
//! and the audit events of firings and executions, translated from the
//! scheduler's [`EngineEvent`]s.
//!
//! 1. resolve the managed identity (missing or disabled: rejected, no token);
//! 2.–4. a [`ManagedTokenSource`] per (identity, secret reference), kept
//!    across firings so its cached token is reused: it reads the secret,
//!    mints at the passport, verifies the JWT into IDInfo;
//! 5. the access guard (`workflow.execute` + the workflow's policy); a
//!    denial is audited (`authorization.failure`, `execution.rejected`) and
//!    the execution rejected.

use crate::audit::{AuditActor, AuditEvent, AuditSink, ExecutionEvent, FiringEvent, Outcome, TokenEvent};
use crate::guard::{AccessGuard, WORKFLOW_EXECUTE};
use crate::identity::{IdentityError, IdentityRegistry};
use crate::scheduler::{EngineEvent, Failure, Firing, TokenSourceFactory};
use crate::secrets::SecretsProvider;
use crate::state::{ExecutionStatus, StateStore};
use crate::token::{IdInfoVerifier, ManagedIdentity, ManagedTokenSource, PassportConfig, TokenError, TokenSource};
use crate::clock::Clock;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub struct IdentityRuns {
    pub registry: Arc<IdentityRegistry>,
    pub secrets: Arc<dyn SecretsProvider>,
    pub passport: PassportConfig,
    pub verifier: Arc<IdInfoVerifier>,
    pub guard: AccessGuard,
    pub store: Arc<dyn StateStore>,
    pub audit: Arc<dyn AuditSink>,
    pub clock: Arc<dyn Clock>,
    sources: Mutex<HashMap<(String, String), Arc<ManagedTokenSource>>>,
}

impl IdentityRuns {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        registry: Arc<IdentityRegistry>,
        secrets: Arc<dyn SecretsProvider>,
        passport: PassportConfig,
        verifier: Arc<IdInfoVerifier>,
        guard: AccessGuard,
        store: Arc<dyn StateStore>,
        audit: Arc<dyn AuditSink>,
        clock: Arc<dyn Clock>,
    ) -> IdentityRuns {
        IdentityRuns { registry, secrets, passport, verifier, guard, store, audit, clock, sources: Mutex::default() }
    }

    /// Tokens minted and refreshed by every identity so far (for `/metrics`).
    pub fn token_counts(&self) -> (u64, u64, u64) {
        let sources = self.sources.lock().map(|s| s.values().cloned().collect::<Vec<_>>()).unwrap_or_default();
        sources.iter().map(|s| s.stats()).fold((0, 0, 0), |(m, r, f), s| (m + s.minted, r + s.refreshed, f + s.failures))
    }

    fn source_for(&self, identity: ManagedIdentity) -> Result<Arc<ManagedTokenSource>, Failure> {
        let key = (identity.managed_identity_id.clone(), identity.secret_reference.to_string());
        let mut sources = self.sources.lock().map_err(|_| Failure::transient("token source cache lock poisoned"))?;
        if let Some(source) = sources.get(&key) {
            return Ok(source.clone());
        }
        let source = ManagedTokenSource::for_passport(identity, self.secrets.clone(), &self.passport, self.verifier.clone(), self.clock.clone())
            .map_err(|e| Failure::permanent(e.to_string()))?;
        let source = Arc::new(source);
        sources.insert(key, source.clone());
        Ok(source)
    }

    async fn prepare(&self, firing: &Firing) -> Result<Arc<dyn TokenSource>, Failure> {
        let spec = &firing.schedule.spec;
        let identity = match self.registry.resolve(&spec.managed_identity_id) {
            Ok(identity) => identity,
            Err(e @ (IdentityError::NotFound(_) | IdentityError::Disabled(_))) => {
                self.audit.record(AuditEvent::ExecutionRejected(ExecutionEvent {
                    actor: AuditActor::managed_identity(&spec.managed_identity_id),
                    execution_id: firing.execution_id.clone(),
                    workflow_id: spec.workflow_id.clone(),
                    triggered_by: firing.triggered_by(),
                    attempt: firing.attempt,
                    reason: Some(e.to_string()),
                }));
                return Err(Failure::rejected(e.to_string()));
            }
            Err(e) => return Err(Failure::transient(e.to_string())),
        };
        let source = self.source_for(ManagedIdentity {
            managed_identity_id: identity.id.clone(),
            client_id: identity.client_id.clone(),
            secret_reference: spec.secret_reference.clone(),
        })?;
        let token = match source.token(None).await {
            Ok(token) => token,
            Err(e) => {
                self.audit.record(AuditEvent::TokenMinted(TokenEvent {
                    actor: AuditActor::managed_identity(&identity.id),
                    execution_id: Some(firing.execution_id.clone()),
                    audience: None,
                    expires_at: 0,
                    outcome: Outcome::Failure,
                    reason: Some(e.to_string()),
                }));
                return Err(token_failure(e));
            }
        };
        let workflow = match self.store.get_workflow(&spec.workflow_id).await {
            Ok(Some(w)) => w,
            Ok(None) => return Err(Failure::permanent(format!("workflow `{}` does not exist", spec.workflow_id))),
            Err(e) => return Err(Failure::transient(e.to_string())),
        };
        if let Err(denial) = self.guard.authorize(&token.id_info, WORKFLOW_EXECUTE, &workflow.id, &workflow.access_policy) {
            self.audit.record(denial.audit_event(Some(&firing.execution_id)));
            self.audit.record(denial.rejection_event(&firing.execution_id, &firing.triggered_by(), firing.attempt));
            return Err(Failure::rejected(format!("403 {}: {denial}", crate::guard::Denial::CODE)));
        }
        self.audit.record(AuditEvent::ExecutionStarted(ExecutionEvent {
            actor: AuditActor::from_id_info(&token.id_info),
            execution_id: firing.execution_id.clone(),
            workflow_id: workflow.id.clone(),
            triggered_by: firing.triggered_by(),
            attempt: firing.attempt,
            reason: None,
        }));
        Ok(source)
    }
}

fn token_failure(e: TokenError) -> Failure {
    if e.is_transient() {
        Failure::transient(e.to_string())
    } else {
        Failure::permanent(e.to_string())
    }
}

impl TokenSourceFactory for IdentityRuns {
    fn token_source<'a>(&'a self, firing: &'a Firing) -> BoxFuture<'a, Result<Arc<dyn TokenSource>, Failure>> {
        Box::pin(self.prepare(firing))
    }
}

/// Audit what the engine does: `schedule.fired` for each claimed firing and
/// the end of each execution, each naming the schedule's managed identity.
/// Runs until the scheduler's event stream closes.
pub async fn audit_engine_events(
    mut events: tokio::sync::broadcast::Receiver<EngineEvent>,
    store: Arc<dyn StateStore>,
    audit: Arc<dyn AuditSink>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(target: "flowstudio::server", "audit bridge missed {n} engine events");
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        match event {
            EngineEvent::Claimed { execution_id, schedule_id, nominal_time, trigger } => {
                let Ok(Some(schedule)) = store.get_schedule(&schedule_id).await else { continue };
                audit.record(AuditEvent::Fired(FiringEvent {
                    schedule_id,
                    workflow_id: schedule.spec.workflow_id.clone(),
                    managed_identity_id: schedule.spec.managed_identity_id.clone(),
                    nominal_time: crate::schedule::rfc3339::format(&nominal_time),
                    triggered_by: trigger.to_string(),
                    execution_id: Some(execution_id),
                    outcome: Outcome::Success,
                    reason: None,
                }));
            }
            EngineEvent::Finished { execution_id, status, error } => {
                let Ok(Some(execution)) = store.get_execution(&execution_id).await else { continue };
                let Ok(Some(schedule)) = store.get_schedule(&execution.schedule_id).await else { continue };
                let event = ExecutionEvent {
                    actor: AuditActor::managed_identity(&schedule.spec.managed_identity_id),
                    execution_id,
                    workflow_id: execution.workflow_id.clone(),
                    triggered_by: execution.triggered_by.to_string(),
                    attempt: execution.attempt,
                    reason: error,
                };
                match status {
                    ExecutionStatus::Succeeded => audit.record(AuditEvent::ExecutionSucceeded(event)),
                    // A rejection was audited with its rule where it happened.
                    ExecutionStatus::Rejected => {}
                    ExecutionStatus::Failed | ExecutionStatus::Interrupted => audit.record(AuditEvent::ExecutionFailed(event)),
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

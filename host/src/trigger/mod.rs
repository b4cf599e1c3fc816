//! The trigger sequence (DESIGN §2): what happens between a schedule firing
//! and its workflow's first node.
//!
//! 1. resolve the managed identity (it must exist and be enabled);
//! 2. read its client secret through the schedule's `secretReference`;
//! 3. mint a token at the passport (client credentials);
//! 4. verify it into the `IdInfo` every node sees;
//! 5. authorize: `workflow.execute` through the identity's roles, and the
//!    workflow's access policy must not deny it;
//! 6. execute (the scheduler's [`WorkflowHandler`](crate::scheduler::WorkflowHandler)).
//!
//! Steps 2–4 live in one [`ManagedTokenSource`] per (identity, secret
//! reference), kept across executions so a token minted for one run serves
//! the next while it is fresh, and refreshed before each node and each call.
//! [`IdentityPipeline`] plugs steps 1–5 into the scheduler as its
//! [`TokenSourceFactory`]; [`IdentityPipeline::check`] is the same sequence as
//! a dry run (`flowstudio identity check`).

mod audited;

pub use audited::AuditedHandler;

use crate::audit::AuditSink;
use crate::clock::Clock;
use crate::guard::{AccessGuard, ResourcePolicy, WORKFLOW_EXECUTE};
use crate::identity::{IdInfo, IdentityError, IdentityRegistry};
use crate::scheduler::{Failure, Firing, TokenSourceFactory};
use crate::secrets::{SecretReference, SecretsProvider};
use crate::state::StateStore;
use crate::token::{IdInfoVerifier, ManagedIdentity, ManagedTokenSource, PassportConfig, TokenError, TokenSource};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Which step of the trigger sequence failed, and why. Never holds a secret or token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    #[error("step 1 (managed identity): {0}")]
    Identity(String),
    /// Steps 2–4, named by what went wrong: the secret (2), the passport's
    /// refusal (3); an unacceptable answer (not a token, or one that fails
    /// verification) is 3–4 and an unreachable store, passport or key set
    /// 2–4, their reasons say which.
    #[error("{step}: {0}", step = token_step(.0))]
    Token(TokenError),
    #[error("step 5 (access guard): {0}")]
    Denied(String),
    #[error("workflow `{0}` does not exist")]
    UnknownWorkflow(String),
    #[error("state store: {0}")]
    State(String),
}

/// The step of the trigger sequence a token error belongs to.
fn token_step(error: &TokenError) -> &'static str {
    match error {
        TokenError::Secret { .. } => "step 2 (client secret)",
        TokenError::Rejected { .. } => "step 3 (token)",
        TokenError::InvalidToken { .. } => "steps 3-4 (token, IDInfo)",
        TokenError::Unavailable { .. } => "steps 2-4 (secret, token, IDInfo)",
    }
}

impl TriggerError {
    /// How the scheduler should record it: transient errors are retried,
    /// denials are rejections (403), the rest fail the execution for good.
    pub fn into_failure(self) -> Failure {
        match &self {
            TriggerError::Token(e) if e.is_transient() => Failure::transient(self.to_string()),
            TriggerError::State(_) => Failure::transient(self.to_string()),
            TriggerError::Denied(_) => Failure::rejected(self.to_string()),
            _ => Failure::permanent(self.to_string()),
        }
    }
}

/// Steps 1–5 for every firing, with one token source per (identity, secret reference).
pub struct IdentityPipeline {
    identities: Arc<IdentityRegistry>,
    secrets: Arc<dyn SecretsProvider>,
    passport: PassportConfig,
    verifier: Arc<IdInfoVerifier>,
    guard: AccessGuard,
    store: Arc<dyn StateStore>,
    audit: Arc<dyn AuditSink>,
    clock: Arc<dyn Clock>,
    sources: Mutex<HashMap<(String, String, SecretReference), Arc<ManagedTokenSource>>>,
}

impl IdentityPipeline {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        identities: Arc<IdentityRegistry>,
        secrets: Arc<dyn SecretsProvider>,
        passport: PassportConfig,
        verifier: Arc<IdInfoVerifier>,
        guard: AccessGuard,
        store: Arc<dyn StateStore>,
        audit: Arc<dyn AuditSink>,
        clock: Arc<dyn Clock>,
    ) -> IdentityPipeline {
        IdentityPipeline { identities, secrets, passport, verifier, guard, store, audit, clock, sources: Mutex::new(HashMap::new()) }
    }

    /// Steps 1–4 as a dry run: the identity's `IdInfo`, or the step that failed.
    pub async fn check(&self, identity_id: &str, reference: &SecretReference) -> Result<IdInfo, TriggerError> {
        let source = self.token_source_for(identity_id, reference)?;
        let token = source.token(None).await.map_err(TriggerError::Token)?;
        Ok(token.id_info)
    }

    /// Step 5 for `actor` on `workflow_id` (scheduled runs: the identity; manual runs: the caller too).
    pub async fn authorize(&self, actor: &IdInfo, workflow_id: &str, execution: Option<(&str, &str, u32)>) -> Result<(), TriggerError> {
        let workflow = match self.store.get_workflow(workflow_id).await {
            Ok(Some(w)) => w,
            Ok(None) => return Err(TriggerError::UnknownWorkflow(workflow_id.to_string())),
            Err(e) => return Err(TriggerError::State(e.to_string())),
        };
        self.authorize_with(actor, workflow_id, &workflow.access_policy, execution)
    }

    fn authorize_with(
        &self,
        actor: &IdInfo,
        workflow_id: &str,
        policy: &ResourcePolicy,
        execution: Option<(&str, &str, u32)>,
    ) -> Result<(), TriggerError> {
        match self.guard.authorize(actor, WORKFLOW_EXECUTE, workflow_id, policy) {
            Ok(_) => Ok(()),
            Err(denial) => {
                self.audit.record(denial.audit_event(execution.map(|(id, _, _)| id)));
                if let Some((id, triggered_by, attempt)) = execution {
                    self.audit.record(denial.rejection_event(id, triggered_by, attempt));
                }
                Err(TriggerError::Denied(denial.to_string()))
            }
        }
    }

    /// Step 1, then the (cached) token source of that identity and secret reference.
    fn token_source_for(&self, identity_id: &str, reference: &SecretReference) -> Result<Arc<ManagedTokenSource>, TriggerError> {
        let identity = self.identities.resolve(identity_id).map_err(|e| match e {
            IdentityError::NotFound(_) | IdentityError::Disabled(_) => TriggerError::Identity(e.to_string()),
            other => TriggerError::State(other.to_string()),
        })?;
        // The client id is part of the key: an identity re-created under another client gets a new source.
        let key = (identity.id.clone(), identity.client_id.clone(), reference.clone());
        let mut sources = self.sources.lock().map_err(|_| TriggerError::State("token source cache lock poisoned".into()))?;
        if let Some(found) = sources.get(&key) {
            return Ok(found.clone());
        }
        let managed = ManagedIdentity {
            managed_identity_id: identity.id,
            client_id: identity.client_id,
            secret_reference: reference.clone(),
        };
        let source = ManagedTokenSource::for_passport(managed, self.secrets.clone(), &self.passport, self.verifier.clone(), self.clock.clone())
            .map_err(|e| TriggerError::Token(TokenError::Unavailable { identity: identity_id.to_string(), reason: e.to_string() }))?;
        source.set_audit(self.audit.clone());
        let source = Arc::new(source);
        sources.insert(key, source.clone());
        Ok(source)
    }

    async fn prepare(&self, firing: &Firing) -> Result<Arc<dyn TokenSource>, TriggerError> {
        let spec = &firing.schedule.spec;
        let source = self.token_source_for(&spec.managed_identity_id, &spec.secret_reference)?;
        let token = source.token(None).await.map_err(TriggerError::Token)?;
        let triggered_by = firing.triggered_by();
        self.authorize(&token.id_info, &spec.workflow_id, Some((&firing.execution_id, &triggered_by, firing.attempt))).await?;
        Ok(source)
    }
}

impl TokenSourceFactory for IdentityPipeline {
    fn token_source<'a>(&'a self, firing: &'a Firing) -> BoxFuture<'a, Result<Arc<dyn TokenSource>, Failure>> {
        Box::pin(async move { self.prepare(firing).await.map_err(TriggerError::into_failure) })
    }
}

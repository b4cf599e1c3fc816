//! The audit events of DESIGN §8 and the common shape every one of them has:
//! actor, action, target, execution id, outcome, reason (the time is stamped
//! by the sink when the event is recorded).
//!
//! No field of any event has the type [`crate::secret::Secret`], and every
//! event derives `Serialize`, which `Secret` does not implement: an event that
//! tried to carry a secret would not compile. Free-text fields (targets,
//! reasons, destinations) are passed through [`super::scrub`] on the way into
//! a record, so a URL loses its query string even when a caller forgot.

use crate::identity::IdInfo;
use serde::{Deserialize, Serialize};

/// Who did it: a managed identity, a service account, a person, or the host itself.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditActor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_identity_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    pub service_account: bool,
}

impl AuditActor {
    /// The actor of a run or a call, from its (verified) identity.
    pub fn from_id_info(info: &IdInfo) -> AuditActor {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        AuditActor {
            managed_identity_id: info.managed_identity_id.clone().filter(|s| !s.is_empty()),
            client_id: some(&info.client_id),
            user_id: some(&info.user_id),
            tenant_id: some(&info.tenant_id),
            service_account: info.is_service_account,
        }
    }

    /// A managed identity known only by id (before its token exists, e.g. a failed firing).
    pub fn managed_identity(id: impl Into<String>) -> AuditActor {
        AuditActor { managed_identity_id: Some(id.into()), service_account: true, ..Default::default() }
    }

    /// A person, e.g. an admin calling the API.
    pub fn user(id: impl Into<String>) -> AuditActor {
        AuditActor { user_id: Some(id.into()), ..Default::default() }
    }

    /// The host itself (the scheduler firing a schedule).
    pub fn system() -> AuditActor {
        AuditActor::default()
    }

    /// The one name audit queries match on: the managed identity id, else the
    /// user id, else the client id, else `system`.
    pub fn id(&self) -> &str {
        self.managed_identity_id
            .as_deref()
            .or(self.user_id.as_deref())
            .or(self.client_id.as_deref())
            .unwrap_or("system")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Success,
    Failure,
    /// Refused by a rule (access guard, egress grant): 403 semantics.
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

/// One outbound call of a node, allowed or not. Never holds a token or a query string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EgressEvent {
    pub execution_id: String,
    pub node_id: String,
    /// Who the call was made for: the run's identity as of its current token.
    pub actor: AuditActor,
    pub method: String,
    /// `scheme://host:port`, no path or query.
    pub destination: String,
    pub status: Option<u16>,
    pub response_bytes: u64,
    pub latency_ms: u64,
    pub decision: EgressDecision,
    pub token_attached: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "reason", rename_all = "kebab-case")]
pub enum EgressDecision {
    Allowed,
    Denied(String),
    Failed(String),
}

/// A schedule was created, updated or deleted (through the API or config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleEvent {
    pub actor: AuditActor,
    pub schedule_id: String,
    pub workflow_id: String,
    pub name: String,
    pub managed_identity_id: String,
}

/// A schedule fired (or was triggered by hand) for one nominal time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FiringEvent {
    pub schedule_id: String,
    pub workflow_id: String,
    pub managed_identity_id: String,
    /// RFC 3339, the nominal fire time.
    pub nominal_time: String,
    /// `schedule:<name>`, `manual:<user>`, `backfill:<user>`…
    pub triggered_by: String,
    /// The execution it started; `None` when the firing failed before one existed.
    pub execution_id: Option<String>,
    pub outcome: Outcome,
    pub reason: Option<String>,
}

/// An execution started, succeeded, failed or was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionEvent {
    pub actor: AuditActor,
    pub execution_id: String,
    pub workflow_id: String,
    pub triggered_by: String,
    pub attempt: u32,
    /// Why it failed or was rejected (for a rejection: the denying rule).
    pub reason: Option<String>,
}

/// A node of an execution started or finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeEvent {
    pub actor: AuditActor,
    pub execution_id: String,
    pub workflow_id: String,
    pub node_id: String,
    pub attempt: u32,
    /// For `node.finished`: how it ended; `success` for `node.started`.
    pub outcome: Outcome,
    pub reason: Option<String>,
    pub duration_ms: Option<u64>,
}

/// A token was minted or refreshed for an identity. Never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenEvent {
    pub actor: AuditActor,
    pub execution_id: Option<String>,
    /// The audience/scope asked for, if any.
    pub audience: Option<String>,
    /// Unix seconds; 0 when minting failed.
    pub expires_at: u64,
    pub outcome: Outcome,
    pub reason: Option<String>,
}

/// A client secret was read from a store. The provider and the reference, never the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretReadEvent {
    /// The identity whose secret it is.
    pub actor: AuditActor,
    pub execution_id: Option<String>,
    pub provider: String,
    /// The reference's `Display` (vault, name, version), which never contains the value.
    pub reference: String,
    /// The version the store answered with, when it says.
    pub version: Option<String>,
    pub outcome: Outcome,
    pub reason: Option<String>,
}

impl SecretReadEvent {
    /// The event for a read through `reference`.
    pub fn new(actor: AuditActor, reference: &crate::secrets::SecretReference, outcome: Outcome) -> SecretReadEvent {
        SecretReadEvent {
            actor,
            execution_id: None,
            provider: reference.provider().to_string(),
            reference: reference.to_string(),
            version: None,
            outcome,
            reason: None,
        }
    }
}

/// The access guard refused an action (403).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationEvent {
    pub actor: AuditActor,
    /// The permission asked for, e.g. `workflow.execute`.
    pub action: String,
    pub workflow_id: String,
    pub execution_id: Option<String>,
    /// The rule that denied, e.g. `policy statement 2 (deny identity mi-1)`.
    pub rule: String,
}

/// Everything the host audits. The serde tag is the event's action name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type")]
pub enum AuditEvent {
    #[serde(rename = "schedule.created")]
    ScheduleCreated(ScheduleEvent),
    #[serde(rename = "schedule.updated")]
    ScheduleUpdated(ScheduleEvent),
    #[serde(rename = "schedule.deleted")]
    ScheduleDeleted(ScheduleEvent),
    #[serde(rename = "schedule.fired")]
    Fired(FiringEvent),
    #[serde(rename = "execution.started")]
    ExecutionStarted(ExecutionEvent),
    #[serde(rename = "execution.succeeded")]
    ExecutionSucceeded(ExecutionEvent),
    #[serde(rename = "execution.failed")]
    ExecutionFailed(ExecutionEvent),
    /// Refused by the access guard (403); `reason` names the denying rule.
    #[serde(rename = "execution.rejected")]
    ExecutionRejected(ExecutionEvent),
    #[serde(rename = "node.started")]
    NodeStarted(NodeEvent),
    #[serde(rename = "node.finished")]
    NodeFinished(NodeEvent),
    #[serde(rename = "token.minted")]
    TokenMinted(TokenEvent),
    #[serde(rename = "token.refreshed")]
    TokenRefreshed(TokenEvent),
    #[serde(rename = "secret.read")]
    SecretRead(SecretReadEvent),
    #[serde(rename = "egress.call")]
    Egress(EgressEvent),
    #[serde(rename = "authorization.failure")]
    AuthorizationFailure(AuthorizationEvent),
}

/// The columns every event has, whatever its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSummary {
    pub action: &'static str,
    pub actor: AuditActor,
    pub target: String,
    pub execution_id: Option<String>,
    pub outcome: Outcome,
    pub reason: Option<String>,
}

impl AuditEvent {
    /// The action name, e.g. `egress.call` (also the serde tag).
    pub fn action(&self) -> &'static str {
        match self {
            AuditEvent::ScheduleCreated(_) => "schedule.created",
            AuditEvent::ScheduleUpdated(_) => "schedule.updated",
            AuditEvent::ScheduleDeleted(_) => "schedule.deleted",
            AuditEvent::Fired(_) => "schedule.fired",
            AuditEvent::ExecutionStarted(_) => "execution.started",
            AuditEvent::ExecutionSucceeded(_) => "execution.succeeded",
            AuditEvent::ExecutionFailed(_) => "execution.failed",
            AuditEvent::ExecutionRejected(_) => "execution.rejected",
            AuditEvent::NodeStarted(_) => "node.started",
            AuditEvent::NodeFinished(_) => "node.finished",
            AuditEvent::TokenMinted(_) => "token.minted",
            AuditEvent::TokenRefreshed(_) => "token.refreshed",
            AuditEvent::SecretRead(_) => "secret.read",
            AuditEvent::Egress(_) => "egress.call",
            AuditEvent::AuthorizationFailure(_) => "authorization.failure",
        }
    }

    /// Actor, target, execution, outcome and reason, scrubbed of credential-shaped text.
    pub fn summary(&self) -> EventSummary {
        let (actor, target, execution_id, outcome, reason) = match self {
            AuditEvent::ScheduleCreated(e) | AuditEvent::ScheduleUpdated(e) | AuditEvent::ScheduleDeleted(e) => {
                (e.actor.clone(), format!("schedule {}", e.schedule_id), None, Outcome::Success, None)
            }
            AuditEvent::Fired(e) => (
                AuditActor::managed_identity(&e.managed_identity_id),
                format!("schedule {}", e.schedule_id),
                e.execution_id.clone(),
                e.outcome,
                e.reason.clone(),
            ),
            AuditEvent::ExecutionStarted(e) | AuditEvent::ExecutionSucceeded(e) => {
                (e.actor.clone(), format!("workflow {}", e.workflow_id), Some(e.execution_id.clone()), Outcome::Success, e.reason.clone())
            }
            AuditEvent::ExecutionFailed(e) => {
                (e.actor.clone(), format!("workflow {}", e.workflow_id), Some(e.execution_id.clone()), Outcome::Failure, e.reason.clone())
            }
            AuditEvent::ExecutionRejected(e) => {
                (e.actor.clone(), format!("workflow {}", e.workflow_id), Some(e.execution_id.clone()), Outcome::Denied, e.reason.clone())
            }
            AuditEvent::NodeStarted(e) | AuditEvent::NodeFinished(e) => {
                (e.actor.clone(), format!("node {}", e.node_id), Some(e.execution_id.clone()), e.outcome, e.reason.clone())
            }
            AuditEvent::TokenMinted(e) | AuditEvent::TokenRefreshed(e) => {
                let target = e.audience.as_deref().map_or_else(|| "token".to_string(), |a| format!("token for {a}"));
                (e.actor.clone(), target, e.execution_id.clone(), e.outcome, e.reason.clone())
            }
            AuditEvent::SecretRead(e) => (e.actor.clone(), e.reference.clone(), e.execution_id.clone(), e.outcome, e.reason.clone()),
            AuditEvent::Egress(e) => {
                let (outcome, reason) = match &e.decision {
                    EgressDecision::Allowed => (Outcome::Success, None),
                    EgressDecision::Denied(r) => (Outcome::Denied, Some(r.clone())),
                    EgressDecision::Failed(r) => (Outcome::Failure, Some(r.clone())),
                };
                (e.actor.clone(), format!("{} {}", e.method, e.destination), Some(e.execution_id.clone()), outcome, reason)
            }
            AuditEvent::AuthorizationFailure(e) => (
                e.actor.clone(),
                format!("workflow {}", e.workflow_id),
                e.execution_id.clone(),
                Outcome::Denied,
                Some(format!("{}: {}", e.action, e.rule)),
            ),
        };
        EventSummary {
            action: self.action(),
            actor: scrub_actor(actor),
            target: super::scrub(&target),
            execution_id: execution_id.map(|id| super::scrub(&id)),
            outcome,
            reason: reason.map(|r| super::scrub(&r)),
        }
    }

    /// The event's own fields as JSON, every string scrubbed (see [`super::scrub`]).
    pub fn details(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        scrub_json(&mut value);
        value
    }
}

fn scrub_actor(actor: AuditActor) -> AuditActor {
    let s = |v: Option<String>| v.map(|v| super::scrub(&v));
    AuditActor {
        managed_identity_id: s(actor.managed_identity_id),
        client_id: s(actor.client_id),
        user_id: s(actor.user_id),
        tenant_id: s(actor.tenant_id),
        service_account: actor.service_account,
    }
}

fn scrub_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => *s = super::scrub(s),
        serde_json::Value::Array(items) => items.iter_mut().for_each(scrub_json),
        serde_json::Value::Object(map) => map.values_mut().for_each(scrub_json),
        _ => {}
    }
}

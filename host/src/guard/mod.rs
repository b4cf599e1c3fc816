//! The ProcessAccessGuard (DESIGN §2 step 5, §8): may this actor do this
//! action on this workflow?
//!
//! One pipeline for every actor, a managed identity on a scheduled run or the
//! calling user on a manual one; the only input is the actor's verified
//! [`IdInfo`]. The checks, in order:
//!
//! 1. **Permission**: some role of the actor must grant the action through
//!    the roles → permissions map ([`RolePermissions`]). Unknown roles grant
//!    nothing.
//! 2. **Deny statements** of the workflow's [`ResourcePolicy`] that cover the
//!    action: the first that matches the actor denies. Deny always wins, whatever
//!    allow statements say, wherever they stand in the list.
//! 3. **Allow statements** that cover the action: if there are any, the
//!    actor must match one. We chose this "allowlist once you write one"
//!    semantics because a policy author who writes "allow role
//!    payroll-runner" means "only payroll runners", the way a firewall or an
//!    S3 bucket policy with a principal list is read; with no allow statements,
//!    the role permission alone decides, so a workflow without a policy needs
//!    none. A policy can only narrow what roles grant, never widen it.
//!
//! A [`Denial`] names the rule that denied, maps to 403, and turns into the
//! `authorization.failure` and `execution.rejected` audit events.

pub mod policy;
pub mod roles;

pub use policy::{Effect, PolicyStatement, ResourcePolicy};
pub use roles::RolePermissions;

use crate::audit::{AuditActor, AuditEvent, AuthorizationEvent, ExecutionEvent};
use crate::identity::IdInfo;
use std::fmt;

/// The permission a run needs.
pub const WORKFLOW_EXECUTE: &str = "workflow.execute";

/// Checks actors against roles and resource policies.
#[derive(Debug, Clone, Default)]
pub struct AccessGuard {
    roles: RolePermissions,
}

/// Why an action was allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub action: String,
    pub workflow_id: String,
    /// The actor's role that holds the permission.
    pub role: String,
    /// The allow statement that matched (1-based), when the policy has allow statements.
    pub statement: Option<usize>,
}

/// The rule that denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenyRule {
    /// No role of the actor grants the action.
    MissingPermission { roles: Vec<String>, action: String },
    /// A deny statement matched (1-based index, what matched).
    DenyStatement { statement: usize, matched: Vec<String> },
    /// The policy has allow statements for the action and none matched (1-based indexes).
    NoAllowMatched { allow_statements: Vec<usize> },
}

impl fmt::Display for DenyRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DenyRule::MissingPermission { roles, action } if roles.is_empty() => {
                write!(f, "role set is empty, so it has no {action}")
            }
            DenyRule::MissingPermission { roles, action } => write!(f, "role set [{}] has no {action}", roles.join(", ")),
            DenyRule::DenyStatement { statement, matched } => {
                write!(f, "policy statement {statement} (deny {})", matched.join(", "))
            }
            DenyRule::NoAllowMatched { allow_statements } => {
                let list: Vec<String> = allow_statements.iter().map(usize::to_string).collect();
                write!(f, "no allow statement of the workflow policy matches (statements {})", list.join(", "))
            }
        }
    }
}

/// An action refused by the guard: 403 semantics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{}` may not {action} workflow `{workflow_id}`: {rule}", actor.id())]
pub struct Denial {
    pub actor: AuditActor,
    pub action: String,
    pub workflow_id: String,
    pub rule: DenyRule,
}

impl Denial {
    /// The HTTP status this maps to.
    pub const STATUS: u16 = 403;
    /// The API error code (`{"error": {"code": "forbidden", …}}`).
    pub const CODE: &'static str = "forbidden";

    /// The `authorization.failure` audit event for this denial.
    pub fn audit_event(&self, execution_id: Option<&str>) -> AuditEvent {
        AuditEvent::AuthorizationFailure(AuthorizationEvent {
            actor: self.actor.clone(),
            action: self.action.clone(),
            workflow_id: self.workflow_id.clone(),
            execution_id: execution_id.map(str::to_string),
            rule: self.rule.to_string(),
        })
    }

    /// The `execution.rejected` event of the execution this denial stopped.
    pub fn rejection_event(&self, execution_id: &str, triggered_by: &str, attempt: u32) -> AuditEvent {
        AuditEvent::ExecutionRejected(ExecutionEvent {
            actor: self.actor.clone(),
            execution_id: execution_id.to_string(),
            workflow_id: self.workflow_id.clone(),
            triggered_by: triggered_by.to_string(),
            attempt,
            reason: Some(format!("403 {}: {}", Denial::CODE, self.rule)),
        })
    }
}

impl AccessGuard {
    pub fn new(roles: RolePermissions) -> AccessGuard {
        AccessGuard { roles }
    }

    pub fn roles(&self) -> &RolePermissions {
        &self.roles
    }

    /// Decide whether `actor` may do `action` (e.g. [`WORKFLOW_EXECUTE`]) on
    /// `workflow_id` under its `policy` (see the module doc for the order).
    pub fn authorize(&self, actor: &IdInfo, action: &str, workflow_id: &str, policy: &ResourcePolicy) -> Result<Grant, Denial> {
        let deny = |rule| Denial {
            actor: AuditActor::from_id_info(actor),
            action: action.to_string(),
            workflow_id: workflow_id.to_string(),
            rule,
        };
        let Some(role) = self.roles.role_granting(&actor.roles, action) else {
            return Err(deny(DenyRule::MissingPermission { roles: actor.roles.clone(), action: action.to_string() }));
        };
        let covering = || policy.statements.iter().enumerate().filter(|(_, s)| s.covers(action)).map(|(i, s)| (i + 1, s));
        for (n, statement) in covering().filter(|(_, s)| s.effect == Effect::Deny) {
            if let Some(matched) = statement.matches(actor) {
                return Err(deny(DenyRule::DenyStatement { statement: n, matched }));
            }
        }
        let allows: Vec<(usize, &PolicyStatement)> = covering().filter(|(_, s)| s.effect == Effect::Allow).collect();
        let statement = if allows.is_empty() {
            None
        } else {
            let Some((n, _)) = allows.iter().find(|(_, s)| s.matches(actor).is_some()) else {
                return Err(deny(DenyRule::NoAllowMatched { allow_statements: allows.iter().map(|(n, _)| *n).collect() }));
            };
            Some(*n)
        };
        Ok(Grant { action: action.to_string(), workflow_id: workflow_id.to_string(), role: role.to_string(), statement })
    }
}

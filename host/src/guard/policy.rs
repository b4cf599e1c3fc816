//! A workflow's resource policy: an ordered list of allow/deny statements,
//! stored with the workflow as camelCase JSON:
//!
//! ```json
//! { "statements": [
//!     { "effect": "deny",  "identities": ["mi-contractor-7"] },
//!     { "effect": "allow", "roles": ["payroll-runner"], "serviceAccount": true, "tenants": ["t-1"] },
//!     { "effect": "allow", "roles": ["payroll-admin"], "actions": ["workflow.execute"] } ] }
//! ```
//!
//! A statement matches an actor when every condition it states matches (a
//! list matches when any entry does); `actions` limits which actions it
//! speaks about (absent: all). `identities` entries match the actor's managed
//! identity id, user id (`sub`) or client id. A statement with no conditions
//! matches everyone.

use super::roles::{check_permission, is_name, permits};
use crate::identity::IdInfo;
use crate::validation::FieldError;
use serde::{Deserialize, Serialize};

/// More statements than this is a mistake, not a policy.
pub const MAX_STATEMENTS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyStatement {
    pub effect: Effect,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identities: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenants: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<String>>,
}

/// The statements of one workflow's policy, in order. The default (no
/// statements) adds no condition to the role check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourcePolicy {
    #[serde(default)]
    pub statements: Vec<PolicyStatement>,
}

impl ResourcePolicy {
    /// No statements: the role check alone decides.
    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    /// Parse and validate a policy document. Field paths are relative to the
    /// policy (`statements[1].effect`); nest them under the workflow's field.
    pub fn from_json(value: &serde_json::Value) -> Result<ResourcePolicy, Vec<FieldError>> {
        let Some(object) = value.as_object() else {
            return Err(vec![FieldError::new("", "must be an object with a `statements` list")]);
        };
        let mut errors = Vec::new();
        for key in object.keys().filter(|k| *k != "statements") {
            errors.push(FieldError::new(key.as_str(), "is not a policy field; a policy has only `statements`"));
        }
        let items = match object.get("statements") {
            None => &Vec::new(),
            Some(serde_json::Value::Array(items)) => items,
            Some(_) => return Err(vec![FieldError::new("statements", "must be a list of statements")]),
        };
        let mut statements = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match parse_statement(item) {
                Ok(s) => statements.push(s),
                Err(e) => errors.extend(e.into_iter().map(|e| e.nested(&format!("statements[{i}]")))),
            }
        }
        let policy = ResourcePolicy { statements };
        if let Err(e) = policy.validate() {
            errors.extend(e);
        }
        if errors.is_empty() {
            Ok(policy)
        } else {
            Err(errors)
        }
    }

    /// Check an already parsed policy (lists non-empty, names well formed).
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.statements.len() > MAX_STATEMENTS {
            errors.push(FieldError::new("statements", format!("has {} statements; at most {MAX_STATEMENTS}", self.statements.len())));
        }
        for (i, s) in self.statements.iter().enumerate() {
            let at = |field: &str| format!("statements[{i}].{field}");
            let mut list = |field: &str, values: &Option<Vec<String>>, check: &dyn Fn(&str) -> Result<(), String>| {
                let Some(values) = values else { return };
                if values.is_empty() {
                    errors.push(FieldError::new(at(field), "must not be empty; leave it out to match any"));
                }
                for (j, v) in values.iter().enumerate() {
                    if let Err(message) = check(v) {
                        errors.push(FieldError::new(format!("{}[{j}]", at(field)), message));
                    }
                }
            };
            let name = |kind: &'static str| {
                move |v: &str| if is_name(v) { Ok(()) } else { Err(format!("`{v}` is not a {kind}")) }
            };
            list("identities", &s.identities, &identity_id);
            list("roles", &s.roles, &name("role name"));
            list("tenants", &s.tenants, &name("tenant id"));
            list("actions", &s.actions, &check_permission);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// Identity ids come from many issuers (`mi-guid-1234`, `auth0|5f…`, `alice@example.com`):
/// anything printable without spaces, up to 256 characters.
fn identity_id(v: &str) -> Result<(), String> {
    if v.is_empty() || v.len() > 256 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err(format!("`{v}` is not an identity id (1–256 characters, no spaces)"))
    } else {
        Ok(())
    }
}

/// One statement, each field parsed on its own so an error names it.
fn parse_statement(item: &serde_json::Value) -> Result<PolicyStatement, Vec<FieldError>> {
    const FIELDS: [&str; 6] = ["effect", "identities", "roles", "serviceAccount", "tenants", "actions"];
    let Some(object) = item.as_object() else {
        return Err(vec![FieldError::new("", "must be an object like {\"effect\": \"deny\", \"identities\": [\"mi-1\"]}")]);
    };
    let mut errors = Vec::new();
    for key in object.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
        errors.push(FieldError::new(key.as_str(), format!("is not a statement field; one of {}", FIELDS.join(", "))));
    }
    fn field<T: serde::de::DeserializeOwned>(
        object: &serde_json::Map<String, serde_json::Value>,
        key: &str,
        expected: &str,
        errors: &mut Vec<FieldError>,
    ) -> Option<T> {
        let value = object.get(key)?;
        serde_json::from_value(value.clone()).map_err(|_| errors.push(FieldError::new(key, format!("must be {expected}")))).ok()
    }
    let effect = match object.get("effect") {
        None => {
            errors.push(FieldError::new("effect", "is required: `allow` or `deny`"));
            None
        }
        Some(_) => field::<Effect>(object, "effect", "`allow` or `deny`", &mut errors),
    };
    let statement = PolicyStatement {
        effect: effect.unwrap_or(Effect::Deny),
        identities: field(object, "identities", "a list of identity ids", &mut errors),
        roles: field(object, "roles", "a list of role names", &mut errors),
        service_account: field(object, "serviceAccount", "true or false", &mut errors),
        tenants: field(object, "tenants", "a list of tenant ids", &mut errors),
        actions: field(object, "actions", "a list of actions such as `workflow.execute`", &mut errors),
    };
    if errors.is_empty() {
        Ok(statement)
    } else {
        Err(errors)
    }
}

impl PolicyStatement {
    /// Whether the statement speaks about `action` at all.
    pub fn covers(&self, action: &str) -> bool {
        self.actions.as_ref().is_none_or(|actions| actions.iter().any(|p| permits(p, action)))
    }

    /// If every stated condition matches `actor`, what matched (for the denial
    /// message): `identity mi-1`, `role contractor`, `service accounts`, …
    pub fn matches(&self, actor: &IdInfo) -> Option<Vec<String>> {
        let mut matched = Vec::new();
        if let Some(ids) = &self.identities {
            let actor_ids = [actor.managed_identity_id.as_deref(), Some(actor.user_id.as_str()), Some(actor.client_id.as_str())];
            let hit = actor_ids.into_iter().flatten().filter(|id| !id.is_empty()).find(|id| ids.iter().any(|i| i == id))?;
            matched.push(format!("identity {hit}"));
        }
        if let Some(roles) = &self.roles {
            let hit = actor.roles.iter().find(|r| roles.contains(r))?;
            matched.push(format!("role {hit}"));
        }
        if let Some(wanted) = self.service_account {
            if actor.is_service_account != wanted {
                return None;
            }
            matched.push(if wanted { "service accounts".into() } else { "non-service accounts".into() });
        }
        if let Some(tenants) = &self.tenants {
            if !tenants.contains(&actor.tenant_id) {
                return None;
            }
            matched.push(format!("tenant {}", actor.tenant_id));
        }
        if matched.is_empty() {
            matched.push("everyone".into());
        }
        Some(matched)
    }
}

//! Roles → permissions: the `[roles]` table of the config file.
//!
//! ```toml
//! [roles]
//! workflow-runner = ["workflow.execute"]
//! auditor = ["audit.read"]
//! admin = ["*"]
//! ```
//!
//! A permission is a dotted name (`workflow.execute`); `*` grants everything
//! and `workflow.*` everything under `workflow.`. A role the map does not
//! name grants nothing (deny by default).

use crate::validation::FieldError;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The roles table. Deserializes from the `[roles]` table itself (a map of
/// role name → list of permissions; every key is a role name, so there are no
/// unknown fields to deny here: the config struct that holds it as `roles`
/// carries `deny_unknown_fields`); check it with [`RolePermissions::validate`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(transparent)]
pub struct RolePermissions(BTreeMap<String, Vec<String>>);

impl RolePermissions {
    pub fn new(map: BTreeMap<String, Vec<String>>) -> RolePermissions {
        RolePermissions(map)
    }

    /// Parse and validate the `[roles]` table of a TOML config; field paths
    /// start at `roles`. A missing table is an empty map.
    pub fn from_config_toml(table: Option<&toml::Value>) -> Result<RolePermissions, Vec<FieldError>> {
        let Some(table) = table else { return Ok(RolePermissions::default()) };
        let roles: RolePermissions = table
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| vec![FieldError::new("roles", format!("must map role names to lists of permissions: {}", e.message()))])?;
        roles.validate()?;
        Ok(roles)
    }

    /// Role names and permissions are well formed (`roles.<role>[i]` names a bad one).
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        for (role, permissions) in &self.0 {
            if !is_name(role) {
                errors.push(FieldError::new(
                    format!("roles.{role}"),
                    "a role name may hold only letters, digits, `-`, `_`, `.` and `:`",
                ));
            }
            for (i, permission) in permissions.iter().enumerate() {
                if let Err(message) = check_permission(permission) {
                    errors.push(FieldError::new(format!("roles.{role}[{i}]"), message));
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The first of `roles` (in the actor's order) that grants `action`.
    pub fn role_granting<'a>(&self, roles: &'a [String], action: &str) -> Option<&'a str> {
        roles.iter().find(|role| self.0.get(role.as_str()).is_some_and(|perms| perms.iter().any(|p| permits(p, action)))).map(String::as_str)
    }

    pub fn permissions_of(&self, role: &str) -> &[String] {
        self.0.get(role).map_or(&[], Vec::as_slice)
    }
}

/// Whether permission pattern `pattern` covers `action`.
pub fn permits(pattern: &str, action: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some("") => true,
        Some(prefix) if prefix.ends_with('.') => action.starts_with(prefix),
        _ => pattern == action,
    }
}

/// An identifier-like name: roles, tenants, identity ids.
pub(crate) fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@'))
}

/// `*`, `a.b`, `a.*`: dotted segments of `[a-z0-9-_]`, optionally ending in `.*`.
pub(crate) fn check_permission(p: &str) -> Result<(), String> {
    if p == "*" {
        return Ok(());
    }
    let body = p.strip_suffix(".*").unwrap_or(p);
    let segment_ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if body.split('.').all(segment_ok) {
        Ok(())
    } else {
        Err(format!("`{p}` is not a permission; write dotted lowercase names like `workflow.execute`, `workflow.*` or `*`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_what_they_say() {
        assert!(permits("*", "workflow.execute"));
        assert!(permits("workflow.*", "workflow.execute"));
        assert!(!permits("workflow.*", "workflowx.execute"));
        assert!(permits("workflow.execute", "workflow.execute"));
        assert!(!permits("workflow.execute", "workflow.execute.now"));
    }

    #[test]
    fn the_roles_table_parses_and_names_a_bad_permission() {
        let config: toml::Value = toml::from_str("[roles]\nrunner = [\"workflow.execute\"]\nadmin = [\"*\"]\nbad = [\"ok.*\", \"Workflow Execute\"]").expect("toml");
        let errors = RolePermissions::from_config_toml(config.get("roles")).expect_err("bad permission");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "roles.bad[1]");
        let wrong: toml::Value = toml::from_str("[roles]\nrunner = \"workflow.execute\"").expect("toml");
        let errors = RolePermissions::from_config_toml(wrong.get("roles")).expect_err("not a list");
        assert_eq!(errors[0].field, "roles");
    }
}

//! Field rules for managed identities and their client secrets. Each problem
//! names its field in the API's camelCase spelling (`clientId`, `roles[1]`).

use super::registry::NewManagedIdentity;
use crate::secret::Secret;
use crate::validation::FieldError;

const MAX_ID: usize = 64;
const MAX_NAME: usize = 200;
const MAX_EXTERNAL_ID: usize = 255;
const MAX_ROLE: usize = 128;
const MAX_ROLES: usize = 64;
/// Short enough to refuse obvious junk, long enough for every secret store's format.
const MIN_SECRET: usize = 8;
const MAX_SECRET: usize = 1024;

pub(crate) fn validate_new(new: &NewManagedIdentity) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(message) = slug_problem(&new.id) {
        errors.push(FieldError::new("id", message));
    }
    if new.name.trim().is_empty() {
        errors.push(FieldError::new("name", "must not be empty"));
    } else if new.name.chars().count() > MAX_NAME {
        errors.push(FieldError::new("name", format!("must be at most {MAX_NAME} characters")));
    } else if new.name.chars().any(char::is_control) {
        errors.push(FieldError::new("name", "must not contain control characters"));
    }
    for (field, value) in [("clientId", &new.client_id), ("tenantId", &new.tenant_id)] {
        if let Some(message) = token_problem(value, MAX_EXTERNAL_ID) {
            errors.push(FieldError::new(field, message));
        }
    }
    if new.roles.len() > MAX_ROLES {
        errors.push(FieldError::new("roles", format!("must hold at most {MAX_ROLES} roles")));
    }
    for (i, role) in new.roles.iter().enumerate() {
        let field = format!("roles[{i}]");
        if let Some(message) = token_problem(role, MAX_ROLE) {
            errors.push(FieldError::new(field, message));
        } else if new.roles[..i].contains(role) {
            errors.push(FieldError::new(field, format!("duplicate role `{role}`")));
        }
    }
    errors
}

/// A problem with a client secret, named `clientSecret`; never quotes the value.
pub(crate) fn validate_secret(secret: &Secret) -> Option<FieldError> {
    let value = secret.expose();
    let problem = if value.chars().count() < MIN_SECRET {
        format!("must be at least {MIN_SECRET} characters")
    } else if value.len() > MAX_SECRET {
        format!("must be at most {MAX_SECRET} bytes")
    } else if value.chars().any(char::is_control) {
        "must not contain control characters (a trailing newline?)".to_string()
    } else {
        return None;
    };
    Some(FieldError::new("clientSecret", problem))
}

/// Ids appear in URLs, CLI arguments, audit lines and the `mi` claim: keep them plain.
fn slug_problem(id: &str) -> Option<String> {
    if id.is_empty() {
        return Some("must not be empty".into());
    }
    if id.len() > MAX_ID {
        return Some(format!("must be at most {MAX_ID} characters"));
    }
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.');
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !id.chars().all(allowed) || !edge(id.chars().next()) || !edge(id.chars().last()) {
        return Some(format!(
            "`{}` is not a valid id: use lowercase letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit",
            id.escape_debug()
        ));
    }
    None
}

/// Client ids, tenant ids and roles: any printable text without whitespace
/// (roles are joined with spaces in the `scope` form).
fn token_problem(value: &str, max: usize) -> Option<String> {
    if value.is_empty() {
        Some("must not be empty".into())
    } else if value.chars().count() > max {
        Some(format!("must be at most {max} characters"))
    } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some(format!("`{}` must not contain whitespace or control characters", value.escape_debug()))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(id: &str, client: &str) -> NewManagedIdentity {
        NewManagedIdentity {
            id: id.into(),
            name: "Payroll".into(),
            client_id: client.into(),
            tenant_id: "t-1".into(),
            roles: vec!["workflow-runner".into()],
            enabled: true,
        }
    }

    #[test]
    fn a_good_identity_passes() {
        assert!(validate_new(&new("mi-guid-1234", "payroll-scheduler")).is_empty());
        assert!(validate_new(&new("a", "c:with/odd+chars")).is_empty());
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let mut bad = new("Mi 1", "");
        bad.name = " ".into();
        bad.tenant_id = "has space".into();
        bad.roles = vec!["ok".into(), "".into(), "ok".into()];
        let fields: Vec<_> = validate_new(&bad).into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["id", "name", "clientId", "tenantId", "roles[1]", "roles[2]"]);
    }

    #[test]
    fn ids_must_be_slugs() {
        for id in ["-mi", "mi-", "MI", "mi/1", "mi 1", "mï"] {
            assert!(slug_problem(id).is_some(), "{id}");
        }
        assert!(slug_problem(&"a".repeat(65)).is_some());
        assert!(slug_problem("mi.payroll_2-x").is_none());
    }

    #[test]
    fn secret_problems_never_quote_the_secret() {
        let short = Secret::new("abc");
        let problem = validate_secret(&short).expect("too short");
        assert_eq!(problem.field, "clientSecret");
        assert!(!problem.to_string().contains("abc"));
        assert!(validate_secret(&Secret::new("long-enough\n")).is_some());
        assert!(validate_secret(&Secret::new("a+b/c:d%e=")).is_none());
    }
}

//! Field-level validation errors, shared by everything that checks user input
//! (schedules, secret references, workflows, config), so the API and the CLI
//! can name the exact field that is wrong.

use std::fmt;

/// One problem with one field. `field` is a dotted path in the user's own
/// spelling (`secretReference.vaultUri`, `retryPolicy.maxAttempts`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), message: message.into() }
    }

    /// The same problem, one level further down: `nested("secretReference")`
    /// turns `vaultUri` into `secretReference.vaultUri`.
    pub fn nested(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() { parent.to_string() } else { format!("{parent}.{}", self.field) };
        self
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

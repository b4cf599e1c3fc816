//! Strict query-string parameters: every parameter is checked by name, an
//! unknown one is an error that names it (a typo like `?limt=5` must not be
//! silently ignored), and each bad value gets its own message.

use super::error::ApiError;
use crate::validation::FieldError;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// The parameters of one request, consumed as they are read.
pub struct Params {
    values: BTreeMap<String, String>,
    errors: Vec<FieldError>,
}

impl Params {
    /// Parse a raw query string (`None`: no query). A parameter given twice is an error.
    pub fn parse(query: Option<&str>) -> Params {
        let mut values = BTreeMap::new();
        let mut errors = Vec::new();
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            if values.insert(key.to_string(), value.to_string()).is_some() {
                errors.push(FieldError::new(key.as_ref(), "is given more than once"));
            }
        }
        Params { values, errors }
    }

    pub fn text(&mut self, name: &str) -> Option<String> {
        let value = self.values.remove(name)?;
        if value.is_empty() {
            self.errors.push(FieldError::new(name, "must not be empty; leave it out instead"));
            return None;
        }
        Some(value)
    }

    /// An RFC 3339 instant.
    pub fn instant(&mut self, name: &str) -> Option<DateTime<Utc>> {
        let text = self.text(name)?;
        match DateTime::parse_from_rfc3339(&text) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                self.errors.push(FieldError::new(name, format!("`{text}` is not an RFC 3339 time like 2026-12-25T06:00:00Z")));
                None
            }
        }
    }

    /// A whole number in `min..=max`.
    pub fn number(&mut self, name: &str, min: u32, max: u32) -> Option<u32> {
        let text = self.text(name)?;
        match text.parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.errors.push(FieldError::new(name, format!("`{text}` is not a whole number between {min} and {max}")));
                None
            }
        }
    }

    /// One of `allowed`.
    pub fn choice(&mut self, name: &str, allowed: &[&str]) -> Option<String> {
        let text = self.text(name)?;
        if allowed.contains(&text.as_str()) {
            Some(text)
        } else {
            self.errors.push(FieldError::new(name, format!("`{text}` is not one of {}", allowed.join(", "))));
            None
        }
    }

    /// Every problem so far, plus any parameter nobody asked for.
    pub fn finish(mut self) -> Result<(), ApiError> {
        let known = std::mem::take(&mut self.values);
        for name in known.keys() {
            self.errors.push(FieldError::new(name.as_str(), "is not a parameter of this route"));
        }
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(self.errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bad_parameter_is_named() {
        let mut p = Params::parse(Some("limit=0&since=yesterday&limt=5&action=execution.*"));
        assert_eq!(p.number("limit", 1, 100), None);
        assert_eq!(p.instant("since"), None);
        assert_eq!(p.text("action").as_deref(), Some("execution.*"));
        let error = p.finish().expect_err("three problems");
        let fields: Vec<&str> = error.fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["limit", "since", "limt"]);
    }
}

//! `inputData` templates (DESIGN §7): `{{schedule.triggerMonth}}` and friends,
//! rendered from the **nominal** fire time in the schedule's zone.
//!
//! Variables: `schedule.triggerMonth` (`YYYY-MM`), `schedule.triggerDate`
//! (`YYYY-MM-DD`), `schedule.triggerTime` (RFC 3339 with the zone's offset, seconds
//! precision), `schedule.triggerYear` (`YYYY`), `schedule.triggerDay` (day of month,
//! two digits), `schedule.name`, `schedule.id`, `schedule.timezone`,
//! `execution.id`, `execution.attempt`. Whitespace inside the braces is allowed
//! (`{{ schedule.name }}`).
//!
//! Rendering walks the JSON recursively and replaces templates in string values
//! only (never in keys, numbers or booleans). The result is always a string: a
//! value that is exactly `"{{execution.attempt}}"` renders to `"2"`, not `2`, so a
//! node sees the same type whatever the variable.

use crate::validation::FieldError;
use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde_json::Value;

/// Every variable a template may name.
pub const VARIABLES: &[&str] = &[
    "schedule.triggerMonth",
    "schedule.triggerDate",
    "schedule.triggerTime",
    "schedule.triggerYear",
    "schedule.triggerDay",
    "schedule.name",
    "schedule.id",
    "schedule.timezone",
    "execution.id",
    "execution.attempt",
];

/// What the variables stand for in one attempt of one execution.
#[derive(Debug, Clone)]
pub struct TemplateVars {
    pub schedule_id: String,
    pub schedule_name: String,
    pub zone: Tz,
    pub nominal_time: DateTime<Utc>,
    pub execution_id: String,
    pub attempt: u32,
}

impl TemplateVars {
    fn value_of(&self, name: &str) -> Option<String> {
        let local = self.nominal_time.with_timezone(&self.zone);
        Some(match name {
            "schedule.triggerMonth" => local.format("%Y-%m").to_string(),
            "schedule.triggerDate" => local.format("%Y-%m-%d").to_string(),
            "schedule.triggerTime" => local.to_rfc3339_opts(SecondsFormat::Secs, false),
            "schedule.triggerYear" => local.format("%Y").to_string(),
            "schedule.triggerDay" => local.format("%d").to_string(),
            "schedule.name" => self.schedule_name.clone(),
            "schedule.id" => self.schedule_id.clone(),
            "schedule.timezone" => self.zone.name().to_string(),
            "execution.id" => self.execution_id.clone(),
            "execution.attempt" => self.attempt.to_string(),
            _ => return None,
        })
    }
}

/// One piece of a template string.
enum Piece<'a> {
    Text(&'a str),
    Variable(&'a str),
}

/// Split a string into text and `{{variable}}` pieces.
fn pieces(text: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            out.push(Piece::Text(&rest[..open]));
        }
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or_else(|| format!("template `{}` is not closed with `}}}}`", truncate(&rest[open..])))?;
        let name = after[..close].trim();
        if name.is_empty() {
            return Err("empty template `{{}}`".to_string());
        }
        out.push(Piece::Variable(name));
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

fn truncate(text: &str) -> &str {
    let end = text.char_indices().nth(40).map(|(i, _)| i).unwrap_or(text.len());
    &text[..end]
}

/// Check every template in `value`; `path` is the field path of `value` itself
/// (`inputData`). Returns one error per bad string, naming its path.
pub fn check(value: &Value, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    walk(value, path, &mut |text, at| {
        match pieces(text) {
            Err(problem) => errors.push(FieldError::new(at, problem)),
            Ok(pieces) => {
                for piece in pieces {
                    if let Piece::Variable(name) = piece {
                        if !VARIABLES.contains(&name) {
                            errors.push(FieldError::new(at, unknown_message(name)));
                        }
                    }
                }
            }
        }
    });
    errors
}

fn unknown_message(name: &str) -> String {
    let hint = VARIABLES
        .iter()
        .find(|known| known.eq_ignore_ascii_case(name) || (name.len() > 3 && (known.starts_with(name) || name.starts_with(*known))));
    match hint {
        Some(known) => format!("unknown template variable `{name}` (did you mean `{known}`?)"),
        None => format!("unknown template variable `{name}`; known: {}", VARIABLES.join(", ")),
    }
}

fn walk(value: &Value, path: &str, visit: &mut dyn FnMut(&str, &str)) {
    match value {
        Value::String(text) => visit(text, path),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, &format!("{path}[{i}]"), visit);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                walk(item, &format!("{path}.{key}"), visit);
            }
        }
        _ => {}
    }
}

/// Why rendering failed: only for input that skipped [`check`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("inputData template: {0}")]
pub struct TemplateError(pub String);

/// Render every template in `value`.
pub fn render(value: &Value, vars: &TemplateVars) -> Result<Value, TemplateError> {
    Ok(match value {
        Value::String(text) => Value::String(render_str(text, vars)?),
        Value::Array(items) => Value::Array(items.iter().map(|v| render(v, vars)).collect::<Result<_, _>>()?),
        Value::Object(map) => Value::Object(
            map.iter().map(|(k, v)| Ok((k.clone(), render(v, vars)?))).collect::<Result<_, TemplateError>>()?,
        ),
        other => other.clone(),
    })
}

fn render_str(text: &str, vars: &TemplateVars) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len());
    for piece in pieces(text).map_err(TemplateError)? {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Variable(name) => {
                let value = vars.value_of(name).ok_or_else(|| TemplateError(unknown_message(name)))?;
                out.push_str(&value);
            }
        }
    }
    Ok(out)
}

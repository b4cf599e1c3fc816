//! Turning schedule JSON into a [`ScheduleSpec`], collecting every problem.

use super::{template, CatchUp, CatchUpMode, OverlapPolicy, RetryPolicy, ScheduleSpec};
use crate::cron::{CronExpr, CronError};
use crate::secrets::SecretReference;
use crate::validation::FieldError;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value};

pub const MAX_ATTEMPTS: u32 = 10;
pub const MAX_BACKOFF_SECONDS: u64 = 86_400;
/// A year: older missed firings are history, not catch-up.
pub const MAX_CATCH_UP_WINDOW_SECONDS: u64 = 366 * 86_400;
const MAX_TEXT_LEN: usize = 256;

const FIELDS: &[&str] = &[
    "workflowId",
    "name",
    "cronExpression",
    "timezone",
    "managedIdentityId",
    "secretReference",
    "inputData",
    "retryPolicy",
    "overlap",
    "catchUp",
    "paused",
    "startAt",
    "endAt",
];

impl ScheduleSpec {
    /// Parse and validate the schedule JSON of `POST /flowstudio/api/schedules`.
    /// Every problem is reported, each with its own field path.
    pub fn from_json(value: &Value) -> Result<ScheduleSpec, Vec<FieldError>> {
        let Some(obj) = value.as_object() else {
            return Err(vec![FieldError::new("", "a schedule must be a JSON object")]);
        };
        let mut errors = Vec::new();
        for key in obj.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
            errors.push(FieldError::new(key.clone(), format!("unknown field; known fields: {}", FIELDS.join(", "))));
        }
        let mut p = Fields { obj, errors };

        let workflow_id = p.text("workflowId");
        let name = p.text("name");
        let managed_identity_id = p.text("managedIdentityId");
        let cron_expression = p.text("cronExpression");
        if let Some(expr) = &cron_expression {
            if let Err(e) = CronExpr::parse(expr) {
                p.errors.push(FieldError::new("cronExpression", e.to_string()));
            }
        }
        let timezone = p.text("timezone");
        if let Some(tz) = &timezone {
            if tz.trim().parse::<Tz>().is_err() {
                p.errors.push(FieldError::new("timezone", CronError::UnknownTimeZone(tz.clone()).to_string() + " (use an IANA name such as `Europe/Zurich` or `UTC`)"));
            }
        }
        let secret_reference = match obj.get("secretReference") {
            None | Some(Value::Null) => {
                p.errors.push(FieldError::new("secretReference", "is required"));
                None
            }
            Some(v @ Value::Object(_)) => match SecretReference::from_json(v) {
                Ok(r) => Some(r),
                Err(errs) => {
                    p.errors.extend(errs.into_iter().map(|e| e.nested("secretReference")));
                    None
                }
            },
            Some(_) => {
                p.errors.push(FieldError::new("secretReference", "must be an object with a `provider`"));
                None
            }
        };
        let input_data = match obj.get("inputData") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(v @ Value::Object(_)) => {
                p.errors.extend(template::check(v, "inputData"));
                v.clone()
            }
            Some(_) => {
                p.errors.push(FieldError::new("inputData", "must be a JSON object"));
                Value::Object(Map::new())
            }
        };
        let retry_policy = p.retry_policy();
        let overlap = p.overlap();
        let catch_up = p.catch_up();
        let paused = match obj.get("paused") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                p.errors.push(FieldError::new("paused", "must be true or false"));
                false
            }
        };
        let start_at = p.instant("startAt");
        let end_at = p.instant("endAt");
        if let (Some(s), Some(e)) = (start_at, end_at) {
            if e <= s {
                p.errors.push(FieldError::new("endAt", "must be later than `startAt`"));
            }
        }

        let errors = p.errors;
        match (workflow_id, name, cron_expression, timezone, managed_identity_id, secret_reference) {
            (Some(workflow_id), Some(name), Some(cron_expression), Some(timezone), Some(managed_identity_id), Some(secret_reference))
                if errors.is_empty() =>
            {
                Ok(ScheduleSpec {
                    workflow_id,
                    name,
                    cron_expression: cron_expression.trim().to_string(),
                    timezone: timezone.trim().to_string(),
                    managed_identity_id,
                    secret_reference,
                    input_data,
                    retry_policy,
                    overlap,
                    catch_up,
                    paused,
                    start_at,
                    end_at,
                })
            }
            _ => Err(errors),
        }
    }

    /// The spec as JSON, in the same shape [`ScheduleSpec::from_json`] accepts.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

struct Fields<'a> {
    obj: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    /// A required, non-empty string of reasonable length.
    fn text(&mut self, field: &str) -> Option<String> {
        match self.obj.get(field) {
            None | Some(Value::Null) => self.errors.push(FieldError::new(field, "is required")),
            Some(Value::String(s)) if s.trim().is_empty() => self.errors.push(FieldError::new(field, "must not be empty")),
            Some(Value::String(s)) if s.len() > MAX_TEXT_LEN => {
                self.errors.push(FieldError::new(field, format!("is longer than {MAX_TEXT_LEN} characters")))
            }
            Some(Value::String(s)) if s.chars().any(char::is_control) => {
                self.errors.push(FieldError::new(field, "must not contain control characters"))
            }
            Some(Value::String(s)) => return Some(s.clone()),
            Some(_) => self.errors.push(FieldError::new(field, "must be a string")),
        }
        None
    }

    fn object(&mut self, field: &str, known: &[&str]) -> Option<&'a Map<String, Value>> {
        let obj: &'a Map<String, Value> = self.obj;
        match obj.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => {
                for key in map.keys().filter(|k| !known.contains(&k.as_str())) {
                    self.errors.push(FieldError::new(format!("{field}.{key}"), format!("unknown field; known fields: {}", known.join(", "))));
                }
                Some(map)
            }
            Some(_) => {
                self.errors.push(FieldError::new(field, "must be an object"));
                None
            }
        }
    }

    /// An integer field of a nested object, within `min..=max`.
    fn bounded(&mut self, map: &Map<String, Value>, path: &str, key: &str, min: u64, max: u64) -> Option<u64> {
        let field = format!("{path}.{key}");
        let value = map.get(key)?;
        match value.as_u64() {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ if value.is_number() => {
                self.errors.push(FieldError::new(field, format!("must be a whole number from {min} to {max}, got {value}")));
                None
            }
            _ => {
                self.errors.push(FieldError::new(field, format!("must be a whole number from {min} to {max}")));
                None
            }
        }
    }

    fn retry_policy(&mut self) -> RetryPolicy {
        let mut policy = RetryPolicy::default();
        let obj = self.obj;
        let Some(map) = (match obj.get("retryPolicy") {
            Some(Value::Object(_)) => self.object("retryPolicy", &["maxAttempts", "backoffSeconds"]),
            other => {
                if other.is_some_and(|v| !v.is_null()) {
                    self.errors.push(FieldError::new("retryPolicy", "must be an object {maxAttempts, backoffSeconds}"));
                }
                None
            }
        }) else {
            return policy;
        };
        if let Some(n) = self.bounded(map, "retryPolicy", "maxAttempts", 1, u64::from(MAX_ATTEMPTS)) {
            policy.max_attempts = n as u32;
        }
        if let Some(n) = self.bounded(map, "retryPolicy", "backoffSeconds", 0, MAX_BACKOFF_SECONDS) {
            policy.backoff_seconds = n;
        }
        policy
    }

    fn overlap(&mut self) -> OverlapPolicy {
        match self.obj.get("overlap") {
            None | Some(Value::Null) => OverlapPolicy::default(),
            Some(v) => serde_json::from_value(v.clone()).unwrap_or_else(|_| {
                self.errors.push(FieldError::new("overlap", format!("{v} is not an overlap policy; one of skip, buffer-one, buffer-all, allow-all")));
                OverlapPolicy::default()
            }),
        }
    }

    fn catch_up(&mut self) -> CatchUp {
        let mut catch_up = CatchUp::default();
        let Some(map) = self.object("catchUp", &["mode", "windowSeconds"]) else {
            return catch_up;
        };
        if let Some(mode) = map.get("mode") {
            match serde_json::from_value::<CatchUpMode>(mode.clone()) {
                Ok(m) => catch_up.mode = m,
                Err(_) => self.errors.push(FieldError::new(
                    "catchUp.mode",
                    format!("{mode} is not a catch-up mode; one of latest-only, all, none"),
                )),
            }
        }
        if let Some(n) = self.bounded(map, "catchUp", "windowSeconds", 0, MAX_CATCH_UP_WINDOW_SECONDS) {
            catch_up.window_seconds = n;
        }
        catch_up
    }

    fn instant(&mut self, field: &str) -> Option<DateTime<Utc>> {
        match self.obj.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => match DateTime::parse_from_rfc3339(s) {
                Ok(t) => Some(t.with_timezone(&Utc)),
                Err(e) => {
                    self.errors.push(FieldError::new(field, format!("`{s}` is not an RFC 3339 time: {e}")));
                    None
                }
            },
            Some(_) => {
                self.errors.push(FieldError::new(field, "must be an RFC 3339 time string"));
                None
            }
        }
    }
}

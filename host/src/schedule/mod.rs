//! Schedules: the seed's schedule JSON (camelCase, DESIGN §2) plus the policies
//! of DESIGN §7 (overlap, catch-up, pause, start/end, retry).
//!
//! [`ScheduleSpec::from_json`] is the only way user input becomes a spec: it
//! checks every field and returns *all* problems at once as
//! [`FieldError`](crate::validation::FieldError)s with dotted camelCase paths
//! (`retryPolicy.maxAttempts`, `secretReference.vaultUri`,
//! `inputData.payrollMonth`). Templates in `inputData` are checked at create
//! time, so a typo fails now and not at 06:00 on the 25th.

mod parse;
pub mod template;

use crate::cron;
use crate::secrets::SecretReference;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};


pub use parse::{MAX_ATTEMPTS, MAX_BACKOFF_SECONDS, MAX_CATCH_UP_WINDOW_SECONDS};
pub use template::{render, TemplateVars};

/// What happens when a firing comes due while an execution of the same schedule runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OverlapPolicy {
    /// Drop the new firing (recorded as skipped).
    #[default]
    Skip,
    /// Keep at most one firing waiting; further ones are skipped.
    BufferOne,
    /// Queue every firing; they run one after another.
    BufferAll,
    /// Run firings concurrently.
    AllowAll,
}

/// Which firings missed during downtime are run when the host comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CatchUpMode {
    /// Only the most recent missed firing, if it lies within the window.
    #[default]
    LatestOnly,
    /// Every missed firing within the window, oldest first.
    All,
    /// None: missed firings are dropped.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CatchUp {
    pub mode: CatchUpMode,
    /// How old a missed firing may be and still be run.
    pub window_seconds: u64,
}

impl Default for CatchUp {
    fn default() -> Self {
        CatchUp { mode: CatchUpMode::LatestOnly, window_seconds: 86_400 }
    }
}

/// Attempts of one execution (DESIGN §7). `maxAttempts` counts the first one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub backoff_seconds: u64,
}

impl Default for RetryPolicy {
    /// One attempt: retrying is something a schedule asks for.
    fn default() -> Self {
        RetryPolicy { max_attempts: 1, backoff_seconds: 60 }
    }
}

/// A schedule as the user wrote it (validated). Serializes back to the same camelCase JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleSpec {
    pub workflow_id: String,
    pub name: String,
    pub cron_expression: String,
    pub timezone: String,
    pub managed_identity_id: String,
    pub secret_reference: SecretReference,
    pub input_data: serde_json::Value,
    pub retry_policy: RetryPolicy,
    pub overlap: OverlapPolicy,
    pub catch_up: CatchUp,
    pub paused: bool,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "rfc3339::option")]
    pub start_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "rfc3339::option")]
    pub end_at: Option<DateTime<Utc>>,
}

/// A stored schedule: its id plus the spec.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    pub id: String,
    #[serde(flatten)]
    pub spec: ScheduleSpec,
    #[serde(serialize_with = "rfc3339::instant")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339::instant")]
    pub updated_at: DateTime<Utc>,
}

impl ScheduleSpec {
    /// The cron schedule in its zone. Cannot fail for a spec from [`ScheduleSpec::from_json`].
    pub fn cron(&self) -> Result<cron::Schedule, cron::CronError> {
        cron::Schedule::parse(&self.cron_expression, &self.timezone)
    }

    pub fn zone(&self) -> Result<Tz, cron::CronError> {
        self.timezone.trim().parse().map_err(|_| cron::CronError::UnknownTimeZone(self.timezone.clone()))
    }

    /// Whether a nominal time lies inside `startAt..=endAt`.
    pub fn in_active_range(&self, nominal: DateTime<Utc>) -> bool {
        self.start_at.is_none_or(|s| nominal >= s) && self.end_at.is_none_or(|e| nominal <= e)
    }
}

impl Schedule {
    /// `schedule:<name>`, the `triggered-by` of its timed firings.
    pub fn triggered_by(&self) -> String {
        format!("schedule:{}", self.spec.name)
    }
}

/// RFC 3339 (UTC, seconds or finer) for instants in API JSON.
pub mod rfc3339 {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::Serializer;

    pub fn format(t: &DateTime<Utc>) -> String {
        t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }

    pub fn instant<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    pub fn option<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&format(t)),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests;

//! FlowStudio's cron engine: 5-field POSIX cron matched on the wall clock of an IANA zone
//! (DESIGN.md §7, "Scheduling semantics"; judged by `fixtures/cron-cases.json`).
//!
//! # Why our own matcher
//!
//! The published crates do not implement the semantics the design fixes:
//! * `cron` 0.17 requires 6/7 fields (seconds, optional year), numbers weekdays the Quartz
//!   way (1 = Sunday), ANDs day-of-month with day-of-week instead of the POSIX OR, drops
//!   runs that fall in a DST gap and returns past instants inside a fold.
//! * `croner` 4 (even with 5 fields forced) passes only 72 of the 76 cases of the full set.
//!
//! The rules are small enough to own: parse the five fields into bit sets, walk local
//! calendar days (jumping over non-matching months), find matching hours/minutes by bit
//! scans, and map each local wall time to real instants through chrono-tz:
//! * DoW 0-7 (0 and 7 Sunday), names `SUN`-`SAT` and `JAN`-`DEC` case-insensitive;
//!   `L` in day-of-month = last day of the month (extension); `?` = `*` in the day fields.
//! * Day-of-month and day-of-week both restricted (neither exactly `*`/`?`; `*/2` counts as
//!   restricted) → a day matches if either matches; otherwise both must.
//! * `N/step` = `N-max/step`; a step larger than the field's span, 6/7 fields, and
//!   expressions that can never fire (Feb 30) are rejected by [`CronExpr::parse`].
//! * Fixed-time schedules (minute and hour without `*`, `/`, `-`): a wall time in a DST
//!   gap fires once at the transition instant ending the gap; in a repeated interval once,
//!   at the first pass. Interval schedules: gap times do not exist; repeated times fire on
//!   both passes, in real-time order.
//! * [`Schedule::next_after`] is strictly later than its argument and is recomputed from it
//!   each time (no iterator state, no UTC offset carried between days).
//! * chrono-tz 0.10 has explicit transitions only up to 2099; from 2100 on the engine
//!   evaluates an equivalent calendar year so recurring DST rules still apply. (A
//!   `DateTime<Tz>` returned by [`Schedule::upcoming`] past 2099 is the right instant, but
//!   chrono-tz itself renders it with the zone's last tabulated offset.)
//!
//! Fixture status: 37 of 37 cases in `fixtures/cron-cases.json` pass (`never-feb30` is
//! rejected at parse time, which its rule note allows).

mod fields;
mod next;
mod parse;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use fields::FieldSets;

/// Why an expression or a schedule was rejected.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum CronError {
    #[error("cron expression is empty; expected 5 fields (minute hour day-of-month month day-of-week)")]
    Empty,
    #[error("cron expression has {count} fields; flowstudio uses 5-field POSIX cron (minute hour day-of-month month day-of-week) with no seconds field")]
    SecondsField { count: usize },
    #[error("cron expression has {count} field(s); expected 5 (minute hour day-of-month month day-of-week)")]
    FieldCount { count: usize },
    #[error("unknown cron macro `{0}`; supported: @yearly @annually @monthly @weekly @daily @midnight @hourly")]
    UnknownMacro(String),
    /// A problem inside one field (`field` names it, `text` is the field as written).
    #[error("{field} field `{text}`: {problem}")]
    Field {
        field: &'static str,
        text: String,
        problem: String,
    },
    #[error("step {step} in {field} field `{text}` is larger than the field's span {min}-{max}")]
    StepTooLarge {
        field: &'static str,
        text: String,
        step: String,
        min: u32,
        max: u32,
    },
    #[error("`{expr}` can never fire ({reason})")]
    NeverFires { expr: String, reason: String },
    #[error("unknown time zone `{0}`")]
    UnknownTimeZone(String),
}

/// A parsed, validated 5-field cron expression.
#[derive(Debug, Clone, PartialEq)]
pub struct CronExpr {
    source: String,
    sets: FieldSets,
    fixed: bool,
}

impl CronExpr {
    /// Parse a 5-field POSIX expression or one of `@yearly @annually @monthly @weekly
    /// @daily @midnight @hourly`.
    pub fn parse(expr: &str) -> Result<CronExpr, CronError> {
        parse::parse_expr(expr)
    }

    /// The expression as given (trimmed).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Minute and hour fields contain no `*`, `/` or `-` (lists allowed).
    pub fn is_fixed_time(&self) -> bool {
        self.fixed
    }
}

/// A cron expression bound to the IANA zone whose wall clock it matches.
#[derive(Debug, Clone)]
pub struct Schedule {
    expr: CronExpr,
    tz: Tz,
}

impl Schedule {
    pub fn new(expr: CronExpr, tz: Tz) -> Schedule {
        Schedule { expr, tz }
    }

    /// Parse expression and zone name; an unknown zone is [`CronError::UnknownTimeZone`].
    pub fn parse(expr: &str, tz: &str) -> Result<Schedule, CronError> {
        let zone: Tz = tz
            .trim()
            .parse()
            .map_err(|_| CronError::UnknownTimeZone(tz.to_string()))?;
        Ok(Schedule::new(CronExpr::parse(expr)?, zone))
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    pub fn expr(&self) -> &CronExpr {
        &self.expr
    }

    /// The first fire instant strictly after `after` (real time). `None` = no fire within
    /// the bounded search (~28 years); cannot happen for an expression that parsed.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        next::next_after(&self.expr, self.tz, after)
    }

    /// Up to `n` consecutive fire instants after `after`, in the schedule's zone.
    pub fn upcoming(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Tz>> {
        let mut out = Vec::with_capacity(n.min(1024));
        let mut cursor = after;
        while out.len() < n {
            match self.next_after(cursor) {
                Some(t) => {
                    out.push(t.with_timezone(&self.tz));
                    cursor = t;
                }
                None => break,
            }
        }
        out
    }
}

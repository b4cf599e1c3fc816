//! Which nominal times of a schedule to run when its timer comes due, after
//! normal operation or after downtime (the catch-up policy).
//!
//! Everything between the schedule's evaluation mark and now is *due*. A due
//! time at most [`MISFIRE_GRACE`] old is *on time* and always runs; older ones
//! were *missed* and follow `catchUp`: `latest-only` runs the newest missed one
//! if it is within `windowSeconds` (and only when no on-time firing supersedes
//! it), `all` runs every missed one within the window, oldest first, and `none`
//! runs none. Nothing older than the window is even enumerated, so a schedule
//! that was down for a year costs no more than one down for a day.

use crate::schedule::{CatchUpMode, ScheduleSpec};
use chrono::{DateTime, Duration, Utc};

/// How late a firing may start and still count as on time.
pub const MISFIRE_GRACE: Duration = Duration::seconds(60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuePlan {
    /// Nominal times to run, oldest first.
    pub run: Vec<DateTime<Utc>>,
    /// How many due times were dropped by the catch-up policy; times older than the
    /// window are not enumerated, so for them this is a lower bound (at least one).
    pub dropped: usize,
    /// The newest due time: the schedule's new evaluation mark.
    pub mark: Option<DateTime<Utc>>,
}

/// Plan the firings of `spec` due in `(mark, now]`, enumerating at most `max` of them.
pub fn plan(spec: &ScheduleSpec, cron: &crate::cron::Schedule, mark: DateTime<Utc>, now: DateTime<Utc>, max: usize) -> DuePlan {
    let window = Duration::seconds(spec.catch_up.window_seconds as i64).max(MISFIRE_GRACE);
    // Nothing before the window can run: skip it, noting only that something was there.
    let horizon = now - window;
    let mut dropped = 0usize;
    let mut cursor = mark;
    let mut newest = None;
    if cursor < horizon {
        // One probe says whether anything at all was skipped before the horizon.
        if let Some(t) = cron.next_after(cursor).filter(|t| *t <= horizon) {
            dropped += usize::from(spec.in_active_range(t));
            newest = Some(t);
        }
        cursor = horizon;
    }
    let mut due = Vec::new();
    while let Some(t) = cron.next_after(cursor).filter(|t| *t <= now) {
        cursor = t;
        newest = Some(t);
        if !spec.in_active_range(t) {
            continue;
        }
        due.push(t);
        if due.len() > max {
            due.remove(0);
            dropped += 1;
        }
    }
    let total = due.len();
    let (on_time, missed): (Vec<_>, Vec<_>) = due.into_iter().partition(|t| now - *t <= MISFIRE_GRACE);
    let within = |t: &DateTime<Utc>| now - *t <= Duration::seconds(spec.catch_up.window_seconds as i64);
    let caught_up: Vec<DateTime<Utc>> = match spec.catch_up.mode {
        CatchUpMode::All => missed.iter().copied().filter(within).collect(),
        CatchUpMode::LatestOnly if on_time.is_empty() => missed.last().copied().filter(within).into_iter().collect(),
        CatchUpMode::LatestOnly | CatchUpMode::None => Vec::new(),
    };
    let on_time = match spec.catch_up.mode {
        // latest-only: a burst of on-time firings (a very frequent schedule) still runs only the newest.
        CatchUpMode::LatestOnly => on_time.last().copied().into_iter().collect(),
        _ => on_time,
    };
    let run: Vec<_> = caught_up.into_iter().chain(on_time.iter().copied()).collect();
    dropped += total - run.len();
    DuePlan { run, dropped, mark: newest }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn spec(mode: &str, window: u64) -> ScheduleSpec {
        ScheduleSpec::from_json(&json!({
            "workflowId": "wf", "name": "daily", "cronExpression": "0 6 * * *", "timezone": "UTC",
            "managedIdentityId": "mi", "secretReference": {"provider": "env", "name": "X"},
            "catchUp": {"mode": mode, "windowSeconds": window}
        }))
        .unwrap()
    }

    fn day(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, d, h, 0, 0).unwrap()
    }

    #[test]
    fn catch_up_after_three_days_down() {
        // Down from the 1st 07:00 to the 4th 12:00: the 2nd, 3rd and 4th at 06:00 were missed.
        let (mark, now) = (day(1, 6), day(4, 12));
        let p = |mode, window| {
            let s = spec(mode, window);
            plan(&s, &s.cron().unwrap(), mark, now, 1000)
        };
        assert_eq!(p("all", 4 * 86_400).run, [day(2, 6), day(3, 6), day(4, 6)]);
        assert_eq!(p("all", 86_400).run, [day(4, 6)], "only what lies within the window");
        assert_eq!(p("latest-only", 86_400).run, [day(4, 6)]);
        assert_eq!(p("latest-only", 3_600).run, Vec::<DateTime<Utc>>::new(), "6 h late is outside a 1 h window");
        let none = p("none", 4 * 86_400);
        assert_eq!((none.run.len(), none.dropped, none.mark), (0, 3, Some(day(4, 6))));
    }

    #[test]
    fn an_on_time_firing_runs_under_every_mode() {
        for mode in ["all", "latest-only", "none"] {
            let s = spec(mode, 0);
            let plan = plan(&s, &s.cron().unwrap(), day(1, 6), day(2, 6) + Duration::seconds(5), 1000);
            assert_eq!(plan.run, [day(2, 6)], "{mode}");
        }
    }
}

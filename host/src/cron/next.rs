//! Finding the next fire instant: candidate wall times day by day, mapped to instants
//! through the zone's rules.
//!
//! * Days are walked on the local calendar (never by adding 86 400 s), jumping over
//!   non-matching months; inside a day the first matching hour/minute is found by bit scans.
//! * A day whose offset is constant from 00:00 to 24:00 ("regular") maps wall time to
//!   real time by one fixed offset, so its first candidate is found directly.
//! * A day that touches a transition is enumerated wall time by wall time:
//!   a unique wall time fires once; in a repeated interval a fixed-time schedule fires at the
//!   first pass only and an interval schedule on both passes; in a gap a fixed-time schedule
//!   fires at the transition instant (the first valid instant after the gap) and an interval
//!   schedule does not fire.
//! * The best candidate is final once it is not later than the first instant of the next
//!   local day, so a fold across midnight is still ordered by real time.
//!
//! chrono-tz 0.10 stores explicit transitions only up to 2099; later instants would keep the
//! last offset forever. Years from 2100 on are therefore evaluated in an equivalent year
//! (same leap-ness, same weekday on 1 January, 2072..=2099) so the zone's recurring rule keeps
//! applying.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime};
use chrono::{Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use super::CronExpr;

/// How far ahead the search goes (days) before answering "never". Parse-time validation
/// guarantees a valid expression fires at least every 8 years, so this is only a backstop.
const SEARCH_DAYS: i64 = 28 * 366;

/// First year without explicit transitions in chrono-tz's tables.
const TZ_HORIZON_YEAR: i32 = 2100;

/// Bracket (seconds) around a wall time inside which all of its instants lie
/// (UTC offsets stay within ±26 h, historical local mean time included).
const OFFSET_BRACKET: i64 = 26 * 3600;

/// The first fire instant strictly after `after`.
pub(crate) fn next_after(expr: &CronExpr, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let after_wall = wall_of(tz, after)?;
    // Start one local day early: a fold or gap can map the previous day's wall times
    // to instants after `after`.
    let start = after_wall.date().pred_opt()?;
    let limit = start
        .checked_add_signed(Duration::days(SEARCH_DAYS))
        .unwrap_or(NaiveDate::MAX);
    let mut best: Option<DateTime<Utc>> = None;
    let mut day = start;
    while day <= limit {
        if let Some(b) = best {
            match first_instant_at_wall(tz, day.and_time(NaiveTime::MIN)) {
                Some(bound) if b <= bound => break,
                None => break,
                Some(_) => {}
            }
        }
        if !expr.sets.month_matches(day.month()) {
            day = match first_of_next_month(day) {
                Some(d) => d,
                None => break,
            };
            continue;
        }
        if expr.sets.day_matches(day) {
            if let Some(c) = first_in_day(expr, tz, day, after) {
                best = Some(best.map_or(c, |b| b.min(c)));
            }
        }
        day = match day.succ_opt() {
            Some(d) => d,
            None => break,
        };
    }
    best
}

fn first_of_next_month(day: NaiveDate) -> Option<NaiveDate> {
    if day.month() == 12 {
        NaiveDate::from_ymd_opt(day.year().checked_add(1)?, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(day.year(), day.month() + 1, 1)
    }
}

/// Earliest candidate instant strictly after `after` among the wall times of `day`.
fn first_in_day(
    expr: &CronExpr,
    tz: Tz,
    day: NaiveDate,
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let day_start = day.and_time(NaiveTime::MIN);
    if let Some(offset) = regular_offset(tz, day) {
        // Wall time of `after` under this day's offset; candidates must be later.
        let threshold = after.naive_utc() + Duration::seconds(offset);
        let (h, m) = if threshold < day_start {
            (0, 0)
        } else if threshold.date() > day {
            return None;
        } else {
            // Minute-aligned wall times strictly after the threshold.
            (threshold.hour(), threshold.minute() + 1)
        };
        let (h, m) = expr.sets.first_time_at_or_after(h, m)?;
        let wall = day.and_time(NaiveTime::from_hms_opt(h, m, 0)?);
        return Some(to_utc(wall - Duration::seconds(offset)));
    }
    let mut best: Option<DateTime<Utc>> = None;
    let mut consider = |t: DateTime<Utc>| {
        if t > after && best.is_none_or(|b| t < b) {
            best = Some(t);
        }
    };
    for (h, m) in expr.sets.times_of_day() {
        let Some(time) = NaiveTime::from_hms_opt(h, m, 0) else {
            continue;
        };
        let wall = day.and_time(time);
        match local_instants(tz, wall) {
            LocalResult::Single(t) => consider(t),
            LocalResult::Ambiguous(first, second) => {
                consider(first);
                if !expr.fixed {
                    consider(second);
                }
            }
            LocalResult::None => {
                if expr.fixed {
                    if let Some(t) = gap_end(tz, wall) {
                        consider(t);
                    }
                }
            }
        }
    }
    best
}

/// The UTC offset (seconds) of `day` if it is the same from local 00:00 to the next 00:00,
/// every wall time of the day existing exactly once.
fn regular_offset(tz: Tz, day: NaiveDate) -> Option<i64> {
    let start = day.and_time(NaiveTime::MIN);
    let end = day.succ_opt()?.and_time(NaiveTime::MIN);
    let LocalResult::Single(t0) = local_instants(tz, start) else {
        return None;
    };
    let LocalResult::Single(t1) = local_instants(tz, end) else {
        return None;
    };
    let offset = offset_at(tz, t0)?;
    if offset_at(tz, t1)? != offset || t1 - t0 != Duration::days(1) {
        return None;
    }
    // Hourly probes catch a change that is undone within the same day.
    for k in 1..24 {
        if offset_at(tz, t0 + Duration::hours(k))? != offset {
            return None;
        }
    }
    Some(offset)
}

/// The first instant at which the wall clock shows `wall` or, if `wall` is skipped,
/// the end of the gap.
fn first_instant_at_wall(tz: Tz, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
    match local_instants(tz, wall) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t),
        LocalResult::None => gap_end(tz, wall),
    }
}

/// For a wall time inside a gap: the transition instant ending the gap, i.e. the first
/// instant whose wall time is later than `wall`.
fn gap_end(tz: Tz, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
    let w = wall.and_utc().timestamp();
    let later = |ts: i64| -> Option<bool> {
        let t = DateTime::from_timestamp(ts, 0)?;
        Some(wall_of(tz, t)? > wall)
    };
    let mut lo = w - OFFSET_BRACKET;
    let mut hi = w + OFFSET_BRACKET;
    if later(lo)? || !later(hi)? {
        return None;
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if later(mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    DateTime::from_timestamp(hi, 0)
}

fn to_utc(naive_utc: NaiveDateTime) -> DateTime<Utc> {
    naive_utc.and_utc()
}

/// Whole-day shift mapping years from 2100 on to an equivalent year inside chrono-tz's
/// transition tables (same calendar: leap-ness and weekday of 1 January).
fn horizon_shift(year: i32) -> Option<Duration> {
    if year < TZ_HORIZON_YEAR {
        return Some(Duration::zero());
    }
    let jan1 = NaiveDate::from_ymd_opt(year, 1, 1)?;
    let leap = NaiveDate::from_ymd_opt(year, 2, 29).is_some();
    (TZ_HORIZON_YEAR - 28..TZ_HORIZON_YEAR).find_map(|y| {
        let cand = NaiveDate::from_ymd_opt(y, 1, 1)?;
        let same = cand.weekday() == jan1.weekday()
            && NaiveDate::from_ymd_opt(y, 2, 29).is_some() == leap;
        same.then(|| cand - jan1)
    })
}

/// UTC offset (seconds east) of the zone at instant `t`.
fn offset_at(tz: Tz, t: DateTime<Utc>) -> Option<i64> {
    let naive = t.naive_utc();
    let shifted = naive.checked_add_signed(horizon_shift(naive.year())?)?;
    Some(i64::from(
        tz.offset_from_utc_datetime(&shifted).fix().local_minus_utc(),
    ))
}

/// Local wall-clock time of instant `t` in the zone.
pub(crate) fn wall_of(tz: Tz, t: DateTime<Utc>) -> Option<NaiveDateTime> {
    t.naive_utc()
        .checked_add_signed(Duration::seconds(offset_at(tz, t)?))
}

/// The instants at which the wall clock of the zone shows `wall`.
fn local_instants(tz: Tz, wall: NaiveDateTime) -> LocalResult<DateTime<Utc>> {
    let Some(shift) = horizon_shift(wall.year()) else {
        return LocalResult::None;
    };
    let Some(shifted) = wall.checked_add_signed(shift) else {
        return LocalResult::None;
    };
    let back = |t: DateTime<Tz>| -> Option<DateTime<Utc>> {
        let off = Duration::seconds(i64::from(t.offset().fix().local_minus_utc()));
        Some(to_utc(wall.checked_sub_signed(off)?))
    };
    match tz.from_local_datetime(&shifted) {
        LocalResult::Single(t) => back(t).map_or(LocalResult::None, LocalResult::Single),
        LocalResult::Ambiguous(a, b) => match (back(a), back(b)) {
            (Some(a), Some(b)) => LocalResult::Ambiguous(a, b),
            (Some(a), None) | (None, Some(a)) => LocalResult::Single(a),
            (None, None) => LocalResult::None,
        },
        LocalResult::None => LocalResult::None,
    }
}

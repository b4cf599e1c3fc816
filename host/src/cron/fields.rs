//! Field kinds, value sets and the calendar matching rules of a parsed expression.

use chrono::{Datelike, NaiveDate};

/// The five POSIX cron fields, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldKind {
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

impl FieldKind {
    pub(crate) const ALL: [FieldKind; 5] = [
        FieldKind::Minute,
        FieldKind::Hour,
        FieldKind::DayOfMonth,
        FieldKind::Month,
        FieldKind::DayOfWeek,
    ];

    /// Name used in error messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            FieldKind::Minute => "minute",
            FieldKind::Hour => "hour",
            FieldKind::DayOfMonth => "day-of-month",
            FieldKind::Month => "month",
            FieldKind::DayOfWeek => "day-of-week",
        }
    }

    /// Smallest value accepted in the field.
    pub(crate) fn min(self) -> u32 {
        match self {
            FieldKind::Minute | FieldKind::Hour | FieldKind::DayOfWeek => 0,
            FieldKind::DayOfMonth | FieldKind::Month => 1,
        }
    }

    /// Largest value accepted in the field (day-of-week accepts 7 as Sunday).
    pub(crate) fn max(self) -> u32 {
        match self {
            FieldKind::Minute => 59,
            FieldKind::Hour => 23,
            FieldKind::DayOfMonth => 31,
            FieldKind::Month => 12,
            FieldKind::DayOfWeek => 7,
        }
    }

    /// Symbolic names accepted in the field (index + offset = value).
    pub(crate) fn names(self) -> Option<(&'static [&'static str], u32)> {
        match self {
            FieldKind::Month => Some((&MONTH_ABBR, 1)),
            FieldKind::DayOfWeek => Some((&DOW_ABBR, 0)),
            _ => None,
        }
    }
}

const MONTH_ABBR: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DOW_ABBR: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

const MONTH_NAMES: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Lowercase English month name for 1..=12.
pub(crate) fn month_name(month: u32) -> &'static str {
    let idx = month.saturating_sub(1) as usize;
    MONTH_NAMES.get(idx).copied().unwrap_or("?")
}

/// Longest possible length of a month (February counts 29, leap years exist).
pub(crate) fn max_month_len(month: u32) -> u32 {
    match month {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Number of days of `month` in `year` (proleptic Gregorian).
pub(crate) fn month_len(year: i32, month: u32) -> u32 {
    if month == 2 {
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        if leap {
            29
        } else {
            28
        }
    } else {
        max_month_len(month)
    }
}

/// Is bit `v` set in `bits`?
pub(crate) fn has(bits: u64, v: u32) -> bool {
    v < 64 && (bits >> v) & 1 == 1
}

/// Smallest set bit `>= from` that is `<= max`, if any.
pub(crate) fn next_bit(bits: u64, from: u32, max: u32) -> Option<u32> {
    if from > max || from >= 64 {
        return None;
    }
    let masked = bits & (u64::MAX << from);
    if masked == 0 {
        return None;
    }
    let v = masked.trailing_zeros();
    if v <= max {
        Some(v)
    } else {
        None
    }
}

/// Values of a set in ascending order, for messages.
pub(crate) fn values(bits: u64, max: u32) -> Vec<u32> {
    (0..=max.min(63)).filter(|v| has(bits, *v)).collect()
}

/// The matching sets of a parsed expression (bit `v` set = value `v` matches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldSets {
    pub(crate) minutes: u64,
    pub(crate) hours: u64,
    /// Bits 1..=31.
    pub(crate) days_of_month: u64,
    /// `L` present in the day-of-month field: the last day of each month matches.
    pub(crate) last_day_of_month: bool,
    /// Bits 1..=12.
    pub(crate) months: u64,
    /// Bits 0..=6, 0 = Sunday (a parsed 7 is folded onto 0).
    pub(crate) days_of_week: u64,
    /// Day-of-month field is not exactly `*` or `?`.
    pub(crate) dom_restricted: bool,
    /// Day-of-week field is not exactly `*` or `?`.
    pub(crate) dow_restricted: bool,
}

impl FieldSets {
    pub(crate) fn month_matches(&self, month: u32) -> bool {
        has(self.months, month)
    }

    /// Does the calendar day match month, day-of-month and day-of-week (POSIX OR rule)?
    pub(crate) fn day_matches(&self, date: NaiveDate) -> bool {
        if !self.month_matches(date.month()) {
            return false;
        }
        let day = date.day();
        let dom_ok = has(self.days_of_month, day)
            || (self.last_day_of_month && day == month_len(date.year(), date.month()));
        let dow_ok = has(self.days_of_week, date.weekday().num_days_from_sunday());
        match (self.dom_restricted, self.dow_restricted) {
            (true, true) => dom_ok || dow_ok,
            (true, false) => dom_ok,
            (false, true) => dow_ok,
            (false, false) => true,
        }
    }

    /// First matching (hour, minute) of a day at or after `hour:minute`.
    /// `minute` may be 60, meaning the start of the next hour.
    pub(crate) fn first_time_at_or_after(&self, hour: u32, minute: u32) -> Option<(u32, u32)> {
        let (mut h, mut m) = (hour, minute);
        if m > 59 {
            h += 1;
            m = 0;
        }
        while let Some(hh) = next_bit(self.hours, h, 23) {
            let start = if hh == h { m } else { 0 };
            if let Some(mm) = next_bit(self.minutes, start, 59) {
                return Some((hh, mm));
            }
            h = hh + 1;
            m = 0;
        }
        None
    }

    /// All matching (hour, minute) pairs of a day, ascending.
    pub(crate) fn times_of_day(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        values(self.hours, 23).into_iter().flat_map(move |h| {
            values(self.minutes, 59).into_iter().map(move |m| (h, m))
        })
    }

    /// `None` when some calendar day can match; otherwise why no day ever matches.
    pub(crate) fn never_fires_reason(&self) -> Option<String> {
        // With an unrestricted day-of-month, or with both day fields restricted (OR rule),
        // some weekday of every selected month matches.
        if !self.dom_restricted || self.dow_restricted || self.last_day_of_month {
            return None;
        }
        let months = values(self.months, 12);
        let possible = months.iter().any(|m| {
            next_bit(self.days_of_month, 1, max_month_len(*m)).is_some()
        });
        if possible {
            return None;
        }
        let days = values(self.days_of_month, 31);
        let names: Vec<&str> = months.iter().map(|m| month_name(*m)).collect();
        Some(match (days.as_slice(), names.as_slice()) {
            ([d], [m]) => format!("{m} {d} does not exist"),
            _ => format!(
                "day(s) {} do not exist in {}",
                join(&days),
                names.join(", ")
            ),
        })
    }
}

fn join(v: &[u32]) -> String {
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}

//! Unit tests of parsing, validation messages and a few zone edge cases.

use super::fields::values;
use super::*;
use chrono::{DateTime, Utc};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn err(expr: &str) -> String {
    CronExpr::parse(expr).unwrap_err().to_string()
}

#[test]
fn fields_parse_into_sets() {
    let e = CronExpr::parse("*/15 8-10,17 1,L jan-mar,DEC mon-fri").unwrap();
    assert_eq!(values(e.sets.minutes, 59), vec![0, 15, 30, 45]);
    assert_eq!(values(e.sets.hours, 23), vec![8, 9, 10, 17]);
    assert_eq!(values(e.sets.days_of_month, 31), vec![1]);
    assert!(e.sets.last_day_of_month);
    assert_eq!(values(e.sets.months, 12), vec![1, 2, 3, 12]);
    assert_eq!(values(e.sets.days_of_week, 6), vec![1, 2, 3, 4, 5]);
    assert!(e.sets.dom_restricted && e.sets.dow_restricted);
    assert!(!e.is_fixed_time());
}

#[test]
fn n_slash_step_runs_to_field_max() {
    let e = CronExpr::parse("5/20 0 * * *").unwrap();
    assert_eq!(values(e.sets.minutes, 59), vec![5, 25, 45]);
    let e = CronExpr::parse("0 0 * * 5/1").unwrap();
    // 5, 6, 7 -> Fri, Sat, Sun
    assert_eq!(values(e.sets.days_of_week, 6), vec![0, 5, 6]);
}

#[test]
fn sunday_is_zero_and_seven() {
    let a = CronExpr::parse("0 0 * * 0").unwrap();
    let b = CronExpr::parse("0 0 * * 7").unwrap();
    let c = CronExpr::parse("0 0 * * Sun").unwrap();
    assert_eq!(a.sets, b.sets);
    assert_eq!(a.sets, c.sets);
}

#[test]
fn star_and_question_mark_are_unrestricted_but_star_step_is_not() {
    let e = CronExpr::parse("0 0 ? * *").unwrap();
    assert!(!e.sets.dom_restricted && !e.sets.dow_restricted);
    let e = CronExpr::parse("0 0 */2 * 3").unwrap();
    assert!(e.sets.dom_restricted && e.sets.dow_restricted);
}

#[test]
fn macros_expand() {
    let pairs = [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@HOURLY", "0 * * * *"),
    ];
    for (m, e) in pairs {
        let a = CronExpr::parse(m).unwrap();
        let b = CronExpr::parse(e).unwrap();
        assert_eq!(a.sets, b.sets, "{m}");
        assert_eq!(a.is_fixed_time(), b.is_fixed_time(), "{m}");
        assert_eq!(a.source(), m);
    }
    assert!(err("@reboot").contains("@reboot"));
}

#[test]
fn fixed_time_detection() {
    assert!(CronExpr::parse("30 2 * * *").unwrap().is_fixed_time());
    assert!(CronExpr::parse("55 5,11,17 * * *").unwrap().is_fixed_time());
    assert!(!CronExpr::parse("0 * * * *").unwrap().is_fixed_time());
    assert!(!CronExpr::parse("0 1-3 * * *").unwrap().is_fixed_time());
    assert!(!CronExpr::parse("0/30 1 * * *").unwrap().is_fixed_time());
}

#[test]
fn errors_name_the_field_and_problem() {
    assert_eq!(
        err("0 0 31-2 * *"),
        "day-of-month field `31-2`: range start 31 is after end 2"
    );
    assert_eq!(
        err("*/70 * * * *"),
        "step 70 in minute field `*/70` is larger than the field's span 0-59"
    );
    assert_eq!(
        err("0 0 30 2 *"),
        "`0 0 30 2 *` can never fire (february 30 does not exist)"
    );
    assert!(err("0 0 31 4,6 *").contains("can never fire"));
    assert!(err("0 24 * * *").starts_with("hour field `24`"));
    assert!(err("0 0 * 13 *").starts_with("month field `13`"));
    assert!(err("0 0 * * 8").starts_with("day-of-week field `8`"));
    assert!(err("0 0 * * fun").contains("day-of-week field"));
    assert!(err("60 0 * * *").starts_with("minute field"));
    assert!(err("0 0 0 * *").starts_with("day-of-month field"));
    assert!(err("1,,2 0 * * *").contains("empty list item"));
    assert!(err("*/0 0 * * *").contains("at least 1"));
    assert!(err("0 L * * *").contains("only supported in the day-of-month"));
    assert!(err("? 0 * * *").starts_with("minute field"));
    assert!(err("1/120 * * * *").contains("larger than the field's span 0-59"));
}

#[test]
fn field_counts_are_checked() {
    let six = err("0 0 0 * * *");
    assert_eq!(
        six,
        "cron expression has 6 fields; flowstudio uses 5-field POSIX cron (minute hour day-of-month month day-of-week) with no seconds field"
    );
    assert!(err("0 0 0 * * * 2030").contains("has 7 fields"));
    assert!(err("0 0 *").contains("has 3 field"));
    assert!(err("   ").contains("empty"));
}

#[test]
fn unknown_time_zone_is_reported() {
    let e = Schedule::parse("0 0 * * *", "Mars/Base").unwrap_err();
    assert_eq!(e, CronError::UnknownTimeZone("Mars/Base".into()));
    assert_eq!(e.to_string(), "unknown time zone `Mars/Base`");
    let s = Schedule::parse("0 0 * * *", "Europe/Berlin").unwrap();
    assert_eq!(s.timezone(), chrono_tz::Europe::Berlin);
    assert_eq!(s.expr().source(), "0 0 * * *");
}

#[test]
fn rare_dates_are_found_without_looping() {
    // Feb 29: 2096 -> 2104 (2100 is not a leap year).
    let s = Schedule::parse("0 0 29 2 *", "UTC").unwrap();
    let got = s.next_after(utc("2096-03-01T00:00:00Z")).unwrap();
    assert_eq!(got, utc("2104-02-29T00:00:00Z"));
}

#[test]
fn samoa_skipped_day_fixed_time_fires_at_gap_end() {
    // Pacific/Apia skipped 2011-12-30 entirely (23:59:59 on the 29th -> 00:00 on the 31st).
    let s = Schedule::parse("0 12 * * *", "Pacific/Apia").unwrap();
    let got = s.upcoming(utc("2011-12-29T00:00:00Z"), 3);
    let got: Vec<String> = got.iter().map(|t| t.to_rfc3339()).collect();
    assert_eq!(
        got,
        vec![
            "2011-12-29T12:00:00-10:00",
            "2011-12-31T00:00:00+14:00",
            "2011-12-31T12:00:00+14:00"
        ]
    );
    let s = Schedule::parse("0 */12 * * *", "Pacific/Apia").unwrap();
    let got = s.upcoming(utc("2011-12-29T23:00:00Z"), 2);
    let got: Vec<String> = got.iter().map(|t| t.to_rfc3339()).collect();
    assert_eq!(got, vec!["2011-12-31T00:00:00+14:00", "2011-12-31T12:00:00+14:00"]);
}

#[test]
fn recurring_rule_applies_after_2099() {
    let s = Schedule::parse("0 12 * * *", "Australia/Sydney").unwrap();
    // January 2101 is summer time (+11) in Sydney, July 2101 is standard (+10).
    assert_eq!(
        s.next_after(utc("2101-01-10T00:00:00Z")).unwrap(),
        utc("2101-01-10T01:00:00Z")
    );
    assert_eq!(
        s.next_after(utc("2101-07-10T00:00:00Z")).unwrap(),
        utc("2101-07-10T02:00:00Z")
    );
}

#[test]
fn fixed_list_inside_gap_fires_once() {
    let s = Schedule::parse("0,30 2 * * *", "Europe/Berlin").unwrap();
    let got = s.upcoming(utc("2023-03-25T12:00:00Z"), 2);
    let got: Vec<String> = got.iter().map(|t| t.to_rfc3339()).collect();
    assert_eq!(got, vec!["2023-03-26T03:00:00+02:00", "2023-03-27T02:00:00+02:00"]);
}

#[test]
fn next_after_is_strictly_later() {
    let s = Schedule::parse("* * * * *", "UTC").unwrap();
    assert_eq!(
        s.next_after(utc("2024-01-01T00:00:00Z")).unwrap(),
        utc("2024-01-01T00:01:00Z")
    );
    assert_eq!(
        s.next_after(utc("2024-01-01T00:00:59Z")).unwrap(),
        utc("2024-01-01T00:01:00Z")
    );
    assert_eq!(
        s.next_after(utc("2024-12-31T23:59:00Z")).unwrap(),
        utc("2025-01-01T00:00:00Z")
    );
}

/// Independent reference: enumerate every wall minute of a date range, map it with
/// chrono-tz directly (gap end found by stepping minutes), sort and dedupe.
fn reference(expr: &CronExpr, tz: chrono_tz::Tz, from: &str, to: &str) -> Vec<DateTime<Utc>> {
    use chrono::{Duration, LocalResult, NaiveDate, TimeZone};
    let mut out = Vec::new();
    let mut day = NaiveDate::parse_from_str(from, "%Y-%m-%d").unwrap();
    let end = NaiveDate::parse_from_str(to, "%Y-%m-%d").unwrap();
    while day < end {
        if expr.sets.day_matches(day) {
            for (h, m) in expr.sets.times_of_day() {
                let wall = day.and_hms_opt(h, m, 0).unwrap();
                match tz.from_local_datetime(&wall) {
                    LocalResult::Single(t) => out.push(t.with_timezone(&Utc)),
                    LocalResult::Ambiguous(a, b) => {
                        out.push(a.with_timezone(&Utc));
                        if !expr.is_fixed_time() {
                            out.push(b.with_timezone(&Utc));
                        }
                    }
                    LocalResult::None if expr.is_fixed_time() => {
                        let mut w = wall;
                        let t = loop {
                            w += Duration::minutes(1);
                            if let Some(t) = tz.from_local_datetime(&w).earliest() {
                                break t;
                            }
                        };
                        out.push(t.with_timezone(&Utc));
                    }
                    LocalResult::None => {}
                }
            }
        }
        day = day.succ_opt().unwrap();
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn agrees_with_exhaustive_reference_across_transitions() {
    let zones = [
        "Europe/Berlin",
        "America/Santiago",
        "America/Sao_Paulo",
        "Australia/Lord_Howe",
        "Pacific/Chatham",
        "America/St_Johns",
        "Asia/Kolkata",
    ];
    let exprs = [
        "*/30 * * * *",
        "0 2 * * *",
        "30 1,2 * * *",
        "15 0 * * *",
        "*/7 1-3 * * 0",
        "0 0 L * *",
        "45 23 * * 1-5",
        "0 0,23 1,15 * sat",
    ];
    for zone in zones {
        let tz: chrono_tz::Tz = zone.parse().unwrap();
        for e in exprs {
            let expr = CronExpr::parse(e).unwrap();
            let want = reference(&expr, tz, "2017-12-30", "2019-01-03");
            // Compare over the fully enumerated middle of the range.
            let lo = utc("2018-01-01T00:00:00Z");
            let hi = utc("2019-01-01T00:00:00Z");
            let want: Vec<_> = want.into_iter().filter(|t| *t > lo && *t < hi).collect();
            let s = Schedule::new(expr, tz);
            let got: Vec<DateTime<Utc>> = s
                .upcoming(lo, want.len() + 1)
                .into_iter()
                .map(|t| t.with_timezone(&Utc))
                .filter(|t| *t < hi)
                .collect();
            assert_eq!(got.len(), want.len(), "{zone} `{e}`: count");
            for (g, w) in got.iter().zip(want.iter()) {
                assert_eq!(g, w, "{zone} `{e}`");
            }
        }
    }
}

#[test]
fn hourly_is_continuous_across_the_2100_horizon() {
    let s = Schedule::parse("0 * * * *", "America/New_York").unwrap();
    let got = s.upcoming(utc("2099-12-31T00:00:00Z"), 48);
    for pair in got.windows(2) {
        assert_eq!((pair[1] - pair[0]).num_seconds(), 3600);
    }
    // Second Sunday of March 2100 is the 14th: 02:00 local does not exist, so the hour
    // after 01:00 EST (06:00Z) is 03:00 EDT (07:00Z).
    let got = s.upcoming(utc("2100-03-14T05:30:00Z"), 2);
    let got: Vec<_> = got.iter().map(|t| t.with_timezone(&Utc)).collect();
    assert_eq!(got, vec![utc("2100-03-14T06:00:00Z"), utc("2100-03-14T07:00:00Z")]);
    let fixed = Schedule::parse("30 2 * * *", "America/New_York").unwrap();
    assert_eq!(
        fixed.next_after(utc("2100-03-13T12:00:00Z")).unwrap(),
        utc("2100-03-14T07:00:00Z")
    );
}

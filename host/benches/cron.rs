//! `cron`: the next fire instant for a plain and for a DST-crossing expression,
//! our engine against `croner` (the closest published engine, 5 fields, used
//! here only as a yardstick; it fails some DST rules our engine keeps).

use chrono::{DateTime, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use flowstudio_host::cron::Schedule;
use std::hint::black_box;

fn case(c: &mut Criterion, name: &str, expr: &str, zone: &str, after: DateTime<Utc>) {
    let ours = Schedule::parse(expr, zone).expect("ours");
    let tz: chrono_tz::Tz = zone.parse().expect("zone");
    // Five fields, as DESIGN §7 compared it: seconds and years disallowed.
    let theirs = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .year(croner::parser::Year::Disallowed)
        .build()
        .parse(expr)
        .expect("croner");
    let mut group = c.benchmark_group(format!("cron/{name}"));
    group.bench_function("flowstudio", |b| b.iter(|| ours.next_after(black_box(after))));
    group.bench_function("croner", |b| {
        b.iter(|| theirs.find_next_occurrence(&black_box(after).with_timezone(&tz), false).expect("next"))
    });
    group.finish();
}

fn cron(c: &mut Criterion) {
    let at = |y, m, d, h| Utc.with_ymd_and_hms(y, m, d, h, 0, 0).single().expect("time");
    case(c, "plain", "0 6 25 * *", "UTC", at(2026, 12, 3, 21));
    // 02:30 does not exist on 2026-03-29 in Zurich: the search crosses the gap.
    case(c, "dst_gap", "30 2 * * *", "Europe/Zurich", at(2026, 3, 28, 12));
    case(c, "dst_fold_interval", "*/15 * * * *", "America/New_York", at(2026, 11, 1, 5));
}

criterion_group!(benches, cron);
criterion_main!(benches);

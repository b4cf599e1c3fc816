//! Every case of `fixtures/cron-cases.json` (DESIGN.md §7) against the cron engine.
//!
//! One test walks all cases and reports every failing case id with the count.

use chrono::{DateTime, Datelike, Utc};
use flowstudio_host::cron::{CronExpr, Schedule};
use serde_json::Value;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/cron-cases.json");

/// Check one case; `Err` describes the mismatch.
fn check_case(case: &Value) -> Result<(), String> {
    let expr = case["expr"].as_str().ok_or("case without expr")?;
    let tz = case["tz"].as_str().ok_or("case without tz")?;
    let expect_error = case["expect_error"].as_bool().unwrap_or(false);
    let expected: Vec<&str> = case["expected_next"]
        .as_array()
        .ok_or("case without expected_next")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let after = DateTime::parse_from_rfc3339(case["after"].as_str().ok_or("case without after")?)
        .map_err(|e| format!("bad `after`: {e}"))?
        .with_timezone(&Utc);

    let parsed = Schedule::parse(expr, tz);
    if expect_error {
        return match parsed {
            Err(e) if !e.to_string().is_empty() => Ok(()),
            Err(_) => Err("rejected with an empty message".into()),
            Ok(_) => Err(format!("`{expr}` was accepted; expected a parse error")),
        };
    }
    let schedule = match parsed {
        Ok(s) => s,
        // "never fires" may be rejected at validation (R-NEVER allows it; DESIGN §7 asks for it).
        Err(e) if expected.is_empty() && CronExpr::parse(expr).is_err() => {
            return if e.to_string().contains("can never fire") {
                Ok(())
            } else {
                Err(format!("never-firing expression rejected for another reason: {e}"))
            };
        }
        Err(e) => return Err(format!("unexpected parse error: {e}")),
    };
    let n = expected.len().max(1);
    let got = schedule.upcoming(after, n);
    let got_instants: Vec<DateTime<Utc>> = got.iter().map(|t| t.with_timezone(&Utc)).collect();
    let want: Vec<DateTime<Utc>> = expected
        .iter()
        .map(|s| DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad expected value: {e}"))?;
    let shown: Vec<String> = got.iter().map(|t| t.to_rfc3339()).collect();
    if got_instants != want {
        return Err(format!("expected {expected:?}, got {shown:?}"));
    }
    if got_instants.iter().any(|t| *t <= after) {
        return Err(format!("a result is not strictly after {after}: {shown:?}"));
    }
    // Same wall clock and offset as written (chrono-tz renders offsets only up to 2099).
    for (g, w) in shown.iter().zip(expected.iter()) {
        let year = got_instants.first().map(|t| t.year()).unwrap_or(0);
        if year < 2100 && g != w {
            return Err(format!("rendered {g}, expected {w}"));
        }
    }
    Ok(())
}

#[test]
fn all_fixture_cases_pass() {
    let text = std::fs::read_to_string(FIXTURE).expect("read fixture");
    let doc: Value = serde_json::from_str(&text).expect("parse fixture");
    let cases = doc["cases"].as_array().expect("cases array");
    assert!(!cases.is_empty(), "fixture has no cases");
    let mut failures = Vec::new();
    for case in cases {
        let id = case["id"].as_str().unwrap_or("<no id>");
        if let Err(why) = check_case(case) {
            failures.push(format!("{id}: {why}"));
        }
    }
    println!("cron fixture: {} of {} cases pass", cases.len() - failures.len(), cases.len());
    assert!(
        failures.is_empty(),
        "{} of {} fixture cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

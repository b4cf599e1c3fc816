//! Every case of `fixtures/cron-cases.json` (DESIGN.md §7) against the cron engine.
//!
//! Each case is its own named test (libtest-mimic), so a failure names the case
//! and `cargo test --test cron_cases -- CASE_ID` runs one.

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

fn main() -> std::process::ExitCode {
    let args = libtest_mimic::Arguments::from_args();
    let text = match std::fs::read_to_string(FIXTURE) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("cannot read {FIXTURE}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let doc: Value = match serde_json::from_str(&text) {
        Ok(doc) => doc,
        Err(e) => {
            eprintln!("{FIXTURE} is not JSON: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let cases = doc["cases"].as_array().cloned().unwrap_or_default();
    let mut trials = vec![libtest_mimic::Trial::test("fixture_has_cases", {
        let n = cases.len();
        move || if n > 0 { Ok(()) } else { Err("fixture has no cases".into()) }
    })];
    for case in cases {
        let id = case["id"].as_str().unwrap_or("<no id>").to_string();
        let kind = case["category"].as_str().unwrap_or("case").to_string();
        trials.push(libtest_mimic::Trial::test(id, move || check_case(&case).map_err(Into::into)).with_kind(kind));
    }
    libtest_mimic::run(&args, trials).exit_code()
}

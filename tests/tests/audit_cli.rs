//! `flowstudio audit verify|query` as operators run them.

use flowstudio_tests::audit::*;
use std::process::Command;

fn flowstudio() -> Command {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("debug/flowstudio");
    assert!(bin.exists(), "{} is missing: `cargo build --bin flowstudio` first (scripts/test.sh does)", bin.display());
    Command::new(bin)
}

fn run(args: &[&str], data_dir: &std::path::Path) -> (Option<i32>, String, String) {
    let out = flowstudio().args(args).arg("--data-dir").arg(data_dir).output().expect("run flowstudio");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn verify_succeeds_on_a_fresh_data_dir_without_creating_it() {
    let dir = temp_data_dir("cli-audit-fresh");
    let (code, stdout, stderr) = run(&["audit", "verify"], &dir);
    assert_eq!(code, Some(0), "{stderr}");
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).expect("json summary");
    assert_eq!(summary["intact"], true);
    assert_eq!(summary["events"], 0);
    assert!(!dir.exists(), "verify must not create the data dir");
    // An existing, empty database too.
    drop(store(&dir));
    let (code, stdout, _) = run(&["audit", "verify"], &dir);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("\"events\":0"), "{stdout}");
}

#[test]
fn verify_reports_an_intact_chain_and_names_the_first_bad_event_when_tampered() {
    let dir = temp_data_dir("cli-audit-tamper");
    let events = every_kind_of_event("exec-1", "mi-1");
    let count = events.len();
    record_all(&dir, events);
    let (code, stdout, stderr) = run(&["audit", "verify"], &dir);
    assert_eq!(code, Some(0), "{stderr}");
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).expect("json");
    assert_eq!(summary["events"], count);
    assert_eq!(summary["headSeq"], count);
    assert_eq!(summary["headHash"].as_str().map(str::len), Some(64));

    let conn = raw_connection(&dir);
    drop_audit_triggers(&conn);
    conn.execute("UPDATE audit_events SET actor_id = 'someone-else' WHERE seq = 3", []).expect("edit");
    drop(conn);
    let (code, stdout, stderr) = run(&["audit", "verify"], &dir);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stderr.contains("event 3") && stderr.contains("schedule.fired"), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("json");
    assert_eq!(report["intact"], false);
    assert_eq!(report["firstBadEvent"], 3);
}

#[test]
fn query_prints_matching_events_as_json_lines() {
    let dir = temp_data_dir("cli-audit-query");
    let mut events = every_kind_of_event("exec-1", "mi-1");
    events.extend(every_kind_of_event("exec-2", "mi-2"));
    record_all(&dir, events);
    let (code, stdout, stderr) = run(&["audit", "query", "--execution", "exec-2", "--action", "node.*"], &dir);
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    assert_eq!(lines.iter().map(|l| l["action"].as_str().unwrap_or_default()).collect::<Vec<_>>(), ["node.started", "node.finished"]);
    assert!(lines.iter().all(|l| l["executionId"] == "exec-2" && l["actorId"] == "mi-2"));

    let (_, stdout, _) = run(&["audit", "query", "--identity", "mi-1", "--action", "egress.call"], &dir);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let (_, stdout, _) = run(&["audit", "query", "--since", "2000-01-01T00:00:00Z", "--until", "2000-01-02T00:00:00Z"], &dir);
    assert_eq!(stdout, "");
    let (code, _, stderr) = run(&["audit", "query", "--since", "yesterday"], &dir);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("--since yesterday") && stderr.contains("RFC 3339"), "{stderr}");
}

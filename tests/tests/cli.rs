//! The `flowstudio` binary as users run it.

use flowstudio_tests::*;
use std::process::Command;

fn flowstudio() -> Command {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("debug/flowstudio");
    assert!(bin.exists(), "{} is missing: `cargo build --bin flowstudio` first (scripts/test.sh does)", bin.display());
    Command::new(bin)
}

fn data_dir() -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    std::env::temp_dir().join(format!("flowstudio-cli-{}-{nanos}", std::process::id()))
}

#[test]
fn cron_next_prints_the_seeds_next_three_25ths() {
    let out = flowstudio()
        .args(["cron", "next", "0 6 25 * *", "--tz", "UTC", "--after", "2026-12-03T21:00:00Z", "-n", "3"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2026-12-25T06:00:00+00:00\n2027-01-25T06:00:00+00:00\n2027-02-25T06:00:00+00:00\n"
    );
}

#[test]
fn cron_next_prints_the_zone_offset() {
    let out = flowstudio()
        .args(["cron", "next", "30 2 * * *", "--tz", "Europe/Zurich", "--after", "2026-03-28T12:00:00Z", "-n", "2"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // 02:30 does not exist on 2026-03-29 in Zurich: the fixed-time run fires when the gap ends.
    assert_eq!(text, "2026-03-29T03:00:00+02:00\n2026-03-30T02:30:00+02:00\n");
}

#[test]
fn cron_next_rejects_bad_input_with_exit_2() {
    for (expr, tz, needle) in [("0 0 6 25 * *", "UTC", "seconds"), ("0 6 25 * *", "Mars/Base", "Mars/Base"), ("*/70 * * * *", "UTC", "minute")] {
        let out = flowstudio().args(["cron", "next", expr, "--tz", tz]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{expr} {tz}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{expr} {tz}: {err}");
    }
}

#[tokio::test]
async fn node_run_delivers_a_bearer_jwt_only_to_the_granted_server() {
    let granted = RecordingServer::start(|_, _| Reply::json(200, serde_json::json!({"ok": 1}))).await;
    let ungranted = RecordingServer::start(|_, _| Reply::json(200, serde_json::json!({"ok": 2}))).await;
    let dir = data_dir();
    let run = |url: String, grant: String| {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            flowstudio()
                .arg("--data-dir")
                .arg(&dir)
                .args(["node", "run"])
                .arg(node_path("http-get"))
                .args(["--input", &serde_json::json!({ "url": url }).to_string(), "--grant", &grant])
                .output()
                .unwrap()
        })
    };
    let out = run(granted.url("/x"), format!("{}=managed-identity", granted.origin())).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("output JSON on stdout");
    assert_eq!(printed["status"], 200);
    let auth = granted.seen()[0].header("authorization").expect("authorization").to_string();
    let jwt = auth.strip_prefix("Bearer ").expect("bearer");
    assert_eq!(jwt.split('.').count(), 3, "a JWT: {jwt}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains(jwt), "the token never reaches logs");

    let out = run(ungranted.url("/x"), format!("{}=managed-identity", granted.origin())).await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("denied"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(ungranted.seen().is_empty());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("passport/ed25519.seed")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn node_inspect_reports_compatibility() {
    let out = flowstudio().args(["node", "inspect"]).arg(node_path("hello")).output().unwrap();
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["compatible"], true);
    assert_eq!(report["world"], "flowstudio:node/node@0.1.0");
    assert!(report["exports"].as_array().unwrap().iter().any(|e| e == "run"));

    let out = flowstudio().args(["node", "inspect"]).arg(node_path("fs-escape")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["compatible"], false);
    assert!(report["problems"][0].as_str().unwrap().contains("wasi:filesystem/"));
}

//! `flowstudio identity …` through the built binary, on a temporary data dir.

use flowstudio_host::identity::IdentityRegistry;
use flowstudio_host::passport::{load_or_create_issuer, Claims, JwtVerifier, PassportServerConfig};
use flowstudio_tests::identities::*;
use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

fn flowstudio(data_dir: &TempDir) -> Command {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("debug/flowstudio");
    assert!(bin.exists(), "{} is missing: `cargo build --bin flowstudio` first (scripts/test.sh does)", bin.display());
    let mut command = Command::new(bin);
    command.arg("--data-dir").arg(&data_dir.0);
    command
}

fn run(data_dir: &TempDir, args: &[&str]) -> Output {
    flowstudio(data_dir).args(args).output().expect("run flowstudio")
}

fn run_with_stdin(data_dir: &TempDir, args: &[&str], stdin: &str) -> Output {
    let mut child = flowstudio(data_dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn flowstudio");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    child.wait_with_output().expect("wait")
}

fn stdout_json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "exit {:?}: {}", out.status.code(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn create_list_disable_and_enable_through_the_binary() {
    let dir = TempDir::new("cli-ids");
    let created = stdout_json(&run(
        &dir,
        &["identity", "create", "mi-payroll", "--client-id", "payroll-client", "--tenant", "t-1", "--name", "Payroll Scheduler", "--role", "workflow-runner", "--role", "payroll.read"],
    ));
    assert_eq!(created["id"], "mi-payroll");
    assert_eq!(created["clientId"], "payroll-client");
    assert_eq!(created["tenantId"], "t-1");
    assert_eq!(created["name"], "Payroll Scheduler");
    assert_eq!(created["roles"], serde_json::json!(["workflow-runner", "payroll.read"]));
    assert_eq!(created["enabled"], true);
    stdout_json(&run(&dir, &["identity", "create", "mi-audit", "--client-id", "audit-client", "--tenant", "t-1", "--name", "Audit", "--disabled"]));

    let listed = stdout_json(&run(&dir, &["identity", "list"]));
    let ids: Vec<_> = listed.as_array().expect("array").iter().map(|i| i["id"].as_str().expect("id").to_string()).collect();
    assert_eq!(ids, ["mi-audit", "mi-payroll"]);
    assert_eq!(listed[0]["enabled"], false);
    assert_eq!(listed[1], created, "list shows what create printed");

    assert_eq!(stdout_json(&run(&dir, &["identity", "disable", "mi-payroll"]))["enabled"], false);
    assert_eq!(stdout_json(&run(&dir, &["identity", "enable", "mi-audit"]))["enabled"], true);
    let listed = stdout_json(&run(&dir, &["identity", "list"]));
    assert_eq!((listed[0]["enabled"].clone(), listed[1]["enabled"].clone()), (true.into(), false.into()));

    // What the CLI wrote is what the library reads.
    let registry = IdentityRegistry::open(&dir.db()).expect("open");
    let err = registry.resolve("mi-payroll").expect_err("disabled");
    assert_eq!(err.to_string(), "managed identity `mi-payroll` is disabled");

    let out = run(&dir, &["identity", "enable", "mi-nobody"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("managed identity `mi-nobody` does not exist"), "{}", text(&out));
}

#[test]
fn a_duplicate_or_invalid_identity_exits_non_zero_naming_the_field() {
    let dir = TempDir::new("cli-ids-dup");
    stdout_json(&run(&dir, &["identity", "create", "mi-1", "--client-id", "c-1", "--tenant", "t", "--name", "One"]));
    let out = run(&dir, &["identity", "create", "mi-1", "--client-id", "c-2", "--tenant", "t", "--name", "Again"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`id`: a managed identity with id `mi-1` already exists"), "{err}");
    assert!(out.stdout.is_empty());

    let out = run(&dir, &["identity", "create", "mi-2", "--client-id", "c-1", "--tenant", "t", "--name", "Two"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`clientId`"), "{}", text(&out));

    let out = run(&dir, &["identity", "create", "MI 3", "--client-id", "c-3", "--tenant", "t", "--name", "Three"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`id`"), "{}", text(&out));
    assert_eq!(stdout_json(&run(&dir, &["identity", "list"])).as_array().expect("array").len(), 1);
}

#[test]
fn a_secret_from_stdin_is_never_printed_and_a_short_one_is_refused() {
    let dir = TempDir::new("cli-ids-stdin");
    let secret = "stdin-secret-a+b/c:d%e=";
    let out = run_with_stdin(
        &dir,
        &["identity", "create", "mi-1", "--client-id", "c-1", "--tenant", "t", "--name", "One", "--secret-stdin"],
        &format!("{secret}\n"),
    );
    stdout_json(&out);
    assert!(!text(&out).contains(secret));
    let out = run(&dir, &["identity", "list"]);
    stdout_json(&out);
    assert!(!text(&out).contains(secret), "list never shows a secret");
    assert!(!text(&out).to_lowercase().contains("hash"), "nor its hash");
    // The trailing newline was dropped: the secret as given is the one that works.
    let registry = IdentityRegistry::open(&dir.db()).expect("open");
    assert!(registry.verify_client("c-1", &flowstudio_host::secret::Secret::new(secret)).is_ok());

    let out = run_with_stdin(&dir, &["identity", "create", "mi-2", "--client-id", "c-2", "--tenant", "t", "--name", "Two", "--secret-stdin"], "weak\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`clientSecret`"), "{}", text(&out));
    assert!(!text(&out).contains("weak"));
    assert_eq!(stdout_json(&run(&dir, &["identity", "list"])).as_array().expect("array").len(), 1, "no identity without its secret");
}

#[tokio::test]
async fn a_generated_secret_goes_only_to_a_private_file_and_authenticates_at_the_passport() {
    let dir = TempDir::new("cli-ids-generate");
    let secret_file = dir.0.join("mi-1.secret");
    let secret_arg = secret_file.to_str().expect("utf-8 path").to_string();
    let args = ["identity", "create", "mi-1", "--client-id", "c-1", "--tenant", "t", "--name", "One", "--role", "workflow-runner", "--generate-secret", "--secret-out", &secret_arg];
    // Blocking is fine here: nothing else runs on this test's runtime yet.
    let out = run(&dir, &args);
    stdout_json(&out);
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(std::fs::metadata(&secret_file).expect("secret file").permissions().mode() & 0o777, 0o600);
    let secret = std::fs::read_to_string(&secret_file).expect("read secret");
    assert!(secret.len() >= 40, "a long random secret");
    assert!(!text(&out).contains(&secret), "never printed");
    let listed = run(&dir, &["identity", "list"]);
    assert!(!text(&listed).contains(&secret));

    // An existing file is never overwritten, and nothing is created then.
    let out = run(&dir, &["identity", "create", "mi-2", "--client-id", "c-2", "--tenant", "t", "--name", "Two", "--generate-secret", "--secret-out", &secret_arg]);
    assert!(!out.status.success());
    assert_eq!(std::fs::read_to_string(&secret_file).expect("read"), secret, "file untouched");
    assert_eq!(stdout_json(&run(&dir, &["identity", "list"])).as_array().expect("array").len(), 1);

    // The embedded passport over the same data dir accepts the generated secret.
    let registry = Arc::new(IdentityRegistry::open(&dir.db()).expect("open"));
    let issuer = Arc::new(load_or_create_issuer(&dir.0, "flowstudio").expect("issuer"));
    let passport = RunningPassport::start_with_issuer(registry, issuer, PassportServerConfig::default()).await;
    let response = passport.token_request(Some(&basic_auth("c-1", &secret)), "grant_type=client_credentials").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    let jwks = reqwest::get(passport.url("/passport/jwks")).await.expect("jwks").json().await.expect("json");
    let claims: Claims = JwtVerifier::new("flowstudio", "flowstudio", &jwks)
        .expect("verifier")
        .verify(body["access_token"].as_str().expect("token"))
        .expect("verifies");
    assert_eq!(claims.mi.as_deref(), Some("mi-1"));
}

#[test]
fn identity_check_runs_steps_one_to_four_and_names_the_failing_step() {
    let dir = TempDir::new("cli-ids-check");
    let secret = "a+b/c:d%e=-check";
    let create = ["identity", "create", "mi-1", "--client-id", "c-1", "--tenant", "t-1", "--name", "One", "--role", "workflow-runner", "--secret-stdin"];
    stdout_json(&run_with_stdin(&dir, &create, secret));
    // The embedded defaults read secrets with the `file` provider under `<data-dir>/secrets`.
    std::fs::create_dir_all(dir.0.join("secrets")).expect("secrets dir");
    std::fs::write(dir.0.join("secrets/mi-1"), secret).expect("secret file");
    let reference = r#"{"provider":"file","path":"mi-1"}"#;

    let out = run(&dir, &["identity", "check", "mi-1", "--secret-reference", reference]);
    let info = stdout_json(&out);
    assert_eq!(info["clientId"], "c-1");
    assert_eq!(info["tenantId"], "t-1");
    assert_eq!(info["managedIdentityId"], "mi-1");
    assert_eq!(info["isServiceAccount"], true);
    assert!(!text(&out).contains(secret), "the secret was printed");
    assert!(!text(&out).contains("eyJ"), "a token was printed");

    let wrong = r#"{"provider":"file","path":"nope"}"#;
    let out = run(&dir, &["identity", "check", "mi-1", "--secret-reference", wrong]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("failed at step 2 (client secret)"), "{}", text(&out));

    let out = run(&dir, &["identity", "check", "mi-1", "--secret-reference", r#"{"provider":"file"}"#]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("`path`"), "{}", text(&out));

    stdout_json(&run(&dir, &["identity", "disable", "mi-1"]));
    let out = run(&dir, &["identity", "check", "mi-1", "--secret-reference", reference]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("step 1 (managed identity): managed identity `mi-1` is disabled"), "{}", text(&out));
}

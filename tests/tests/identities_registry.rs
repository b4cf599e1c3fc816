//! The managed-identity registry on a real SQLite file: lifecycle, validation,
//! step 1 of the trigger sequence, persistence, and client secrets that never
//! reach the database in the clear.

use flowstudio_host::identity::{ClientAuthError, IdentityError, IdentityRegistry, DEFAULT_HASH_ITERATIONS};
use flowstudio_host::secret::Secret;
use flowstudio_tests::identities::*;

#[test]
fn create_get_list_disable_enable_and_delete() {
    let dir = TempDir::new("ids-lifecycle");
    let registry = registry(&dir);
    let created = registry.create(new_identity("mi-payroll", "payroll-client")).expect("create");
    assert_eq!(created.id, "mi-payroll");
    assert_eq!(created.client_id, "payroll-client");
    assert_eq!(created.tenant_id, "tenant-1");
    assert_eq!(created.roles, ["workflow-runner", "payroll.read"]);
    assert!(created.enabled);
    registry.create(new_identity("mi-audit", "audit-client")).expect("create second");

    assert_eq!(registry.get("mi-payroll").expect("get"), Some(created.clone()));
    assert_eq!(registry.get("mi-nobody").expect("get"), None);
    assert_eq!(registry.get_by_client_id("payroll-client").expect("by client"), Some(created.clone()));
    let ids: Vec<_> = registry.list().expect("list").into_iter().map(|i| i.id).collect();
    assert_eq!(ids, ["mi-audit", "mi-payroll"], "ordered by id");

    let disabled = registry.disable("mi-payroll").expect("disable");
    assert!(!disabled.enabled);
    assert!(!registry.get("mi-payroll").expect("get").expect("exists").enabled);
    let enabled = registry.enable("mi-payroll").expect("enable");
    assert!(enabled.enabled);
    assert_eq!(enabled, created);

    registry.delete("mi-audit").expect("delete");
    assert_eq!(registry.get("mi-audit").expect("get"), None);
    let err = registry.delete("mi-audit").expect_err("gone");
    assert_eq!(err.to_string(), "managed identity `mi-audit` does not exist");
    let err = registry.disable("mi-audit").expect_err("gone");
    assert_eq!(err.to_string(), "managed identity `mi-audit` does not exist");
}

#[test]
fn the_json_shape_is_camel_case() {
    let dir = TempDir::new("ids-json");
    let created = registry(&dir).create(new_identity("mi-1", "c-1")).expect("create");
    let json = serde_json::to_value(&created).expect("json");
    let mut keys: Vec<_> = json.as_object().expect("object").keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["clientId", "createdAt", "enabled", "id", "name", "roles", "tenantId"]);
    let created_at = json["createdAt"].as_str().expect("string");
    assert!(chrono::DateTime::parse_from_rfc3339(created_at).is_ok(), "{created_at}");
}

#[test]
fn duplicate_id_and_client_id_are_rejected_naming_the_field() {
    let dir = TempDir::new("ids-dup");
    let registry = registry(&dir);
    registry.create(new_identity("mi-1", "client-1")).expect("create");

    let err = registry.create(new_identity("mi-1", "client-2")).expect_err("same id");
    let fields: Vec<_> = err.field_errors().iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["id"]);
    assert!(err.to_string().contains("`id`: a managed identity with id `mi-1` already exists"), "{err}");

    let err = registry.create(new_identity("mi-2", "client-1")).expect_err("same client id");
    let fields: Vec<_> = err.field_errors().iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["clientId"]);
    assert!(err.to_string().contains("client id `client-1` already belongs"), "{err}");

    let err = registry.create(new_identity("mi-1", "client-1")).expect_err("both");
    let fields: Vec<_> = err.field_errors().iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["id", "clientId"]);
    assert_eq!(registry.list().expect("list").len(), 1, "nothing half-created");
}

#[test]
fn bad_fields_are_all_reported_at_once() {
    let dir = TempDir::new("ids-invalid");
    let mut bad = new_identity("Not A Slug", "");
    bad.tenant_id = String::new();
    bad.roles = vec!["runner".into(), "runner".into()];
    let err = registry(&dir).create(bad).expect_err("invalid");
    let fields: Vec<_> = err.field_errors().iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["id", "clientId", "tenantId", "roles[1]"]);
    assert!(matches!(err, IdentityError::Invalid(_)));
}

#[test]
fn resolve_gives_the_exact_messages_for_unknown_and_disabled_identities() {
    let dir = TempDir::new("ids-resolve");
    let registry = registry(&dir);
    registry.create(new_identity("mi-1", "client-1")).expect("create");
    assert_eq!(registry.resolve("mi-1").expect("resolves").client_id, "client-1");

    let err = registry.resolve("mi-2").expect_err("unknown");
    assert!(matches!(err, IdentityError::NotFound(_)));
    assert_eq!(err.to_string(), "managed identity `mi-2` does not exist");

    registry.disable("mi-1").expect("disable");
    let err = registry.resolve("mi-1").expect_err("disabled");
    assert!(matches!(err, IdentityError::Disabled(_)));
    assert_eq!(err.to_string(), "managed identity `mi-1` is disabled");
}

#[test]
fn identities_and_secrets_survive_reopening_the_file() {
    let dir = TempDir::new("ids-reopen");
    let created = {
        let registry = registry(&dir);
        let created = registry.create(new_identity("mi-1", "client-1")).expect("create");
        registry.set_client_secret("mi-1", &Secret::new("a+b/c:d%e=")).expect("secret");
        registry.create(new_identity("mi-2", "client-2")).expect("create");
        registry.disable("mi-2").expect("disable");
        created
    };
    let reopened = registry(&dir);
    assert_eq!(reopened.get("mi-1").expect("get"), Some(created));
    assert!(!reopened.get("mi-2").expect("get").expect("exists").enabled);
    assert!(reopened.has_client_secret("mi-1").expect("has"));
    assert!(!reopened.has_client_secret("mi-2").expect("has"));
    let identity = reopened.verify_client("client-1", &Secret::new("a+b/c:d%e=")).expect("verifies after reopen");
    assert_eq!(identity.id, "mi-1");
}

#[test]
fn verify_client_accepts_only_the_right_secret_of_an_enabled_identity() {
    let dir = TempDir::new("ids-verify");
    let registry = registry(&dir);
    registry.create(new_identity("mi-1", "client-1")).expect("create");
    let secret = Secret::new("correct horse battery");
    assert!(matches!(registry.verify_client("client-1", &secret), Err(ClientAuthError::NoSecret(_))));
    registry.set_client_secret("mi-1", &secret).expect("set");

    assert_eq!(registry.verify_client("client-1", &secret).expect("ok").id, "mi-1");
    assert!(matches!(registry.verify_client("client-1", &Secret::new("correct horse battery ")), Err(ClientAuthError::WrongSecret(_))));
    assert!(matches!(registry.verify_client("client-x", &secret), Err(ClientAuthError::UnknownClient(_))));
    assert!(matches!(registry.verify_client("mi-1", &secret), Err(ClientAuthError::UnknownClient(_))), "by client id, not id");

    registry.disable("mi-1").expect("disable");
    let err = registry.verify_client("client-1", &secret).expect_err("disabled");
    assert_eq!(err.to_string(), "managed identity `mi-1` is disabled");

    registry.enable("mi-1").expect("enable");
    let rotated = Secret::new("a fresh secret value");
    registry.set_client_secret("mi-1", &rotated).expect("rotate");
    assert!(registry.verify_client("client-1", &rotated).is_ok());
    assert!(matches!(registry.verify_client("client-1", &secret), Err(ClientAuthError::WrongSecret(_))), "old secret no longer works");

    // Deleting the identity removes its secret: a new identity with the same id starts without one.
    registry.delete("mi-1").expect("delete");
    registry.create(new_identity("mi-1", "client-1")).expect("recreate");
    assert!(!registry.has_client_secret("mi-1").expect("has"));
}

#[test]
fn secrets_are_validated_and_never_quoted() {
    let dir = TempDir::new("ids-secret-rules");
    let registry = registry(&dir);
    registry.create(new_identity("mi-1", "client-1")).expect("create");
    let err = registry.set_client_secret("mi-1", &Secret::new("short")).expect_err("short");
    assert_eq!(err.field_errors()[0].field, "clientSecret");
    assert!(!err.to_string().contains("short"), "{err}");
    let err = registry.set_client_secret("mi-1", &Secret::new("ends with a newline\n")).expect_err("newline");
    assert!(!err.to_string().contains("ends with"), "{err}");
    let err = registry.set_client_secret("mi-9", &Secret::new("long enough secret")).expect_err("unknown");
    assert_eq!(err.to_string(), "managed identity `mi-9` does not exist");

    let err = registry
        .create_with_client_secret(new_identity("mi-2", "client-2"), &Secret::new("tiny"))
        .expect_err("identity and secret go together");
    assert_eq!(err.field_errors()[0].field, "clientSecret");
    assert_eq!(registry.get("mi-2").expect("get"), None, "a refused secret leaves no identity behind");
}

/// Every file SQLite keeps for the database: the main file, its WAL and shared memory.
fn database_bytes(dir: &TempDir) -> Vec<u8> {
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", dir.db().display());
        if let Ok(content) = std::fs::read(&path) {
            bytes.extend(content);
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn the_database_files_never_contain_the_secret() {
    let dir = TempDir::new("ids-at-rest");
    let registry = registry(&dir);
    let secret = "needle-a+b/c:d%e=-4f1c9e";
    registry
        .create_with_client_secret(new_identity("mi-1", "client-needle-7731"), &Secret::new(secret))
        .expect("create with secret");
    registry.create(new_identity("mi-2", "client-2")).expect("create");
    registry.set_client_secret("mi-2", &Secret::new(secret)).expect("set");
    // Keep the registry (and its WAL) open: the scan covers uncheckpointed pages too.
    let bytes = database_bytes(&dir);
    assert!(std::fs::metadata(format!("{}-wal", dir.db().display())).is_ok(), "WAL file present");
    assert!(contains(&bytes, b"client-needle-7731"), "the scan sees what is stored");
    assert!(!contains(&bytes, secret.as_bytes()), "secret stored in the clear");
    assert!(!contains(&bytes, b"needle-a+b"), "a prefix of the secret stored");
    // The same secret hashes differently per identity (per-identity salt).
    let conn = rusqlite::Connection::open(dir.db()).expect("open");
    let hashes: Vec<Vec<u8>> = conn
        .prepare("SELECT hash FROM managed_identity_secrets ORDER BY identity_id")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(hashes.len(), 2);
    assert_ne!(hashes[0], hashes[1]);

    // Neither get/list JSON nor Debug output carries the secret or its hash.
    let listed = serde_json::to_string(&registry.list().expect("list")).expect("json");
    let shown = format!("{listed} {:?} {registry:?}", registry.get("mi-1").expect("get"));
    assert!(!shown.contains(secret));
    assert!(!listed.contains("hash") && !listed.contains("salt"), "{listed}");
    for hash in &hashes {
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!shown.to_lowercase().contains(&hex[..16]), "{shown}");
    }
}

#[test]
fn production_registries_hash_with_the_default_cost() {
    let dir = TempDir::new("ids-cost");
    let registry = IdentityRegistry::open(&dir.db()).expect("open");
    registry.create(new_identity("mi-1", "client-1")).expect("create");
    registry.set_client_secret("mi-1", &Secret::new("the default cost")).expect("set");
    let cheap = IdentityRegistry::open(&dir.db()).expect("open").with_hash_iterations(1);
    cheap.create(new_identity("mi-2", "client-2")).expect("create");
    cheap.set_client_secret("mi-2", &Secret::new("a floored cost")).expect("set");
    let conn = rusqlite::Connection::open(dir.db()).expect("open");
    let cost = |id: &str| -> u32 {
        conn.query_row("SELECT iterations FROM managed_identity_secrets WHERE identity_id = ?1", [id], |r| r.get(0)).expect("row")
    };
    assert_eq!(cost("mi-1"), DEFAULT_HASH_ITERATIONS);
    assert_eq!(cost("mi-2"), flowstudio_host::identity::MIN_HASH_ITERATIONS, "never below the floor");
    // A stored hash keeps its own cost: a registry configured differently still verifies it.
    assert!(cheap.verify_client("client-1", &Secret::new("the default cost")).is_ok());
    assert!(cheap.verify_client("client-2", &Secret::new("a floored cost")).is_ok());
}

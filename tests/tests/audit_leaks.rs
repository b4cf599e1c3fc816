//! Secrets and tokens never reach the audit log: not in its columns, not in
//! the database file, not in the write-ahead log.

use flowstudio_host::audit::*;
use flowstudio_host::secret::Secret;
use flowstudio_host::secrets::SecretReference;
use flowstudio_host::token::TokenSource;
use flowstudio_tests::audit::*;
use std::sync::Arc;

const CLIENT_SECRET: &str = "S3cr3t-a+b/c:d%e=-never-log-me";

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn a_known_secret_and_token_never_reach_the_audit_table_or_the_db_files() {
    let dir = temp_data_dir("audit-leaks");
    let db = flowstudio_host::db::path_in(&dir);
    // A real token from the embedded passport.
    let identity = flowstudio_tests::dev_identity();
    let token = identity.tokens.token(None).await.expect("token");
    let jwt = token.token.expose().to_string();
    let secret = Secret::new(CLIENT_SECRET);
    let actor = AuditActor::from_id_info(&token.id_info);

    let reference = SecretReference::HashicorpVault {
        address: "http://127.0.0.1:8200".into(),
        mount: "secret".into(),
        path: "payroll/scheduler".into(),
        key: "client_secret".into(),
        namespace: None,
    };
    let mut read = SecretReadEvent::new(actor.clone(), &reference, Outcome::Success);
    read.execution_id = Some("exec-leak".into());
    let events = vec![
        // A destination that (wrongly) kept its query string, with both values in it.
        egress_event("exec-leak", "mi-1", &format!("https://x/?token={CLIENT_SECRET}&access_token={jwt}")),
        AuditEvent::SecretRead(read),
        AuditEvent::TokenMinted(TokenEvent {
            actor: actor.clone(),
            execution_id: Some("exec-leak".into()),
            audience: None,
            expires_at: token.expires_at,
            outcome: Outcome::Success,
            reason: None,
        }),
        // Careless reasons: an error that quotes a URL with the secret, the token, a Bearer header, a formatted Secret.
        AuditEvent::TokenRefreshed(TokenEvent {
            actor: actor.clone(),
            execution_id: Some("exec-leak".into()),
            audience: Some("https://api.example/?client_secret=".to_string() + CLIENT_SECRET),
            expires_at: 0,
            outcome: Outcome::Failure,
            reason: Some(format!(
                "POST https://passport.test/passport/token?client_secret={CLIENT_SECRET} failed; old token {jwt}; header Bearer {jwt}; secret {secret}"
            )),
        }),
        AuditEvent::ExecutionFailed(ExecutionEvent {
            reason: Some(format!("node said: Authorization: Bearer {CLIENT_SECRET}")),
            ..execution_event("exec-leak", "mi-1")
        }),
    ];
    let sink = SqliteAuditSink::open(&db, Arc::new(flowstudio_host::clock::SystemClock)).expect("sink");
    for event in events {
        sink.record(event);
    }
    sink.flush().expect("flush");

    // Every column of every row, as text.
    let text = all_audit_text(&raw_connection(&dir));
    assert!(text.contains("egress.call") && text.contains("secret.read") && text.contains("payroll/scheduler"), "{text}");
    assert!(text.contains("https://x/"), "the destination host stays: {text}");
    assert!(!text.contains(CLIENT_SECRET), "the secret is in the audit table: {text}");
    assert!(!text.contains(&jwt), "the token is in the audit table: {text}");
    // Not even a signature part of the token.
    let signature = jwt.rsplit('.').next().expect("signature");
    assert!(!text.contains(signature));

    // The raw files while the writer is alive (the WAL still holds the pages) and after it is gone.
    let wal = dir.join("state.db-wal");
    assert!(wal.exists(), "the WAL file should exist while connections are open");
    for file in [db.clone(), wal.clone()] {
        let bytes = std::fs::read(&file).expect("read db file");
        assert!(!contains(&bytes, CLIENT_SECRET), "the secret is in {}", file.display());
        assert!(!contains(&bytes, &jwt), "the token is in {}", file.display());
    }
    drop(sink);
    let bytes = std::fs::read(&db).expect("read db");
    assert!(contains(&bytes, "egress.call"), "the scan reads the real data");
    assert!(!contains(&bytes, CLIENT_SECRET) && !contains(&bytes, &jwt));
    assert!(store(&dir).verify().expect("query").is_ok());
}

/// Every text column of every audit row (events and head), one value a line.
fn all_audit_text(conn: &rusqlite::Connection) -> String {
    let mut text = String::new();
    for table in ["audit_events", "audit_head"] {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {table}")).expect("prepare");
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).expect("query");
        while let Some(row) = rows.next().expect("row") {
            for i in 0..columns {
                if let Ok(Some(value)) = row.get::<_, Option<String>>(i) {
                    text.push_str(&value);
                    text.push('\n');
                }
            }
        }
    }
    text
}

#[test]
fn the_tracing_sink_line_is_scrubbed_the_same_way() {
    let event = egress_event("exec-1", "mi-1", &format!("https://x/?token={CLIENT_SECRET}"));
    let details = event.details().to_string();
    assert!(!details.contains(CLIENT_SECRET), "{details}");
    assert!(details.contains("https://x/"), "{details}");
}

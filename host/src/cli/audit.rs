//! `flowstudio audit verify|query`: the audit log of a data dir.

use anyhow::Context as _;
use clap::Subcommand;
use flowstudio_host::audit::{AuditFilter, AuditStore};
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the audit hash chain of the data dir. Prints a JSON summary; exits 1
    /// naming the first bad event (edited, deleted or reordered) when it is broken.
    Verify,
    /// Print audit events as JSON lines, oldest first. Filters combine with AND.
    Query {
        /// Only events of this execution.
        #[arg(long)]
        execution: Option<String>,
        /// Only events whose actor is this managed identity, user or client id.
        #[arg(long)]
        identity: Option<String>,
        /// Only this action (`egress.call`), or a prefix ending in `*` (`execution.*`).
        #[arg(long)]
        action: Option<String>,
        /// Only events at or after this instant (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only events before this instant (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// At most this many events.
        #[arg(long)]
        limit: Option<u32>,
    },
}

pub fn run(cmd: AuditCommand, data_dir: &Path) -> anyhow::Result<ExitCode> {
    let db = flowstudio_host::db::path_in(data_dir);
    match cmd {
        AuditCommand::Verify => {
            if !db.exists() {
                // A fresh data dir: nothing recorded yet is a valid (empty) chain; do not create files.
                println!("{}", serde_json::json!({ "intact": true, "events": 0, "headSeq": null, "headHash": null }));
                eprintln!("audit log is empty ({} does not exist yet)", db.display());
                return Ok(ExitCode::SUCCESS);
            }
            let store = AuditStore::open(&db)?;
            match store.verify()? {
                Ok(summary) => {
                    let mut json = serde_json::to_value(&summary)?;
                    json["intact"] = true.into();
                    println!("{json}");
                    eprintln!("audit chain intact: {} events", summary.events);
                    Ok(ExitCode::SUCCESS)
                }
                Err(broken) => {
                    println!("{}", serde_json::json!({ "intact": false, "firstBadEvent": broken.seq, "problem": broken.problem }));
                    eprintln!("error: {broken}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        AuditCommand::Query { execution, identity, action, since, until, limit } => {
            let instant = |flag: &str, text: Option<String>| -> anyhow::Result<_> {
                text.map(|t| {
                    chrono::DateTime::parse_from_rfc3339(&t)
                        .map(|d| d.with_timezone(&chrono::Utc))
                        .with_context(|| format!("`--{flag} {t}` is not an RFC 3339 time"))
                })
                .transpose()
            };
            let filter = AuditFilter {
                execution_id: execution,
                identity,
                action,
                since: instant("since", since)?,
                until: instant("until", until)?,
                limit,
            };
            if !db.exists() {
                return Ok(ExitCode::SUCCESS);
            }
            let store = AuditStore::open(&db)?;
            for record in store.query(&filter)? {
                println!("{}", serde_json::to_string(&record)?);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

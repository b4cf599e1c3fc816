//! `flowstudio node inspect|run`.

use anyhow::Context as _;
use clap::Subcommand;
use flowstudio_host::audit::TracingAuditSink;
use flowstudio_host::egress::{EgressPolicy, Grant, RunEgress};
use flowstudio_host::passport::{load_or_create_issuer, DevTokenSource, DEV_ISSUER};
use flowstudio_host::runtime::{Invocation, RunContext, Runtime, RuntimeConfig};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Print a component's world, imports and exports, and whether this host runs it (JSON).
    Inspect { file: PathBuf },
    /// Run a node once as the local dev identity and print its output JSON.
    Run {
        file: PathBuf,
        /// The node's input document.
        #[arg(long, default_value = "{}")]
        input: String,
        /// Allow a destination: `URL[=managed-identity[:AUDIENCE]|none]` (default `none`). Repeatable.
        #[arg(long = "grant")]
        grants: Vec<String>,
        /// Wall-clock budget in milliseconds (default 30000).
        #[arg(long)]
        deadline_ms: Option<u64>,
    },
}

pub fn run(cmd: NodeCommand, data_dir: &Path) -> anyhow::Result<ExitCode> {
    match cmd {
        NodeCommand::Inspect { file } => {
            let wasm = std::fs::read(&file).with_context(|| format!("cannot read `{}`", file.display()))?;
            let runtime = Runtime::new(RuntimeConfig::default())?;
            let inspection = runtime.inspect(&wasm)?;
            println!("{}", serde_json::to_string_pretty(&inspection)?);
            Ok(if inspection.compatible { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        NodeCommand::Run { file, input, grants, deadline_ms } => {
            let input: serde_json::Value =
                serde_json::from_str(&input).context("`--input` is not a JSON document")?;
            let grants = grants.iter().map(|g| Grant::parse_spec(g)).collect::<Result<Vec<_>, _>>()?;
            let runtime = Runtime::new(RuntimeConfig {
                cache_dir: Some(data_dir.join("compiled")),
                ..Default::default()
            })?;
            let mut limits = runtime.default_limits();
            if let Some(ms) = deadline_ms {
                limits.deadline = std::time::Duration::from_millis(ms);
            }
            let node = runtime.load_file(&file)?;
            // The data dir's passport key (created 0600 on first use), so tokens stay verifiable across runs.
            let issuer = Arc::new(load_or_create_issuer(data_dir, DEV_ISSUER)?);
            let tokens = Arc::new(DevTokenSource::new(issuer, "flowstudio", DevTokenSource::dev_identity(), 3600));
            // Dev mode: tokens may go over plain http, but only to loopback.
            let policy = EgressPolicy { grants, allow_loopback_plain_http_tokens: true, ..Default::default() };
            let execution_id = format!("cli-{}", std::process::id());
            let egress = RunEgress::new(policy, tokens, Arc::new(TracingAuditSink), execution_id.clone());
            let context = RunContext {
                execution_id,
                workflow_id: "cli".into(),
                node_id: file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
                attempt: 1,
                triggered_by: "cli:dev".into(),
                tenant_id: "dev-tenant".into(),
                ..Default::default()
            };
            let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let output = tokio.block_on(runtime.run(&node, Invocation { context, input, egress, limits: Some(limits) }))?;
            for line in &output.logs {
                eprintln!("[{}] {}", line.level, line.message);
            }
            println!("{}", serde_json::to_string_pretty(&output.output)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

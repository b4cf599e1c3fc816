//! `flowstudio node inspect|run`.

use anyhow::Context as _;
use clap::Subcommand;
use flowstudio_host::audit::TracingAuditSink;
use flowstudio_host::egress::{EgressPolicy, Grant, RunEgress};
use flowstudio_host::passport::{DevTokenSource, Issuer};
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
                cache_dir: Some(data_dir.join("components")),
                ..Default::default()
            })?;
            let mut limits = runtime.default_limits();
            if let Some(ms) = deadline_ms {
                limits.deadline = std::time::Duration::from_millis(ms);
            }
            let node = runtime.load_file(&file)?;
            let issuer = Arc::new(dev_issuer(data_dir)?);
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

/// The embedded passport's key, created once per data dir (0600) so tokens stay verifiable across runs.
fn dev_issuer(data_dir: &Path) -> anyhow::Result<Issuer> {
    let path = data_dir.join("passport").join("ed25519.seed");
    let seed: [u8; 32] = match std::fs::read(&path) {
        Ok(bytes) => bytes.try_into().map_err(|_| anyhow::anyhow!("passport key `{}` is damaged", path.display()))?,
        Err(_) => {
            let seed: [u8; 32] = rand::random();
            write_private(&path, &seed)?;
            seed
        }
    };
    Ok(Issuer::from_seed("flowstudio-dev", &seed)?)
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create `{}`", path.display()))?;
    file.write_all(bytes)?;
    Ok(())
}

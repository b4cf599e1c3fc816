//! `flowstudio serve` (the main job: scheduler + REST API + embedded
//! passport) and `flowstudio admin token`.

use anyhow::Context as _;
use clap::Subcommand;
use flowstudio_host::config::Config;
use flowstudio_host::identity::IdentityRegistry;
use flowstudio_host::server::{self, bootstrap, ServeOptions};
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

pub fn serve(listen: Option<SocketAddr>, data_dir: &Path, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = Config::load(config)?;
    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    tokio.block_on(async {
        let options = ServeOptions { data_dir: data_dir.to_path_buf(), config, listen };
        let host = server::start(options).await?;
        let url = host.url();
        // One line a script can wait for; the rest is for people.
        println!("{}", serde_json::json!({ "listening": url, "api": format!("{url}/flowstudio/api"), "dataDir": data_dir.display().to_string() }));
        eprintln!("flowstudio: serving {url}/flowstudio/api/ (passport {url}/passport/token, metrics {url}/metrics)");
        eprintln!("flowstudio: admin token: flowstudio --data-dir {} admin token", data_dir.display());
        wait_for_signal().await?;
        eprintln!("flowstudio: shutting down: no new firings; running executions get the grace period");
        let report = host.shutdown().await;
        eprintln!(
            "flowstudio: stopped ({} finished during the grace period, {} checkpointed as interrupted)",
            report.finished.len(),
            report.interrupted.len()
        );
        Ok(ExitCode::SUCCESS)
    })
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Print a fresh admin access token (one line) from the data dir's bootstrap
    /// admin client (created 0600 by the first `serve`). Works whether or not serve runs.
    Token,
}

pub fn admin(cmd: AdminCommand, data_dir: &Path, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = Config::load(config)?;
    match cmd {
        AdminCommand::Token => {
            let db = flowstudio_host::db::path_in(data_dir);
            anyhow::ensure!(
                db.exists() && bootstrap::admin_client_path(data_dir).exists(),
                "data dir `{}` has no bootstrap admin client yet; start `flowstudio serve --data-dir {}` once",
                data_dir.display(),
                data_dir.display()
            );
            let registry = Arc::new(IdentityRegistry::open(&db)?);
            let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let token = tokio.block_on(bootstrap::admin_token(data_dir, registry, &config.passport.embedded))?;
            println!("{}", token.expose());
            Ok(ExitCode::SUCCESS)
        }
    }
}

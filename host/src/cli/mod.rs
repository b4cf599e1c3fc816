//! Argument parsing and dispatch for the `flowstudio` binary.

mod audit;
mod cron;
mod identity;
mod identity_check;
mod node;
mod serve;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "flowstudio", version, about = "Run workflows of sandboxed WebAssembly nodes as managed identities")]
pub struct Cli {
    /// Configuration file (default: ./flowstudio.toml if present, else embedded defaults).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// State directory: compiled-node cache, embedded passport keys.
    #[arg(long, global = true, default_value = ".flowstudio")]
    pub data_dir: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect or run node components.
    #[command(subcommand)]
    Node(node::NodeCommand),
    /// Cron expression tools.
    #[command(subcommand)]
    Cron(cron::CronCommand),
    /// Check and search the tamper-evident audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Manage the managed identities (service accounts) runs act as.
    #[command(subcommand)]
    Identity(identity::IdentityCommand),
    /// Run the host: scheduler, REST admin API, embedded passport (Ctrl-C/SIGTERM stops it gracefully).
    Serve {
        /// Address to listen on (default: `[server] listen` of the config, 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Admin credentials of the data dir.
    #[command(subcommand)]
    Admin(serve::AdminCommand),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Some(path) = &cli.config {
        anyhow::ensure!(path.exists(), "config file `{}` does not exist", path.display());
    }
    match cli.command {
        Command::Node(cmd) => node::run(cmd, &cli.data_dir),
        Command::Cron(cmd) => cron::run(cmd),
        Command::Audit(cmd) => audit::run(cmd, &cli.data_dir),
        Command::Identity(cmd) => identity::run(cmd, &cli.data_dir, cli.config.as_deref()),
        Command::Serve { listen } => serve::serve(listen, &cli.data_dir, cli.config.as_deref()),
        Command::Admin(cmd) => serve::admin(cmd, &cli.data_dir, cli.config.as_deref()),
    }
}

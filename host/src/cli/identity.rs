//! `flowstudio identity create|list|disable|enable|delete|set-secret` over the
//! data dir's state database.
//!
//! A generated client secret is written only to a new file (`--secret-out`,
//! created 0600, never overwritten), not printed: stdout and stderr end up in
//! terminal scrollback, CI logs and log collectors, while a private file can be
//! handed to a secret store (`az keyvault secret set --file`, `aws
//! secretsmanager put-secret-value --secret-string file://…`) and then removed.

use anyhow::Context as _;
use clap::{Args, Subcommand};
use flowstudio_host::db;
use flowstudio_host::identity::{generate_client_secret, IdentityError, IdentityRegistry, NewManagedIdentity};
use flowstudio_host::secret::Secret;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Register a managed identity and print it (JSON). Invalid input exits 2 naming the field.
    Create {
        /// The identity's id (lowercase letters, digits, `-`, `_`, `.`), e.g. `mi-payroll`.
        id: String,
        /// The OAuth client id it authenticates as.
        #[arg(long)]
        client_id: String,
        /// Its tenant id (the `tid` claim).
        #[arg(long = "tenant")]
        tenant_id: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// A role (repeatable), e.g. `--role workflow-runner`.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Create it disabled.
        #[arg(long)]
        disabled: bool,
        #[command(flatten)]
        secret: SecretArgs,
    },
    /// Print all managed identities (JSON array). Never shows secrets.
    List,
    /// Disable an identity: its schedules fail to fire and the passport refuses it.
    Disable { id: String },
    /// Enable a disabled identity.
    Enable { id: String },
    /// Delete an identity and its client secret.
    Delete { id: String },
    /// Set or replace the client secret the embedded passport accepts for an identity.
    SetSecret {
        id: String,
        #[command(flatten)]
        secret: SecretArgs,
    },
    /// Steps 1–4 of the trigger sequence as a dry run: resolve the identity, read
    /// its secret, mint a token at the passport and verify it. Prints the IDInfo
    /// (JSON) or the step that failed and why (exit 1). Never prints a token or secret.
    Check {
        id: String,
        /// The secret reference (JSON, as in a schedule); default: that of the
        /// first schedule acting as this identity.
        #[arg(long, value_name = "JSON")]
        secret_reference: Option<String>,
    },
}

/// Where the embedded passport's client secret comes from (optional on create).
#[derive(Debug, Args)]
pub struct SecretArgs {
    /// Read the client secret from stdin (one trailing newline is dropped).
    #[arg(long, conflicts_with_all = ["generate_secret", "secret_out"])]
    secret_stdin: bool,
    /// Generate a random client secret and write it to `--secret-out`.
    #[arg(long, requires = "secret_out")]
    generate_secret: bool,
    /// New file (created 0600, never overwritten) that receives the generated secret.
    #[arg(long, value_name = "FILE", requires = "generate_secret")]
    secret_out: Option<PathBuf>,
}

impl SecretArgs {
    fn given(&self) -> bool {
        self.secret_stdin || self.generate_secret
    }
}

pub fn run(cmd: IdentityCommand, data_dir: &Path, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    if let IdentityCommand::Check { id, secret_reference } = &cmd {
        return super::identity_check::run(id, secret_reference.as_deref(), data_dir, config);
    }
    let registry = IdentityRegistry::open(&db::path_in(data_dir))?;
    let outcome = match cmd {
        IdentityCommand::Create { id, client_id, tenant_id, name, roles, disabled, secret } => {
            let new = NewManagedIdentity { id, name, client_id, tenant_id, roles, enabled: !disabled };
            create(&registry, new, &secret)
        }
        IdentityCommand::List => registry.list().map_err(Failure::from).and_then(|all| print_json(&all)),
        IdentityCommand::Disable { id } => registry.disable(&id).map_err(Failure::from).and_then(|i| print_json(&i)),
        IdentityCommand::Enable { id } => registry.enable(&id).map_err(Failure::from).and_then(|i| print_json(&i)),
        IdentityCommand::Delete { id } => registry.delete(&id).map_err(Failure::from),
        IdentityCommand::SetSecret { id, secret } => set_secret(&registry, &id, &secret),
        IdentityCommand::Check { .. } => Ok(()),
    };
    match outcome {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(Failure::Identity(IdentityError::Invalid(errors))) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            Ok(ExitCode::from(2))
        }
        Err(Failure::Identity(e)) => Err(e.into()),
        Err(Failure::Other(e)) => Err(e),
    }
}

/// Invalid input (exit 2) is told apart from everything else (exit 1).
enum Failure {
    Identity(IdentityError),
    Other(anyhow::Error),
}

impl From<IdentityError> for Failure {
    fn from(e: IdentityError) -> Self {
        Failure::Identity(e)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Other(e)
    }
}

fn create(registry: &IdentityRegistry, new: NewManagedIdentity, args: &SecretArgs) -> Result<(), Failure> {
    if !args.given() {
        let identity = registry.create(new)?;
        return print_json(&identity);
    }
    let pending = PendingSecret::prepare(args)?;
    let identity = match registry.create_with_client_secret(new, &pending.secret) {
        Ok(identity) => identity,
        Err(e) => {
            pending.abandon();
            return Err(e.into());
        }
    };
    pending.deliver()?;
    print_json(&identity)
}

fn set_secret(registry: &IdentityRegistry, id: &str, args: &SecretArgs) -> Result<(), Failure> {
    if !args.given() {
        return Err(anyhow::anyhow!("give the secret with `--secret-stdin` or `--generate-secret --secret-out FILE`").into());
    }
    let pending = PendingSecret::prepare(args)?;
    if let Err(e) = registry.set_client_secret(id, &pending.secret) {
        pending.abandon();
        return Err(e.into());
    }
    pending.deliver()?;
    eprintln!("client secret of managed identity `{id}` set");
    Ok(())
}

/// A secret about to be stored: read from stdin, or generated with its output
/// file already created (so a taken path fails before anything is stored).
struct PendingSecret {
    secret: Secret,
    out: Option<(PathBuf, std::fs::File)>,
}

impl PendingSecret {
    fn prepare(args: &SecretArgs) -> anyhow::Result<PendingSecret> {
        if args.secret_stdin {
            let mut text = zeroize::Zeroizing::new(String::new());
            std::io::stdin().read_to_string(&mut text).context("cannot read the client secret from stdin")?;
            let value = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
            return Ok(PendingSecret { secret: Secret::new(value), out: None });
        }
        let path = args.secret_out.clone().context("`--generate-secret` needs `--secret-out FILE`")?;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot create the secret file `{}` (it must not exist yet)", path.display()))?;
        Ok(PendingSecret { secret: generate_client_secret(), out: Some((path, file)) })
    }

    /// Nothing was stored: remove the (still empty) output file.
    fn abandon(self) {
        if let Some((path, file)) = self.out {
            drop(file);
            let _ = std::fs::remove_file(path);
        }
    }

    fn deliver(self) -> anyhow::Result<()> {
        if let Some((path, mut file)) = self.out {
            file.write_all(self.secret.expose().as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("the secret was stored but could not be written to `{}`; set a new one with `identity set-secret`", path.display()))?;
            eprintln!("client secret written to `{}` (mode 0600); move it into your secret store", path.display());
        }
        Ok(())
    }
}

fn print_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(anyhow::Error::from)?;
    // `println!` panics on a closed pipe (`identity list | head`); a closed reader is not our error.
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(anyhow::Error::from(e).context("cannot write to stdout").into()),
        _ => Ok(()),
    }
}

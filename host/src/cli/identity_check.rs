//! `flowstudio identity check ID`: steps 1–4 of the trigger sequence as a dry
//! run against the configured secret store and passport.

use flowstudio_host::app::App;
use flowstudio_host::clock::SystemClock;
use flowstudio_host::config::Config;
use flowstudio_host::secrets::SecretReference;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

pub fn run(id: &str, reference: Option<&str>, data_dir: &Path, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = Config::load(config)?;
    let reference = match reference.map(parse_reference).transpose() {
        Ok(r) => r,
        Err(problems) => {
            for p in problems {
                eprintln!("error: `--secret-reference` {p}");
            }
            return Ok(ExitCode::from(2));
        }
    };
    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    tokio.block_on(async {
        let app = App::open(config, data_dir, Arc::new(SystemClock)).await?;
        let reference = match reference {
            Some(r) => r,
            None => match app.store.list_schedules().await?.into_iter().find(|s| s.spec.managed_identity_id == id) {
                Some(schedule) => schedule.spec.secret_reference,
                None => {
                    eprintln!("error: no schedule acts as managed identity `{id}`; pass its `--secret-reference` JSON");
                    return Ok(ExitCode::from(2));
                }
            },
        };
        let outcome = app.pipeline.check(id, &reference).await;
        // Secret reads and tokens of the check are audited like those of a run.
        let audit = app.audit.clone();
        tokio::task::spawn_blocking(move || audit.flush()).await??;
        match outcome {
            Ok(id_info) => {
                println!("{}", serde_json::to_string_pretty(&id_info)?);
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("error: identity check of `{id}` failed at {e}");
                Ok(ExitCode::from(1))
            }
        }
    })
}

fn parse_reference(text: &str) -> Result<SecretReference, Vec<String>> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| vec![format!("is not JSON: {e}")])?;
    SecretReference::from_json(&value).map_err(|errors| errors.iter().map(|e| e.to_string()).collect())
}

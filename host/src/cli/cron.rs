//! `flowstudio cron next`: the next fire instants of an expression in a zone.

use anyhow::Context as _;
use clap::Subcommand;
use flowstudio_host::cron::Schedule;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum CronCommand {
    /// Print the next N fire instants, one RFC 3339 time (zone offset) per line.
    /// An invalid expression or zone exits 2 with the reason on stderr.
    Next {
        /// 5-field POSIX cron expression or a macro such as `@daily`.
        expr: String,
        /// IANA time zone, e.g. `Europe/Zurich`.
        #[arg(long, default_value = "UTC")]
        tz: String,
        /// Start after this instant (RFC 3339; default: now).
        #[arg(long)]
        after: Option<String>,
        /// How many instants to print.
        #[arg(short = 'n', default_value_t = 5)]
        n: usize,
    },
}

pub fn run(cmd: CronCommand) -> anyhow::Result<ExitCode> {
    let CronCommand::Next { expr, tz, after, n } = cmd;
    let schedule = match Schedule::parse(&expr, &tz) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let after = match after {
        Some(text) => chrono::DateTime::parse_from_rfc3339(&text)
            .with_context(|| format!("`--after {text}` is not an RFC 3339 time"))?
            .with_timezone(&chrono::Utc),
        None => chrono::Utc::now(),
    };
    let upcoming = schedule.upcoming(after, n);
    if upcoming.is_empty() {
        eprintln!("`{expr}` does not fire again after {after}");
    }
    for instant in upcoming {
        println!("{}", instant.to_rfc3339());
    }
    Ok(ExitCode::SUCCESS)
}

//! Opening the state database (SQLite, WAL) the same way everywhere.
//!
//! Every module that keeps state (schedules, executions, identities, audit)
//! opens its own connection to the one database file and creates its own
//! tables; WAL lets those connections read while one writes.

use std::path::Path;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("state database `{path}` could not be opened: {reason}")]
    Open { path: String, reason: String },
    #[error("state database query failed: {0}")]
    Query(#[from] rusqlite::Error),
}

/// The database file inside a data dir.
pub fn path_in(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("state.db")
}

/// How long a connection waits for another connection's write lock before the
/// statement fails as busy.
pub const BUSY_WAIT: Duration = Duration::from_secs(10);
/// Steps of [`wait_for_lock`]: fine ones first, then coarser.
const FINE_STEP: Duration = Duration::from_micros(100);
const FINE_STEPS: i32 = 100;
const COARSE_STEP: Duration = Duration::from_millis(1);

/// The busy handler of every connection: retry in 100 µs steps for the first
/// 10 ms, then in 1 ms steps, up to [`BUSY_WAIT`]. SQLite's own timeout handler
/// sleeps 1, 2, 5, 10 … 100 ms between tries, while the modules' write
/// transactions (state store, audit writer, registry) hold the lock for tens of
/// microseconds; a write queued behind another lost whole milliseconds
/// (`benches/end_to_end`: p99 latency of one execution at a time).
fn wait_for_lock(retries: i32) -> bool {
    let retries = retries.max(0);
    let waited = if retries < FINE_STEPS {
        FINE_STEP * retries as u32
    } else {
        FINE_STEP * FINE_STEPS as u32 + COARSE_STEP * (retries - FINE_STEPS) as u32
    };
    if waited >= BUSY_WAIT {
        return false;
    }
    std::thread::sleep(if retries < FINE_STEPS { FINE_STEP } else { COARSE_STEP });
    true
}

/// Open (creating if needed) the database at `path` with WAL, a busy handler
/// waiting up to [`BUSY_WAIT`] and foreign keys on.
pub fn open(path: &Path) -> Result<rusqlite::Connection, DbError> {
    let fail = |e: &dyn std::fmt::Display| DbError::Open { path: path.display().to_string(), reason: e.to_string() };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
    }
    let conn = rusqlite::Connection::open(path).map_err(|e| fail(&e))?;
    conn.busy_handler(Some(wait_for_lock)).map_err(|e| fail(&e))?;
    // `journal_mode` answers with a row, so it is a query, not an execute.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(|e| fail(&e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(fail(&format!("journal mode is `{mode}`, WAL is required")));
    }
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;").map_err(|e| fail(&e))?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busy_handler_gives_up_after_the_busy_wait() {
        let coarse_steps = ((BUSY_WAIT - FINE_STEP * FINE_STEPS as u32).as_millis() / COARSE_STEP.as_millis()) as i32;
        assert!(!wait_for_lock(FINE_STEPS + coarse_steps), "waited the whole busy wait");
        assert!(wait_for_lock(FINE_STEPS + coarse_steps - 1), "the last step before it still retries");
        assert!(wait_for_lock(0), "the first retry waits");
    }

    #[test]
    fn opens_in_wal_mode_and_creates_the_directory() {
        let dir = std::env::temp_dir().join(format!("flowstudio-db-{}-{}", std::process::id(), rand::random::<u32>()));
        let conn = open(&path_in(&dir.join("nested"))).expect("open");
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).expect("mode");
        assert_eq!(mode, "wal");
        let _ = std::fs::remove_dir_all(dir);
    }
}

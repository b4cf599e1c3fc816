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

/// Open (creating if needed) the database at `path` with WAL, a busy timeout
/// and foreign keys on.
pub fn open(path: &Path) -> Result<rusqlite::Connection, DbError> {
    let fail = |e: &dyn std::fmt::Display| DbError::Open { path: path.display().to_string(), reason: e.to_string() };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
    }
    let conn = rusqlite::Connection::open(path).map_err(|e| fail(&e))?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(|e| fail(&e))?;
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
    fn opens_in_wal_mode_and_creates_the_directory() {
        let dir = std::env::temp_dir().join(format!("flowstudio-db-{}-{}", std::process::id(), rand::random::<u32>()));
        let conn = open(&path_in(&dir.join("nested"))).expect("open");
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).expect("mode");
        assert_eq!(mode, "wal");
        let _ = std::fs::remove_dir_all(dir);
    }
}

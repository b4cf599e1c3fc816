//! The embedded passport's signing key, kept in the data dir so tokens stay
//! verifiable across restarts: a 32-byte Ed25519 seed at
//! `<data dir>/passport/ed25519.seed`, created once with mode 0600 (directory 0700).
//!
//! Creation is atomic (written to a temporary file, then linked into place
//! without replacing), so two processes starting at once agree on one key.

use super::issuer::{Issuer, IssuerError};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("passport key `{path}`: {reason}")]
    Io { path: String, reason: String },
    #[error("passport key `{path}` is damaged: expected a 32-byte seed, found {len} bytes")]
    Damaged { path: String, len: usize },
    #[error("passport key `{path}` is accessible to other users (mode {mode:04o}); run `chmod 600` on it")]
    TooOpen { path: String, mode: u32 },
    #[error(transparent)]
    Issuer(#[from] IssuerError),
}

/// Where a data dir keeps the passport's signing key.
pub fn signing_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("passport").join("ed25519.seed")
}

/// The issuer `issuer` (its `iss` claim) signing with the data dir's key,
/// creating the key on first use.
pub fn load_or_create_issuer(data_dir: &Path, issuer: &str) -> Result<Issuer, KeyError> {
    let path = signing_key_path(data_dir);
    let seed = match read_seed(&path)? {
        Some(seed) => seed,
        None => create_seed(&path)?,
    };
    Ok(Issuer::from_seed(issuer, &seed)?)
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> KeyError {
    KeyError::Io { path: path.display().to_string(), reason: format!("{what}: {e}") }
}

fn read_seed(path: &Path) -> Result<Option<Zeroizing<[u8; 32]>>, KeyError> {
    let metadata = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path, "cannot read it", e)),
    };
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::TooOpen { path: path.display().to_string(), mode });
    }
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| io_error(path, "cannot read it", e))?);
    let mut seed = Zeroizing::new([0u8; 32]);
    if bytes.len() != seed.len() {
        return Err(KeyError::Damaged { path: path.display().to_string(), len: bytes.len() });
    }
    seed.copy_from_slice(&bytes);
    Ok(Some(seed))
}

fn create_seed(path: &Path) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io_error(dir, "cannot create the directory", e))?;
    let seed = Zeroizing::new(rand::random::<[u8; 32]>());
    let temp = dir.join(format!(".ed25519.seed.{}-{:016x}", std::process::id(), rand::random::<u64>()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .and_then(|mut file| file.write_all(seed.as_ref()).and_then(|()| file.sync_all()));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(io_error(&temp, "cannot write it", e));
    }
    // `hard_link` fails if the target exists, so a key another process made first is kept.
    let linked = std::fs::hard_link(&temp, path);
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => Ok(seed),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            read_seed(path)?.ok_or_else(|| io_error(path, "vanished while being created", e))
        }
        Err(e) => Err(io_error(path, "cannot create it", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir() -> PathBuf {
        std::env::temp_dir().join(format!("flowstudio-keys-{}-{:x}", std::process::id(), rand::random::<u64>()))
    }

    #[test]
    fn the_key_is_created_once_private_and_reused() {
        let dir = temp_dir();
        let first = load_or_create_issuer(&dir, "iss").expect("create");
        let second = load_or_create_issuer(&dir, "iss").expect("reuse");
        assert_eq!(first.kid(), second.kid());
        let path = signing_key_path(&dir);
        assert_eq!(std::fs::metadata(&path).expect("seed").permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(path.parent().expect("dir")).expect("dir").permissions().mode() & 0o777, 0o700);
        let leftovers = std::fs::read_dir(path.parent().expect("dir")).expect("list").count();
        assert_eq!(leftovers, 1, "no temporary files left behind");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_damaged_or_world_readable_key_is_refused() {
        let dir = temp_dir();
        load_or_create_issuer(&dir, "iss").expect("create");
        let path = signing_key_path(&dir);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = load_or_create_issuer(&dir, "iss").expect_err("too open");
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        std::fs::write(&path, b"short").expect("damage");
        let err = load_or_create_issuer(&dir, "iss").expect_err("damaged");
        assert!(err.to_string().contains("5 bytes"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}

//! Content-addressed node components: `.wasm` files in the data dir named by
//! the sha256 of their bytes. Reading checks the digest again, so a file changed
//! on disk is refused instead of run.

use crate::runtime::digest;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    #[error("`{0}` is not a component digest (expected `sha256:<64 lowercase hex>`)")]
    BadDigest(String),
    #[error("component {0} is not in the component store")]
    NotFound(String),
    #[error("component {digest} in the store does not match its digest (found {actual}); refusing to run it")]
    Tampered { digest: String, actual: String },
    #[error("component store `{path}`: {reason}")]
    Io { path: String, reason: String },
}

#[derive(Debug, Clone)]
pub struct ComponentStore {
    dir: PathBuf,
}

impl ComponentStore {
    /// The store in `<data dir>/components`.
    pub fn in_data_dir(data_dir: &Path) -> ComponentStore {
        ComponentStore { dir: data_dir.join("components") }
    }

    pub fn new(dir: impl Into<PathBuf>) -> ComponentStore {
        ComponentStore { dir: dir.into() }
    }

    fn path_for(&self, digest: &str) -> Result<PathBuf, ComponentError> {
        if !super::valid_digest(digest) {
            return Err(ComponentError::BadDigest(digest.to_string()));
        }
        Ok(self.dir.join(format!("{}.wasm", digest.replace(':', "-"))))
    }

    fn io(&self, path: &Path, e: std::io::Error) -> ComponentError {
        ComponentError::Io { path: path.display().to_string(), reason: e.to_string() }
    }

    /// Store bytes; returns their digest. Storing the same bytes twice is a no-op.
    pub fn put(&self, wasm: &[u8]) -> Result<String, ComponentError> {
        let digest = digest(wasm);
        let path = self.path_for(&digest)?;
        if path.exists() {
            return Ok(digest);
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| self.io(&self.dir, e))?;
        // Write then rename: a reader never sees half a component.
        let tmp = path.with_extension(format!("tmp{}-{}", std::process::id(), rand::random::<u32>()));
        std::fs::write(&tmp, wasm).map_err(|e| self.io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| self.io(&path, e))?;
        Ok(digest)
    }

    /// Store a `.wasm` file; returns its digest.
    pub fn put_file(&self, file: &Path) -> Result<String, ComponentError> {
        let wasm = std::fs::read(file).map_err(|e| self.io(file, e))?;
        self.put(&wasm)
    }

    /// The bytes of a stored component, checked against the digest.
    pub fn get(&self, digest: &str) -> Result<Vec<u8>, ComponentError> {
        let path = self.path_for(digest)?;
        let wasm = match std::fs::read(&path) {
            Ok(w) => w,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ComponentError::NotFound(digest.to_string())),
            Err(e) => return Err(self.io(&path, e)),
        };
        let actual = super::super::runtime::digest(&wasm);
        if actual != digest {
            return Err(ComponentError::Tampered { digest: digest.to_string(), actual });
        }
        Ok(wasm)
    }

    pub fn contains(&self, digest: &str) -> bool {
        self.path_for(digest).is_ok_and(|p| p.exists())
    }
}

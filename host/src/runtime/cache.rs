//! On-disk cache of compiled components, keyed by content digest and the
//! engine's compatibility hash (artifacts are tied to wasmtime version and config).

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::component::Component;
use wasmtime::Engine;

/// `sha256:<hex>` of a component's bytes.
pub fn digest(wasm: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(wasm)))
}

pub struct ComponentCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

impl ComponentCache {
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> ComponentCache {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        ComponentCache { dir, engine_key: format!("{:016x}", hasher.finish()) }
    }

    fn path_for(&self, digest: &str) -> Option<PathBuf> {
        let name = format!("{}-{}.cwasm", digest.trim_start_matches("sha256:"), self.engine_key);
        self.dir.as_ref().map(|d| d.join(name))
    }

    /// Compile `wasm`, or load the artifact this host compiled earlier.
    pub fn compile(&self, engine: &Engine, wasm: &[u8], digest: &str) -> wasmtime::Result<Component> {
        let path = self.path_for(digest);
        if let Some(path) = path.as_deref().filter(|p| p.exists()) {
            // SAFETY: the file sits in the host's own cache directory, named by the
            // digest of the source and the engine compatibility hash; only this
            // host writes there (see `store`).
            match unsafe { Component::deserialize_file(engine, path) } {
                Ok(component) => return Ok(component),
                Err(e) => tracing::warn!("ignoring unreadable cached component {}: {e}", path.display()),
            }
        }
        let component = Component::new(engine, wasm)?;
        if let Some(path) = path {
            if let Err(e) = store(&component, &path) {
                tracing::warn!("could not cache compiled component at {}: {e}", path.display());
            }
        }
        Ok(component)
    }
}

fn store(component: &Component, path: &Path) -> anyhow::Result<()> {
    let bytes = component.serialize().map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Write then rename, so a concurrent reader never sees half a file.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

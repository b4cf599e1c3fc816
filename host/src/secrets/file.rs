//! The `file` provider (development): a client secret from a file under the
//! configured root folder: its whole content without the trailing newline,
//! or one key of a JSON object. The version is a keyed hash of the content,
//! so rewriting the file is seen as a rotation.

use super::config::FileConfig;
use super::extract::{content_version, json_key};
use super::{Freshness, SecretError, SecretReference, SecretValue, SecretsProvider};
use crate::secret::Secret;
use futures::future::BoxFuture;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// A secret file is small; anything bigger is a wrong path.
const MAX_FILE_BYTES: u64 = 64 * 1024;

#[derive(Debug)]
pub struct FileProvider {
    root: PathBuf,
}

impl FileProvider {
    pub fn new(config: &FileConfig) -> FileProvider {
        FileProvider { root: config.root.clone() }
    }

    async fn read_now(&self, reference: &SecretReference) -> Result<SecretValue, SecretError> {
        let SecretReference::File { path, key } = reference else {
            return Err(SecretError::NotConfigured { provider: "file".into(), reason: format!("asked to read {reference}") });
        };
        let named = || reference.to_string();
        let denied = |reason: String| SecretError::AccessDenied { reference: named(), reason };
        let invalid = |reason: String| SecretError::Invalid { reference: named(), reason };
        let root = tokio::fs::canonicalize(&self.root).await.map_err(|e| SecretError::NotConfigured {
            provider: "file".into(),
            reason: format!("[secrets.file] root `{}` cannot be used: {e}", self.root.display()),
        })?;
        let wanted = root.join(Path::new(path));
        // Resolve links and `..` first, then check: the file must really be inside the root.
        let real = match tokio::fs::canonicalize(&wanted).await {
            Ok(real) => real,
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(SecretError::NotFound { reference: named() }),
            Err(e) => return Err(denied(e.to_string())),
        };
        if !real.starts_with(&root) {
            return Err(denied(format!("the file is outside [secrets.file] root `{}`", self.root.display())));
        }
        let metadata = tokio::fs::metadata(&real).await.map_err(|e| denied(e.to_string()))?;
        if !metadata.is_file() {
            return Err(invalid("not a regular file".into()));
        }
        if metadata.len() > MAX_FILE_BYTES {
            return Err(invalid(format!("the file is larger than {MAX_FILE_BYTES} bytes")));
        }
        let bytes = Zeroizing::new(tokio::fs::read(&real).await.map_err(|e| match e.kind() {
            ErrorKind::NotFound => SecretError::NotFound { reference: named() },
            ErrorKind::PermissionDenied => denied(e.to_string()),
            _ => SecretError::Unavailable { reference: named(), reason: e.to_string() },
        })?);
        let text = std::str::from_utf8(&bytes).map_err(|_| invalid("the file is not UTF-8 text".into()))?;
        let content = text.trim_end_matches(['\n', '\r']);
        let version = Some(content_version(content));
        let value = match key {
            None => Secret::new(content),
            Some(key) => json_key(content, key).map_err(|problem| match problem {
                super::extract::KeyProblem::Missing => SecretError::NotFound { reference: named() },
                other => invalid(other.describe(key)),
            })?,
        };
        if value.expose().is_empty() {
            return Err(invalid("the secret is empty".into()));
        }
        Ok(SecretValue { value, version })
    }
}

impl SecretsProvider for FileProvider {
    fn read<'a>(&'a self, reference: &'a SecretReference, _freshness: Freshness) -> BoxFuture<'a, Result<SecretValue, SecretError>> {
        Box::pin(self.read_now(reference))
    }
}

//! The bootstrap admin client of a data dir: a managed identity
//! (`flowstudio-admin`) holding the admin role, whose client id and secret are
//! written once to `<data dir>/admin-client.json` with mode 0600, so the
//! person who owns the data dir (and nobody else) can get admin tokens
//! (`flowstudio admin token`) on a fresh install.
//!
//! Tokens for it are minted by the embedded passport's own token endpoint,
//! called in-process (no server needs to run), so they are exactly the tokens
//! `POST /passport/token` hands out.

use crate::identity::{generate_client_secret, IdentityError, IdentityRegistry, NewManagedIdentity};
use crate::passport::{PassportServerConfig, PassportState};
use crate::secret::Secret;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The managed identity id (and client id) of the bootstrap admin client.
pub const ADMIN_CLIENT_ID: &str = "flowstudio-admin";

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("admin client file `{path}`: {reason}")]
    File { path: String, reason: String },
    #[error("bootstrap admin client: {0}")]
    Identity(#[from] IdentityError),
    #[error("the embedded passport refused the bootstrap admin client: {0}")]
    Passport(String),
}

/// Where a data dir keeps the admin client's credentials.
pub fn admin_client_path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin-client.json")
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClientFile {
    client_id: String,
    client_secret: String,
}

/// Make sure the bootstrap admin client exists with `admin_role` and its
/// credentials file is in place; create both on first start. Returns whether
/// it created (or re-created) the credentials.
pub fn ensure_admin_client(data_dir: &Path, registry: &IdentityRegistry, admin_role: &str) -> Result<bool, BootstrapError> {
    let path = admin_client_path(data_dir);
    let existing = registry.get(ADMIN_CLIENT_ID)?;
    if existing.is_some() && path.exists() {
        if existing.as_ref().is_some_and(|i| !i.roles.iter().any(|r| r == admin_role)) {
            tracing::warn!(
                target: "flowstudio::server",
                "bootstrap admin client `{ADMIN_CLIENT_ID}` lacks the configured admin role `{admin_role}`; its tokens will get 403"
            );
        }
        return Ok(false);
    }
    let secret = generate_client_secret();
    match existing {
        // The file was lost: rotate the secret rather than guess it.
        Some(_) => registry.set_client_secret(ADMIN_CLIENT_ID, &secret)?,
        None => {
            let new = NewManagedIdentity {
                id: ADMIN_CLIENT_ID.into(),
                name: "FlowStudio bootstrap admin".into(),
                client_id: ADMIN_CLIENT_ID.into(),
                tenant_id: "flowstudio".into(),
                roles: vec![admin_role.to_string()],
                enabled: true,
            };
            registry.create_with_client_secret(new, &secret)?;
        }
    }
    let file = ClientFile { client_id: ADMIN_CLIENT_ID.into(), client_secret: secret.expose().to_string() };
    let text = Secret::new(serde_json::to_string_pretty(&file).map_err(|e| file_error(&path, e))?);
    write_private(&path, text.expose().as_bytes()).map_err(|e| file_error(&path, e))?;
    Ok(true)
}

fn file_error(path: &Path, e: impl std::fmt::Display) -> BootstrapError {
    BootstrapError::File { path: path.display().to_string(), reason: e.to_string() }
}

/// Write a new file readable by its owner only (0600), replacing an old one atomically.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// The admin client's credentials from the data dir.
pub fn read_admin_client(data_dir: &Path) -> Result<(String, Secret), BootstrapError> {
    let path = admin_client_path(data_dir);
    let text = Secret::new(std::fs::read_to_string(&path).map_err(|e| {
        file_error(&path, format!("{e} (run `flowstudio serve --data-dir {}` once to create it)", data_dir.display()))
    })?);
    let file: ClientFile = serde_json::from_str(text.expose()).map_err(|_| file_error(&path, "is not an admin client file"))?;
    Ok((file.client_id, Secret::new(file.client_secret)))
}

/// A fresh admin access token from the embedded passport of the data dir.
pub async fn admin_token(
    data_dir: &Path,
    registry: Arc<IdentityRegistry>,
    passport: &PassportServerConfig,
) -> Result<Secret, BootstrapError> {
    use tower::ServiceExt as _;
    let (client_id, secret) = read_admin_client(data_dir)?;
    let issuer = crate::passport::load_or_create_issuer(data_dir, &passport.issuer).map_err(|e| BootstrapError::Passport(e.to_string()))?;
    let state = PassportState::new(registry, Arc::new(issuer), passport.clone()).map_err(|e| BootstrapError::Passport(e.to_string()))?;
    // client_secret_basic: id and secret are form-encoded before base64 (RFC 6749 §2.3.1).
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let basic = Secret::new(STANDARD.encode(format!("{}:{}", encode(&client_id), encode(secret.expose()))));
    let request = axum::http::Request::post(crate::passport::server::TOKEN_PATH)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", format!("Basic {}", basic.expose()))
        .body(axum::body::Body::from("grant_type=client_credentials"))
        .map_err(|e| BootstrapError::Passport(e.to_string()))?;
    let response = crate::passport::router(state).oneshot(request).await.map_err(|e| BootstrapError::Passport(e.to_string()))?;
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.map_err(|e| BootstrapError::Passport(e.to_string()))?;
    let body = Secret::new(String::from_utf8_lossy(&body).into_owned());
    let parsed: serde_json::Value = serde_json::from_str(body.expose()).unwrap_or_default();
    match parsed.get("access_token").and_then(|t| t.as_str()) {
        Some(token) if status.is_success() => Ok(Secret::new(token)),
        _ => Err(BootstrapError::Passport(format!(
            "{} {}",
            status.as_u16(),
            parsed.get("error").and_then(|e| e.as_str()).unwrap_or("no access token in the answer")
        ))),
    }
}

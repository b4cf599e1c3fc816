//! `/flowstudio/api/nodes`: node components. `POST` takes the raw `.wasm`
//! bytes (`Content-Type: application/wasm`), inspects them (world,
//! imports/exports, whether this host runs them; an incompatible component is
//! refused with the reasons), stores them content-addressed and answers with
//! the digest that workflows pin. The catalog (name, size, who uploaded it,
//! the inspection) is the table `node_components` in the state database.

use super::auth::Caller;
use super::error::{too_large, ApiError};
use super::query::Params;
use super::ApiState;
use crate::runtime::Inspection;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use rusqlite::{params, OptionalExtension as _};
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS node_components (
    digest TEXT PRIMARY KEY,
    name TEXT,
    size INTEGER NOT NULL,
    uploaded_at TEXT NOT NULL,
    uploaded_by TEXT NOT NULL,
    inspection TEXT NOT NULL
);";

/// One uploaded component.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeComponent {
    pub digest: String,
    pub name: Option<String>,
    pub size: u64,
    pub uploaded_at: String,
    pub uploaded_by: String,
    pub inspection: Value,
}

/// The catalog of uploaded components.
pub struct NodeCatalog {
    conn: Mutex<rusqlite::Connection>,
}

impl NodeCatalog {
    pub fn open(path: &std::path::Path) -> Result<NodeCatalog, crate::db::DbError> {
        let conn = crate::db::open(path)?;
        conn.execute_batch(SCHEMA)?;
        Ok(NodeCatalog { conn: Mutex::new(conn) })
    }

    fn with<T>(&self, f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>) -> Result<T, ApiError> {
        let conn = self.conn.lock().map_err(|_| ApiError::internal("node catalog lock poisoned"))?;
        f(&conn).map_err(ApiError::internal)
    }

    /// Record an upload; uploading the same bytes again keeps the first record
    /// but takes a new name if one is given.
    pub fn record(&self, entry: &NodeComponent) -> Result<NodeComponent, ApiError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO node_components (digest, name, size, uploaded_at, uploaded_by, inspection) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(digest) DO UPDATE SET name = coalesce(excluded.name, node_components.name)",
                params![entry.digest, entry.name, entry.size as i64, entry.uploaded_at, entry.uploaded_by, entry.inspection.to_string()],
            )
        })?;
        self.get(&entry.digest)?.ok_or_else(|| ApiError::internal("node component vanished after insert"))
    }

    pub fn get(&self, digest: &str) -> Result<Option<NodeComponent>, ApiError> {
        self.with(|c| c.query_row(&format!("{SELECT} WHERE digest = ?1"), [digest], read).optional())
    }

    pub fn list(&self) -> Result<Vec<NodeComponent>, ApiError> {
        self.with(|c| c.prepare(&format!("{SELECT} ORDER BY uploaded_at, digest"))?.query_map([], read)?.collect())
    }
}

const SELECT: &str = "SELECT digest, name, size, uploaded_at, uploaded_by, inspection FROM node_components";

fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<NodeComponent> {
    let inspection: String = r.get(5)?;
    Ok(NodeComponent {
        digest: r.get(0)?,
        name: r.get(1)?,
        size: r.get::<_, i64>(2)?.max(0) as u64,
        uploaded_at: r.get(3)?,
        uploaded_by: r.get(4)?,
        inspection: serde_json::from_str(&inspection).unwrap_or(Value::Null),
    })
}

/// The raw bytes of an upload, with transport problems as [`ApiError`]s.
pub struct WasmBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for WasmBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if essence != "application/wasm" && essence != "application/octet-stream" {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "upload the component's bytes with `Content-Type: application/wasm`",
            ));
        }
        match Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(WasmBody(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(too_large()),
            Err(rejection) => Err(ApiError::bad_request(format!("the body could not be read: {}", rejection.body_text()))),
        }
    }
}

fn valid_name(name: &str) -> bool {
    name.len() <= 128 && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

pub async fn upload(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
    WasmBody(wasm): WasmBody,
) -> Result<Response, ApiError> {
    let mut params = Params::parse(raw.as_deref());
    let name = params.text("name");
    params.finish()?;
    if let Some(name) = name.as_deref().filter(|n| !valid_name(n)) {
        return Err(ApiError::invalid_field("name", format!("`{name}` is not a component name (letters, digits, `-`, `_`, `.`; at most 128)")));
    }
    if wasm.is_empty() {
        return Err(ApiError::invalid_field("body", "is empty; send the component's .wasm bytes"));
    }
    // Compiling is CPU work: keep it off the async threads.
    let runtime = state.runtime.clone();
    let bytes = wasm.clone();
    let inspection: Inspection = tokio::task::spawn_blocking(move || runtime.inspect(&bytes))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_component", e.to_string()))?;
    if !inspection.compatible {
        let mut error = ApiError::new(
            StatusCode::BAD_REQUEST,
            "incompatible_component",
            format!("this host does not run component {}: {}", inspection.digest, inspection.problems.join("; ")),
        );
        error.field = Some("body".into());
        return Err(error);
    }
    let size = wasm.len() as u64;
    let components = state.components.clone();
    let digest = tokio::task::spawn_blocking(move || components.put(&wasm))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let entry = NodeComponent {
        digest: digest.clone(),
        name,
        size,
        uploaded_at: crate::schedule::rfc3339::format(&state.clock.now()),
        uploaded_by: caller.actor().id().to_string(),
        inspection: serde_json::to_value(&inspection).unwrap_or(Value::Null),
    };
    let entry = state.catalog.record(&entry)?;
    let location = format!("{}/nodes/{}", super::BASE_PATH, entry.digest);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(entry)).into_response())
}

pub async fn list(State(state): State<Arc<ApiState>>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ApiError> {
    Params::parse(raw.as_deref()).finish()?;
    Ok(Json(json!({ "nodes": state.catalog.list()? })))
}

pub async fn get(State(state): State<Arc<ApiState>>, Path(digest): Path<String>) -> Result<Json<NodeComponent>, ApiError> {
    if !crate::workflow::valid_digest(&digest) {
        return Err(ApiError::invalid_field("digest", format!("`{digest}` is not a component digest (`sha256:<64 lowercase hex>`)")));
    }
    state.catalog.get(&digest)?.map(Json).ok_or_else(|| ApiError::not_found(format!("node component {digest}")))
}

//! The unauthenticated operational routes: `/healthz` (the process answers),
//! `/readyz` (it should get traffic: started, not draining, state database
//! reachable), Prometheus `/metrics`, and the OpenAPI document.

use super::error::ApiError;
use super::ApiState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Whether the host wants traffic. Starts not ready; `serve` marks it ready
/// once the scheduler runs, and draining when shutdown begins.
#[derive(Debug, Default)]
pub struct Readiness {
    started: AtomicBool,
    draining: AtomicBool,
}

impl Readiness {
    pub fn mark_started(&self) {
        self.started.store(true, Ordering::SeqCst);
    }

    pub fn mark_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub fn is_started(&self) -> bool {
        self.started.load(Ordering::SeqCst)
    }
}

pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn readyz(State(state): State<Arc<ApiState>>) -> Response {
    let mut problems = Vec::new();
    if !state.readiness.is_started() {
        problems.push("the host is still starting".to_string());
    }
    if state.readiness.is_draining() {
        problems.push("the host is shutting down".to_string());
    }
    if let Err(e) = state.with_audit_log(|store| store.count()).await {
        problems.push(format!("the state database is not reachable: {}", e.message));
    }
    if problems.is_empty() {
        Json(json!({ "status": "ready" })).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "not-ready", "problems": problems }))).into_response()
    }
}

pub async fn metrics(State(state): State<Arc<ApiState>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render()).into_response()
}

pub async fn openapi() -> Result<Response, ApiError> {
    Ok(([(header::CONTENT_TYPE, "application/json")], super::openapi::DOCUMENT).into_response())
}

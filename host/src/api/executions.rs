//! `/flowstudio/api/executions`: what ran, newest first, and one execution
//! with its attempts and per-node results.

use super::error::ApiError;
use super::query::Params;
use super::schedules::state_error;
use super::ApiState;
use crate::state::ExecutionStatus;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

pub const MAX_LIMIT: u32 = 1000;
pub const DEFAULT_LIMIT: u32 = 100;

const STATUSES: &[&str] = &["pending", "running", "succeeded", "failed", "rejected", "interrupted", "skipped"];

pub async fn list(State(state): State<Arc<ApiState>>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ApiError> {
    let mut params = Params::parse(raw.as_deref());
    let schedule = params.text("scheduleId");
    let workflow = params.text("workflowId");
    let status = params.choice("status", STATUSES).and_then(|s| ExecutionStatus::parse(&s));
    let limit = params.number("limit", 1, MAX_LIMIT).unwrap_or(DEFAULT_LIMIT);
    params.finish()?;
    // Filters the store does not know are applied here; ask for enough rows to fill `limit`.
    let fetch = if workflow.is_some() || status.is_some() { MAX_LIMIT * 10 } else { limit };
    let executions = state.store.list_executions(schedule.as_deref(), fetch).await.map_err(state_error)?;
    let items: Vec<_> = executions
        .into_iter()
        .filter(|e| workflow.as_ref().is_none_or(|w| *w == e.workflow_id))
        .filter(|e| status.is_none_or(|s| s == e.status))
        .take(limit as usize)
        .collect();
    Ok(Json(json!({ "executions": items })))
}

pub async fn get(State(state): State<Arc<ApiState>>, Path(id): Path<String>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ApiError> {
    Params::parse(raw.as_deref()).finish()?;
    let Some(execution) = state.store.get_execution(&id).await.map_err(state_error)? else {
        return Err(ApiError::not_found(format!("execution `{id}`")));
    };
    let attempts = state.store.attempts(&id).await.map_err(state_error)?;
    let nodes = state.store.node_results(&id).await.map_err(state_error)?;
    let mut value = serde_json::to_value(&execution).map_err(ApiError::internal)?;
    if let Value::Object(map) = &mut value {
        map.insert("attempts".into(), json!(attempts));
        map.insert("nodes".into(), json!(nodes));
    }
    Ok(Json(value))
}

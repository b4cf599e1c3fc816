//! `/flowstudio/api/workflows`: workflow definitions (DAGs of digest-pinned
//! node components, see [`crate::workflow`]). A definition is refused when a
//! node names a component that has not been uploaded (`nodes[i].component`),
//! and a workflow that schedules still use cannot be deleted.

use super::error::{ApiError, JsonBody};
use super::query::Params;
use super::schedules::state_error;
use super::ApiState;
use crate::validation::FieldError;
use crate::workflow::Workflow;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

fn parse(state: &ApiState, body: &Value) -> Result<Workflow, ApiError> {
    let workflow = Workflow::from_json(body)?;
    let missing: Vec<FieldError> = workflow
        .nodes
        .iter()
        .filter(|node| !state.components.contains(&node.component))
        .map(|node| {
            // `nodes` is in dependency order; name the node by its index as written.
            let index = body["nodes"].as_array().and_then(|items| items.iter().position(|n| n["id"] == node.id.as_str())).unwrap_or(0);
            FieldError::new(
                format!("nodes[{index}].component"),
                format!("component {} has not been uploaded; POST it to {}/nodes first", node.component, super::BASE_PATH),
            )
        })
        .collect();
    if missing.is_empty() {
        Ok(workflow)
    } else {
        Err(ApiError::invalid(missing))
    }
}

pub async fn list(State(state): State<Arc<ApiState>>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ApiError> {
    Params::parse(raw.as_deref()).finish()?;
    let workflows = state.store.list_workflows().await.map_err(state_error)?;
    Ok(Json(json!({ "workflows": workflows })))
}

pub async fn create(State(state): State<Arc<ApiState>>, JsonBody(body): JsonBody) -> Result<Response, ApiError> {
    let workflow = parse(&state, &body)?;
    if state.store.get_workflow(&workflow.id).await.map_err(state_error)?.is_some() {
        return Err(ApiError::conflict(format!("workflow `{}` already exists; PUT it to replace it", workflow.id)));
    }
    state.store.put_workflow(&workflow, state.clock.now()).await.map_err(state_error)?;
    let location = format!("{}/workflows/{}", super::BASE_PATH, workflow.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(workflow)).into_response())
}

pub async fn get(State(state): State<Arc<ApiState>>, Path(id): Path<String>) -> Result<Json<Workflow>, ApiError> {
    match state.store.get_workflow(&id).await.map_err(state_error)? {
        Some(workflow) => Ok(Json(workflow)),
        None => Err(ApiError::not_found(format!("workflow `{id}`"))),
    }
}

/// Create or replace. The body's `id` may be left out; if given it must match the path.
pub async fn replace(State(state): State<Arc<ApiState>>, Path(id): Path<String>, JsonBody(mut body): JsonBody) -> Result<Json<Workflow>, ApiError> {
    match body.get("id") {
        None => {
            if let Value::Object(map) = &mut body {
                map.insert("id".into(), Value::String(id.clone()));
            }
        }
        Some(given) if given.as_str() != Some(id.as_str()) => {
            return Err(ApiError::invalid_field("id", format!("must be `{id}`, the workflow id in the path")));
        }
        Some(_) => {}
    }
    let workflow = parse(&state, &body)?;
    state.store.put_workflow(&workflow, state.clock.now()).await.map_err(state_error)?;
    Ok(Json(workflow))
}

pub async fn delete(State(state): State<Arc<ApiState>>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    if state.store.get_workflow(&id).await.map_err(state_error)?.is_none() {
        return Err(ApiError::not_found(format!("workflow `{id}`")));
    }
    let users: Vec<String> = state
        .store
        .list_schedules()
        .await
        .map_err(state_error)?
        .into_iter()
        .filter(|s| s.spec.workflow_id == id)
        .map(|s| format!("`{}`", s.id))
        .collect();
    if !users.is_empty() {
        return Err(ApiError::conflict(format!("workflow `{id}` is used by schedule {}; delete those first", users.join(", "))));
    }
    state.store.delete_workflow(&id).await.map_err(state_error)?;
    Ok(StatusCode::NO_CONTENT)
}

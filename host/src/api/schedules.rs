//! `/flowstudio/api/schedules`: the seed's schedule JSON verbatim (DESIGN §2),
//! list/get with the next fire times, replace, delete, pause, resume,
//! trigger-now and backfill.
//!
//! Creating or replacing a schedule checks, besides every field of the JSON
//! itself, that its workflow and its managed identity exist: a schedule that
//! could only fail at 06:00 on the 25th is refused now, naming the field.

use super::auth::Caller;
use super::error::{ApiError, JsonBody};
use super::query::Params;
use super::ApiState;
use crate::audit::{AuditEvent, ScheduleEvent};
use crate::schedule::{rfc3339, Schedule, ScheduleSpec};
use crate::scheduler::SchedulerError;
use crate::state::StateError;
use crate::trigger::TriggerError;
use crate::validation::FieldError;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::sync::Arc;

/// How many upcoming fire times a schedule shows.
pub const NEXT_FIRE_TIMES: usize = 5;

/// A schedule as the API shows it: its JSON plus `nextFireTimes` (RFC 3339 in its zone).
pub fn view(schedule: &Schedule, now: DateTime<Utc>) -> Value {
    let mut value = serde_json::to_value(schedule).unwrap_or(Value::Null);
    let next: Vec<String> = match schedule.spec.cron() {
        Ok(cron) => cron
            .upcoming(now.max(schedule.spec.start_at.unwrap_or(now)), NEXT_FIRE_TIMES)
            .into_iter()
            .filter(|t| schedule.spec.in_active_range(t.with_timezone(&Utc)))
            .map(|t| t.to_rfc3339())
            .collect(),
        Err(_) => Vec::new(),
    };
    if let Value::Object(map) = &mut value {
        map.insert("nextFireTimes".into(), json!(next));
    }
    value
}

pub(super) fn scheduler_error(e: SchedulerError) -> ApiError {
    match e {
        SchedulerError::ScheduleNotFound(id) | SchedulerError::State(StateError::ScheduleNotFound(id)) => {
            ApiError::not_found(format!("schedule `{id}`"))
        }
        SchedulerError::BadRange(reason) => ApiError::bad_request(format!("backfill range: {reason}")),
        SchedulerError::Stopped => ApiError::unavailable("the scheduler has stopped; the host is shutting down"),
        SchedulerError::State(e) => state_error(e),
        other => ApiError::internal(other),
    }
}

pub(super) fn state_error(e: StateError) -> ApiError {
    match e {
        StateError::ScheduleNotFound(id) => ApiError::not_found(format!("schedule `{id}`")),
        StateError::WorkflowNotFound(id) => ApiError::not_found(format!("workflow `{id}`")),
        StateError::ExecutionNotFound(id) => ApiError::not_found(format!("execution `{id}`")),
        other => ApiError::internal(other),
    }
}

/// Parse the body and check what it refers to; every problem is reported.
async fn spec_from(state: &ApiState, body: &Value) -> Result<ScheduleSpec, ApiError> {
    let (spec, mut errors) = match ScheduleSpec::from_json(body) {
        Ok(spec) => (Some(spec), Vec::new()),
        Err(errors) => (None, errors),
    };
    let text = |key: &str| body.get(key).and_then(Value::as_str).filter(|s| !s.trim().is_empty());
    let named = |errors: &[FieldError], field: &str| errors.iter().any(|e| e.field == field);
    if let Some(id) = text("workflowId").filter(|_| !named(&errors, "workflowId")) {
        match state.store.get_workflow(id).await {
            Ok(Some(_)) => {}
            Ok(None) => errors.push(FieldError::new("workflowId", format!("workflow `{id}` does not exist; create it first"))),
            Err(e) => return Err(state_error(e)),
        }
    }
    if let Some(id) = text("managedIdentityId").filter(|_| !named(&errors, "managedIdentityId")) {
        match state.identities.get(id) {
            Ok(Some(_)) => {}
            Ok(None) => errors.push(FieldError::new(
                "managedIdentityId",
                format!("managed identity `{id}` does not exist; register it first"),
            )),
            Err(e) => return Err(ApiError::internal(e)),
        }
    }
    match spec {
        Some(spec) if errors.is_empty() => Ok(spec),
        _ => Err(ApiError::invalid(errors)),
    }
}

fn audit_event(caller: &Caller, schedule: &Schedule) -> ScheduleEvent {
    ScheduleEvent {
        actor: caller.actor(),
        schedule_id: schedule.id.clone(),
        workflow_id: schedule.spec.workflow_id.clone(),
        name: schedule.spec.name.clone(),
        managed_identity_id: schedule.spec.managed_identity_id.clone(),
    }
}

pub async fn list(State(state): State<Arc<ApiState>>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ApiError> {
    let mut params = Params::parse(raw.as_deref());
    let workflow = params.text("workflowId");
    params.finish()?;
    let now = state.clock.now();
    let schedules = state.store.list_schedules().await.map_err(state_error)?;
    let items: Vec<Value> =
        schedules.iter().filter(|s| workflow.as_ref().is_none_or(|w| *w == s.spec.workflow_id)).map(|s| view(s, now)).collect();
    Ok(Json(json!({ "schedules": items })))
}

pub async fn create(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let spec = spec_from(&state, &body).await?;
    let schedule = state.scheduler()?.create_schedule(spec).await.map_err(scheduler_error)?;
    state.audit.record(AuditEvent::ScheduleCreated(audit_event(&caller, &schedule)));
    let location = format!("{}/schedules/{}", super::BASE_PATH, schedule.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(view(&schedule, state.clock.now()))).into_response())
}

pub async fn get(State(state): State<Arc<ApiState>>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    match state.store.get_schedule(&id).await.map_err(state_error)? {
        Some(schedule) => Ok(Json(view(&schedule, state.clock.now()))),
        None => Err(ApiError::not_found(format!("schedule `{id}`"))),
    }
}

pub async fn replace(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    if state.store.get_schedule(&id).await.map_err(state_error)?.is_none() {
        return Err(ApiError::not_found(format!("schedule `{id}`")));
    }
    let spec = spec_from(&state, &body).await?;
    let schedule = state.scheduler()?.update_schedule(&id, spec).await.map_err(scheduler_error)?;
    state.audit.record(AuditEvent::ScheduleUpdated(audit_event(&caller, &schedule)));
    Ok(Json(view(&schedule, state.clock.now())))
}

pub async fn delete(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let Some(schedule) = state.store.get_schedule(&id).await.map_err(state_error)? else {
        return Err(ApiError::not_found(format!("schedule `{id}`")));
    };
    state.scheduler()?.delete_schedule(&id).await.map_err(scheduler_error)?;
    state.audit.record(AuditEvent::ScheduleDeleted(audit_event(&caller, &schedule)));
    Ok(StatusCode::NO_CONTENT)
}

pub async fn pause(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let schedule = state.scheduler()?.pause(&id).await.map_err(scheduler_error)?;
    state.audit.record(AuditEvent::ScheduleUpdated(audit_event(&caller, &schedule)));
    Ok(Json(view(&schedule, state.clock.now())))
}

pub async fn resume(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let schedule = state.scheduler()?.resume(&id).await.map_err(scheduler_error)?;
    state.audit.record(AuditEvent::ScheduleUpdated(audit_event(&caller, &schedule)));
    Ok(Json(view(&schedule, state.clock.now())))
}

/// Run now as `manual:<caller>` (allowed while paused), after the access guard
/// allowed the caller to run the workflow. 202: the execution runs in the background.
pub async fn trigger(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let Some(schedule) = state.store.get_schedule(&id).await.map_err(state_error)? else {
        return Err(ApiError::not_found(format!("schedule `{id}`")));
    };
    // A manual run is also the caller's action: the guard checks the caller (DESIGN §8).
    match state.pipeline.authorize(&caller.0, &schedule.spec.workflow_id, None).await {
        Ok(()) => {}
        Err(TriggerError::Denied(reason)) => return Err(ApiError::forbidden(reason)),
        Err(TriggerError::UnknownWorkflow(w)) => {
            return Err(ApiError::conflict(format!("schedule `{id}` names workflow `{w}`, which does not exist")))
        }
        Err(e) => return Err(ApiError::internal(e)),
    }
    let user = caller.actor().id().to_string();
    let execution = state.scheduler()?.trigger_now(&id, &user).await.map_err(scheduler_error)?;
    let location = format!("{}/executions/{}", super::BASE_PATH, execution.id);
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(json!({ "execution": execution }))).into_response())
}

/// `{"from": RFC 3339, "to": RFC 3339}`: claim and run every nominal time in `from..=to` not yet run.
pub async fn backfill(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let Some(object) = body.as_object() else {
        return Err(ApiError::invalid_field("", "must be an object like {\"from\": \"2026-01-01T00:00:00Z\", \"to\": \"2026-03-01T00:00:00Z\"}"));
    };
    for key in object.keys().filter(|k| !["from", "to"].contains(&k.as_str())) {
        errors.push(FieldError::new(key.as_str(), "is not a backfill field; a backfill has `from` and `to`"));
    }
    let mut instant = |key: &str| match object.get(key) {
        None => {
            errors.push(FieldError::new(key, "is required (RFC 3339)"));
            None
        }
        Some(Value::String(text)) => match DateTime::parse_from_rfc3339(text) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                errors.push(FieldError::new(key, format!("`{text}` is not an RFC 3339 time like 2026-12-25T06:00:00Z")));
                None
            }
        },
        Some(_) => {
            errors.push(FieldError::new(key, "must be an RFC 3339 string"));
            None
        }
    };
    let (from, to) = (instant("from"), instant("to"));
    if let (Some(from), Some(to)) = (from, to) {
        if to < from {
            errors.push(FieldError::new("to", format!("must not be before `from` ({})", rfc3339::format(&from))));
        }
        if to > state.clock.now() {
            errors.push(FieldError::new("to", "must not be in the future; a backfill runs past firings"));
        }
    }
    let (Some(from), Some(to), true) = (from, to, errors.is_empty()) else {
        return Err(ApiError::invalid(errors));
    };
    let report = state.scheduler()?.backfill(&id, from, to).await.map_err(scheduler_error)?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "claimed": report.claimed, "alreadyClaimed": report.already_claimed }))).into_response())
}

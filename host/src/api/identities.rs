//! `/flowstudio/api/identities`: the managed identities (service accounts)
//! runs act as. The body of `POST` is the registry's identity JSON plus an
//! optional write-only `clientSecret` for the embedded passport (stored as a
//! salted hash only). No response ever contains a secret or its hash; they
//! say `hasClientSecret` instead.

use super::error::{ApiError, JsonBody};
use super::query::Params;
use super::ApiState;
use crate::identity::{IdentityError, ManagedIdentity, NewManagedIdentity};
use crate::secret::Secret;
use crate::validation::FieldError;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use std::sync::Arc;

const FIELDS: &[&str] = &["id", "name", "clientId", "tenantId", "roles", "enabled", "clientSecret"];

fn identity_error(e: IdentityError) -> ApiError {
    match e {
        IdentityError::Invalid(fields) => {
            let conflict = fields.iter().any(|f| f.message.contains("already"));
            let mut error = ApiError::invalid(fields);
            if conflict {
                error.status = StatusCode::CONFLICT;
                error.code = "conflict";
            }
            error
        }
        IdentityError::NotFound(id) => ApiError::not_found(format!("managed identity `{id}`")),
        other => ApiError::internal(other),
    }
}

/// Blocking registry calls (secret hashing is deliberately slow) off the async threads.
async fn blocking<T: Send + 'static>(
    state: &Arc<ApiState>,
    f: impl FnOnce(&crate::identity::IdentityRegistry) -> Result<T, IdentityError> + Send + 'static,
) -> Result<T, ApiError> {
    let registry = state.identities.clone();
    tokio::task::spawn_blocking(move || f(&registry)).await.map_err(ApiError::internal)?.map_err(identity_error)
}

fn view(state: &ApiState, identity: &ManagedIdentity) -> Value {
    let mut value = serde_json::to_value(identity).unwrap_or(Value::Null);
    let has_secret = state.identities.has_client_secret(&identity.id).unwrap_or(false);
    if let Value::Object(map) = &mut value {
        map.insert("hasClientSecret".into(), Value::Bool(has_secret));
    }
    value
}

/// The secret, taken out of the body so nothing else ever sees it.
fn take_secret(object: &mut Map<String, Value>, errors: &mut Vec<FieldError>) -> Option<Secret> {
    match object.remove("clientSecret") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(Secret::new(s)),
        Some(_) => {
            errors.push(FieldError::new("clientSecret", "must be a string"));
            None
        }
    }
}

fn parse_new(body: Value) -> Result<(NewManagedIdentity, Option<Secret>), ApiError> {
    let Value::Object(mut object) = body else {
        return Err(ApiError::invalid_field("", "a managed identity must be a JSON object"));
    };
    let mut errors = Vec::new();
    let secret = take_secret(&mut object, &mut errors);
    for key in object.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
        errors.push(FieldError::new(key.as_str(), format!("unknown field; known fields: {}", FIELDS.join(", "))));
    }
    let text = |key: &str, errors: &mut Vec<FieldError>| match object.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            errors.push(FieldError::new(key, "must be a string"));
            String::new()
        }
        None => {
            errors.push(FieldError::new(key, "is required"));
            String::new()
        }
    };
    let id = text("id", &mut errors);
    let name = text("name", &mut errors);
    let client_id = text("clientId", &mut errors);
    let tenant_id = text("tenantId", &mut errors);
    let roles = match object.get("roles") {
        None => Vec::new(),
        Some(value) => serde_json::from_value::<Vec<String>>(value.clone()).unwrap_or_else(|_| {
            errors.push(FieldError::new("roles", "must be a list of role names"));
            Vec::new()
        }),
    };
    let enabled = match object.get("enabled") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errors.push(FieldError::new("enabled", "must be true or false"));
            true
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    Ok((NewManagedIdentity { id, name, client_id, tenant_id, roles, enabled }, secret))
}

pub async fn list(State(state): State<Arc<ApiState>>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ApiError> {
    Params::parse(raw.as_deref()).finish()?;
    let identities = blocking(&state, |r| r.list()).await?;
    Ok(Json(json!({ "identities": identities.iter().map(|i| view(&state, i)).collect::<Vec<_>>() })))
}

pub async fn create(State(state): State<Arc<ApiState>>, JsonBody(body): JsonBody) -> Result<Response, ApiError> {
    let (new, secret) = parse_new(body)?;
    let identity = blocking(&state, move |r| match secret {
        Some(secret) => r.create_with_client_secret(new, &secret),
        None => r.create(new),
    })
    .await?;
    let location = format!("{}/identities/{}", super::BASE_PATH, identity.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(view(&state, &identity))).into_response())
}

pub async fn get(State(state): State<Arc<ApiState>>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let lookup = id.clone();
    match blocking(&state, move |r| r.get(&lookup)).await? {
        Some(identity) => Ok(Json(view(&state, &identity))),
        None => Err(ApiError::not_found(format!("managed identity `{id}`"))),
    }
}

pub async fn delete(State(state): State<Arc<ApiState>>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let users: Vec<String> = state
        .store
        .list_schedules()
        .await
        .map_err(super::schedules::state_error)?
        .into_iter()
        .filter(|s| s.spec.managed_identity_id == id)
        .map(|s| format!("`{}`", s.id))
        .collect();
    if !users.is_empty() {
        return Err(ApiError::conflict(format!(
            "managed identity `{id}` is used by schedule {}; delete those first (or disable the identity)",
            users.join(", ")
        )));
    }
    blocking(&state, move |r| r.delete(&id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn disable(State(state): State<Arc<ApiState>>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let identity = blocking(&state, move |r| r.disable(&id)).await?;
    Ok(Json(view(&state, &identity)))
}

pub async fn enable(State(state): State<Arc<ApiState>>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let identity = blocking(&state, move |r| r.enable(&id)).await?;
    Ok(Json(view(&state, &identity)))
}

/// `{"clientSecret": "…"}`: set or rotate the embedded passport's secret. 204, nothing echoed.
pub async fn set_secret(State(state): State<Arc<ApiState>>, Path(id): Path<String>, JsonBody(body): JsonBody) -> Result<StatusCode, ApiError> {
    let Value::Object(mut object) = body else {
        return Err(ApiError::invalid_field("", "must be an object like {\"clientSecret\": \"…\"}"));
    };
    let mut errors = Vec::new();
    let secret = take_secret(&mut object, &mut errors);
    for key in object.keys() {
        errors.push(FieldError::new(key.as_str(), "is not a field here; send only `clientSecret`"));
    }
    let secret = match secret {
        Some(secret) if errors.is_empty() => secret,
        _ => {
            if !errors.iter().any(|e| e.field == "clientSecret") {
                errors.insert(0, FieldError::new("clientSecret", "is required"));
            }
            return Err(ApiError::invalid(errors));
        }
    };
    blocking(&state, move |r| r.set_client_secret(&id, &secret)).await?;
    Ok(StatusCode::NO_CONTENT)
}

//! `GET /flowstudio/api/audit` (query the audit log, same filters as
//! `flowstudio audit query`) and `GET /flowstudio/api/audit/verify` (check the
//! hash chain).

use super::error::ApiError;
use super::query::Params;
use super::ApiState;
use crate::audit::AuditFilter;
use axum::extract::{RawQuery, State};
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

/// The most events one query returns.
pub const MAX_LIMIT: u32 = 10_000;
/// What a query without `limit` returns at most.
pub const DEFAULT_LIMIT: u32 = 1_000;

pub async fn query(State(state): State<Arc<ApiState>>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ApiError> {
    let mut params = Params::parse(raw.as_deref());
    let filter = AuditFilter {
        execution_id: params.text("executionId"),
        identity: params.text("identity"),
        action: params.text("action"),
        since: params.instant("since"),
        until: params.instant("until"),
        limit: Some(params.number("limit", 1, MAX_LIMIT).unwrap_or(DEFAULT_LIMIT)),
    };
    params.finish()?;
    let records = state.with_audit_log(move |store| store.query(&filter)).await?;
    Ok(Json(json!({ "events": records })))
}

pub async fn verify(State(state): State<Arc<ApiState>>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ApiError> {
    Params::parse(raw.as_deref()).finish()?;
    let result = state.with_audit_log(|store| store.verify()).await?;
    Ok(Json(match result {
        Ok(summary) => json!({ "intact": true, "events": summary.events, "headSeq": summary.head_seq, "headHash": summary.head_hash }),
        Err(broken) => json!({ "intact": false, "firstBadEvent": broken.seq, "problem": broken.problem }),
    }))
}

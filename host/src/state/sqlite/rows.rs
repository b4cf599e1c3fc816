//! Decoding the store's rows into the state types; a row that does not decode
//! is reported as corrupt, naming the thing it held.

use super::{corrupt, instant, SqliteStateStore};
use crate::schedule::{Schedule, ScheduleSpec};
use crate::state::{AttemptRecord, AttemptStatus, Execution, ExecutionStatus, StateError, Trigger};
use crate::workflow::Workflow;
use rusqlite::Row;

impl SqliteStateStore {
    pub(super) fn schedule_from_row(row: &Row<'_>) -> rusqlite::Result<(String, String, i64, i64)> {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
    }

    pub(super) fn decode_schedule((id, spec, created, updated): (String, String, i64, i64)) -> Result<Schedule, StateError> {
        let json: serde_json::Value = serde_json::from_str(&spec).map_err(|e| corrupt(&format!("schedule `{id}`"), e))?;
        let spec = ScheduleSpec::from_json(&json).map_err(|errs| {
            corrupt(&format!("schedule `{id}`"), errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))
        })?;
        Ok(Schedule { id, spec, created_at: instant(created), updated_at: instant(updated) })
    }

    pub(super) fn execution_from_row(row: &Row<'_>) -> rusqlite::Result<Result<Execution, StateError>> {
        let id: String = row.get(0)?;
        let triggered_by: String = row.get(5)?;
        let status: String = row.get(6)?;
        let output: Option<String> = row.get(10)?;
        let finished: Option<i64> = row.get(12)?;
        let decoded = (|| {
            let what = format!("execution `{id}`");
            Ok(Execution {
                schedule_id: row.get(1)?,
                workflow_id: row.get(2)?,
                firing_key: row.get(3)?,
                nominal_time: instant(row.get(4)?),
                triggered_by: Trigger::parse(&triggered_by).ok_or_else(|| corrupt(&what, "unknown trigger"))?,
                status: ExecutionStatus::parse(&status).ok_or_else(|| corrupt(&what, "unknown status"))?,
                attempt: row.get(7)?,
                interruptions: row.get(8)?,
                error: row.get(9)?,
                output: output.map(|o| serde_json::from_str(&o)).transpose().map_err(|e| corrupt(&what, e))?,
                created_at: instant(row.get(11)?),
                finished_at: finished.map(instant),
                id: id.clone(),
            })
        })();
        Ok(decoded)
    }

    pub(super) fn attempt_from_row(row: &Row<'_>) -> rusqlite::Result<Result<AttemptRecord, StateError>> {
        let status: String = row.get(2)?;
        let finished: Option<i64> = row.get(6)?;
        let id: String = row.get(0)?;
        Ok(match AttemptStatus::parse(&status) {
            None => Err(corrupt(&format!("attempt of `{id}`"), "unknown status")),
            Some(status) => Ok(AttemptRecord {
                execution_id: id,
                attempt: row.get(1)?,
                status,
                error: row.get(3)?,
                transient: row.get(4)?,
                started_at: instant(row.get(5)?),
                finished_at: finished.map(instant),
            }),
        })
    }
}

pub(super) fn decode_workflow(id: &str, text: &str) -> Result<Workflow, StateError> {
    let what = format!("workflow `{id}`");
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| corrupt(&what, e))?;
    Workflow::from_json(&json).map_err(|errs| corrupt(&what, errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ")))
}

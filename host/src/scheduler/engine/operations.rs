//! The engine's less frequent work: taking over executions on start, trigger-now,
//! backfill and shutdown.

use super::{Admitted, Done, Engine, Slot};
use crate::scheduler::{retry, BackfillReport, EngineEvent, Firing, SchedulerError, ShutdownReport, MAX_INTERRUPTIONS};
use crate::schedule::Schedule;
use crate::state::{nominal_key, Execution, ExecutionStatus, Trigger};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

impl Engine {
    /// Resume executions taken over from a previous start (or an expired replica).
    pub(super) async fn adopt(&mut self, taken: Vec<Execution>) {
        for execution in taken {
            let Some(schedule) = self.schedule_for(&execution.schedule_id).await else {
                let reason = format!("schedule `{}` no longer exists", execution.schedule_id);
                if let Err(e) = self.store.finish_execution(&execution.id, ExecutionStatus::Failed, Some(reason), None, self.clock.now()).await {
                    tracing::error!(execution = %execution.id, "execution end could not be recorded: {e}");
                }
                continue;
            };
            let slot = if execution.triggered_by == Trigger::Backfill { Slot::Backfill } else { Slot::Regular };
            let firing = Firing {
                schedule: schedule.clone(),
                nominal_time: execution.nominal_time,
                execution_id: execution.id.clone(),
                trigger: execution.triggered_by.clone(),
                attempt: execution.attempt + 1,
            };
            let admitted = Admitted { firing, slot, interruptions: execution.interruptions };
            if execution.attempt == 0 {
                // Claimed but never started: it waits its turn like any firing.
                self.enqueue(admitted).await;
                continue;
            }
            let counted = execution.attempt.saturating_sub(execution.interruptions);
            let resumable = execution.interruptions <= MAX_INTERRUPTIONS && retry::may_try_again(&schedule.spec.retry_policy, counted);
            tracing::info!(execution = %execution.id, attempt = execution.attempt, resumable, "taking over an interrupted execution");
            if resumable {
                self.begin(admitted).await;
            } else {
                let reason = format!("interrupted {} time(s) by the host stopping; no attempts left", execution.interruptions);
                self.lanes.entry(schedule.id.clone()).or_default().active += usize::from(slot == Slot::Regular);
                if slot == Slot::Backfill {
                    self.lanes.entry(schedule.id.clone()).or_default().backfill_active = true;
                }
                self.finish(admitted, ExecutionStatus::Interrupted, Some(reason), None).await;
            }
        }
    }

    async fn schedule_for(&mut self, id: &str) -> Option<Arc<Schedule>> {
        if let Some(s) = self.schedules.get(id) {
            return Some(s.clone());
        }
        match self.store.get_schedule(id).await {
            Ok(Some(s)) => Some(Arc::new(s)),
            Ok(None) => None,
            Err(e) => {
                tracing::error!(schedule = %id, "schedule could not be read: {e}");
                None
            }
        }
    }


    pub(super) async fn trigger_now(&mut self, schedule_id: &str, user: String) -> Result<Execution, SchedulerError> {
        let schedule = match self.store.get_schedule(schedule_id).await? {
            Some(s) => Arc::new(s),
            None => return Err(SchedulerError::ScheduleNotFound(schedule_id.to_string())),
        };
        let now = self.clock.now();
        let key = format!("manual:{}", hex::encode(rand::random::<[u8; 10]>()));
        let prepared = self.prepare(&schedule, now, key, Trigger::Manual { user }, None, now, false);
        self.claim_one(prepared)
            .await
            .ok_or_else(|| SchedulerError::BadSchedule { id: schedule_id.to_string(), reason: "the manual firing could not be claimed".into() })
    }

    pub(super) async fn backfill(&mut self, schedule_id: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<BackfillReport, SchedulerError> {
        let schedule = match self.store.get_schedule(schedule_id).await? {
            Some(s) => Arc::new(s),
            None => return Err(SchedulerError::ScheduleNotFound(schedule_id.to_string())),
        };
        let now = self.clock.now();
        if from > to {
            return Err(SchedulerError::BadRange(format!("`from` {from} is later than `to` {to}")));
        }
        if to > now {
            return Err(SchedulerError::BadRange(format!("`to` {to} is in the future; backfill covers the past")));
        }
        let cron = schedule
            .spec
            .cron()
            .map_err(|e| SchedulerError::BadSchedule { id: schedule_id.to_string(), reason: e.to_string() })?;
        let mut times = Vec::new();
        let mut cursor = from - chrono::Duration::milliseconds(1);
        while let Some(t) = cron.next_after(cursor).filter(|t| *t <= to) {
            if times.len() == self.config.max_firings {
                return Err(SchedulerError::BadRange(format!(
                    "the range holds more than {} firings; backfill it in parts",
                    self.config.max_firings
                )));
            }
            times.push(t);
            cursor = t;
        }
        let mut report = BackfillReport { claimed: Vec::new(), already_claimed: 0 };
        // Backfill firings always queue, so none's admission depends on another's: one transaction.
        let batch = times.into_iter().map(|t| self.prepare(&schedule, t, nominal_key(t), Trigger::Backfill, None, now, false)).collect();
        for claimed in self.claim_all(batch).await {
            match claimed {
                Some(e) => report.claimed.push(e.id),
                None => report.already_claimed += 1,
            }
        }
        Ok(report)
    }

    pub(super) async fn shutdown(&mut self, grace: std::time::Duration, done_rx: &mut mpsc::UnboundedReceiver<Done>) -> ShutdownReport {
        self.stopping = true;
        self.emit(EngineEvent::Stopping { running: self.running.len() });
        self.timers.clear();
        self.fire_at.clear();
        let now = self.clock.now();
        // Waiting and queued work stays claimed; the next start picks it up.
        let waiting: Vec<String> = self.waiting.drain().map(|(id, _)| id).collect();
        let queued: Vec<String> = self
            .lanes
            .values_mut()
            .flat_map(|lane| lane.queue.drain(..).chain(lane.backfill.drain(..)).collect::<Vec<_>>())
            .map(|a| a.firing.execution_id)
            .collect();
        for id in waiting.iter().chain(&queued) {
            self.release(id, now).await;
        }
        let mut report = ShutdownReport::default();
        let deadline = tokio::time::Instant::now() + grace;
        while !self.running.is_empty() {
            match tokio::time::timeout_at(deadline, done_rx.recv()).await {
                Ok(Some(done)) => {
                    report.finished.push(done.execution_id.clone());
                    self.on_done(done).await;
                }
                Ok(None) | Err(_) => break,
            }
        }
        let now = self.clock.now();
        let cut: Vec<(String, AbortHandle)> = self.running.drain().map(|(id, (_, task))| (id, task)).collect();
        for (id, task) in cut {
            task.abort();
            self.release(&id, now).await;
            tracing::warn!(execution = %id, "execution interrupted by shutdown");
            report.interrupted.push(id);
        }
        report
    }
}

//! Claiming firings: deciding each one's admission, storing the claims of one
//! tick in one transaction, then admitting what was claimed.

use super::{Admission, Admitted, Engine, Slot};
use crate::scheduler::{EngineEvent, Firing};
use crate::schedule::Schedule;
use crate::state::{Claim, Execution, ExecutionStatus, NewExecution, Trigger};
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// A firing whose admission is decided, waiting for its claim to be stored.
pub(super) struct Prepared {
    schedule: Arc<Schedule>,
    nominal: DateTime<Utc>,
    trigger: Trigger,
    admission: Admission,
    claim: Claim,
}

fn new_execution_id() -> String {
    format!("exe-{}", hex::encode(rand::random::<[u8; 10]>()))
}

impl Engine {
    /// Decide a firing's admission and the execution its claim creates: one
    /// admitted to run now is stored as running, its first attempt started in
    /// the claim's transaction.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn prepare(
        &mut self,
        schedule: &Arc<Schedule>,
        nominal: DateTime<Utc>,
        key: String,
        trigger: Trigger,
        mark: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        catching_up: bool,
    ) -> Prepared {
        let admission = self.admission(schedule, &trigger, catching_up);
        let status = match admission {
            Admission::Run => ExecutionStatus::Running,
            Admission::Queue => ExecutionStatus::Pending,
            Admission::Skip => ExecutionStatus::Skipped,
        };
        let execution = NewExecution {
            id: new_execution_id(),
            schedule_id: schedule.id.clone(),
            workflow_id: schedule.spec.workflow_id.clone(),
            firing_key: key,
            nominal_time: nominal,
            trigger: trigger.clone(),
            status,
            owner: self.config.owner.clone(),
            lease_until: now + self.config.lease,
            created_at: now,
        };
        Prepared { schedule: schedule.clone(), nominal, trigger, admission, claim: Claim { execution, mark } }
    }

    /// Claim one prepared firing and admit it. `None` when it was claimed already.
    pub(super) async fn claim_one(&mut self, prepared: Prepared) -> Option<Execution> {
        self.claim_all(vec![prepared]).await.pop().flatten()
    }

    /// Store the claims in one transaction, then admit each one claimed.
    pub(super) async fn claim_all(&mut self, batch: Vec<Prepared>) -> Vec<Option<Execution>> {
        let (firings, claims): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|p| ((p.schedule, p.nominal, p.trigger, p.admission), p.claim)).unzip();
        let claimed = match self.store.claim_firings(claims).await {
            Ok(claimed) => claimed,
            Err(e) => {
                for (schedule, nominal, ..) in &firings {
                    tracing::error!(schedule = %schedule.id, %nominal, "firing could not be claimed: {e}");
                }
                return firings.iter().map(|_| None).collect();
            }
        };
        let mut admitted = Vec::with_capacity(claimed.len());
        for ((schedule, nominal, trigger, admission), execution) in firings.into_iter().zip(claimed) {
            if let Some(execution) = &execution {
                self.admit(schedule, nominal, trigger, admission, execution.id.clone()).await;
            }
            admitted.push(execution);
        }
        admitted
    }

    async fn admit(&mut self, schedule: Arc<Schedule>, nominal: DateTime<Utc>, trigger: Trigger, admission: Admission, execution_id: String) {
        let schedule_id = schedule.id.clone();
        if matches!(admission, Admission::Skip) {
            self.emit(EngineEvent::Skipped { execution_id, schedule_id, nominal_time: nominal });
            return;
        }
        self.emit(EngineEvent::Claimed { execution_id: execution_id.clone(), schedule_id, nominal_time: nominal, trigger: trigger.clone() });
        let slot = if trigger == Trigger::Backfill { Slot::Backfill } else { Slot::Regular };
        let firing = Firing { schedule, nominal_time: nominal, execution_id, trigger, attempt: 1 };
        let admitted = Admitted { firing, slot, interruptions: 0 };
        match admission {
            Admission::Run => {
                // Its first attempt was started with the claim.
                self.count_active(&admitted);
                self.spawn_attempt(admitted);
            }
            _ => self.enqueue(admitted).await,
        }
    }
}

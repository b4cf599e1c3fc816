//! The `Clock` seam: everything that schedules or expires asks it for the time,
//! so tests run on controlled time instead of sleeping through minutes.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use std::sync::Mutex;
use tokio::sync::watch;

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
    /// Resolves once `now() >= at`.
    fn sleep_until(&self, at: DateTime<Utc>) -> BoxFuture<'static, ()>;
}

/// The machine's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            // Sleep in bounded steps: a wall clock can jump (NTP, suspend), a tokio timer does not follow it.
            loop {
                let left = at - Utc::now();
                let Ok(left) = left.to_std() else { return };
                if left.is_zero() {
                    return;
                }
                tokio::time::sleep(left.min(std::time::Duration::from_secs(30))).await;
            }
        })
    }
}

/// A clock that moves only when told to; sleepers wake when it passes their instant.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
    changed: watch::Sender<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock { now: Mutex::new(start), changed: watch::Sender::new(start) }
    }

    pub fn set(&self, to: DateTime<Utc>) {
        if let Ok(mut now) = self.now.lock() {
            *now = to;
        }
        self.changed.send_replace(to);
    }

    pub fn advance(&self, by: chrono::Duration) {
        self.set(self.now() + by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.now.lock().map(|n| *n).unwrap_or_else(|p| *p.into_inner())
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> BoxFuture<'static, ()> {
        let mut changes = self.changed.subscribe();
        Box::pin(async move {
            // `wait_for` checks the current value first, so a past instant resolves at once.
            let _ = changes.wait_for(|now| *now >= at).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[tokio::test]
    async fn a_manual_sleeper_wakes_only_when_the_clock_passes_its_instant() {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("time");
        let clock = std::sync::Arc::new(ManualClock::new(start));
        let sleeper = tokio::spawn(clock.sleep_until(start + chrono::Duration::minutes(5)));
        clock.advance(chrono::Duration::minutes(4));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(chrono::Duration::minutes(1));
        tokio::time::timeout(std::time::Duration::from_secs(5), sleeper).await.expect("woke").expect("joined");
    }
}

//! [`SecretCache`]: a caching layer over any provider.
//!
//! - A value is served from memory for `ttl` after it was read.
//! - `Freshness::Bypass` always asks the store (a rotation is suspected).
//! - Bounded stale-while-revalidate: when the store is `Unavailable`, a
//!   `Cached` read gets the last value if it is younger than `max_stale`,
//!   else the error. A definite answer (not found, denied, disabled) drops the
//!   cached value: the store has spoken.
//! - Single flight: concurrent reads of one reference wait for one store
//!   read and share its result.
//!
//! Values live only in memory, in [`Secret`](crate::secret::Secret)s.

use super::config::CacheConfig;
use super::{Freshness, SecretError, SecretReference, SecretValue, SecretsProvider};
use crate::clock::Clock;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub struct SecretCache<P> {
    inner: P,
    clock: Arc<dyn Clock>,
    ttl: chrono::Duration,
    max_stale: chrono::Duration,
    slots: Mutex<HashMap<SecretReference, Arc<Slot>>>,
}

#[derive(Default)]
struct Slot {
    entry: tokio::sync::Mutex<Option<Entry>>,
    /// Successful store reads so far; tells a waiter that a read finished while it waited.
    reads: AtomicU64,
}

struct Entry {
    value: SecretValue,
    read_at: DateTime<Utc>,
}

impl<P: SecretsProvider> SecretCache<P> {
    pub fn new(inner: P, clock: Arc<dyn Clock>, config: &CacheConfig) -> SecretCache<P> {
        let seconds = |s: u64| chrono::Duration::seconds(s.min(i64::MAX as u64 / 1000) as i64);
        SecretCache { inner, clock, ttl: seconds(config.ttl_seconds), max_stale: seconds(config.max_stale_seconds), slots: Mutex::new(HashMap::new()) }
    }

    /// The provider behind the cache.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// Forget what is cached for `reference`.
    pub fn invalidate(&self, reference: &SecretReference) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.remove(reference);
        }
    }

    fn slot(&self, reference: &SecretReference) -> Arc<Slot> {
        match self.slots.lock() {
            Ok(mut slots) => slots.entry(reference.clone()).or_default().clone(),
            // A poisoned map only loses caching, never correctness.
            Err(_) => Arc::new(Slot::default()),
        }
    }

    async fn read_through(&self, reference: &SecretReference, freshness: Freshness) -> Result<SecretValue, SecretError> {
        let slot = self.slot(reference);
        let reads_before = slot.reads.load(Ordering::Acquire);
        let mut entry = slot.entry.lock().await;
        let now = self.clock.now();
        if let Some(cached) = entry.as_ref() {
            let shared_flight = slot.reads.load(Ordering::Acquire) != reads_before;
            let within_ttl = freshness == Freshness::Cached && now < cached.read_at + self.ttl;
            if shared_flight || within_ttl {
                return Ok(cached.value.clone());
            }
        }
        match self.inner.read(reference, freshness).await {
            Ok(value) => {
                *entry = Some(Entry { value: value.clone(), read_at: self.clock.now() });
                slot.reads.fetch_add(1, Ordering::AcqRel);
                Ok(value)
            }
            Err(error) if error.is_transient() => match entry.as_ref() {
                Some(cached) if freshness == Freshness::Cached && now - cached.read_at < self.max_stale => {
                    tracing::warn!(reference = %reference, error = %error, age_seconds = (now - cached.read_at).num_seconds(), "secret store unavailable; serving the last value read");
                    Ok(cached.value.clone())
                }
                _ => Err(error),
            },
            Err(error) => {
                *entry = None;
                Err(error)
            }
        }
    }
}

impl<P: SecretsProvider> SecretsProvider for SecretCache<P> {
    fn read<'a>(&'a self, reference: &'a SecretReference, freshness: Freshness) -> BoxFuture<'a, Result<SecretValue, SecretError>> {
        Box::pin(self.read_through(reference, freshness))
    }
}

impl<P: std::fmt::Debug> std::fmt::Debug for SecretCache<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cached = self.slots.lock().map(|s| s.len()).unwrap_or_default();
        f.debug_struct("SecretCache")
            .field("inner", &self.inner)
            .field("ttl_seconds", &self.ttl.num_seconds())
            .field("max_stale_seconds", &self.max_stale.num_seconds())
            .field("references", &cached)
            .finish()
    }
}

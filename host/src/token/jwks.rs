//! A passport's JWKS, fetched over HTTP and cached by `kid`.
//!
//! An unknown `kid` refetches the set, but at most once per
//! `min-refetch-interval-seconds` (every fetch attempt counts, so a flood of
//! made-up key ids cannot hammer the passport). A set older than
//! `max-age-seconds` is refetched on next use so removed keys stop verifying.
//! A failed fetch keeps the last good set. One fetch at a time.

use super::config::JwksSettings;
use super::keys::{token_kid, Expectations, JwtError, KeySet};
use crate::clock::Clock;
use chrono::{DateTime, Utc};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Why a token could not be verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// No key set could be fetched yet: worth retrying.
    #[error("the passport's key set at {url} is unavailable: {reason}")]
    KeysUnavailable { url: String, reason: String },
    #[error(transparent)]
    Jwt(#[from] JwtError),
}

impl VerifyError {
    pub fn is_transient(&self) -> bool {
        matches!(self, VerifyError::KeysUnavailable { .. })
    }
}

#[derive(Default)]
struct State {
    keys: Option<Arc<KeySet>>,
    fetched_at: Option<DateTime<Utc>>,
    last_attempt: Option<DateTime<Utc>>,
    last_error: Option<String>,
}

pub struct JwksCache {
    url: String,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    settings: JwksSettings,
    state: Mutex<State>,
    fetching: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache").field("url", &self.url).field("fetches", &self.fetches()).finish_non_exhaustive()
    }
}

impl JwksCache {
    pub fn new(url: impl Into<String>, settings: JwksSettings, timeout: Duration, clock: Arc<dyn Clock>) -> Result<JwksCache, VerifyError> {
        let url = url.into();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .build()
            .map_err(|e| VerifyError::KeysUnavailable { url: url.clone(), reason: format!("http client could not be built: {e}") })?;
        Ok(JwksCache { url, http, clock, settings, state: Mutex::default(), fetching: tokio::sync::Mutex::new(()), fetches: AtomicU64::new(0) })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// How many times the key set was requested (successfully or not).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Check a token's signature with the key it names and its standard claims.
    pub async fn verify(&self, token: &str, expect: &Expectations<'_>) -> Result<serde_json::Map<String, serde_json::Value>, VerifyError> {
        let kid = token_kid(token)?;
        let keys = self.keys_for(kid.as_deref()).await?;
        Ok(keys.verify(token, expect)?)
    }

    /// The key set to verify a token naming `kid` with, refetched if needed and allowed.
    async fn keys_for(&self, kid: Option<&str>) -> Result<Arc<KeySet>, VerifyError> {
        let now = self.clock.now();
        let (keys, attempt, stale) = {
            let state = self.lock();
            let stale = state.fetched_at.is_some_and(|at| now - at >= seconds(self.settings.max_age_seconds));
            (state.keys.clone(), state.last_attempt, stale)
        };
        let may_fetch = attempt.is_none_or(|at| now - at >= seconds(self.settings.min_refetch_interval_seconds));
        let knows = keys.as_ref().is_some_and(|k| match kid {
            Some(kid) => k.contains(kid),
            None => k.len() == 1,
        });
        if (keys.is_none() || !knows || stale) && may_fetch {
            self.refetch(attempt).await;
        }
        let state = self.lock();
        state.keys.clone().ok_or_else(|| VerifyError::KeysUnavailable {
            url: self.url.clone(),
            reason: state.last_error.clone().unwrap_or_else(|| "not fetched yet".into()),
        })
    }

    /// Fetch once, unless another caller fetched while this one waited for the lock.
    async fn refetch(&self, seen_attempt: Option<DateTime<Utc>>) {
        let _one_at_a_time = self.fetching.lock().await;
        if self.lock().last_attempt != seen_attempt {
            return;
        }
        let started = self.clock.now();
        self.lock().last_attempt = Some(started);
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let fetched = self.fetch().await;
        let mut state = self.lock();
        match fetched {
            Ok((keys, skipped)) => {
                for problem in skipped {
                    tracing::debug!(target: "flowstudio::token", url = %self.url, "key left out of the key set: {problem}");
                }
                state.keys = Some(Arc::new(keys));
                state.fetched_at = Some(started);
                state.last_error = None;
            }
            Err(reason) => {
                let kept = if state.keys.is_some() { "; keeping the last good key set" } else { "" };
                tracing::warn!(target: "flowstudio::token", url = %self.url, "key set could not be fetched: {reason}{kept}");
                state.last_error = Some(reason);
            }
        }
    }

    async fn fetch(&self) -> Result<(KeySet, Vec<JwtError>), String> {
        let mut response = self.http.get(&self.url).header("accept", "application/json").send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status().as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("key set is larger than {MAX_JWKS_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let document: serde_json::Value = serde_json::from_slice(&body).map_err(|e| format!("key set is not JSON: {e}"))?;
        KeySet::from_jwks(&document).map_err(|e| e.to_string())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn seconds(s: u64) -> chrono::Duration {
    i64::try_from(s).ok().and_then(chrono::TimeDelta::try_seconds).unwrap_or(chrono::TimeDelta::MAX)
}

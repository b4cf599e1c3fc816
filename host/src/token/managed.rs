//! `ManagedTokenSource`: the tokens of one managed identity, minted at a
//! passport with the client secret from its store, verified, cached per
//! audience and refreshed ahead of expiry (timing rule in [`super::schedule`]).
//!
//! - One refresh in flight per audience: every caller that needs a new token
//!   joins it, so 50 callers at expiry cause one token request. The refresh
//!   runs as its own task, so a caller that gives up does not stall the others.
//! - Inside the refresh window a still-usable token is returned at once and
//!   the refresh happens in the background.
//! - A failed refresh keeps the old token while it is usable and is retried
//!   with capped exponential backoff; without a usable token the caller gets
//!   the typed error (at once while backing off, so a down passport is not hammered).
//! - `invalid_client` re-reads the secret bypassing caches and retries once
//!   if the store holds a different secret; then fails as `Rejected`.
//! - When the secret changes (new version, or a rotation found that way)
//!   every cached token of the identity is dropped.
//! - With an audit sink ([`ManagedTokenSource::set_audit`]) every secret read
//!   and every token obtained (or not) is an audit event; never a value.

use super::client::{PassportClient, PassportError, TokenRequest, TokenResponse};
use super::config::{PassportConfig, RefreshSettings};
use super::jwks::VerifyError;
use super::schedule::{backoff, plan, Timing};
use super::verify::IdInfoVerifier;
use super::{AccessToken, TokenError, TokenFuture, TokenSource};
use crate::audit::{AuditActor, AuditEvent, AuditSink, Outcome, SecretReadEvent, TokenEvent};
use crate::clock::Clock;
use crate::identity::IdInfo;
use crate::secrets::{Freshness, SecretError, SecretReference, SecretValue, SecretsProvider};
use chrono::{DateTime, Utc};
use futures::future::{BoxFuture, FutureExt, Shared};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Who the tokens are for and where the secret is.
#[derive(Debug, Clone)]
pub struct ManagedIdentity {
    pub managed_identity_id: String,
    pub client_id: String,
    pub secret_reference: SecretReference,
}

/// Counters for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenStats {
    /// Requests sent to the token endpoint.
    pub token_requests: u64,
    /// Tokens obtained (first ones, after invalidation, and renewals).
    pub minted: u64,
    /// Of those, renewals of a token that was still cached.
    pub refreshed: u64,
    /// Refresh attempts that ended in an error.
    pub failures: u64,
    pub secret_reads: u64,
    /// Of those, reads that bypassed caches after `invalid_client`.
    pub bypass_reads: u64,
}

type Refresh = Shared<BoxFuture<'static, Result<AccessToken, TokenError>>>;

#[derive(Default)]
struct Slot {
    current: Option<Cached>,
    inflight: Option<Refresh>,
    failures: u32,
    retry_at: Option<DateTime<Utc>>,
    last_error: Option<TokenError>,
}

struct Cached {
    token: AccessToken,
    timing: Timing,
}

#[derive(Default)]
struct State {
    /// Keyed by the grant audience; `None` is the identity's default token.
    slots: HashMap<Option<String>, Slot>,
    /// Version of the secret the cached tokens were minted with (`Some(None)`: unversioned).
    secret_version: Option<Option<String>>,
    id_info: Option<IdInfo>,
}

#[derive(Default)]
struct Counters {
    token_requests: AtomicU64,
    minted: AtomicU64,
    refreshed: AtomicU64,
    failures: AtomicU64,
    secret_reads: AtomicU64,
    bypass_reads: AtomicU64,
}

struct Inner {
    identity: ManagedIdentity,
    secrets: Arc<dyn SecretsProvider>,
    client: PassportClient,
    verifier: Arc<IdInfoVerifier>,
    clock: Arc<dyn Clock>,
    settings: RefreshSettings,
    state: Mutex<State>,
    counters: Counters,
    audit: std::sync::OnceLock<Arc<dyn AuditSink>>,
}

/// A minted, verified token and what is known about the secret behind it.
struct Minted {
    token: AccessToken,
    timing: Timing,
    secret_version: Option<String>,
    /// A bypass read found a different secret than the cached one.
    secret_rotated: bool,
}

pub struct ManagedTokenSource {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ManagedTokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedTokenSource")
            .field("managed_identity_id", &self.inner.identity.managed_identity_id)
            .field("client_id", &self.inner.identity.client_id)
            .field("passport", &self.inner.client.endpoint())
            .finish_non_exhaustive()
    }
}

impl ManagedTokenSource {
    pub fn new(
        identity: ManagedIdentity,
        secrets: Arc<dyn SecretsProvider>,
        client: PassportClient,
        verifier: Arc<IdInfoVerifier>,
        settings: RefreshSettings,
        clock: Arc<dyn Clock>,
    ) -> ManagedTokenSource {
        let inner = Inner {
            identity,
            secrets,
            client,
            verifier,
            clock,
            settings,
            state: Mutex::default(),
            counters: Counters::default(),
            audit: std::sync::OnceLock::new(),
        };
        ManagedTokenSource { inner: Arc::new(inner) }
    }

    /// A source for `identity` at the passport `config` names. `verifier` may be
    /// shared by every identity of that passport (one key cache).
    pub fn for_passport(
        identity: ManagedIdentity,
        secrets: Arc<dyn SecretsProvider>,
        config: &PassportConfig,
        verifier: Arc<IdInfoVerifier>,
        clock: Arc<dyn Clock>,
    ) -> Result<ManagedTokenSource, PassportError> {
        let client = PassportClient::new(config)?;
        Ok(ManagedTokenSource::new(identity, secrets, client, verifier, config.refresh.clone(), clock))
    }

    /// Report secret reads and tokens obtained to `audit` from now on (set once).
    pub fn set_audit(&self, audit: Arc<dyn AuditSink>) {
        if self.inner.audit.set(audit).is_err() {
            tracing::warn!(target: "flowstudio::token", identity = %self.inner.identity.managed_identity_id, "audit sink was already set");
        }
    }

    pub fn managed_identity_id(&self) -> &str {
        &self.inner.identity.managed_identity_id
    }

    pub fn stats(&self) -> TokenStats {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TokenStats {
            token_requests: get(&c.token_requests),
            minted: get(&c.minted),
            refreshed: get(&c.refreshed),
            failures: get(&c.failures),
            secret_reads: get(&c.secret_reads),
            bypass_reads: get(&c.bypass_reads),
        }
    }

    /// When the cached token for `audience` is due for refresh and stops being handed out.
    pub fn timing(&self, audience: Option<&str>) -> Option<Timing> {
        let state = self.inner.lock();
        state.slots.get(&audience.map(str::to_string)).and_then(|s| s.current.as_ref()).map(|c| c.timing)
    }

    async fn get(&self, audience: Option<&str>) -> Result<AccessToken, TokenError> {
        let key = audience.map(str::to_string);
        let now = self.inner.clock.now();
        let waiting = {
            let mut state = self.inner.lock();
            let slot = state.slots.entry(key.clone()).or_default();
            let backing_off = slot.retry_at.is_some_and(|at| now < at);
            match &slot.current {
                Some(cached) if now < cached.timing.usable_until => {
                    if now >= cached.timing.refresh_at && slot.inflight.is_none() && !backing_off {
                        // Refresh in the background; this caller does not wait.
                        if tokio::runtime::Handle::try_current().is_ok() {
                            slot.inflight = Some(Inner::start_refresh(&self.inner, key.clone()));
                        }
                    }
                    return Ok(cached.token.clone());
                }
                _ => {}
            }
            match (&slot.inflight, &slot.last_error) {
                (Some(refresh), _) => refresh.clone(),
                (None, Some(error)) if backing_off => return Err(error.clone()),
                (None, _) => {
                    let refresh = Inner::start_refresh(&self.inner, key);
                    slot.inflight = Some(refresh.clone());
                    refresh
                }
            }
        };
        waiting.await
    }
}

impl TokenSource for ManagedTokenSource {
    fn token<'a>(&'a self, audience: Option<&'a str>) -> TokenFuture<'a> {
        Box::pin(self.get(audience))
    }

    fn invalidate(&self, rejected: &AccessToken) {
        let mut state = self.inner.lock();
        for (audience, slot) in state.slots.iter_mut() {
            if slot.current.as_ref().is_some_and(|c| c.token.token == rejected.token) {
                tracing::info!(target: "flowstudio::token", identity = %self.inner.identity.managed_identity_id,
                    audience = audience.as_deref().unwrap_or("-"), "token rejected by a destination; dropped");
                slot.current = None;
            }
        }
    }

    fn id_info(&self) -> IdInfo {
        let state = self.inner.lock();
        let from_default = state.slots.get(&None).and_then(|s| s.current.as_ref()).map(|c| c.token.id_info.clone());
        from_default.or_else(|| state.id_info.clone()).unwrap_or_else(|| IdInfo {
            user_id: self.inner.identity.client_id.clone(),
            client_id: self.inner.identity.client_id.clone(),
            is_service_account: true,
            managed_identity_id: Some(self.inner.identity.managed_identity_id.clone()),
            ..IdInfo::default()
        })
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn identity_id(&self) -> String {
        self.identity.managed_identity_id.clone()
    }

    /// Start a refresh as its own task (when there is a runtime) and share its outcome.
    fn start_refresh(this: &Arc<Inner>, audience: Option<String>) -> Refresh {
        let work = Inner::refresh(this.clone(), audience).boxed();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let task = runtime.spawn(work);
                let identity = this.identity_id();
                async move {
                    task.await.unwrap_or_else(|e| {
                        Err(TokenError::Unavailable { identity, reason: format!("token refresh task ended abnormally: {e}") })
                    })
                }
                .boxed()
                .shared()
            }
            Err(_) => work.shared(),
        }
    }

    async fn refresh(self: Arc<Inner>, audience: Option<String>) -> Result<AccessToken, TokenError> {
        let outcome = self.mint(audience.as_deref()).await;
        let now = self.clock.now();
        let mut state = self.lock();
        let previous_version = state.secret_version.clone();
        let slot = state.slots.entry(audience.clone()).or_default();
        slot.inflight = None;
        let aud = audience.as_deref().unwrap_or("-");
        match outcome {
            Ok(minted) => {
                let renewal = slot.current.is_some();
                slot.current = Some(Cached { token: minted.token.clone(), timing: minted.timing });
                slot.failures = 0;
                slot.retry_at = None;
                slot.last_error = None;
                let version_changed = previous_version.as_ref().is_some_and(|v| *v != minted.secret_version);
                if version_changed || minted.secret_rotated {
                    // Tokens minted with the old secret are dropped; they may be revoked with it.
                    for (other, slot) in state.slots.iter_mut() {
                        if *other != audience {
                            slot.current = None;
                        }
                    }
                    tracing::info!(target: "flowstudio::token", identity = %self.identity.managed_identity_id,
                        "client secret changed; cached tokens dropped");
                }
                state.secret_version = Some(minted.secret_version);
                if audience.is_none() || state.id_info.is_none() {
                    state.id_info = Some(minted.token.id_info.clone());
                }
                self.counters.minted.fetch_add(1, Ordering::Relaxed);
                if renewal {
                    self.counters.refreshed.fetch_add(1, Ordering::Relaxed);
                }
                let lifetime = (minted.timing.expires_at - minted.timing.obtained_at).num_seconds();
                tracing::info!(target: "flowstudio::token", identity = %self.identity.managed_identity_id, audience = aud,
                    lifetime_secs = lifetime, renewal, "token obtained");
                self.audit_token(renewal, audience, minted.token.expires_at, None);
                Ok(minted.token)
            }
            Err(error) => {
                slot.failures = slot.failures.saturating_add(1);
                let delay = backoff(slot.failures, &self.settings);
                slot.retry_at = chrono::TimeDelta::from_std(delay).ok().map(|d| now + d);
                slot.last_error = Some(error.clone());
                let still_usable = slot.current.as_ref().is_some_and(|c| now < c.timing.usable_until);
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(target: "flowstudio::token", identity = %self.identity.managed_identity_id, audience = aud,
                    retry_in_secs = delay.as_secs(), keeping_current_token = still_usable, "token refresh failed: {error}");
                let renewal = slot.current.is_some();
                self.audit_token(renewal, audience, 0, Some(error.to_string()));
                Err(error)
            }
        }
    }

    /// Read the secret, ask the passport, verify; once more with a fresh secret after `invalid_client`.
    async fn mint(&self, audience: Option<&str>) -> Result<Minted, TokenError> {
        let secret = self.read_secret(Freshness::Cached).await?;
        let first = match self.request(&secret, audience).await {
            Err(PassportError::InvalidClient { .. }) => None,
            other => Some(other),
        };
        let (response, secret, rotated) = match first {
            Some(answer) => (answer.map_err(|e| self.passport_error(e))?, secret, false),
            None => {
                // The secret may have been rotated under a cache: ask the store itself.
                let fresh = self.read_secret(Freshness::Bypass).await?;
                self.counters.bypass_reads.fetch_add(1, Ordering::Relaxed);
                if fresh.value == secret.value {
                    return Err(self.rejected("invalid_client, and the secret store holds the same secret"));
                }
                match self.request(&fresh, audience).await {
                    Ok(response) => (response, fresh, true),
                    Err(PassportError::InvalidClient { .. }) => {
                        return Err(self.rejected("invalid_client, also with the secret just re-read from its store"))
                    }
                    Err(other) => return Err(self.passport_error(other)),
                }
            }
        };
        let obtained_at = self.clock.now();
        let mut id_info = self.verifier.verify(&response.access_token, audience).await.map_err(|e| self.verify_error(e))?;
        id_info.managed_identity_id = Some(self.identity.managed_identity_id.clone());
        let lifetime = lifetime_of(&response, &id_info, obtained_at);
        let timing = plan(obtained_at, lifetime, &self.settings, rand::random::<f64>());
        let expires_at = timing.expires_at.timestamp().max(0) as u64;
        let token = AccessToken { token: response.access_token, expires_at, id_info };
        Ok(Minted { token, timing, secret_version: secret.version, secret_rotated: rotated })
    }

    async fn request(&self, secret: &SecretValue, audience: Option<&str>) -> Result<TokenResponse, PassportError> {
        self.counters.token_requests.fetch_add(1, Ordering::Relaxed);
        let request = TokenRequest {
            client_id: &self.identity.client_id,
            client_secret: &secret.value,
            audience: audience.or(Some(self.verifier_audience())),
            scope: None,
        };
        self.client.request_token(request).await
    }

    fn verifier_audience(&self) -> &str {
        self.verifier.audience()
    }

    async fn read_secret(&self, freshness: Freshness) -> Result<SecretValue, TokenError> {
        self.counters.secret_reads.fetch_add(1, Ordering::Relaxed);
        let read = self.secrets.read(&self.identity.secret_reference, freshness).await;
        if let Some(audit) = self.audit.get() {
            let outcome = if read.is_ok() { Outcome::Success } else { Outcome::Failure };
            let mut event = SecretReadEvent::new(self.actor(), &self.identity.secret_reference, outcome);
            match &read {
                Ok(value) => event.version = value.version.clone(),
                Err(e) => event.reason = Some(e.to_string()),
            }
            audit.record(AuditEvent::SecretRead(event));
        }
        read.map_err(|e| self.secret_error(e))
    }

    /// Who tokens and secret reads are attributed to: the managed identity (a service account).
    fn actor(&self) -> AuditActor {
        AuditActor { client_id: Some(self.identity.client_id.clone()), ..AuditActor::managed_identity(&self.identity.managed_identity_id) }
    }

    fn audit_token(&self, renewal: bool, audience: Option<String>, expires_at: u64, failure: Option<String>) {
        let Some(audit) = self.audit.get() else { return };
        let outcome = if failure.is_some() { Outcome::Failure } else { Outcome::Success };
        let event = TokenEvent { actor: self.actor(), execution_id: None, audience, expires_at, outcome, reason: failure };
        audit.record(if renewal { AuditEvent::TokenRefreshed(event) } else { AuditEvent::TokenMinted(event) });
    }

    fn rejected(&self, reason: &str) -> TokenError {
        TokenError::Rejected { identity: self.identity_id(), reason: reason.to_string() }
    }

    fn passport_error(&self, error: PassportError) -> TokenError {
        let identity = self.identity_id();
        match error {
            PassportError::Transient { .. } => TokenError::Unavailable { identity, reason: error.to_string() },
            PassportError::InvalidClient { .. } | PassportError::Rejected { .. } => {
                TokenError::Rejected { identity, reason: error.to_string() }
            }
            PassportError::Malformed { .. } => TokenError::InvalidToken { identity, reason: error.to_string() },
        }
    }

    fn verify_error(&self, error: VerifyError) -> TokenError {
        let identity = self.identity_id();
        let reason = format!("token from the passport failed verification: {error}");
        if error.is_transient() {
            TokenError::Unavailable { identity, reason }
        } else {
            TokenError::InvalidToken { identity, reason }
        }
    }

    fn secret_error(&self, error: SecretError) -> TokenError {
        let identity = self.identity_id();
        if error.is_transient() {
            TokenError::Unavailable { identity, reason: format!("client secret could not be read: {error}") }
        } else {
            TokenError::Secret { identity, reason: error.to_string() }
        }
    }
}

/// `expires_in` if the passport said it; else what the token's `exp` leaves, on our clock.
fn lifetime_of(response: &TokenResponse, id_info: &IdInfo, obtained_at: DateTime<Utc>) -> Duration {
    let seconds = response.expires_in.unwrap_or_else(|| {
        let left = id_info.token_expires_at as i64 - obtained_at.timestamp();
        if left > 0 {
            left as u64
        } else {
            super::DEFAULT_LIFETIME_SECS
        }
    });
    Duration::from_secs(seconds.max(1))
}

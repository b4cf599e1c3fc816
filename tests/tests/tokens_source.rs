//! `ManagedTokenSource` against an independent passport: single flight at
//! expiry, background refresh, failures and backoff, secret rotation, invalidation.

use chrono::Utc;
use flowstudio_host::clock::{Clock, ManualClock};
use flowstudio_host::token::{ManagedTokenSource, RefreshSettings, TokenError, TokenSource};
use flowstudio_tests::tokens::*;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

struct Setup {
    passport: PassportMock,
    secrets: Arc<MemorySecrets>,
    clock: Arc<ManualClock>,
    source: Arc<ManagedTokenSource>,
}

fn setup(settings: RefreshSettings) -> Setup {
    let passport = PassportMock::start("secret-v1", 3600);
    let secrets = MemorySecrets::new("secret-v1", "v1");
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let source = managed_source(&passport.config(), secrets.clone(), settings, clock.clone());
    Setup { passport, secrets, clock, source }
}

fn advance_to(clock: &ManualClock, at: chrono::DateTime<Utc>) {
    clock.set(at);
}

/// Wait (bounded) for a background refresh to land.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_callers_at_expiry_cause_exactly_one_token_request() {
    let s = setup(RefreshSettings::default());
    let first = s.source.token(None).await.expect("first token");
    assert_eq!(s.passport.token_requests().await, 1);
    assert_eq!(first.id_info.managed_identity_id.as_deref(), Some(MANAGED_IDENTITY));
    assert_eq!(first.id_info.roles, ["workflow.execute"]);

    // Past the usable margin: every caller has to wait for the new token.
    let timing = s.source.timing(None).expect("cached");
    advance_to(&s.clock, timing.usable_until + chrono::Duration::seconds(1));
    let callers: Vec<_> = (0..50)
        .map(|_| {
            let source = s.source.clone();
            tokio::spawn(async move { source.token(None).await })
        })
        .collect();
    let tokens: Vec<_> = futures::future::join_all(callers).await.into_iter().map(|r| r.expect("joined").expect("token")).collect();
    assert_eq!(s.passport.token_requests().await, 2, "one refresh for fifty callers");
    assert!(tokens.iter().all(|t| t.token == tokens[0].token), "all got the same new token");
    assert_ne!(tokens[0].token, first.token);
    let stats = s.source.stats();
    assert_eq!((stats.minted, stats.refreshed, stats.token_requests), (2, 1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inside_the_refresh_window_callers_get_the_current_token_and_one_refresh_runs_in_the_background() {
    let s = setup(RefreshSettings::default());
    let first = s.source.token(None).await.expect("first token");
    let timing = s.source.timing(None).expect("cached");
    assert_eq!((timing.expires_at - timing.obtained_at).num_seconds(), 3600);
    assert!(timing.expires_at - timing.refresh_at >= chrono::Duration::minutes(6), "max(5 min, 10 %) + jitter");
    advance_to(&s.clock, timing.refresh_at + chrono::Duration::seconds(1));
    let callers: Vec<_> = (0..50)
        .map(|_| {
            let source = s.source.clone();
            tokio::spawn(async move { source.token(None).await })
        })
        .collect();
    for got in futures::future::join_all(callers).await {
        assert_eq!(got.expect("joined").expect("token").token, first.token, "nobody waited for the refresh");
    }
    until("the background refresh", || s.source.stats().minted == 2).await;
    let next = s.source.token(None).await.expect("token");
    assert_ne!(next.token, first.token);
    assert_eq!(s.passport.token_requests().await, 2);
}

#[tokio::test]
async fn a_failing_refresh_keeps_the_usable_token_backs_off_and_recovers_then_fails_typed_after_expiry() {
    let settings = RefreshSettings { retry_initial_seconds: 2, retry_max_seconds: 8, ..Default::default() };
    let s = setup(settings);
    let first = s.source.token(None).await.expect("first");
    s.passport.set(json!({"failTokens": 1000})).await;
    let timing = s.source.timing(None).expect("cached");

    advance_to(&s.clock, timing.refresh_at + chrono::Duration::seconds(1));
    assert_eq!(s.source.token(None).await.expect("old token").token, first.token);
    until("the failed refresh", || s.source.stats().failures == 1).await;
    // Backing off: no new request right away, the old token is still served.
    assert_eq!(s.source.token(None).await.expect("old token").token, first.token);
    assert_eq!(s.passport.token_requests().await, 2);
    s.clock.advance(chrono::Duration::seconds(3));
    assert_eq!(s.source.token(None).await.expect("old token").token, first.token);
    until("the second failure", || s.source.stats().failures == 2).await;
    assert_eq!(s.passport.token_requests().await, 3);

    // The passport is back: the next attempt after the backoff succeeds.
    s.passport.set(json!({"failTokens": 0})).await;
    s.clock.advance(chrono::Duration::seconds(5));
    assert_eq!(s.source.token(None).await.expect("old token").token, first.token);
    until("the recovery", || s.source.stats().minted == 2).await;
    let second = s.source.token(None).await.expect("new token");
    assert_ne!(second.token, first.token);

    // Down again, and this time the token runs out: a typed, transient error.
    s.passport.set(json!({"failTokens": 1000})).await;
    let timing = s.source.timing(None).expect("cached");
    advance_to(&s.clock, timing.usable_until + chrono::Duration::seconds(1));
    let err = s.source.token(None).await.expect_err("no usable token");
    assert!(matches!(&err, TokenError::Unavailable { identity, .. } if identity == MANAGED_IDENTITY), "{err:?}");
    assert!(err.is_transient());
    // While backing off, callers fail fast without asking the passport again.
    let before = s.passport.token_requests().await;
    assert!(s.source.token(None).await.is_err());
    assert_eq!(s.passport.token_requests().await, before);
}

#[tokio::test]
async fn a_rotated_secret_is_re_read_once_bypassing_the_cache_and_old_tokens_are_dropped() {
    let s = setup(RefreshSettings::default());
    let default_token = s.source.token(None).await.expect("default audience");
    let api_token = s.source.token(Some("api://payroll")).await.expect("grant audience");
    assert_eq!(s.passport.token_requests().await, 2);
    assert_eq!(s.secrets.reads(), 2);

    // Rotation in the store; the cache in front still has the old value, the passport takes only the new one.
    s.secrets.rotate("secret-v2", "v2");
    s.passport.set(json!({"secret": "secret-v2"})).await;
    s.source.invalidate(&default_token);
    let renewed = s.source.token(None).await.expect("minted with the re-read secret, no restart");
    assert_ne!(renewed.token, default_token.token);
    assert_eq!(s.secrets.bypass_reads(), 1, "exactly one extra read, bypassing the cache");
    assert_eq!(s.secrets.reads(), 4);
    assert_eq!(s.passport.stats().await["refused"], 1);
    assert_eq!(s.source.stats().bypass_reads, 1);

    // The token of the other audience was minted with the old secret: dropped, minted anew.
    let api_again = s.source.token(Some("api://payroll")).await.expect("grant audience");
    assert_ne!(api_again.token, api_token.token);
    assert_eq!(s.passport.token_requests().await, 5);
    assert_eq!(s.passport.stats().await["refused"], 1, "the cache now holds the new secret");
}

#[tokio::test]
async fn a_new_secret_version_drops_the_cached_tokens() {
    let s = setup(RefreshSettings::default());
    let api_token = s.source.token(Some("api://payroll")).await.expect("grant audience");
    let default_token = s.source.token(None).await.expect("default");
    s.secrets.rotate_everywhere("secret-v1", "v2");
    s.source.invalidate(&default_token);
    s.source.token(None).await.expect("minted with version v2");
    assert_eq!(s.secrets.bypass_reads(), 0);
    let again = s.source.token(Some("api://payroll")).await.expect("re-minted");
    assert_ne!(again.token, api_token.token, "tokens of the old version are not served");
}

#[tokio::test]
async fn a_secret_the_passport_refuses_fails_clearly_after_one_bypass_read() {
    let s = setup(RefreshSettings::default());
    s.passport.set(json!({"secret": "something-else"})).await;
    let err = s.source.token(None).await.expect_err("refused");
    assert!(matches!(&err, TokenError::Rejected { identity, reason } if identity == MANAGED_IDENTITY && reason.contains("invalid_client")), "{err:?}");
    assert!(!err.is_transient());
    assert_eq!(s.secrets.bypass_reads(), 1);
    assert_eq!(s.passport.token_requests().await, 1, "the same secret is not tried twice");
    // Backing off: the next call fails at once with the same clear error.
    assert_eq!(s.source.token(None).await.expect_err("still refused"), err);
    assert_eq!(s.passport.token_requests().await, 1);
}

#[tokio::test]
async fn invalidate_drops_exactly_that_token() {
    let s = setup(RefreshSettings::default());
    let default_token = s.source.token(None).await.expect("default");
    let api_token = s.source.token(Some("api://payroll")).await.expect("api");
    s.source.invalidate(&default_token);
    s.source.invalidate(&default_token);
    assert_eq!(s.source.token(Some("api://payroll")).await.expect("api").token, api_token.token, "other audience untouched");
    let fresh = s.source.token(None).await.expect("re-minted");
    assert_ne!(fresh.token, default_token.token);
    // Invalidating a token that was already replaced changes nothing.
    s.source.invalidate(&default_token);
    assert_eq!(s.source.token(None).await.expect("same").token, fresh.token);
    assert_eq!(s.passport.token_requests().await, 3);
    assert_eq!(s.source.id_info().managed_identity_id.as_deref(), Some(MANAGED_IDENTITY));
    assert_eq!(s.source.id_info().token_expires_at, fresh.id_info.token_expires_at);
    let _ = s.clock.now();
}

//! The cache over a real store (the Key Vault emulator), on a manual clock:
//! TTL hits, bypass, bounded stale-while-revalidate, single flight.

use chrono::{Duration, TimeZone, Utc};
use flowstudio_host::clock::{Clock, ManualClock};
use flowstudio_host::secrets::*;
use flowstudio_tests::secrets::*;
use std::sync::atomic::Ordering;
use std::sync::Arc;

struct Setup {
    azure: AzureVaultEmulator,
    clock: Arc<ManualClock>,
    cache: SecretCache<SecretStore>,
    reference: SecretReference,
}

async fn setup() -> Setup {
    let azure = AzureVaultEmulator::start().await;
    azure.set_secret("payroll-client-secret", AWKWARD_SECRET, true);
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 12, 25, 6, 0, 0).single().expect("time")));
    let toml = format!(
        "[secrets.azure-key-vault]\nclient-id = \"{}\"\nclient-secret = \"{}\"\nauthority = \"{}\"\n",
        azure.state.client_id,
        azure.state.client_secret,
        azure.origin()
    );
    let config = SecretsConfig::from_toml(&toml).expect("config");
    assert_eq!((config.cache.ttl_seconds, config.cache.max_stale_seconds), (300, 3600), "the documented defaults");
    let cache = flowstudio_host::secrets::from_config(&config, clock.clone() as Arc<dyn Clock>);
    let reference = SecretReference::AzureKeyVault { vault_uri: azure.vault_uri(), secret_name: "payroll-client-secret".into(), version: None };
    Setup { azure, clock, cache, reference }
}

fn reads(setup: &Setup) -> usize {
    setup.azure.state.reads.load(Ordering::SeqCst)
}

#[tokio::test]
async fn within_the_ttl_the_store_is_read_once() {
    let s = setup().await;
    for _ in 0..3 {
        assert_eq!(s.cache.read(&s.reference, Freshness::Cached).await.expect("read").value.expose(), AWKWARD_SECRET);
    }
    assert_eq!(reads(&s), 1);
    s.clock.advance(Duration::seconds(299));
    s.cache.read(&s.reference, Freshness::Cached).await.expect("still cached");
    assert_eq!(reads(&s), 1);
    s.clock.advance(Duration::seconds(2));
    s.cache.read(&s.reference, Freshness::Cached).await.expect("expired, read again");
    assert_eq!(reads(&s), 2);
}

#[tokio::test]
async fn bypass_reads_the_store_and_sees_a_rotation() {
    let s = setup().await;
    let first = s.cache.read(&s.reference, Freshness::Cached).await.expect("read");
    let rotated = s.azure.set_secret("payroll-client-secret", "rotated-value", true);
    assert_eq!(s.cache.read(&s.reference, Freshness::Cached).await.expect("cached").version, first.version, "within the TTL the old value is served");
    let fresh = s.cache.read(&s.reference, Freshness::Bypass).await.expect("bypass");
    assert_eq!(fresh.value.expose(), "rotated-value");
    assert_eq!(fresh.version.as_deref(), Some(rotated.as_str()));
    assert_eq!(reads(&s), 2);
    assert_eq!(s.cache.read(&s.reference, Freshness::Cached).await.expect("cached").value.expose(), "rotated-value", "the bypass refreshed the cache");
    assert_eq!(reads(&s), 2);
}

#[tokio::test]
async fn a_down_store_is_bridged_by_the_last_value_until_max_stale() {
    let s = setup().await;
    s.cache.read(&s.reference, Freshness::Cached).await.expect("read");
    s.azure.state.down.store(true, Ordering::SeqCst);
    s.clock.advance(Duration::minutes(30));
    let stale = s.cache.read(&s.reference, Freshness::Cached).await.expect("stale value while the store is down");
    assert_eq!(stale.value.expose(), AWKWARD_SECRET);
    assert_eq!(reads(&s), 1, "the store was asked but could not answer");
    assert!(s.azure.vault_requests().len() >= 3, "the cache did try the store");

    let bypass = s.cache.read(&s.reference, Freshness::Bypass).await.unwrap_err();
    assert!(matches!(bypass, SecretError::Unavailable { .. }), "a bypass never gets a stale value: {bypass:?}");

    s.clock.advance(Duration::minutes(31));
    let too_old = s.cache.read(&s.reference, Freshness::Cached).await.unwrap_err();
    assert!(matches!(too_old, SecretError::Unavailable { .. }), "{too_old:?}");
    assert_redacted(&too_old, &[AWKWARD_SECRET]);

    s.azure.state.down.store(false, Ordering::SeqCst);
    assert_eq!(s.cache.read(&s.reference, Freshness::Cached).await.expect("back").value.expose(), AWKWARD_SECRET);
}

#[tokio::test]
async fn a_definite_answer_drops_the_cached_value() {
    let s = setup().await;
    s.cache.read(&s.reference, Freshness::Cached).await.expect("read");
    s.azure.state.denied.lock().expect("denied").insert("payroll-client-secret".into());
    s.clock.advance(Duration::minutes(6));
    let denied = s.cache.read(&s.reference, Freshness::Cached).await.unwrap_err();
    assert!(matches!(denied, SecretError::AccessDenied { .. }), "{denied:?}");
    s.azure.state.down.store(true, Ordering::SeqCst);
    let down = s.cache.read(&s.reference, Freshness::Cached).await.unwrap_err();
    assert!(matches!(down, SecretError::Unavailable { .. }), "after a denial nothing stale is left to serve: {down:?}");
}

#[tokio::test]
async fn concurrent_reads_share_one_store_read() {
    let s = setup().await;
    let all = futures::future::join_all((0..20).map(|_| s.cache.read(&s.reference, Freshness::Cached))).await;
    assert!(all.iter().all(|r| r.as_ref().is_ok_and(|v| v.value.expose() == AWKWARD_SECRET)));
    assert_eq!(reads(&s), 1);
    assert_eq!(s.azure.token_requests().len(), 1);
    let bypasses = futures::future::join_all((0..10).map(|_| s.cache.read(&s.reference, Freshness::Bypass))).await;
    assert!(bypasses.iter().all(Result::is_ok));
    assert_eq!(reads(&s), 2, "concurrent bypasses share the read that was under way when they came");
    assert_no_secret(&format!("{:?}", s.cache), &[AWKWARD_SECRET]);
}

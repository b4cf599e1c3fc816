//! When a token is refreshed and until when it is handed out (DESIGN §6).
//!
//! For a token of lifetime `L` that expires at `E` (local clock at the
//! response + `expires_in`):
//! - refresh margin `R = max(min-refresh-margin, refresh-fraction × L)`, capped at `L/2`;
//! - usable margin `U = usable-margin`, capped at `L/4`;
//! - refresh from `E − R − jitter`, jitter uniform in `[0, min(max-jitter, R/10)]`;
//! - hand the token out until `E − U`; after that callers wait for the new one.
//!
//! The caps keep short-lived tokens useful: a 5 s token is refreshed after
//! about 2.5 s and used until 3.75 s, where the uncapped rule would refresh it
//! on every call. `R ≥ U` always, so the refresh starts while the token is usable.

use super::config::RefreshSettings;
use chrono::{DateTime, TimeDelta, Utc};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub obtained_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub refresh_at: DateTime<Utc>,
    pub usable_until: DateTime<Utc>,
}

/// `jitter` is a random number in `[0, 1)`.
pub fn plan(obtained_at: DateTime<Utc>, lifetime: Duration, settings: &RefreshSettings, jitter: f64) -> Timing {
    let lifetime_ms = lifetime.as_millis().min(i64::MAX as u128 / 4) as i64;
    let ms = |s: u64| i64::try_from(s).unwrap_or(i64::MAX / 4_000).saturating_mul(1000);
    let fraction = (settings.refresh_fraction.clamp(0.0, 0.5) * lifetime_ms as f64) as i64;
    let refresh_margin = ms(settings.min_refresh_margin_seconds).max(fraction).min(lifetime_ms / 2);
    let usable_margin = ms(settings.usable_margin_seconds).min(lifetime_ms / 4);
    let jitter_ms = (jitter.clamp(0.0, 1.0) * ms(settings.max_jitter_seconds).min(refresh_margin / 10) as f64) as i64;
    let expires_at = obtained_at + TimeDelta::milliseconds(lifetime_ms);
    Timing {
        obtained_at,
        expires_at,
        refresh_at: expires_at - TimeDelta::milliseconds(refresh_margin + jitter_ms),
        usable_until: expires_at - TimeDelta::milliseconds(usable_margin),
    }
}

/// Delay before the next attempt after `failures` failed ones: doubling from the initial delay, capped.
pub fn backoff(failures: u32, settings: &RefreshSettings) -> Duration {
    let exponent = failures.saturating_sub(1).min(20);
    let delay = settings.retry_initial_seconds.max(1).saturating_mul(1u64 << exponent);
    Duration::from_secs(delay.min(settings.retry_max_seconds.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("time")
    }

    #[test]
    fn an_hour_token_refreshes_six_minutes_early_and_is_used_until_thirty_seconds_before() {
        let t = plan(start(), Duration::from_secs(3600), &RefreshSettings::default(), 0.0);
        assert_eq!(t.expires_at - start(), TimeDelta::seconds(3600));
        assert_eq!(t.expires_at - t.refresh_at, TimeDelta::seconds(360));
        assert_eq!(t.expires_at - t.usable_until, TimeDelta::seconds(30));
        let jittered = plan(start(), Duration::from_secs(3600), &RefreshSettings::default(), 0.999);
        let advance = t.refresh_at - jittered.refresh_at;
        assert!(advance > TimeDelta::seconds(29) && advance <= TimeDelta::seconds(30), "{advance}");
    }

    #[test]
    fn a_twenty_minute_token_uses_the_five_minute_floor() {
        let t = plan(start(), Duration::from_secs(1200), &RefreshSettings::default(), 0.0);
        assert_eq!(t.expires_at - t.refresh_at, TimeDelta::seconds(300));
    }

    #[test]
    fn short_tokens_are_still_reused() {
        let t = plan(start(), Duration::from_secs(5), &RefreshSettings::default(), 0.999);
        assert_eq!(t.expires_at - t.usable_until, TimeDelta::milliseconds(1250));
        let reused_for = t.refresh_at - start();
        assert!(reused_for >= TimeDelta::milliseconds(2250) && reused_for <= TimeDelta::milliseconds(2500), "{reused_for}");
        assert!(t.refresh_at < t.usable_until);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = RefreshSettings { retry_initial_seconds: 2, retry_max_seconds: 30, ..Default::default() };
        let secs: Vec<u64> = (1..=6).map(|n| backoff(n, &s).as_secs()).collect();
        assert_eq!(secs, [2, 4, 8, 16, 30, 30]);
        assert_eq!(backoff(u32::MAX, &s).as_secs(), 30);
    }
}

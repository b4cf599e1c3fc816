//! Retry within one execution (DESIGN §7): which failures get another attempt,
//! and how long to wait before it.
//!
//! The wait before attempt `n + 1` is `backoffSeconds · 2^(n-1)`, capped at
//! [`BACKOFF_CAP`] (or at `backoffSeconds` itself when that is larger), then
//! jittered by ±[`JITTER`] so schedules that fail together do not retry in lockstep.

use crate::schedule::RetryPolicy;
use chrono::Duration;

/// The longest wait between attempts, unless the policy's own base is longer.
pub const BACKOFF_CAP: Duration = Duration::hours(1);
/// Fraction by which a wait is jittered either way.
pub const JITTER: f64 = 0.1;

/// The wait after attempt `failed_attempt` (1-based) failed, without jitter.
pub fn base_delay(policy: &RetryPolicy, failed_attempt: u32) -> Duration {
    let base = policy.backoff_seconds as i64;
    let cap = BACKOFF_CAP.num_seconds().max(base);
    let factor = 1i64 << failed_attempt.saturating_sub(1).min(30);
    Duration::seconds(base.saturating_mul(factor).min(cap))
}

/// The wait with jitter; `unit` is a random number in `[0, 1)`.
pub fn delay(policy: &RetryPolicy, failed_attempt: u32, unit: f64) -> Duration {
    let base = base_delay(policy, failed_attempt).num_milliseconds() as f64;
    let factor = 1.0 - JITTER + 2.0 * JITTER * unit.clamp(0.0, 1.0);
    Duration::milliseconds((base * factor).round() as i64)
}

/// Whether attempt `counted + 1` is allowed, where `counted` attempts have run to an end
/// (attempts cut short by the host stopping do not count).
pub fn may_try_again(policy: &RetryPolicy, counted: u32) -> bool {
    counted < policy.max_attempts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_capped_and_jittered_within_bounds() {
        let p = RetryPolicy { max_attempts: 10, backoff_seconds: 60 };
        let secs: Vec<i64> = (1..=8).map(|n| base_delay(&p, n).num_seconds()).collect();
        assert_eq!(secs, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(delay(&p, 1, 0.0), Duration::seconds(54));
        assert_eq!(delay(&p, 1, 0.5), Duration::seconds(60));
        assert!(delay(&p, 1, 0.999_999) <= Duration::seconds(66));
        let long = RetryPolicy { max_attempts: 3, backoff_seconds: 86_400 };
        assert_eq!(base_delay(&long, 3), Duration::seconds(86_400));
        let zero = RetryPolicy { max_attempts: 3, backoff_seconds: 0 };
        assert_eq!(delay(&zero, 2, 0.7), Duration::zero());
        assert!(may_try_again(&p, 9) && !may_try_again(&p, 10));
    }
}

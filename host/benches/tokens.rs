//! `tokens`: the managed-identity token path against the embedded passport
//! served on loopback (real HTTP, real PBKDF2 client-secret check, real JWT
//! signed and verified against the served JWKS).
//!
//! - `tokens/cached`: the hot path, `token()` while the cached token is fresh.
//!   It must complete on its first poll (no await, no I/O); that is asserted.
//! - `tokens/mint`: the same call right after the cached token was dropped:
//!   one full mint (what the cache saves on every call).
//! - `tokens/expiry_50_callers`: the token has just expired and 50 tasks ask
//!   for it at once; the time until all 50 hold the new token. Each iteration
//!   asserts that exactly one token request reached the passport.

mod support;

use criterion::{criterion_group, criterion_main, Criterion};
use flowstudio_host::clock::{Clock, ManualClock};
use flowstudio_host::token::{AccessToken, TokenSource};
use futures::FutureExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::passport::LoopbackPassport;

const CALLERS: usize = 50;

fn tokens(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let mut passport = rt.block_on(LoopbackPassport::start(clock.clone()));
    // The clock jumps an hour per expiry iteration: keep the key set from ageing out,
    // so each iteration measures the token request alone.
    passport.config.jwks.max_age_seconds = 365 * 86_400;
    let source = passport.token_source(clock.clone());
    let first = rt.block_on(source.token(None)).expect("first token");
    let lifetime = chrono::Duration::seconds((first.expires_at as i64) - clock.now().timestamp());

    let mut group = c.benchmark_group("tokens");
    group.bench_function("cached", |b| {
        b.iter(|| {
            let token: AccessToken = source.token(None).now_or_never().expect("a fresh cached token is ready at once").expect("token");
            token
        })
    });

    group.sample_size(10).measurement_time(Duration::from_secs(8));
    group.bench_function("mint", |b| {
        b.iter(|| {
            let current = source.token(None).now_or_never().expect("cached").expect("token");
            source.invalidate(&current);
            rt.block_on(source.token(None)).expect("minted")
        })
    });

    group.bench_function("expiry_50_callers", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // Past the token's expiry: nobody may be handed the old one.
                clock.advance(lifetime + chrono::Duration::seconds(1));
                let before = source.stats().token_requests;
                let started = Instant::now();
                let got: Vec<AccessToken> = rt.block_on(async {
                    let callers: Vec<_> = (0..CALLERS)
                        .map(|_| {
                            let source = source.clone();
                            tokio::spawn(async move { source.token(None).await })
                        })
                        .collect();
                    let mut got = Vec::with_capacity(CALLERS);
                    for caller in callers {
                        got.push(caller.await.expect("caller").expect("token"));
                    }
                    got
                });
                total += started.elapsed();
                assert_eq!(source.stats().token_requests - before, 1, "50 callers at expiry cause one token request");
                assert!(got.iter().all(|t| t.token.expose() == got[0].token.expose()), "every caller holds the one new token");
                assert!(got[0].expires_at as i64 > clock.now().timestamp(), "the new token is valid now");
            }
            total
        })
    });
    group.finish();
    drop(passport);
}

criterion_group!(benches, tokens);
criterion_main!(benches);

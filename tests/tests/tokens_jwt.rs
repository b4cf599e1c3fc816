//! JWT verification against an independent issuer's JWKS: pinned algorithms,
//! required claims, key rotation and a key set that goes away.

use chrono::Utc;
use flowstudio_host::clock::{Clock, ManualClock};
use flowstudio_host::secret::Secret;
use flowstudio_host::token::keys::JwtError;
use flowstudio_host::token::{IdInfoVerifier, VerifyError};
use flowstudio_tests::tokens::*;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{json, Value};
use std::sync::Arc;

struct Setup {
    passport: PassportMock,
    clock: Arc<ManualClock>,
    verifier: IdInfoVerifier,
}

fn setup() -> Setup {
    let passport = PassportMock::start("s", 3600);
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let verifier = IdInfoVerifier::from_config(&passport.config(), clock.clone()).expect("verifier");
    Setup { passport, clock, verifier }
}

/// Good claims, timed on the verifier's clock.
fn claims(s: &Setup) -> Value {
    let now = s.clock.now().timestamp() as u64;
    json!({
        "iss": s.passport.issuer, "aud": "flowstudio", "sub": CLIENT_ID, "client_id": CLIENT_ID,
        "tid": "tenant-1", "roles": ["workflow.execute"], "scope": "payroll.read", "name": "Payroll Scheduler",
        "iat": now, "nbf": now, "exp": now + 600,
    })
}

fn with(mut base: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().expect("object") {
        if v.is_null() {
            base.as_object_mut().expect("object").remove(k);
        } else {
            base[k] = v.clone();
        }
    }
    base
}

async fn verify(s: &Setup, token: &str) -> Result<flowstudio_host::identity::IdInfo, VerifyError> {
    s.verifier.verify(&Secret::new(token), None).await
}

fn unsigned(header: Value, payload: &Value) -> String {
    use base64::Engine as _;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.", b64(&header), b64(payload))
}

#[tokio::test]
async fn a_good_token_maps_to_id_info() {
    let s = setup();
    let token = s.passport.sign(claims(&s)).await;
    let info = verify(&s, &token).await.expect("valid");
    assert_eq!(info.user_id, CLIENT_ID);
    assert_eq!(info.client_id, CLIENT_ID);
    assert_eq!(info.tenant_id, "tenant-1");
    assert_eq!(info.roles, ["workflow.execute"]);
    assert_eq!(info.scopes, ["payroll.read"]);
    assert_eq!(info.display_name, "Payroll Scheduler");
    assert!(info.is_service_account, "sub == client_id");
    assert_eq!(info.token_expires_at, claims(&s)["exp"].as_u64().unwrap());
}

#[tokio::test]
async fn forged_and_incomplete_tokens_are_refused() {
    let s = setup();
    let base = claims(&s);
    let kid = s.passport.stats().await["kid"].as_str().unwrap().to_string();

    // alg none, naming the real key.
    let none = unsigned(json!({"alg": "none", "typ": "JWT", "kid": kid}), &base);
    assert!(verify(&s, &none).await.is_err(), "alg none");

    // HS256 keyed with the public key (the RS→HS confusion attack).
    let jwks = s.passport.jwks().await;
    let public_n = jwks["keys"][0]["n"].as_str().unwrap().to_string();
    let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid.clone());
    for key_material in [public_n.as_bytes().to_vec(), jwks["keys"][0].to_string().into_bytes()] {
        let forged = jsonwebtoken::encode(&header, &base, &EncodingKey::from_secret(&key_material)).unwrap();
        assert!(matches!(verify(&s, &forged).await, Err(VerifyError::Jwt(JwtError::Invalid(_)))), "HS256 with the public key");
    }

    let cases = [
        ("no aud", json!({"aud": null})),
        ("wrong aud", json!({"aud": "someone-else"})),
        ("no iss", json!({"iss": null})),
        ("wrong iss", json!({"iss": "https://evil.example"})),
        ("no exp", json!({"exp": null})),
        ("no sub", json!({"sub": null})),
        ("expired", json!({"exp": unix_now() - 3600})),
        ("string exp", json!({"exp": (unix_now() + 600).to_string()})),
        ("string nbf", json!({"nbf": unix_now().to_string()})),
        ("nbf beyond the leeway", json!({"nbf": unix_now() + 120})),
        ("iat beyond the leeway", json!({"iat": unix_now() + 120})),
    ];
    for (what, change) in cases {
        let token = s.passport.sign(with(base.clone(), change)).await;
        let result = verify(&s, &token).await;
        assert!(matches!(result, Err(VerifyError::Jwt(_))), "{what}: {result:?}");
    }
    // Within the 60 s leeway is fine, and an audience list that holds ours too.
    let token = s.passport.sign(with(base.clone(), json!({"nbf": unix_now() + 30, "iat": unix_now() + 30}))).await;
    verify(&s, &token).await.expect("nbf/iat within the leeway");
    let token = s.passport.sign(with(base.clone(), json!({"aud": ["other", "flowstudio"]}))).await;
    verify(&s, &token).await.expect("aud list containing ours");
    // A grant audience is accepted only when it is the one asked for.
    let token = s.passport.sign(with(base, json!({"aud": "api://payroll"}))).await;
    assert!(verify(&s, &token).await.is_err());
    s.verifier.verify(&Secret::new(&token), Some("api://payroll")).await.expect("requested audience");
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_and_unknown_kids_are_rate_limited() {
    let s = setup();
    verify(&s, &s.passport.sign(claims(&s)).await).await.expect("first key");
    assert_eq!(s.verifier.jwks().fetches(), 1);
    // Many verifications with a known key fetch nothing more.
    for _ in 0..5 {
        verify(&s, &s.passport.sign(claims(&s)).await).await.expect("cached key");
    }
    assert_eq!(s.passport.jwks_requests().await, 1);

    s.clock.advance(chrono::Duration::seconds(31));
    s.passport.rotate().await;
    let rotated = s.passport.sign(claims(&s)).await;
    verify(&s, &rotated).await.expect("unknown kid → refetch → the rotated key verifies");
    assert_eq!(s.passport.jwks_requests().await, 2);

    // A second unknown kid within 30 s does not refetch.
    let stranger = s.passport.sign_with_unknown_key(claims(&s), "kid-nobody-published").await;
    let err = verify(&s, &stranger).await.expect_err("unknown key");
    assert!(matches!(&err, VerifyError::Jwt(JwtError::UnknownKey(k)) if k == "kid-nobody-published"), "{err:?}");
    s.clock.advance(chrono::Duration::seconds(10));
    assert!(verify(&s, &stranger).await.is_err());
    assert_eq!(s.passport.jwks_requests().await, 2, "no refetch within the interval");
    // After the interval, one more fetch (still unknown).
    s.clock.advance(chrono::Duration::seconds(25));
    assert!(verify(&s, &stranger).await.is_err());
    assert_eq!(s.passport.jwks_requests().await, 3);
    // The rotated key keeps verifying; the old key is gone from the set.
    verify(&s, &rotated).await.expect("still good");
}

#[tokio::test]
async fn when_the_key_set_is_down_the_last_good_set_is_used() {
    let s = setup();
    let token = s.passport.sign(claims(&s)).await;
    verify(&s, &token).await.expect("fetched");
    s.passport.set(json!({"jwksDown": true})).await;
    // Old enough to refetch: the fetch fails, the last good set still verifies.
    s.clock.advance(chrono::Duration::seconds(3601));
    let fresh = s.passport.sign(claims(&s)).await;
    verify(&s, &fresh).await.expect("last good key set");
    assert_eq!(s.passport.jwks_requests().await, 2, "it did try");
    // A verifier that never got a key set reports a transient problem.
    let cold = IdInfoVerifier::from_config(&s.passport.config(), s.clock.clone()).expect("verifier");
    let err = cold.verify(&Secret::new(&fresh), None).await.expect_err("no keys at all");
    assert!(err.is_transient(), "{err:?}");
}

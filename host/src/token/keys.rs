//! A passport's public keys with the signing algorithm pinned per key, and
//! the one place a JWT's signature and standard claims are checked.
//!
//! The algorithm comes from the key (`kty`/`crv`/`alg`), never from the token
//! header, so `alg: none` and HS256-signed-with-the-public-key tokens fail.
//! `iss`, `aud`, `exp` and `sub` are required and must have the right type
//! (a string `exp` is refused, CVE-2026-25537). Time claims are checked
//! against the caller's clock, not the machine's, with a leeway for skew.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::collections::HashMap;

/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY_SECS: u64 = 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("token has no usable header: {0}")]
    Header(String),
    #[error("token names key `{0}`, which the passport's key set does not hold")]
    UnknownKey(String),
    #[error("token does not name a key (`kid`) and the key set holds several")]
    NoKeyId,
    #[error("key `{kid}` in the key set is not usable: {reason}")]
    BadKey { kid: String, reason: String },
    #[error("token rejected: {0}")]
    Invalid(String),
}

/// One public key and the only algorithm it verifies.
pub struct PinnedKey {
    pub algorithm: Algorithm,
    key: DecodingKey,
}

/// The usable signing keys of a JWKS document, by `kid`.
#[derive(Default)]
pub struct KeySet {
    keys: HashMap<String, PinnedKey>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut kids: Vec<_> = self.keys.iter().map(|(k, v)| format!("{k}:{:?}", v.algorithm)).collect();
        kids.sort();
        f.debug_struct("KeySet").field("keys", &kids).finish()
    }
}

/// What a token must say, besides a good signature.
#[derive(Debug, Clone)]
pub struct Expectations<'a> {
    pub issuer: &'a str,
    /// Any one of these in `aud` is enough.
    pub audiences: &'a [&'a str],
    /// Unix seconds, from the caller's clock.
    pub now: u64,
    pub leeway_secs: u64,
}

impl KeySet {
    /// Parse a JWKS document. Keys that cannot verify signatures (encryption
    /// keys, symmetric keys, unknown types) are left out with the reason;
    /// a document with no usable key at all is an error.
    pub fn from_jwks(jwks: &serde_json::Value) -> Result<(KeySet, Vec<JwtError>), JwtError> {
        let not_jwks = |reason: &str| JwtError::BadKey { kid: "*".into(), reason: format!("not a JWKS document: {reason}") };
        let entries = jwks.get("keys").and_then(|k| k.as_array()).ok_or_else(|| not_jwks("no `keys` array"))?;
        let mut keys = HashMap::new();
        let mut skipped = Vec::new();
        for entry in entries {
            let kid = entry.get("kid").and_then(|k| k.as_str()).unwrap_or_default().to_string();
            let pinned = serde_json::from_value::<Jwk>(entry.clone())
                .map_err(|e| JwtError::BadKey { kid: kid.clone(), reason: e.to_string() })
                .and_then(|jwk| pin(&kid, &jwk));
            match pinned {
                Ok(key) => {
                    keys.insert(kid, key);
                }
                Err(e) => skipped.push(e),
            }
        }
        if keys.is_empty() {
            return Err(skipped.into_iter().next().unwrap_or_else(|| not_jwks("the key set is empty")));
        }
        Ok((KeySet { keys }, skipped))
    }

    pub fn contains(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key a token header points at.
    pub fn key_for(&self, kid: Option<&str>) -> Result<&PinnedKey, JwtError> {
        match kid {
            Some(kid) => self.keys.get(kid).ok_or_else(|| JwtError::UnknownKey(kid.to_string())),
            None if self.keys.len() == 1 => self.keys.values().next().ok_or(JwtError::NoKeyId),
            None => Err(JwtError::NoKeyId),
        }
    }

    /// Check signature and claims; returns the claims as JSON.
    pub fn verify(&self, token: &str, expect: &Expectations<'_>) -> Result<serde_json::Map<String, serde_json::Value>, JwtError> {
        let kid = token_kid(token)?;
        verify_with(self.key_for(kid.as_deref())?, token, expect)
    }
}

/// The `kid` of a token's header (the header is not trusted for anything else).
pub fn token_kid(token: &str) -> Result<Option<String>, JwtError> {
    jsonwebtoken::decode_header(token).map(|h| h.kid).map_err(|e| JwtError::Header(e.to_string()))
}

/// Verify a token with one pinned key.
pub fn verify_with(
    pinned: &PinnedKey,
    token: &str,
    expect: &Expectations<'_>,
) -> Result<serde_json::Map<String, serde_json::Value>, JwtError> {
    let mut validation = Validation::new(pinned.algorithm);
    validation.set_issuer(&[expect.issuer]);
    validation.set_audience(expect.audiences);
    // Without `aud` in the required claims a token with no audience would pass.
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    // Time is checked below against the caller's clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(token, &pinned.key, &validation)
        .map_err(|e| JwtError::Invalid(e.to_string()))?;
    check_times(&data.claims, expect.now, expect.leeway_secs)?;
    Ok(data.claims)
}

fn check_times(claims: &serde_json::Map<String, serde_json::Value>, now: u64, leeway: u64) -> Result<(), JwtError> {
    let exp = numeric_claim(claims, "exp")?.ok_or_else(|| JwtError::Invalid("`exp` is required".into()))?;
    if exp + leeway <= now {
        return Err(JwtError::Invalid("token has expired".into()));
    }
    if let Some(nbf) = numeric_claim(claims, "nbf")? {
        if nbf > now + leeway {
            return Err(JwtError::Invalid("token is not valid yet (`nbf` is in the future)".into()));
        }
    }
    if let Some(iat) = numeric_claim(claims, "iat")? {
        if iat > now + leeway {
            return Err(JwtError::Invalid("token was issued in the future (`iat`)".into()));
        }
    }
    Ok(())
}

/// A NumericDate claim: absent, or a non-negative number. Anything else is refused.
pub fn numeric_claim(claims: &serde_json::Map<String, serde_json::Value>, name: &str) -> Result<Option<u64>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => match value.as_u64().or_else(|| value.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)) {
            Some(n) => Ok(Some(n)),
            None => Err(JwtError::Invalid(format!("`{name}` must be a number of seconds"))),
        },
    }
}

fn pin(kid: &str, jwk: &Jwk) -> Result<PinnedKey, JwtError> {
    let bad = |reason: String| JwtError::BadKey { kid: kid.into(), reason };
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return Err(bad("an encryption key cannot verify signatures".into()));
    }
    let declared = jwk.common.key_algorithm;
    let algorithm = match &jwk.algorithm {
        AlgorithmParameters::OctetKeyPair(p) => match (&p.curve, declared) {
            (EllipticCurve::Ed25519, None | Some(KeyAlgorithm::EdDSA)) => Algorithm::EdDSA,
            (curve, alg) => return Err(bad(format!("OKP key on {curve:?} with alg {alg:?} is not supported"))),
        },
        AlgorithmParameters::RSA(_) => match declared {
            None | Some(KeyAlgorithm::RS256) => Algorithm::RS256,
            Some(KeyAlgorithm::RS384) => Algorithm::RS384,
            Some(KeyAlgorithm::RS512) => Algorithm::RS512,
            Some(KeyAlgorithm::PS256) => Algorithm::PS256,
            Some(KeyAlgorithm::PS384) => Algorithm::PS384,
            Some(KeyAlgorithm::PS512) => Algorithm::PS512,
            Some(other) => return Err(bad(format!("RSA key declares alg {other}, which is not a signature algorithm"))),
        },
        AlgorithmParameters::EllipticCurve(p) => match (&p.curve, declared) {
            (EllipticCurve::P256, None | Some(KeyAlgorithm::ES256)) => Algorithm::ES256,
            (EllipticCurve::P384, None | Some(KeyAlgorithm::ES384)) => Algorithm::ES384,
            (curve, alg) => return Err(bad(format!("EC key on {curve:?} with alg {alg:?} is not supported"))),
        },
        AlgorithmParameters::OctetKey(_) => return Err(bad("symmetric keys are not accepted".into())),
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|e| bad(e.to_string()))?;
    Ok(PinnedKey { algorithm, key })
}

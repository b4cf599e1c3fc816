//! Verifying passport JWTs against a JWKS, with the algorithm pinned per key.
//!
//! The algorithm comes from the key (its `kty`/`crv`/`alg`), never from the
//! token header, so `alg: none` and HS256-signed-with-the-public-key tokens
//! fail. `iss`, `aud`, `exp` and `sub` are required; `nbf` is checked; 60 s leeway.

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::DeserializeOwned;
use std::collections::HashMap;

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

struct PinnedKey {
    algorithm: Algorithm,
    key: DecodingKey,
}

pub struct JwtVerifier {
    issuer: String,
    audience: String,
    keys: HashMap<String, PinnedKey>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl JwtVerifier {
    pub fn new(issuer: &str, audience: &str, jwks: &serde_json::Value) -> Result<JwtVerifier, JwtError> {
        let set: JwkSet = serde_json::from_value(jwks.clone())
            .map_err(|e| JwtError::BadKey { kid: "*".into(), reason: format!("not a JWKS document: {e}") })?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let kid = jwk.common.key_id.clone().unwrap_or_default();
            keys.insert(kid.clone(), pin(&kid, jwk)?);
        }
        Ok(JwtVerifier { issuer: issuer.into(), audience: audience.into(), keys })
    }

    pub fn verify<C: DeserializeOwned>(&self, token: &str) -> Result<C, JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| JwtError::Header(e.to_string()))?;
        let pinned = match header.kid {
            Some(kid) => self.keys.get(&kid).ok_or(JwtError::UnknownKey(kid))?,
            None if self.keys.len() == 1 => self.keys.values().next().ok_or(JwtError::NoKeyId)?,
            None => return Err(JwtError::NoKeyId),
        };
        let mut validation = Validation::new(pinned.algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 60;
        jsonwebtoken::decode::<C>(token, &pinned.key, &validation)
            .map(|data| data.claims)
            .map_err(|e| JwtError::Invalid(e.to_string()))
    }
}

fn pin(kid: &str, jwk: &Jwk) -> Result<PinnedKey, JwtError> {
    let bad = |reason: String| JwtError::BadKey { kid: kid.into(), reason };
    let algorithm = match &jwk.algorithm {
        AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
        AlgorithmParameters::RSA(_) => match jwk.common.key_algorithm.map(|a| a.to_string()).as_deref() {
            Some("RS384") => Algorithm::RS384,
            Some("RS512") => Algorithm::RS512,
            Some("PS256") => Algorithm::PS256,
            _ => Algorithm::RS256,
        },
        AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
        AlgorithmParameters::OctetKey(_) => return Err(bad("symmetric keys are not accepted".into())),
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|e| bad(e.to_string()))?;
    Ok(PinnedKey { algorithm, key })
}

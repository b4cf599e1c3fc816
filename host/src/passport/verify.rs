//! Verifying passport JWTs against a fixed JWKS document: a thin front of
//! [`token::keys`](crate::token::keys), which pins the algorithm per key and
//! checks `iss`, `aud`, `exp`, `sub`, `nbf` and `iat` (60 s leeway) on the
//! machine's clock. For a passport whose keys rotate, use
//! [`token::IdInfoVerifier`](crate::token::IdInfoVerifier) over a `JwksCache`.

use crate::token::keys::{Expectations, KeySet, DEFAULT_LEEWAY_SECS};
use serde::de::DeserializeOwned;

pub use crate::token::keys::JwtError;

pub struct JwtVerifier {
    issuer: String,
    audience: String,
    keys: KeySet,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("keys", &self.keys)
            .finish()
    }
}

impl JwtVerifier {
    pub fn new(issuer: &str, audience: &str, jwks: &serde_json::Value) -> Result<JwtVerifier, JwtError> {
        let (keys, _skipped) = KeySet::from_jwks(jwks)?;
        Ok(JwtVerifier { issuer: issuer.into(), audience: audience.into(), keys })
    }

    pub fn verify<C: DeserializeOwned>(&self, token: &str) -> Result<C, JwtError> {
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        let expect = Expectations { issuer: &self.issuer, audiences: &[&self.audience], now, leeway_secs: DEFAULT_LEEWAY_SECS };
        let claims = self.keys.verify(token, &expect)?;
        serde_json::from_value(serde_json::Value::Object(claims)).map_err(|e| JwtError::Invalid(e.to_string()))
    }
}

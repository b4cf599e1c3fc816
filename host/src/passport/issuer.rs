//! Signing keys and token minting of the embedded passport (EdDSA / Ed25519).

use crate::secret::Secret;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::SigningKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

/// The claims our passport puts in an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub exp: u64,
    pub iat: u64,
    pub nbf: u64,
    #[serde(default)]
    pub tid: String,
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idtyp: Option<String>,
    /// The managed identity the token was minted for, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mi: Option<String>,
    /// Unique per token, so two tokens minted in the same second differ.
    #[serde(default)]
    pub jti: String,
}

#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    #[error("passport signing key could not be encoded: {0}")]
    Key(String),
    #[error("passport could not sign a token: {0}")]
    Sign(String),
}

pub struct Issuer {
    issuer: String,
    kid: String,
    key: EncodingKey,
    public_x: String,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer").field("issuer", &self.issuer).field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl Issuer {
    /// A fresh key pair for `issuer` (its `iss` claim).
    pub fn generate(issuer: impl Into<String>) -> Result<Issuer, IssuerError> {
        let signing = SigningKey::generate(&mut rand::rngs::OsRng);
        Self::from_signing_key(issuer.into(), &signing)
    }

    /// Rebuild an issuer from its 32-byte Ed25519 seed (as kept in the data dir).
    pub fn from_seed(issuer: impl Into<String>, seed: &[u8; 32]) -> Result<Issuer, IssuerError> {
        Self::from_signing_key(issuer.into(), &SigningKey::from_bytes(seed))
    }

    fn from_signing_key(issuer: String, signing: &SigningKey) -> Result<Issuer, IssuerError> {
        let der = signing.to_pkcs8_der().map_err(|e| IssuerError::Key(e.to_string()))?;
        let public = signing.verifying_key().to_bytes();
        let public_x = URL_SAFE_NO_PAD.encode(public);
        // The key id is derived from the public key so that it changes on rotation.
        let kid = hex::encode(&sha2_digest(&public)[..8]);
        Ok(Issuer { issuer, kid, key: EncodingKey::from_ed_der(der.as_bytes()), public_x })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn sign(&self, claims: &Claims) -> Result<Secret, IssuerError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key)
            .map(Secret::new)
            .map_err(|e| IssuerError::Sign(e.to_string()))
    }

    /// The public key set, as served at the passport's JWKS endpoint.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [{
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
            "kid": self.kid, "x": self.public_x,
        }]})
    }
}

fn sha2_digest(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}

//! Client secrets of the embedded passport's identities: generating them and
//! keeping only a salted, slow hash.
//!
//! The scheme is PBKDF2-HMAC-SHA256 (RFC 8018) with a per-identity random
//! 16-byte salt and the iteration count stored next to the hash, so the cost
//! can be raised later without invalidating stored secrets. A plain salted
//! HMAC would be adequate for the secrets we generate ourselves (256 random
//! bits cannot be brute-forced however fast the hash), but operators may also
//! bring their own secret (`--secret-stdin`), which can be weak; a slow KDF
//! protects those if the state database leaks. Comparison is constant-time.
//!
//! Cost: the default 600,000 rounds take a fraction of a second per check in a
//! release build (seconds in a debug build). A check happens once per token
//! request, i.e. about once an hour per identity; the passport bounds how many
//! run at once. Tests lower it with `IdentityRegistry::with_hash_iterations`.

use crate::secret::Secret;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore as _;
use sha2::Sha256;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

/// The scheme name stored with each hash.
pub(crate) const SCHEME: &str = "pbkdf2-sha256";

/// OWASP's 2023 recommendation for PBKDF2-HMAC-SHA256.
pub const DEFAULT_HASH_ITERATIONS: u32 = 600_000;

/// Below this, a stored hash is refused as too cheap to protect anything.
pub const MIN_HASH_ITERATIONS: u32 = 1_000;

/// A stored client-secret hash. Not secret itself, but never shown either:
/// it would let anyone who sees it guess offline.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SecretHash {
    pub iterations: u32,
    pub salt: [u8; 16],
    pub hash: [u8; 32],
}

impl std::fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretHash").field("iterations", &self.iterations).finish_non_exhaustive()
    }
}

impl SecretHash {
    /// Hash `secret` with a fresh random salt.
    pub fn new(secret: &Secret, iterations: u32) -> SecretHash {
        let mut salt = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let hash = *pbkdf2_sha256(secret.expose().as_bytes(), &salt, iterations);
        SecretHash { iterations, salt, hash }
    }

    /// Whether `candidate` is the secret this hash was made from (constant-time compare).
    pub fn matches(&self, candidate: &Secret) -> bool {
        let computed = pbkdf2_sha256(candidate.expose().as_bytes(), &self.salt, self.iterations);
        bool::from(computed.ct_eq(&self.hash))
    }
}

/// Spend the same work as checking a real hash, so an unknown client id takes
/// as long to refuse as a wrong secret (no timing oracle on which ids exist).
pub(crate) fn burn_equivalent_work(candidate: &Secret, iterations: u32) {
    let _ = pbkdf2_sha256(candidate.expose().as_bytes(), &[0u8; 16], iterations);
}

/// A fresh client secret: 32 random bytes, base64url without padding (43 characters,
/// all of them safe in URLs, forms and shells).
pub fn generate_client_secret() -> Secret {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut());
    Secret::new(URL_SAFE_NO_PAD.encode(bytes.as_ref()))
}

/// PBKDF2 with HMAC-SHA256 and a 32-byte output (one block, RFC 8018 §5.2).
fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: u32) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    // HMAC accepts keys of any length, so this cannot fail; an empty result would
    // never equal a stored hash, so failing closed is still correct.
    let Ok(keyed) = Hmac::<Sha256>::new_from_slice(password) else { return out };
    // Clone the keyed state per round instead of re-keying: same result, half the work.
    let mut block: [u8; 32] = keyed.clone().chain_update(salt).chain_update(1u32.to_be_bytes()).finalize().into_bytes().into();
    out.copy_from_slice(&block);
    for _ in 1..iterations.max(1) {
        block = keyed.clone().chain_update(block).finalize().into_bytes().into();
        for (o, b) in out.iter_mut().zip(block.iter()) {
            *o ^= b;
        }
    }
    block.fill(0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pbkdf2_matches_the_published_sha256_vectors() {
        // Test vectors for PBKDF2-HMAC-SHA256 (RFC 7914 §11 uses the same construction).
        let one = pbkdf2_sha256(b"password", b"salt", 1);
        assert_eq!(hex::encode(*one), "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b");
        let many = pbkdf2_sha256(b"password", b"salt", 4096);
        assert_eq!(hex::encode(*many), "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a");
    }

    #[test]
    fn a_hash_matches_only_its_own_secret_and_salts_differ() {
        let secret = Secret::new("a+b/c:d%e=");
        let first = SecretHash::new(&secret, MIN_HASH_ITERATIONS);
        let second = SecretHash::new(&secret, MIN_HASH_ITERATIONS);
        assert!(first.matches(&secret));
        assert!(!first.matches(&Secret::new("a+b/c:d%e")));
        assert_ne!(first.salt, second.salt);
        assert_ne!(first.hash, second.hash);
        assert!(!format!("{first:?}").contains(&hex::encode(first.hash)));
    }

    #[test]
    fn generated_secrets_are_long_and_distinct() {
        let a = generate_client_secret();
        let b = generate_client_secret();
        assert_eq!(a.expose().len(), 43);
        assert_ne!(a, b);
        assert!(a.expose().chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }
}

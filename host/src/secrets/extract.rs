//! Picking a client secret out of what a store holds: one key of a JSON
//! object, and a version for stores that have none (a keyed hash of the
//! content, so a rotation is visible without the hash revealing the value).

use crate::secret::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::OnceLock;
use zeroize::Zeroize;

/// Why a key could not be taken from a secret; never carries the content.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum KeyProblem {
    NotAnObject,
    Missing,
    NotText,
}

impl KeyProblem {
    /// The problem in words, for an error about `key`.
    pub fn describe(&self, key: &str) -> String {
        match self {
            KeyProblem::NotAnObject => format!("the secret is not a JSON object, so it has no key `{key}`"),
            KeyProblem::Missing => format!("the secret has no key `{key}`"),
            KeyProblem::NotText => format!("the secret's key `{key}` does not hold a string"),
        }
    }
}

/// The string at `key` of the JSON object in `text`. The other values are
/// wiped before they are dropped: they may be secrets too.
pub(crate) fn json_key(text: &str, key: &str) -> Result<Secret, KeyProblem> {
    let mut object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).map_err(|_| KeyProblem::NotAnObject)?;
    let found = match object.remove(key) {
        Some(serde_json::Value::String(value)) => Ok(Secret::new(value)),
        Some(mut other) => {
            wipe(&mut other);
            Err(KeyProblem::NotText)
        }
        None => Err(KeyProblem::Missing),
    };
    for value in object.values_mut() {
        wipe(value);
    }
    found
}

fn wipe(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Array(items) => items.iter_mut().for_each(wipe),
        serde_json::Value::Object(map) => map.values_mut().for_each(wipe),
        _ => {}
    }
}

/// A version for a secret whose store keeps none: an HMAC of the content
/// under a key made once per process. The same content gives the same
/// version within a process (so rotation is visible), and a guessable secret
/// cannot be confirmed from the version in a log.
pub(crate) fn content_version(content: &str) -> String {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    let key = KEY.get_or_init(rand::random::<[u8; 32]>);
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        // HMAC takes keys of any length; unreachable, but never panic on the read path.
        return String::from("unversioned");
    };
    mac.update(content.as_bytes());
    let digest = mac.finalize().into_bytes();
    hex::encode(&digest[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_taken_and_problems_are_told_apart() {
        let text = r#"{"client_secret": "a+b/c:d%e=", "n": 1}"#;
        assert_eq!(json_key(text, "client_secret").map(|s| s.expose().to_string()), Ok("a+b/c:d%e=".into()));
        assert_eq!(json_key(text, "other").unwrap_err(), KeyProblem::Missing);
        assert_eq!(json_key(text, "n").unwrap_err(), KeyProblem::NotText);
        assert_eq!(json_key("a+b/c:d%e=", "k").unwrap_err(), KeyProblem::NotAnObject);
        assert!(!KeyProblem::NotAnObject.describe("k").contains("a+b"));
    }

    #[test]
    fn content_versions_follow_the_content() {
        assert_eq!(content_version("one"), content_version("one"));
        assert_ne!(content_version("one"), content_version("two"));
        assert_eq!(content_version("one").len(), 16);
    }
}

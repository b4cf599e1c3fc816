//! Strict `application/x-www-form-urlencoded` decoding for the token endpoint:
//! the request body, and the id and secret inside Basic credentials
//! (RFC 6749 §2.3.1 form-encodes both before base64).
//!
//! Malformed percent escapes and invalid UTF-8 are errors, not passed through,
//! so a credential that was not form-encoded does not authenticate by luck.

use crate::secret::Secret;
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// Decode one form-encoded component: `+` is a space, `%XX` a byte.
pub(crate) fn decode_component(encoded: &str) -> Option<Zeroizing<String>> {
    let bytes = encoded.as_bytes();
    let mut out = Zeroizing::new(Vec::with_capacity(bytes.len()));
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                // Check the digits first: `from_str_radix` would take a sign (`%+1`).
                let hex = bytes.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit))?;
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    // Move the bytes into a String without leaving an unzeroized copy behind.
    let text = std::str::from_utf8(&out).ok()?;
    Some(Zeroizing::new(text.to_owned()))
}

/// The parameters of a token request. `client_secret` is held as a [`Secret`]
/// and is left out of `Debug`.
#[derive(Default)]
pub(crate) struct TokenForm {
    params: BTreeMap<String, String>,
    pub client_secret: Option<Secret>,
}

impl std::fmt::Debug for TokenForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenForm")
            .field("params", &self.params)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl TokenForm {
    /// Parse a form body. A repeated parameter is an error (RFC 6749 §3.2); a
    /// parameter without a value counts as absent (§3.1).
    pub fn parse(body: &[u8]) -> Result<TokenForm, String> {
        let body = std::str::from_utf8(body).map_err(|_| "the request body is not UTF-8".to_string())?;
        let mut form = TokenForm::default();
        let mut seen = std::collections::BTreeSet::new();
        for pair in body.split('&').filter(|p| !p.is_empty()) {
            let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode_component(raw_name).ok_or_else(|| "a parameter name is not form-urlencoded".to_string())?;
            let value = decode_component(raw_value)
                .ok_or_else(|| format!("parameter `{}` is not form-urlencoded", name.escape_debug()))?;
            if !seen.insert(name.to_string()) {
                return Err(format!("parameter `{}` is repeated", name.escape_debug()));
            }
            if value.is_empty() {
                continue;
            }
            if name.as_str() == "client_secret" {
                form.client_secret = Some(Secret::new(value.as_str()));
            } else {
                form.params.insert(name.to_string(), value.to_string());
            }
        }
        Ok(form)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_decode_strictly() {
        assert_eq!(decode_component("a%2Bb%2Fc%3Ad%25e%3D").as_deref().map(String::as_str), Some("a+b/c:d%e="));
        assert_eq!(decode_component("a+b").as_deref().map(String::as_str), Some("a b"));
        assert!(decode_component("d%e=").is_none(), "a bad escape is refused");
        assert!(decode_component("%").is_none());
        assert!(decode_component("%+1").is_none(), "no signs in escapes");
        assert!(decode_component("%ff").is_none(), "not UTF-8");
        assert_eq!(decode_component("%C3%A9").as_deref().map(String::as_str), Some("é"));
    }

    #[test]
    fn forms_refuse_repeats_and_skip_empty_values() {
        let form = TokenForm::parse(b"grant_type=client_credentials&scope=&client_secret=s%20x").expect("parse");
        assert_eq!(form.get("grant_type"), Some("client_credentials"));
        assert_eq!(form.get("scope"), None);
        assert_eq!(form.client_secret.as_ref().map(Secret::expose), Some("s x"));
        assert!(!format!("{form:?}").contains("s x"));
        let err = TokenForm::parse(b"scope=a&scope=b").expect_err("repeat");
        assert!(err.contains("`scope` is repeated"), "{err}");
    }
}

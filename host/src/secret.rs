//! A holder for secret material (client secrets, access tokens).
//!
//! `Debug` and `Display` print `[redacted]`, there is no `Serialize`, and the
//! bytes are zeroized on drop, so a secret cannot reach a log line, an error,
//! an API response or the database by accident. Reading it is explicit:
//! [`Secret::expose`]. It deserializes (so config files can hold the host's own
//! credentials) but never serializes.

use std::fmt;
use zeroize::Zeroizing;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(Zeroizing::new(value.into()))
    }

    /// The secret value. Call only where it must leave the host's memory
    /// (an `Authorization` header, a token request body).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("a+b/c:d%e=");
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert_eq!(format!("{s}"), "[redacted]");
        assert!(!format!("{s:?} {s} {:?}", Some(&s)).contains("a+b"));
        assert_eq!(s.expose(), "a+b/c:d%e=");
    }
}

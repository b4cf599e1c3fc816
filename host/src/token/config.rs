//! The `passport` section of the host configuration: where tokens are minted
//! and verified, and when they are refreshed.
//!
//! ```toml
//! [passport.external]
//! url = "https://passport.example.com"      # token-endpoint, jwks-url and issuer default from it
//! audience = "flowstudio"
//! auth-method = "client_secret_basic"       # or "client_secret_post"
//! tenant-claim = "tid"
//! [passport.external.refresh]
//! min-refresh-margin-seconds = 300
//! ```

use crate::validation::FieldError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Path of the token endpoint under the passport's URL unless `token-endpoint` says otherwise.
pub const DEFAULT_TOKEN_PATH: &str = "/passport/token";
/// Path of the key set under the passport's URL unless `jwks-url` says otherwise.
pub const DEFAULT_JWKS_PATH: &str = "/passport/jwks";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PassportConfig {
    /// Base URL of the passport.
    pub url: String,
    /// Full URL of the token endpoint; default `{url}/passport/token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    /// Full URL of the JWKS; default `{url}/passport/jwks`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// Expected `iss` of every token; default `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Expected `aud` of tokens minted without a grant audience.
    #[serde(default = "default_audience")]
    pub audience: String,
    #[serde(default)]
    pub auth_method: AuthMethod,
    /// Form field that carries the wanted audience (`audience`, `resource`, `aud`, ...);
    /// empty: never send one.
    #[serde(default = "default_audience_parameter")]
    pub audience_parameter: String,
    /// `scope` sent with every token request, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Claim that names the tenant.
    #[serde(default = "default_tenant_claim")]
    pub tenant_claim: String,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    #[serde(default)]
    pub refresh: RefreshSettings,
    #[serde(default)]
    pub jwks: JwksSettings,
}

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// HTTP Basic with id and secret each form-urlencoded first.
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

/// When a token is renewed; see [`super::schedule`] for the rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct RefreshSettings {
    /// Refresh at least this long before expiry.
    pub min_refresh_margin_seconds: u64,
    /// ... or this fraction of the lifetime before expiry, whichever is longer.
    pub refresh_fraction: f64,
    /// A token is not handed out in its last seconds; callers wait for the refresh instead.
    pub usable_margin_seconds: u64,
    /// Upper bound of the random advance of each refresh (spreads many identities).
    pub max_jitter_seconds: u64,
    /// First retry delay after a failed refresh; doubles per failure.
    pub retry_initial_seconds: u64,
    pub retry_max_seconds: u64,
}

impl Default for RefreshSettings {
    fn default() -> Self {
        RefreshSettings {
            min_refresh_margin_seconds: 300,
            refresh_fraction: 0.10,
            usable_margin_seconds: 30,
            max_jitter_seconds: 30,
            retry_initial_seconds: 1,
            retry_max_seconds: 60,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct JwksSettings {
    /// An unknown `kid` refetches the key set at most this often.
    pub min_refetch_interval_seconds: u64,
    /// A key set older than this is refetched (so removed keys stop verifying); the old one is kept if that fails.
    pub max_age_seconds: u64,
}

impl Default for JwksSettings {
    fn default() -> Self {
        JwksSettings { min_refetch_interval_seconds: 30, max_age_seconds: 3600 }
    }
}

fn default_audience() -> String {
    "flowstudio".into()
}
fn default_audience_parameter() -> String {
    "audience".into()
}
fn default_tenant_claim() -> String {
    "tid".into()
}
fn default_timeout() -> u64 {
    10
}

impl PassportConfig {
    /// A configuration for the passport at `url` with every default.
    pub fn new(url: impl Into<String>) -> PassportConfig {
        PassportConfig {
            url: url.into(),
            token_endpoint: None,
            jwks_url: None,
            issuer: None,
            audience: default_audience(),
            auth_method: AuthMethod::default(),
            audience_parameter: default_audience_parameter(),
            scope: None,
            tenant_claim: default_tenant_claim(),
            timeout_seconds: default_timeout(),
            refresh: RefreshSettings::default(),
            jwks: JwksSettings::default(),
        }
    }

    pub fn token_endpoint(&self) -> String {
        self.token_endpoint.clone().unwrap_or_else(|| join(&self.url, DEFAULT_TOKEN_PATH))
    }

    pub fn jwks_url(&self) -> String {
        self.jwks_url.clone().unwrap_or_else(|| join(&self.url, DEFAULT_JWKS_PATH))
    }

    pub fn issuer(&self) -> String {
        self.issuer.clone().unwrap_or_else(|| self.url.clone())
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds)
    }

    /// Every problem at once; field paths are relative to the `passport` section.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check_url(&mut errors, "url", &self.url);
        if let Some(u) = &self.token_endpoint {
            check_url(&mut errors, "token-endpoint", u);
        }
        if let Some(u) = &self.jwks_url {
            check_url(&mut errors, "jwks-url", u);
        }
        if self.issuer.as_deref().is_some_and(|i| i.trim().is_empty()) {
            errors.push(FieldError::new("issuer", "must not be empty"));
        }
        if self.audience.trim().is_empty() {
            errors.push(FieldError::new("audience", "must not be empty"));
        }
        if self.tenant_claim.trim().is_empty() {
            errors.push(FieldError::new("tenant-claim", "must not be empty"));
        }
        if !(1..=300).contains(&self.timeout_seconds) {
            errors.push(FieldError::new("timeout-seconds", "must be between 1 and 300"));
        }
        let r = &self.refresh;
        if !(r.refresh_fraction.is_finite() && (0.0..=0.5).contains(&r.refresh_fraction)) {
            errors.push(FieldError::new("refresh.refresh-fraction", "must be a number from 0 to 0.5"));
        }
        if r.retry_initial_seconds == 0 {
            errors.push(FieldError::new("refresh.retry-initial-seconds", "must be at least 1"));
        }
        if r.retry_max_seconds < r.retry_initial_seconds {
            errors.push(FieldError::new("refresh.retry-max-seconds", "must not be less than `retry-initial-seconds`"));
        }
        if self.jwks.min_refetch_interval_seconds > self.jwks.max_age_seconds {
            errors.push(FieldError::new("jwks.min-refetch-interval-seconds", "must not exceed `max-age-seconds`"));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

fn join(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

/// Credentials and tokens travel only over https, or plain http to loopback (development, tests).
fn check_url(errors: &mut Vec<FieldError>, field: &str, value: &str) {
    match url::Url::parse(value) {
        Err(e) => errors.push(FieldError::new(field, format!("`{value}` is not a URL: {e}"))),
        Ok(u) => {
            let loopback = match u.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if u.scheme() != "https" && !(u.scheme() == "http" && loopback) {
                errors.push(FieldError::new(field, format!("`{value}` must use https (plain http only to loopback)")));
            }
            if !u.username().is_empty() || u.password().is_some() {
                errors.push(FieldError::new(field, "must not carry credentials"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_base_url() {
        let c: PassportConfig = toml::from_str("url = \"https://passport.example.com/\"").expect("parses");
        assert_eq!(c.token_endpoint(), "https://passport.example.com/passport/token");
        assert_eq!(c.jwks_url(), "https://passport.example.com/passport/jwks");
        assert_eq!(c.issuer(), "https://passport.example.com/");
        assert_eq!(c.auth_method, AuthMethod::ClientSecretBasic);
        assert_eq!(c.tenant_claim, "tid");
        assert!(c.validate().is_ok());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = toml::from_str::<PassportConfig>("url = \"https://p\"\ntokenUrl = \"x\"").expect_err("unknown field");
        assert!(err.to_string().contains("tokenUrl"), "{err}");
        let err = toml::from_str::<PassportConfig>("url = \"https://p\"\n[refresh]\nmargin = 1").expect_err("unknown field");
        assert!(err.to_string().contains("margin"), "{err}");
    }

    #[test]
    fn bad_values_name_their_field() {
        let mut c = PassportConfig::new("http://passport.example.com");
        c.jwks_url = Some("not a url".into());
        c.refresh.refresh_fraction = 0.9;
        c.timeout_seconds = 0;
        let fields: Vec<String> = c.validate().expect_err("invalid").into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["url", "jwks-url", "timeout-seconds", "refresh.refresh-fraction"]);
        assert!(PassportConfig::new("http://127.0.0.1:8080").validate().is_ok(), "plain http to loopback is fine");
        let post: PassportConfig = toml::from_str("url = \"https://p\"\nauth-method = \"client_secret_post\"").expect("parses");
        assert_eq!(post.auth_method, AuthMethod::ClientSecretPost);
    }
}

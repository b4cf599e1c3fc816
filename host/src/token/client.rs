//! OAuth 2.0 client credentials against a passport's token endpoint (RFC 6749 §4.4).
//!
//! `client_secret_basic` form-urlencodes the id and the secret *before*
//! base64 (§2.3.1; reqwest's `basic_auth` does not, and a secret like
//! `a+b/c:d%e=` then fails). Redirects are never followed. The response is
//! read leniently: `expires_in` as a number or a string, `token_type`
//! `Bearer` in any case (or absent), and a missing `expires_in` is reported
//! as `None` so the caller can fall back on the token's own `exp`.
//! The `access_token` goes straight into a [`Secret`]; nothing here puts the
//! secret or the token into an error.

use super::config::{AuthMethod, PassportConfig};
use crate::secret::Secret;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::StatusCode;
use std::time::Duration;
use zeroize::Zeroizing;

/// Largest token response read; a passport has no reason to send more.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Longest `error_description` kept in an error message.
const MAX_DESCRIPTION_CHARS: usize = 200;

/// Why a token request failed, classified for the caller's retry decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PassportError {
    /// 400/401 `invalid_client`: the secret is wrong (or was rotated).
    #[error("the passport refused the client credentials (invalid_client){}", describe(description))]
    InvalidClient { description: Option<String> },
    /// Any other OAuth error (`unauthorized_client`, `invalid_scope`, ...): asking again will not help.
    #[error("the passport refused the token request ({code}){}", describe(description))]
    Rejected { code: String, description: Option<String> },
    /// Network trouble, timeout, 429 or 5xx: worth retrying later.
    #[error("the passport is unavailable: {reason}")]
    Transient { reason: String },
    /// An answer that is neither a token nor an OAuth error (wrong URL, redirect, not JSON).
    #[error("the passport's answer is unusable: {reason}")]
    Malformed { reason: String },
}

impl PassportError {
    pub fn is_transient(&self) -> bool {
        matches!(self, PassportError::Transient { .. })
    }
}

fn describe(description: &Option<String>) -> String {
    description.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
}

/// A successful token response.
#[derive(Debug)]
pub struct TokenResponse {
    pub access_token: Secret,
    /// Seconds, as the passport said; `None` when it did not say.
    pub expires_in: Option<u64>,
    pub scope: Option<String>,
}

/// What to ask for.
#[derive(Debug, Clone, Copy)]
pub struct TokenRequest<'a> {
    pub client_id: &'a str,
    pub client_secret: &'a Secret,
    /// Sent in the configured audience parameter.
    pub audience: Option<&'a str>,
    /// Overrides the configured default scope.
    pub scope: Option<&'a str>,
}

#[derive(Debug, Clone)]
pub struct PassportClient {
    http: reqwest::Client,
    endpoint: String,
    auth_method: AuthMethod,
    audience_parameter: String,
    default_scope: Option<String>,
}

impl PassportClient {
    pub fn new(config: &PassportConfig) -> Result<PassportClient, PassportError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout())
            .connect_timeout(config.timeout().min(Duration::from_secs(5)))
            .build()
            .map_err(|e| PassportError::Malformed { reason: format!("http client could not be built: {e}") })?;
        Ok(PassportClient {
            http,
            endpoint: config.token_endpoint(),
            auth_method: config.auth_method,
            audience_parameter: config.audience_parameter.clone(),
            default_scope: config.scope.clone(),
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// One token request; never retried here (the caller decides).
    pub async fn request_token(&self, request: TokenRequest<'_>) -> Result<TokenResponse, PassportError> {
        let secret = request.client_secret.expose();
        let mut body = Zeroizing::new(String::new());
        let mut basic = Zeroizing::new(String::new());
        let mut builder = self.http.post(&self.endpoint).header(ACCEPT, "application/json");
        {
            let mut form = url::form_urlencoded::Serializer::new(&mut *body);
            form.append_pair("grant_type", "client_credentials");
            if let Some(scope) = request.scope.or(self.default_scope.as_deref()) {
                form.append_pair("scope", scope);
            }
            if let Some(audience) = request.audience.filter(|_| !self.audience_parameter.is_empty()) {
                form.append_pair(&self.audience_parameter, audience);
            }
            match self.auth_method {
                AuthMethod::ClientSecretBasic => {
                    let (header, encoded) = basic_credentials(request.client_id, secret)?;
                    builder = builder.header(AUTHORIZATION, header);
                    basic = encoded;
                }
                AuthMethod::ClientSecretPost => {
                    form.append_pair("client_id", request.client_id);
                    form.append_pair("client_secret", secret);
                }
            }
        }
        let sent = builder
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body.as_bytes().to_vec())
            .send()
            .await
            .map_err(|e| PassportError::Transient { reason: transport_reason(&e) })?;
        let status = sent.status();
        let bytes = read_capped(sent).await?;
        let result = interpret(status, &bytes);
        // A hostile or buggy passport might echo the credentials in a description.
        result.map_err(|e| scrub(e, &[secret, basic.as_str()]))
    }
}

/// `Basic base64(form(id) ":" form(secret))`, marked sensitive so it is never logged by
/// the stack; also returns the base64 part, which is as secret as the secret.
fn basic_credentials(client_id: &str, secret: &str) -> Result<(HeaderValue, Zeroizing<String>), PassportError> {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = Zeroizing::new(format!("{}:{}", encode(client_id), Zeroizing::new(encode(secret)).as_str()));
    let encoded = Zeroizing::new(STANDARD.encode(pair.as_bytes()));
    let value = Zeroizing::new(format!("Basic {}", encoded.as_str()));
    let mut header = HeaderValue::from_str(&value)
        .map_err(|_| PassportError::Malformed { reason: "client credentials are not a valid header value".into() })?;
    header.set_sensitive(true);
    Ok((header, encoded))
}

fn transport_reason(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    // The URL is ours (no credentials in it); the error chain names the cause.
    let mut reason = format!("{what} ({e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        reason.push_str(&format!(": {s}"));
        source = s.source();
    }
    reason.push(')');
    reason
}

async fn read_capped(mut response: reqwest::Response) -> Result<Zeroizing<Vec<u8>>, PassportError> {
    let mut out = Zeroizing::new(Vec::new());
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if out.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(PassportError::Malformed { reason: format!("response is larger than {MAX_RESPONSE_BYTES} bytes") });
                }
                out.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(out),
            Err(e) => return Err(PassportError::Transient { reason: format!("response could not be read: {}", transport_reason(&e)) }),
        }
    }
}

#[derive(serde::Deserialize)]
struct SuccessBody {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// Classify a response by status and body.
fn interpret(status: StatusCode, body: &[u8]) -> Result<TokenResponse, PassportError> {
    if status.is_success() {
        return parse_success(body);
    }
    let oauth = serde_json::from_slice::<ErrorBody>(body).ok();
    let description = oauth.as_ref().and_then(|o| o.error_description.as_deref()).map(shorten);
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        let detail = oauth.map(|o| format!(" ({})", shorten(&o.error))).unwrap_or_default();
        return Err(PassportError::Transient { reason: format!("HTTP {}{detail}", status.as_u16()) });
    }
    if status.is_redirection() {
        return Err(PassportError::Malformed { reason: format!("HTTP {} redirect (redirects are not followed)", status.as_u16()) });
    }
    match oauth {
        Some(o) if o.error == "invalid_client" && matches!(status.as_u16(), 400 | 401) => {
            Err(PassportError::InvalidClient { description })
        }
        // Some servers use these codes on a 4xx for a passing outage.
        Some(o) if o.error == "temporarily_unavailable" || o.error == "server_error" => {
            Err(PassportError::Transient { reason: format!("HTTP {} ({})", status.as_u16(), o.error) })
        }
        Some(o) => Err(PassportError::Rejected { code: shorten(&o.error), description }),
        None => Err(PassportError::Malformed { reason: format!("HTTP {} without an OAuth error body", status.as_u16()) }),
    }
}

fn parse_success(body: &[u8]) -> Result<TokenResponse, PassportError> {
    let malformed = |reason: String| PassportError::Malformed { reason };
    let parsed: SuccessBody = serde_json::from_slice(body).map_err(|e| malformed(format!("token response is not JSON: {e}")))?;
    let token = parsed.access_token.filter(|t| !t.is_empty()).ok_or_else(|| malformed("token response has no `access_token`".into()))?;
    let access_token = Secret::new(token);
    if let Some(kind) = parsed.token_type.as_deref() {
        if !kind.eq_ignore_ascii_case("bearer") {
            return Err(malformed(format!("token type `{}` is not supported (only Bearer)", shorten(kind))));
        }
    }
    let expires_in = match &parsed.expires_in {
        None | Some(serde_json::Value::Null) => None,
        Some(value) => Some(parse_expires_in(value).ok_or_else(|| malformed(format!("`expires_in` {value} is not a positive number of seconds")))?),
    };
    Ok(TokenResponse { access_token, expires_in, scope: parsed.scope })
}

/// `3600`, `3600.0` or `"3600"`; must be positive.
fn parse_expires_in(value: &serde_json::Value) -> Option<u64> {
    let seconds = match value {
        serde_json::Value::Number(n) => n.as_f64()?,
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    (seconds.is_finite() && seconds >= 1.0).then_some(seconds as u64)
}

fn shorten(text: &str) -> String {
    let mut out: String = text.chars().take(MAX_DESCRIPTION_CHARS).filter(|c| !c.is_control()).collect();
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        out.push('…');
    }
    out
}

fn scrub(error: PassportError, credentials: &[&str]) -> PassportError {
    let clean = |mut s: String| {
        for c in credentials.iter().filter(|c| c.len() >= 4) {
            if s.contains(c) {
                s = s.replace(c, "[redacted]");
            }
        }
        s
    };
    match error {
        PassportError::InvalidClient { description } => PassportError::InvalidClient { description: description.map(clean) },
        PassportError::Rejected { code, description } => PassportError::Rejected { code: clean(code), description: description.map(clean) },
        PassportError::Transient { reason } => PassportError::Transient { reason: clean(reason) },
        PassportError::Malformed { reason } => PassportError::Malformed { reason: clean(reason) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(status: u16, body: serde_json::Value) -> Result<TokenResponse, PassportError> {
        interpret(StatusCode::from_u16(status).expect("status"), body.to_string().as_bytes())
    }

    #[test]
    fn basic_credentials_are_form_encoded_before_base64() {
        let (header, _) = basic_credentials("mi client", "a+b/c:d%e=").expect("header");
        assert!(header.is_sensitive());
        let encoded = header.to_str().expect("ascii").strip_prefix("Basic ").expect("basic").to_string();
        let decoded = String::from_utf8(STANDARD.decode(encoded).expect("base64")).expect("utf8");
        assert_eq!(decoded, "mi+client:a%2Bb%2Fc%3Ad%25e%3D");
    }

    #[test]
    fn expires_in_is_read_leniently() {
        let ok = answer(200, json!({"access_token": "t", "token_type": "bearer", "expires_in": "3600"})).expect("string");
        assert_eq!(ok.expires_in, Some(3600));
        let ok = answer(200, json!({"access_token": "t", "token_type": "BEARER", "expires_in": 59.9})).expect("float");
        assert_eq!(ok.expires_in, Some(59));
        let ok = answer(200, json!({"access_token": "t"})).expect("no type, no expiry");
        assert_eq!(ok.expires_in, None);
        assert!(matches!(answer(200, json!({"access_token": "t", "expires_in": "soon"})), Err(PassportError::Malformed { .. })));
        assert!(matches!(answer(200, json!({"access_token": "t", "expires_in": 0})), Err(PassportError::Malformed { .. })));
        assert!(matches!(answer(200, json!({"access_token": "t", "token_type": "mac"})), Err(PassportError::Malformed { .. })));
        assert!(matches!(answer(200, json!({"token_type": "Bearer"})), Err(PassportError::Malformed { .. })));
    }

    #[test]
    fn errors_are_classified() {
        assert!(matches!(answer(401, json!({"error": "invalid_client"})), Err(PassportError::InvalidClient { .. })));
        assert!(matches!(answer(400, json!({"error": "invalid_client"})), Err(PassportError::InvalidClient { .. })));
        let rejected = answer(400, json!({"error": "invalid_scope", "error_description": "no such scope"}));
        assert_eq!(rejected.expect_err("rejected").to_string(), "the passport refused the token request (invalid_scope): no such scope");
        assert!(matches!(answer(400, json!({"error": "unauthorized_client"})), Err(PassportError::Rejected { .. })));
        assert!(answer(503, json!({"error": "invalid_client"})).expect_err("5xx").is_transient());
        assert!(answer(429, json!({})).expect_err("429").is_transient());
        let html = interpret(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>").expect_err("unparseable 5xx");
        assert!(html.is_transient());
        assert!(matches!(interpret(StatusCode::NOT_FOUND, b"not here"), Err(PassportError::Malformed { .. })));
        assert!(matches!(interpret(StatusCode::FOUND, b""), Err(PassportError::Malformed { .. })));
    }

    #[test]
    fn an_echoed_secret_is_scrubbed() {
        let e = scrub(PassportError::InvalidClient { description: Some("secret a+b/c:d%e= is wrong".into()) }, &["a+b/c:d%e="]);
        assert!(!e.to_string().contains("a+b/c"), "{e}");
    }
}

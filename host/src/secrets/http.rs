//! The HTTP habits every secret store client shares: no redirects (a store
//! that redirects never gets the credential sent on), timeouts, a bounded
//! response body that is zeroized after use, and errors that name the store
//! but never carry a value.

use super::SecretError;
use std::time::Duration;
use zeroize::Zeroizing;

/// Store answers larger than this are refused: a client secret is small.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A client for one provider: never follows redirects, always times out.
pub(crate) fn client(provider: &str, timeout: Duration) -> Result<reqwest::Client, SecretError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .build()
        .map_err(|e| SecretError::NotConfigured { provider: provider.to_string(), reason: format!("http client: {e}") })
}

/// A store's answer, read whole.
pub(crate) struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    /// Zeroized on drop: it may hold the secret.
    pub body: Zeroizing<Vec<u8>>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn is_redirect(&self) -> bool {
        (300..400).contains(&self.status)
    }

    /// The body as JSON, when it is JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Send a request and read its answer; transport failures are `Unavailable`.
pub(crate) async fn send(request: reqwest::RequestBuilder, what: &str) -> Result<Answer, SecretError> {
    let unavailable = |reason: String| SecretError::Unavailable { reference: what.to_string(), reason };
    // `without_url`: the URL is named by `what` already, and a query could carry more than we want in an error.
    let response = request.send().await.map_err(|e| unavailable(describe(&e.without_url())))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut body = Zeroizing::new(Vec::new());
    let mut response = response;
    while let Some(chunk) = response.chunk().await.map_err(|e| unavailable(describe(&e.without_url())))? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(SecretError::Invalid { reference: what.to_string(), reason: format!("the store's answer is larger than {MAX_BODY_BYTES} bytes") });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer { status, headers, body })
}

/// The error for a 3xx from a store: it is not followed, so the credential
/// stays here; the message names where the store wanted to send us.
pub(crate) fn redirect_error(what: &str, request_url: &url::Url, answer: &Answer) -> SecretError {
    let target = answer
        .header("location")
        .and_then(|location| request_url.join(location).ok())
        .and_then(|url| url.host_str().map(|host| match url.port_or_known_default() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        }))
        .unwrap_or_else(|| "an unnamed location".to_string());
    SecretError::Invalid {
        reference: what.to_string(),
        reason: format!("the store answered {} redirecting to `{target}`; redirects are not followed with credentials", answer.status),
    }
}

/// Whether a status means "try again later".
pub(crate) fn is_transient_status(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

/// A transport error in a few words, with its cause (reqwest's own message is just "error sending request").
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut reason = kind.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    reason
}

/// A store's own message, shortened: enough to act on, never a whole body.
pub(crate) fn short(message: &str) -> String {
    let message = message.trim();
    match message.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message.to_string(),
    }
}

/// `url` with its path segments appended, each percent-encoded.
pub(crate) fn join_segments(base: &url::Url, segments: &[&str]) -> Result<url::Url, String> {
    let mut url = base.clone();
    {
        let mut path = url.path_segments_mut().map_err(|()| format!("`{base}` cannot have a path"))?;
        path.pop_if_empty();
        for segment in segments {
            path.push(segment);
        }
    }
    Ok(url)
}

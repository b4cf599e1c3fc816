//! A small blocking HTTP client over `wasi:http/outgoing-handler`.
//!
//! Every request goes through the host's egress pipeline. Credentials are the
//! host's business: on a `managed-identity` grant the host attaches the token
//! itself and refuses an `Authorization` header set by the node.
//!
//! ```no_run
//! let resp = flowstudio_sdk::http::Request::get("https://api.example.com/employees")
//!     .header("accept", "application/json")
//!     .send()?;
//! let employees: serde_json::Value = resp.json()?;
//! # Ok::<(), flowstudio_sdk::http::HttpError>(())
//! ```

use crate::bindings::wasi::http::outgoing_handler;
use crate::bindings::wasi::http::types::{
    ErrorCode, Fields, HeaderError, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
};
use crate::bindings::wasi::io::streams::StreamError;

/// Why a request failed. A host policy decision is told apart from the network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The host's egress policy refused the request (no grant, forbidden address, budget).
    #[error("request denied by host policy: {0}")]
    Denied(String),
    /// The host does not let the node set this header (e.g. `authorization` on a managed-identity grant).
    #[error("header `{0}` may not be set by a node")]
    ForbiddenHeader(String),
    /// Connection, TLS, timeout or protocol trouble.
    #[error("network error: {0}")]
    Network(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("invalid json: {0}")]
    Json(String),
}

/// An outgoing request under construction.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A fully read response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| HttpError::Json(e.to_string()))
    }
}

impl Request {
    pub fn new(method: &str, url: &str) -> Self {
        Request { method: method.to_ascii_uppercase(), url: url.to_string(), headers: Vec::new(), body: Vec::new() }
    }

    pub fn get(url: &str) -> Self {
        Self::new("GET", url)
    }

    pub fn post(url: &str) -> Self {
        Self::new("POST", url)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn json<T: serde::Serialize>(self, value: &T) -> Result<Self, HttpError> {
        let body = serde_json::to_vec(value).map_err(|e| HttpError::Json(e.to_string()))?;
        Ok(self.header("content-type", "application/json").body(body))
    }

    /// Send the request and read the whole response.
    pub fn send(self) -> Result<Response, HttpError> {
        let target = Target::parse(&self.url)?;
        let fields = Fields::new();
        for (name, value) in &self.headers {
            fields.append(name, value.as_bytes()).map_err(|e| match e {
                HeaderError::Forbidden | HeaderError::Immutable => HttpError::ForbiddenHeader(name.clone()),
                HeaderError::InvalidSyntax => HttpError::InvalidRequest(format!("header `{name}` is not valid")),
            })?;
        }
        let request = OutgoingRequest::new(fields);
        let invalid = |what: &str| HttpError::InvalidRequest(format!("{what} of `{}` rejected", self.url));
        request.set_method(&method(&self.method)).map_err(|_| invalid("method"))?;
        request.set_scheme(Some(&target.scheme)).map_err(|_| invalid("scheme"))?;
        request.set_authority(Some(&target.authority)).map_err(|_| invalid("authority"))?;
        request.set_path_with_query(Some(&target.path)).map_err(|_| invalid("path"))?;
        let body = request.body().map_err(|_| invalid("body"))?;

        let pending = outgoing_handler::handle(request, None).map_err(classify)?;
        write_body(body, &self.body)?;

        pending.subscribe().block();
        let response = match pending.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(code))) => return Err(classify(code)),
            Some(Err(())) | None => return Err(HttpError::Network("response was already taken".into())),
        };
        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
            .collect();
        let incoming = response.consume().map_err(|_| HttpError::Network("response body unavailable".into()))?;
        let body = read_body(incoming)?;
        Ok(Response { status, headers, body })
    }
}

struct Target {
    scheme: Scheme,
    authority: String,
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, HttpError> {
        let bad = || HttpError::InvalidRequest(format!("url `{url}` must be http:// or https:// with a host"));
        let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return Err(bad()),
        };
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.is_empty() {
            return Err(bad());
        }
        let path = if path.is_empty() {
            "/".to_string()
        } else if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        Ok(Target { scheme, authority: authority.to_string(), path })
    }
}

fn method(name: &str) -> Method {
    match name {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "OPTIONS" => Method::Options,
        other => Method::Other(other.to_string()),
    }
}

fn classify(code: ErrorCode) -> HttpError {
    match code {
        ErrorCode::HttpRequestDenied => HttpError::Denied("destination is not granted to this node".into()),
        ErrorCode::DestinationIpProhibited => HttpError::Denied("destination address is prohibited".into()),
        ErrorCode::ConnectionLimitReached => HttpError::Denied("request budget of this run is exhausted".into()),
        ErrorCode::HttpResponseBodySize(_) => HttpError::Denied("response byte budget of this run is exhausted".into()),
        other => HttpError::Network(format!("{other:?}")),
    }
}

fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), HttpError> {
    let stream = body.write().map_err(|_| HttpError::Network("request body unavailable".into()))?;
    // `blocking-write-and-flush` accepts at most 4096 bytes per call.
    for chunk in bytes.chunks(4096) {
        stream.blocking_write_and_flush(chunk).map_err(|e| HttpError::Network(format!("writing request body: {e:?}")))?;
    }
    drop(stream);
    OutgoingBody::finish(body, None).map_err(classify)
}

fn read_body(incoming: IncomingBody) -> Result<Vec<u8>, HttpError> {
    let stream = incoming.stream().map_err(|_| HttpError::Network("response body stream unavailable".into()))?;
    let mut out = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => out.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(HttpError::Network(format!("reading response body: {}", e.to_debug_string())))
            }
        }
    }
    drop(stream);
    let _trailers = IncomingBody::finish(incoming);
    Ok(out)
}

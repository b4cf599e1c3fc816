//! The wasmtime-wasi-http hook: every `outgoing-handler.handle` of a node lands here.

use super::grant::{default_port, parse_ip, GrantAuth};
use super::{address, send, EgressPolicy};
use crate::audit::{AuditActor, AuditEvent, AuditSink, EgressDecision, EgressEvent};
use crate::token::{AccessToken, TokenError, TokenSource};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, AUTHORIZATION};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// Egress state shared by all nodes of one execution: policy, identity, budgets.
pub struct RunEgress {
    policy: EgressPolicy,
    tokens: Arc<dyn TokenSource>,
    audit: Arc<dyn AuditSink>,
    execution_id: String,
    requests: AtomicU32,
    response_bytes: AtomicU64,
    concurrency: tokio::sync::Semaphore,
}

impl RunEgress {
    pub fn new(
        policy: EgressPolicy,
        tokens: Arc<dyn TokenSource>,
        audit: Arc<dyn AuditSink>,
        execution_id: impl Into<String>,
    ) -> Arc<RunEgress> {
        let concurrency = tokio::sync::Semaphore::new(policy.max_concurrent_requests.max(1));
        Arc::new(RunEgress {
            policy,
            tokens,
            audit,
            execution_id: execution_id.into(),
            requests: AtomicU32::new(0),
            response_bytes: AtomicU64::new(0),
            concurrency,
        })
    }

    pub fn tokens(&self) -> &Arc<dyn TokenSource> {
        &self.tokens
    }

    /// Requests made so far in this execution (allowed or not).
    pub fn requests_made(&self) -> u32 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// The hooks of one node run (one store).
pub struct EgressHooks {
    run: Arc<RunEgress>,
    node_id: String,
    /// Why the node's last call that needed a token got none. The node only
    /// sees a network error; the run reports this instead (and does not retry a refusal).
    token_failure: Arc<Mutex<Option<TokenError>>>,
}

impl EgressHooks {
    pub fn new(run: Arc<RunEgress>, node_id: impl Into<String>) -> Self {
        EgressHooks { run, node_id: node_id.into(), token_failure: Arc::default() }
    }

    /// Why a call of this node got no token, if one did not.
    pub fn token_failure(&self) -> Option<TokenError> {
        self.token_failure.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

type ResponseFuture = Box<
    dyn Future<Output = Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), HttpError>> + Send>), HttpError>>
        + Send,
>;

impl WasiHttpHooks for EgressHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_errors: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> ResponseFuture {
        let call = Call::new(self.run.clone(), self.node_id.clone(), &request, self.token_failure.clone());
        Box::new(async move {
            let outcome = call.perform(request, options).await;
            call.audit(&outcome);
            let response = outcome.result?;
            let done: Box<dyn Future<Output = Result<(), HttpError>> + Send> = Box::new(async { Ok(()) });
            Ok((response, done))
        })
    }
}

/// One outbound call, from decision to audit.
struct Call {
    run: Arc<RunEgress>,
    node_id: String,
    token_failure: Arc<Mutex<Option<TokenError>>>,
    method: String,
    scheme: String,
    host: String,
    port: u16,
    started: Instant,
}

struct Outcome {
    result: Result<http::Response<WasiBody>, HttpError>,
    decision: EgressDecision,
    status: Option<u16>,
    bytes: u64,
    token_attached: bool,
}

impl Outcome {
    fn denied(reason: impl Into<String>, error: HttpError) -> Outcome {
        Outcome { result: Err(error), decision: EgressDecision::Denied(reason.into()), status: None, bytes: 0, token_attached: false }
    }

    fn failed(reason: impl Into<String>, error: HttpError, token_attached: bool) -> Outcome {
        Outcome { result: Err(error), decision: EgressDecision::Failed(reason.into()), status: None, bytes: 0, token_attached }
    }
}

impl Call {
    fn new(run: Arc<RunEgress>, node_id: String, request: &http::Request<WasiBody>, token_failure: Arc<Mutex<Option<TokenError>>>) -> Call {
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let host = uri.host().unwrap_or_default().to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or_else(|| default_port(&scheme));
        Call { run, node_id, token_failure, method: request.method().to_string(), scheme, host, port, started: Instant::now() }
    }

    fn destination(&self) -> String {
        format!("{}://{}:{}", self.scheme, self.host, self.port)
    }

    async fn perform(&self, request: http::Request<WasiBody>, options: Option<RequestOptions>) -> Outcome {
        let policy = &self.run.policy;
        if self.run.requests.fetch_add(1, Ordering::Relaxed) >= policy.max_requests {
            let reason = format!("request budget of {} per run is exhausted", policy.max_requests);
            return Outcome::denied(reason, HttpError::ConnectionLimitReached);
        }
        let Some(grant) = policy.grant_for(&self.scheme, &self.host, self.port) else {
            return Outcome::denied(format!("no grant for {}", self.destination()), HttpError::HttpRequestDenied);
        };
        let auth = grant.auth.clone();
        let wants_token = matches!(auth, GrantAuth::ManagedIdentity { .. });
        if wants_token && request.headers().contains_key(AUTHORIZATION) {
            let reason = "a node may not set `authorization` on a managed-identity grant";
            return Outcome::denied(reason, HttpError::HttpRequestDenied);
        }
        let addr = match self.checked_address(grant).await {
            Ok(addr) => addr,
            Err(outcome) => return outcome,
        };
        if wants_token && self.scheme != "https" && !(addr.ip().is_loopback() && policy.allow_loopback_plain_http_tokens) {
            let reason = "a managed-identity token is never sent over plain http";
            return Outcome::denied(reason, HttpError::HttpRequestDenied);
        }
        let Ok(_permit) = self.run.concurrency.acquire().await else {
            return Outcome::failed("request limiter closed", HttpError::ConnectionLimitReached, false);
        };
        let (parts, body) = request.into_parts();
        let body = match collect_body(body, policy.max_request_body_bytes).await {
            Ok(body) => body,
            Err(e) => return Outcome::failed("request body too large or unreadable", e, false),
        };
        let timeout = clamp_timeout(policy.request_timeout, options);
        let tls_name = (self.scheme == "https").then(|| self.host.trim_start_matches('[').trim_end_matches(']').to_string());
        let audience = match &auth {
            GrantAuth::ManagedIdentity { audience } => Some(audience.clone()),
            GrantAuth::None => None,
        };

        // At most two attempts: the second only after a 401 on an attached token.
        let mut rejected: Option<AccessToken> = None;
        loop {
            let token = match &audience {
                Some(aud) => match self.run.tokens.token(aud.as_deref()).await {
                    Ok(t) => Some(t),
                    Err(e) => {
                        *self.token_failure.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(e.clone());
                        return Outcome::failed(e.to_string(), HttpError::InternalError(Some(e.to_string())), false);
                    }
                },
                None => None,
            };
            let outgoing = match build_request(&parts, body.clone(), token.as_ref()) {
                Ok(r) => r,
                Err(e) => return Outcome::failed("request could not be rebuilt", e, false),
            };
            let remaining = policy.max_response_bytes.saturating_sub(self.run.response_bytes.load(Ordering::Relaxed));
            let sent = send::send(addr, tls_name.as_deref(), outgoing, timeout, remaining).await;
            let response = match sent {
                Ok(r) => r,
                Err(HttpError::HttpResponseBodySize(limit)) => {
                    let reason = format!("response byte budget of {} per run is exhausted", policy.max_response_bytes);
                    return Outcome { token_attached: token.is_some(), ..Outcome::denied(reason, HttpError::HttpResponseBodySize(limit)) };
                }
                Err(e) => return Outcome::failed(format!("{e}"), e, token.is_some()),
            };
            if response.status == hyper::StatusCode::UNAUTHORIZED && rejected.is_none() {
                if let Some(t) = token {
                    // The destination no longer accepts this token: drop it, mint anew, replay once.
                    self.run.tokens.invalidate(&t);
                    rejected = Some(t);
                    continue;
                }
            }
            let bytes = response.body.len() as u64;
            self.run.response_bytes.fetch_add(bytes, Ordering::Relaxed);
            let status = response.status.as_u16();
            return Outcome {
                result: Ok(to_wasi_response(response)),
                decision: EgressDecision::Allowed,
                status: Some(status),
                bytes,
                token_attached: token.is_some(),
            };
        }
    }

    /// Resolve the host and refuse forbidden addresses unless the grant names them literally.
    async fn checked_address(&self, grant: &super::Grant) -> Result<SocketAddr, Outcome> {
        let addrs: Vec<SocketAddr> = match parse_ip(&self.host) {
            Some(ip) => vec![SocketAddr::new(ip, self.port)],
            None => match tokio::net::lookup_host((self.host.as_str(), self.port)).await {
                Ok(found) => found.collect(),
                Err(_) => return Err(Outcome::failed(format!("`{}` does not resolve", self.host), HttpError::DestinationNotFound, false)),
            },
        };
        // One refused address refuses the name: a resolver must not pick for us.
        for addr in &addrs {
            let ip: IpAddr = addr.ip();
            if let Some(why) = address::refusal(ip) {
                if !grant.names_address(ip) {
                    let reason = format!("`{}` resolves to {ip}: {why}", self.host);
                    return Err(Outcome::denied(reason, HttpError::DestinationIpProhibited));
                }
            }
        }
        addrs.first().copied().ok_or_else(|| {
            Outcome::failed(format!("`{}` has no addresses", self.host), HttpError::DestinationNotFound, false)
        })
    }

    fn audit(&self, outcome: &Outcome) {
        let actor = AuditActor::from_id_info(&self.run.tokens.id_info());
        let event = EgressEvent {
            execution_id: self.run.execution_id.clone(),
            node_id: self.node_id.clone(),
            actor,
            method: self.method.clone(),
            destination: self.destination(),
            status: outcome.status,
            response_bytes: outcome.bytes,
            latency_ms: self.started.elapsed().as_millis() as u64,
            decision: outcome.decision.clone(),
            token_attached: outcome.token_attached,
        };
        tracing::debug!(target: "flowstudio::egress", destination = %event.destination, decision = ?event.decision, status = ?event.status);
        self.run.audit.record(AuditEvent::Egress(event));
    }
}

async fn collect_body(mut body: WasiBody, limit: usize) -> Result<Bytes, HttpError> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            if out.len() + data.len() > limit {
                return Err(HttpError::HttpRequestBodySize(Some(limit as u64)));
            }
            out.extend_from_slice(data);
        }
    }
    Ok(Bytes::from(out))
}

fn clamp_timeout(ceiling: std::time::Duration, options: Option<RequestOptions>) -> std::time::Duration {
    let asked = options.into_iter().flat_map(|o| [o.connect_timeout, o.first_byte_timeout]).flatten();
    asked.fold(ceiling, std::cmp::min)
}

fn build_request(
    parts: &http::request::Parts,
    body: Bytes,
    token: Option<&AccessToken>,
) -> Result<hyper::Request<Full<Bytes>>, HttpError> {
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut builder = hyper::Request::builder().method(parts.method.clone()).uri(path);
    if let Some(headers) = builder.headers_mut() {
        *headers = parts.headers.clone();
        if let Some(t) = token {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", t.token.expose()))
                .map_err(|_| HttpError::InternalError(Some("token is not a valid header value".into())))?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
    }
    builder.body(Full::new(body)).map_err(|_| HttpError::HttpRequestUriInvalid)
}

fn to_wasi_response(response: send::Buffered) -> http::Response<WasiBody> {
    let mut out = http::Response::new(Full::new(response.body).map_err(|never| match never {}).boxed_unsync());
    *out.status_mut() = response.status;
    *out.headers_mut() = response.headers;
    out
}

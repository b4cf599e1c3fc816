//! The main job's payroll service: `GET /employees` answers only to a bearer
//! JWT that verifies against the passport's JWKS (signature with the key's
//! pinned algorithm, `iss`, `aud`, `exp`); anything else gets 401
//! `invalid_token`. `GET /seen` reports the verified callers, so a script or
//! test can check the service really saw a verified token.
//!
//! A Rust example rather than a Python script: the passport signs with
//! Ed25519, which Python's standard library cannot verify.
//!
//! ```text
//! payroll_service --jwks URL --issuer ISS --audience AUD [--port-file FILE]
//! ```
//! It prints `{"listening": "http://127.0.0.1:PORT"}` on stdout (and writes the
//! port to FILE) once it accepts connections.

use anyhow::Context as _;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use flowstudio_host::passport::JwtVerifier;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

struct Service {
    jwks_url: String,
    issuer: String,
    audience: String,
    /// Fetched on first use (the passport may start after us) and on an unknown key.
    verifier: tokio::sync::Mutex<Option<JwtVerifier>>,
    seen: Mutex<Vec<Value>>,
    refused: Mutex<u64>,
}

impl Service {
    async fn verifier(&self, refresh: bool) -> anyhow::Result<tokio::sync::MutexGuard<'_, Option<JwtVerifier>>> {
        let mut slot = self.verifier.lock().await;
        if slot.is_none() || refresh {
            let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
            let jwks: Value = client.get(&self.jwks_url).send().await?.error_for_status()?.json().await?;
            *slot = Some(JwtVerifier::new(&self.issuer, &self.audience, &jwks)?);
        }
        Ok(slot)
    }

    async fn verify(&self, token: &str) -> Result<Value, String> {
        for refresh in [false, true] {
            let slot = self.verifier(refresh).await.map_err(|e| format!("key set unavailable: {e:#}"))?;
            let Some(verifier) = slot.as_ref() else { continue };
            match verifier.verify::<Value>(token) {
                Ok(claims) => return Ok(claims),
                Err(e) if !refresh && e.to_string().contains("does not hold") => continue,
                Err(e) => return Err(e.to_string()),
            }
        }
        Err("no usable key".into())
    }
}

fn unauthorized(reason: &str) -> Response {
    eprintln!("payroll service: 401 ({reason})");
    let mut response = (StatusCode::UNAUTHORIZED, Json(json!({ "error": "invalid_token" }))).into_response();
    if let Ok(value) = "Bearer error=\"invalid_token\"".parse() {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

async fn employees(State(service): State<Arc<Service>>, headers: HeaderMap) -> Response {
    let token = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = token else {
        *service.refused.lock().expect("refused") += 1;
        return unauthorized("no bearer token");
    };
    let claims = match service.verify(token).await {
        Ok(claims) => claims,
        Err(reason) => {
            *service.refused.lock().expect("refused") += 1;
            return unauthorized(&reason);
        }
    };
    let caller = json!({ "sub": claims["sub"], "clientId": claims["client_id"], "managedIdentity": claims["mi"], "roles": claims["roles"] });
    eprintln!("payroll service: verified token of {caller}");
    service.seen.lock().expect("seen").push(caller);
    Json(json!([
        { "id": "e-1", "monthlySalaryCents": 512_000 },
        { "id": "e-2", "monthlySalaryCents": 431_050 },
        { "id": "e-3", "monthlySalaryCents": 389_990 },
    ]))
    .into_response()
}

async fn seen(State(service): State<Arc<Service>>) -> Json<Value> {
    let verified = service.seen.lock().expect("seen").clone();
    let refused = *service.refused.lock().expect("refused");
    Json(json!({ "verified": verified, "refused": refused }))
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let need = |name: &str| flag(&args, name).with_context(|| format!("missing {name}; usage: payroll_service --jwks URL --issuer ISS --audience AUD [--port-file FILE]"));
    let service = Arc::new(Service {
        jwks_url: need("--jwks")?,
        issuer: need("--issuer")?,
        audience: need("--audience")?,
        verifier: tokio::sync::Mutex::new(None),
        seen: Mutex::new(Vec::new()),
        refused: Mutex::new(0),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    if let Some(file) = flag(&args, "--port-file") {
        std::fs::write(&file, port.to_string()).with_context(|| format!("cannot write {file}"))?;
    }
    println!("{}", json!({ "listening": format!("http://127.0.0.1:{port}") }));
    let app = Router::new().route("/employees", get(employees)).route("/seen", get(seen)).with_state(service);
    axum::serve(listener, app).await?;
    Ok(())
}

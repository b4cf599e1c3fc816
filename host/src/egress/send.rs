//! Sending one buffered request to an already checked socket address.
//!
//! We do not use wasmtime-wasi-http's default sender: it resolves names
//! itself, so the address we checked would not be the one it connects to.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::net::TcpStream;
use wasmtime_wasi_http::Error as HttpError;

pub struct Buffered {
    pub status: hyper::StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

/// Send `request` (origin-form URI, `Host` header set) to `addr`, reading at most `max_body` bytes.
pub async fn send(
    addr: SocketAddr,
    tls_name: Option<&str>,
    request: Request<Full<Bytes>>,
    timeout: Duration,
    max_body: u64,
) -> Result<Buffered, HttpError> {
    let work = async {
        let tcp = TcpStream::connect(addr).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::ConnectionRefused => HttpError::ConnectionRefused,
            _ => HttpError::Connect(e),
        })?;
        match tls_name {
            Some(name) => {
                let server_name = rustls::pki_types::ServerName::try_from(name.to_string())
                    .map_err(|_| HttpError::TlsCertificateError)?;
                let tls = tokio_rustls::TlsConnector::from(tls_config()?)
                    .connect(server_name, tcp)
                    .await
                    .map_err(HttpError::Tls)?;
                exchange(hyper_util::rt::TokioIo::new(tls), request, max_body).await
            }
            None => exchange(hyper_util::rt::TokioIo::new(tcp), request, max_body).await,
        }
    };
    tokio::time::timeout(timeout, work).await.map_err(|_| HttpError::ConnectionReadTimeout)?
}

async fn exchange<IO>(io: IO, request: Request<Full<Bytes>>, max_body: u64) -> Result<Buffered, HttpError>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.map_err(HttpError::Hyper)?;
    let driver = tokio::spawn(conn);
    let response = sender.send_request(request).await.map_err(HttpError::Hyper)?;
    let (parts, mut body) = response.into_parts();
    let mut collected = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(HttpError::Hyper)?;
        if let Some(data) = frame.data_ref() {
            if (collected.len() + data.len()) as u64 > max_body {
                driver.abort();
                return Err(HttpError::HttpResponseBodySize(Some(max_body)));
            }
            collected.extend_from_slice(data);
        }
    }
    driver.abort();
    Ok(Buffered { status: parts.status, headers: parts.headers, body: Bytes::from(collected) })
}

fn tls_config() -> Result<Arc<rustls::ClientConfig>, HttpError> {
    static CONFIG: OnceLock<Option<Arc<rustls::ClientConfig>>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
            // An explicit provider: the dependency graph may enable more than one.
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .ok()
                .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
        })
        .clone()
        .ok_or(HttpError::ConfigurationError)
}

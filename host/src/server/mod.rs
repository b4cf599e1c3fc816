//! `flowstudio serve`: the assembled host ([`App`]) with its scheduler, the
//! REST admin API, health/metrics and the embedded passport's token and JWKS
//! endpoints, all on one listener.
//!
//! Embedded defaults (no config file): SQLite `state.db` in the data dir, the
//! embedded passport with its key in the data dir, the `file` secrets provider
//! rooted at `<data dir>/secrets`, and a bootstrap admin client
//! ([`bootstrap`]). A config file swaps in the platform's passport for the
//! identities' tokens and real secret stores.
//!
//! [`RunningHost::shutdown`] is the graceful stop: readiness turns to draining
//! and the API refuses schedule changes (503), the scheduler stops firing and
//! gives running executions the grace period, then checkpoints the rest as
//! interrupted (the next start resumes them); the audit log is flushed last.

pub mod bootstrap;

use crate::api::ApiState;
use crate::app::App;
use crate::clock::SystemClock;
use crate::config::Config;
use crate::scheduler::{SchedulerConfig, ShutdownReport};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("data dir `{path}`: {reason}")]
    DataDir { path: String, reason: String },
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },
    #[error("{what} could not start: {reason}")]
    Start { what: &'static str, reason: String },
}

fn start_error(what: &'static str) -> impl Fn(&dyn std::fmt::Display) -> ServeError {
    move |e| ServeError::Start { what, reason: e.to_string() }
}

/// What to serve and where.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub data_dir: PathBuf,
    pub config: Config,
    /// Overrides `[server] listen`.
    pub listen: Option<SocketAddr>,
}

/// A started host. Dropping it stops the HTTP server and the scheduler at
/// once; call [`RunningHost::shutdown`] for the graceful stop.
pub struct RunningHost {
    pub addr: SocketAddr,
    pub api: Arc<ApiState>,
    pub app: Arc<App>,
    http: tokio::task::JoinHandle<()>,
    stop_http: tokio::sync::watch::Sender<bool>,
    grace: Duration,
}

/// How this host's own clients reach it (a wildcard listen address is not callable).
pub fn local_url(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => format!("http://127.0.0.1:{}", a.port()),
        SocketAddr::V6(a) if a.ip().is_unspecified() => format!("http://[::1]:{}", a.port()),
        SocketAddr::V4(a) => format!("http://{a}"),
        SocketAddr::V6(a) => format!("http://[{}]:{}", a.ip(), a.port()),
    }
}

/// Create a directory (and its parents) readable by its owner only.
pub fn private_dir(path: &Path) -> Result<(), ServeError> {
    use std::os::unix::fs::DirBuilderExt as _;
    let fail = |e: std::io::Error| ServeError::DataDir { path: path.display().to_string(), reason: e.to_string() };
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path).map_err(fail)
}

pub async fn start(options: ServeOptions) -> Result<RunningHost, ServeError> {
    let ServeOptions { data_dir, config, listen } = options;
    private_dir(&data_dir)?;
    if let Some(file) = &config.secrets(&data_dir).file {
        private_dir(&file.root)?;
    }
    let grace = Duration::from_secs(config.server.shutdown_grace_seconds);
    let addr = listen.map_or_else(|| config.server.listen.clone(), |a| a.to_string());
    // Bind before building anything, so a taken port fails fast and clearly.
    let listener = tokio::net::TcpListener::bind(&addr).await.map_err(|e| ServeError::Listen { addr: addr.clone(), reason: e.to_string() })?;
    let addr = listener.local_addr().map_err(|e| ServeError::Listen { addr: addr.clone(), reason: e.to_string() })?;

    let app = Arc::new(App::open(config, &data_dir, Arc::new(SystemClock)).await.map_err(|e| start_error("the host")(&e))?);
    let (dir, registry, role) = (data_dir.clone(), app.identities.clone(), app.config.server.admin_role.clone());
    let created = tokio::task::spawn_blocking(move || bootstrap::ensure_admin_client(&dir, &registry, &role))
        .await
        .map_err(|e| start_error("the bootstrap admin client")(&e))?
        .map_err(|e| start_error("the bootstrap admin client")(&e))?;
    if created {
        tracing::info!(target: "flowstudio::server", "created the bootstrap admin client in {}", bootstrap::admin_client_path(&data_dir).display());
    }

    let api = Arc::new(ApiState::for_app(&app).map_err(|e| start_error("the admin API")(&e))?);
    let router = crate::api::router(api.clone()).merge(crate::passport::router(app.passport.clone()));
    let (stop_http, mut stopped) = tokio::sync::watch::channel(false);
    let http = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(shutdown).await {
            tracing::error!(target: "flowstudio::server", "http server stopped: {e}");
        }
    });

    let scheduler = app.start_scheduler(SchedulerConfig::default()).await.map_err(|e| start_error("the scheduler")(&e))?;
    if let Ok(mut slot) = api.scheduler.write() {
        *slot = Some(Arc::new(scheduler));
    }
    api.readiness.mark_started();
    Ok(RunningHost { addr, api, app, http, stop_http, grace })
}

impl RunningHost {
    /// The base URL clients on this machine use (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        local_url(self.addr)
    }

    /// The graceful stop (see the module doc).
    pub async fn shutdown(self) -> ShutdownReport {
        self.api.readiness.mark_draining();
        let mut report = ShutdownReport::default();
        if let Some(mut scheduler) = self.api.take_scheduler() {
            // Requests that fetched the scheduler just before it was taken finish quickly; wait for them.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            let owned = loop {
                match Arc::try_unwrap(scheduler) {
                    Ok(owned) => break Some(owned),
                    Err(shared) if tokio::time::Instant::now() < deadline => {
                        scheduler = shared;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(_) => break None,
                }
            };
            match owned {
                Some(scheduler) => match scheduler.shutdown(self.grace).await {
                    Ok(r) => report = r,
                    Err(e) => tracing::error!(target: "flowstudio::server", "scheduler shutdown: {e}"),
                },
                None => tracing::error!(target: "flowstudio::server", "scheduler still in use after 5 s; stopping it at once"),
            }
        }
        let _ = self.stop_http.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.http).await;
        let log = self.app.audit.clone();
        match tokio::task::spawn_blocking(move || log.flush()).await {
            Ok(Err(e)) => tracing::error!(target: "flowstudio::server", "audit log flush: {e}"),
            Err(e) => tracing::error!(target: "flowstudio::server", "audit log flush: {e}"),
            Ok(Ok(())) => {}
        }
        report
    }
}

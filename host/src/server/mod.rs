//! `flowstudio serve`: the whole host in one process — the scheduler, the
//! REST admin API, health/metrics, and (embedded mode) the passport's token
//! and JWKS endpoints on the same listener.
//!
//! Embedded defaults (no config file): SQLite `state.db` in the data dir, the
//! embedded passport with its key in the data dir, the `file` secrets provider
//! rooted at `<data dir>/secrets`, and a bootstrap admin client
//! ([`bootstrap`]). A config file swaps in the platform's passport for the
//! identities' tokens and real secret stores.
//!
//! [`RunningHost::shutdown`] is the graceful stop: readiness turns to draining
//! and the API refuses changes (503), the scheduler stops firing and gives
//! running executions the grace period, then checkpoints the rest as
//! interrupted (the next start resumes them); the audit log is flushed last.

pub mod bootstrap;
pub mod runs;

use crate::api::{AdminAuth, ApiLimits, ApiState, NodeCatalog, Readiness};
use crate::audit::{AuditSink, AuditStore, FanOutAuditSink, SqliteAuditSink};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::egress::EgressPolicy;
use crate::guard::AccessGuard;
use crate::identity::IdentityRegistry;
use crate::metrics::{Metrics, TokenTotals};
use crate::passport::{JwtVerifier, PassportState};
use crate::runtime::{Runtime, RuntimeConfig};
use crate::scheduler::{Scheduler, SchedulerConfig, ShutdownReport, WorkflowHandler};
use crate::state::{SqliteStateStore, StateStore};
use crate::token::{IdInfoVerifier, PassportConfig};
use crate::workflow::{ComponentStore, WorkflowExecutor};
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
    audit_log: Arc<SqliteAuditSink>,
    http: tokio::task::JoinHandle<()>,
    stop_http: tokio::sync::watch::Sender<bool>,
    grace: Duration,
}

/// The embedded passport's address as this host calls itself (a wildcard listen address is not callable).
fn self_url(addr: SocketAddr) -> String {
    let host = if addr.ip().is_unspecified() { "127.0.0.1".to_string() } else { addr.ip().to_string() };
    let host = if addr.is_ipv6() && !addr.ip().is_unspecified() { format!("[{host}]") } else { host };
    format!("http://{host}:{}", addr.port())
}

fn private_dir(path: &Path) -> Result<(), ServeError> {
    use std::os::unix::fs::DirBuilderExt as _;
    let fail = |e: std::io::Error| ServeError::DataDir { path: path.display().to_string(), reason: e.to_string() };
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path).map_err(fail)
}

pub async fn start(options: ServeOptions) -> Result<RunningHost, ServeError> {
    let ServeOptions { data_dir, config, listen } = options;
    private_dir(&data_dir)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let db = crate::db::path_in(&data_dir);

    let metrics = Arc::new(Metrics::new());
    let audit_log = Arc::new(SqliteAuditSink::open(&db, clock.clone()).map_err(|e| start_error("the audit log")(&e))?);
    let audit: Arc<dyn AuditSink> = Arc::new(FanOutAuditSink(vec![audit_log.clone(), metrics.clone()]));

    let registry = Arc::new(IdentityRegistry::open_with_clock(&db, clock.clone()).map_err(|e| start_error("the identity registry")(&e))?);
    let admin_role = config.server.admin_role.clone();
    let (dir, reg, role) = (data_dir.clone(), registry.clone(), admin_role.clone());
    let created = tokio::task::spawn_blocking(move || bootstrap::ensure_admin_client(&dir, &reg, &role))
        .await
        .map_err(|e| start_error("the bootstrap admin client")(&e))?
        .map_err(|e| start_error("the bootstrap admin client")(&e))?;
    if created {
        tracing::info!(target: "flowstudio::server", "created the bootstrap admin client in {}", bootstrap::admin_client_path(&data_dir).display());
    }

    let embedded = config.passport.embedded.clone();
    let issuer = Arc::new(crate::passport::load_or_create_issuer(&data_dir, &embedded.issuer).map_err(|e| start_error("the embedded passport")(&e))?);
    let passport = PassportState::with_clock(registry.clone(), issuer.clone(), embedded.clone(), clock.clone())
        .map_err(|e| start_error("the embedded passport")(&e))?;
    // Admin tokens always come from the embedded passport (its bootstrap client), verified like IDInfo.
    let admin_verifier = JwtVerifier::new(issuer.issuer(), &embedded.audience, &issuer.jwks()).map_err(|e| start_error("admin authentication")(&e))?;

    let addr = listen.map_or_else(|| config.server.listen.clone(), |a| a.to_string());
    let listener = tokio::net::TcpListener::bind(&addr).await.map_err(|e| ServeError::Listen { addr: addr.clone(), reason: e.to_string() })?;
    let addr = listener.local_addr().map_err(|e| ServeError::Listen { addr: addr.clone(), reason: e.to_string() })?;

    let passport_config = config.passport.external.clone().unwrap_or_else(|| PassportConfig {
        issuer: Some(embedded.issuer.clone()),
        audience: embedded.audience.clone(),
        ..PassportConfig::new(self_url(addr))
    });
    let verifier = Arc::new(IdInfoVerifier::from_config(&passport_config, clock.clone()).map_err(|e| start_error("the passport verifier")(&e))?);
    let secrets_config = config.secrets(&data_dir);
    if let Some(file) = &secrets_config.file {
        private_dir(&file.root)?;
    }
    let secrets = Arc::new(crate::secrets::from_config(&secrets_config, clock.clone()));

    let store: Arc<dyn StateStore> = Arc::new(SqliteStateStore::open(&db).map_err(|e| start_error("the state store")(&e))?);
    let runtime = Arc::new(
        Runtime::new(RuntimeConfig { cache_dir: Some(data_dir.join("compiled")), default_limits: config.node_limits(), ..Default::default() })
            .map_err(|e| start_error("the node runtime")(&e))?,
    );
    let components = ComponentStore::in_data_dir(&data_dir);
    let base_policy = EgressPolicy { allow_loopback_plain_http_tokens: config.egress.allow_loopback_plain_http_tokens, ..Default::default() };
    let executor = Arc::new(WorkflowExecutor::new(runtime.clone(), components.clone(), base_policy));
    let runs = Arc::new(runs::IdentityRuns::new(
        registry.clone(),
        secrets,
        passport_config,
        verifier,
        AccessGuard::new(config.roles()),
        store.clone(),
        audit.clone(),
        clock.clone(),
    ));
    let counted = runs.clone();
    metrics.count_tokens_with(move || {
        let (minted, refreshed, failures) = counted.token_counts();
        TokenTotals { minted, refreshed, failures }
    });

    let api = Arc::new(ApiState {
        auth: AdminAuth::new(admin_verifier, admin_role),
        metrics,
        audit: audit.clone(),
        audit_log: std::sync::Mutex::new(AuditStore::open(&db).map_err(|e| start_error("the audit log")(&e))?),
        readiness: Arc::new(Readiness::default()),
        limits: ApiLimits { json_body_bytes: (1 << 20).min(config.server.max_body_bytes), component_bytes: config.server.max_body_bytes },
        clock: clock.clone(),
        store: store.clone(),
        scheduler: std::sync::RwLock::new(None),
        identities: registry,
        components,
        catalog: NodeCatalog::open(&db).map_err(|e| start_error("the node catalog")(&e))?,
        runtime,
    });

    // HTTP first: executions resumed by the scheduler's start need the passport's endpoints.
    let app = crate::api::router(api.clone()).merge(crate::passport::router(passport));
    let (stop_http, mut stopped) = tokio::sync::watch::channel(false);
    let http = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::error!(target: "flowstudio::server", "http server stopped: {e}");
        }
    });

    let handler = Arc::new(WorkflowHandler::new(store.clone(), executor, runs, audit.clone()));
    let scheduler = Scheduler::start(store.clone(), handler, clock, SchedulerConfig::default())
        .await
        .map_err(|e| start_error("the scheduler")(&e))?;
    tokio::spawn(runs::audit_engine_events(scheduler.events(), store, audit));
    if let Ok(mut slot) = api.scheduler.write() {
        *slot = Some(Arc::new(scheduler));
    }
    api.readiness.mark_started();
    let grace = Duration::from_secs(config.server.shutdown_grace_seconds);
    Ok(RunningHost { addr, api, audit_log, http, stop_http, grace })
}

impl RunningHost {
    /// The base URL clients use (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        self_url(self.addr)
    }

    /// The graceful stop (see the module doc).
    pub async fn shutdown(self) -> ShutdownReport {
        self.api.readiness.mark_draining();
        let mut report = ShutdownReport::default();
        if let Some(mut scheduler) = self.api.take_scheduler() {
            // Requests that fetched the scheduler before it was taken finish quickly; wait for them.
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
        let log = self.audit_log.clone();
        match tokio::task::spawn_blocking(move || log.flush()).await {
            Ok(Err(e)) => tracing::error!(target: "flowstudio::server", "audit log flush: {e}"),
            Err(e) => tracing::error!(target: "flowstudio::server", "audit log flush: {e}"),
            Ok(Ok(())) => {}
        }
        report
    }
}

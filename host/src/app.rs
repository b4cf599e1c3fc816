//! The host assembled from its configuration: every store on the one state
//! database in the data dir, the embedded passport (or the platform's), the
//! secrets stores, the node runtime, the trigger pipeline and the scheduler.
//!
//! `flowstudio serve`, `identity check` and tests build the host through
//! [`App::open`]; only `serve` then starts the scheduler ([`App::start_scheduler`]).
//!
//! In embedded mode the passport also listens on an ephemeral loopback port
//! of its own, so the host mints its identities' tokens over real HTTP
//! exactly as it would at an external passport, whether or not an API
//! listener is up.

use crate::audit::{AuditSink, AuditStoreError, FanOutAuditSink, SqliteAuditSink};
use crate::metrics::Metrics;
use crate::clock::Clock;
use crate::config::Config;
use crate::egress::EgressPolicy;
use crate::guard::AccessGuard;
use crate::identity::{IdentityError, IdentityRegistry};
use crate::passport::{load_or_create_issuer, Issuer, PassportState};
use crate::runtime::{Runtime, RuntimeConfig};
use crate::scheduler::{Scheduler, SchedulerConfig, SchedulerError, WorkflowHandler};
use crate::state::{SqliteStateStore, StateError, StateStore};
use crate::token::{IdInfoVerifier, PassportConfig};
use crate::trigger::{AuditedHandler, IdentityPipeline};
use crate::workflow::{ComponentStore, WorkflowExecutor};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Audit(#[from] AuditStoreError),
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
    #[error("embedded passport: {0}")]
    Passport(String),
    #[error("node runtime: {0}")]
    Runtime(String),
}

pub struct App {
    pub config: Config,
    pub data_dir: PathBuf,
    pub clock: Arc<dyn Clock>,
    pub identities: Arc<IdentityRegistry>,
    pub store: Arc<dyn StateStore>,
    pub audit: Arc<SqliteAuditSink>,
    /// Counts what is audited (`/metrics`).
    pub metrics: Arc<Metrics>,
    /// Where the host's events go: the audit log and the metrics.
    pub events: Arc<dyn AuditSink>,
    /// The embedded passport's signing key (also signs admin tokens).
    pub issuer: Arc<Issuer>,
    /// The embedded passport's routes, for the API listener to mount.
    pub passport: Arc<PassportState>,
    /// Where managed identities' tokens are minted and verified.
    pub passport_client: PassportConfig,
    pub pipeline: Arc<IdentityPipeline>,
    pub executor: Arc<WorkflowExecutor>,
    /// The node runtime the executor runs on (also inspects uploads).
    pub runtime: Arc<Runtime>,
    passport_task: tokio::task::JoinHandle<()>,
}

impl App {
    /// Build the host. Must run inside a tokio runtime (the embedded passport's listener).
    pub async fn open(config: Config, data_dir: &Path, clock: Arc<dyn Clock>) -> Result<App, AppError> {
        let db = crate::db::path_in(data_dir);
        let identities = Arc::new(IdentityRegistry::open_with_clock(&db, clock.clone())?);
        let store: Arc<dyn StateStore> = Arc::new(SqliteStateStore::open(&db)?);
        let audit = Arc::new(SqliteAuditSink::open(&db, clock.clone())?);
        let metrics = Arc::new(Metrics::new());
        let events: Arc<dyn AuditSink> = Arc::new(FanOutAuditSink(vec![audit.clone(), metrics.clone()]));

        let embedded = &config.passport.embedded;
        let issuer = Arc::new(load_or_create_issuer(data_dir, &embedded.issuer).map_err(|e| AppError::Passport(e.to_string()))?);
        let passport = PassportState::with_clock(identities.clone(), issuer.clone(), embedded.clone(), clock.clone())
            .map_err(|e| AppError::Passport(e.to_string()))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| AppError::Passport(e.to_string()))?;
        let local = listener.local_addr().map_err(|e| AppError::Passport(e.to_string()))?;
        let served = passport.clone();
        let passport_task = tokio::spawn(async move {
            if let Err(e) = crate::passport::serve(listener, served).await {
                tracing::error!("embedded passport stopped: {e}");
            }
        });
        let passport_client = match &config.passport.external {
            Some(external) => external.clone(),
            None => {
                let mut own = PassportConfig::new(format!("http://{local}"));
                own.issuer = Some(embedded.issuer.clone());
                own.audience = embedded.audience.clone();
                own
            }
        };
        let verifier = Arc::new(IdInfoVerifier::from_config(&passport_client, clock.clone()).map_err(|e| AppError::Passport(e.to_string()))?);

        let secrets = Arc::new(crate::secrets::from_config(&config.secrets(data_dir), clock.clone()));
        let pipeline = Arc::new(IdentityPipeline::new(
            identities.clone(),
            secrets,
            passport_client.clone(),
            verifier,
            AccessGuard::new(config.roles()),
            store.clone(),
            events.clone(),
            clock.clone(),
        ));

        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: Some(data_dir.join("compiled")),
            default_limits: config.node_limits(),
            ..Default::default()
        })
        .map_err(|e| AppError::Runtime(e.to_string()))?;
        let runtime = Arc::new(runtime);
        let base_policy = EgressPolicy {
            allow_loopback_plain_http_tokens: config.egress.allow_loopback_plain_http_tokens,
            ..Default::default()
        };
        let executor = Arc::new(WorkflowExecutor::new(runtime.clone(), ComponentStore::in_data_dir(data_dir), base_policy));

        Ok(App {
            config,
            data_dir: data_dir.to_path_buf(),
            clock,
            identities,
            store,
            audit,
            metrics,
            events,
            issuer,
            passport,
            passport_client,
            pipeline,
            executor,
            runtime,
            passport_task,
        })
    }

    /// Start firing schedules: every execution runs through the trigger sequence and is audited.
    pub async fn start_scheduler(&self, config: SchedulerConfig) -> Result<Scheduler, AppError> {
        let handler = WorkflowHandler::new(self.store.clone(), self.executor.clone(), self.pipeline.clone(), self.events.clone());
        let audited = Arc::new(AuditedHandler::new(Arc::new(handler), self.events.clone()));
        Ok(Scheduler::start(self.store.clone(), audited, self.clock.clone(), config).await?)
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.passport_task.abort();
    }
}

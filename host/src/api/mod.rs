//! The REST admin API under `/flowstudio/api/` (DESIGN §9), plus `/healthz`,
//! `/readyz`, `/metrics` and the OpenAPI document.
//!
//! Every `/flowstudio/api/` route except `openapi.json` needs an admin bearer
//! token ([`auth`]). Errors are JSON `{"error": {"code", "message", "field"?}}`
//! ([`error`]). Request bodies are size-limited per route (JSON routes
//! [`ApiLimits::json_body_bytes`], component uploads
//! [`ApiLimits::component_bytes`]); over the limit is a 413.
//!
//! The routes are one table ([`route_table`]), from which the router is built
//! and against which the OpenAPI document ([`openapi`]) is checked, so the
//! two cannot drift apart.

pub mod audit;
pub mod auth;
pub mod error;
pub mod executions;
pub mod identities;
pub mod nodes;
pub mod openapi;
pub mod query;
pub mod schedules;
pub mod system;
pub mod workflows;

pub use auth::{AdminAuth, Caller};
pub use nodes::NodeCatalog;
pub use error::{ApiError, JsonBody};
pub use system::Readiness;

use crate::app::App;
use crate::audit::{AuditSink, AuditStore, AuditStoreError, SqliteAuditSink};
use crate::passport::JwtVerifier;
use crate::trigger::IdentityPipeline;
use crate::clock::Clock;
use crate::identity::IdentityRegistry;
use crate::metrics::Metrics;
use crate::runtime::Runtime;
use crate::scheduler::Scheduler;
use crate::state::StateStore;
use crate::workflow::ComponentStore;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::handler::Handler;
use axum::http::{Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use std::sync::{Arc, Mutex};

/// Where the admin API is mounted.
pub const BASE_PATH: &str = "/flowstudio/api";

/// Request size limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiLimits {
    /// Largest JSON body (schedules, workflows, identities).
    pub json_body_bytes: usize,
    /// Largest `.wasm` upload.
    pub component_bytes: usize,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits { json_body_bytes: 1 << 20, component_bytes: 64 << 20 }
    }
}

/// What the handlers share.
pub struct ApiState {
    pub auth: AdminAuth,
    pub metrics: Arc<Metrics>,
    /// Where the API's own audit events go (schedule created, …).
    pub audit: Arc<dyn AuditSink>,
    /// The audit log, for queries.
    pub audit_log: Mutex<AuditStore>,
    /// The log's background writer: flushed before a query, so a query sees every event recorded before it.
    audit_writer: Arc<SqliteAuditSink>,
    pub readiness: Arc<Readiness>,
    pub limits: ApiLimits,
    pub clock: Arc<dyn Clock>,
    /// Schedules, workflows and executions.
    pub store: Arc<dyn StateStore>,
    /// The running scheduler; `None` once shutdown has taken it.
    pub scheduler: std::sync::RwLock<Option<Arc<Scheduler>>>,
    pub identities: Arc<IdentityRegistry>,
    pub components: ComponentStore,
    pub catalog: NodeCatalog,
    /// For inspecting uploaded components.
    pub runtime: Arc<Runtime>,
    /// The trigger sequence: a manual trigger is authorized for the caller too.
    pub pipeline: Arc<IdentityPipeline>,
}

/// Why the API could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("admin API could not start: {0}")]
pub struct ApiSetupError(String);

impl ApiState {
    /// The API over an assembled host. Admin tokens are verified against the
    /// embedded passport's key (which signs the bootstrap admin client's
    /// tokens) and need `[server] admin-role`. The scheduler slot starts
    /// empty (503 on schedule changes) until `serve` puts the running one in.
    pub fn for_app(app: &App) -> Result<ApiState, ApiSetupError> {
        let fail = |e: &dyn std::fmt::Display| ApiSetupError(e.to_string());
        let embedded = &app.config.passport.embedded;
        let verifier = JwtVerifier::new(app.issuer.issuer(), &embedded.audience, &app.issuer.jwks()).map_err(|e| fail(&e))?;
        let db = crate::db::path_in(&app.data_dir);
        let max = app.config.server.max_body_bytes;
        Ok(ApiState {
            auth: AdminAuth::new(verifier, app.config.server.admin_role.clone()),
            metrics: app.metrics.clone(),
            audit: app.events.clone(),
            audit_log: Mutex::new(AuditStore::open(&db).map_err(|e| fail(&e))?),
            audit_writer: app.audit.clone(),
            readiness: Arc::new(Readiness::default()),
            limits: ApiLimits { json_body_bytes: ApiLimits::default().json_body_bytes.min(max), component_bytes: max },
            clock: app.clock.clone(),
            store: app.store.clone(),
            scheduler: std::sync::RwLock::new(None),
            identities: app.identities.clone(),
            components: app.executor.components().clone(),
            catalog: NodeCatalog::open(&db).map_err(|e| fail(&e))?,
            runtime: app.runtime.clone(),
            pipeline: app.pipeline.clone(),
        })
    }
}

impl ApiState {
    /// The scheduler, or 503 while the host shuts down.
    pub fn scheduler(&self) -> Result<Arc<Scheduler>, ApiError> {
        let slot = self.scheduler.read().map_err(|_| ApiError::internal("scheduler slot lock poisoned"))?;
        slot.clone().ok_or_else(|| ApiError::unavailable("the host is shutting down; the scheduler takes no more changes"))
    }

    /// Take the scheduler out for shutdown; requests from now on get 503.
    pub fn take_scheduler(&self) -> Option<Arc<Scheduler>> {
        self.scheduler.write().ok().and_then(|mut slot| slot.take())
    }

    /// Run `f` on the audit log off the async threads (SQLite blocks).
    pub async fn with_audit_log<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&AuditStore) -> Result<T, AuditStoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let state = self.clone();
        let joined = tokio::task::spawn_blocking(move || {
            state.audit_writer.flush().map_err(ApiError::internal)?;
            let store = state.audit_log.lock().map_err(|_| ApiError::internal("audit log lock poisoned"))?;
            f(&store).map_err(ApiError::internal)
        })
        .await;
        joined.unwrap_or_else(|e| Err(ApiError::internal(e)))
    }
}

/// The HTTP methods the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verb {
    Get,
    Post,
    Put,
    Delete,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Post => "post",
            Verb::Put => "put",
            Verb::Delete => "delete",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Put => MethodFilter::PUT,
            Verb::Delete => MethodFilter::DELETE,
        }
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token needed (health, metrics, the OpenAPI document).
    Public,
    /// An admin token is needed.
    Admin,
}

/// One route: method, full path (axum/OpenAPI `{param}` syntax), access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    pub verb: Verb,
    pub path: &'static str,
    pub access: Access,
}

struct Route {
    spec: RouteSpec,
    handler: MethodRouter<Arc<ApiState>>,
}

fn route<H, T>(verb: Verb, path: &'static str, access: Access, max_body: usize, handler: H) -> Route
where
    H: Handler<T, Arc<ApiState>>,
    T: 'static,
{
    let handler = on(verb.filter(), handler).layer(DefaultBodyLimit::max(max_body));
    Route { spec: RouteSpec { verb, path, access }, handler }
}

fn routes(limits: ApiLimits) -> Vec<Route> {
    use Access::{Admin, Public};
    use Verb::{Delete, Get, Post, Put};
    let json = limits.json_body_bytes;
    let wasm = limits.component_bytes;
    vec![
        route(Get, "/healthz", Public, json, system::healthz),
        route(Get, "/readyz", Public, json, system::readyz),
        route(Get, "/metrics", Public, json, system::metrics),
        route(Get, "/flowstudio/api/openapi.json", Public, json, system::openapi),
        route(Get, "/flowstudio/api/schedules", Admin, json, schedules::list),
        route(Post, "/flowstudio/api/schedules", Admin, json, schedules::create),
        route(Get, "/flowstudio/api/schedules/{id}", Admin, json, schedules::get),
        route(Put, "/flowstudio/api/schedules/{id}", Admin, json, schedules::replace),
        route(Delete, "/flowstudio/api/schedules/{id}", Admin, json, schedules::delete),
        route(Post, "/flowstudio/api/schedules/{id}/pause", Admin, json, schedules::pause),
        route(Post, "/flowstudio/api/schedules/{id}/resume", Admin, json, schedules::resume),
        route(Post, "/flowstudio/api/schedules/{id}/trigger", Admin, json, schedules::trigger),
        route(Post, "/flowstudio/api/schedules/{id}/backfill", Admin, json, schedules::backfill),
        route(Get, "/flowstudio/api/workflows", Admin, json, workflows::list),
        route(Post, "/flowstudio/api/workflows", Admin, json, workflows::create),
        route(Get, "/flowstudio/api/workflows/{id}", Admin, json, workflows::get),
        route(Put, "/flowstudio/api/workflows/{id}", Admin, json, workflows::replace),
        route(Delete, "/flowstudio/api/workflows/{id}", Admin, json, workflows::delete),
        route(Get, "/flowstudio/api/nodes", Admin, json, nodes::list),
        route(Post, "/flowstudio/api/nodes", Admin, wasm, nodes::upload),
        route(Get, "/flowstudio/api/nodes/{digest}", Admin, json, nodes::get),
        route(Get, "/flowstudio/api/identities", Admin, json, identities::list),
        route(Post, "/flowstudio/api/identities", Admin, json, identities::create),
        route(Get, "/flowstudio/api/identities/{id}", Admin, json, identities::get),
        route(Delete, "/flowstudio/api/identities/{id}", Admin, json, identities::delete),
        route(Post, "/flowstudio/api/identities/{id}/disable", Admin, json, identities::disable),
        route(Post, "/flowstudio/api/identities/{id}/enable", Admin, json, identities::enable),
        route(Put, "/flowstudio/api/identities/{id}/secret", Admin, json, identities::set_secret),
        route(Get, "/flowstudio/api/executions", Admin, json, executions::list),
        route(Get, "/flowstudio/api/executions/{id}", Admin, json, executions::get),
        route(Get, "/flowstudio/api/audit", Admin, json, audit::query),
        route(Get, "/flowstudio/api/audit/verify", Admin, json, audit::verify),
    ]
}

/// Every route the API serves.
pub fn route_table() -> Vec<RouteSpec> {
    routes(ApiLimits::default()).into_iter().map(|r| r.spec).collect()
}

/// The whole HTTP app: API, health, metrics. Mount the passport's router
/// next to it with `merge` in embedded mode.
pub fn router(state: Arc<ApiState>) -> Router {
    let mut public = Router::new();
    let mut admin = Router::new();
    for r in routes(state.limits) {
        match r.spec.access {
            Access::Public => public = public.route(r.spec.path, r.handler),
            Access::Admin => admin = admin.route(r.spec.path, r.handler),
        }
    }
    let admin = admin.route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_admin));
    public
        .merge(admin)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), count_responses))
        .with_state(state)
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(axum::http::StatusCode::NOT_FOUND, "not_found", format!("there is no route `{method} {}`", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("`{}` does not accept {method}", uri.path()),
    )
}

async fn count_responses(State(state): State<Arc<ApiState>>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    state.metrics.api_response(response.status().as_u16());
    response.into_response()
}


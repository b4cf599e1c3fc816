//! FlowStudio host: runs workflows made of sandboxed WebAssembly component
//! nodes as a managed identity, and is the only way out for their network calls.
//!
//! # Layout
//!
//! | module | job |
//! |---|---|
//! | [`identity`] | `IdInfo`, who a run acts as (never the token); the managed-identity registry and hashed client secrets |
//! | [`secret`] | `Secret`: a redacting, zeroizing holder for secrets and tokens |
//! | [`secrets`] | the `SecretsProvider` seam, secret references and the stores behind them |
//! | [`clock`] | the `Clock` seam: system time, or a manual clock for tests |
//! | [`db`] | opening the SQLite state database (WAL) |
//! | [`validation`] | `FieldError`: a problem with one named input field |
//! | [`token`] | the `TokenSource` seam and the managed-identity token path: passport client, JWKS cache, IDInfo, refresh |
//! | [`audit`] | the `AuditSink` seam, the audit events and the hash-chained audit log in the state db |
//! | [`guard`] | the access guard: roles → permissions, per-workflow resource policies, 403 denials |
//! | [`passport`] | the embedded passport: signing key in the data dir, real JWTs, JWKS; `/passport/token` + discovery over HTTP |
//! | [`runtime`] | wasmtime engine, component cache, sandbox limits, running one node |
//! | [`egress`] | the one chokepoint for outbound calls: grants, address checks, token attach, budgets |
//! | [`cron`] | 5-field POSIX cron in IANA zones with the DST rules of DESIGN §7 |
//! | [`schedule`] | schedule JSON (camelCase), its policies, validation and `inputData` templates |
//! | [`scheduler`] | the engine: one timer set over all schedules, claims, overlap, catch-up, retry, shutdown |
//! | [`state`] | the `StateStore` seam (schedules, workflows, claims, executions, leases) and its SQLite store |
//! | [`workflow`] | workflow DAGs, the content-addressed component store, the executor |
//! | [`trigger`] | the trigger sequence: identity → secret → token → IDInfo → guard, as the scheduler's token-source factory, and its audit events |
//! | [`config`] | the config file (`flowstudio.toml`, kebab-case, unknown keys refused by path) and the embedded defaults |
//! | [`app`] | the host assembled from its config: stores, passport, secrets, runtime, pipeline, scheduler |
//! | [`api`] | the REST admin API under `/flowstudio/api/`, `/healthz`, `/readyz`, `/metrics`, OpenAPI |
//! | [`metrics`] | Prometheus counters and histograms, fed from the audit stream |
//! | [`server`] | `flowstudio serve`: the app's scheduler + API + passport on one listener, bootstrap admin client, graceful shutdown |
//! | `main.rs` + `cli/` | the `flowstudio` binary |
//!
//! The WIT contract lives in the repository's `wit/` folder (`flowstudio:node@0.1.0`),
//! read by [`runtime::bindings`] and by the node SDK.

pub mod api;
pub mod app;
pub mod audit;
pub mod clock;
pub mod config;
pub mod cron;
pub mod db;
pub mod egress;
pub mod guard;
pub mod identity;
pub mod metrics;
pub mod passport;
pub mod runtime;
pub mod schedule;
pub mod scheduler;
pub mod secret;
pub mod secrets;
pub mod server;
pub mod state;
pub mod token;
pub mod trigger;
pub mod validation;
pub mod workflow;

/// The versions of the `flowstudio:node` WIT package this host runs.
pub const SUPPORTED_NODE_WIT: &[&str] = &["flowstudio:node@0.1.0"];

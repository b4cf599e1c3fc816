//! Running nodes: one store and one instance per run, pre-instantiated
//! components, sandbox limits always on. A node that misbehaves fails alone.

pub mod bindings;
mod cache;
mod engine;
mod inspect;
mod limits;
mod state;

pub use cache::digest;
pub use engine::{EngineConfig, EPOCH_TICK};
pub use inspect::Inspection;
pub use limits::NodeLimits;
pub use state::LogLine;

use crate::egress::{EgressHooks, RunEgress};
use crate::token::TokenError;
use bindings::{ExecutionContext, NodeError, NodePre, WitIdInfo};
use cache::ComponentCache;
use engine::EpochTicker;
use limits::{MemoryLimitHit, MemoryLimiter};
use state::{LogBuffer, NodeState};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store, Trap, UpdateDeadline};

#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    pub engine: EngineConfig,
    /// Where compiled components are cached; `None` keeps them in memory only.
    pub cache_dir: Option<PathBuf>,
    pub default_limits: NodeLimits,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("node component could not be read from `{path}`: {reason}")]
    Read { path: String, reason: String },
    #[error("node component {digest} is not a valid component: {reason}")]
    Compile { digest: String, reason: String },
    #[error("node component {digest} is refused: {}", problems.join("; "))]
    Incompatible { digest: String, problems: Vec<String> },
    #[error("node component {digest} cannot be linked: {reason}")]
    Link { digest: String, reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("wasm engine could not be configured: {0}")]
    Engine(String),
}

/// Why a node run failed. Limit hits name the limit.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("node `{node}` exceeded its deadline of {limit_ms} ms")]
    DeadlineExceeded { node: String, limit_ms: u64 },
    #[error("node `{node}` exceeded its memory limit of {limit_bytes} bytes")]
    MemoryLimit { node: String, limit_bytes: usize },
    #[error("node `{node}` overflowed its stack")]
    StackOverflow { node: String },
    #[error("node `{node}` produced {actual} bytes of output, more than its limit of {limit} bytes")]
    OutputTooLarge { node: String, limit: usize, actual: usize },
    #[error("node `{node}` returned output that is not JSON: {reason}")]
    InvalidOutput { node: String, reason: String },
    #[error("node `{node}` trapped: {reason}")]
    Trap { node: String, reason: String },
    #[error("node `{node}` could not start: {reason}")]
    Instantiate { node: String, reason: String },
    #[error("node `{node}` reported invalid input: {message}")]
    InvalidInput { node: String, message: String },
    #[error("node `{node}` failed: {message}")]
    Failed { node: String, message: String },
    #[error("node `{node}` failed (retryable): {message}")]
    Retryable { node: String, message: String },
    #[error("node `{node}` was denied: {message}")]
    Denied { node: String, message: String },
    #[error("no token for node `{node}`: {source}")]
    Token { node: String, source: TokenError },
}

impl RunError {
    /// Whether trying the execution again may succeed. Limit hits are not retried.
    pub fn is_transient(&self) -> bool {
        matches!(self, RunError::Retryable { .. } | RunError::Token { source: TokenError::Unavailable { .. }, .. })
    }
}

/// A compiled, pre-linked component ready to be instantiated many times.
pub struct LoadedNode {
    pub digest: String,
    pre: NodePre<NodeState>,
    pub inspection: Inspection,
}

/// What the run is, apart from the identity (which comes from the token).
#[derive(Debug, Clone, Default)]
pub struct RunContext {
    pub execution_id: String,
    pub workflow_id: String,
    pub node_id: String,
    pub attempt: u32,
    pub triggered_by: String,
    pub scheduled_time: Option<String>,
    pub tenant_id: String,
}

pub struct Invocation {
    pub context: RunContext,
    pub input: serde_json::Value,
    pub egress: Arc<RunEgress>,
    /// `None` uses the runtime's defaults.
    pub limits: Option<NodeLimits>,
}

#[derive(Debug, Clone)]
pub struct NodeOutput {
    pub output: serde_json::Value,
    pub logs: Vec<LogLine>,
    pub logs_dropped: u64,
    pub duration: Duration,
}

pub struct Runtime {
    engine: Engine,
    linker: Linker<NodeState>,
    cache: ComponentCache,
    default_limits: NodeLimits,
    max_memory_bytes: usize,
    _ticker: EpochTicker,
}

impl Runtime {
    pub fn new(config: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        let engine = engine::build(&config.engine).map_err(|e| RuntimeError::Engine(e.to_string()))?;
        let linker = node_linker(&engine).map_err(|e| RuntimeError::Engine(e.to_string()))?;
        let cache = ComponentCache::new(&engine, config.cache_dir);
        let ticker = EpochTicker::start(&engine);
        Ok(Runtime {
            engine,
            linker,
            cache,
            default_limits: config.default_limits,
            max_memory_bytes: config.engine.max_memory_bytes,
            _ticker: ticker,
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn default_limits(&self) -> NodeLimits {
        self.default_limits
    }

    pub fn load_file(&self, path: &std::path::Path) -> Result<Arc<LoadedNode>, LoadError> {
        let wasm = std::fs::read(path)
            .map_err(|e| LoadError::Read { path: path.display().to_string(), reason: e.to_string() })?;
        self.load(&wasm)
    }

    /// Compile (or fetch from cache), check and pre-link a component.
    pub fn load(&self, wasm: &[u8]) -> Result<Arc<LoadedNode>, LoadError> {
        let digest = digest(wasm);
        let component = self
            .cache
            .compile(&self.engine, wasm, &digest)
            .map_err(|e| LoadError::Compile { digest: digest.clone(), reason: e.to_string() })?;
        let inspection = inspect::inspect(&self.engine, &component, digest.clone());
        if !inspection.compatible {
            return Err(LoadError::Incompatible { digest, problems: inspection.problems });
        }
        let pre = self
            .linker
            .instantiate_pre(&component)
            .and_then(NodePre::new)
            .map_err(|e| LoadError::Link { digest: digest.clone(), reason: format!("{e:#}") })?;
        Ok(Arc::new(LoadedNode { digest, pre, inspection }))
    }

    /// Compile a component only to describe it (never runs it).
    pub fn inspect(&self, wasm: &[u8]) -> Result<Inspection, LoadError> {
        let digest = digest(wasm);
        let component = Component::new(&self.engine, wasm)
            .map_err(|e| LoadError::Compile { digest: digest.clone(), reason: e.to_string() })?;
        let mut inspection = inspect::inspect(&self.engine, &component, digest);
        if inspection.compatible {
            if let Err(e) = self.linker.instantiate_pre(&component) {
                inspection.compatible = false;
                inspection.problems.push(format!("cannot be linked: {e:#}"));
            }
        }
        Ok(inspection)
    }

    /// Run a node once in a fresh store. The token is made fresh first, so the
    /// node's `actor` is current when it starts.
    pub async fn run(&self, node: &LoadedNode, invocation: Invocation) -> Result<NodeOutput, RunError> {
        let started = Instant::now();
        let node_id = invocation.context.node_id.clone();
        let mut limits = invocation.limits.unwrap_or(self.default_limits);
        limits.memory_bytes = limits.memory_bytes.min(self.max_memory_bytes);
        let tokens = invocation.egress.tokens().clone();
        let token = tokens
            .token(None)
            .await
            .map_err(|source| RunError::Token { node: node_id.clone(), source })?;

        let state = NodeState {
            // No env, no args, no preopens, no stdin: a node sees none of the host.
            wasi: wasmtime_wasi::WasiCtxBuilder::new().build(),
            table: ResourceTable::new(),
            http: wasmtime_wasi_http::WasiHttpCtx::new(),
            hooks: EgressHooks::new(invocation.egress.clone(), node_id.clone()),
            limiter: MemoryLimiter { memory_bytes: limits.memory_bytes, hit: false },
            logs: LogBuffer { cap: limits.max_log_bytes, ..Default::default() },
            tokens,
            node_id: node_id.clone(),
            deadline_hit: false,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        let deadline = started + limits.deadline;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut ctx| {
            if Instant::now() >= deadline {
                ctx.data_mut().deadline_hit = true;
                return Err(wasmtime::Error::new(Trap::Interrupt));
            }
            Ok(UpdateDeadline::Yield(1))
        });

        let ctx = ExecutionContext {
            execution_id: invocation.context.execution_id,
            workflow_id: invocation.context.workflow_id,
            node_id: node_id.clone(),
            attempt: invocation.context.attempt,
            triggered_by: invocation.context.triggered_by,
            scheduled_time: invocation.context.scheduled_time,
            tenant_id: invocation.context.tenant_id,
            actor: WitIdInfo::from(&token.id_info),
        };
        let input = invocation.input.to_string();

        let call = async {
            let instance = node.pre.instantiate_async(&mut store).await?;
            instance.call_run(&mut store, &ctx, &input).await
        };
        // Epochs stop a spinning guest; this stops one parked on a host future.
        let outcome = tokio::time::timeout(limits.deadline + EPOCH_TICK * 5, call).await;
        let state = store.data();
        let deadline_error = || RunError::DeadlineExceeded { node: node_id.clone(), limit_ms: limits.deadline.as_millis() as u64 };
        let returned = match outcome {
            Err(_elapsed) => return Err(deadline_error()),
            Ok(Err(e)) => return Err(classify_trap(&node_id, e, state, limits, deadline_error)),
            Ok(Ok(returned)) => returned,
        };
        // A node whose call got no token fails with whatever its HTTP client makes of
        // that (often a retryable network error); the token's own error says why.
        let output = returned.map_err(|e| match state.hooks.token_failure() {
            Some(source) => RunError::Token { node: node_id.clone(), source },
            None => node_error(&node_id, e),
        })?;
        if output.len() > limits.max_output_bytes {
            return Err(RunError::OutputTooLarge { node: node_id, limit: limits.max_output_bytes, actual: output.len() });
        }
        let output = serde_json::from_str(&output)
            .map_err(|e| RunError::InvalidOutput { node: node_id.clone(), reason: e.to_string() })?;
        let logs = std::mem::take(&mut store.data_mut().logs);
        Ok(NodeOutput { output, logs: logs.lines, logs_dropped: logs.dropped, duration: started.elapsed() })
    }
}

fn classify_trap(
    node: &str,
    error: wasmtime::Error,
    state: &NodeState,
    limits: NodeLimits,
    deadline_error: impl Fn() -> RunError,
) -> RunError {
    let node = node.to_string();
    if state.deadline_hit {
        return deadline_error();
    }
    if state.limiter.hit || error.downcast_ref::<MemoryLimitHit>().is_some() {
        return RunError::MemoryLimit { node, limit_bytes: limits.memory_bytes };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => RunError::StackOverflow { node },
        Some(Trap::MemoryOutOfBounds) if backtrace_depth(&error) >= SHADOW_STACK_DEPTH => RunError::StackOverflow { node },
        Some(Trap::Interrupt) => deadline_error(),
        _ => RunError::Trap { node, reason: truncate(format!("{error:#}"), 2_000) },
    }
}

/// Compilers targeting wasm (Rust, C) keep a shadow stack in linear memory;
/// when deep recursion exhausts it the guest writes below address 0, which
/// wasmtime reports as an out-of-bounds access rather than a stack overflow.
/// An out-of-bounds trap this deep in calls is that case.
const SHADOW_STACK_DEPTH: usize = 512;

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let cut = (0..=max).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        text.truncate(cut);
        text.push_str(" …");
    }
    text
}

fn backtrace_depth(error: &wasmtime::Error) -> usize {
    error.downcast_ref::<wasmtime::WasmBacktrace>().map(|bt| bt.frames().len()).unwrap_or(0)
}

fn node_error(node: &str, error: NodeError) -> RunError {
    let node = node.to_string();
    match error {
        NodeError::InvalidInput(message) => RunError::InvalidInput { node, message },
        NodeError::Failed(message) => RunError::Failed { node, message },
        NodeError::Retryable(message) => RunError::Retryable { node, message },
        NodeError::Denied(message) => RunError::Denied { node, message },
    }
}

/// Link exactly what nodes get: clocks, random, stdio (discarded), an empty
/// environment, exit, `wasi:http` (through the egress hooks) and our own host
/// interface. No filesystem, no sockets: a node importing them is refused.
fn node_linker(engine: &Engine) -> wasmtime::Result<Linker<NodeState>> {
    use wasmtime_wasi::cli::WasiCli;
    use wasmtime_wasi::p2::bindings::{cli, random};
    use wasmtime_wasi::random::WasiRandom;
    use wasmtime_wasi::WasiView as _;

    let mut linker = Linker::new(engine);
    let l = &mut linker;
    wasmtime_wasi::p2::add_to_linker_proxy_interfaces_async(l)?;
    let view = <NodeState as wasmtime_wasi::cli::WasiCliView>::cli;
    cli::exit::add_to_linker::<NodeState, WasiCli>(l, view)?;
    cli::environment::add_to_linker::<NodeState, WasiCli>(l, view)?;
    cli::terminal_input::add_to_linker::<NodeState, WasiCli>(l, view)?;
    cli::terminal_output::add_to_linker::<NodeState, WasiCli>(l, view)?;
    cli::terminal_stdin::add_to_linker::<NodeState, WasiCli>(l, view)?;
    cli::terminal_stdout::add_to_linker::<NodeState, WasiCli>(l, view)?;
    cli::terminal_stderr::add_to_linker::<NodeState, WasiCli>(l, view)?;
    random::insecure::add_to_linker::<NodeState, WasiRandom>(l, |s| s.ctx().ctx.random())?;
    random::insecure_seed::add_to_linker::<NodeState, WasiRandom>(l, |s| s.ctx().ctx.random())?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(l)?;
    bindings::flowstudio::node::types::add_to_linker::<NodeState, HasSelf<NodeState>>(l, |s| s)?;
    bindings::flowstudio::node::host::add_to_linker::<NodeState, HasSelf<NodeState>>(l, |s| s)?;
    Ok(linker)
}

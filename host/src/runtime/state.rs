//! What a store holds for one node run, and the host functions nodes import.

use super::bindings::{flowstudio, LogLevel, WitIdInfo};
use super::limits::MemoryLimiter;
use crate::egress::EgressHooks;
use crate::token::TokenSource;
use serde::Serialize;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// One log line a node wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    pub level: &'static str,
    pub message: String,
}

/// Log lines of a run, capped in bytes; lines past the cap are counted, not kept.
#[derive(Debug, Default)]
pub(crate) struct LogBuffer {
    pub(crate) lines: Vec<LogLine>,
    pub(crate) bytes: usize,
    pub(crate) dropped: u64,
    pub(crate) cap: usize,
}

pub(crate) struct NodeState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) http: WasiHttpCtx,
    pub(crate) hooks: EgressHooks,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) logs: LogBuffer,
    pub(crate) tokens: Arc<dyn TokenSource>,
    pub(crate) node_id: String,
    pub(crate) deadline_hit: bool,
}

impl WasiView for NodeState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for NodeState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

impl flowstudio::node::types::Host for NodeState {}

impl flowstudio::node::host::Host for NodeState {
    fn log(&mut self, level: LogLevel, message: String) {
        let logs = &mut self.logs;
        if logs.bytes + message.len() > logs.cap {
            logs.dropped += 1;
            return;
        }
        logs.bytes += message.len();
        let level = match level {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        };
        tracing::info!(target: "flowstudio::node", node = %self.node_id, level, "{message}");
        logs.lines.push(LogLine { level, message });
    }

    fn actor(&mut self) -> WitIdInfo {
        WitIdInfo::from(&self.tokens.id_info())
    }
}

//! The wasmtime engine: pooling allocator, epoch interruption, and the ticker
//! that advances epochs so deadlines fire.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances; a deadline overshoots by at most about this much.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Memory of a node run kept resident (zeroed, not unmapped) for the next run of its slot.
const KEEP_RESIDENT: usize = 1 << 20;

/// Engine-wide sizing. Per-run limits live in [`super::NodeLimits`].
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Node runs that may be live at once (pooling slots).
    pub max_concurrent_runs: u32,
    /// The largest memory any node may be granted.
    pub max_memory_bytes: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig { max_concurrent_runs: 256, max_memory_bytes: 256 << 20 }
    }
}

pub fn build(config: &EngineConfig) -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    let slots = config.max_concurrent_runs;
    pool.total_component_instances(slots);
    // A Rust component has a handful of core instances (main module, adapters, shims).
    pool.total_core_instances(slots * 8);
    pool.total_memories(slots * 2);
    pool.total_tables(slots * 4);
    pool.max_memory_size(config.max_memory_bytes);
    // A finished run's memory is reset by zeroing the pages it dirtied (found with
    // PAGEMAP_SCAN where the kernel has it, Linux ≥ 6.7) instead of `madvise`:
    // no TLB shootdown across cores when a store drops and no page faults when
    // the slot is reused; that was a sixth of a 3-node execution (benches/end_to_end).
    // The contents are reset either way; only this much stays resident per warm slot.
    pool.linear_memory_keep_resident(KEEP_RESIDENT);
    pool.table_keep_resident(KEEP_RESIDENT / 16);
    pool.pagemap_scan(wasmtime::Enabled::Auto);

    let mut wasm = Config::new();
    wasm.wasm_component_model(true);
    wasm.epoch_interruption(true);
    wasm.max_wasm_stack(1 << 20);
    // Deep enough to recognise a shadow-stack overflow (see `runtime::SHADOW_STACK_DEPTH`);
    // the cost is paid only when a guest traps.
    wasm.wasm_backtrace_max_frames(std::num::NonZeroUsize::new(600));
    // Each slot reserves only what the largest memory needs, not 4 GiB.
    wasm.memory_reservation(config.max_memory_bytes as u64);
    wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&wasm)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    pub fn start(engine: &Engine) -> EpochTicker {
        let stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("flowstudio-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map(|_| ())
            .unwrap_or_else(|e| tracing::error!("epoch ticker did not start, deadlines will not fire: {e}"));
        EpochTicker { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

//! Per-run sandbox limits and the resource limiter that enforces memory.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Limits for one node run. Always on; a node may be given other values, never none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeLimits {
    pub memory_bytes: usize,
    #[serde(with = "millis")]
    pub deadline: Duration,
    pub max_output_bytes: usize,
    pub max_log_bytes: usize,
}

impl Default for NodeLimits {
    fn default() -> Self {
        NodeLimits {
            memory_bytes: 64 << 20,
            deadline: Duration::from_secs(30),
            max_output_bytes: 1 << 20,
            max_log_bytes: 64 << 10,
        }
    }
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// Refuses growth past the run's memory cap and remembers that it did, so the
/// resulting trap can be reported as the memory limit rather than a crash.
pub(crate) struct MemoryLimiter {
    pub(crate) memory_bytes: usize,
    pub(crate) hit: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("memory limit of {0} bytes reached")]
pub(crate) struct MemoryLimitHit(pub usize);

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.hit = true;
            return Err(wasmtime::Error::new(MemoryLimitHit(self.memory_bytes)));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

//! The runtime's configuration: pool sizes, default per-call limits and store quotas.

use std::path::PathBuf;
use std::time::Duration;

/// How the node's wasm runtime is set up. The defaults suit a laptop: a few hundred
/// concurrent instances of 64 MiB at most each.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled components and deployed component files are kept.
    pub dir: PathBuf,
    /// Largest component file accepted at deploy, in bytes.
    pub max_component_bytes: usize,
    /// Instances alive at once across all services (the pooling allocator's slots); a call
    /// beyond it waits for a free slot until its deadline.
    pub max_instances: u32,
    /// Upper bound on any service's linear memory, in bytes (a manifest may ask for less,
    /// never more).
    pub max_memory_bytes: usize,
    /// Limits used when a manifest names none.
    pub default_limits: CallLimits,
    /// How often the epoch advances: the granularity of wall-clock deadlines and of yields
    /// back to the scheduler by long-running guests.
    pub epoch_tick: Duration,
    /// Store quotas per service.
    pub store: StoreLimits,
    /// Log lines kept per service.
    pub log_lines: usize,
    /// Most services deployed at once.
    pub max_services: usize,
    /// Consecutive crashes (traps) after which a service is paused before its next call.
    pub crash_threshold: u32,
    /// The first pause after `crash_threshold` crashes; each further crash doubles it.
    pub crash_backoff: Duration,
    /// The longest pause.
    pub max_crash_backoff: Duration,
    /// Bytes of each instance slot's memory kept resident between calls (reset in place
    /// instead of released): faster calls for that much RSS per slot used.
    pub keep_resident_bytes: usize,
    /// Older versions of a service kept running beside the current one after a new version
    /// is deployed; they answer only calls that pin them (`service@version`).
    pub older_versions: usize,
}

impl RuntimeConfig {
    /// The defaults, keeping files under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            max_component_bytes: 64 * 1024 * 1024,
            max_instances: 256,
            max_memory_bytes: 256 * 1024 * 1024,
            default_limits: CallLimits::default(),
            epoch_tick: Duration::from_millis(10),
            store: StoreLimits::default(),
            log_lines: 1000,
            max_services: 256,
            crash_threshold: 5,
            crash_backoff: Duration::from_secs(1),
            max_crash_backoff: Duration::from_secs(60),
            keep_resident_bytes: 2 * 1024 * 1024,
            older_versions: 2,
        }
    }
}

/// What one call may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    /// Wall time from instantiation to the answer; past it the call ends with 408.
    pub timeout: Duration,
    /// Linear memory of one instance, in bytes; growing past it fails inside the guest.
    pub memory_bytes: usize,
    /// WebAssembly instructions (fuel) one call may execute; past it the call ends with 408.
    pub fuel: u64,
    /// Largest response body, in bytes; a larger one ends the call with 413.
    pub max_response_bytes: usize,
    /// Calls of one service running at once; beyond it callers get 503.
    pub max_concurrent: u32,
    /// Tables and their elements, per instance.
    pub max_table_elements: usize,
}

impl Default for CallLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            memory_bytes: 64 * 1024 * 1024,
            fuel: 20_000_000_000,
            max_response_bytes: 4 * 1024 * 1024,
            max_concurrent: 64,
            max_table_elements: 100_000,
        }
    }
}

/// Per-service key-value quotas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// Longest key, in bytes.
    pub max_key_bytes: usize,
    /// Largest value, in bytes.
    pub max_value_bytes: usize,
    /// Total of keys and values of one service, in bytes.
    pub max_total_bytes: u64,
    /// Most keys one `list` returns.
    pub max_list: u32,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            max_key_bytes: 1024,
            max_value_bytes: 1024 * 1024,
            max_total_bytes: 64 * 1024 * 1024,
            max_list: 1000,
        }
    }
}

//! The node's wasmtime `Engine`: pooling allocator, fuel and epoch interruption, an epoch
//! ticker thread, and compilation with an on-disk cache of machine code.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tracing::{debug, info, warn};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::config::RuntimeConfig;
use crate::error::{DeployError, RuntimeError};

/// Stack wasm code may use; deeper recursion traps.
const MAX_WASM_STACK: usize = 1024 * 1024;
/// Stack of the fiber a call runs on: wasm's stack plus room for host calls.
const ASYNC_STACK: usize = MAX_WASM_STACK + 1024 * 1024;

/// Builds the engine every service of this node shares.
pub(crate) fn build(config: &RuntimeConfig) -> Result<Engine, RuntimeError> {
    let slots = config.max_instances.max(1);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(slots)
        .total_core_instances(slots.saturating_mul(8))
        .total_memories(slots.saturating_mul(2))
        .total_tables(slots.saturating_mul(4))
        .total_stacks(slots)
        .max_memory_size(config.max_memory_bytes)
        .max_tables_per_module(4)
        .table_elements(config.default_limits.max_table_elements)
        // Keep the first pages of a slot's memory and tables resident between calls (reset
        // in place rather than released and faulted back in): one instance per call makes
        // the release/fault cycle the main cost otherwise (see docs/BENCHMARKS.md).
        .linear_memory_keep_resident(config.keep_resident_bytes)
        .table_keep_resident(config.keep_resident_bytes.min(64 * 1024))
        // Resets only the pages a call dirtied, where the kernel can tell (Linux 6.7+).
        .pagemap_scan(wasmtime::Enabled::Auto);
    let mut wasm = Config::new();
    wasm.wasm_component_model(true)
        .epoch_interruption(true)
        .consume_fuel(true)
        .max_wasm_stack(MAX_WASM_STACK)
        .async_stack_size(ASYNC_STACK)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&wasm).map_err(|e| RuntimeError::Engine(format!("{e:#}")))
}

/// Advances `engine`'s epoch every `tick` on a thread of its own (never a runtime worker: a
/// guest spinning on every worker must not stop the clock that ends it). The thread ends
/// once the engine is dropped.
pub(crate) fn spawn_ticker(engine: &Engine, tick: Duration) -> Result<(), RuntimeError> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("micro-wasm-epoch".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(tick);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => return,
                }
            }
        })
        .map(|_| ())
        .map_err(|source| RuntimeError::Io {
            what: "starting the epoch thread".to_owned(),
            source,
        })
}

/// The content hash of a component's bytes, hex.
pub(crate) fn digest(bytes: &[u8]) -> String {
    let mut hex = String::with_capacity(64);
    for b in Sha256::digest(bytes) {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// Where the compiled form of `digest` lives for this engine's configuration: compiled code
/// is only valid for the same wasmtime version, settings and CPU features.
fn cache_path(engine: &Engine, dir: &Path, digest: &str) -> PathBuf {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    dir.join(format!("{digest}-{:016x}.cwasm", hasher.finish()))
}

/// Is this a core module rather than a component? (Both start with `\0asm`; the version
/// field tells them apart.)
fn is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}

/// Compiles `bytes` (a component or its WAT text), or loads the machine code cached from an
/// earlier compile. Blocking: call it on a blocking thread.
pub(crate) fn compile(
    engine: &Engine,
    cache_dir: &Path,
    digest: &str,
    bytes: &[u8],
) -> Result<Component, DeployError> {
    if is_core_module(bytes) {
        return Err(DeployError::CoreModule);
    }
    let cached = cache_path(engine, cache_dir, digest);
    if cached.exists() {
        // SAFETY: the file was written by `Component::serialize` of this node into its own
        // data dir (never taken from the network), and its name carries the engine's
        // compatibility hash; wasmtime also checks the header before using it.
        match unsafe { Component::deserialize_file(engine, &cached) } {
            Ok(component) => {
                debug!(path = %cached.display(), "loaded compiled component from the cache");
                return Ok(component);
            }
            Err(e) => {
                warn!(path = %cached.display(), error = %e, "cached component unusable; compiling again");
            }
        }
    }
    let started = std::time::Instant::now();
    let component = Component::new(engine, bytes).map_err(|e| {
        let text = format!("{e:#}");
        if text.contains("core module") || text.contains("expected a component") {
            DeployError::CoreModule
        } else {
            DeployError::Invalid(text)
        }
    })?;
    info!(
        digest,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "compiled component"
    );
    match component.serialize() {
        Ok(code) => {
            let tmp = cached.with_extension("tmp");
            let written = std::fs::write(&tmp, &code).and_then(|()| std::fs::rename(&tmp, &cached));
            if let Err(e) = written {
                warn!(path = %cached.display(), error = %e, "could not cache the compiled component");
            }
        }
        Err(e) => warn!(error = %e, "could not serialize the compiled component"),
    }
    Ok(component)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_modules_are_told_apart_from_components() {
        assert!(is_core_module(b"\0asm\x01\0\0\0"));
        assert!(!is_core_module(b"\0asm\x0d\0\x01\0"));
        assert!(!is_core_module(b"(component)"));
    }
}

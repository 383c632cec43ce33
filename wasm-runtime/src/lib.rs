//! Runs Micro Network services as sandboxed WebAssembly components on wasmtime.
//!
//! A service is a component of the `micro:service` world (`wit/service.wit`): it exports a
//! request handler and a message handler and imports only what the node gives it — calls to
//! other services, publish, append event, its own key-value store, config and log. WASI is
//! linked with nothing granted (no directories, environment or sockets) so ordinary
//! `wasm32-wasip2` builds run unchanged.
//!
//! [`Runtime`] holds one wasmtime `Engine` per node (created at the first deploy), with the
//! pooling allocator, fuel metering and an epoch deadline per call. Every call runs in a fresh
//! instance: a trap or a limit ends that call only. Compiled machine code is cached on disk by
//! content hash and engine configuration, and deployments are kept in the node's sled
//! database so they come back after a restart.
//!
//! This crate knows nothing of the network: the node supplies a [`Host`] for the calls that
//! leave the sandbox, and registers deployed services in its registry itself.

mod bindings;
mod check;
pub mod config;
mod engine;
pub mod error;
mod host;
pub mod kv;
pub mod logs;
pub mod manifest;
mod runtime;
mod service;
mod versions;

pub use config::{CallLimits, RuntimeConfig, StoreLimits};
pub use error::{DeployError, RuntimeError, ServiceError};
pub use host::Host;
pub use logs::{LogBook, LogLine};
pub use manifest::{Manifest, Source, Subscription};
pub use runtime::{Deployed, Runtime};
pub use service::{Call, Message, Reply, ServiceState, ServiceStatus};
pub use versions::version_matches;

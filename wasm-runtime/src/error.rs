//! What can go wrong: a call's error in Micro's model, and why a deploy was refused.

use serde::{Deserialize, Serialize};

/// Where the runtime's own errors say they came from.
pub const ERROR_ID: &str = "micro.wasm";

/// An error in Micro's error model: the outcome of a call that did not succeed, whether the
/// service answered it or the runtime ended the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code} from {id}: {detail}")]
pub struct ServiceError {
    /// Who produced it: the service's own id, or `micro.wasm` for the runtime.
    pub id: String,
    /// HTTP-style status.
    pub code: u16,
    /// What happened.
    pub detail: String,
}

impl ServiceError {
    /// An error produced by the runtime itself.
    pub fn runtime(code: u16, detail: impl Into<String>) -> Self {
        Self {
            id: ERROR_ID.to_owned(),
            code,
            detail: detail.into(),
        }
    }
}

/// Why a component could not be deployed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The manifest is invalid.
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    /// The component file is too large.
    #[error("the component is {size} bytes, more than the {limit} allowed")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not a valid component (or WAT text).
    #[error("not a valid WebAssembly component: {0}")]
    Invalid(String),
    /// A core module was given where a component is needed.
    #[error(
        "this is a core WebAssembly module, not a component: build for `wasm32-wasip2` (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule,
    /// The component imports something outside the `micro:service` world.
    #[error("the component imports `{import}`, which services may not use (allowed: {allowed})")]
    DisallowedImport {
        /// The import's name.
        import: String,
        /// What is allowed, for the message.
        allowed: String,
    },
    /// The component does not export the handler.
    #[error("the component does not export `{0}`: build it against the micro:service world")]
    MissingExport(String),
    /// The component failed to instantiate (its start code trapped, or its types mismatch).
    #[error("the component does not start: {0}")]
    Instantiate(String),
    /// The node runs the most services it may.
    #[error("this node runs the most wasm services it may ({0})")]
    TooMany(usize),
    /// Reading or writing the runtime's files failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The deployments database failed.
    #[error("deployments database: {0}")]
    Db(#[from] sled::Error),
}

/// Why a service's deployment could not be found or removed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// No such service.
    #[error("no wasm service named `{0}` runs on this node")]
    NotDeployed(String),
    /// The service runs, but not in the version asked for.
    #[error("`{name}` runs here in version(s) {running:?}, none is `{version}`")]
    NoSuchVersion {
        /// The service.
        name: String,
        /// The version asked for.
        version: String,
        /// The versions that run.
        running: Vec<String>,
    },
    /// The deployments database failed.
    #[error("deployments database: {0}")]
    Db(#[from] sled::Error),
    /// Setting up the engine failed.
    #[error("wasm engine: {0}")]
    Engine(String),
    /// Creating the runtime's directories failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
}

//! The node's error type: each variant says what happened and what to do about it.

use std::net::SocketAddr;
use std::path::PathBuf;

use micro_overlay::OverlayError;

/// Why a node could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The data dir could not be created or written.
    #[error("data dir {path} is not writable: {source}")]
    DataDirNotWritable {
        /// The data dir.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Another process holds the data dir's lock.
    #[error(
        "data dir {path} is in use by another micro-node{pid}; stop it, or give this one its own --data-dir",
        pid = pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    DataDirInUse {
        /// The data dir.
        path: PathBuf,
        /// The holder's pid, if it wrote one.
        pid: Option<u32>,
    },
    /// The identity key could not be loaded or created.
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    /// The control API address is not a loopback address.
    #[error("the control API listens on loopback only; {0} is not a loopback address")]
    ControlNotLoopback(SocketAddr),
    /// The control API could not bind its address.
    #[error(
        "cannot listen for the control API on {addr}: {source} (pass --control 127.0.0.1:0 for any free port)"
    )]
    ControlBind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The HTTP gateway could not bind its address.
    #[error(
        "cannot listen for the HTTP gateway on {addr}: {source} (pass --gateway 127.0.0.1:0 for any free port, or --no-gateway)"
    )]
    GatewayBind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file in the data dir could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The overlay could not start.
    #[error(transparent)]
    Overlay(#[from] OverlayError),
    /// The overlay did not report its listen addresses in time.
    #[error("the overlay did not bind its listen addresses within {0:?}")]
    ListenTimeout(std::time::Duration),
    /// The node's database (`<data dir>/db`) could not be opened.
    #[error("cannot open the database {path}: {source}")]
    Database {
        /// The database directory.
        path: PathBuf,
        /// sled's error.
        source: sled::Error,
    },
    /// The event store could not be opened or read at start.
    #[error("cannot start the event store: {0}")]
    EventStore(#[from] crate::events::EventsError),
    /// The wasm runtime could not start.
    #[error("cannot start the wasm runtime: {0}")]
    Wasm(#[from] micro_wasm_runtime::RuntimeError),
    /// The reputation store could not be opened.
    #[error(transparent)]
    Reputation(#[from] crate::reputation::ReputationError),
    /// The ledger could not be opened (genesis, database).
    #[error("cannot start the ledger: {0}")]
    Ledger(#[from] crate::ledger::NodeLedgerError),
    /// The metering books could not be opened.
    #[error(transparent)]
    Metering(#[from] crate::metering::MeteringError),
    /// The API token store could not be opened.
    #[error("cannot start the API tokens: {0}")]
    Tokens(#[from] crate::tokens::TokensError),
}

//! Simulations of the Micro network: many real nodes (the `micro-node` library, real libp2p)
//! in one process, driven through scenarios of load, churn, partitions and adversaries, and
//! measured.
//!
//! A [`Scenario`] (a TOML file, see [`scenario`]) says which network to start, what to do to
//! it and what it must achieve; [`run`] plays it and returns a [`Report`]; [`sweep`] plays
//! one scenario at several sizes and plots how each metric grows.
//!
//! With `[network] mode = "processes"` (or `run --processes`), [`process`] plays the same
//! scenario with each node a `micro-node` child process driven through its control API, for
//! networks of up to [`process::MAX_PROCESS_NODES`] nodes.

pub mod adversary;
pub mod backend;
pub mod budget;
pub mod cluster;
pub mod load;
pub mod metrics;
pub mod process;
pub mod record;
pub mod report;
pub mod run;
pub mod scenario;
pub mod sweep;
pub mod wallets;

pub use report::Report;
pub use run::run;
pub use scenario::{Scenario, ScenarioError};

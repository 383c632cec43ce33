//! A Micro Network node: wires the data dir, the identity, the overlay and the control API
//! together.
//!
//! [`RunningNode::start`] brings a node up from a [`NodeConfig`]; the `micro-node` binary and
//! the tests both use it. The control API's wire types are in [`api`].

pub mod api;
pub mod broker;
pub mod config;
mod control;
mod credential;
pub mod data_dir;
mod error;
pub mod events;
pub mod gateway;
pub mod identity;
pub mod ledger;
pub mod metering;
mod node;
pub mod registry;
pub mod reputation;
pub mod services;
pub mod source;
pub mod tokens;
pub mod wasm;

pub use config::{ControlConfig, NodeConfig, default_data_dir};
pub use credential::Credential;
pub use error::NodeError;
pub use node::RunningNode;

pub use micro_overlay as overlay;

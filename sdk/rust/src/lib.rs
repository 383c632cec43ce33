//! Write [Micro Network](https://github.com/micro/network) services in Rust.
//!
//! A service is a WebAssembly component that a `micro-node` runs. This crate hides the
//! component plumbing: a service author writes plain functions that take and return
//! serde types, routes endpoints to them, and calls [`export!`] once.
//!
//! ```no_run
//! use micro_sdk::{Error, Request, Response, Router, Service};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Hello {
//!     name: String,
//! }
//!
//! #[derive(Serialize)]
//! struct Reply {
//!     message: String,
//! }
//!
//! fn hello(req: Hello) -> Result<Reply, Error> {
//!     micro_sdk::info!("greeting {}", req.name);
//!     Ok(Reply { message: format!("Hello, {}!", req.name) })
//! }
//!
//! struct Greeter;
//!
//! impl Service for Greeter {
//!     fn handle(request: Request) -> Result<Response, Error> {
//!         Router::new().json("Say.Hello", hello).handle(request)
//!     }
//! }
//!
//! micro_sdk::export!(Greeter);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` (the crate must be a `cdylib`)
//! and deploy the `.wasm` with its `micro.toml` manifest.
//!
//! What the node offers a service is in [`host`] (calls to other services, publish, events,
//! config), [`store`] (the service's own key-value data) and [`log`]. These functions only
//! work inside a node; called in a native test they panic.
//!
//! This crate is for writing services, not for running them: the node side lives in the
//! `micro-wasm-runtime` crate of the main workspace.

#![warn(missing_docs)]

mod router;
mod service;
mod types;

pub mod host;
pub mod log;
pub mod store;

pub use host::{append_event, append_event_bytes, call, call_json, config, publish, publish_bytes};
pub use router::Router;
pub use service::Service;
pub use types::{Error, Message, Request, Response, Source};

/// The bindings that `wit-bindgen` generates from `wit/service.wit`. Not part of the API:
/// use the wrappers in this crate instead.
#[doc(hidden)]
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "service",
        export_macro_name: "__export_bindings",
        pub_export_macro: true,
        default_bindings_module: "micro_sdk::bindings",
    });
}

/// Items that [`export!`] expands to. Not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::bindings::exports::micro::service::handler::Guest;
    pub use crate::bindings::micro::service::types as wit;
    pub use crate::service::{handle, on_message};
}

/// Makes a [`Service`] implementation the component's exported `handler`.
///
/// Call it exactly once per service crate, at the top level: `micro_sdk::export!(MyService);`.
#[macro_export]
macro_rules! export {
    ($service:ty) => {
        const _: () = {
            struct MicroSdkExport;

            impl $crate::__private::Guest for MicroSdkExport {
                fn handle(
                    request: $crate::__private::wit::Request,
                ) -> ::core::result::Result<
                    $crate::__private::wit::Response,
                    $crate::__private::wit::Error,
                > {
                    $crate::__private::handle::<$service>(request)
                }

                fn on_message(
                    message: $crate::__private::wit::Message,
                ) -> ::core::result::Result<(), $crate::__private::wit::Error> {
                    $crate::__private::on_message::<$service>(message)
                }
            }

            $crate::bindings::__export_bindings!(
                MicroSdkExport with_types_in $crate::bindings
            );
        };
    };
}

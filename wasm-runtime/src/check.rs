//! What a component may import and must export: the `micro:service` world and the parts of
//! WASI that ordinary `wasm32-wasip2` builds link against (which see nothing of the host).

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::DeployError;

/// Interface prefixes a service may import. Sockets, HTTP and anything else are refused.
const ALLOWED_IMPORTS: &[&str] = &[
    "micro:service/",
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:cli/",
    "wasi:filesystem/",
];

/// The export every service has.
pub(crate) const HANDLER_EXPORT: &str = "micro:service/handler@0.1.0";

/// Refuses a component that imports anything outside the world or lacks the handler.
pub(crate) fn check(engine: &Engine, component: &Component) -> Result<(), DeployError> {
    let ty = component.component_type();
    for (name, _) in ty.imports(engine) {
        if !ALLOWED_IMPORTS.iter().any(|p| name.starts_with(p)) {
            return Err(DeployError::DisallowedImport {
                import: name.to_owned(),
                allowed: "micro:service/{host,store,types}, wasi:io, wasi:clocks, wasi:random, \
                          wasi:cli, wasi:filesystem (with no directories)"
                    .to_owned(),
            });
        }
    }
    let handler = HANDLER_EXPORT.split('@').next().unwrap_or(HANDLER_EXPORT);
    if !ty
        .exports(engine)
        .any(|(name, _)| name.split('@').next() == Some(handler))
    {
        return Err(DeployError::MissingExport(HANDLER_EXPORT.to_owned()));
    }
    Ok(())
}

//! Answering RPCs for the services this node serves.

use std::time::Duration;

use micro_overlay::rpc::error_response;
use micro_overlay::rpc_proto::{RpcRequest, RpcResponse};
use micro_overlay::{PeerId, RpcResponder};
use std::sync::atomic::Ordering;
use tracing::{Instrument, debug, info_span};

use super::{BUILTIN_SERVICE, Backend, Services, backend};
use crate::metering::{Admit, CHARGED_HEADER};
use crate::registry::{Endpoint, ServiceName};

/// Where dispatch errors say they came from.
const ERROR_ID: &str = "micro.node.rpc";

/// Text of the 503 a node answers for a service it does not serve; clients recognise it and
/// forget the stale provider.
pub(super) const NOT_SERVED: &str = "is not served by this node";

/// The built-in `node` service's endpoints.
pub(super) fn builtin_endpoints() -> Vec<Endpoint> {
    let endpoint = |name: &str, description: &str| Endpoint {
        name: name.parse().expect("built-in endpoint names are valid"),
        description: description.to_owned(),
        request_schema: None,
        response_schema: None,
    };
    vec![
        endpoint("Node.Info", "this node's identity, version and services"),
        endpoint("Node.Ping", "echoes the request body"),
        endpoint(
            "Node.Deploy",
            "deploys a source on this node, if it allows the caller",
        ),
        endpoint("Node.DeployStatus", "how a Node.Deploy job stands"),
    ]
}

impl Services {
    /// Handles one inbound RPC on its own task, within the node's concurrency limit.
    pub fn spawn_inbound(&self, caller: PeerId, request: RpcRequest, responder: RpcResponder) {
        let Ok(permit) = self.0.calls_in_flight.clone().try_acquire_owned() else {
            responder.respond(error_response(
                &request.id,
                ERROR_ID,
                503,
                "node busy: too many calls in progress",
            ));
            return;
        };
        let services = self.clone();
        let span = info_span!("rpc", peer = %caller, service = %request.service, endpoint = %request.endpoint, request_id = %request.id);
        tokio::spawn(
            async move {
                let response = services.dispatch(caller, request).await;
                drop(permit);
                responder.respond(response);
            }
            .instrument(span),
        );
    }

    /// Answers `request` from a local service: 503 if this node does not serve it (the
    /// caller may try another provider), 404 for an unknown endpoint.
    pub(crate) async fn dispatch(&self, caller: PeerId, request: RpcRequest) -> RpcResponse {
        let not_here = || {
            error_response(
                &request.id,
                ERROR_ID,
                503,
                format!("service `{}` {NOT_SERVED}", request.service),
            )
        };
        let Ok(name) = request.service.parse::<ServiceName>() else {
            return error_response(
                &request.id,
                ERROR_ID,
                400,
                format!("`{}` is not a service name", request.service),
            );
        };
        let Some(served) = self.served(&name) else {
            return not_here();
        };
        let pin = Some(request.version.as_str()).filter(|v| !v.is_empty());
        if let Some(pin) = pin
            && !matches!(served.spec.backend, Backend::Wasm { .. })
            && !micro_wasm_runtime::version_matches(&served.spec.version, pin)
        {
            // Other backends run one version; a wasm runtime answers for its own versions.
            return error_response(
                &request.id,
                ERROR_ID,
                503,
                format!(
                    "version `{pin}` of service `{name}` does not run on this node (it runs {})",
                    served.spec.version
                ),
            );
        }
        // The record lists the current version's endpoints; an older version pinned by the
        // call answers for its own (its guest says 404 for one it lacks).
        let pinned_older =
            pin.is_some_and(|p| !micro_wasm_runtime::version_matches(&served.spec.version, p));
        let endpoints = &served.spec.endpoints;
        if !pinned_older
            && !endpoints.is_empty()
            && !endpoints
                .iter()
                .any(|e| e.name.as_str() == request.endpoint)
        {
            served.errors.fetch_add(1, Ordering::Relaxed);
            return error_response(
                &request.id,
                ERROR_ID,
                404,
                format!("service `{name}` has no endpoint `{}`", request.endpoint),
            );
        }
        let timeout = match request.timeout_ms {
            0 => self.0.config.default_timeout,
            ms => Duration::from_millis(ms),
        };
        let price = served.spec.price_per_call;
        let metering = self
            .0
            .metering
            .get()
            .filter(|_| price > 0 && caller != self.0.overlay.local_peer_id());
        let admitted =
            match metering.map(|m| m.admit(&caller, name.as_str(), price, &request.receipt)) {
                None => None,
                Some(Ok(admit)) => Some(admit),
                Some(Err(refusal)) => {
                    served.refused.fetch_add(1, Ordering::Relaxed);
                    debug!(%caller, code = refusal.code, detail = %refusal.detail, "call refused");
                    return error_response(&request.id, ERROR_ID, refusal.code, refusal.detail);
                }
            };
        let mut response = match &served.spec.backend {
            Backend::Builtin => self.builtin(caller, &request).await,
            Backend::Wasm { .. } => self.wasm(&name, pin, &request, timeout).await,
            Backend::Http { url } => {
                backend::call(
                    &self.0.http,
                    url,
                    &request,
                    timeout,
                    self.0.config.max_response_bytes,
                )
                .await
            }
        };
        served.calls.fetch_add(1, Ordering::Relaxed);
        if !(200..300).contains(&response.status) {
            served.errors.fetch_add(1, Ordering::Relaxed);
        } else if let (Some(metering), Some(admit)) = (metering, admitted) {
            // Only successful calls are billed.
            let charged = match admit {
                Admit::Free => {
                    served.free_calls.fetch_add(1, Ordering::Relaxed);
                    0
                }
                Admit::Paid { price } => {
                    metering.bill(&caller, price);
                    served.paid_calls.fetch_add(1, Ordering::Relaxed);
                    served.earned.fetch_add(price, Ordering::Relaxed);
                    price
                }
            };
            response
                .headers
                .insert(CHARGED_HEADER.to_owned(), charged.to_string());
        }
        debug!(%caller, status = response.status, "answered");
        response
    }

    /// Answers from the wasm runtime.
    async fn wasm(
        &self,
        name: &ServiceName,
        pin: Option<&str>,
        request: &RpcRequest,
        timeout: Duration,
    ) -> RpcResponse {
        let Some(runtime) = self.0.wasm.get() else {
            return error_response(&request.id, ERROR_ID, 503, "this node runs no wasm runtime");
        };
        let call = micro_wasm_runtime::Call {
            endpoint: request.endpoint.clone(),
            headers: request
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            content_type: if request.content_type.is_empty() {
                "application/json".to_owned()
            } else {
                request.content_type.clone()
            },
            body: request.body.clone(),
            timeout: Some(timeout),
        };
        match runtime.call(name.as_str(), pin, call).await {
            Ok(reply) => RpcResponse {
                id: request.id.clone(),
                status: 200,
                body: reply.body,
                content_type: reply.content_type,
                headers: reply.headers.into_iter().collect(),
                ..Default::default()
            },
            Err(e) => error_response(&request.id, &e.id, e.code, e.detail),
        }
    }

    async fn builtin(&self, caller: PeerId, request: &RpcRequest) -> RpcResponse {
        let ok = |body: Vec<u8>, content_type: &str| RpcResponse {
            id: request.id.clone(),
            status: 200,
            body,
            content_type: content_type.to_owned(),
            ..Default::default()
        };
        match request.endpoint.as_str() {
            "Node.Ping" => ok(request.body.clone(), &request.content_type),
            "Node.Deploy" | "Node.DeployStatus" => {
                let Some(wasm) = self.0.deployer.get().and_then(|w| w.upgrade()) else {
                    return error_response(
                        &request.id,
                        ERROR_ID,
                        503,
                        "this node takes no deploys",
                    );
                };
                let answer = if request.endpoint == "Node.Deploy" {
                    wasm.accept_remote(caller, &request.body)
                        .map(|job| crate::wasm::job_body(&job))
                } else {
                    wasm.remote_job(&request.body)
                        .map(|state| serde_json::to_vec(&state).unwrap_or_default())
                };
                match answer {
                    Ok(body) => ok(body, "application/json"),
                    Err((code, detail)) => error_response(&request.id, ERROR_ID, code, detail),
                }
            }
            "Node.Info" => {
                let info = serde_json::json!({
                    "peer_id": self.0.overlay.local_peer_id().to_string(),
                    "version": env!("CARGO_PKG_VERSION"),
                    "services": self.local().iter().map(|s| s.spec.name.to_string()).collect::<Vec<_>>(),
                });
                ok(info.to_string().into_bytes(), "application/json")
            }
            other => error_response(
                &request.id,
                ERROR_ID,
                404,
                format!("service `{BUILTIN_SERVICE}` has no endpoint `{other}`"),
            ),
        }
    }
}

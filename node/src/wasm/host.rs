//! What the node does for its wasm services: their calls go through the service client,
//! their publishes through the broker, their events through the events layer.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use micro_wasm_runtime::{Host, ServiceError};

use crate::broker::{Broker, TopicName};
use crate::events::Events;
use crate::registry::{EndpointName, ServiceRef};
use crate::services::{CallRequest, WeakServices};

/// Where errors of the host API say they came from.
const ERROR_ID: &str = "micro.node.wasm";

/// The node's side of the host API. Holds the service layer weakly: the service layer owns
/// the runtime, which owns this.
pub(crate) struct NodeHost {
    pub(crate) services: WeakServices,
    pub(crate) broker: Broker,
    pub(crate) events: Events,
}

fn bad_request(detail: String) -> ServiceError {
    ServiceError {
        id: ERROR_ID.to_owned(),
        code: 400,
        detail,
    }
}

fn unavailable() -> ServiceError {
    ServiceError {
        id: ERROR_ID.to_owned(),
        code: 503,
        detail: "the node is shutting down".to_owned(),
    }
}

impl Host for NodeHost {
    fn call(
        &self,
        from: &str,
        service: String,
        endpoint: String,
        body: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, ServiceError>> {
        let services = self.services.upgrade();
        let from = from.to_owned();
        async move {
            let services = services.ok_or_else(unavailable)?;
            let service: ServiceRef = service.parse().map_err(|e| bad_request(format!("{e}")))?;
            let endpoint: EndpointName =
                endpoint.parse().map_err(|e| bad_request(format!("{e}")))?;
            let mut headers = BTreeMap::new();
            headers.insert("micro-from-service".to_owned(), from);
            let outcome = services
                .call(CallRequest {
                    service: service.name,
                    version: service.version,
                    endpoint,
                    body,
                    content_type: "application/json".to_owned(),
                    headers,
                    timeout_ms: Some(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX)),
                    node: None,
                })
                .await
                .map_err(|e| ServiceError {
                    id: e.id,
                    code: e.code,
                    detail: e.detail,
                })?;
            Ok(outcome.body)
        }
        .boxed()
    }

    fn publish(
        &self,
        from: &str,
        topic: String,
        body: Vec<u8>,
    ) -> BoxFuture<'static, Result<(), ServiceError>> {
        let broker = self.broker.clone();
        let from = from.to_owned();
        async move {
            let topic: TopicName = topic.parse().map_err(|e| bad_request(format!("{e}")))?;
            let headers = BTreeMap::from([("micro-from-service".to_owned(), from)]);
            broker
                .publish(topic, body, "application/json".to_owned(), headers)
                .await
                .map(|_| ())
                .map_err(|e| bad_request(e.to_string()))
        }
        .boxed()
    }

    fn append_event(
        &self,
        from: &str,
        topic: String,
        body: Vec<u8>,
    ) -> BoxFuture<'static, Result<u64, ServiceError>> {
        let events = self.events.clone();
        let from = from.to_owned();
        async move {
            let topic: TopicName = topic.parse().map_err(|e| bad_request(format!("{e}")))?;
            let headers = BTreeMap::from([("micro-from-service".to_owned(), from)]);
            events
                .publish(topic, body, "application/json".to_owned(), headers)
                .await
                .map(|published| published.offset)
                .map_err(|e| ServiceError {
                    id: ERROR_ID.to_owned(),
                    code: 500,
                    detail: e.to_string(),
                })
        }
        .boxed()
    }
}

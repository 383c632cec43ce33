//! What the node does for a service: call other services, publish, append events, read config.
//!
//! Every function here is a call into the node; each failure comes back as an [`Error`] with
//! the node's (or the callee's) id and code, ready to return from a handler with `?`.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::micro::service::host;
use crate::types::{Error, decode, encode};

/// Calls `endpoint` of `service` anywhere in the network with a raw `body` and returns the
/// response body. `timeout_ms` = 0 means the node's default; the call never outlives the
/// current request's own deadline. A callee's error comes back unchanged.
pub fn call(service: &str, endpoint: &str, body: &[u8], timeout_ms: u32) -> Result<Vec<u8>, Error> {
    host::call(service, endpoint, body, timeout_ms).map_err(Error::from)
}

/// Calls `endpoint` of `service` with `request` as JSON and decodes the JSON response, with the
/// node's default timeout. A callee's error comes back unchanged; a response that does not
/// decode as `Resp` is a 500 error.
pub fn call_json<Req, Resp>(service: &str, endpoint: &str, request: &Req) -> Result<Resp, Error>
where
    Req: Serialize + ?Sized,
    Resp: DeserializeOwned,
{
    let body = call(service, endpoint, &encode(request, "request")?, 0)?;
    decode(&body, &format!("response from {service} {endpoint}"))
        .map_err(|e| Error::internal(e.detail))
}

/// Publishes `value` as JSON on the broker topic `topic`.
pub fn publish<T: Serialize + ?Sized>(topic: &str, value: &T) -> Result<(), Error> {
    publish_bytes(topic, &encode(value, "message")?)
}

/// Publishes a raw `body` on the broker topic `topic`.
pub fn publish_bytes(topic: &str, body: &[u8]) -> Result<(), Error> {
    host::publish(topic, body).map_err(Error::from)
}

/// Appends `value` as JSON to the event stream `topic`; returns its offset in this node's log.
pub fn append_event<T: Serialize + ?Sized>(topic: &str, value: &T) -> Result<u64, Error> {
    append_event_bytes(topic, &encode(value, "event")?)
}

/// Appends a raw `body` to the event stream `topic`; returns its offset in this node's log.
pub fn append_event_bytes(topic: &str, body: &[u8]) -> Result<u64, Error> {
    host::append_event(topic, body).map_err(Error::from)
}

/// The value of `key` in the service's configuration (its manifest's `[config]` table).
pub fn config(key: &str) -> Option<String> {
    host::config(key)
}

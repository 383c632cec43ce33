//! The values a service receives and returns: [`Request`], [`Response`], [`Message`], [`Error`].

use std::fmt;
use std::sync::OnceLock;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::micro::service::types as wit;

/// The MIME type of JSON bodies.
const JSON: &str = "application/json";

/// An error in Micro's error model: who failed, an HTTP-style status code, and a detail for a
/// person. A handler returns it to its caller; host calls return it when they fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Where the error comes from, e.g. `greeter` or `micro.node.rpc`.
    pub id: String,
    /// An HTTP status: 400 bad request, 404 not found, 408 timeout, 500 internal, ...
    pub code: u16,
    /// What went wrong, for a person.
    pub detail: String,
}

impl Error {
    /// An error with `code` and `detail`, attributed to this service (its `name` config value,
    /// or `service` if the node does not provide one).
    pub fn new(code: u16, detail: impl Into<String>) -> Self {
        Self {
            id: service_name(),
            code,
            detail: detail.into(),
        }
    }

    /// A 400: the caller sent something this service cannot use.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(400, detail)
    }

    /// A 404: the thing asked for does not exist.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, detail)
    }

    /// A 500: this service failed.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(500, detail)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.id, self.code, self.detail)
    }
}

impl std::error::Error for Error {}

impl From<wit::Error> for Error {
    fn from(e: wit::Error) -> Self {
        Self {
            id: e.id,
            code: e.code,
            detail: e.detail,
        }
    }
}

impl From<Error> for wit::Error {
    fn from(e: Error) -> Self {
        Self {
            id: e.id,
            code: e.code,
            detail: e.detail,
        }
    }
}

/// This service's name, read once from the node's config, for [`Error::id`].
fn service_name() -> String {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| configured_name().unwrap_or_else(|| "service".to_owned()))
        .clone()
}

/// The `name` config value, if the node provides one.
#[cfg(target_family = "wasm")]
fn configured_name() -> Option<String> {
    crate::host::config("name")
}

/// Outside a node (native unit tests) there is no host to ask.
#[cfg(not(target_family = "wasm"))]
fn configured_name() -> Option<String> {
    None
}

/// Decodes a JSON body; what it is for goes into the 400 error if it is not valid. An empty
/// body reads as `{}` so that endpoints without parameters can be called without one.
pub(crate) fn decode<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, Error> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| Error::bad_request(format!("invalid JSON in {what}: {e}")))
}

/// Encodes a value as JSON; a value serde cannot encode is this service's bug, so a 500.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T, what: &str) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value)
        .map_err(|e| Error::internal(format!("cannot encode {what} as JSON: {e}")))
}

/// One call to the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    endpoint: String,
    headers: Vec<(String, String)>,
    content_type: String,
    body: Vec<u8>,
}

impl Request {
    /// A JSON request to `endpoint` without headers, e.g. for a service's own unit tests.
    pub fn new(endpoint: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        Self {
            endpoint: endpoint.into(),
            headers: Vec::new(),
            content_type: JSON.to_owned(),
            body: body.into(),
        }
    }

    /// The endpoint called, e.g. `Say.Hello`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The first header called `name` (compared ignoring ASCII case), if the caller sent one.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All headers, in the order the caller sent them.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The MIME type of the body (`application/json` unless the caller said otherwise).
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// The raw body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Takes the raw body out of the request.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// The body decoded from JSON; a 400 error naming the endpoint if it does not decode.
    /// An empty body reads as `{}`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        decode(&self.body, &format!("request to {}", self.endpoint))
    }
}

impl From<wit::Request> for Request {
    fn from(r: wit::Request) -> Self {
        Self {
            endpoint: r.endpoint,
            headers: r.headers,
            content_type: r.content_type,
            body: r.body,
        }
    }
}

/// A successful answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    content_type: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    /// A JSON response holding `value`; a 500 error if serde cannot encode it.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, Error> {
        Ok(Self::bytes(JSON, encode(value, "response")?))
    }

    /// A response with any body and its MIME type.
    pub fn bytes(content_type: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        Self {
            content_type: content_type.into(),
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// Adds a metadata header for the caller.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The MIME type of the body.
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// The headers added with [`Response::with_header`].
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

impl From<Response> for wit::Response {
    fn from(r: Response) -> Self {
        Self {
            content_type: r.content_type,
            headers: r.headers,
            body: r.body,
        }
    }
}

/// Where a [`Message`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The broker: best-effort publish/subscribe.
    Broker,
    /// An event stream: ordered, stored, replayable.
    Events,
}

/// A message on a topic the service subscribed to in its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    source: Source,
    topic: String,
    id: String,
    publisher: String,
    content_type: String,
    body: Vec<u8>,
}

impl Message {
    /// Broker or event stream.
    pub fn source(&self) -> Source {
        self.source
    }

    /// The topic it was published on.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The message's unique id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The publishing node's peer id.
    pub fn publisher(&self) -> &str {
        &self.publisher
    }

    /// The MIME type of the body.
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// The raw payload.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The payload decoded from JSON; a 400 error naming the topic if it does not decode.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        decode(&self.body, &format!("message on {}", self.topic))
    }
}

impl From<wit::Message> for Message {
    fn from(m: wit::Message) -> Self {
        Self {
            source: match m.source {
                wit::Source::Broker => Source::Broker,
                wit::Source::Events => Source::Events,
            },
            topic: m.topic,
            id: m.id,
            publisher: m.publisher,
            content_type: m.content_type,
            body: m.body,
        }
    }
}

//! [`Router`]: dispatches a request to the function registered for its endpoint.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::types::{Error, Request, Response};

/// A boxed endpoint handler.
type Route = Box<dyn Fn(Request) -> Result<Response, Error>>;

/// Maps endpoint names to handler functions.
///
/// Built per request; building one is a few allocations, far cheaper than the call itself.
///
/// ```
/// # use micro_sdk::{Error, Request, Response, Router};
/// # fn hello(name: String) -> Result<String, Error> { Ok(name) }
/// # fn handle(request: Request) -> Result<Response, Error> {
/// Router::new()
///     .json("Say.Hello", hello)
///     .route("Say.Raw", |req| Ok(Response::bytes("text/plain", req.into_body())))
///     .handle(request)
/// # }
/// ```
#[derive(Default)]
pub struct Router {
    routes: Vec<(String, Route)>,
}

impl Router {
    /// A router with no endpoints.
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes `endpoint` to `f`, which takes the request body decoded from JSON and returns a
    /// value sent back as JSON. A body that does not decode is a 400 error.
    pub fn json<Req, Resp, F>(self, endpoint: impl Into<String>, f: F) -> Self
    where
        Req: DeserializeOwned,
        Resp: Serialize,
        F: Fn(Req) -> Result<Resp, Error> + 'static,
    {
        self.route(endpoint, move |request| {
            Response::json(&f(request.json()?)?)
        })
    }

    /// Routes `endpoint` to `f`, which gets the whole [`Request`] and builds the [`Response`].
    pub fn route<F>(mut self, endpoint: impl Into<String>, f: F) -> Self
    where
        F: Fn(Request) -> Result<Response, Error> + 'static,
    {
        self.routes.push((endpoint.into(), Box::new(f)));
        self
    }

    /// Calls the function routed to the request's endpoint; a 404 error naming the endpoint if
    /// there is none.
    pub fn handle(&self, request: Request) -> Result<Response, Error> {
        match self
            .routes
            .iter()
            .find(|(name, _)| name == request.endpoint())
        {
            Some((_, f)) => f(request),
            None => Err(Error::not_found(format!(
                "unknown endpoint {}",
                request.endpoint()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Deserialize)]
    struct Hello {
        name: String,
    }

    #[derive(Serialize)]
    struct Reply {
        message: String,
    }

    fn hello(req: Hello) -> Result<Reply, Error> {
        Ok(Reply {
            message: format!("Hello, {}!", req.name),
        })
    }

    fn router() -> Router {
        Router::new().json("Say.Hello", hello)
    }

    #[test]
    fn routes_json_in_and_out() {
        let response = router()
            .handle(Request::new("Say.Hello", r#"{"name":"Ada"}"#))
            .expect("Say.Hello is routed");
        assert_eq!(response.content_type(), "application/json");
        assert_eq!(response.body(), br#"{"message":"Hello, Ada!"}"#);
    }

    #[test]
    fn unknown_endpoint_is_404_naming_it() {
        let err = router().handle(Request::new("Say.Bye", "{}")).unwrap_err();
        assert_eq!(err.code, 404);
        assert!(err.detail.contains("Say.Bye"), "{err}");
    }

    #[test]
    fn bad_json_is_400() {
        let err = router()
            .handle(Request::new("Say.Hello", "{nope"))
            .unwrap_err();
        assert_eq!(err.code, 400);
        assert_eq!(err.id, "service");
    }

    #[test]
    fn empty_body_reads_as_empty_object() {
        #[derive(Deserialize)]
        struct Nothing {}
        let request = Request::new("X", "");
        assert!(request.json::<Nothing>().is_ok());
    }
}

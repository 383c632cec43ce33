//! The [`Service`] trait and the glue that connects it to the component's export.

use crate::bindings::micro::service::types as wit;
use crate::types::{Error, Message, Request, Response};

/// What a service does. Implement it on a unit struct and pass that to [`crate::export!`].
///
/// Both functions are called once per request or message, possibly on a fresh instance: keep
/// state in [`crate::store`], not in statics.
pub trait Service {
    /// Answers one call. Use a [`crate::Router`] to dispatch on the endpoint.
    fn handle(request: Request) -> Result<Response, Error>;

    /// Takes one message from a subscription declared in the manifest. The default ignores it.
    fn on_message(message: Message) -> Result<(), Error> {
        let _ = message;
        Ok(())
    }
}

/// Runs [`Service::handle`] on a request from the node.
#[doc(hidden)]
pub fn handle<S: Service>(request: wit::Request) -> Result<wit::Response, wit::Error> {
    S::handle(request.into())
        .map(Into::into)
        .map_err(Into::into)
}

/// Runs [`Service::on_message`] on a message from the node.
#[doc(hidden)]
pub fn on_message<S: Service>(message: wit::Message) -> Result<(), wit::Error> {
    S::on_message(message.into()).map_err(Into::into)
}

//! Greets people: `Say.Hello` `{"name":"Ada"}` → `{"message":"Hello, Ada!"}`.

use micro_sdk::{Error, Request, Response, Router, Service, config};
use serde::{Deserialize, Serialize};

/// The body of `Say.Hello`.
#[derive(Deserialize)]
struct Hello {
    name: String,
}

/// The answer to `Say.Hello`.
#[derive(Serialize)]
struct Greeting {
    message: String,
}

/// Greets `name` with the manifest's `greeting` (default "Hello").
fn hello(req: Hello) -> Result<Greeting, Error> {
    if req.name.is_empty() {
        return Err(Error::bad_request("name is empty"));
    }
    let greeting = config("greeting").unwrap_or_else(|| "Hello".to_owned());
    Ok(Greeting {
        message: format!("{greeting}, {}!", req.name),
    })
}

struct Greeter;

impl Service for Greeter {
    fn handle(request: Request) -> Result<Response, Error> {
        Router::new().json("Say.Hello", hello).handle(request)
    }
}

micro_sdk::export!(Greeter);

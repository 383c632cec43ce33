//! Calls two other services: `Aggregate.Hello` `{"name":"Ada"}` asks `greeter` for a greeting
//! and `counter` to count the name, and returns both. A callee's error is returned as it is.

use micro_sdk::{Error, Request, Response, Router, Service, call_json};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The body of `Aggregate.Hello`.
#[derive(Deserialize)]
struct Hello {
    name: String,
}

/// What `greeter`'s `Say.Hello` returns.
#[derive(Deserialize)]
struct Greeting {
    message: String,
}

/// What `counter`'s `Counter.Incr` returns.
#[derive(Deserialize)]
struct Count {
    value: u64,
}

/// The answer to `Aggregate.Hello`.
#[derive(Serialize)]
struct Summary {
    greeting: String,
    count: u64,
}

fn hello(req: Hello) -> Result<Summary, Error> {
    let greeting: Greeting = call_json("greeter", "Say.Hello", &json!({ "name": req.name }))?;
    let count: Count = call_json("counter", "Counter.Incr", &json!({ "key": req.name }))?;
    Ok(Summary {
        greeting: greeting.message,
        count: count.value,
    })
}

struct Aggregator;

impl Service for Aggregator {
    fn handle(request: Request) -> Result<Response, Error> {
        Router::new().json("Aggregate.Hello", hello).handle(request)
    }
}

micro_sdk::export!(Aggregator);

//! Named counters kept in the service's store, one key `count/<name>` each.
//!
//! `Counter.Incr` reads, adds and writes back. The store has no atomic increment, so the
//! manifest sets `max_concurrent = 1`: two increments at once could otherwise lose one.

use micro_sdk::{Error, Request, Response, Router, Service, store};
use serde::{Deserialize, Serialize};

/// Where the counters live in the store.
const PREFIX: &str = "count/";

/// The body of `Counter.Incr`: add `by` (default 1) to counter `key`.
#[derive(Deserialize)]
struct Incr {
    key: String,
    #[serde(default = "one")]
    by: u64,
}

fn one() -> u64 {
    1
}

/// The body of `Counter.Get`.
#[derive(Deserialize)]
struct Get {
    key: String,
}

/// The body of `Counter.List`: nothing.
#[derive(Deserialize)]
struct List {}

/// A counter's value.
#[derive(Serialize)]
struct Count {
    key: String,
    value: u64,
}

/// The counters that exist.
#[derive(Serialize)]
struct Keys {
    keys: Vec<String>,
}

/// The value of counter `key`, 0 if it was never incremented.
fn value(key: &str) -> Result<u64, Error> {
    Ok(store::get_json(&format!("{PREFIX}{key}"))?.unwrap_or(0))
}

fn incr(req: Incr) -> Result<Count, Error> {
    let value = value(&req.key)?
        .checked_add(req.by)
        .ok_or_else(|| Error::bad_request(format!("counter {} would overflow", req.key)))?;
    store::set_json(&format!("{PREFIX}{}", req.key), &value)?;
    Ok(Count {
        key: req.key,
        value,
    })
}

fn get(req: Get) -> Result<Count, Error> {
    Ok(Count {
        value: value(&req.key)?,
        key: req.key,
    })
}

fn list(_: List) -> Result<Keys, Error> {
    let keys = store::keys(PREFIX, 100)?
        .into_iter()
        .filter_map(|k| k.strip_prefix(PREFIX).map(str::to_owned))
        .collect();
    Ok(Keys { keys })
}

struct Counter;

impl Service for Counter {
    fn handle(request: Request) -> Result<Response, Error> {
        Router::new()
            .json("Counter.Incr", incr)
            .json("Counter.Get", get)
            .json("Counter.List", list)
            .handle(request)
    }
}

micro_sdk::export!(Counter);

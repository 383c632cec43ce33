//! Keeps an audit trail: every message on the broker topic `orders` (see `micro.toml`) is
//! appended to the event stream `audit` and counted. `Audit.Stats` returns the count.

use micro_sdk::{Error, Message, Request, Response, Router, Service, append_event, store};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The store key of the number of messages seen.
const SEEN: &str = "seen";

/// The body of `Audit.Stats`: nothing.
#[derive(Deserialize)]
struct StatsRequest {}

/// The answer to `Audit.Stats`.
#[derive(Serialize)]
struct Stats {
    seen: u64,
}

fn seen() -> Result<u64, Error> {
    Ok(store::get_json(SEEN)?.unwrap_or(0))
}

fn stats(_: StatsRequest) -> Result<Stats, Error> {
    Ok(Stats { seen: seen()? })
}

struct Audit;

impl Service for Audit {
    fn handle(request: Request) -> Result<Response, Error> {
        Router::new().json("Audit.Stats", stats).handle(request)
    }

    fn on_message(message: Message) -> Result<(), Error> {
        let entry = json!({
            "topic": message.topic(),
            "id": message.id(),
            "publisher": message.publisher(),
            "body": String::from_utf8_lossy(message.body()),
        });
        append_event("audit", &entry)?;
        let seen = seen()?
            .checked_add(1)
            .ok_or_else(|| Error::internal("seen counter overflowed"))?;
        store::set_json(SEEN, &seen)
    }
}

micro_sdk::export!(Audit);

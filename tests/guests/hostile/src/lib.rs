//! A guest that misbehaves on request, for the runtime's tests: each endpoint tries one thing
//! a sandbox must survive (spinning, eating memory, overflowing the stack, panicking, huge
//! responses) or must hide (files, environment), plus a few well-behaved ones to compare.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use micro_sdk::{Error, Request, Response, Router, Service, store};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The body of `Big`.
#[derive(Deserialize)]
struct Big {
    bytes: usize,
}

/// The body of `Sleep`.
#[derive(Deserialize)]
struct Sleep {
    ms: u64,
}

/// The answer to `Sleep`.
#[derive(Serialize)]
struct Slept {
    slept_ms: u64,
}

/// The body of `Store.Set`.
#[derive(Deserialize)]
struct Set {
    key: String,
    value: Value,
}

/// The body of `Store.Get`.
#[derive(Deserialize)]
struct Get {
    key: String,
}

/// The answer to `Store.Get`.
#[derive(Serialize)]
struct Stored {
    key: String,
    value: Option<Value>,
}

/// Spins until the runtime interrupts it.
fn spin(_: Value) -> Result<Value, Error> {
    let mut i: u64 = 0;
    loop {
        i = black_box(i.wrapping_add(1));
    }
}

/// Allocates 1 MiB chunks and keeps them all, until allocation fails (which aborts).
fn bomb(_: Value) -> Result<Value, Error> {
    let mut kept: Vec<Vec<u8>> = Vec::new();
    loop {
        kept.push(vec![1u8; 1 << 20]);
        black_box(&mut kept);
    }
}

/// Recurses without end. The result goes through `black_box` after each call, so the call is
/// not in tail position and cannot become a loop; frames are small, so the engine's call stack
/// overflows before the guest's own stack in linear memory does. The base case is never
/// reached, but keeps the compiler from calling the recursion infinite.
fn recurse(depth: u64) -> u64 {
    if black_box(depth) == u64::MAX {
        return 0;
    }
    black_box(recurse(depth + 1)).wrapping_add(depth)
}

/// Reports what happened when it tried to read a file and list a directory.
fn fs(_: Value) -> Result<Value, Error> {
    let read = match std::fs::read_to_string("/etc/passwd") {
        Ok(text) => format!("read {} bytes", text.len()),
        Err(e) => format!("error: {e}"),
    };
    let list = match std::fs::read_dir("/") {
        Ok(entries) => format!("listed {} entries", entries.count()),
        Err(e) => format!("error: {e}"),
    };
    Ok(json!({ "read_file": read, "read_dir": list }))
}

fn env(_: Value) -> Result<Value, Error> {
    Ok(json!({ "vars": std::env::vars().count(), "args": std::env::args().count() }))
}

fn set(req: Set) -> Result<Value, Error> {
    store::set_json(&req.key, &req.value)?;
    Ok(json!({}))
}

fn get(req: Get) -> Result<Stored, Error> {
    Ok(Stored {
        value: store::get_json(&req.key)?,
        key: req.key,
    })
}

/// The wall clock, and a random number from std's randomly seeded hasher.
fn clock(_: Value) -> Result<Value, Error> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| Error::internal(format!("clock before the epoch: {e}")))?
        .as_millis();
    let random = RandomState::new().hash_one(now_ms);
    Ok(json!({ "now_ms": now_ms as u64, "random": random }))
}

/// Sleeps `ms` milliseconds. On wasip2 `std::thread::sleep` waits on the monotonic clock
/// through the host, so the instance stays alive without burning fuel or CPU: benchmarks use
/// it to hold many instances open at once.
fn sleep(req: Sleep) -> Result<Slept, Error> {
    std::thread::sleep(Duration::from_millis(req.ms));
    Ok(Slept { slept_ms: req.ms })
}

struct Hostile;

impl Service for Hostile {
    fn handle(request: Request) -> Result<Response, Error> {
        Router::new()
            .route("Echo", |req| {
                Ok(Response::bytes(
                    req.content_type().to_owned(),
                    req.into_body(),
                ))
            })
            .json("Loop", spin)
            .json("Bomb", bomb)
            .json("Recurse", |_: Value| Ok(recurse(0)))
            .route("Big", |req| {
                let Big { bytes } = req.json()?;
                Ok(Response::bytes(
                    "application/octet-stream",
                    vec![b'x'; bytes],
                ))
            })
            .route("Panic", |_| panic!("guest panicked on purpose"))
            .json("Fs", fs)
            .json("Env", env)
            .json("Store.Set", set)
            .json("Store.Get", get)
            .json("Clock", clock)
            .json("Sleep", sleep)
            .handle(request)
    }
}

micro_sdk::export!(Hostile);

//! The service's own key-value store.
//!
//! Every key lives in the service's namespace: no other service can read or write it. Keys
//! are at most 1 KiB and values at most 1 MiB (the node may set lower limits); a write over a
//! limit is an error.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::micro::service::store;
use crate::types::{Error, encode};

/// The value stored under `key`, if any.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, Error> {
    store::get(key).map_err(Error::from)
}

/// Stores `value` under `key`, replacing what was there.
pub fn set(key: &str, value: &[u8]) -> Result<(), Error> {
    store::set(key, value).map_err(Error::from)
}

/// Removes `key`; returns whether it was there.
pub fn delete(key: &str) -> Result<bool, Error> {
    store::delete(key).map_err(Error::from)
}

/// Keys starting with `prefix`, in byte order, at most `limit` of them.
pub fn keys(prefix: &str, limit: u32) -> Result<Vec<String>, Error> {
    store::keys(prefix, limit).map_err(Error::from)
}

/// The JSON value stored under `key`, if any; a 500 error if what is stored does not decode
/// as `T`.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, Error> {
    match get(key)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::internal(format!("stored value under {key} is not valid: {e}"))),
    }
}

/// Stores `value` as JSON under `key`, replacing what was there.
pub fn set_json<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), Error> {
    set(key, &encode(value, "stored value")?)
}

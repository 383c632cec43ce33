//! Each service's key-value data: a sled tree of its own, so no key of one service can
//! name another's data.

use std::sync::Mutex;

use crate::config::StoreLimits;
use crate::error::ServiceError;

/// The prefix of every service's tree in the node's database.
const TREE_PREFIX: &str = "wasm-kv/";

/// One service's store.
#[derive(Debug)]
pub struct Namespace {
    tree: sled::Tree,
    limits: StoreLimits,
    /// Bytes of keys and values stored; writes hold the lock so the quota cannot be raced.
    used: Mutex<u64>,
}

fn db_error(e: sled::Error) -> ServiceError {
    tracing::warn!(error = %e, "service store failed");
    ServiceError::runtime(500, format!("store failed: {e}"))
}

impl Namespace {
    /// Opens (or creates) the store of `service`; it keeps what earlier deployments of the
    /// same name stored.
    pub fn open(db: &sled::Db, service: &str, limits: StoreLimits) -> Result<Self, sled::Error> {
        let tree = db.open_tree(format!("{TREE_PREFIX}{service}"))?;
        let mut used = 0u64;
        for entry in tree.iter() {
            let (k, v) = entry?;
            used += (k.len() + v.len()) as u64;
        }
        Ok(Self {
            tree,
            limits,
            used: Mutex::new(used),
        })
    }

    /// Bytes used.
    pub fn used(&self) -> u64 {
        *self.used.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check_key(&self, key: &str) -> Result<(), ServiceError> {
        if key.len() > self.limits.max_key_bytes {
            return Err(ServiceError::runtime(
                400,
                format!(
                    "store key of {} bytes exceeds the {}-byte limit",
                    key.len(),
                    self.limits.max_key_bytes
                ),
            ));
        }
        Ok(())
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ServiceError> {
        self.check_key(key)?;
        Ok(self.tree.get(key).map_err(db_error)?.map(|v| v.to_vec()))
    }

    /// Stores `value` under `key` within the quota.
    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), ServiceError> {
        self.check_key(key)?;
        if value.len() > self.limits.max_value_bytes {
            return Err(ServiceError::runtime(
                413,
                format!(
                    "store value of {} bytes exceeds the {}-byte limit",
                    value.len(),
                    self.limits.max_value_bytes
                ),
            ));
        }
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.tree.get(key).map_err(db_error)?;
        let old_size = old.map_or(0, |v| (key.len() + v.len()) as u64);
        let new_size = (key.len() + value.len()) as u64;
        let after = (*used - old_size.min(*used)) + new_size;
        if after > self.limits.max_total_bytes {
            return Err(ServiceError::runtime(
                507,
                format!(
                    "the service's store is full ({} of {} bytes used)",
                    *used, self.limits.max_total_bytes
                ),
            ));
        }
        self.tree.insert(key, value).map_err(db_error)?;
        *used = after;
        Ok(())
    }

    /// Removes `key`; whether it was there.
    pub fn delete(&self, key: &str) -> Result<bool, ServiceError> {
        self.check_key(key)?;
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.tree.remove(key).map_err(db_error)?;
        if let Some(v) = &old {
            *used = used.saturating_sub((key.len() + v.len()) as u64);
        }
        Ok(old.is_some())
    }

    /// Keys starting with `prefix` in byte order, at most `limit` (capped by the config).
    pub fn list(&self, prefix: &str, limit: u32) -> Result<Vec<String>, ServiceError> {
        self.check_key(prefix)?;
        let limit = limit.min(self.limits.max_list) as usize;
        let mut keys = Vec::new();
        for entry in self.tree.scan_prefix(prefix).keys().take(limit) {
            let key = entry.map_err(db_error)?;
            keys.push(String::from_utf8_lossy(&key).into_owned());
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, sled::Db) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::open(dir.path()).expect("db");
        (dir, db)
    }

    #[test]
    fn services_cannot_see_each_others_keys() {
        let (_dir, db) = db();
        let a = Namespace::open(&db, "a", StoreLimits::default()).expect("a");
        let b = Namespace::open(&db, "b", StoreLimits::default()).expect("b");
        a.set("k", b"from a").expect("set");
        b.set("k", b"from b").expect("set");
        assert_eq!(a.get("k").expect("get").as_deref(), Some(&b"from a"[..]));
        assert_eq!(b.get("k").expect("get").as_deref(), Some(&b"from b"[..]));
        assert!(b.delete("k").expect("delete"));
        assert_eq!(a.get("k").expect("get").as_deref(), Some(&b"from a"[..]));
    }

    #[test]
    fn quotas_refuse_without_changing_anything() {
        let (_dir, db) = db();
        let limits = StoreLimits {
            max_key_bytes: 8,
            max_value_bytes: 16,
            max_total_bytes: 40,
            max_list: 2,
        };
        let ns = Namespace::open(&db, "s", limits).expect("open");
        assert_eq!(ns.set("too-long-key", b"x").expect_err("key").code, 400);
        assert_eq!(ns.set("k", &[0; 17]).expect_err("value").code, 413);
        ns.set("k1", &[0; 16]).expect("fits");
        ns.set("k2", &[0; 16]).expect("fits");
        assert_eq!(ns.set("k3", &[0; 16]).expect_err("quota").code, 507);
        assert_eq!(ns.used(), 36);
        // Replacing a value counts only the difference.
        ns.set("k1", &[1; 16]).expect("same size fits");
        assert_eq!(ns.list("k", 10).expect("list"), ["k1", "k2"]);
        assert!(ns.delete("k1").expect("delete"));
        assert_eq!(ns.used(), 18);
        let reopened = Namespace::open(&db, "s", limits).expect("reopen");
        assert_eq!(reopened.used(), 18);
    }
}

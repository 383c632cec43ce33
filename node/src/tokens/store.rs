//! Token state in sled, three trees, each bounded:
//!
//! - `tokens-issued`: the tokens this node issued (id → the printable token, its expiry, and
//!   when it was revoked or what replaced it);
//! - `tokens-spent`: what each token spent through this node's gateway (id → [`Meter`]);
//! - `tokens-revoked`: signed revocations, this node's and trusted issuers' (id → the token's
//!   expiry, then the signed bytes).
//!
//! Writes that must agree (a check and its update) happen under one short mutex, which also
//! keeps the counts the bounds are checked against. Every operation is one or two sled reads
//! or writes: cheap enough for the gateway's path; flushes are the caller's.

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard};

use prost::Message;

use super::error::TokensError;
use super::revocation::Revocation;
use super::token::{self, ApiToken, TokenId};

/// The bounds of the three trees.
#[derive(Debug, Clone, Copy)]
pub(super) struct StoreLimits {
    pub max_issued: usize,
    pub max_meters: usize,
    pub max_revocations: usize,
}

#[derive(Clone, PartialEq, Message)]
struct IssuedEntry {
    #[prost(string, tag = "1")]
    token: String,
    #[prost(uint64, optional, tag = "2")]
    revoked_at_ms: Option<u64>,
    #[prost(bytes = "vec", tag = "3")]
    replaced_by: Vec<u8>,
    /// Copied from the token so pruning need not decode it.
    #[prost(uint64, tag = "4")]
    expires_at_ms: u64,
}

/// A token this node issued, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Issued {
    pub token: ApiToken,
    pub text: String,
    pub revoked_at_ms: Option<u64>,
    pub replaced_by: Option<TokenId>,
}

/// What a token spent through this node and what it may spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Meter {
    pub spent: u64,
    pub limit: Option<u64>,
    pub expires_at_ms: u64,
}

impl Meter {
    /// A token's meter before its first charge.
    pub fn fresh(token: &ApiToken) -> Self {
        Self {
            spent: 0,
            limit: token.spend_limit,
            expires_at_ms: token.expires_at_ms,
        }
    }

    const BYTES: usize = 25;

    /// Fixed layout: spent, expiry, a limit flag, the limit; integers big-endian.
    fn encode(&self) -> [u8; Self::BYTES] {
        let mut out = [0u8; Self::BYTES];
        out[..8].copy_from_slice(&self.spent.to_be_bytes());
        out[8..16].copy_from_slice(&self.expires_at_ms.to_be_bytes());
        out[16] = u8::from(self.limit.is_some());
        out[17..].copy_from_slice(&self.limit.unwrap_or(0).to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, TokensError> {
        let bad = || TokensError::Corrupt(format!("a meter of {} bytes", bytes.len()));
        if bytes.len() != Self::BYTES {
            return Err(bad());
        }
        let u64_at = |i: usize| -> Result<u64, TokensError> {
            Ok(u64::from_be_bytes(
                bytes[i..i + 8].try_into().map_err(|_| bad())?,
            ))
        };
        Ok(Self {
            spent: u64_at(0)?,
            expires_at_ms: u64_at(8)?,
            limit: (bytes[16] == 1).then_some(u64_at(17)?),
        })
    }
}

#[derive(Default)]
struct Index {
    /// Revocations held, by the revoked token's expiry: the soonest is dropped when full.
    revoked_by_expiry: BTreeSet<(u64, TokenId)>,
    issued: usize,
    meters: usize,
}

/// How many entries a prune removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pruned {
    pub issued: usize,
    pub meters: usize,
    pub revocations: usize,
}

pub(super) struct TokenStore {
    issued: sled::Tree,
    meters: sled::Tree,
    revoked: sled::Tree,
    index: Mutex<Index>,
    limits: StoreLimits,
}

fn expiry_prefix(bytes: &[u8]) -> Result<u64, TokensError> {
    bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| TokensError::Corrupt("a revocation without its expiry".to_owned()))
}

fn id_of(key: &[u8]) -> Result<TokenId, TokensError> {
    TokenId::from_slice(key).ok_or_else(|| TokensError::Corrupt("a key of the wrong size".into()))
}

impl TokenStore {
    /// Opens the trees in `db` and counts what they hold.
    pub fn open(db: &sled::Db, limits: StoreLimits) -> Result<Self, TokensError> {
        let store = Self {
            issued: db.open_tree("tokens-issued")?,
            meters: db.open_tree("tokens-spent")?,
            revoked: db.open_tree("tokens-revoked")?,
            index: Mutex::new(Index::default()),
            limits,
        };
        let mut index = Index {
            issued: store.issued.len(),
            meters: store.meters.len(),
            ..Index::default()
        };
        for entry in store.revoked.iter() {
            let (key, value) = entry?;
            index
                .revoked_by_expiry
                .insert((expiry_prefix(&value)?, id_of(&key)?));
        }
        *store.lock() = index;
        Ok(store)
    }

    fn lock(&self) -> MutexGuard<'_, Index> {
        // Every update under this lock leaves the index consistent with sled before it can
        // panic (sled errors return early), so a poisoned lock is used as is.
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Flushes every tree to disk.
    pub async fn flush(&self) -> Result<(), TokensError> {
        // On a blocking thread, not with sled's flush_async (see `EventStore::flush`).
        let issued = self.issued.clone();
        tokio::task::spawn_blocking(move || issued.flush())
            .await
            .map_err(|e| TokensError::Store(sled::Error::ReportableBug(e.to_string())))??;
        Ok(())
    }

    fn entry_of(token: &ApiToken, text: &str) -> IssuedEntry {
        IssuedEntry {
            token: text.to_owned(),
            revoked_at_ms: None,
            replaced_by: Vec::new(),
            expires_at_ms: token.expires_at_ms,
        }
    }

    fn read_entry(&self, id: &TokenId) -> Result<Option<IssuedEntry>, TokensError> {
        self.issued
            .get(id.0)?
            .map(|bytes| {
                IssuedEntry::decode(bytes.as_ref())
                    .map_err(|e| TokensError::Corrupt(format!("issued token {id}: {e}")))
            })
            .transpose()
    }

    fn to_issued(id: &TokenId, entry: IssuedEntry) -> Result<Issued, TokensError> {
        let token = token::decode(&entry.token)
            .map_err(|e| TokensError::Corrupt(format!("issued token {id}: {e}")))?;
        Ok(Issued {
            token,
            text: entry.token,
            revoked_at_ms: entry.revoked_at_ms,
            replaced_by: TokenId::from_slice(&entry.replaced_by),
        })
    }

    /// Records a token this node issued. Fails when `max_issued` are held.
    pub fn insert_issued(&self, token: &ApiToken, text: &str) -> Result<(), TokensError> {
        let mut index = self.lock();
        if index.issued >= self.limits.max_issued {
            return Err(TokensError::Full {
                what: "issued tokens",
                max: self.limits.max_issued,
            });
        }
        let entry = Self::entry_of(token, text);
        self.issued.insert(token.id.0, entry.encode_to_vec())?;
        index.issued += 1;
        Ok(())
    }

    /// A token this node issued.
    pub fn issued(&self, id: &TokenId) -> Result<Option<Issued>, TokensError> {
        self.read_entry(id)?
            .map(|entry| Self::to_issued(id, entry))
            .transpose()
    }

    /// Every token this node holds as issued (at most `max_issued`).
    pub fn list_issued(&self) -> Result<Vec<Issued>, TokensError> {
        let mut out = Vec::new();
        for entry in self.issued.iter() {
            let (key, value) = entry?;
            let id = id_of(&key)?;
            let entry = IssuedEntry::decode(value.as_ref())
                .map_err(|e| TokensError::Corrupt(format!("issued token {id}: {e}")))?;
            out.push(Self::to_issued(&id, entry)?);
        }
        Ok(out)
    }

    /// Records `new` and marks `old` revoked at `now_ms`, replaced by `new`, in one atomic
    /// batch. Fails if `old` is unknown or already revoked (a concurrent refresh won).
    pub fn replace(
        &self,
        old: &TokenId,
        new: &ApiToken,
        new_text: &str,
        now_ms: u64,
    ) -> Result<(), TokensError> {
        let mut index = self.lock();
        let mut entry = self.read_entry(old)?.ok_or(TokensError::Unknown(*old))?;
        if entry.revoked_at_ms.is_some() {
            return Err(TokensError::Revoked {
                id: *old,
                replaced_by: TokenId::from_slice(&entry.replaced_by),
            });
        }
        if index.issued >= self.limits.max_issued {
            return Err(TokensError::Full {
                what: "issued tokens",
                max: self.limits.max_issued,
            });
        }
        entry.revoked_at_ms = Some(now_ms);
        entry.replaced_by = new.id.0.to_vec();
        let mut batch = sled::Batch::default();
        batch.insert(
            new.id.0.to_vec(),
            Self::entry_of(new, new_text).encode_to_vec(),
        );
        batch.insert(old.0.to_vec(), entry.encode_to_vec());
        self.issued.apply_batch(batch)?;
        index.issued += 1;
        Ok(())
    }

    /// Marks a token this node issued revoked at `now_ms` (the first revocation's time stays).
    /// `None` if this node did not issue it.
    pub fn revoke_issued(&self, id: &TokenId, now_ms: u64) -> Result<Option<Issued>, TokensError> {
        let _index = self.lock();
        let Some(mut entry) = self.read_entry(id)? else {
            return Ok(None);
        };
        if entry.revoked_at_ms.is_none() {
            entry.revoked_at_ms = Some(now_ms);
            self.issued.insert(id.0, entry.encode_to_vec())?;
        }
        Self::to_issued(id, entry).map(Some)
    }

    /// Keeps a verified revocation. When `max_revocations` are held, the one whose token
    /// expires soonest goes (possibly this one). Returns whether it is held now and was not.
    pub fn put_revocation(&self, r: &Revocation, signed: &[u8]) -> Result<bool, TokensError> {
        let mut index = self.lock();
        if self.revoked.contains_key(r.token_id.0)? {
            return Ok(false);
        }
        if index.revoked_by_expiry.len() >= self.limits.max_revocations {
            match index.revoked_by_expiry.first().copied() {
                Some(soonest) if soonest.0 < r.expires_at_ms => {
                    self.revoked.remove(soonest.1.0)?;
                    index.revoked_by_expiry.remove(&soonest);
                }
                _ => return Ok(false),
            }
        }
        let mut value = Vec::with_capacity(8 + signed.len());
        value.extend_from_slice(&r.expires_at_ms.to_be_bytes());
        value.extend_from_slice(signed);
        self.revoked.insert(r.token_id.0, value)?;
        index
            .revoked_by_expiry
            .insert((r.expires_at_ms, r.token_id));
        Ok(true)
    }

    /// The signed bytes of a held revocation.
    pub fn revocation_bytes(&self, id: &TokenId) -> Result<Option<Vec<u8>>, TokensError> {
        Ok(self
            .revoked
            .get(id.0)?
            .and_then(|v| v.get(8..).map(<[u8]>::to_vec)))
    }

    /// The signed revocations of tokens this node issued and revoked that have not expired at
    /// `now_ms`: the `max` revoked last.
    pub fn own_revocations(&self, now_ms: u64, max: usize) -> Result<Vec<Vec<u8>>, TokensError> {
        let mut live = Vec::new();
        for entry in self.issued.iter() {
            let (key, value) = entry?;
            let entry = IssuedEntry::decode(value.as_ref())
                .map_err(|e| TokensError::Corrupt(format!("issued token: {e}")))?;
            if let Some(at) = entry.revoked_at_ms
                && entry.expires_at_ms > now_ms
            {
                live.push((at, id_of(&key)?));
            }
        }
        live.sort_unstable_by(|a, b| b.cmp(a));
        live.truncate(max);
        let mut out = Vec::with_capacity(live.len());
        for (_, id) in live {
            out.extend(self.revocation_bytes(&id)?);
        }
        Ok(out)
    }

    /// Whether a revocation of `id` is held, or this node issued it and revoked it.
    pub fn is_revoked(&self, id: &TokenId) -> Result<bool, TokensError> {
        if self.revoked.contains_key(id.0)? {
            return Ok(true);
        }
        Ok(self
            .read_entry(id)?
            .is_some_and(|e| e.revoked_at_ms.is_some()))
    }

    /// How many revocations are held.
    pub fn revocations(&self) -> usize {
        self.lock().revoked_by_expiry.len()
    }

    /// What `id` spent through this node so far.
    pub fn spent(&self, id: &TokenId) -> Result<u64, TokensError> {
        Ok(self.meter(id)?.map_or(0, |m| m.spent))
    }

    fn meter(&self, id: &TokenId) -> Result<Option<Meter>, TokensError> {
        self.meters
            .get(id.0)?
            .map(|v| Meter::decode(&v))
            .transpose()
    }

    /// Adds `amount` to what `id` spent, starting from `fresh` if it has no meter yet (no
    /// meter and no `fresh`: [`TokensError::Unknown`]). With `enforce`, a charge that would go
    /// over the limit (or overflow) is refused and changes nothing; without, it is recorded
    /// anyway (saturating), for costs already incurred. A zero charge writes nothing.
    pub fn add_spend(
        &self,
        id: &TokenId,
        amount: u64,
        fresh: Option<Meter>,
        enforce: bool,
    ) -> Result<Meter, TokensError> {
        let mut index = self.lock();
        let existing = self.meter(id)?;
        let mut meter = existing.or(fresh).ok_or(TokensError::Unknown(*id))?;
        let total = meter.spent.checked_add(amount);
        let over = match (total, meter.limit) {
            (None, _) => true,
            (Some(total), Some(limit)) => total > limit,
            (Some(_), None) => false,
        };
        if enforce && over {
            return Err(TokensError::SpendLimit {
                id: *id,
                limit: meter.limit.unwrap_or(u64::MAX),
                spent: meter.spent,
                amount,
            });
        }
        if amount == 0 {
            return Ok(meter);
        }
        if existing.is_none() && index.meters >= self.limits.max_meters {
            return Err(TokensError::Full {
                what: "token meters",
                max: self.limits.max_meters,
            });
        }
        meter.spent = total.unwrap_or(u64::MAX);
        self.meters.insert(id.0, meter.encode().to_vec())?;
        if existing.is_none() {
            index.meters += 1;
        }
        Ok(meter)
    }

    /// Takes `amount` back from what `id` spent (a reservation for a call that failed).
    pub fn refund(&self, id: &TokenId, amount: u64) -> Result<(), TokensError> {
        if amount == 0 {
            return Ok(());
        }
        let _index = self.lock();
        if let Some(mut meter) = self.meter(id)? {
            meter.spent = meter.spent.saturating_sub(amount);
            self.meters.insert(id.0, meter.encode().to_vec())?;
        }
        Ok(())
    }

    /// Forgets what no longer matters at `now_ms`: revocations of expired tokens; meters and
    /// issued tokens whose expiry is more than `keep_ms` past (they can no longer be
    /// refreshed, so their spend no longer carries over).
    pub fn prune(&self, now_ms: u64, keep_ms: u64) -> Result<Pruned, TokensError> {
        let mut pruned = Pruned::default();
        let gone = |expires: u64| expires.saturating_add(keep_ms) < now_ms;
        // Collected without the lock (expiries never change), removed under it.
        let mut issued = Vec::new();
        for entry in self.issued.iter() {
            let (key, value) = entry?;
            let entry = IssuedEntry::decode(value.as_ref())
                .map_err(|e| TokensError::Corrupt(format!("issued token: {e}")))?;
            if gone(entry.expires_at_ms) {
                issued.push(key);
            }
        }
        let mut meters = Vec::new();
        for entry in self.meters.iter() {
            let (key, value) = entry?;
            if gone(Meter::decode(&value)?.expires_at_ms) {
                meters.push(key);
            }
        }
        let mut index = self.lock();
        for key in issued {
            if self.issued.remove(&key)?.is_some() {
                index.issued = index.issued.saturating_sub(1);
                pruned.issued += 1;
            }
        }
        for key in meters {
            if self.meters.remove(&key)?.is_some() {
                index.meters = index.meters.saturating_sub(1);
                pruned.meters += 1;
            }
        }
        while let Some(first) = index.revoked_by_expiry.first().copied() {
            if first.0 > now_ms {
                break;
            }
            self.revoked.remove(first.1.0)?;
            index.revoked_by_expiry.remove(&first);
            pruned.revocations += 1;
        }
        Ok(pruned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::token::tests::{NOW, token};
    use libp2p::identity::Keypair;

    fn store(limits: StoreLimits) -> (tempfile::TempDir, sled::Db, TokenStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let store = TokenStore::open(&db, limits).unwrap();
        (dir, db, store)
    }

    const ROOMY: StoreLimits = StoreLimits {
        max_issued: 100,
        max_meters: 100,
        max_revocations: 100,
    };

    #[test]
    fn meters_round_trip_and_refuse_garbage() {
        for m in [
            Meter {
                spent: 5,
                limit: Some(7),
                expires_at_ms: 9,
            },
            Meter {
                spent: u64::MAX,
                limit: None,
                expires_at_ms: 0,
            },
        ] {
            assert_eq!(Meter::decode(&m.encode()).unwrap(), m);
        }
        assert!(Meter::decode(&[1, 2, 3]).is_err());
    }

    #[test]
    fn spending_stops_at_the_limit_and_survives_reopening() {
        let key = Keypair::generate_ed25519();
        let t = token(&key); // limit 500
        let (dir, db, s) = store(ROOMY);
        let fresh = Some(Meter::fresh(&t));
        assert_eq!(s.add_spend(&t.id, 300, fresh, true).unwrap().spent, 300);
        assert_eq!(s.add_spend(&t.id, 200, fresh, true).unwrap().spent, 500);
        assert!(matches!(
            s.add_spend(&t.id, 1, fresh, true),
            Err(TokensError::SpendLimit {
                spent: 500,
                limit: 500,
                amount: 1,
                ..
            })
        ));
        s.refund(&t.id, 100).unwrap();
        assert_eq!(s.spent(&t.id).unwrap(), 400);
        // A cost already incurred is recorded even over the limit.
        assert_eq!(s.add_spend(&t.id, 150, None, false).unwrap().spent, 550);
        // Unknown without a fresh meter.
        assert!(matches!(
            s.add_spend(&TokenId([0; 16]), 1, None, true),
            Err(TokensError::Unknown(_))
        ));
        drop(s);
        let s = TokenStore::open(&db, ROOMY).unwrap();
        assert_eq!(s.spent(&t.id).unwrap(), 550);
        drop(dir);
    }

    #[test]
    fn a_refresh_revokes_the_old_token_once() {
        let key = Keypair::generate_ed25519();
        let old = token(&key);
        let (_dir, _db, s) = store(ROOMY);
        s.insert_issued(&old, &old.sign(&key).unwrap()).unwrap();
        let new = ApiToken {
            id: TokenId([8; 16]),
            refreshed_from: Some(old.id),
            ..old.clone()
        };
        let text = new.sign(&key).unwrap();
        s.replace(&old.id, &new, &text, NOW).unwrap();
        assert!(s.is_revoked(&old.id).unwrap() && !s.is_revoked(&new.id).unwrap());
        let stored = s.issued(&old.id).unwrap().unwrap();
        assert_eq!(stored.replaced_by, Some(new.id));
        assert!(matches!(
            s.replace(&old.id, &new, &text, NOW),
            Err(TokensError::Revoked { .. })
        ));
        assert_eq!(s.list_issued().unwrap().len(), 2);
    }

    #[test]
    fn tables_are_bounded() {
        let key = Keypair::generate_ed25519();
        let limits = StoreLimits {
            max_issued: 1,
            max_meters: 1,
            max_revocations: 2,
        };
        let (_dir, _db, s) = store(limits);
        let a = token(&key);
        let b = ApiToken {
            id: TokenId([9; 16]),
            ..a.clone()
        };
        s.insert_issued(&a, &a.sign(&key).unwrap()).unwrap();
        assert!(matches!(
            s.insert_issued(&b, &b.sign(&key).unwrap()),
            Err(TokensError::Full { .. })
        ));
        s.add_spend(&a.id, 1, Some(Meter::fresh(&a)), true).unwrap();
        assert!(matches!(
            s.add_spend(&b.id, 1, Some(Meter::fresh(&b)), true),
            Err(TokensError::Full { .. })
        ));

        // Revocations: the one expiring soonest goes first.
        let revoke = |n: u8, expires: u64| {
            let r = Revocation {
                token_id: TokenId([n; 16]),
                issuer: key.public().to_peer_id(),
                revoked_at_ms: NOW,
                expires_at_ms: expires,
            };
            let signed = r.sign(&key).unwrap();
            s.put_revocation(&r, &signed).unwrap()
        };
        assert!(revoke(1, NOW + 30));
        assert!(revoke(2, NOW + 10));
        assert!(!revoke(2, NOW + 10), "already held");
        assert!(!revoke(3, NOW + 5), "expires before every held one");
        assert!(revoke(4, NOW + 20));
        assert!(!s.is_revoked(&TokenId([2; 16])).unwrap());
        assert!(s.is_revoked(&TokenId([4; 16])).unwrap());
        assert_eq!(s.revocations(), 2);

        // Pruning: revocations of expired tokens, issued tokens and meters past the window.
        let pruned = s.prune(NOW + 25, 0).unwrap();
        assert_eq!(pruned.revocations, 1);
        assert_eq!(s.revocations(), 1);
        let pruned = s.prune(a.expires_at_ms + 1, 0).unwrap();
        assert_eq!((pruned.issued, pruned.meters), (1, 1));
        s.insert_issued(&b, &b.sign(&key).unwrap()).unwrap();
    }
}

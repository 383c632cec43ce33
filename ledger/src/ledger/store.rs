//! The sled layout: tree names, key and value encodings, the in-memory mirror ([`Mem`]) that
//! is loaded at open, and the one multi-tree transaction every state change commits through.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `ledger-meta` | `network`, `format` | genesis hash, format version |
//! | `ledger-accounts` | account | balance BE ‖ next_seq BE (absent = 0, 1) |
//! | `ledger-frozen` | account | first void seq |
//! | `ledger-applied` | from ‖ seq BE | stored transfer (exactly seqs `1..next_seq`) |
//! | `ledger-held` | from ‖ seq BE | stored transfer (seqs `next_seq..frozen`) |
//! | `ledger-void` | from ‖ seq BE | stored transfer voided by a freeze |
//! | `ledger-ids` | transfer id | from ‖ seq BE |
//! | `ledger-history` | account ‖ local counter BE | from ‖ seq BE |
//! | `ledger-proofs` | account | protobuf [`EquivocationProof`](crate::EquivocationProof) |
//! | `ledger-acks` | transfer id ‖ acker | signature |
//! | `ledger-final` | transfer id | empty |
//!
//! A stored transfer is its canonical bytes without domain and network, then its signature.

use std::collections::{BTreeMap, HashMap};

use sled::transaction::{TransactionError, TransactionResult, Transactional};

use crate::{
    Account, HistoryDigest, LedgerError, NetworkId, SignedTransfer, Tokens, VerifiedTransfer,
};

/// The trees, in the order of [`Store`]'s array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    Meta,
    Accounts,
    Frozen,
    Applied,
    Held,
    Void,
    Ids,
    History,
    Proofs,
    Acks,
    Final,
}

const TABLES: usize = 11;

const NAMES: [&str; TABLES] = [
    "ledger-meta",
    "ledger-accounts",
    "ledger-frozen",
    "ledger-applied",
    "ledger-held",
    "ledger-void",
    "ledger-ids",
    "ledger-history",
    "ledger-proofs",
    "ledger-acks",
    "ledger-final",
];

/// Meta key of the network id.
pub(crate) const META_NETWORK: &[u8] = b"network";
/// Meta key of the storage format version.
pub(crate) const META_FORMAT: &[u8] = b"format";
/// The storage format this code writes: 2 added the history digest to account states.
pub(crate) const FORMAT: &[u8] = &[2];
/// The format before it (16-byte account states), migrated on open.
pub(crate) const FORMAT_V1: &[u8] = &[1];

/// Balance, next sequence number and history digest of one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AccountState {
    pub(crate) balance: Tokens,
    pub(crate) next_seq: u64,
    /// Digest of the applied transfers `1..next_seq` (see [`HistoryDigest`]).
    pub(crate) history: HistoryDigest,
}

impl Default for AccountState {
    fn default() -> Self {
        AccountState {
            balance: Tokens::ZERO,
            next_seq: 1,
            history: HistoryDigest::default(),
        }
    }
}

impl AccountState {
    /// A genesis account: `balance`, nothing sent yet.
    pub(crate) fn funded(balance: Tokens) -> Self {
        AccountState {
            balance,
            ..AccountState::default()
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(48);
        out.extend_from_slice(&self.balance.0.to_be_bytes());
        out.extend_from_slice(&self.next_seq.to_be_bytes());
        out.extend_from_slice(&self.history.0);
        out
    }

    /// Decodes a stored state: 48 bytes, or the 16 of format 1 (whose digest the migration
    /// recomputes).
    fn decode(bytes: &[u8]) -> Option<AccountState> {
        let (balance, rest) = bytes.split_first_chunk::<8>()?;
        let (next_seq, rest) = rest.split_first_chunk::<8>()?;
        let history = match rest.len() {
            0 => HistoryDigest::default(),
            _ => HistoryDigest(rest.try_into().ok()?),
        };
        Some(AccountState {
            balance: Tokens(u64::from_be_bytes(*balance)),
            next_seq: u64::from_be_bytes(*next_seq),
            history,
        })
    }
}

/// Key of one slot of an account's history: from ‖ seq BE, so a prefix scan walks an account's
/// transfers in seq order.
pub(crate) fn slot_key(from: &Account, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(40);
    key.extend_from_slice(&from.0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

pub(crate) fn parse_slot(bytes: &[u8]) -> Result<(Account, u64), LedgerError> {
    let (from, seq) = bytes
        .split_first_chunk::<32>()
        .ok_or_else(|| corrupt("slot key shorter than 32 bytes"))?;
    let seq = seq
        .try_into()
        .map_err(|_| corrupt("slot key is not 40 bytes"))?;
    Ok((Account(*from), u64::from_be_bytes(seq)))
}

pub(crate) fn parse_account(bytes: &[u8]) -> Result<Account, LedgerError> {
    bytes
        .try_into()
        .map(Account)
        .map_err(|_| corrupt("account key is not 32 bytes"))
}

pub(crate) fn parse_u64(bytes: &[u8]) -> Result<u64, LedgerError> {
    bytes
        .try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| corrupt("value is not a u64"))
}

pub(crate) fn parse_transfer(
    bytes: &[u8],
    network: NetworkId,
) -> Result<VerifiedTransfer, LedgerError> {
    SignedTransfer::from_stored_bytes(bytes, network)
        .and_then(VerifiedTransfer::from_trusted)
        .ok_or_else(|| corrupt("stored transfer does not parse"))
}

pub(crate) fn corrupt(what: &str) -> LedgerError {
    LedgerError::Corrupt(what.to_owned())
}

/// Pending writes of one transaction, per tree; `None` deletes. Also the read overlay: reads
/// during a transaction see its own writes first.
#[derive(Default)]
pub(crate) struct Writes([BTreeMap<Vec<u8>, Option<Vec<u8>>>; TABLES]);

impl Writes {
    pub(crate) fn get(&self, table: Table) -> &BTreeMap<Vec<u8>, Option<Vec<u8>>> {
        &self.0[table as usize]
    }

    pub(crate) fn set(&mut self, table: Table, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.0[table as usize].insert(key, value);
    }
}

/// The ledger's sled trees.
pub(crate) struct Store {
    pub(crate) db: sled::Db,
    trees: [sled::Tree; TABLES],
}

impl Store {
    pub(crate) fn open(db: &sled::Db) -> Result<Store, LedgerError> {
        let trees = NAMES
            .iter()
            .map(|name| db.open_tree(name))
            .collect::<Result<Vec<_>, _>>()?;
        let trees = trees
            .try_into()
            .map_err(|_| corrupt("wrong number of trees"))?;
        Ok(Store {
            db: db.clone(),
            trees,
        })
    }

    pub(crate) fn tree(&self, table: Table) -> &sled::Tree {
        &self.trees[table as usize]
    }

    /// Writes everything in `writes` atomically (one sled transaction over the touched trees):
    /// after a crash either all of it or none of it is there. Does not flush.
    pub(crate) fn commit(&self, writes: &Writes) -> Result<(), LedgerError> {
        let touched: Vec<usize> = (0..TABLES).filter(|&i| !writes.0[i].is_empty()).collect();
        if touched.is_empty() {
            return Ok(());
        }
        let trees: Vec<sled::Tree> = touched.iter().map(|&i| self.trees[i].clone()).collect();
        let result: TransactionResult<(), ()> = trees.as_slice().transaction(|views| {
            for (view, &i) in views.iter().zip(&touched) {
                for (key, value) in &writes.0[i] {
                    match value {
                        Some(value) => view.insert(key.as_slice(), value.as_slice())?,
                        None => view.remove(key.as_slice())?,
                    };
                }
            }
            Ok(())
        });
        result.map_err(|e| match e {
            TransactionError::Abort(()) => corrupt("ledger transaction aborted"),
            TransactionError::Storage(e) => LedgerError::Storage(e),
        })
    }

    /// The network id this database was created for, if any.
    pub(crate) fn network(&self) -> Result<Option<NetworkId>, LedgerError> {
        match self.tree(Table::Meta).get(META_NETWORK)? {
            None => Ok(None),
            Some(v) => v
                .as_ref()
                .try_into()
                .map(|id| Some(NetworkId(id)))
                .map_err(|_| corrupt("stored network id is not 32 bytes")),
        }
    }
}

/// The state kept in memory: every account, the frozen set and the held transfers (bounded by
/// the config). Applied transfers stay on disk.
#[derive(Default)]
pub(crate) struct Mem {
    pub(crate) accounts: BTreeMap<Account, AccountState>,
    pub(crate) frozen: BTreeMap<Account, u64>,
    pub(crate) held: BTreeMap<(Account, u64), VerifiedTransfer>,
    /// Number of held transfers per sender (absent = 0); kept by `insert_held`/`remove_held`.
    held_counts: HashMap<Account, usize>,
}

impl Mem {
    pub(crate) fn load(store: &Store, network: NetworkId) -> Result<Mem, LedgerError> {
        let mut mem = Mem::default();
        for item in store.tree(Table::Accounts).iter() {
            let (k, v) = item?;
            let state = AccountState::decode(&v)
                .ok_or_else(|| corrupt("account state is not 16 or 48 bytes"))?;
            mem.accounts.insert(parse_account(&k)?, state);
        }
        for item in store.tree(Table::Frozen).iter() {
            let (k, v) = item?;
            mem.frozen.insert(parse_account(&k)?, parse_u64(&v)?);
        }
        for item in store.tree(Table::Held).iter() {
            let (k, v) = item?;
            let (from, seq) = parse_slot(&k)?;
            mem.insert_held(from, seq, parse_transfer(&v, network)?);
        }
        Ok(mem)
    }

    pub(crate) fn state(&self, account: &Account) -> AccountState {
        self.accounts.get(account).copied().unwrap_or_default()
    }

    pub(crate) fn insert_held(&mut self, from: Account, seq: u64, t: VerifiedTransfer) {
        if self.held.insert((from, seq), t).is_none() {
            *self.held_counts.entry(from).or_default() += 1;
        }
    }

    pub(crate) fn remove_held(&mut self, from: &Account, seq: u64) -> Option<VerifiedTransfer> {
        let t = self.held.remove(&(*from, seq))?;
        if let Some(count) = self.held_counts.get_mut(from) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.held_counts.remove(from);
            }
        }
        Some(t)
    }

    pub(crate) fn held_count(&self, account: &Account) -> usize {
        self.held_counts.get(account).copied().unwrap_or(0)
    }

    /// Held transfers of one account, in seq order.
    pub(crate) fn held_of(
        &self,
        account: &Account,
    ) -> impl DoubleEndedIterator<Item = (&(Account, u64), &VerifiedTransfer)> {
        self.held.range((*account, 0)..=(*account, u64::MAX))
    }
}

//! Behaviour of the ledger on one replica: each rule, each refusal, persistence.

mod equivocation;
mod finality;
mod persistence;
mod rules;

use std::collections::HashMap;
use std::sync::OnceLock;

use ed25519_dalek::SigningKey;

use crate::*;

pub(super) fn key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[i; 32])
}

/// Public keys are slow to derive in a debug build; derive each once.
pub(super) fn acct(i: u8) -> Account {
    static ACCOUNTS: [OnceLock<Account>; 256] = [const { OnceLock::new() }; 256];
    *ACCOUNTS[usize::from(i)].get_or_init(|| Account::from(&key(i)))
}

/// Accounts 1 (1000 tokens) and 2 (500); 3 and 4 start empty.
pub(super) fn genesis() -> Genesis {
    Genesis::local_dev([(acct(1), Tokens(1000)), (acct(2), Tokens(500))])
}

pub(super) fn temp_db() -> sled::Db {
    sled::Config::new()
        .temporary(true)
        .open()
        .expect("temporary sled db")
}

pub(super) fn open_with(config: LedgerConfig) -> Ledger {
    Ledger::open_with(&temp_db(), genesis(), config).expect("open ledger")
}

pub(super) fn open() -> Ledger {
    open_with(LedgerConfig::default())
}

pub(super) fn transfer(ledger: &Ledger, from: u8, to: u8, amount: u64, seq: u64) -> SignedTransfer {
    transfer_fee(ledger, from, to, amount, 0, seq, "")
}

pub(super) fn transfer_fee(
    ledger: &Ledger,
    from: u8,
    to: u8,
    amount: u64,
    fee: u64,
    seq: u64,
    memo: &str,
) -> SignedTransfer {
    Transfer {
        network: ledger.network(),
        from: acct(from),
        to: acct(to),
        amount: Tokens(amount),
        fee: Tokens(fee),
        seq,
        memo: memo.into(),
    }
    .sign(&key(from))
}

pub(super) fn assert_conserved(ledger: &Ledger) {
    assert_eq!(ledger.sum_of_balances().unwrap(), ledger.total_supply());
}

/// An unsigned transfer marked verified: only the crate can do this, and only the ledger
/// logic (not the signature check) is under test, at a speed a debug build can afford.
pub(super) fn trusted(
    ledger: &Ledger,
    from: u8,
    to: u8,
    amount: u64,
    seq: u64,
) -> VerifiedTransfer {
    let t = Transfer {
        network: ledger.network(),
        from: acct(from),
        to: acct(to),
        amount: Tokens(amount),
        fee: Tokens(0),
        seq,
        memo: String::new(),
    };
    VerifiedTransfer::from_trusted(SignedTransfer {
        transfer: t,
        signature: [0; 64],
    })
    .expect("amount + fee fits")
}

/// Fixed weights for finality tests.
pub(super) struct Fixed {
    weights: HashMap<Account, f64>,
    total: f64,
}

impl Fixed {
    pub(super) fn new(weights: &[(u8, f64)], total: f64) -> Fixed {
        Fixed {
            weights: weights.iter().map(|(i, w)| (acct(*i), *w)).collect(),
            total,
        }
    }
}

impl Weights for Fixed {
    fn weight(&self, account: &Account) -> f64 {
        self.weights.get(account).copied().unwrap_or(0.0)
    }
    fn total(&self) -> f64 {
        self.total
    }
}

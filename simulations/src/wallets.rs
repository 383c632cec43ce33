//! Ledger accounts of a run: keys from fixed seeds, funded at genesis, and the next seq of
//! each, so the run signs valid transfers (and, for equivocation, two at one seq).

use ed25519_dalek::SigningKey;
use micro_node::ledger::micro_ledger::{Account, Genesis, SignedTransfer, Tokens, Transfer};
use rand::Rng;
use rand::rngs::StdRng;

/// The accounts.
#[derive(Clone)]
pub struct Wallets {
    keys: Vec<SigningKey>,
    next_seq: Vec<u64>,
    /// Accounts that equivocated: they send nothing more.
    cheated: Vec<bool>,
    /// The genesis funding them.
    pub genesis: Genesis,
}

impl Wallets {
    /// `count` (≤ 255) accounts with `balance` tokens each.
    pub fn new(count: usize, balance: u64) -> Wallets {
        let keys: Vec<SigningKey> = (0..count.min(255))
            .map(|i| SigningKey::from_bytes(&[i as u8 + 1; 32]))
            .collect();
        let genesis = Genesis::local_dev(keys.iter().map(|k| (Account::from(k), Tokens(balance))));
        Wallets {
            next_seq: vec![1; keys.len()],
            cheated: vec![false; keys.len()],
            keys,
            genesis,
        }
    }

    /// Account `i`.
    pub fn account(&self, i: usize) -> Account {
        Account::from(&self.keys[i])
    }

    /// How many accounts.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The next transfer of account `from`.
    pub fn pay(&mut self, from: usize, to: usize, amount: u64, memo: &str) -> SignedTransfer {
        let seq = self.next_seq[from];
        self.next_seq[from] += 1;
        self.sign(from, to, amount, seq, memo)
    }

    /// A transfer of 1–10 tokens from a random honest account to another account; `None`
    /// if every account cheated.
    pub fn random_transfer(&mut self, rng: &mut StdRng) -> Option<SignedTransfer> {
        let n = self.keys.len();
        let honest: Vec<usize> = (0..n).filter(|i| !self.cheated[*i]).collect();
        let from = *honest.get(rng.random_range(0..honest.len().max(1)))?;
        let to = (from + rng.random_range(1..n)) % n;
        let amount = rng.random_range(1..=10);
        Some(self.pay(from, to, amount, "sim"))
    }

    /// Two different transfers of account `from` at its next seq: an equivocation.
    pub fn equivocate(&mut self, from: usize) -> (SignedTransfer, SignedTransfer) {
        self.cheated[from] = true;
        let seq = self.next_seq[from];
        self.next_seq[from] += 1;
        let n = self.keys.len();
        (
            self.sign(from, (from + 1) % n, 1, seq, "once"),
            self.sign(from, (from + 1) % n, 2, seq, "twice"),
        )
    }

    fn sign(&self, from: usize, to: usize, amount: u64, seq: u64, memo: &str) -> SignedTransfer {
        Transfer {
            network: self.genesis.network_id(),
            from: self.account(from),
            to: self.account(to),
            amount: Tokens(amount),
            fee: Tokens::ZERO,
            seq,
            memo: memo.to_owned(),
        }
        .sign(&self.keys[from])
    }
}

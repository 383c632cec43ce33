//! Ledger helpers: test accounts funded at genesis, their transfers, and networks on that
//! genesis.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Result;
use ed25519_dalek::SigningKey;
use micro_node::RunningNode;
use micro_node::config::NodeConfig;
use micro_node::ledger::micro_ledger::{Account, Genesis, SignedTransfer, Tokens, Transfer};

use crate::{eventually, start_network_with};

/// Test accounts: keys from fixed seeds, each funded at genesis, and the next seq of each.
pub struct Wallets {
    keys: Vec<SigningKey>,
    /// The next seq of each account (advanced by [`Wallets::pay`]).
    pub next_seq: Vec<u64>,
    /// The genesis that funds them.
    pub genesis: Genesis,
}

impl Wallets {
    /// `count` accounts (at most 255) with `balance` tokens each.
    pub fn new(count: usize, balance: u64) -> Self {
        let keys: Vec<SigningKey> = (0..count)
            .map(|i| SigningKey::from_bytes(&[i as u8 + 1; 32]))
            .collect();
        let genesis = Genesis::local_dev(keys.iter().map(|k| (Account::from(k), Tokens(balance))));
        Self {
            next_seq: vec![1; keys.len()],
            keys,
            genesis,
        }
    }

    /// Account `i`.
    pub fn account(&self, i: usize) -> Account {
        Account::from(&self.keys[i])
    }

    /// The next transfer of account `from`.
    pub fn pay(&mut self, from: usize, to: Account, amount: u64, memo: &str) -> SignedTransfer {
        let seq = self.next_seq[from];
        self.next_seq[from] += 1;
        self.sign(from, to, amount, seq, memo)
    }

    /// A transfer of account `from` at `seq` (which need not be its next: equivocations).
    pub fn sign(
        &self,
        from: usize,
        to: Account,
        amount: u64,
        seq: u64,
        memo: &str,
    ) -> SignedTransfer {
        Transfer {
            network: self.genesis.network_id(),
            from: self.account(from),
            to,
            amount: Tokens(amount),
            fee: Tokens::ZERO,
            seq,
            memo: memo.to_owned(),
        }
        .sign(&self.keys[from])
    }
}

/// [`start_network_with`] `n` nodes on `wallets`' genesis. The genesis file's folder is the
/// last of the returned data dirs.
pub async fn ledger_network(
    n: usize,
    wallets: &Wallets,
) -> Result<(Vec<tempfile::TempDir>, Vec<RunningNode>)> {
    ledger_network_with(n, wallets, |_| {}).await
}

/// [`ledger_network`] with `adjust` applied to every node's configuration too.
pub async fn ledger_network_with(
    n: usize,
    wallets: &Wallets,
    adjust: impl Fn(&mut NodeConfig),
) -> Result<(Vec<tempfile::TempDir>, Vec<RunningNode>)> {
    let genesis_dir = tempfile::tempdir()?;
    let path = genesis_dir.path().join("genesis.json");
    std::fs::write(&path, wallets.genesis.to_json()?)?;
    let (mut dirs, nodes) = start_network_with(n, |config| {
        config.ledger.genesis = Some(path.clone());
        adjust(config);
    })
    .await?;
    dirs.push(genesis_dir);
    Ok((dirs, nodes))
}

/// Whether every node holds the same ledger state.
pub fn converged(nodes: &[RunningNode]) -> bool {
    divergence(nodes).is_none()
}

/// How the nodes' ledger states differ from the first node's, or `None` if they agree: per
/// differing node, the accounts (balance, next seq) on each side, the frozen accounts and the
/// held transfers only one side has.
pub fn divergence(nodes: &[RunningNode]) -> Option<String> {
    let first = nodes[0].ledger().snapshot();
    let mut report = String::new();
    for node in &nodes[1..] {
        let other = node.ledger().snapshot();
        if other == first {
            continue;
        }
        let _ = writeln!(
            report,
            "{} differs from {}:",
            node.peer_id(),
            nodes[0].peer_id()
        );
        let accounts: BTreeSet<_> = first.accounts.keys().chain(other.accounts.keys()).collect();
        for account in accounts {
            let (a, b) = (first.accounts.get(account), other.accounts.get(account));
            if a != b {
                let _ = writeln!(report, "  account {account}: {a:?} vs {b:?}");
            }
        }
        for (account, history) in &first.histories {
            if other.histories.get(account) != Some(history) {
                let _ = writeln!(report, "  history of {account} differs");
            }
        }
        if first.frozen != other.frozen {
            let _ = writeln!(report, "  frozen: {:?} vs {:?}", first.frozen, other.frozen);
        }
        for id in first.held.symmetric_difference(&other.held) {
            let side = if first.held.contains(id) {
                "first"
            } else {
                "this"
            };
            let _ = writeln!(report, "  held only on {side}: {id}");
        }
    }
    (!report.is_empty()).then_some(report)
}

/// Waits until every node holds the same ledger state, for at most `patience`; on timeout
/// the error says how the states still differ.
pub async fn converge(nodes: &[RunningNode], what: &str, patience: Duration) -> Result<()> {
    let waited = eventually(what, patience, || async { Ok(converged(nodes)) }).await;
    waited.map_err(|e| match divergence(nodes) {
        Some(report) => anyhow::anyhow!("{e}\n{report}"),
        None => e,
    })
}

//! [`Ledger`]: the replicated state machine over sled.

mod apply;
mod finality;
mod query;
mod settle;
mod store;
#[cfg(test)]
mod tests;
mod txn;

use tracing::error;

use crate::{
    Account, Applied, EquivocationProof, Genesis, LedgerConfig, LedgerError, NetworkId,
    ProofOutcome, SignedTransfer, Signer, Tokens, Transfer, TransferId, VerifiedTransfer,
};
use apply::{Outcome, accept, freeze, recompute};
use store::{FORMAT, FORMAT_V1, META_FORMAT, META_NETWORK, Mem, Store, Table};
use txn::Txn;

/// What does not change while a ledger is open.
pub(crate) struct Ctx {
    pub(crate) network: NetworkId,
    pub(crate) genesis: Genesis,
    pub(crate) treasury: Account,
    pub(crate) supply: Tokens,
    pub(crate) config: LedgerConfig,
}

/// The token ledger of one replica: balances, per-account sequence numbers, held transfers,
/// frozen accounts, acks — in memory for what is hot, in sled trees named `ledger-*` for all
/// of it.
///
/// Mutating methods take `&mut self`: one owner (the node's ledger task) applies everything in
/// order. Every state change commits as one sled transaction, so a crash never leaves half a
/// transfer (or half a cascade) applied. Only [`Ledger::transfer`] flushes to disk before
/// returning; transfers received from peers and lost in a crash come back through
/// anti-entropy.
pub struct Ledger {
    ctx: Ctx,
    store: Store,
    mem: Mem,
    poisoned: bool,
}

impl Ledger {
    /// Opens (or creates) the ledger of `genesis` in `db`, with the default config.
    ///
    /// Fails with [`LedgerError::GenesisMismatch`] if `db` holds the ledger of another genesis,
    /// and with [`LedgerError::Genesis`] if the genesis is invalid.
    pub fn open(db: &sled::Db, genesis: Genesis) -> Result<Ledger, LedgerError> {
        Self::open_with(db, genesis, LedgerConfig::default())
    }

    /// [`Ledger::open`] with explicit bounds.
    pub fn open_with(
        db: &sled::Db,
        genesis: Genesis,
        config: LedgerConfig,
    ) -> Result<Ledger, LedgerError> {
        let supply = genesis.validate()?;
        let network = genesis.network_id();
        let store = Store::open(db)?;
        match store.network()? {
            Some(stored) if stored != network => {
                return Err(LedgerError::GenesisMismatch {
                    stored,
                    given: network,
                });
            }
            Some(_) => match store.tree(Table::Meta).get(META_FORMAT)?.as_deref() {
                Some(FORMAT) => {}
                Some(FORMAT_V1) => migrate_v1(&store, network)?,
                _ => return Err(store::corrupt("unknown ledger storage format")),
            },
            None => init(&store, &genesis, network)?,
        }
        let mem = Mem::load(&store, network)?;
        let ctx = Ctx {
            network,
            treasury: genesis.treasury,
            genesis,
            supply,
            config,
        };
        Ok(Ledger {
            ctx,
            store,
            mem,
            poisoned: false,
        })
    }

    /// This ledger's network (its genesis hash).
    pub fn network(&self) -> NetworkId {
        self.ctx.network
    }

    /// The genesis it was opened with.
    pub fn genesis(&self) -> &Genesis {
        &self.ctx.genesis
    }

    /// Its bounds.
    pub fn config(&self) -> &LedgerConfig {
        &self.ctx.config
    }

    /// Verifies and applies one transfer received from anywhere (see [`Applied`] for what to
    /// do next). Refusals are errors and change nothing: invalid
    /// ([`LedgerError::Invalid`]), sender frozen ([`LedgerError::Frozen`]), hold-back full
    /// ([`LedgerError::HoldBackFull`]).
    pub fn apply(&mut self, transfer: SignedTransfer) -> Result<Applied, LedgerError> {
        let verified = transfer.verify(&self.ctx.network)?;
        self.apply_verified(verified)
    }

    /// [`Ledger::apply`] for a transfer already verified (e.g. on another thread).
    pub fn apply_verified(&mut self, transfer: VerifiedTransfer) -> Result<Applied, LedgerError> {
        let found = transfer.transfer().network;
        if found != self.ctx.network {
            return Err(crate::TransferError::WrongNetwork {
                expected: self.ctx.network,
                found,
            }
            .into());
        }
        self.run(|txn| accept(txn, transfer))?
    }

    /// Verifies all signatures first (pure work), then applies the valid ones in order in one
    /// sled transaction. One result per input, in input order; the outer error means storage
    /// failed and none of the batch was applied.
    pub fn apply_batch(
        &mut self,
        transfers: Vec<SignedTransfer>,
    ) -> Result<Vec<Result<Applied, LedgerError>>, LedgerError> {
        let network = self.ctx.network;
        let verified: Vec<_> = transfers.into_iter().map(|t| t.verify(&network)).collect();
        self.run(|txn| {
            let mut out: Vec<Outcome> = Vec::with_capacity(verified.len());
            for v in verified {
                out.push(match v {
                    Ok(v) => accept(txn, v)?,
                    Err(e) => Err(e.into()),
                });
            }
            Ok(out)
        })
    }

    /// Verifies an equivocation proof (from the network or found locally) and freezes its
    /// account from its seq: both transfers and every later one from that account are void on
    /// every replica that has the proof. If this undoes applied transfers, the state is
    /// recomputed from genesis (see the crate doc).
    pub fn apply_proof(&mut self, proof: EquivocationProof) -> Result<ProofOutcome, LedgerError> {
        let (account, seq) = proof.verify(&self.ctx.network)?;
        self.run(|txn| {
            let outcome = freeze(txn, &proof)?;
            if outcome.is_some() {
                for t in [&proof.a, &proof.b] {
                    if let Some(v) = VerifiedTransfer::from_trusted(t.clone()) {
                        txn.index_id(&v);
                    }
                }
            }
            Ok(match outcome {
                Some(reverted) => ProofOutcome::Frozen {
                    account,
                    from_seq: seq,
                    reverted,
                },
                None => ProofOutcome::AlreadyFrozen {
                    account,
                    from_seq: txn.frozen_at(&account).unwrap_or(seq),
                },
            })
        })
    }

    /// Builds, signs and applies the next transfer of `signer`'s account, then flushes the
    /// database before returning, so the seq can never be reused after a crash (reusing it
    /// would be an equivocation). Gossip the returned transfer.
    ///
    /// The seq is one past every transfer known from this account, held ones included. If the
    /// transfer would be the account's next applicable one but the balance does not cover it,
    /// nothing is signed ([`LedgerError::InsufficientFunds`]). A node that lost its database
    /// must sync its own account's history before sending again.
    pub fn transfer(
        &mut self,
        signer: &dyn Signer,
        to: Account,
        amount: Tokens,
        fee: Tokens,
        memo: impl Into<String>,
    ) -> Result<(SignedTransfer, Applied), LedgerError> {
        let from = signer.account();
        if let Some(from_seq) = self.mem.frozen.get(&from) {
            return Err(LedgerError::Frozen {
                account: from,
                from_seq: *from_seq,
            });
        }
        let state = self.mem.state(&from);
        let seq = match self.mem.held_of(&from).next_back() {
            Some(((_, last), _)) => last.saturating_add(1).max(state.next_seq),
            None => state.next_seq,
        };
        let transfer = Transfer {
            network: self.ctx.network,
            from,
            to,
            amount,
            fee,
            seq,
            memo: memo.into(),
        };
        let needed = transfer.check(&self.ctx.network)?;
        if seq == state.next_seq && state.balance < needed {
            return Err(LedgerError::InsufficientFunds {
                account: from,
                balance: state.balance,
                needed,
            });
        }
        let signed = transfer.sign(signer);
        let applied = self.apply_verified(signed.clone().verify(&self.ctx.network)?)?;
        self.flush()?;
        Ok((signed, applied))
    }

    /// Recomputes the whole state from genesis and every known transfer (what an equivocation
    /// triggers), rewriting whatever differs; returns the transfers that were applied and no
    /// longer are. On a healthy ledger this changes nothing — a repair and test tool.
    pub fn recompute(&mut self) -> Result<Vec<TransferId>, LedgerError> {
        self.run(recompute)
    }

    /// Flushes everything written so far to disk.
    pub fn flush(&self) -> Result<(), LedgerError> {
        self.store.db.flush()?;
        Ok(())
    }

    /// Runs `f` as one transaction. On any error the in-memory state, which `f` may have
    /// changed, is reloaded from disk, which the failed transaction did not touch.
    fn run<R>(
        &mut self,
        f: impl FnOnce(&mut Txn<'_>) -> Result<R, LedgerError>,
    ) -> Result<R, LedgerError> {
        if self.poisoned {
            return Err(LedgerError::Poisoned);
        }
        let mut txn = Txn::new(&self.store, &mut self.mem, &self.ctx);
        let result = f(&mut txn).and_then(|r| txn.commit().map(|()| r));
        if let Err(e) = &result {
            error!(error = %e, "ledger transaction failed; reloading state from disk");
            match Mem::load(&self.store, self.ctx.network) {
                Ok(mem) => self.mem = mem,
                Err(reload) => {
                    error!(error = %reload, "reloading ledger state failed; ledger poisoned");
                    self.poisoned = true;
                }
            }
        }
        result
    }
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("network", &self.ctx.network)
            .field("accounts", &self.mem.accounts.len())
            .field("held", &self.mem.held.len())
            .field("frozen", &self.mem.frozen.len())
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

/// Writes a fresh database's meta and genesis balances, atomically.
fn init(store: &Store, genesis: &Genesis, network: NetworkId) -> Result<(), LedgerError> {
    let mut writes = store::Writes::default();
    writes.set(Table::Meta, META_NETWORK.to_vec(), Some(network.0.to_vec()));
    writes.set(Table::Meta, META_FORMAT.to_vec(), Some(FORMAT.to_vec()));
    for (account, amount) in &genesis.accounts {
        if amount.0 > 0 {
            let state = store::AccountState::funded(*amount);
            writes.set(Table::Accounts, account.0.to_vec(), Some(state.encode()));
        }
    }
    store.commit(&writes)
}

/// Format 1 → 2: computes every account's history digest from its applied transfers, in one
/// atomic commit with the new format mark (a crash before it leaves format 1 to redo).
fn migrate_v1(store: &Store, network: NetworkId) -> Result<(), LedgerError> {
    let mem = Mem::load(store, network)?;
    let mut writes = store::Writes::default();
    for (account, state) in &mem.accounts {
        let mut state = *state;
        state.history = crate::HistoryDigest::default();
        for seq in 1..state.next_seq {
            let bytes = store
                .tree(Table::Applied)
                .get(store::slot_key(account, seq))?
                .ok_or_else(|| store::corrupt("an applied seq is missing"))?;
            let t = store::parse_transfer(&bytes, network)?;
            state.history = state.history.extend(&t.id());
        }
        writes.set(Table::Accounts, account.0.to_vec(), Some(state.encode()));
    }
    writes.set(Table::Meta, META_FORMAT.to_vec(), Some(FORMAT.to_vec()));
    store.commit(&writes)?;
    tracing::info!(
        accounts = mem.accounts.len(),
        "ledger storage migrated to format 2"
    );
    Ok(())
}

//! [`Txn`]: one atomic state change in progress. It mutates the in-memory state directly and
//! records every sled write; [`Txn::commit`] writes them in one transaction. If anything fails
//! before or during the commit, the caller reloads the in-memory state from disk (which the
//! failed transaction did not touch).

use crate::ledger::Ctx;
use crate::ledger::settle::Book;
use crate::ledger::store::{
    AccountState, Mem, Store, Table, Writes, corrupt, parse_transfer, slot_key,
};
use crate::{Account, EquivocationProof, LedgerError, VerifiedTransfer, wire};

pub(crate) struct Txn<'a> {
    pub(crate) store: &'a Store,
    pub(crate) mem: &'a mut Mem,
    pub(crate) ctx: &'a Ctx,
    writes: Writes,
}

impl<'a> Txn<'a> {
    pub(crate) fn new(store: &'a Store, mem: &'a mut Mem, ctx: &'a Ctx) -> Txn<'a> {
        Txn {
            store,
            mem,
            ctx,
            writes: Writes::default(),
        }
    }

    pub(crate) fn commit(self) -> Result<(), LedgerError> {
        self.store.commit(&self.writes)
    }

    /// A read that sees this transaction's own writes.
    fn read(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        if let Some(pending) = self.writes.get(table).get(key) {
            return Ok(pending.clone());
        }
        Ok(self.store.tree(table).get(key)?.map(|v| v.to_vec()))
    }

    pub(crate) fn frozen_at(&self, account: &Account) -> Option<u64> {
        self.mem.frozen.get(account).copied()
    }

    pub(crate) fn freeze(&mut self, account: Account, seq: u64) {
        self.mem.frozen.insert(account, seq);
        self.writes.set(
            Table::Frozen,
            account.0.to_vec(),
            Some(seq.to_be_bytes().to_vec()),
        );
    }

    pub(crate) fn put_proof(&mut self, proof: &EquivocationProof) {
        self.writes.set(
            Table::Proofs,
            proof.account().0.to_vec(),
            Some(wire::encode_proof(proof)),
        );
    }

    pub(crate) fn held(&self, account: &Account, seq: u64) -> Option<&VerifiedTransfer> {
        self.mem.held.get(&(*account, seq))
    }

    pub(crate) fn insert_held(&mut self, t: VerifiedTransfer) {
        let (from, seq) = (t.transfer().from, t.transfer().seq);
        self.writes.set(
            Table::Held,
            slot_key(&from, seq),
            Some(t.signed().stored_bytes()),
        );
        self.mem.insert_held(from, seq, t);
    }

    pub(crate) fn remove_held(&mut self, account: &Account, seq: u64) -> Option<VerifiedTransfer> {
        let t = self.mem.remove_held(account, seq)?;
        self.writes.set(Table::Held, slot_key(account, seq), None);
        Some(t)
    }

    /// The applied transfer at `(account, seq)`, if `seq < next_seq(account)`.
    pub(crate) fn applied(
        &self,
        account: &Account,
        seq: u64,
    ) -> Result<Option<VerifiedTransfer>, LedgerError> {
        self.read(Table::Applied, &slot_key(account, seq))?
            .map(|v| parse_transfer(&v, self.ctx.network))
            .transpose()
    }

    /// Like [`Txn::applied`], for a slot that must be applied by the ledger's invariant.
    pub(crate) fn applied_required(
        &self,
        account: &Account,
        seq: u64,
    ) -> Result<VerifiedTransfer, LedgerError> {
        self.applied(account, seq)?
            .ok_or_else(|| corrupt("an applied seq has no stored transfer"))
    }

    pub(crate) fn put_applied(&mut self, t: &VerifiedTransfer) {
        let (from, seq) = (t.transfer().from, t.transfer().seq);
        self.writes.set(
            Table::Applied,
            slot_key(&from, seq),
            Some(t.signed().stored_bytes()),
        );
    }

    pub(crate) fn remove_applied(&mut self, account: &Account, seq: u64) {
        self.writes
            .set(Table::Applied, slot_key(account, seq), None);
    }

    pub(crate) fn put_void(&mut self, t: &VerifiedTransfer) {
        let (from, seq) = (t.transfer().from, t.transfer().seq);
        self.writes.set(
            Table::Void,
            slot_key(&from, seq),
            Some(t.signed().stored_bytes()),
        );
    }

    /// Makes a transfer findable by id.
    pub(crate) fn index_id(&mut self, t: &VerifiedTransfer) {
        let slot = slot_key(&t.transfer().from, t.transfer().seq);
        self.writes.set(Table::Ids, t.id().0.to_vec(), Some(slot));
    }

    pub(crate) fn unindex_id(&mut self, t: &VerifiedTransfer) {
        self.writes.set(Table::Ids, t.id().0.to_vec(), None);
    }

    /// Indexes a newly accepted transfer by id and in both parties' history (ordered by a
    /// counter local to this database: arrival order here).
    pub(crate) fn index(&mut self, t: &VerifiedTransfer) -> Result<(), LedgerError> {
        self.index_id(t);
        let slot = slot_key(&t.transfer().from, t.transfer().seq);
        for party in [t.transfer().from, t.transfer().to] {
            let mut key = party.0.to_vec();
            key.extend_from_slice(&self.store.db.generate_id()?.to_be_bytes());
            self.writes.set(Table::History, key, Some(slot.clone()));
        }
        Ok(())
    }

    pub(crate) fn held_count(&self, account: &Account) -> usize {
        self.mem.held_count(account)
    }

    pub(crate) fn held_total(&self) -> usize {
        self.mem.held.len()
    }

    pub(crate) fn highest_held(&self, account: &Account) -> Option<u64> {
        self.mem
            .held_of(account)
            .next_back()
            .map(|((_, seq), _)| *seq)
    }
}

/// The incremental path: candidates are the held transfers, and applying one moves it from the
/// held tree to the applied tree.
impl Book for Txn<'_> {
    fn state(&self, account: &Account) -> AccountState {
        self.mem.state(account)
    }

    fn set_state(&mut self, account: Account, state: AccountState) {
        if state == AccountState::default() {
            self.mem.accounts.remove(&account);
            self.writes.set(Table::Accounts, account.0.to_vec(), None);
        } else {
            self.mem.accounts.insert(account, state);
            self.writes
                .set(Table::Accounts, account.0.to_vec(), Some(state.encode()));
        }
    }

    fn frozen(&self, account: &Account) -> Option<u64> {
        self.frozen_at(account)
    }

    fn candidate(
        &self,
        account: &Account,
        seq: u64,
    ) -> Result<Option<VerifiedTransfer>, LedgerError> {
        Ok(self.held(account, seq).cloned())
    }

    fn on_applied(&mut self, t: &VerifiedTransfer) -> Result<(), LedgerError> {
        self.remove_held(&t.transfer().from, t.transfer().seq);
        self.put_applied(t);
        Ok(())
    }
}

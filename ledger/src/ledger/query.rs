//! Read-only queries for the node, the CLI and anti-entropy.

use std::collections::HashSet;
use std::ops::Bound;

use crate::ledger::Ledger;
use crate::ledger::store::{Table, corrupt, parse_account, parse_slot, parse_transfer, slot_key};
use crate::{
    Account, Ack, Direction, EquivocationProof, Head, HistoryDigest, HistoryEntry, HoldReason,
    LedgerError, SignedTransfer, Snapshot, Tokens, TransferId, TransferState, VerifiedTransfer,
    wire,
};

impl Ledger {
    /// The account's balance (0 if never seen).
    pub fn balance(&self, account: &Account) -> Tokens {
        self.mem.state(account).balance
    }

    /// The seq the account's next applicable transfer must have (1 if it never sent).
    pub fn next_seq(&self, account: &Account) -> u64 {
        self.mem.state(account).next_seq
    }

    /// The first void seq of a frozen (equivocating) account.
    pub fn frozen(&self, account: &Account) -> Option<u64> {
        self.mem.frozen.get(account).copied()
    }

    /// The total supply, fixed by the genesis.
    pub fn total_supply(&self) -> Tokens {
        self.ctx.supply
    }

    /// The sum of all balances; always equal to [`Ledger::total_supply`]. O(accounts).
    pub fn sum_of_balances(&self) -> Result<Tokens, LedgerError> {
        self.mem
            .accounts
            .values()
            .try_fold(Tokens::ZERO, |sum, s| sum.checked_add(s.balance))
            .ok_or_else(|| corrupt("balances add up to more than u64::MAX"))
    }

    /// Number of held transfers.
    pub fn held_count(&self) -> usize {
        self.mem.held.len()
    }

    /// The transfer known at `(from, seq)`: applied, held, or void.
    pub fn get(&self, from: &Account, seq: u64) -> Result<Option<SignedTransfer>, LedgerError> {
        Ok(self.state_at(from, seq)?.map(|(t, _)| t.into_signed()))
    }

    /// A known transfer by id, with where it stands here. The second half of an equivocation
    /// is found through the account's proof; once a lower equivocation of the same account
    /// replaces that proof, it may no longer be found (it is void either way).
    pub fn find(
        &self,
        id: &TransferId,
    ) -> Result<Option<(SignedTransfer, TransferState)>, LedgerError> {
        let Some((from, seq)) = self.slot_of(id)? else {
            return Ok(None);
        };
        if let Some((t, state)) = self.state_at(&from, seq)?
            && t.id() == *id
        {
            return Ok(Some((t.into_signed(), state)));
        }
        // The other half of an equivocation is kept only in the proof.
        Ok(self.proof_of(&from)?.and_then(|p| {
            [p.a, p.b]
                .into_iter()
                .find(|t| t.id() == *id)
                .map(|t| (t, TransferState::Void))
        }))
    }

    /// Up to `limit` transfers of `from` with seq ≥ `seq`, in seq order: the applied ones, then
    /// the held ones (which may have gaps). What anti-entropy sends a peer that is behind.
    pub fn transfers_from(
        &self,
        from: &Account,
        seq: u64,
        limit: usize,
    ) -> Result<Vec<SignedTransfer>, LedgerError> {
        let next_seq = self.next_seq(from);
        let mut out = Vec::new();
        if seq < next_seq {
            let range = slot_key(from, seq)..slot_key(from, next_seq);
            for item in self.store.tree(Table::Applied).range(range).take(limit) {
                out.push(parse_transfer(&item?.1, self.ctx.network)?.into_signed());
            }
        }
        let rest = limit.saturating_sub(out.len());
        let held = self
            .mem
            .held
            .range((*from, seq.max(next_seq))..=(*from, u64::MAX));
        out.extend(held.take(rest).map(|(_, t)| t.signed().clone()));
        Ok(out)
    }

    /// Up to `limit` accounts after `after` (exclusive; from the start if `None`), in account
    /// order, with their next seq and history digest: the page of an anti-entropy summary.
    /// Accounts still in their initial state (0 tokens, seq 1) are not listed.
    pub fn heads(&self, after: Option<Account>, limit: usize) -> Vec<Head> {
        let start = match after {
            Some(a) => Bound::Excluded(a),
            None => Bound::Unbounded,
        };
        self.mem
            .accounts
            .range((start, Bound::Unbounded))
            .take(limit)
            .map(|(a, s)| Head {
                account: *a,
                next_seq: s.next_seq,
                history: s.history,
            })
            .collect()
    }

    /// The digest of `account`'s applied history (see [`HistoryDigest`]).
    pub fn history_digest(&self, account: &Account) -> HistoryDigest {
        self.mem.state(account).history
    }

    /// The acks stored for `id`, including those that arrived after it was final here.
    pub fn acks(&self, id: &TransferId) -> Result<Vec<Ack>, LedgerError> {
        self.store
            .tree(Table::Acks)
            .scan_prefix(id.0)
            .map(|item| {
                let (key, value) = item?;
                let signature: [u8; 64] = value
                    .as_ref()
                    .try_into()
                    .map_err(|_| corrupt("stored ack signature is not 64 bytes"))?;
                Ok(Ack {
                    transfer: *id,
                    acker: acker_of(&key)?,
                    signature,
                })
            })
            .collect()
    }

    /// Every stored equivocation proof (one per frozen account, the one with the lowest seq).
    pub fn proofs(&self) -> Result<Vec<EquivocationProof>, LedgerError> {
        self.store
            .tree(Table::Proofs)
            .iter()
            .map(|item| {
                wire::decode_proof(&item?.1).map_err(|_| corrupt("stored proof does not parse"))
            })
            .collect()
    }

    /// Up to `limit` transfers sent or received by `account`, newest first (in the order this
    /// replica learned of them), with their state here.
    pub fn history(
        &self,
        account: &Account,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, LedgerError> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for item in self.store.tree(Table::History).scan_prefix(account.0).rev() {
            if out.len() >= limit {
                break;
            }
            let (from, seq) = parse_slot(&item?.1)?;
            // A transfer evicted and fetched again has two entries; show it once.
            if !seen.insert((from, seq)) {
                continue;
            }
            let Some((t, state)) = self.state_at(&from, seq)? else {
                continue; // evicted from the hold-back and not fetched again (yet)
            };
            out.push(HistoryEntry {
                id: t.id(),
                direction: if from == *account {
                    Direction::Sent
                } else {
                    Direction::Received
                },
                transfer: t.into_signed(),
                state,
            });
        }
        Ok(out)
    }

    /// The whole replicated state (O(accounts + held)); see [`Snapshot`].
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            accounts: self
                .mem
                .accounts
                .iter()
                .map(|(a, s)| (*a, (s.balance, s.next_seq)))
                .collect(),
            frozen: self.mem.frozen.clone(),
            held: self.mem.held.values().map(VerifiedTransfer::id).collect(),
            histories: self
                .mem
                .accounts
                .iter()
                .filter(|(_, s)| s.next_seq > 1)
                .map(|(a, s)| (*a, s.history))
                .collect(),
        }
    }

    /// The slot a known id was accepted at.
    pub(crate) fn slot_of(&self, id: &TransferId) -> Result<Option<(Account, u64)>, LedgerError> {
        self.store
            .tree(Table::Ids)
            .get(id.0)?
            .map(|v| parse_slot(&v))
            .transpose()
    }

    /// The transfer stored at a slot and its state.
    pub(crate) fn state_at(
        &self,
        from: &Account,
        seq: u64,
    ) -> Result<Option<(VerifiedTransfer, TransferState)>, LedgerError> {
        let key = slot_key(from, seq);
        let next_seq = self.next_seq(from);
        if seq < next_seq {
            let t = self
                .store
                .tree(Table::Applied)
                .get(&key)?
                .ok_or_else(|| corrupt("an applied seq has no stored transfer"))?;
            let t = parse_transfer(&t, self.ctx.network)?;
            let state = if self.store.tree(Table::Final).contains_key(t.id().0)? {
                TransferState::Final
            } else {
                TransferState::Applied
            };
            return Ok(Some((t, state)));
        }
        if let Some(t) = self.mem.held.get(&(*from, seq)) {
            let reason = if seq == next_seq {
                HoldReason::Unfunded
            } else {
                HoldReason::Gap
            };
            return Ok(Some((t.clone(), TransferState::Held(reason))));
        }
        match self.store.tree(Table::Void).get(&key)? {
            Some(t) => Ok(Some((
                parse_transfer(&t, self.ctx.network)?,
                TransferState::Void,
            ))),
            None => Ok(None),
        }
    }

    fn proof_of(&self, account: &Account) -> Result<Option<EquivocationProof>, LedgerError> {
        self.store
            .tree(Table::Proofs)
            .get(account.0)?
            .map(|v| wire::decode_proof(&v).map_err(|_| corrupt("stored proof does not parse")))
            .transpose()
    }
}

/// The acker of an ack key (transfer id ‖ acker).
pub(crate) fn acker_of(key: &[u8]) -> Result<Account, LedgerError> {
    parse_account(key.get(32..).ok_or_else(|| corrupt("ack key too short"))?)
}

//! The set of collapsed peers: proven equivocators, weight 0 everywhere, permanently.

use libp2p::PeerId;
use std::collections::{HashSet, VecDeque};

/// Collapsed peers in the order they were collapsed, bounded.
///
/// The bound ([`crate::Config::max_collapsed`]) only matters against an attacker burning
/// thousands of keys on equivocation proofs; the oldest entries go first, and a forgotten key
/// is then merely unknown again (score 0 until someone honest trusts it anew).
#[derive(Debug)]
pub struct CollapsedSet {
    set: HashSet<PeerId>,
    order: VecDeque<PeerId>,
    max: usize,
    next_seq: u64,
}

/// What [`CollapsedSet::insert`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Collapse {
    /// Sequence number of the new entry (persisted, so the order survives a restart).
    pub seq: u64,
    /// The oldest peer, forgotten to make room.
    pub forgotten: Option<PeerId>,
}

impl CollapsedSet {
    /// An empty set holding at most `max` peers.
    pub fn new(max: usize) -> CollapsedSet {
        CollapsedSet {
            set: HashSet::new(),
            order: VecDeque::new(),
            max,
            next_seq: 0,
        }
    }

    /// Adds `peer`; `None` if it was already collapsed.
    pub fn insert(&mut self, peer: PeerId) -> Option<Collapse> {
        let seq = self.next_seq;
        self.restore(peer, seq).then(|| Collapse {
            seq,
            forgotten: self.trim(),
        })
    }

    /// Adds a peer read back from disk with its sequence number (load in sequence order).
    pub(crate) fn restore(&mut self, peer: PeerId, seq: u64) -> bool {
        if !self.set.insert(peer) {
            return false;
        }
        self.order.push_back(peer);
        self.next_seq = self.next_seq.max(seq.saturating_add(1));
        true
    }

    /// Forgets the oldest entry if over the bound.
    pub(crate) fn trim(&mut self) -> Option<PeerId> {
        if self.order.len() <= self.max {
            return None;
        }
        let old = self.order.pop_front()?;
        self.set.remove(&old);
        Some(old)
    }

    /// Whether `peer` is collapsed.
    pub fn contains(&self, peer: &PeerId) -> bool {
        self.set.contains(peer)
    }

    /// The set, for EigenTrust.
    pub fn as_set(&self) -> &HashSet<PeerId> {
        &self.set
    }

    /// Number of collapsed peers.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether none is collapsed.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::node;

    #[test]
    fn bounded_oldest_first() {
        let mut set = CollapsedSet::new(2);
        let first = Collapse {
            seq: 0,
            forgotten: None,
        };
        assert_eq!(set.insert(node(1)), Some(first));
        assert_eq!(set.insert(node(1)), None);
        assert_eq!(set.insert(node(2)).map(|c| c.seq), Some(1));
        assert_eq!(
            set.insert(node(3)),
            Some(Collapse {
                seq: 2,
                forgotten: Some(node(1))
            })
        );
        assert!(!set.contains(&node(1)) && set.contains(&node(3)));
        assert_eq!(set.len(), 2);
    }
}

//! Persistence in three sled trees of a database the node passes in.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `reputation-observations` | peer id bytes | [`StoredObservation`] (prost) |
//! | `reputation-collapsed` | peer id bytes | collapse sequence number, u64 big-endian |
//! | `reputation-reports` | issuer peer id bytes | the signed report, wire encoding |
//!
//! Everything read back is untrusted: a value that does not decode is skipped with a warning
//! and deleted, and reports are verified again like reports from the network.

use crate::error::Error;
use crate::observation::PeerObservation;
use crate::time::UnixMillis;
use libp2p::PeerId;
use prost::Message;

/// Tree of [`PeerObservation`]s.
pub const OBSERVATIONS_TREE: &str = "reputation-observations";
/// Tree of collapsed peers.
pub const COLLAPSED_TREE: &str = "reputation-collapsed";
/// Tree of received trust reports.
pub const REPORTS_TREE: &str = "reputation-reports";
/// Largest stored observation read back (they take ~60 bytes).
const MAX_OBSERVATION_BYTES: usize = 256;

/// A [`PeerObservation`] on disk.
#[derive(Clone, PartialEq, prost::Message)]
struct StoredObservation {
    #[prost(uint64, tag = "1")]
    first_seen_ms: u64,
    #[prost(uint64, tag = "2")]
    last_seen_ms: u64,
    #[prost(uint64, tag = "3")]
    connected_ms: u64,
    #[prost(bool, tag = "4")]
    connected: bool,
    #[prost(uint64, tag = "5")]
    receipts: u64,
    #[prost(uint64, tag = "6")]
    failed_calls: u64,
    #[prost(uint64, tag = "7")]
    invalid_messages: u64,
    #[prost(uint64, tag = "8")]
    forged_records: u64,
    #[prost(double, tag = "9")]
    penalty_points: f64,
    #[prost(uint64, tag = "10")]
    penalty_at_ms: u64,
}

impl From<&PeerObservation> for StoredObservation {
    fn from(o: &PeerObservation) -> Self {
        StoredObservation {
            first_seen_ms: o.first_seen.as_millis(),
            last_seen_ms: o.last_seen.as_millis(),
            connected_ms: o.connected_ms,
            connected: o.connected,
            receipts: o.receipts,
            failed_calls: o.failed_calls,
            invalid_messages: o.invalid_messages,
            forged_records: o.forged_records,
            penalty_points: o.penalty_points,
            penalty_at_ms: o.penalty_at.as_millis(),
        }
    }
}

impl From<StoredObservation> for PeerObservation {
    fn from(s: StoredObservation) -> Self {
        PeerObservation {
            first_seen: UnixMillis(s.first_seen_ms),
            last_seen: UnixMillis(s.last_seen_ms),
            connected_ms: s.connected_ms,
            connected: s.connected,
            receipts: s.receipts,
            failed_calls: s.failed_calls,
            invalid_messages: s.invalid_messages,
            forged_records: s.forged_records,
            penalty_points: if s.penalty_points.is_finite() {
                s.penalty_points.max(0.0)
            } else {
                0.0
            },
            penalty_at: UnixMillis(s.penalty_at_ms),
        }
    }
}

/// The three trees.
#[derive(Debug)]
pub(crate) struct Store {
    observations: sled::Tree,
    collapsed: sled::Tree,
    reports: sled::Tree,
}

impl Store {
    /// Opens (creating if needed) the trees in `db`.
    pub(crate) fn open(db: &sled::Db) -> Result<Store, Error> {
        Ok(Store {
            observations: db
                .open_tree(OBSERVATIONS_TREE)
                .map_err(Error::store("open observations tree"))?,
            collapsed: db
                .open_tree(COLLAPSED_TREE)
                .map_err(Error::store("open collapsed tree"))?,
            reports: db
                .open_tree(REPORTS_TREE)
                .map_err(Error::store("open reports tree"))?,
        })
    }

    /// Every stored observation that decodes.
    pub(crate) fn load_observations(&self) -> Result<Vec<(PeerId, PeerObservation)>, Error> {
        let mut out = Vec::new();
        for item in self.observations.iter() {
            let (key, value) = item.map_err(Error::store("read observations"))?;
            let decoded = PeerId::from_bytes(&key).ok().zip(
                (value.len() <= MAX_OBSERVATION_BYTES)
                    .then(|| StoredObservation::decode(value.as_ref()).ok())
                    .flatten(),
            );
            match decoded {
                Some((peer, stored)) => out.push((peer, stored.into())),
                None => {
                    tracing::warn!(key = ?key, "dropping an unreadable stored observation");
                    self.observations
                        .remove(&key)
                        .map_err(Error::store("delete unreadable observation"))?;
                }
            }
        }
        Ok(out)
    }

    /// Every collapsed peer with its sequence number, in collapse order.
    pub(crate) fn load_collapsed(&self) -> Result<Vec<(PeerId, u64)>, Error> {
        let mut out = Vec::new();
        for item in self.collapsed.iter() {
            let (key, value) = item.map_err(Error::store("read collapsed"))?;
            let seq = <[u8; 8]>::try_from(value.as_ref()).map(u64::from_be_bytes);
            match (PeerId::from_bytes(&key), seq) {
                (Ok(peer), Ok(seq)) => out.push((peer, seq)),
                _ => {
                    tracing::warn!(key = ?key, "dropping an unreadable collapsed entry");
                    self.collapsed
                        .remove(&key)
                        .map_err(Error::store("delete unreadable collapsed entry"))?;
                }
            }
        }
        out.sort_by_key(|(_, seq)| *seq);
        Ok(out)
    }

    /// Every stored report's bytes, with its key (for deletion if it no longer verifies).
    pub(crate) fn load_reports(&self) -> Result<Vec<(sled::IVec, sled::IVec)>, Error> {
        self.reports
            .iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(Error::store("read reports"))
    }

    /// Deletes a stored report by key.
    pub(crate) fn delete_report(&self, key: &[u8]) -> Result<(), Error> {
        self.reports
            .remove(key)
            .map(drop)
            .map_err(Error::store("delete report"))
    }

    /// Writes changed observations and deletes removed ones, atomically.
    pub(crate) fn write_observations(
        &self,
        changed: &[(PeerId, PeerObservation)],
        removed: &[PeerId],
    ) -> Result<(), Error> {
        let mut batch = sled::Batch::default();
        for (peer, obs) in changed {
            batch.insert(
                peer.to_bytes(),
                StoredObservation::from(obs).encode_to_vec(),
            );
        }
        for peer in removed {
            batch.remove(peer.to_bytes());
        }
        self.observations
            .apply_batch(batch)
            .map_err(Error::store("write observations"))
    }

    /// Writes changed reports and deletes removed ones, atomically.
    pub(crate) fn write_reports(
        &self,
        changed: &[(PeerId, Vec<u8>)],
        removed: &[PeerId],
    ) -> Result<(), Error> {
        let mut batch = sled::Batch::default();
        for (issuer, bytes) in changed {
            batch.insert(issuer.to_bytes(), bytes.as_slice());
        }
        for issuer in removed {
            batch.remove(issuer.to_bytes());
        }
        self.reports
            .apply_batch(batch)
            .map_err(Error::store("write reports"))
    }

    /// Records a collapse (and forgets the peer that made room, if any), atomically.
    pub(crate) fn write_collapse(
        &self,
        peer: PeerId,
        seq: u64,
        forgotten: Option<PeerId>,
    ) -> Result<(), Error> {
        let mut batch = sled::Batch::default();
        batch.insert(peer.to_bytes(), &seq.to_be_bytes());
        if let Some(old) = forgotten {
            batch.remove(old.to_bytes());
        }
        self.collapsed
            .apply_batch(batch)
            .map_err(Error::store("write collapse"))
    }

    /// Flushes the trees to disk (blocking: an fsync).
    pub(crate) fn flush(&self) -> Result<(), Error> {
        for tree in [&self.observations, &self.collapsed, &self.reports] {
            tree.flush().map_err(Error::store("flush"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::node;

    #[test]
    fn observations_round_trip_and_garbage_is_dropped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sled::open(dir.path()).expect("sled opens");
        let store = Store::open(&db).expect("trees open");
        let mut obs = PeerObservation::new(UnixMillis(7));
        obs.receipts = 3;
        obs.penalty_points = 1.5;
        store
            .write_observations(&[(node(1), obs.clone())], &[])
            .expect("write");
        db.open_tree(OBSERVATIONS_TREE)
            .expect("tree")
            .insert(b"not a peer", &b"junk"[..])
            .expect("insert");
        let loaded = store.load_observations().expect("load");
        assert_eq!(loaded, vec![(node(1), obs)]);
        assert_eq!(db.open_tree(OBSERVATIONS_TREE).expect("tree").len(), 1);
        store.write_observations(&[], &[node(1)]).expect("delete");
        assert!(store.load_observations().expect("load").is_empty());
    }

    #[test]
    fn collapsed_load_in_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sled::open(dir.path()).expect("sled opens");
        let store = Store::open(&db).expect("trees open");
        store.write_collapse(node(1), 5, None).expect("write");
        store.write_collapse(node(2), 2, None).expect("write");
        store
            .write_collapse(node(3), 9, Some(node(1)))
            .expect("write");
        let loaded = store.load_collapsed().expect("load");
        assert_eq!(loaded, vec![(node(2), 2), (node(3), 9)]);
    }
}

//! How the event store lays out its sled trees: tree names, key and value encodings.
//!
//! Every integer is big-endian, so sled's byte order is numeric order. Topic names never
//! contain a `0x00` byte (see [`TopicName`]), so `topic ++ 0x00` is an exact prefix for one
//! topic's entries in the shared trees: `a` and `a/b` never overlap.

use libp2p::PeerId;

use super::error::StoreError;
use super::id::EventId;
use crate::broker::TopicName;

/// Tree of per-topic counters ([`TopicMeta`]); its keys are the known topics.
pub(super) const META_TREE: &str = "events/meta";
/// Tree `EventId -> offset ++ topic`, for dedupe and lookup by id.
pub(super) const IDS_TREE: &str = "events/ids";
/// Tree `topic ++ 0x00 ++ publisher -> next expected seq`.
pub(super) const CURSORS_TREE: &str = "events/cursors";
/// Tree `topic ++ 0x00 ++ group -> next offset to deliver`.
pub(super) const GROUPS_TREE: &str = "events/groups";

/// Name of the tree `offset -> signed event bytes` of one topic.
pub(super) fn log_tree(topic: &TopicName) -> Vec<u8> {
    [b"events/log/", topic.as_str().as_bytes()].concat()
}

/// Name of the tree `len(publisher) ++ publisher ++ seq -> offset ++ id` of one topic.
pub(super) fn pubseq_tree(topic: &TopicName) -> Vec<u8> {
    [b"events/pubseq/", topic.as_str().as_bytes()].concat()
}

/// `topic ++ 0x00`: the prefix of one topic's keys in the cursors and groups trees.
pub(super) fn topic_prefix(topic: &TopicName) -> Vec<u8> {
    [topic.as_str().as_bytes(), &[0]].concat()
}

/// `topic ++ 0x00 ++ rest`.
pub(super) fn topic_key(topic: &TopicName, rest: &[u8]) -> Vec<u8> {
    [topic.as_str().as_bytes(), &[0], rest].concat()
}

/// `len(publisher) ++ publisher`: the prefix of one publisher's keys in a pubseq tree. The
/// length byte keeps one publisher's keys from being a prefix of another's.
pub(super) fn publisher_prefix(publisher: &PeerId) -> Vec<u8> {
    let bytes = publisher.to_bytes();
    let len = u8::try_from(bytes.len())
        .expect("a PeerId is a multihash of at most 64 digest bytes, so under 256 bytes");
    [&[len], bytes.as_slice()].concat()
}

/// `len(publisher) ++ publisher ++ seq`.
pub(super) fn pubseq_key(publisher: &PeerId, seq: u64) -> Vec<u8> {
    [publisher_prefix(publisher).as_slice(), &seq.to_be_bytes()].concat()
}

/// The seq at the end of a pubseq key.
pub(super) fn pubseq_key_seq(key: &[u8]) -> Result<u64, StoreError> {
    let tail = key
        .len()
        .checked_sub(8)
        .and_then(|start| key.get(start..))
        .ok_or_else(|| StoreError::Corrupt(format!("pubseq key of {} bytes", key.len())))?;
    be_u64(tail, "pubseq key")
}

/// `offset ++ id`: a pubseq value.
pub(super) fn pubseq_value(offset: u64, id: &EventId) -> Vec<u8> {
    [offset.to_be_bytes().as_slice(), id.as_bytes()].concat()
}

/// Splits a pubseq value into offset and id.
pub(super) fn parse_pubseq_value(value: &[u8]) -> Result<(u64, EventId), StoreError> {
    let corrupt = || StoreError::Corrupt(format!("pubseq value of {} bytes", value.len()));
    let (offset, id) = value.split_at_checked(8).ok_or_else(corrupt)?;
    let id: [u8; 32] = id.try_into().map_err(|_| corrupt())?;
    Ok((be_u64(offset, "pubseq offset")?, EventId(id)))
}

/// `offset ++ topic`: an ids value.
pub(super) fn ids_value(offset: u64, topic: &TopicName) -> Vec<u8> {
    [offset.to_be_bytes().as_slice(), topic.as_str().as_bytes()].concat()
}

/// Splits an ids value into offset and topic.
pub(super) fn parse_ids_value(value: &[u8]) -> Result<(u64, TopicName), StoreError> {
    let (offset, topic) = value
        .split_at_checked(8)
        .ok_or_else(|| StoreError::Corrupt(format!("ids value of {} bytes", value.len())))?;
    Ok((be_u64(offset, "ids offset")?, parse_topic(topic)?))
}

/// Parses topic bytes read from disk.
pub(super) fn parse_topic(bytes: &[u8]) -> Result<TopicName, StoreError> {
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|_| StoreError::Corrupt("a stored topic name is not UTF-8".into()))?;
    TopicName::try_from(text).map_err(|e| StoreError::Corrupt(format!("stored topic: {e}")))
}

/// Parses publisher bytes read from disk.
pub(super) fn parse_publisher(bytes: &[u8]) -> Result<PeerId, StoreError> {
    PeerId::from_bytes(bytes).map_err(|e| StoreError::Corrupt(format!("stored publisher: {e}")))
}

/// Reads an 8-byte big-endian integer from disk; `what` names it in the error.
pub(super) fn be_u64(bytes: &[u8], what: &str) -> Result<u64, StoreError> {
    let arr: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("{what} is {} bytes, not 8", bytes.len())))?;
    Ok(u64::from_be_bytes(arr))
}

/// One topic's counters, kept in the meta tree so nothing needs a scan: the next offset to
/// assign, and how many events and signed bytes the log holds now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct TopicMeta {
    /// The offset the next appended event gets; never decreases.
    pub next_offset: u64,
    /// Events in the log.
    pub events: u64,
    /// Signed bytes in the log.
    pub bytes: u64,
}

impl TopicMeta {
    /// `next_offset ++ events ++ bytes`, 24 bytes.
    pub fn encode(&self) -> [u8; 24] {
        let mut out = [0u8; 24];
        out[..8].copy_from_slice(&self.next_offset.to_be_bytes());
        out[8..16].copy_from_slice(&self.events.to_be_bytes());
        out[16..].copy_from_slice(&self.bytes.to_be_bytes());
        out
    }

    /// Parses what [`TopicMeta::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        if bytes.len() != 24 {
            return Err(StoreError::Corrupt(format!(
                "topic meta is {} bytes, not 24",
                bytes.len()
            )));
        }
        Ok(Self {
            next_offset: be_u64(&bytes[..8], "next offset")?,
            events: be_u64(&bytes[8..16], "event count")?,
            bytes: be_u64(&bytes[16..], "byte count")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::identity::Keypair;

    #[test]
    fn keys_sort_numerically_and_round_trip() {
        let p = Keypair::generate_ed25519().public().to_peer_id();
        assert!(pubseq_key(&p, 255) < pubseq_key(&p, 256));
        assert!(pubseq_key(&p, 1).starts_with(&publisher_prefix(&p)));
        assert_eq!(pubseq_key_seq(&pubseq_key(&p, 77)), Ok(77));
        let id = EventId([7; 32]);
        assert_eq!(parse_pubseq_value(&pubseq_value(9, &id)), Ok((9, id)));
        let t: TopicName = "a/b".parse().unwrap();
        assert_eq!(parse_ids_value(&ids_value(3, &t)), Ok((3, t.clone())));
        let a: TopicName = "a".parse().unwrap();
        assert!(!topic_key(&t, b"x").starts_with(&topic_prefix(&a)));
        let meta = TopicMeta {
            next_offset: 1,
            events: 2,
            bytes: u64::MAX,
        };
        assert_eq!(TopicMeta::decode(&meta.encode()), Ok(meta));
    }

    #[test]
    fn garbage_is_corrupt_not_a_panic() {
        assert!(TopicMeta::decode(b"short").is_err());
        assert!(parse_pubseq_value(b"short").is_err());
        assert!(parse_ids_value(b"1234567\xff").is_err());
        assert!(parse_ids_value(b"12345678\xff").is_err());
        assert!(pubseq_key_seq(b"1").is_err());
        assert!(parse_publisher(b"\x01").is_err());
    }
}

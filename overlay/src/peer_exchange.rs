//! `/micro/peers/1.0.0`: "who are you connected to, with which role and addresses".
//!
//! A request-response protocol with a bounded prost codec. Replies from the network are
//! untrusted: [`PeerList::from_wire`] checks every field and drops what does not parse, and a
//! reply with more entries than the configured limit is refused whole.

use std::time::Duration;

use libp2p::{Multiaddr, PeerId, StreamProtocol};
use serde::{Deserialize, Serialize};

use crate::codec::ProstCodec;
use crate::config::PeerExchangeConfig;
use crate::{Role, proto};

/// The protocol id.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/micro/peers/1.0.0");

/// Longest agent string kept from a reply; longer ones are cut.
const MAX_AGENT_CHARS: usize = 128;

/// One connection a node reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerEntry {
    /// The connected peer.
    pub peer_id: PeerId,
    /// Its role as the reporter knows it.
    pub role: Option<Role>,
    /// Where it can be dialled.
    pub addrs: Vec<Multiaddr>,
    /// The reporter's measured round-trip time to it.
    pub rtt: Option<Duration>,
}

/// A validated peer-exchange reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerList {
    /// The responder's role.
    pub role: Option<Role>,
    /// The responder's agent string (at most 128 characters).
    pub agent: String,
    /// The responder's listen addresses.
    pub listen_addrs: Vec<Multiaddr>,
    /// The responder's connections.
    pub peers: Vec<PeerEntry>,
    /// The responder had more connections than it sent.
    pub truncated: bool,
    /// Entries or addresses dropped because they did not parse.
    pub dropped: usize,
}

/// Why a reply was refused whole.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PeerExchangeError {
    /// More entries than this node accepts in one reply.
    #[error("reply lists {got} peers, more than the limit of {limit}")]
    TooManyPeers {
        /// Entries in the reply.
        got: usize,
        /// The configured limit.
        limit: usize,
    },
}

impl PeerList {
    /// Checks a decoded reply. Invalid peer ids and addresses are dropped and counted; too
    /// many entries refuse the reply.
    pub fn from_wire(
        msg: proto::PeersResponse,
        limits: &PeerExchangeConfig,
    ) -> Result<Self, PeerExchangeError> {
        if msg.peers.len() > limits.max_peers_per_reply {
            return Err(PeerExchangeError::TooManyPeers {
                got: msg.peers.len(),
                limit: limits.max_peers_per_reply,
            });
        }
        let mut dropped = 0;
        let listen_addrs = parse_addrs(msg.listen_addrs, limits.max_addrs_per_entry, &mut dropped);
        let mut peers = Vec::with_capacity(msg.peers.len());
        for entry in msg.peers {
            let Ok(peer_id) = PeerId::from_bytes(&entry.peer_id) else {
                dropped += 1;
                continue;
            };
            peers.push(PeerEntry {
                peer_id,
                role: Role::from_wire(entry.role),
                addrs: parse_addrs(entry.addrs, limits.max_addrs_per_entry, &mut dropped),
                rtt: (entry.rtt_micros > 0).then(|| Duration::from_micros(entry.rtt_micros)),
            });
        }
        Ok(PeerList {
            role: Role::from_wire(msg.role),
            agent: msg.agent.chars().take(MAX_AGENT_CHARS).collect(),
            listen_addrs,
            peers,
            truncated: msg.truncated,
            dropped,
        })
    }

    /// Encodes this list for the wire, keeping at most `limits` entries and addresses.
    pub fn to_wire(&self, limits: &PeerExchangeConfig) -> proto::PeersResponse {
        let addrs = |addrs: &[Multiaddr]| {
            addrs
                .iter()
                .take(limits.max_addrs_per_entry)
                .map(|a| a.to_vec())
                .collect()
        };
        proto::PeersResponse {
            role: self.role.map_or(0, Role::to_wire),
            agent: self.agent.chars().take(MAX_AGENT_CHARS).collect(),
            listen_addrs: addrs(&self.listen_addrs),
            peers: self
                .peers
                .iter()
                .take(limits.max_peers_per_reply)
                .map(|p| proto::PeerEntry {
                    peer_id: p.peer_id.to_bytes(),
                    role: p.role.map_or(0, Role::to_wire),
                    addrs: addrs(&p.addrs),
                    rtt_micros: p
                        .rtt
                        .map_or(0, |d| d.as_micros().try_into().unwrap_or(u64::MAX)),
                })
                .collect(),
            truncated: self.truncated || self.peers.len() > limits.max_peers_per_reply,
        }
    }
}

fn parse_addrs(raw: Vec<Vec<u8>>, limit: usize, dropped: &mut usize) -> Vec<Multiaddr> {
    let mut out = Vec::new();
    for bytes in raw {
        match Multiaddr::try_from(bytes) {
            Ok(addr) if out.len() < limit => out.push(addr),
            _ => *dropped += 1,
        }
    }
    out
}

/// The bounded prost codec for [`PROTOCOL`].
pub type Codec = ProstCodec<proto::PeersRequest, proto::PeersResponse>;

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::io::Cursor;
    use libp2p::request_response::Codec as _;
    use proptest::prelude::*;
    use prost::Message;
    use std::io;

    fn sample(n: usize) -> PeerList {
        PeerList {
            role: Some(Role::Super),
            agent: Role::Super.agent_version(),
            listen_addrs: vec!["/ip4/127.0.0.1/tcp/4001".parse().expect("addr")],
            peers: (0..n)
                .map(|i| PeerEntry {
                    peer_id: PeerId::random(),
                    role: Some(if i % 2 == 0 { Role::Peer } else { Role::Super }),
                    addrs: vec![
                        format!("/ip4/127.0.0.1/tcp/{}", 5000 + i)
                            .parse()
                            .expect("addr"),
                    ],
                    rtt: Some(Duration::from_micros(250 + i as u64)),
                })
                .collect(),
            truncated: false,
            dropped: 0,
        }
    }

    fn round_trip(
        list: &PeerList,
        limits: &PeerExchangeConfig,
    ) -> io::Result<proto::PeersResponse> {
        let mut codec = Codec::symmetric(limits.max_message_bytes);
        let mut wire = Cursor::new(Vec::new());
        block_on(codec.write_response(&PROTOCOL, &mut wire, list.to_wire(limits)))?;
        block_on(codec.read_response(&PROTOCOL, &mut Cursor::new(wire.into_inner())))
    }

    #[test]
    fn a_full_reply_round_trips() {
        let limits = PeerExchangeConfig::default();
        let list = sample(limits.max_peers_per_reply);
        let back = PeerList::from_wire(round_trip(&list, &limits).expect("fits"), &limits);
        assert_eq!(back.expect("valid"), list);
    }

    #[test]
    fn to_wire_caps_entries_and_marks_truncation() {
        let limits = PeerExchangeConfig {
            max_peers_per_reply: 3,
            ..PeerExchangeConfig::default()
        };
        let wire = sample(10).to_wire(&limits);
        assert_eq!(wire.peers.len(), 3);
        assert!(wire.truncated);
    }

    #[test]
    fn too_many_entries_refuse_the_reply() {
        let generous = PeerExchangeConfig {
            max_peers_per_reply: 50,
            ..PeerExchangeConfig::default()
        };
        let strict = PeerExchangeConfig {
            max_peers_per_reply: 5,
            ..PeerExchangeConfig::default()
        };
        let err = PeerList::from_wire(sample(6).to_wire(&generous), &strict).unwrap_err();
        assert_eq!(err, PeerExchangeError::TooManyPeers { got: 6, limit: 5 });
    }

    #[test]
    fn garbage_entries_are_dropped_and_counted() {
        let limits = PeerExchangeConfig::default();
        let mut wire = sample(2).to_wire(&limits);
        wire.peers[0].peer_id = vec![1, 2, 3];
        wire.peers[1].addrs.push(vec![0xff, 0xff]);
        let list = PeerList::from_wire(wire, &limits).expect("still valid");
        assert_eq!(list.peers.len(), 1);
        assert_eq!(list.peers[0].addrs.len(), 1);
        assert_eq!(list.dropped, 2);
    }

    #[test]
    fn an_oversized_reply_is_refused_by_the_reader() {
        let big = PeerExchangeConfig {
            max_message_bytes: 1 << 20,
            ..PeerExchangeConfig::default()
        };
        let mut wire = Cursor::new(Vec::new());
        let mut writer = Codec::symmetric(big.max_message_bytes);
        block_on(writer.write_response(&PROTOCOL, &mut wire, sample(128).to_wire(&big)))
            .expect("write");
        let mut reader = Codec::symmetric(1024);
        let err = block_on(reader.read_response(&PROTOCOL, &mut Cursor::new(wire.into_inner())))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let limits = PeerExchangeConfig::default();
            let mut codec = Codec::symmetric(limits.max_message_bytes);
            if let Ok(msg) = block_on(codec.read_response(&PROTOCOL, &mut Cursor::new(bytes.clone()))) {
                let _ = PeerList::from_wire(msg, &limits);
            }
            let _ = block_on(codec.read_request(&PROTOCOL, &mut Cursor::new(bytes.clone())));
            // The body alone, decoded as a message, must not panic either.
            if let Ok(msg) = proto::PeersResponse::decode(bytes.as_slice()) {
                let _ = PeerList::from_wire(msg, &limits);
            }
        }
    }
}

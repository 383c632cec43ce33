//! Signed trust reports: a node's normalised local trust in its top-K peers, as gossiped.
//!
//! A [`TrustReport`] can only be obtained by signing ([`TrustReport::sign`]) or by decoding and
//! verifying ([`TrustReport::decode`]), so holding one means its signature, issuer and entries
//! are valid. Freshness (expiry, replay, newer-replaces-older) depends on the receiver's clock
//! and store and is checked by [`crate::ReportStore::accept`].

use crate::time::{HOUR_MS, MINUTE_MS, UnixMillis};
use crate::wire::{WireEntry, WireReportBody, WireSignedReport};
use libp2p::PeerId;
use libp2p::identity::{Keypair, PublicKey, SigningError};
use prost::Message;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Prefix of every signed message, so a report signature can never be replayed as a signature
/// over anything else the same key signs (records, transfers).
pub const SIGNING_DOMAIN: &[u8] = b"micro-reputation-trust-report-v1:";

/// A normalised trust value `c_ij` in fixed point: parts per billion, at most [`TrustWeight::ONE`].
///
/// Fixed point keeps the wire format canonical and leaves no room for NaN, infinities or
/// negative values, which an `f32` would have to be checked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TrustWeight(u32);

impl TrustWeight {
    /// Full trust: 1.0.
    pub const ONE: TrustWeight = TrustWeight(1_000_000_000);

    /// A weight of `parts` per billion, if at most one.
    pub fn new(parts: u32) -> Option<TrustWeight> {
        (parts <= Self::ONE.0).then_some(TrustWeight(parts))
    }

    /// The weight nearest below `fraction`, clamped to `[0, 1]` (NaN gives 0).
    pub fn from_fraction(fraction: f64) -> TrustWeight {
        if fraction.is_nan() || fraction <= 0.0 {
            return TrustWeight(0);
        }
        let parts = (fraction.min(1.0) * f64::from(Self::ONE.0)).floor();
        // `parts` is in [0, 1e9] after the clamp, so the cast is exact.
        TrustWeight(parts as u32)
    }

    /// Parts per billion.
    pub fn get(self) -> u32 {
        self.0
    }

    /// As a fraction in `[0, 1]`.
    pub fn as_fraction(self) -> f64 {
        f64::from(self.0) / f64::from(Self::ONE.0)
    }
}

/// One entry of a report: the issuer trusts `peer` with normalised weight `trust`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustEntry {
    /// The trusted peer.
    pub peer: PeerId,
    /// `c_ij`, normalised over everything the issuer trusts.
    pub trust: TrustWeight,
}

/// Limits and lifetimes of trust reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportConfig {
    /// Entries per report at most (the K of top-K). Default 64.
    pub max_entries: usize,
    /// Encoded size at most, checked before decoding. Default 8 KiB (64 entries take ~3.3 KiB).
    pub max_bytes: usize,
    /// Reports held at most (one per issuer). Default 16 384. When full, a report from an
    /// issuer scoring higher than the lowest-scored held issuer replaces that one's; otherwise it
    /// is refused with [`ReportError::StoreFull`] (its issuer's trust carries no weight anyway).
    pub max_reports: usize,
    /// A report older than this is refused, and dropped at the next recompute. Default 6 h; the
    /// node should republish at least every 30 minutes.
    pub ttl_ms: u64,
    /// How far in the future an issue time may be. Default 1 minute.
    pub max_clock_skew_ms: u64,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            max_entries: 64,
            max_bytes: 8 * 1024,
            max_reports: 16_384,
            ttl_ms: 6 * HOUR_MS,
            max_clock_skew_ms: MINUTE_MS,
        }
    }
}

/// Why a report was not made, decoded or accepted.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The encoded report is over the size limit; it was not decoded.
    #[error("report is {size} bytes, over the {max}-byte limit")]
    TooLarge {
        /// Encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not a report.
    #[error("report does not decode: {0}")]
    Decode(#[from] prost::DecodeError),
    /// The public key does not decode.
    #[error("report public key does not decode")]
    BadPublicKey,
    /// The issuer field is not a peer id.
    #[error("report issuer is not a peer id")]
    BadIssuer,
    /// An entry's peer field is not a peer id.
    #[error("entry {index} of the report is not a peer id")]
    BadEntryPeer {
        /// Position of the entry.
        index: usize,
    },
    /// The key that signed is not the issuer's.
    #[error("report claims issuer {issuer} but carries the key of {key_owner}")]
    IssuerMismatch {
        /// The claimed issuer.
        issuer: PeerId,
        /// The owner of the carried key (boxed: two peer ids would make every `Result` of this
        /// error 160 bytes).
        key_owner: Box<PeerId>,
    },
    /// The signature does not verify.
    #[error("signature of the report from {issuer} does not verify")]
    BadSignature {
        /// The claimed issuer.
        issuer: PeerId,
    },
    /// Signing our own report failed.
    #[error("signing the report failed: {0}")]
    Signing(#[from] SigningError),
    /// More entries than allowed.
    #[error("report has {count} entries, over the limit of {max}")]
    TooManyEntries {
        /// Entries in the report.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The same peer appears twice.
    #[error("report lists {peer} twice")]
    DuplicateEntry {
        /// The repeated peer.
        peer: PeerId,
    },
    /// The issuer lists itself.
    #[error("issuer {issuer} reports trust in itself")]
    SelfEntry {
        /// The issuer.
        issuer: PeerId,
    },
    /// A trust value is zero or above one.
    #[error("entry for {peer} has trust {parts} parts per billion, outside 1..=1e9")]
    InvalidTrust {
        /// The peer of the entry.
        peer: PeerId,
        /// The value carried.
        parts: u32,
    },
    /// The entries add up to more than full trust.
    #[error("entries sum to {sum} parts per billion, more than 1e9")]
    TrustOverflow {
        /// The sum.
        sum: u64,
    },
    /// Issued too far in the future.
    #[error("report issued at {issued_at}, more than {max_skew_ms} ms after now ({now})")]
    FromTheFuture {
        /// Issue time.
        issued_at: UnixMillis,
        /// Receiver's now.
        now: UnixMillis,
        /// Allowed skew.
        max_skew_ms: u64,
    },
    /// Older than the report lifetime.
    #[error("report issued at {issued_at} has expired (lifetime {ttl_ms} ms, now {now})")]
    Expired {
        /// Issue time.
        issued_at: UnixMillis,
        /// Receiver's now.
        now: UnixMillis,
        /// The lifetime.
        ttl_ms: u64,
    },
    /// Not newer than the report already held from the same issuer (an old or replayed one).
    #[error("report from {issuer} issued at {issued_at} is not newer than the held one ({held})")]
    Stale {
        /// The issuer.
        issuer: PeerId,
        /// Issue time of the refused report.
        issued_at: UnixMillis,
        /// Issue time of the held report.
        held: UnixMillis,
    },
    /// The issuer has been collapsed (proven equivocation); its reports are ignored.
    #[error("issuer {issuer} is collapsed; its reports are ignored")]
    CollapsedIssuer {
        /// The issuer.
        issuer: PeerId,
    },
    /// The store is full of reports from issuers scoring at least as high.
    #[error("report store full ({max} issuers) of issuers scoring at least as high as {issuer}")]
    StoreFull {
        /// The issuer.
        issuer: PeerId,
        /// The limit.
        max: usize,
    },
}

impl ReportError {
    /// Whether the error proves the sender sent an invalid message (so the node should penalise
    /// the peer that forwarded it and reject it in gossipsub validation), as opposed to a report
    /// that is merely old, early, unwanted or from a collapsed issuer (ignore, do not forward).
    pub fn is_invalid(&self) -> bool {
        !matches!(
            self,
            ReportError::Signing(_)
                | ReportError::FromTheFuture { .. }
                | ReportError::Expired { .. }
                | ReportError::Stale { .. }
                | ReportError::CollapsedIssuer { .. }
                | ReportError::StoreFull { .. }
        )
    }
}

/// A verified, signed trust report.
#[derive(Clone, Debug, PartialEq)]
pub struct TrustReport {
    issuer: PeerId,
    issued_at: UnixMillis,
    entries: Vec<TrustEntry>,
    /// The exact signed body, kept so the report re-encodes byte for byte.
    body: Vec<u8>,
    public_key: Vec<u8>,
    signature: Vec<u8>,
}

impl TrustReport {
    /// Signs a report of `entries` issued by `keypair` at `issued_at`.
    ///
    /// # Errors
    /// The entries break a rule of [`TrustReport::decode`] (too many, duplicate, self, zero,
    /// overflow), or the key cannot sign.
    pub fn sign(
        keypair: &Keypair,
        issued_at: UnixMillis,
        entries: Vec<TrustEntry>,
        config: &ReportConfig,
    ) -> Result<TrustReport, ReportError> {
        let issuer = keypair.public().to_peer_id();
        check_entries(issuer, &entries, config.max_entries)?;
        let body = WireReportBody {
            issuer: issuer.to_bytes(),
            issued_at_ms: issued_at.as_millis(),
            entries: entries
                .iter()
                .map(|e| WireEntry {
                    peer: e.peer.to_bytes(),
                    trust: e.trust.get(),
                })
                .collect(),
        }
        .encode_to_vec();
        let signature = keypair.sign(&signed_message(&body))?;
        Ok(TrustReport {
            issuer,
            issued_at,
            entries,
            body,
            public_key: keypair.public().encode_protobuf(),
            signature,
        })
    }

    /// Decodes and verifies a report received from the network (or read from disk).
    ///
    /// Checks, cheapest first: size (before decoding), decoding, entry count, that the carried
    /// key is the issuer's, the signature, then every entry (a peer id, not the issuer, not
    /// repeated, trust in `1..=1e9`, total at most 1e9).
    ///
    /// # Errors
    /// The [`ReportError`] naming the first rule broken.
    pub fn decode(bytes: &[u8], config: &ReportConfig) -> Result<TrustReport, ReportError> {
        if bytes.len() > config.max_bytes {
            return Err(ReportError::TooLarge {
                size: bytes.len(),
                max: config.max_bytes,
            });
        }
        let signed = WireSignedReport::decode(bytes)?;
        let wire = WireReportBody::decode(signed.body.as_slice())?;
        if wire.entries.len() > config.max_entries {
            return Err(ReportError::TooManyEntries {
                count: wire.entries.len(),
                max: config.max_entries,
            });
        }
        let issuer = PeerId::from_bytes(&wire.issuer).map_err(|_| ReportError::BadIssuer)?;
        let key = PublicKey::try_decode_protobuf(&signed.public_key)
            .map_err(|_| ReportError::BadPublicKey)?;
        let key_owner = key.to_peer_id();
        if key_owner != issuer {
            return Err(ReportError::IssuerMismatch {
                issuer,
                key_owner: Box::new(key_owner),
            });
        }
        if !key.verify(&signed_message(&signed.body), &signed.signature) {
            return Err(ReportError::BadSignature { issuer });
        }
        let entries = wire
            .entries
            .iter()
            .enumerate()
            .map(|(index, e)| {
                let peer =
                    PeerId::from_bytes(&e.peer).map_err(|_| ReportError::BadEntryPeer { index })?;
                let trust = TrustWeight::new(e.trust).ok_or(ReportError::InvalidTrust {
                    peer,
                    parts: e.trust,
                })?;
                Ok(TrustEntry { peer, trust })
            })
            .collect::<Result<Vec<_>, ReportError>>()?;
        check_entries(issuer, &entries, config.max_entries)?;
        Ok(TrustReport {
            issuer,
            issued_at: UnixMillis(wire.issued_at_ms),
            entries,
            body: signed.body,
            public_key: signed.public_key,
            signature: signed.signature,
        })
    }

    /// The wire encoding (what [`TrustReport::decode`] reads).
    pub fn encode(&self) -> Vec<u8> {
        WireSignedReport {
            body: self.body.clone(),
            public_key: self.public_key.clone(),
            signature: self.signature.clone(),
        }
        .encode_to_vec()
    }

    /// The node whose trust this is.
    pub fn issuer(&self) -> PeerId {
        self.issuer
    }

    /// When the issuer made it (its clock).
    pub fn issued_at(&self) -> UnixMillis {
        self.issued_at
    }

    /// The entries, in the issuer's order (most trusted first for reports made by this crate).
    pub fn entries(&self) -> &[TrustEntry] {
        &self.entries
    }

    /// The trust the issuer puts in `peer` (zero if not listed).
    pub fn trust_in(&self, peer: &PeerId) -> TrustWeight {
        self.entries
            .iter()
            .find(|e| e.peer == *peer)
            .map_or(TrustWeight(0), |e| e.trust)
    }
}

fn signed_message(body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNING_DOMAIN.len() + body.len());
    message.extend_from_slice(SIGNING_DOMAIN);
    message.extend_from_slice(body);
    message
}

fn check_entries(
    issuer: PeerId,
    entries: &[TrustEntry],
    max_entries: usize,
) -> Result<(), ReportError> {
    if entries.len() > max_entries {
        return Err(ReportError::TooManyEntries {
            count: entries.len(),
            max: max_entries,
        });
    }
    let mut seen = HashSet::with_capacity(entries.len());
    let mut sum: u64 = 0;
    for entry in entries {
        if entry.peer == issuer {
            return Err(ReportError::SelfEntry { issuer });
        }
        if !seen.insert(entry.peer) {
            return Err(ReportError::DuplicateEntry { peer: entry.peer });
        }
        if entry.trust.get() == 0 || entry.trust > TrustWeight::ONE {
            return Err(ReportError::InvalidTrust {
                peer: entry.peer,
                parts: entry.trust.get(),
            });
        }
        sum += u64::from(entry.trust.get());
    }
    if sum > u64::from(TrustWeight::ONE.get()) {
        return Err(ReportError::TrustOverflow { sum });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{keypair, peer};
    use proptest::prelude::*;

    fn entry(n: u32, parts: u32) -> TrustEntry {
        TrustEntry {
            peer: peer(n),
            trust: TrustWeight(parts),
        }
    }

    /// Signs arbitrary wire content, bypassing `sign`'s checks, to test the decoder.
    fn forge(key: &Keypair, body: WireReportBody) -> Vec<u8> {
        let body = body.encode_to_vec();
        WireSignedReport {
            signature: key.sign(&signed_message(&body)).expect("ed25519 signs"),
            public_key: key.public().encode_protobuf(),
            body,
        }
        .encode_to_vec()
    }

    fn body_of(key: &Keypair, entries: &[(Vec<u8>, u32)]) -> WireReportBody {
        WireReportBody {
            issuer: key.public().to_peer_id().to_bytes(),
            issued_at_ms: 5,
            entries: entries
                .iter()
                .map(|(peer, trust)| WireEntry {
                    peer: peer.clone(),
                    trust: *trust,
                })
                .collect(),
        }
    }

    #[test]
    fn a_signed_report_round_trips() {
        let key = keypair(1);
        let config = ReportConfig::default();
        let entries = vec![entry(2, 600_000_000), entry(3, 400_000_000)];
        let report = TrustReport::sign(&key, UnixMillis(42), entries.clone(), &config)
            .expect("valid report");
        let bytes = report.encode();
        let decoded = TrustReport::decode(&bytes, &config).expect("decodes");
        assert_eq!(decoded, report);
        assert_eq!(decoded.issuer(), peer(1));
        assert_eq!(decoded.issued_at(), UnixMillis(42));
        assert_eq!(decoded.entries(), entries.as_slice());
        assert_eq!(decoded.trust_in(&peer(3)), TrustWeight(400_000_000));
        assert_eq!(decoded.trust_in(&peer(9)), TrustWeight(0));
        let full = (0..64).map(|i| entry(10 + i, 15_000_000)).collect();
        let full = TrustReport::sign(&key, UnixMillis(1), full, &config).expect("64 entries");
        assert!(full.encode().len() < config.max_bytes);
    }

    #[test]
    fn tampering_breaks_the_signature() {
        let key = keypair(1);
        let config = ReportConfig::default();
        let report =
            TrustReport::sign(&key, UnixMillis(1), vec![entry(2, 10)], &config).expect("valid");
        let mut signed = WireSignedReport::decode(report.encode().as_slice()).expect("decodes");
        let mut body = WireReportBody::decode(signed.body.as_slice()).expect("decodes");
        body.entries[0].trust = TrustWeight::ONE.get();
        signed.body = body.encode_to_vec();
        let err = TrustReport::decode(&signed.encode_to_vec(), &config).unwrap_err();
        assert!(matches!(err, ReportError::BadSignature { .. }), "{err}");
        assert!(err.is_invalid());
    }

    #[test]
    fn a_report_signed_by_another_key_is_a_mismatch() {
        let config = ReportConfig::default();
        let mut body = body_of(&keypair(1), &[(peer(2).to_bytes(), 5)]);
        body.issuer = peer(3).to_bytes();
        let err = TrustReport::decode(&forge(&keypair(1), body), &config).unwrap_err();
        assert!(matches!(err, ReportError::IssuerMismatch { .. }), "{err}");
    }

    #[test]
    fn the_decoder_refuses_each_broken_rule() {
        let config = ReportConfig {
            max_entries: 3,
            ..ReportConfig::default()
        };
        let key = keypair(1);
        let me = peer(1).to_bytes();
        let (a, b) = (peer(2).to_bytes(), peer(3).to_bytes());
        type Case = (Vec<(Vec<u8>, u32)>, fn(&ReportError) -> bool);
        let cases: Vec<Case> = vec![
            (vec![(a.clone(), 1); 4], |e| {
                matches!(e, ReportError::TooManyEntries { count: 4, max: 3 })
            }),
            (vec![(a.clone(), 1), (a.clone(), 1)], |e| {
                matches!(e, ReportError::DuplicateEntry { .. })
            }),
            (vec![(me, 1)], |e| {
                matches!(e, ReportError::SelfEntry { .. })
            }),
            (vec![(a.clone(), 0)], |e| {
                matches!(e, ReportError::InvalidTrust { parts: 0, .. })
            }),
            (vec![(a.clone(), 1_000_000_001)], |e| {
                matches!(e, ReportError::InvalidTrust { .. })
            }),
            (vec![(a.clone(), 600_000_000), (b, 600_000_000)], |e| {
                matches!(e, ReportError::TrustOverflow { sum: 1_200_000_000 })
            }),
            (vec![(vec![1, 2, 3], 1)], |e| {
                matches!(e, ReportError::BadEntryPeer { index: 0 })
            }),
        ];
        for (entries, expected) in cases {
            let err = TrustReport::decode(&forge(&key, body_of(&key, &entries)), &config)
                .expect_err("broken report");
            assert!(expected(&err), "unexpected error: {err}");
            assert!(err.is_invalid());
        }
        let err = TrustReport::decode(&vec![0; config.max_bytes + 1], &config).unwrap_err();
        assert!(matches!(err, ReportError::TooLarge { .. }));
        // `sign` enforces the same rules.
        let err = TrustReport::sign(&key, UnixMillis(0), vec![entry(1, 5)], &config).unwrap_err();
        assert!(matches!(err, ReportError::SelfEntry { .. }));
    }

    #[test]
    fn from_fraction_clamps() {
        assert_eq!(TrustWeight::from_fraction(f64::NAN), TrustWeight(0));
        assert_eq!(TrustWeight::from_fraction(-1.0), TrustWeight(0));
        assert_eq!(TrustWeight::from_fraction(2.0), TrustWeight::ONE);
        assert_eq!(TrustWeight::from_fraction(0.5).get(), 500_000_000);
        assert_eq!(TrustWeight::new(1_000_000_001), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Arbitrary bytes never panic the decoder.
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = TrustReport::decode(&bytes, &ReportConfig::default());
        }

        /// Every valid entry list signs, encodes and decodes to itself.
        #[test]
        fn valid_reports_round_trip(
            parts in proptest::collection::vec(1u32..15_000_000, 0..64),
            issued_at in any::<u64>(),
        ) {
            let key = keypair(7);
            let config = ReportConfig::default();
            let entries: Vec<TrustEntry> = parts
                .iter()
                .enumerate()
                .map(|(i, p)| entry(100 + i as u32, *p))
                .collect();
            let report = TrustReport::sign(&key, UnixMillis(issued_at), entries, &config)
                .expect("valid");
            let decoded = TrustReport::decode(&report.encode(), &config).expect("decodes");
            prop_assert_eq!(decoded, report);
        }
    }
}

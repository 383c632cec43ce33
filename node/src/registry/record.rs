//! Service records: what one node serves under one name, signed by that node and verified by
//! everyone who receives it.
//!
//! [`ServiceRecord::sign`] turns a record into the bytes a node gossips, stores in Kademlia or
//! returns over RPC (an encoded [`proto::SignedRecord`]); [`verify`] is the only way back from
//! bytes to a record. Both apply the same [`RecordLimits`], so a node never sends what its peers
//! would refuse.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use libp2p::identity::{Keypair, PublicKey};
use libp2p::{Multiaddr, PeerId};
use prost::Message;
use serde::{Deserialize, Serialize};

use super::name::{EndpointName, ServiceName};
use super::proto;

/// Prefixed to the record bytes before signing, so a registry signature can never be passed off
/// as a signature for another protocol (or the other way round).
pub const SIGNING_DOMAIN: &[u8] = b"micro-registry-record-v1:";

/// One callable method of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The endpoint's name, unique within its record, e.g. `Say.Hello`.
    pub name: EndpointName,
    /// What the endpoint does, for people browsing the directory.
    pub description: String,
    /// JSON Schema (as text) of the request body, if the owner gave one. Never `Some("")`.
    pub request_schema: Option<String>,
    /// JSON Schema (as text) of the response body, if the owner gave one. Never `Some("")`.
    pub response_schema: Option<String>,
}

/// What one node (the owner) serves under one service name.
///
/// Only the owner can produce a record others accept: see [`ServiceRecord::sign`] and [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRecord {
    /// The service's name.
    pub name: ServiceName,
    /// The service's version as the owner reports it, e.g. `1.2.0`: the one unpinned calls get.
    pub version: String,
    /// Older versions the owner still answers for calls that pin them, newest first.
    #[serde(default)]
    pub older_versions: Vec<String>,
    /// The serving node; the record must be signed with its key.
    pub owner: PeerId,
    /// Addresses at which the owner can be dialled.
    pub addrs: Vec<Multiaddr>,
    /// The service's endpoints, names unique.
    pub endpoints: Vec<Endpoint>,
    /// Free-form labels (region, runtime, ...).
    pub metadata: BTreeMap<String, String>,
    /// Price of one call in the ledger's smallest unit; 0 = free.
    pub price_per_call: u64,
    /// When the owner signed it, unix milliseconds.
    pub issued_at_ms: u64,
    /// When it stops being valid, unix milliseconds; the owner re-announces before then.
    pub expires_at_ms: u64,
    /// Increases with every record the owner signs for this name; receivers keep the highest.
    pub seq: u64,
    /// True when the owner stopped serving the name.
    pub withdrawn: bool,
}

/// Bounds a record must meet to be signed or accepted. The same values must be used network
/// wide: a node with tighter limits refuses records its peers consider fine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordLimits {
    /// Largest encoded [`proto::SignedRecord`], checked before decoding anything.
    pub max_signed_bytes: usize,
    /// Most endpoints in one record.
    pub max_endpoints: usize,
    /// Most addresses in one record.
    pub max_addrs: usize,
    /// Most metadata entries in one record.
    pub max_metadata: usize,
    /// Most older versions in one record.
    pub max_older_versions: usize,
    /// Largest text, in bytes: the version, each endpoint description and schema, and each
    /// metadata entry (key and value together).
    pub max_text_bytes: usize,
    /// Longest validity (`expires_at_ms - issued_at_ms`) a record may claim.
    pub max_ttl_ms: u64,
    /// How far ahead of the receiver's clock `issued_at_ms` may be.
    pub max_clock_skew_ms: u64,
}

impl Default for RecordLimits {
    /// 8 KiB signed records with at most 64 endpoints, 8 addresses, 32 metadata entries and
    /// 1 KiB texts; records live at most 10 minutes; clocks may be 1 minute apart.
    fn default() -> Self {
        Self {
            max_signed_bytes: 8192,
            max_endpoints: 64,
            max_addrs: 8,
            max_metadata: 32,
            max_older_versions: 8,
            max_text_bytes: 1024,
            max_ttl_ms: 600_000,
            max_clock_skew_ms: 60_000,
        }
    }
}

/// Why a record could not be signed or was refused.
///
/// The `PeerId`s in it are boxed (a `PeerId` is 80 bytes) to keep the error, and every error
/// that wraps it, small.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The signed record is larger than [`RecordLimits::max_signed_bytes`].
    #[error(
        "signed record is {size} bytes, over the {limit}-byte limit; announce fewer endpoints, \
         addresses or metadata, or shorter descriptions and schemas"
    )]
    TooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The bytes are not a protobuf `SignedRecord`/`ServiceRecord`, or the public key does not
    /// decode.
    #[error("malformed record: {0}")]
    Malformed(String),
    /// The signature does not match the record bytes and public key.
    #[error("record signature is invalid: the record was altered in transit or forged")]
    BadSignature,
    /// The record is validly signed, but not by the node it names as owner.
    #[error(
        "record names {owner} as its owner but is signed by {signer}; a node may only announce \
         its own services, so this record is forged"
    )]
    SignerMismatch {
        /// Who signed it.
        signer: Box<PeerId>,
        /// Whom it names as owner.
        owner: Box<PeerId>,
    },
    /// The record's `expires_at_ms` has passed (and it is not a withdrawal).
    #[error(
        "record expired at {expired_at_ms} ms (unix time); its owner stopped re-announcing it, \
         or this node's clock is ahead"
    )]
    Expired {
        /// Its `expires_at_ms`.
        expired_at_ms: u64,
    },
    /// The record claims to be issued further in the future than the allowed clock skew.
    #[error(
        "record issued at {issued_at_ms} ms (unix time), {ahead} ms ahead of this node's clock \
         ({now_ms} ms), more than the allowed skew; check both nodes' clocks (NTP)",
        ahead = issued_at_ms.saturating_sub(*now_ms)
    )]
    FromTheFuture {
        /// Its `issued_at_ms`.
        issued_at_ms: u64,
        /// This node's clock when it checked.
        now_ms: u64,
    },
    /// A field does not parse or breaks a [`RecordLimits`] bound; the message says which.
    #[error("invalid record: {0}")]
    InvalidField(String),
    /// [`ServiceRecord::sign`] was given a key that is not the record owner's.
    #[error(
        "cannot sign a record owned by {record_owner} with the key of {key_owner}; sign with the \
         owner's key, or set the owner to {key_owner}"
    )]
    WrongKey {
        /// The PeerId of the key given.
        key_owner: Box<PeerId>,
        /// The record's owner.
        record_owner: Box<PeerId>,
    },
    /// The key could not produce a signature (only possible for non-ed25519 keys).
    #[error("the key could not sign the record: {0}")]
    Signing(String),
}

/// The current unix time in milliseconds (0 before 1970, `u64::MAX` in the far future).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The message a record's signature covers: [`SIGNING_DOMAIN`] followed by the record bytes.
fn signing_message(record: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(SIGNING_DOMAIN.len() + record.len());
    msg.extend_from_slice(SIGNING_DOMAIN);
    msg.extend_from_slice(record);
    msg
}

impl ServiceRecord {
    /// Signs the record with `key` and returns the encoded [`proto::SignedRecord`].
    ///
    /// Fails with [`RecordError::WrongKey`] unless `key` is the owner's, and with the error
    /// [`verify`] would give if the record breaks `limits` (counts, text sizes, TTL, total size).
    /// Clock checks (expiry, issue time) are left to the receiver, whose clock decides.
    pub fn sign(&self, key: &Keypair, limits: &RecordLimits) -> Result<Vec<u8>, RecordError> {
        let key_owner = key.public().to_peer_id();
        if key_owner != self.owner {
            return Err(RecordError::WrongKey {
                key_owner: Box::new(key_owner),
                record_owner: Box::new(self.owner),
            });
        }
        self.check_limits(limits)?;
        let record = self.to_proto().encode_to_vec();
        let signature = key
            .sign(&signing_message(&record))
            .map_err(|e| RecordError::Signing(e.to_string()))?;
        let signed = proto::SignedRecord {
            record,
            public_key: key.public().encode_protobuf(),
            signature,
        }
        .encode_to_vec();
        if signed.len() > limits.max_signed_bytes {
            return Err(RecordError::TooLarge {
                size: signed.len(),
                limit: limits.max_signed_bytes,
            });
        }
        Ok(signed)
    }

    /// The record's wire form.
    fn to_proto(&self) -> proto::ServiceRecord {
        proto::ServiceRecord {
            name: self.name.to_string(),
            version: self.version.clone(),
            older_versions: self.older_versions.clone(),
            owner: self.owner.to_bytes(),
            addrs: self.addrs.iter().map(|a| a.to_vec()).collect(),
            endpoints: self
                .endpoints
                .iter()
                .map(|e| proto::Endpoint {
                    name: e.name.to_string(),
                    description: e.description.clone(),
                    request_schema: e.request_schema.clone().unwrap_or_default(),
                    response_schema: e.response_schema.clone().unwrap_or_default(),
                })
                .collect(),
            metadata: self.metadata.clone(),
            price_per_call: self.price_per_call,
            issued_at_ms: self.issued_at_ms,
            expires_at_ms: self.expires_at_ms,
            seq: self.seq,
            withdrawn: self.withdrawn,
        }
    }

    /// Parses the wire form whose owner has already been parsed (and checked against the signer).
    fn from_proto(raw: proto::ServiceRecord, owner: PeerId) -> Result<Self, RecordError> {
        let invalid = RecordError::InvalidField;
        let name = ServiceName::try_from(raw.name).map_err(|e| invalid(format!("name: {e}")))?;
        let addrs = raw
            .addrs
            .into_iter()
            .enumerate()
            .map(|(i, bytes)| {
                Multiaddr::try_from(bytes)
                    .map_err(|e| invalid(format!("address {i} is not a multiaddr: {e}")))
            })
            .collect::<Result<_, _>>()?;
        let endpoints = raw
            .endpoints
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                Ok(Endpoint {
                    name: EndpointName::try_from(e.name)
                        .map_err(|err| invalid(format!("endpoint {i}: {err}")))?,
                    description: e.description,
                    request_schema: Some(e.request_schema).filter(|s| !s.is_empty()),
                    response_schema: Some(e.response_schema).filter(|s| !s.is_empty()),
                })
            })
            .collect::<Result<_, RecordError>>()?;
        Ok(Self {
            name,
            version: raw.version,
            older_versions: raw.older_versions,
            owner,
            addrs,
            endpoints,
            metadata: raw.metadata,
            price_per_call: raw.price_per_call,
            issued_at_ms: raw.issued_at_ms,
            expires_at_ms: raw.expires_at_ms,
            seq: raw.seq,
            withdrawn: raw.withdrawn,
        })
    }

    /// Checks counts, text sizes, endpoint name uniqueness and the TTL against `limits`.
    fn check_limits(&self, limits: &RecordLimits) -> Result<(), RecordError> {
        let invalid = |msg: String| Err(RecordError::InvalidField(msg));
        let text = |what: &str, len: usize| {
            if len > limits.max_text_bytes {
                invalid(format!(
                    "{what} is {len} bytes, over the {}-byte limit",
                    limits.max_text_bytes
                ))
            } else {
                Ok(())
            }
        };
        let count = |what: &str, n: usize, max: usize| {
            if n > max {
                invalid(format!("{n} {what}, more than the limit of {max}"))
            } else {
                Ok(())
            }
        };
        text("the version", self.version.len())?;
        count(
            "older versions",
            self.older_versions.len(),
            limits.max_older_versions,
        )?;
        for older in &self.older_versions {
            text("an older version", older.len())?;
        }
        count("addresses", self.addrs.len(), limits.max_addrs)?;
        count("endpoints", self.endpoints.len(), limits.max_endpoints)?;
        count("metadata entries", self.metadata.len(), limits.max_metadata)?;
        let mut seen = BTreeSet::new();
        for e in &self.endpoints {
            if !seen.insert(&e.name) {
                return invalid(format!("endpoint {} is listed twice", e.name));
            }
            text(
                &format!("endpoint {}'s description", e.name),
                e.description.len(),
            )?;
            for (which, schema) in [
                ("request", &e.request_schema),
                ("response", &e.response_schema),
            ] {
                match schema {
                    Some(s) if s.is_empty() => {
                        return invalid(format!(
                            "endpoint {}'s {which} schema is Some(\"\"); use None for no schema",
                            e.name
                        ));
                    }
                    Some(s) => text(&format!("endpoint {}'s {which} schema", e.name), s.len())?,
                    None => {}
                }
            }
        }
        for (k, v) in &self.metadata {
            text(&format!("metadata entry {k:?}"), k.len() + v.len())?;
        }
        let ttl = self.expires_at_ms.saturating_sub(self.issued_at_ms);
        if ttl > limits.max_ttl_ms {
            return invalid(format!(
                "the record is valid for {ttl} ms, longer than the limit of {} ms",
                limits.max_ttl_ms
            ));
        }
        Ok(())
    }

    /// Checks the record's times against the receiver's clock.
    fn check_clock(&self, now_ms: u64, limits: &RecordLimits) -> Result<(), RecordError> {
        if !self.withdrawn && self.expires_at_ms <= now_ms {
            return Err(RecordError::Expired {
                expired_at_ms: self.expires_at_ms,
            });
        }
        if self.issued_at_ms > now_ms.saturating_add(limits.max_clock_skew_ms) {
            return Err(RecordError::FromTheFuture {
                issued_at_ms: self.issued_at_ms,
                now_ms,
            });
        }
        Ok(())
    }
}

/// Checks signed record bytes (as made by [`ServiceRecord::sign`]) and returns the record.
///
/// In order: the size (before decoding anything), the encoding, the signature, that the signer
/// is the record's owner, every field against `limits`, then the clock: the record must not
/// have expired at `now_ms` (withdrawals excepted) nor be issued more than
/// [`RecordLimits::max_clock_skew_ms`] after it. Never panics, whatever the bytes.
pub fn verify(
    signed: &[u8],
    now_ms: u64,
    limits: &RecordLimits,
) -> Result<ServiceRecord, RecordError> {
    if signed.len() > limits.max_signed_bytes {
        return Err(RecordError::TooLarge {
            size: signed.len(),
            limit: limits.max_signed_bytes,
        });
    }
    let signed = proto::SignedRecord::decode(signed)
        .map_err(|e| RecordError::Malformed(format!("not a SignedRecord: {e}")))?;
    let public_key = PublicKey::try_decode_protobuf(&signed.public_key)
        .map_err(|e| RecordError::Malformed(format!("public key: {e}")))?;
    let signer = public_key.to_peer_id();
    if !public_key.verify(&signing_message(&signed.record), &signed.signature) {
        return Err(RecordError::BadSignature);
    }
    let raw = proto::ServiceRecord::decode(signed.record.as_slice())
        .map_err(|e| RecordError::Malformed(format!("not a ServiceRecord: {e}")))?;
    let owner = PeerId::from_bytes(&raw.owner)
        .map_err(|e| RecordError::InvalidField(format!("owner is not a PeerId: {e}")))?;
    if signer != owner {
        return Err(RecordError::SignerMismatch {
            signer: Box::new(signer),
            owner: Box::new(owner),
        });
    }
    let record = ServiceRecord::from_proto(raw, owner)?;
    record.check_limits(limits)?;
    record.check_clock(now_ms, limits)?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: u64 = 1_700_000_000_000;

    fn record(key: &Keypair) -> ServiceRecord {
        ServiceRecord {
            name: "greeter".parse().unwrap(),
            version: "1.0.0".into(),
            older_versions: vec!["0.9.0".into()],
            owner: key.public().to_peer_id(),
            addrs: vec!["/ip4/127.0.0.1/tcp/4001".parse().unwrap()],
            endpoints: vec![Endpoint {
                name: "Say.Hello".parse().unwrap(),
                description: "greets".into(),
                request_schema: Some(r#"{"type":"object"}"#.into()),
                response_schema: None,
            }],
            metadata: BTreeMap::from([("region".into(), "eu".into())]),
            price_per_call: 3,
            issued_at_ms: NOW,
            expires_at_ms: NOW + 60_000,
            seq: 1,
            withdrawn: false,
        }
    }

    /// Signs `record` with `key` whatever the record says, the way a forger would.
    fn sign_unchecked(record: &ServiceRecord, key: &Keypair) -> Vec<u8> {
        let bytes = record.to_proto().encode_to_vec();
        proto::SignedRecord {
            signature: key.sign(&signing_message(&bytes)).unwrap(),
            record: bytes,
            public_key: key.public().encode_protobuf(),
        }
        .encode_to_vec()
    }

    #[test]
    fn round_trip() {
        let key = Keypair::generate_ed25519();
        let rec = record(&key);
        let signed = rec.sign(&key, &RecordLimits::default()).unwrap();
        assert_eq!(verify(&signed, NOW, &RecordLimits::default()), Ok(rec));
    }

    #[test]
    fn forged_record_signed_by_another_key_is_refused() {
        let (owner, forger) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let signed = sign_unchecked(&record(&owner), &forger);
        assert_eq!(
            verify(&signed, NOW, &RecordLimits::default()),
            Err(RecordError::SignerMismatch {
                signer: Box::new(forger.public().to_peer_id()),
                owner: Box::new(owner.public().to_peer_id()),
            })
        );
    }

    #[test]
    fn forged_record_claiming_the_owners_public_key_is_refused() {
        let (owner, forger) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let bytes = record(&owner).to_proto().encode_to_vec();
        let signed = proto::SignedRecord {
            signature: forger.sign(&signing_message(&bytes)).unwrap(),
            record: bytes,
            public_key: owner.public().encode_protobuf(),
        }
        .encode_to_vec();
        assert_eq!(
            verify(&signed, NOW, &RecordLimits::default()),
            Err(RecordError::BadSignature)
        );
    }

    #[test]
    fn signature_without_the_domain_prefix_is_refused() {
        let key = Keypair::generate_ed25519();
        let bytes = record(&key).to_proto().encode_to_vec();
        let signed = proto::SignedRecord {
            signature: key.sign(&bytes).unwrap(),
            record: bytes,
            public_key: key.public().encode_protobuf(),
        }
        .encode_to_vec();
        assert_eq!(
            verify(&signed, NOW, &RecordLimits::default()),
            Err(RecordError::BadSignature)
        );
    }

    #[test]
    fn flipping_any_byte_is_rejected() {
        let key = Keypair::generate_ed25519();
        let rec = record(&key);
        let signed = rec.sign(&key, &RecordLimits::default()).unwrap();
        for pos in 0..signed.len() {
            for mask in [0x01, 0x80, 0xff] {
                let mut tampered = signed.clone();
                tampered[pos] ^= mask;
                // Ok is only acceptable if the tampering did not change what the record says.
                if let Ok(got) = verify(&tampered, NOW, &RecordLimits::default()) {
                    assert_eq!(got, rec, "byte {pos} ^ {mask:#x} changed the record");
                }
            }
        }
    }

    #[test]
    fn expired_record_is_refused() {
        let key = Keypair::generate_ed25519();
        let mut rec = record(&key);
        rec.expires_at_ms = NOW;
        let signed = rec.sign(&key, &RecordLimits::default()).unwrap();
        assert_eq!(
            verify(&signed, NOW, &RecordLimits::default()),
            Err(RecordError::Expired { expired_at_ms: NOW })
        );
        assert!(verify(&signed, NOW - 1, &RecordLimits::default()).is_ok());
    }

    #[test]
    fn withdrawn_record_verifies_after_its_expiry() {
        let key = Keypair::generate_ed25519();
        let mut rec = record(&key);
        rec.withdrawn = true;
        let signed = rec.sign(&key, &RecordLimits::default()).unwrap();
        assert_eq!(
            verify(&signed, NOW + 3_600_000, &RecordLimits::default()),
            Ok(rec)
        );
    }

    #[test]
    fn record_from_the_future_is_refused() {
        let key = Keypair::generate_ed25519();
        let limits = RecordLimits::default();
        let mut rec = record(&key);
        rec.issued_at_ms = NOW + limits.max_clock_skew_ms + 1;
        rec.expires_at_ms = rec.issued_at_ms + 1000;
        let signed = rec.sign(&key, &limits).unwrap();
        let err = verify(&signed, NOW, &limits).unwrap_err();
        assert_eq!(
            err,
            RecordError::FromTheFuture {
                issued_at_ms: rec.issued_at_ms,
                now_ms: NOW
            }
        );
        assert!(err.to_string().contains("60001 ms ahead"), "{err}");
        // Within the allowed skew it is fine.
        rec.issued_at_ms = NOW + limits.max_clock_skew_ms;
        let signed = rec.sign(&key, &limits).unwrap();
        assert!(verify(&signed, NOW, &limits).is_ok());
    }

    #[test]
    fn too_large_is_rejected_before_decoding() {
        let limits = RecordLimits::default();
        // Garbage that would be Malformed if it were decoded.
        let garbage = vec![0xff; limits.max_signed_bytes + 1];
        assert_eq!(
            verify(&garbage, NOW, &limits),
            Err(RecordError::TooLarge {
                size: limits.max_signed_bytes + 1,
                limit: limits.max_signed_bytes
            })
        );
        assert!(matches!(
            verify(&garbage[1..], NOW, &limits),
            Err(RecordError::Malformed(_))
        ));
    }

    #[test]
    fn sign_refuses_what_verify_would_refuse() {
        let key = Keypair::generate_ed25519();
        let limits = RecordLimits::default();
        let mut big = record(&key);
        big.endpoints = (0..limits.max_endpoints)
            .map(|i| Endpoint {
                name: format!("E{i}").parse().unwrap(),
                description: "x".repeat(limits.max_text_bytes),
                request_schema: None,
                response_schema: None,
            })
            .collect();
        assert!(matches!(
            big.sign(&key, &limits),
            Err(RecordError::TooLarge { .. })
        ));

        let mut long_lived = record(&key);
        long_lived.expires_at_ms = long_lived.issued_at_ms + limits.max_ttl_ms + 1;
        assert!(matches!(
            long_lived.sign(&key, &limits),
            Err(RecordError::InvalidField(_))
        ));
        assert!(matches!(
            verify(&sign_unchecked(&long_lived, &key), NOW, &limits),
            Err(RecordError::InvalidField(_))
        ));

        let mut many_addrs = record(&key);
        many_addrs.addrs = vec![many_addrs.addrs[0].clone(); limits.max_addrs + 1];
        assert!(matches!(
            many_addrs.sign(&key, &limits),
            Err(RecordError::InvalidField(_))
        ));
        assert!(matches!(
            verify(&sign_unchecked(&many_addrs, &key), NOW, &limits),
            Err(RecordError::InvalidField(_))
        ));

        let mut twice = record(&key);
        twice.endpoints.push(twice.endpoints[0].clone());
        assert!(matches!(
            twice.sign(&key, &limits),
            Err(RecordError::InvalidField(_))
        ));

        let mut empty_schema = record(&key);
        empty_schema.endpoints[0].response_schema = Some(String::new());
        assert!(matches!(
            empty_schema.sign(&key, &limits),
            Err(RecordError::InvalidField(_))
        ));
    }

    #[test]
    fn bad_names_and_addresses_are_refused() {
        let key = Keypair::generate_ed25519();
        let rec = record(&key);
        for mutate in [
            (|p: &mut proto::ServiceRecord| p.name = "Not A Name".into()) as fn(&mut _),
            |p| p.endpoints[0].name = "Say Hello".into(),
            |p| p.addrs.push(vec![0xff, 0xff, 0xff]),
        ] {
            let mut raw = rec.to_proto();
            mutate(&mut raw);
            let bytes = raw.encode_to_vec();
            let signed = proto::SignedRecord {
                signature: key.sign(&signing_message(&bytes)).unwrap(),
                record: bytes,
                public_key: key.public().encode_protobuf(),
            }
            .encode_to_vec();
            let got = verify(&signed, NOW, &RecordLimits::default());
            assert!(matches!(got, Err(RecordError::InvalidField(_))), "{got:?}");
        }
    }

    #[test]
    fn sign_refuses_a_record_owned_by_someone_else() {
        let (owner, other) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        assert_eq!(
            record(&owner).sign(&other, &RecordLimits::default()),
            Err(RecordError::WrongKey {
                key_owner: Box::new(other.public().to_peer_id()),
                record_owner: Box::new(owner.public().to_peer_id()),
            })
        );
    }

    #[test]
    fn errors_stay_small() {
        assert!(std::mem::size_of::<RecordError>() <= 32);
    }

    #[test]
    fn now_ms_is_after_2023() {
        assert!(now_ms() > NOW);
    }

    fn arb_record() -> impl Strategy<Value = (Keypair, ServiceRecord)> {
        let endpoint = (
            ".{0,30}",
            proptest::option::of(".{1,30}"),
            proptest::option::of(".{1,30}"),
        );
        (
            any::<[u8; 32]>(),
            "[a-z0-9][a-z0-9._-]{0,20}",
            ".{0,20}",
            proptest::collection::vec((any::<u32>(), any::<u16>()), 0..=8),
            proptest::collection::btree_map("[A-Za-z0-9_.-]{1,20}", endpoint, 0..6),
            proptest::collection::btree_map(".{0,10}", ".{0,10}", 0..6),
            (
                any::<u64>(),
                0..=NOW,
                0..=600_000u64,
                any::<u64>(),
                any::<bool>(),
            ),
        )
            .prop_map(
                |(seed, name, version, addrs, endpoints, metadata, numbers)| {
                    let (price_per_call, issued_at_ms, ttl, seq, withdrawn) = numbers;
                    let key = Keypair::ed25519_from_bytes(seed).unwrap();
                    let record = ServiceRecord {
                        name: name.parse().unwrap(),
                        older_versions: vec![version.clone()],
                        version,
                        owner: key.public().to_peer_id(),
                        addrs: addrs
                            .into_iter()
                            .map(|(ip, port)| {
                                let ip = std::net::Ipv4Addr::from(ip);
                                format!("/ip4/{ip}/tcp/{port}").parse().unwrap()
                            })
                            .collect(),
                        endpoints: endpoints
                            .into_iter()
                            .map(|(name, (description, request_schema, response_schema))| {
                                Endpoint {
                                    name: name.parse().unwrap(),
                                    description,
                                    request_schema,
                                    response_schema,
                                }
                            })
                            .collect(),
                        metadata,
                        price_per_call,
                        issued_at_ms,
                        expires_at_ms: issued_at_ms + ttl,
                        seq,
                        withdrawn,
                    };
                    (key, record)
                },
            )
    }

    proptest! {
        #[test]
        fn verify_never_panics_on_random_bytes(
            bytes in proptest::collection::vec(any::<u8>(), 0..9000),
        ) {
            let _ = verify(&bytes, NOW, &RecordLimits::default());
        }

        #[test]
        fn verify_never_panics_on_validly_signed_random_records(
            seed in any::<[u8; 32]>(),
            record in proptest::collection::vec(any::<u8>(), 0..2000),
        ) {
            let key = Keypair::ed25519_from_bytes(seed).unwrap();
            let signed = proto::SignedRecord {
                signature: key.sign(&signing_message(&record)).unwrap(),
                record,
                public_key: key.public().encode_protobuf(),
            }
            .encode_to_vec();
            let _ = verify(&signed, NOW, &RecordLimits::default());
        }

        #[test]
        fn valid_records_round_trip((key, record) in arb_record()) {
            let limits = RecordLimits::default();
            let signed = record.sign(&key, &limits);
            prop_assert!(signed.is_ok(), "{:?}", signed);
            let signed = signed.unwrap();
            // At issue time the record is neither expired (ttl 0 aside) nor from the future.
            let now = record.issued_at_ms;
            let got = verify(&signed, now, &limits);
            if record.expires_at_ms > now || record.withdrawn {
                prop_assert_eq!(got, Ok(record));
            } else {
                let expired_at_ms = record.expires_at_ms;
                prop_assert_eq!(got, Err(RecordError::Expired { expired_at_ms }));
            }
        }
    }
}

//! Events: what a publisher writes, signed with its node key and verified by every receiver.
//!
//! [`Event::sign`] turns an event into a [`VerifiedEvent`] whose [`VerifiedEvent::signed`]
//! bytes (an encoded [`proto::SignedEvent`]) are what nodes gossip, store and re-serve;
//! [`verify`] is the only way from bytes received to a [`VerifiedEvent`]. Both apply the same
//! [`EventLimits`], so a node never publishes what its peers would refuse.

use std::collections::BTreeMap;

use libp2p::PeerId;
use libp2p::identity::{Keypair, PublicKey};
use prost::Message;
use serde::{Deserialize, Serialize};

use super::id::EventId;
use super::proto;
use crate::broker::TopicName;

/// Prefixed to the event bytes before signing, so an event signature can never be passed off
/// as a signature for another protocol (or the other way round).
pub const SIGNING_DOMAIN: &[u8] = b"micro-event-v1:";

/// One event as its publisher wrote it.
///
/// Only the publisher can produce an event others accept: see [`Event::sign`] and [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The topic it was published on.
    pub topic: TopicName,
    /// The publishing node; the event must be signed with its key.
    pub publisher: PeerId,
    /// The publisher's sequence number on this topic: 1, 2, 3, ... Never 0.
    pub seq: u64,
    /// When it was published, unix milliseconds, by the publisher's clock.
    pub timestamp_ms: u64,
    /// Metadata headers.
    pub headers: BTreeMap<String, String>,
    /// MIME type of the body; empty when unspecified.
    pub content_type: String,
    /// The payload.
    pub body: Vec<u8>,
}

/// Bounds an event must meet to be signed or accepted. The same values must be used network
/// wide: a node with tighter limits refuses events its peers consider fine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventLimits {
    /// Largest encoded [`proto::SignedEvent`], checked before decoding anything.
    pub max_signed_bytes: usize,
    /// Largest body.
    pub max_body_bytes: usize,
    /// Most headers.
    pub max_headers: usize,
    /// Largest text, in bytes: the content type, and each header (key and value together).
    pub max_text_bytes: usize,
}

impl Default for EventLimits {
    /// 256 KiB bodies inside 260 KiB signed events (room for headers, key and signature),
    /// at most 32 headers, 1 KiB texts.
    fn default() -> Self {
        Self {
            max_signed_bytes: 256 * 1024 + 4 * 1024,
            max_body_bytes: 256 * 1024,
            max_headers: 32,
            max_text_bytes: 1024,
        }
    }
}

/// Why an event could not be signed or was refused.
///
/// The `PeerId`s in it are boxed (a `PeerId` is 80 bytes) to keep the error small.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The signed event is larger than [`EventLimits::max_signed_bytes`].
    #[error(
        "signed event is {size} bytes, over the {limit}-byte limit; send a smaller body or \
         fewer headers"
    )]
    TooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The bytes are not a protobuf `SignedEvent`/`Event`, or the public key does not decode.
    #[error("malformed event: {0}")]
    Malformed(String),
    /// The signature does not match the event bytes and public key.
    #[error("event signature is invalid: the event was altered in transit or forged")]
    BadSignature,
    /// The event is validly signed, but not by the node it names as publisher.
    #[error(
        "event names {publisher} as its publisher but is signed by {signer}; a node may only \
         publish its own events, so this event is forged"
    )]
    SignerMismatch {
        /// Who signed it.
        signer: Box<PeerId>,
        /// Whom it names as publisher.
        publisher: Box<PeerId>,
    },
    /// A field does not parse or breaks an [`EventLimits`] bound; the message says which.
    #[error("invalid event: {0}")]
    InvalidField(String),
    /// [`Event::sign`] was given a key that is not the publisher's.
    #[error(
        "cannot sign an event published by {publisher} with the key of {key_owner}; sign with \
         the publisher's key, or set the publisher to {key_owner}"
    )]
    WrongKey {
        /// The PeerId of the key given.
        key_owner: Box<PeerId>,
        /// The event's publisher.
        publisher: Box<PeerId>,
    },
    /// The key could not produce a signature (only possible for non-ed25519 keys).
    #[error("the key could not sign the event: {0}")]
    Signing(String),
}

/// An event whose signature, publisher and fields have been checked, with its id and the exact
/// signed bytes (which stores keep and peers re-serve).
///
/// Only [`verify`] and [`Event::sign`] make one, so the three parts always agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEvent {
    event: Event,
    id: EventId,
    signed: Vec<u8>,
}

impl VerifiedEvent {
    /// The event.
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// Its id: SHA-256 of the signed event bytes.
    pub fn id(&self) -> EventId {
        self.id
    }

    /// The encoded [`proto::SignedEvent`], byte for byte as verified.
    pub fn signed(&self) -> &[u8] {
        &self.signed
    }

    /// The event, its id and its signed bytes.
    pub fn into_parts(self) -> (Event, EventId, Vec<u8>) {
        (self.event, self.id, self.signed)
    }
}

/// The message an event's signature covers: [`SIGNING_DOMAIN`] followed by the event bytes.
fn signing_message(event: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(SIGNING_DOMAIN.len() + event.len());
    msg.extend_from_slice(SIGNING_DOMAIN);
    msg.extend_from_slice(event);
    msg
}

impl Event {
    /// Signs the event with `key`: the result carries the encoded [`proto::SignedEvent`] to
    /// gossip and store, and the event's id.
    ///
    /// Fails with [`EventError::WrongKey`] unless `key` is the publisher's, and with the error
    /// [`verify`] would give if the event breaks `limits` or has `seq` 0.
    pub fn sign(&self, key: &Keypair, limits: &EventLimits) -> Result<VerifiedEvent, EventError> {
        let key_owner = key.public().to_peer_id();
        if key_owner != self.publisher {
            return Err(EventError::WrongKey {
                key_owner: Box::new(key_owner),
                publisher: Box::new(self.publisher),
            });
        }
        self.check_fields(limits)?;
        let event = self.to_proto().encode_to_vec();
        let signature = key
            .sign(&signing_message(&event))
            .map_err(|e| EventError::Signing(e.to_string()))?;
        let id = EventId::of(&event);
        let signed = proto::SignedEvent {
            event,
            public_key: key.public().encode_protobuf(),
            signature,
        }
        .encode_to_vec();
        if signed.len() > limits.max_signed_bytes {
            return Err(EventError::TooLarge {
                size: signed.len(),
                limit: limits.max_signed_bytes,
            });
        }
        Ok(VerifiedEvent {
            event: self.clone(),
            id,
            signed,
        })
    }

    /// The event's wire form.
    fn to_proto(&self) -> proto::Event {
        proto::Event {
            topic: self.topic.to_string(),
            publisher: self.publisher.to_bytes(),
            seq: self.seq,
            timestamp_ms: self.timestamp_ms,
            headers: self.headers.clone(),
            content_type: self.content_type.clone(),
            body: self.body.clone(),
        }
    }

    /// Parses the wire form whose publisher has already been parsed.
    fn from_proto(raw: proto::Event, publisher: PeerId) -> Result<Self, EventError> {
        let topic = TopicName::try_from(raw.topic)
            .map_err(|e| EventError::InvalidField(format!("topic: {e}")))?;
        Ok(Self {
            topic,
            publisher,
            seq: raw.seq,
            timestamp_ms: raw.timestamp_ms,
            headers: raw.headers,
            content_type: raw.content_type,
            body: raw.body,
        })
    }

    /// Checks `seq`, the body size, the header count and text sizes against `limits`.
    fn check_fields(&self, limits: &EventLimits) -> Result<(), EventError> {
        let invalid = |msg: String| Err(EventError::InvalidField(msg));
        if self.seq == 0 {
            return invalid("seq is 0; a publisher's sequence numbers start at 1".into());
        }
        if self.body.len() > limits.max_body_bytes {
            return invalid(format!(
                "the body is {} bytes, over the {}-byte limit",
                self.body.len(),
                limits.max_body_bytes
            ));
        }
        if self.headers.len() > limits.max_headers {
            return invalid(format!(
                "{} headers, more than the limit of {}",
                self.headers.len(),
                limits.max_headers
            ));
        }
        if self.content_type.len() > limits.max_text_bytes {
            return invalid(format!(
                "the content type is {} bytes, over the {}-byte limit",
                self.content_type.len(),
                limits.max_text_bytes
            ));
        }
        for (k, v) in &self.headers {
            if k.len() + v.len() > limits.max_text_bytes {
                return invalid(format!(
                    "header {:?} is {} bytes, over the {}-byte limit",
                    k.chars().take(64).collect::<String>(),
                    k.len() + v.len(),
                    limits.max_text_bytes
                ));
            }
        }
        Ok(())
    }
}

/// Checks signed event bytes (as made by [`Event::sign`]) and returns the verified event.
///
/// In order: the size (before decoding anything), the encoding, the signature over
/// [`SIGNING_DOMAIN`] `++` event bytes, that the signer is the event's publisher, then every
/// field against `limits` (topic name, `seq >= 1`, body, headers, texts). No clock check: the
/// timestamp is the publisher's claim. Never panics, whatever the bytes.
pub fn verify(signed: &[u8], limits: &EventLimits) -> Result<VerifiedEvent, EventError> {
    if signed.len() > limits.max_signed_bytes {
        return Err(EventError::TooLarge {
            size: signed.len(),
            limit: limits.max_signed_bytes,
        });
    }
    let outer = proto::SignedEvent::decode(signed)
        .map_err(|e| EventError::Malformed(format!("not a SignedEvent: {e}")))?;
    let public_key = PublicKey::try_decode_protobuf(&outer.public_key)
        .map_err(|e| EventError::Malformed(format!("public key: {e}")))?;
    if !public_key.verify(&signing_message(&outer.event), &outer.signature) {
        return Err(EventError::BadSignature);
    }
    let (event, id) = decode_event(&outer.event)?;
    let signer = public_key.to_peer_id();
    if signer != event.publisher {
        return Err(EventError::SignerMismatch {
            signer: Box::new(signer),
            publisher: Box::new(event.publisher),
        });
    }
    event.check_fields(limits)?;
    Ok(VerifiedEvent {
        event,
        id,
        signed: signed.to_vec(),
    })
}

/// Decodes signed bytes that were verified before (read back from this node's store) without
/// checking the signature again. Still never panics: disk bytes can rot.
pub(super) fn decode_stored(signed: &[u8]) -> Result<(Event, EventId), EventError> {
    let outer = proto::SignedEvent::decode(signed)
        .map_err(|e| EventError::Malformed(format!("not a SignedEvent: {e}")))?;
    decode_event(&outer.event)
}

/// Decodes an encoded `Event` and parses its publisher and topic; returns it with its id.
fn decode_event(bytes: &[u8]) -> Result<(Event, EventId), EventError> {
    let raw = proto::Event::decode(bytes)
        .map_err(|e| EventError::Malformed(format!("not an Event: {e}")))?;
    let publisher = PeerId::from_bytes(&raw.publisher)
        .map_err(|e| EventError::InvalidField(format!("publisher is not a PeerId: {e}")))?;
    Ok((Event::from_proto(raw, publisher)?, EventId::of(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn event(key: &Keypair, seq: u64) -> Event {
        Event {
            topic: "shop/orders".parse().unwrap(),
            publisher: key.public().to_peer_id(),
            seq,
            timestamp_ms: 1_700_000_000_000,
            headers: BTreeMap::from([("trace".into(), "abc".into())]),
            content_type: "application/json".into(),
            body: br#"{"order":1}"#.to_vec(),
        }
    }

    /// Signs raw event bytes with `key` whatever they say, the way a forger would.
    fn sign_raw(raw: &proto::Event, key: &Keypair) -> Vec<u8> {
        let bytes = raw.encode_to_vec();
        proto::SignedEvent {
            signature: key.sign(&signing_message(&bytes)).unwrap(),
            event: bytes,
            public_key: key.public().encode_protobuf(),
        }
        .encode_to_vec()
    }

    #[test]
    fn round_trip_and_id() {
        let key = Keypair::generate_ed25519();
        let ev = event(&key, 1);
        let limits = EventLimits::default();
        let signed = ev.sign(&key, &limits).unwrap();
        let got = verify(signed.signed(), &limits).unwrap();
        assert_eq!(got, signed);
        assert_eq!(got.event(), &ev);
        assert_eq!(got.id(), EventId::of(&ev.to_proto().encode_to_vec()));
        assert_eq!(decode_stored(signed.signed()), Ok((ev, signed.id())));
    }

    #[test]
    fn forged_and_altered_events_are_refused() {
        let (owner, forger) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let limits = EventLimits::default();
        let forged = sign_raw(&event(&owner, 1).to_proto(), &forger);
        assert_eq!(
            verify(&forged, &limits),
            Err(EventError::SignerMismatch {
                signer: Box::new(forger.public().to_peer_id()),
                publisher: Box::new(owner.public().to_peer_id()),
            })
        );

        let signed = event(&owner, 1).sign(&owner, &limits).unwrap();
        let mut outer = proto::SignedEvent::decode(signed.signed()).unwrap();
        let last = outer.event.len() - 1;
        outer.event[last] ^= 1;
        assert_eq!(
            verify(&outer.encode_to_vec(), &limits),
            Err(EventError::BadSignature)
        );

        // The same bytes signed under another domain do not verify.
        let bytes = event(&owner, 1).to_proto().encode_to_vec();
        let other_domain = proto::SignedEvent {
            signature: owner.sign(&bytes).unwrap(),
            event: bytes,
            public_key: owner.public().encode_protobuf(),
        };
        assert_eq!(
            verify(&other_domain.encode_to_vec(), &limits),
            Err(EventError::BadSignature)
        );
    }

    #[test]
    fn limits_and_fields_are_enforced() {
        let key = Keypair::generate_ed25519();
        let limits = EventLimits::default();
        let too_big = vec![0u8; limits.max_signed_bytes + 1];
        assert!(matches!(
            verify(&too_big, &limits),
            Err(EventError::TooLarge { .. })
        ));
        assert!(matches!(
            verify(b"\xff\xff", &limits),
            Err(EventError::Malformed(_))
        ));

        let mut zero = event(&key, 0);
        assert!(matches!(
            zero.sign(&key, &limits),
            Err(EventError::InvalidField(_))
        ));
        assert!(matches!(
            verify(&sign_raw(&zero.to_proto(), &key), &limits),
            Err(EventError::InvalidField(_))
        ));
        zero.seq = 1;

        let mut body = zero.clone();
        body.body = vec![0; limits.max_body_bytes + 1];
        assert!(matches!(
            body.sign(&key, &limits),
            Err(EventError::InvalidField(_))
        ));
        let mut headers = zero.clone();
        headers.headers = (0..=limits.max_headers)
            .map(|i| (i.to_string(), String::new()))
            .collect();
        assert!(matches!(
            verify(&sign_raw(&headers.to_proto(), &key), &limits),
            Err(EventError::InvalidField(_))
        ));
        let mut text = zero.clone();
        text.content_type = "x".repeat(limits.max_text_bytes + 1);
        assert!(matches!(
            text.sign(&key, &limits),
            Err(EventError::InvalidField(_))
        ));

        let mut raw = zero.to_proto();
        raw.topic = "not a topic".into();
        assert!(matches!(
            verify(&sign_raw(&raw, &key), &limits),
            Err(EventError::InvalidField(_))
        ));
        let mut raw = zero.to_proto();
        raw.publisher = vec![1, 2, 3];
        assert!(matches!(
            verify(&sign_raw(&raw, &key), &limits),
            Err(EventError::InvalidField(_))
        ));
    }

    #[test]
    fn sign_refuses_someone_elses_event() {
        let (owner, other) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        assert_eq!(
            event(&owner, 1).sign(&other, &EventLimits::default()),
            Err(EventError::WrongKey {
                key_owner: Box::new(other.public().to_peer_id()),
                publisher: Box::new(owner.public().to_peer_id()),
            })
        );
    }

    #[test]
    fn errors_stay_small() {
        assert!(std::mem::size_of::<EventError>() <= 32);
    }

    proptest! {
        #[test]
        fn verify_never_panics_on_random_bytes(
            bytes in proptest::collection::vec(any::<u8>(), 0..4096),
        ) {
            let _ = verify(&bytes, &EventLimits::default());
            let _ = decode_stored(&bytes);
        }

        #[test]
        fn verify_never_panics_on_validly_signed_random_events(
            seed in any::<[u8; 32]>(),
            event in proptest::collection::vec(any::<u8>(), 0..2000),
        ) {
            let key = Keypair::ed25519_from_bytes(seed).unwrap();
            let signed = proto::SignedEvent {
                signature: key.sign(&signing_message(&event)).unwrap(),
                event,
                public_key: key.public().encode_protobuf(),
            }
            .encode_to_vec();
            let _ = verify(&signed, &EventLimits::default());
        }

        #[test]
        fn valid_events_round_trip(
            seed in any::<[u8; 32]>(),
            topic in "[a-z][a-z0-9._-]{0,20}(/[a-z0-9]{1,8}){0,2}",
            seq in 1..u64::MAX,
            timestamp_ms in any::<u64>(),
            headers in proptest::collection::btree_map(".{0,10}", ".{0,10}", 0..8),
            content_type in ".{0,20}",
            body in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let key = Keypair::ed25519_from_bytes(seed).unwrap();
            let ev = Event {
                topic: topic.parse().unwrap(),
                publisher: key.public().to_peer_id(),
                seq,
                timestamp_ms,
                headers,
                content_type,
                body,
            };
            let limits = EventLimits::default();
            let signed = ev.sign(&key, &limits).unwrap();
            let got = verify(signed.signed(), &limits).unwrap();
            prop_assert_eq!(got.event(), &ev);
            prop_assert_eq!(got, signed);
        }
    }
}

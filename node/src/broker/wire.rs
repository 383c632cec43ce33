//! Broker messages on the wire: a [`proto::BrokerMessage`] signed by its publisher.
//!
//! Gossip carries no author (see the overlay's gossipsub setup), so a broker message proves
//! its publisher itself: the publisher signs the encoded message, and every receiver checks
//! the signature against the key inlined in the claimed `publisher` peer id, once per
//! message rather than once per copy received.

use libp2p::identity::Keypair;
use micro_overlay::PeerId;
use prost::Message;

use super::proto;
use crate::identity::public_key_of;

/// What a broker signature covers: this domain, then the encoded message.
pub const SIGNING_DOMAIN: &[u8] = b"micro-broker-v1:";

/// Bytes a signed envelope adds to an encoded message: the signature and two field headers.
pub const ENVELOPE_OVERHEAD: usize = 96;

fn signing_message(message: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(SIGNING_DOMAIN.len() + message.len());
    msg.extend_from_slice(SIGNING_DOMAIN);
    msg.extend_from_slice(message);
    msg
}

/// Signs `message` with `key` and returns the gossip payload. Receivers refuse it unless the
/// message's `publisher` is `key`'s peer id.
pub fn seal(key: &Keypair, message: &proto::BrokerMessage) -> Vec<u8> {
    let message = message.encode_to_vec();
    let signature = key
        .sign(&signing_message(&message))
        .expect("ed25519 signing cannot fail");
    proto::SignedBrokerMessage { message, signature }.encode_to_vec()
}

/// Checks a gossip payload and returns the message and its verified publisher: the envelope
/// and message decode, the publisher is an ed25519 peer id, and the signature is its key's.
pub fn open(data: &[u8]) -> Result<(proto::BrokerMessage, PeerId), String> {
    let signed = proto::SignedBrokerMessage::decode(data)
        .map_err(|e| format!("not a signed broker message: {e}"))?;
    let message = proto::BrokerMessage::decode(signed.message.as_slice())
        .map_err(|e| format!("malformed: {e}"))?;
    let publisher =
        PeerId::from_bytes(&message.publisher).map_err(|_| "bad publisher id".to_owned())?;
    let key = public_key_of(&publisher)
        .ok_or_else(|| format!("publisher {publisher} does not carry an ed25519 key"))?;
    if !key.verify(&signing_message(&signed.message), &signed.signature) {
        return Err(format!(
            "claims publisher {publisher} without its signature"
        ));
    }
    Ok((message, publisher))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn message(publisher: PeerId) -> proto::BrokerMessage {
        proto::BrokerMessage {
            id: "m1".into(),
            topic: "alerts".into(),
            body: b"hello".to_vec(),
            publisher: publisher.to_bytes(),
            timestamp_ms: 7,
            ..Default::default()
        }
    }

    #[test]
    fn a_sealed_message_opens_with_its_publisher() {
        let key = Keypair::generate_ed25519();
        let sent = message(key.public().to_peer_id());
        let (got, publisher) = open(&seal(&key, &sent)).expect("valid");
        assert_eq!(got, sent);
        assert_eq!(publisher, key.public().to_peer_id());
    }

    #[test]
    fn a_message_signed_by_another_key_is_refused() {
        let victim = Keypair::generate_ed25519().public().to_peer_id();
        let forger = Keypair::generate_ed25519();
        let err = open(&seal(&forger, &message(victim))).unwrap_err();
        assert!(err.contains("without its signature"), "{err}");
    }

    #[test]
    fn a_tampered_body_is_refused() {
        let key = Keypair::generate_ed25519();
        let mut signed = proto::SignedBrokerMessage::decode(
            seal(&key, &message(key.public().to_peer_id())).as_slice(),
        )
        .expect("decodes");
        let last = signed.message.len() - 1;
        signed.message[last] ^= 1;
        assert!(open(&signed.encode_to_vec()).is_err());
    }

    #[test]
    fn the_envelope_overhead_bounds_a_real_envelope() {
        let key = Keypair::generate_ed25519();
        let mut sent = message(key.public().to_peer_id());
        sent.body = vec![7; 200 * 1024];
        let encoded = sent.encode_to_vec().len();
        assert!(seal(&key, &sent).len() <= encoded + ENVELOPE_OVERHEAD);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = open(&data);
        }
    }
}

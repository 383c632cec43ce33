//! Wire encoding for gossip (`micro/ledger/1`) and anti-entropy (`/micro/ledger-sync/1.0.0`):
//! protobuf messages (hand-written prost derives; `ledger/proto/ledger.proto` is the same
//! contract for other implementations) and size-bounded `encode`/`decode` functions.
//!
//! The wire form is only transport: signatures cover [`crate::Transfer::canonical_bytes`],
//! never these bytes, so a non-canonical protobuf encoding cannot change what was signed.
//! The message structs are public so the node can embed them in its own sync messages.

use prost::Message;

use crate::{
    Account, Ack, EquivocationProof, NetworkId, SignedTransfer, Tokens, Transfer, TransferId,
};

/// Largest encoded [`SignedTransferMsg`] accepted. A valid transfer encodes to at most ~460
/// bytes (256-byte memo), so this leaves room without letting a peer make us parse much.
pub const MAX_TRANSFER_BYTES: usize = 1024;
/// Largest encoded [`AckMsg`] accepted (a valid one is 134 bytes).
pub const MAX_ACK_BYTES: usize = 256;
/// Largest encoded [`EquivocationProofMsg`] accepted: two transfers and their framing.
pub const MAX_PROOF_BYTES: usize = 2 * MAX_TRANSFER_BYTES + 16;

/// Why bytes from the network are not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Longer than the bound for this message; not parsed.
    #[error("message is {len} bytes, at most {max} allowed")]
    TooLarge {
        /// Input length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// Not valid protobuf for this message.
    #[error("malformed protobuf: {0}")]
    Decode(#[from] prost::DecodeError),
    /// A fixed-size field has the wrong length.
    #[error("field {field} is {found} bytes, expected {expected}")]
    FieldLength {
        /// Field name.
        field: &'static str,
        /// Its required length.
        expected: usize,
        /// Its actual length.
        found: usize,
    },
    /// A required sub-message is absent.
    #[error("missing field {0}")]
    MissingField(&'static str),
}

/// Protobuf form of a [`SignedTransfer`].
#[derive(Clone, PartialEq, Message)]
pub struct SignedTransferMsg {
    /// [`NetworkId`], 32 bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub network: Vec<u8>,
    /// Sender account, 32 bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub from: Vec<u8>,
    /// Recipient account, 32 bytes.
    #[prost(bytes = "vec", tag = "3")]
    pub to: Vec<u8>,
    /// Amount.
    #[prost(uint64, tag = "4")]
    pub amount: u64,
    /// Fee.
    #[prost(uint64, tag = "5")]
    pub fee: u64,
    /// Sender sequence number.
    #[prost(uint64, tag = "6")]
    pub seq: u64,
    /// Memo (UTF-8).
    #[prost(string, tag = "7")]
    pub memo: String,
    /// ed25519 signature, 64 bytes.
    #[prost(bytes = "vec", tag = "8")]
    pub signature: Vec<u8>,
}

/// Protobuf form of an [`Ack`].
#[derive(Clone, PartialEq, Message)]
pub struct AckMsg {
    /// [`TransferId`], 32 bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub transfer: Vec<u8>,
    /// Acker account, 32 bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub acker: Vec<u8>,
    /// ed25519 signature, 64 bytes.
    #[prost(bytes = "vec", tag = "3")]
    pub signature: Vec<u8>,
}

/// Protobuf form of an [`EquivocationProof`].
#[derive(Clone, PartialEq, Message)]
pub struct EquivocationProofMsg {
    /// First transfer.
    #[prost(message, optional, tag = "1")]
    pub a: Option<SignedTransferMsg>,
    /// Second transfer.
    #[prost(message, optional, tag = "2")]
    pub b: Option<SignedTransferMsg>,
}

fn fixed<const N: usize>(field: &'static str, bytes: &[u8]) -> Result<[u8; N], WireError> {
    bytes.try_into().map_err(|_| WireError::FieldLength {
        field,
        expected: N,
        found: bytes.len(),
    })
}

fn bounded<M: Message + Default>(bytes: &[u8], max: usize) -> Result<M, WireError> {
    if bytes.len() > max {
        return Err(WireError::TooLarge {
            len: bytes.len(),
            max,
        });
    }
    Ok(M::decode(bytes)?)
}

impl From<&SignedTransfer> for SignedTransferMsg {
    fn from(s: &SignedTransfer) -> Self {
        let t = &s.transfer;
        SignedTransferMsg {
            network: t.network.0.to_vec(),
            from: t.from.0.to_vec(),
            to: t.to.0.to_vec(),
            amount: t.amount.0,
            fee: t.fee.0,
            seq: t.seq,
            memo: t.memo.clone(),
            signature: s.signature.to_vec(),
        }
    }
}

impl TryFrom<SignedTransferMsg> for SignedTransfer {
    type Error = WireError;

    fn try_from(m: SignedTransferMsg) -> Result<Self, WireError> {
        Ok(SignedTransfer {
            transfer: Transfer {
                network: NetworkId(fixed("network", &m.network)?),
                from: Account(fixed("from", &m.from)?),
                to: Account(fixed("to", &m.to)?),
                amount: Tokens(m.amount),
                fee: Tokens(m.fee),
                seq: m.seq,
                memo: m.memo,
            },
            signature: fixed("signature", &m.signature)?,
        })
    }
}

impl From<&Ack> for AckMsg {
    fn from(a: &Ack) -> Self {
        AckMsg {
            transfer: a.transfer.0.to_vec(),
            acker: a.acker.0.to_vec(),
            signature: a.signature.to_vec(),
        }
    }
}

impl TryFrom<AckMsg> for Ack {
    type Error = WireError;

    fn try_from(m: AckMsg) -> Result<Self, WireError> {
        Ok(Ack {
            transfer: TransferId(fixed("transfer", &m.transfer)?),
            acker: Account(fixed("acker", &m.acker)?),
            signature: fixed("signature", &m.signature)?,
        })
    }
}

impl From<&EquivocationProof> for EquivocationProofMsg {
    fn from(p: &EquivocationProof) -> Self {
        EquivocationProofMsg {
            a: Some((&p.a).into()),
            b: Some((&p.b).into()),
        }
    }
}

impl TryFrom<EquivocationProofMsg> for EquivocationProof {
    type Error = WireError;

    fn try_from(m: EquivocationProofMsg) -> Result<Self, WireError> {
        Ok(EquivocationProof {
            a: m.a.ok_or(WireError::MissingField("a"))?.try_into()?,
            b: m.b.ok_or(WireError::MissingField("b"))?.try_into()?,
        })
    }
}

/// Protobuf bytes of a signed transfer.
pub fn encode_transfer(t: &SignedTransfer) -> Vec<u8> {
    SignedTransferMsg::from(t).encode_to_vec()
}

/// Parses a signed transfer of at most [`MAX_TRANSFER_BYTES`]. Does not verify it.
pub fn decode_transfer(bytes: &[u8]) -> Result<SignedTransfer, WireError> {
    bounded::<SignedTransferMsg>(bytes, MAX_TRANSFER_BYTES)?.try_into()
}

/// Protobuf bytes of an ack.
pub fn encode_ack(a: &Ack) -> Vec<u8> {
    AckMsg::from(a).encode_to_vec()
}

/// Parses an ack of at most [`MAX_ACK_BYTES`]. Does not verify it.
pub fn decode_ack(bytes: &[u8]) -> Result<Ack, WireError> {
    bounded::<AckMsg>(bytes, MAX_ACK_BYTES)?.try_into()
}

/// Protobuf bytes of an equivocation proof.
pub fn encode_proof(p: &EquivocationProof) -> Vec<u8> {
    EquivocationProofMsg::from(p).encode_to_vec()
}

/// Parses an equivocation proof of at most [`MAX_PROOF_BYTES`]. Does not verify it.
pub fn decode_proof(bytes: &[u8]) -> Result<EquivocationProof, WireError> {
    bounded::<EquivocationProofMsg>(bytes, MAX_PROOF_BYTES)?.try_into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_transfer() -> impl Strategy<Value = SignedTransfer> {
        (
            any::<[u8; 32]>(),
            any::<[u8; 32]>(),
            any::<[u8; 32]>(),
            any::<(u64, u64, u64)>(),
            ".{0,64}",
            prop::collection::vec(any::<u8>(), 64),
        )
            .prop_map(|(network, from, to, (amount, fee, seq), memo, sig)| {
                let mut signature = [0; 64];
                signature.copy_from_slice(&sig);
                SignedTransfer {
                    transfer: Transfer {
                        network: NetworkId(network),
                        from: Account(from),
                        to: Account(to),
                        amount: Tokens(amount),
                        fee: Tokens(fee),
                        seq,
                        memo,
                    },
                    signature,
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn transfer_round_trips(t in arb_transfer()) {
            let bytes = encode_transfer(&t);
            prop_assert!(bytes.len() <= MAX_TRANSFER_BYTES);
            prop_assert_eq!(decode_transfer(&bytes), Ok(t));
        }

        #[test]
        fn ack_round_trips(id in any::<[u8; 32]>(), acker in any::<[u8; 32]>(), sig in prop::collection::vec(any::<u8>(), 64)) {
            let mut signature = [0; 64];
            signature.copy_from_slice(&sig);
            let ack = Ack { transfer: TransferId(id), acker: Account(acker), signature };
            let bytes = encode_ack(&ack);
            prop_assert!(bytes.len() <= MAX_ACK_BYTES);
            prop_assert_eq!(decode_ack(&bytes), Ok(ack));
        }

        #[test]
        fn proof_round_trips(a in arb_transfer(), b in arb_transfer()) {
            let p = EquivocationProof { a, b };
            let bytes = encode_proof(&p);
            prop_assert!(bytes.len() <= MAX_PROOF_BYTES);
            prop_assert_eq!(decode_proof(&bytes), Ok(p));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2200)) {
            let _ = decode_transfer(&bytes);
            let _ = decode_ack(&bytes);
            let _ = decode_proof(&bytes);
        }
    }

    #[test]
    fn bounds_and_field_errors() {
        let big = vec![0u8; MAX_TRANSFER_BYTES + 1];
        assert_eq!(
            decode_transfer(&big),
            Err(WireError::TooLarge {
                len: MAX_TRANSFER_BYTES + 1,
                max: MAX_TRANSFER_BYTES
            })
        );
        let short = SignedTransferMsg {
            network: vec![1; 31],
            ..Default::default()
        }
        .encode_to_vec();
        assert_eq!(
            decode_transfer(&short),
            Err(WireError::FieldLength {
                field: "network",
                expected: 32,
                found: 31
            })
        );
        let empty_proof = EquivocationProofMsg::default().encode_to_vec();
        assert_eq!(
            decode_proof(&empty_proof),
            Err(WireError::MissingField("a"))
        );
        assert!(matches!(decode_ack(&[0xff]), Err(WireError::Decode(_))));
    }
}

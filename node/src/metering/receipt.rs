//! Call receipts: what a caller signs for one priced call.
//!
//! A receipt authorises the provider to bill one call of `service` at `price` tokens. Each
//! (caller, provider) pair numbers its receipts with `seq` (1, 2, …), so a receipt is good for
//! one call only; the provider keeps a sliding window of seen numbers (see [`super::book`]).
//! The signed bytes are domain-separated and bind the ledger network, so a receipt cannot be
//! replayed on another network or mistaken for a transfer or an ack.

use libp2p::identity::{Keypair, ed25519};
use micro_ledger::{Account, NetworkId};
use prost::Message;

/// Domain separation of the signed bytes.
const DOMAIN: &[u8] = b"micro-call-receipt/1\0";
/// Longest service name in a receipt (the registry's own bound is lower).
const MAX_SERVICE_BYTES: usize = 255;
/// Largest encoded receipt accepted.
pub const MAX_RECEIPT_BYTES: usize = 512;

/// One priced call, as the caller authorises it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallReceipt {
    /// Who pays: the caller node's account.
    pub caller: Account,
    /// Who is paid: the provider node's account.
    pub provider: Account,
    /// The call's number between these two, from 1.
    pub seq: u64,
    /// Tokens the call may cost.
    pub price: u64,
    /// The service called.
    pub service: String,
}

/// A receipt with the caller's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedReceipt {
    /// What was signed.
    pub receipt: CallReceipt,
    /// The caller's ed25519 signature over [`CallReceipt::signed_bytes`].
    pub signature: [u8; 64],
}

/// Why a receipt is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// It does not decode, or a field is out of bounds.
    #[error("malformed receipt: {0}")]
    Malformed(String),
    /// The signature does not verify under the caller's key.
    #[error("forged receipt: the signature does not verify")]
    BadSignature,
    /// It names another caller than the peer that sent it.
    #[error("forged receipt: signed for caller {claimed}, sent by {actual}")]
    WrongCaller {
        /// The caller it names.
        claimed: Account,
        /// The peer's account.
        actual: Account,
    },
    /// It names another provider.
    #[error("receipt for another provider ({0})")]
    WrongProvider(Account),
    /// It is for another service than the one called.
    #[error("receipt for service `{receipt}`, the call is to `{called}`")]
    WrongService {
        /// In the receipt.
        receipt: String,
        /// Called.
        called: String,
    },
    /// It covers less than the call costs.
    #[error("receipt covers {offered} tokens, the call costs {price}")]
    TooLow {
        /// In the receipt.
        offered: u64,
        /// The price.
        price: u64,
    },
    /// Its number was used before (a replay) or is too old to tell.
    #[error("replayed receipt: call number {0} was already billed or is too old")]
    Replayed(u64),
}

impl CallReceipt {
    /// The bytes the caller signs.
    pub fn signed_bytes(&self, network: &NetworkId) -> Vec<u8> {
        let mut out = Vec::with_capacity(DOMAIN.len() + 32 * 3 + 16 + 1 + self.service.len());
        out.extend_from_slice(DOMAIN);
        out.extend_from_slice(&network.0);
        out.extend_from_slice(&self.caller.0);
        out.extend_from_slice(&self.provider.0);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.price.to_be_bytes());
        // The length prefix keeps the encoding unambiguous; names are ≤ 255 bytes.
        out.push(self.service.len().min(MAX_SERVICE_BYTES) as u8);
        out.extend_from_slice(self.service.as_bytes());
        out
    }

    /// Signs with the caller's node key (which must be `self.caller`'s).
    pub fn sign(self, key: &Keypair, network: &NetworkId) -> SignedReceipt {
        let signature = key
            .sign(&self.signed_bytes(network))
            .ok()
            .and_then(|s| <[u8; 64]>::try_from(s).ok())
            .unwrap_or([0; 64]);
        SignedReceipt {
            receipt: self,
            signature,
        }
    }
}

/// The receipt on the wire (field 9 of an RPC request).
#[derive(Clone, PartialEq, Message)]
struct ReceiptMsg {
    #[prost(bytes = "vec", tag = "1")]
    caller: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    provider: Vec<u8>,
    #[prost(uint64, tag = "3")]
    seq: u64,
    #[prost(uint64, tag = "4")]
    price: u64,
    #[prost(string, tag = "5")]
    service: String,
    #[prost(bytes = "vec", tag = "6")]
    signature: Vec<u8>,
}

impl SignedReceipt {
    /// Its wire form.
    pub fn encode(&self) -> Vec<u8> {
        ReceiptMsg {
            caller: self.receipt.caller.0.to_vec(),
            provider: self.receipt.provider.0.to_vec(),
            seq: self.receipt.seq,
            price: self.receipt.price,
            service: self.receipt.service.clone(),
            signature: self.signature.to_vec(),
        }
        .encode_to_vec()
    }

    /// Parses the wire form, within bounds; the signature is not checked here.
    pub fn decode(bytes: &[u8]) -> Result<Self, ReceiptError> {
        if bytes.len() > MAX_RECEIPT_BYTES {
            return Err(ReceiptError::Malformed(format!(
                "{} bytes, over the {MAX_RECEIPT_BYTES}-byte limit",
                bytes.len()
            )));
        }
        let msg = ReceiptMsg::decode(bytes).map_err(|e| ReceiptError::Malformed(e.to_string()))?;
        let account = |what: &str, b: Vec<u8>| {
            <[u8; 32]>::try_from(b)
                .map(Account)
                .map_err(|_| ReceiptError::Malformed(format!("{what} is not 32 bytes")))
        };
        if msg.service.len() > MAX_SERVICE_BYTES {
            return Err(ReceiptError::Malformed("service name too long".into()));
        }
        if msg.seq == 0 {
            return Err(ReceiptError::Malformed("call numbers start at 1".into()));
        }
        Ok(Self {
            receipt: CallReceipt {
                caller: account("caller", msg.caller)?,
                provider: account("provider", msg.provider)?,
                seq: msg.seq,
                price: msg.price,
                service: msg.service,
            },
            signature: <[u8; 64]>::try_from(msg.signature)
                .map_err(|_| ReceiptError::Malformed("signature is not 64 bytes".into()))?,
        })
    }

    /// Checks the signature under the caller's key.
    pub fn verify(&self, network: &NetworkId) -> Result<(), ReceiptError> {
        let key = ed25519::PublicKey::try_from_bytes(&self.receipt.caller.0)
            .map_err(|_| ReceiptError::BadSignature)?;
        if key.verify(&self.receipt.signed_bytes(network), &self.signature) {
            Ok(())
        } else {
            Err(ReceiptError::BadSignature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn account_of(key: &Keypair) -> Account {
        crate::ledger::account_of(&key.public().to_peer_id()).expect("ed25519")
    }

    fn receipt(caller: &Keypair, provider: Account) -> CallReceipt {
        CallReceipt {
            caller: account_of(caller),
            provider,
            seq: 7,
            price: 3,
            service: "greeter".into(),
        }
    }

    #[test]
    fn signed_receipts_roundtrip_and_verify() {
        let (caller, provider) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let network = NetworkId([1; 32]);
        let signed = receipt(&caller, account_of(&provider)).sign(&caller, &network);
        let back = SignedReceipt::decode(&signed.encode()).expect("decodes");
        assert_eq!(back, signed);
        back.verify(&network).expect("verifies");
    }

    #[test]
    fn tampering_or_another_network_breaks_the_signature() {
        let (caller, provider) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let network = NetworkId([1; 32]);
        let signed = receipt(&caller, account_of(&provider)).sign(&caller, &network);
        assert_eq!(
            signed.verify(&NetworkId([2; 32])),
            Err(ReceiptError::BadSignature)
        );
        let mut cheaper = signed.clone();
        cheaper.receipt.price = 1;
        assert_eq!(cheaper.verify(&network), Err(ReceiptError::BadSignature));
        let mut other = signed.clone();
        other.receipt.caller = account_of(&Keypair::generate_ed25519());
        assert_eq!(other.verify(&network), Err(ReceiptError::BadSignature));
    }

    #[test]
    fn oversized_and_zero_seq_receipts_are_malformed() {
        assert!(matches!(
            SignedReceipt::decode(&vec![0; MAX_RECEIPT_BYTES + 1]),
            Err(ReceiptError::Malformed(_))
        ));
        let caller = Keypair::generate_ed25519();
        let mut r = receipt(&caller, Account([0; 32]));
        r.seq = 0;
        let signed = r.sign(&caller, &NetworkId([0; 32]));
        assert!(matches!(
            SignedReceipt::decode(&signed.encode()),
            Err(ReceiptError::Malformed(_))
        ));
    }

    proptest! {
        #[test]
        fn any_bytes_decode_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = SignedReceipt::decode(&bytes);
        }
    }
}

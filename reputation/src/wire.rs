//! Wire types of trust reports, hand-written prost messages (no build script).
//!
//! The equivalent schema, for other implementations:
//!
//! ```proto
//! syntax = "proto3";
//! package micro.reputation.v1;
//!
//! message SignedTrustReport {
//!   bytes body = 1;        // an encoded TrustReportBody, exactly as signed
//!   bytes public_key = 2;  // the issuer's libp2p public key, protobuf-encoded
//!   bytes signature = 3;   // over "micro-reputation-trust-report-v1:" ++ body
//! }
//!
//! message TrustReportBody {
//!   bytes issuer = 1;          // issuer PeerId bytes
//!   uint64 issued_at_ms = 2;   // Unix milliseconds
//!   repeated TrustEntry entries = 3;
//! }
//!
//! message TrustEntry {
//!   bytes peer = 1;    // PeerId bytes
//!   uint32 trust = 2;  // c_ij in parts per billion, 1..=1_000_000_000
//! }
//! ```
//!
//! The signature covers the body bytes as carried, so verification never depends on
//! re-encoding; the signer produces them with prost's deterministic field order.

/// A signed report as carried on the wire and stored on disk.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct WireSignedReport {
    /// Encoded [`WireReportBody`], the exact bytes signed.
    #[prost(bytes = "vec", tag = "1")]
    pub body: Vec<u8>,
    /// The issuer's public key, libp2p protobuf encoding.
    #[prost(bytes = "vec", tag = "2")]
    pub public_key: Vec<u8>,
    /// Signature over the signing domain followed by `body`.
    #[prost(bytes = "vec", tag = "3")]
    pub signature: Vec<u8>,
}

/// The signed content of a report.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct WireReportBody {
    /// Issuer PeerId bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub issuer: Vec<u8>,
    /// Issue time, Unix milliseconds.
    #[prost(uint64, tag = "2")]
    pub issued_at_ms: u64,
    /// Trust entries.
    #[prost(message, repeated, tag = "3")]
    pub entries: Vec<WireEntry>,
}

/// One `(peer, trust)` entry.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct WireEntry {
    /// PeerId bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub peer: Vec<u8>,
    /// Normalised trust in parts per billion.
    #[prost(uint32, tag = "2")]
    pub trust: u32,
}

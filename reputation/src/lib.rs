//! Reputation for Micro Network peers: first-hand observations, signed trust reports, and a
//! global EigenTrust score seeded by the super nodes.
//!
//! This crate is pure computation plus persistence in a `sled` database the node passes in. It
//! has no clock (every time-dependent call takes a [`UnixMillis`]), no network and no tasks.
//! The node feeds it overlay events, gossips the trust reports it signs, and asks it for scores,
//! ledger weights, admission allowances and gossipsub scores. It does not verify call receipts
//! (the node does, since they carry payments) or equivocation proofs (the ledger does); it takes
//! their conclusions.
//!
//! # The model
//!
//! A node's identity is its ed25519 key; its reputation is how much the network trusts that key.
//! Trust is built in three layers.
//!
//! **1. Observations** ([`observation`]). Each node records, for each peer it meets, first hand
//! only: when it first saw the peer, how long it saw it connected, calls the peer served it with
//! valid receipts, failed calls, and penalties ([`Penalty`]). Nothing another node says enters
//! here. The table is bounded ([`ObservationConfig::max_peers`], 10 000); when full, the
//! unprotected peer with the lowest local trust goes first, and super nodes and the best-scored
//! peers are never evicted. A flood of fresh keys therefore only displaces other newcomers.
//!
//! **2. Local trust** ([`trust`]). From its observations, node `i` trusts peer `j`:
//!
//! ```text
//! s_ij = max(0,  m · (w_up · uptime + w_rc · ln(1 + receipts))
//!               − w_fail · ln(1 + failed_calls)
//!               − penalty_points(now))
//! m    = min(1, age / maturity)                   maturity = 7 days
//! c_ij = s_ij / Σ_k s_ik                           (normalised local trust)
//! ```
//!
//! with `w_up = 1`, `w_rc = 0.5`, `w_fail = 0.5`; penalty points are 0.25 per invalid message
//! and 1.0 per forged record, halving every day. The maturity factor makes trust cost
//! wall-clock time per key; the logarithms make it cost little to be busy and buy little to be
//! busier.
//!
//! **3. Global score** ([`eigentrust`]). Each node periodically signs its top-K `c_ij` (K = 64)
//! as a [`TrustReport`] and gossips it. Every node runs EigenTrust over the reports it holds:
//!
//! ```text
//! t = (1 − a) · Cᵀ t + a · p          a = 0.15, p uniform over the super nodes
//! ```
//!
//! by power iteration from `t = p` until the L1 change is below 10⁻⁹. Trust a row does not
//! assign (no report, entries beyond K, rounding) returns to `p`. The result, [`Scores`], sums
//! to 1; only peers reachable from a super node along trust edges score above 0. It drives:
//!
//! - the **ledger**: [`Scores::weight`] is the score in fixed point ([`Weight`], 10¹² = 1), so
//!   "acked by more than 2/3 of the known weight" is an exact integer comparison;
//! - **admission** ([`admission`], [`rate_limit`]): free calls per hour and calls per second
//!   grow geometrically with the peer's percentile, from 100/h and 10/s to 10 000/h and 200/s;
//! - **gossipsub** ([`gossip`]): an application score of `3 · ln(1 + t/median)` (capped at 10),
//!   minus 10 per first-hand penalty point, −1 000 when collapsed.
//!
//! **Collapse.** Equivocation (two conflicting signed ledger statements) is objective: anyone
//! holding the proof can check it. [`Reputation::collapse`] makes the peer score exactly 0,
//! drops and refuses its reports, ignores every edge to it (that trust returns to `p`), removes
//! it from the pre-trusted set even if it is a super node, and persists this at once. It never
//! decays; the other penalties do.
//!
//! # The Sybil bound
//!
//! An attacker holds a key `A` that honest nodes trust somewhat, and mints `k` keys that report
//! full trust in each other and in `A`, while `A` reports trust in them. Call the cluster `S`
//! (`A` and the sybils; no super node in it) and the honest inflow
//! `F = Σ_{i ∉ S} t_i · c_{i,S}` (score-weighted trust honest nodes send into `S`).
//!
//! 1. *Unreachable sybils weigh nothing.* `t` starts at `p` and mass only moves along trust
//!    edges or back to `p`, so a peer no path reaches from a super node has `t = 0` exactly,
//!    for any `k`.
//! 2. *The cluster is bounded by its inflow.* At the fixed point,
//!    `t_S = (1 − a) · (F + Σ_{i ∈ S} t_i c_{i,S}) + a · p_S`, with `p_S = 0` and
//!    `Σ_{i ∈ S} t_i c_{i,S} ≤ t_S`, so
//!
//!    ```text
//!    t_S ≤ (1 − a)/a · F        (= 5.67 · F with a = 0.15)
//!    ```
//!
//!    with equality exactly when every row in `S` keeps all its trust inside `S` — the
//!    attacker's best play. The bound does not mention `k`. Moreover, for such a closed cluster
//!    the chain is lumpable (every member sends the same `a` back to `p` and nothing else out),
//!    so `t_S` and every honest score are *identical* for `k = 1` and `k = 1000`: minting keys
//!    buys nothing. A cluster that also trusts honest peers weighs less.
//!
//! The amplification `(1 − a)/a` is real (a peer that trusts nobody keeps only `(1 − a) · F`,
//! so even one sybil multiplies by `1/a`), but honest clusters enjoy the same factor, and `F`
//! itself is what the attacker must earn: honest nodes' trust, which costs a week of age per key,
//! uptime, and calls actually served, and which honest issuers can only give in proportion to
//! their own scores. Raising `a` lowers the amplification at the price of favouring super
//! nodes. Both properties, the super-node floor `t_s ≥ a/|supers|` and `Σ t = 1`, are tested
//! with proptest in `eigentrust/tests.rs`.
//!
//! # Design decisions beyond the first sketch
//!
//! - **Top-K reports are normalised over everything the issuer trusts**, not over the K kept,
//!   and the remainder goes to `p`. Renormalising over K would overstate each listed peer's
//!   share; sending the rest to the super nodes is what EigenTrust already does for peers that
//!   trust nobody.
//! - **Trust values are fixed point** ([`TrustWeight`], parts per billion), not `f32`: a
//!   canonical encoding with no NaN, infinities or negatives to reject. Entries must be positive
//!   and sum to at most one ([`ReportError::TrustOverflow`]).
//! - **A node's own row is its last published report**, not its live local trust, so that every
//!   node holding the same reports computes bit-identical scores (indices and summation order
//!   are deterministic). The ledger's weights agree as far as report sets agree. Before the first
//!   publication the live local trust stands in.
//! - **Failed calls weigh as `ln(1 + failed)`, not linearly**, mirroring receipts: together they
//!   measure a success ratio, so a busy, mostly reliable peer is not driven to zero by volume.
//!   Invalid messages and forged records decay (half-life one day); equivocation is a collapse.
//! - **Newcomers share a pool of free calls** ([`RateLimiterConfig`], 1 000/h): a per-key free
//!   allowance alone would let anyone mint free calls by minting keys.
//! - **Reports expire** (6 h; republish at least every 30 minutes) and may be at most a minute in
//!   the future. This forgets departed nodes' opinions and bounds replay across restarts. A
//!   newer report from an issuer replaces the older; equal or older ones are refused as
//!   [`ReportError::Stale`]. When the store is full (16 384), a report enters only by displacing
//!   a lower-scored issuer's: a zero-score issuer's trust carries no weight anyway.
//! - **Reports are persisted** (as signed bytes, verified again when loaded), so scores are
//!   available right after a restart instead of after a round of gossip.
//! - **Writes are batched**: observations and reports are written by
//!   [`Reputation::checkpoint`] (and on drop), keeping `observe_*` calls cheap and infallible;
//!   collapses are written at once. A crash loses at most one checkpoint interval
//!   of observations; a connection open at a crash counts as closed at its last checkpoint.
//! - **No super nodes given** (a lone laptop network): the node seeds EigenTrust with itself.
//! - **`explain` lives on [`Reputation`]**, not on [`Scores`]: it needs this node's
//!   observations and the reports behind the scores, which `Scores` does not keep.
//! - **Everything here is synchronous.** [`Reputation::recompute`] (~0.1 s at 10 000 × 64) and
//!   [`Reputation::checkpoint`] (an fsync) block, so the node's reputation actor belongs on a
//!   thread of its own.
//!
//! # Map
//!
//! | module | holds |
//! |---|---|
//! | [`time`] | [`UnixMillis`], the only notion of time |
//! | [`observation`] | [`PeerObservation`], the bounded [`Observations`] table, [`Penalty`] |
//! | [`trust`] | the local trust formula, [`LocalTrust`] vectors |
//! | [`report`] | signed [`TrustReport`]s, their codec and [`ReportError`] |
//! | [`report_store`] | the bounded newest-per-issuer [`ReportStore`] |
//! | [`eigentrust`] | [`TrustGraph`] and the power iteration |
//! | [`scores`] | [`Scores`]: score, weight, rank, percentile |
//! | [`admission`], [`rate_limit`] | [`Allowance`]s and the per-peer [`RateLimiter`] |
//! | [`gossip`] | the gossipsub application score |
//! | [`collapsed`] | the collapsed set |
//! | [`explain`] | [`Explanation`], what `micro-node reputation PEER` prints |
//! | [`reputation`] | [`Reputation`], which ties it all together and persists it |
//!
//! Proofs of equivocation travel with the ledger: every node that verifies one calls
//! [`Reputation::collapse`] itself, so a collapse does not depend on trusting whoever reported it.
//!
//! # Use
//!
//! ```no_run
//! use micro_reputation::{Config, Reputation, UnixMillis};
//! # fn demo(db: &sled::Db, key: &libp2p::identity::Keypair, peer: libp2p::PeerId,
//! #         supers: &[libp2p::PeerId]) -> Result<(), Box<dyn std::error::Error>> {
//! let mut rep = Reputation::open(db, Config::default(), key.public().to_peer_id())?;
//! let now = UnixMillis(1_700_000_000_000);
//! rep.observe_connected(peer, now);
//! rep.observe_receipt(peer, 1, now);
//! let report = rep.local_report(key, now)?; // gossip report.encode()
//! let scores = rep.recompute(supers, now); // every ~30 s
//! let _weight = scores.weight(&peer);
//! let _allowance = rep.admission(&peer);
//! rep.checkpoint(now)?; // from a blocking thread
//! # Ok(()) }
//! ```

pub mod admission;
pub mod collapsed;
pub mod config;
pub mod eigentrust;
pub mod error;
pub mod explain;
pub mod gossip;
pub mod observation;
pub mod rate_limit;
pub mod report;
pub mod report_store;
pub mod reputation;
pub mod scores;
mod store;
pub mod time;
pub mod trust;
mod wire;

#[cfg(test)]
mod test_support;

pub use admission::{Admission, AdmissionConfig, Allowance, Standing};
pub use config::Config;
pub use eigentrust::{EigenTrustConfig, TrustGraph};
pub use error::Error;
pub use explain::{Endorsement, Explanation, LocalView};
pub use gossip::GossipScoreConfig;
pub use observation::{ObservationConfig, Observations, PeerObservation, Penalty};
pub use rate_limit::{RateLimiter, RateLimiterConfig, Verdict};
pub use report::{ReportConfig, ReportError, TrustEntry, TrustReport, TrustWeight};
pub use report_store::ReportStore;
pub use reputation::Reputation;
pub use scores::{Scores, WEIGHT_SCALE, Weight};
pub use store::{COLLAPSED_TREE, OBSERVATIONS_TREE, REPORTS_TREE};
pub use time::UnixMillis;
pub use trust::{LocalTrust, PenaltyWeights, TrustConfig};

//! Deterministic keys and peer ids for tests.

use libp2p::PeerId;
use libp2p::identity::Keypair;
use libp2p::multihash::Multihash;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// The ed25519 key number `n` (the same for every run).
pub(crate) fn keypair(n: u32) -> Keypair {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&n.to_le_bytes());
    seed[31] = 0x5a;
    Keypair::ed25519_from_bytes(seed).expect("any 32 bytes are an ed25519 secret key")
}

/// The peer id of [`keypair`] `n` (cached: key derivation is slow in debug builds).
pub(crate) fn peer(n: u32) -> PeerId {
    static CACHE: OnceLock<Mutex<HashMap<u32, PeerId>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(p) = cache.lock().expect("test cache lock").get(&n) {
        return *p;
    }
    let p = keypair(n).public().to_peer_id();
    cache.lock().expect("test cache lock").insert(n, p);
    p
}

/// A cheap peer id number `n` with no key behind it, for graphs of thousands of peers.
pub(crate) fn node(n: u32) -> PeerId {
    let mut digest = [0u8; 32];
    digest[..4].copy_from_slice(&n.to_be_bytes());
    digest[31] = 0xa5;
    let hash = Multihash::<64>::wrap(0, &digest).expect("32 bytes fit a 64-byte multihash");
    PeerId::from_multihash(hash).expect("a 32-byte identity multihash is a peer id")
}

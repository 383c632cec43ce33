//! Link shaping for simulations: latency, jitter and connection drops on a node's raw
//! connections, plus byte and connection counters.
//!
//! A [`LinkShaper`] is set in [`OverlayConfig::link`](crate::OverlayConfig::link). The overlay
//! then wraps its TCP and in-memory transports in [`Shaped`], so every raw connection of the
//! node, dialled or accepted, is a [`ShapedStream`] *below* Noise and Yamux. QUIC connections
//! are not shaped (QUIC is not a byte stream the overlay can wrap below its encryption); a
//! simulation should use `/memory/<n>` or TCP addresses.
//!
//! What is shaped, and what is not:
//!
//! - **Latency** applies where data is *read*: bytes that arrive on a shaped connection reach
//!   Noise `latency ± jitter` later, chunk by chunk and in order. Writes leave at once. So the
//!   one-way delay from A to B is B's latency (the receiver's), and a round trip between A and
//!   B takes at least `latency(A) + latency(B)`: when both nodes have a shaper, their delays
//!   add up over the round trip, each direction carrying the receiver's. A node without a
//!   shaper receives without delay.
//! - **Loss** is modelled per connection, not per byte: each new connection, dialled or
//!   accepted, is refused with probability `drop_rate`. Dropping bytes inside a connection
//!   would corrupt the Noise stream (a lost byte is a broken session, not a lost packet), and
//!   over TCP packet loss shows up as retransmission delay anyway, which `latency` and
//!   `jitter` model.
//! - **Bandwidth** is not limited.
//!
//! The profile can change at runtime ([`LinkShaper::set_profile`]): a new latency applies to
//! data that arrives afterwards, a new drop rate to connections opened afterwards.

mod stream;
mod transport;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rand::Rng;

pub use stream::ShapedStream;
pub use transport::{LinkError, Shaped, ShapedConnect};

/// Most bytes a [`ShapedStream`] holds back (read from the socket, not yet due). At this mark
/// it stops reading from the socket, so a slow reader pushes back on the sender as a real
/// socket buffer would, and memory per connection stays bounded.
pub const MAX_DELAYED_BYTES: usize = 256 * 1024;

/// The shape of a node's link. `Default` is a perfect link: no delay, no drops.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LinkProfile {
    /// Mean delay added to data this node receives, per chunk read from the socket.
    pub latency: Duration,
    /// Each chunk's delay is `latency` plus a uniform offset in `[-jitter, +jitter]`, never
    /// below zero. Chunks still arrive in order: a chunk is never delivered before an earlier
    /// one, so a large jitter delays later chunks rather than reordering them.
    pub jitter: Duration,
    /// Probability in `[0, 1]` that a new connection (dialled or accepted) is refused. Values
    /// outside the range are clamped; NaN counts as 0.
    pub drop_rate: f64,
}

impl LinkProfile {
    /// A profile with this latency and no jitter or drops.
    pub fn with_latency(latency: Duration) -> Self {
        Self {
            latency,
            ..Self::default()
        }
    }

    /// `drop_rate` clamped to `[0, 1]`, NaN as 0.
    pub fn effective_drop_rate(&self) -> f64 {
        if self.drop_rate.is_nan() {
            0.0
        } else {
            self.drop_rate.clamp(0.0, 1.0)
        }
    }

    /// Whether data passes untouched (no latency, no jitter).
    fn is_instant(&self) -> bool {
        self.latency.is_zero() && self.jitter.is_zero()
    }

    /// One chunk's delay: `latency ± uniform(jitter)`, at least zero.
    fn sample_delay(&self, rng: &mut impl Rng) -> Duration {
        if self.jitter.is_zero() {
            return self.latency;
        }
        let jitter = u64::try_from(self.jitter.as_nanos()).unwrap_or(u64::MAX / 2);
        let jitter = jitter.min(u64::MAX / 2);
        let offset = rng.random_range(0..=2 * jitter);
        if offset >= jitter {
            self.latency
                .saturating_add(Duration::from_nanos(offset - jitter))
        } else {
            self.latency
                .saturating_sub(Duration::from_nanos(jitter - offset))
        }
    }
}

/// What a [`LinkShaper`] has counted since it was made, over every connection of the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkStats {
    /// Bytes read from the node's shaped connections (as they arrive from the socket, before
    /// the delay; Noise and Yamux framing included).
    pub bytes_in: u64,
    /// Bytes written to the node's shaped connections (framing included).
    pub bytes_out: u64,
    /// Shaped connections established (dialled or accepted, before the Noise handshake).
    pub connections: u64,
    /// Connections refused by the drop rate, dialled or accepted.
    pub connections_dropped: u64,
}

/// A handle on one node's link: its [`LinkProfile`], changeable at runtime, and its
/// [`LinkStats`]. Cheap to clone (an `Arc`); clones share profile and counters, so a
/// simulation keeps one clone per node to steer and observe it.
#[derive(Debug, Clone, Default)]
pub struct LinkShaper {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    profile: RwLock<LinkProfile>,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    connections: AtomicU64,
    connections_dropped: AtomicU64,
}

impl LinkShaper {
    /// A shaper with this profile and zeroed counters.
    pub fn new(profile: LinkProfile) -> Self {
        Self {
            inner: Arc::new(Inner {
                profile: RwLock::new(profile),
                ..Inner::default()
            }),
        }
    }

    /// The current profile.
    pub fn profile(&self) -> LinkProfile {
        // A poisoned lock still holds a whole `Copy` profile: no invariant can be broken.
        *self
            .inner
            .profile
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Replaces the profile. Latency applies to data arriving from now on (on open
    /// connections too), the drop rate to connections opened from now on.
    pub fn set_profile(&self, profile: LinkProfile) {
        *self
            .inner
            .profile
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = profile;
    }

    /// The counters so far. Each is read atomically on its own; the four together are not a
    /// snapshot of one instant.
    pub fn stats(&self) -> LinkStats {
        let inner = &self.inner;
        LinkStats {
            bytes_in: inner.bytes_in.load(Ordering::Relaxed),
            bytes_out: inner.bytes_out.load(Ordering::Relaxed),
            connections: inner.connections.load(Ordering::Relaxed),
            connections_dropped: inner.connections_dropped.load(Ordering::Relaxed),
        }
    }

    /// Decides whether a new connection is refused, and counts it if so. Returns the drop
    /// rate that refused it.
    fn should_drop(&self) -> Option<f64> {
        let rate = self.profile().effective_drop_rate();
        let dropped = rate > 0.0 && rand::rng().random_bool(rate);
        if dropped {
            self.inner
                .connections_dropped
                .fetch_add(1, Ordering::Relaxed);
            Some(rate)
        } else {
            None
        }
    }

    fn count_connection(&self) {
        self.inner.connections.fetch_add(1, Ordering::Relaxed);
    }

    fn count_in(&self, n: usize) {
        self.inner.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn count_out(&self, n: usize) {
        self.inner.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn drop_rate_zero_never_drops_and_one_always_does() {
        let shaper = LinkShaper::default();
        assert!((0..1000).all(|_| shaper.should_drop().is_none()));
        shaper.set_profile(LinkProfile {
            drop_rate: 1.0,
            ..LinkProfile::default()
        });
        assert!((0..1000).all(|_| shaper.should_drop() == Some(1.0)));
        assert_eq!(shaper.stats().connections_dropped, 1000);
    }

    #[test]
    fn out_of_range_drop_rates_are_clamped() {
        let rate = |drop_rate| {
            LinkProfile {
                drop_rate,
                ..LinkProfile::default()
            }
            .effective_drop_rate()
        };
        assert_eq!(rate(f64::NAN), 0.0);
        assert_eq!(rate(-3.0), 0.0);
        assert_eq!(rate(7.0), 1.0);
        assert_eq!(rate(0.25), 0.25);
    }

    #[test]
    fn clones_share_profile_and_counters() {
        let shaper = LinkShaper::new(LinkProfile::with_latency(Duration::from_millis(5)));
        let clone = shaper.clone();
        clone.set_profile(LinkProfile::with_latency(Duration::from_millis(9)));
        clone.count_in(3);
        clone.count_out(4);
        clone.count_connection();
        assert_eq!(shaper.profile().latency, Duration::from_millis(9));
        assert_eq!(
            shaper.stats(),
            LinkStats {
                bytes_in: 3,
                bytes_out: 4,
                connections: 1,
                connections_dropped: 0,
            }
        );
    }

    proptest! {
        #[test]
        fn delays_stay_within_latency_plus_minus_jitter(
            latency_ms in 0u64..1000,
            jitter_ms in 0u64..1000,
        ) {
            let profile = LinkProfile {
                latency: Duration::from_millis(latency_ms),
                jitter: Duration::from_millis(jitter_ms),
                drop_rate: 0.0,
            };
            let mut rng = rand::rng();
            for _ in 0..32 {
                let delay = profile.sample_delay(&mut rng);
                prop_assert!(delay <= profile.latency + profile.jitter);
                prop_assert!(delay >= profile.latency.saturating_sub(profile.jitter));
            }
        }
    }
}

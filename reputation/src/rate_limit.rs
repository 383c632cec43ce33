//! Token buckets per peer, enforcing an [`Allowance`]: 429 for too fast, 402 for no free calls.
//!
//! Each peer has two buckets: a rate bucket (`max_calls_per_second` tokens, refilled at that
//! rate per second, so the burst is one second) and a free-call bucket (`free_calls_per_hour`
//! tokens, refilled at that rate per hour). Newcomers' free calls must also find a token in one
//! shared pool. Arithmetic is exact integers: a token is [`UNITS_PER_TOKEN`] units, so both
//! "n per second" (n × 3 600 units/ms) and "n per hour" (n units/ms) refill by whole units.

use crate::admission::Allowance;
use crate::time::{SECOND_MS, UnixMillis};
use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Units of one token: milliseconds in an hour, so per-hour and per-second rates are whole
/// units per millisecond.
pub const UNITS_PER_TOKEN: u64 = 3_600_000;

/// What to do with one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// Serve it for free (a free call was consumed).
    Free,
    /// Serve it; it pays.
    Paid,
    /// Refuse with 429 Too Many Requests.
    TooManyRequests {
        /// When a call would next be allowed, in milliseconds (for `Retry-After`); `u64::MAX`
        /// if never (a zero rate).
        retry_after_ms: u64,
    },
    /// Refuse with 402 Payment Required: no free call left; a paying call would be served.
    PaymentRequired,
}

/// Limits of the rate limiter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RateLimiterConfig {
    /// Peers with buckets at most. Default 10 000 (about 1 MB). A new peer at the limit evicts
    /// the peer whose buckets were touched longest ago; it loses at most that peer's partly
    /// used buckets, which refill to the same state given time anyway.
    pub max_peers: usize,
    /// Free calls per hour shared by all newcomers together. Default 1 000. Without it every
    /// new key would bring its own free allowance.
    pub newcomer_pool_free_calls_per_hour: u32,
}

impl Default for RateLimiterConfig {
    fn default() -> Self {
        RateLimiterConfig {
            max_peers: 10_000,
            newcomer_pool_free_calls_per_hour: 1_000,
        }
    }
}

/// One token bucket in exact units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    units: u64,
    updated: UnixMillis,
}

impl TokenBucket {
    /// A full bucket of `capacity` tokens at `now`.
    pub fn full(capacity: u32, now: UnixMillis) -> TokenBucket {
        TokenBucket {
            units: u64::from(capacity) * UNITS_PER_TOKEN,
            updated: now,
        }
    }

    /// Adds `units_per_ms` for each millisecond since the last update, up to `capacity` tokens
    /// (a bucket over a capacity that shrank is cut down to it).
    pub fn refill(&mut self, capacity: u32, units_per_ms: u64, now: UnixMillis) {
        let cap = u64::from(capacity) * UNITS_PER_TOKEN;
        let added = now.since(self.updated).saturating_mul(units_per_ms);
        self.units = self.units.saturating_add(added).min(cap);
        self.updated = self.updated.max(now);
    }

    /// Whether a whole token is there.
    pub fn has_token(&self) -> bool {
        self.units >= UNITS_PER_TOKEN
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self) -> bool {
        let ok = self.has_token();
        if ok {
            self.units -= UNITS_PER_TOKEN;
        }
        ok
    }

    /// Milliseconds until a whole token is there at `units_per_ms` (`u64::MAX` if never).
    pub fn ms_until_token(&self, units_per_ms: u64) -> u64 {
        if self.has_token() {
            0
        } else if units_per_ms == 0 {
            u64::MAX
        } else {
            (UNITS_PER_TOKEN - self.units).div_ceil(units_per_ms)
        }
    }

    /// Whole tokens available.
    pub fn tokens(&self) -> u64 {
        self.units / UNITS_PER_TOKEN
    }
}

#[derive(Debug)]
struct PeerBuckets {
    rate: TokenBucket,
    free: TokenBucket,
    touched: UnixMillis,
}

/// Per-peer token buckets (bounded), plus the newcomers' shared pool.
#[derive(Debug)]
pub struct RateLimiter {
    peers: HashMap<PeerId, PeerBuckets>,
    pool: TokenBucket,
    config: RateLimiterConfig,
}

fn per_second(rate: u32) -> u64 {
    u64::from(rate) * (UNITS_PER_TOKEN / SECOND_MS)
}

fn per_hour(rate: u32) -> u64 {
    // UNITS_PER_TOKEN is one hour of milliseconds: n tokens per hour is n units per ms.
    u64::from(rate)
}

impl RateLimiter {
    /// An empty limiter; the newcomer pool starts full at `now`.
    pub fn new(config: RateLimiterConfig, now: UnixMillis) -> RateLimiter {
        RateLimiter {
            peers: HashMap::new(),
            pool: TokenBucket::full(config.newcomer_pool_free_calls_per_hour, now),
            config,
        }
    }

    /// Decides one call from `peer` with this `allowance`; `paid` says whether it carries a
    /// payment. The rate limit applies to every call; the free allowance only to unpaid ones.
    pub fn check(
        &mut self,
        peer: PeerId,
        allowance: &Allowance,
        paid: bool,
        now: UnixMillis,
    ) -> Verdict {
        if !self.peers.contains_key(&peer) && self.peers.len() >= self.config.max_peers {
            self.evict_one();
        }
        let buckets = self.peers.entry(peer).or_insert_with(|| PeerBuckets {
            rate: TokenBucket::full(allowance.max_calls_per_second, now),
            free: TokenBucket::full(allowance.free_calls_per_hour, now),
            touched: now,
        });
        buckets.touched = buckets.touched.max(now);
        let rate = per_second(allowance.max_calls_per_second);
        buckets
            .rate
            .refill(allowance.max_calls_per_second, rate, now);
        if !buckets.rate.try_take() {
            return Verdict::TooManyRequests {
                retry_after_ms: buckets.rate.ms_until_token(rate),
            };
        }
        if paid {
            return Verdict::Paid;
        }
        buckets.free.refill(
            allowance.free_calls_per_hour,
            per_hour(allowance.free_calls_per_hour),
            now,
        );
        let pool_size = self.config.newcomer_pool_free_calls_per_hour;
        self.pool.refill(pool_size, per_hour(pool_size), now);
        let pool_ok = !allowance.newcomer || self.pool.has_token();
        if buckets.free.has_token() && pool_ok {
            buckets.free.try_take();
            if allowance.newcomer {
                self.pool.try_take();
            }
            Verdict::Free
        } else {
            Verdict::PaymentRequired
        }
    }

    /// Number of peers with buckets.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether no peer has buckets.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Free calls left in the newcomers' pool (as of its last refill).
    pub fn pool_tokens(&self) -> u64 {
        self.pool.tokens()
    }

    fn evict_one(&mut self) {
        let oldest = self
            .peers
            .iter()
            .min_by_key(|(p, b)| (b.touched, **p))
            .map(|(p, _)| *p);
        if let Some(p) = oldest {
            self.peers.remove(&p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::node;
    use crate::time::HOUR_MS;

    fn allowance(free: u32, rate: u32, newcomer: bool) -> Allowance {
        Allowance {
            free_calls_per_hour: free,
            max_calls_per_second: rate,
            newcomer,
        }
    }

    #[test]
    fn bucket_math_is_exact() {
        let mut bucket = TokenBucket::full(2, UnixMillis(0));
        assert!(bucket.try_take() && bucket.try_take() && !bucket.try_take());
        // 10 per second: one token every 100 ms.
        let rate = per_second(10);
        assert_eq!(bucket.ms_until_token(rate), 100);
        bucket.refill(2, rate, UnixMillis(99));
        assert!(!bucket.has_token());
        assert_eq!(bucket.ms_until_token(rate), 1);
        bucket.refill(2, rate, UnixMillis(100));
        assert_eq!(bucket.tokens(), 1);
        // Capacity caps the refill, and a clock going back adds nothing.
        bucket.refill(2, rate, UnixMillis(10_000));
        assert_eq!(bucket.tokens(), 2);
        bucket.refill(2, rate, UnixMillis(5));
        assert_eq!(bucket.tokens(), 2);
        // 3 per hour: one token every 20 minutes.
        let mut hourly = TokenBucket::full(3, UnixMillis(0));
        for _ in 0..3 {
            assert!(hourly.try_take());
        }
        assert_eq!(hourly.ms_until_token(per_hour(3)), 20 * 60_000);
        assert_eq!(hourly.ms_until_token(0), u64::MAX);
    }

    #[test]
    fn too_fast_is_429_and_out_of_free_calls_is_402() {
        let mut limiter = RateLimiter::new(RateLimiterConfig::default(), UnixMillis(0));
        let a = allowance(3, 2, false);
        let p = node(1);
        let t = UnixMillis(0);
        assert_eq!(limiter.check(p, &a, false, t), Verdict::Free);
        assert_eq!(limiter.check(p, &a, false, t), Verdict::Free);
        assert_eq!(
            limiter.check(p, &a, false, t),
            Verdict::TooManyRequests {
                retry_after_ms: 500
            }
        );
        let t = UnixMillis(1_000);
        assert_eq!(limiter.check(p, &a, false, t), Verdict::Free);
        assert_eq!(limiter.check(p, &a, false, t), Verdict::PaymentRequired);
        assert_eq!(limiter.check(p, &a, true, UnixMillis(2_000)), Verdict::Paid);
        // An hour later the free calls are back.
        assert_eq!(
            limiter.check(p, &a, false, UnixMillis(HOUR_MS)),
            Verdict::Free
        );
    }

    #[test]
    fn newcomers_share_a_pool() {
        let config = RateLimiterConfig {
            max_peers: 100,
            newcomer_pool_free_calls_per_hour: 5,
        };
        let mut limiter = RateLimiter::new(config, UnixMillis(0));
        let newcomer = allowance(100, 100, true);
        let free: usize = (0..10)
            .filter(|i| limiter.check(node(*i), &newcomer, false, UnixMillis(0)) == Verdict::Free)
            .count();
        assert_eq!(free, 5, "ten fresh keys share five free calls");
        assert_eq!(limiter.pool_tokens(), 0);
        // A known peer does not use the pool.
        let known = allowance(100, 100, false);
        assert_eq!(
            limiter.check(node(50), &known, false, UnixMillis(0)),
            Verdict::Free
        );
    }

    #[test]
    fn the_map_is_bounded_and_evicts_the_stalest() {
        let config = RateLimiterConfig {
            max_peers: 2,
            newcomer_pool_free_calls_per_hour: 0,
        };
        let mut limiter = RateLimiter::new(config, UnixMillis(0));
        let a = allowance(1, 1, false);
        limiter.check(node(1), &a, false, UnixMillis(0));
        limiter.check(node(2), &a, false, UnixMillis(5));
        limiter.check(node(3), &a, false, UnixMillis(6));
        assert_eq!(limiter.len(), 2);
        // node(1) was forgotten: it starts with a full bucket again.
        assert_eq!(
            limiter.check(node(2), &a, false, UnixMillis(7)),
            Verdict::TooManyRequests {
                retry_after_ms: 998
            }
        );
        assert!(limiter.peers.contains_key(&node(3)) && !limiter.peers.contains_key(&node(1)));
    }

    #[test]
    fn a_collapsed_peer_is_never_served() {
        let mut limiter = RateLimiter::new(RateLimiterConfig::default(), UnixMillis(0));
        let verdict = limiter.check(node(1), &allowance(0, 0, false), true, UnixMillis(10));
        assert_eq!(
            verdict,
            Verdict::TooManyRequests {
                retry_after_ms: u64::MAX
            }
        );
    }
}

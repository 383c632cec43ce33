//! Time as the caller sees it: milliseconds since the Unix epoch, passed in.
//!
//! Nothing in this crate reads the clock. Every method that depends on time takes a `now:
//! UnixMillis`, so tests (and simulations) control time exactly and the node decides what its
//! clock is.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One millisecond-resolution instant, as milliseconds since 1970-01-01T00:00:00Z.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct UnixMillis(pub u64);

/// Milliseconds in one second.
pub const SECOND_MS: u64 = 1_000;
/// Milliseconds in one minute.
pub const MINUTE_MS: u64 = 60 * SECOND_MS;
/// Milliseconds in one hour.
pub const HOUR_MS: u64 = 60 * MINUTE_MS;
/// Milliseconds in one day.
pub const DAY_MS: u64 = 24 * HOUR_MS;

impl UnixMillis {
    /// The epoch itself; the earliest representable instant.
    pub const ZERO: UnixMillis = UnixMillis(0);

    /// Milliseconds since the epoch.
    pub fn as_millis(self) -> u64 {
        self.0
    }

    /// Milliseconds from `earlier` to `self`, or 0 if `earlier` is not earlier (a clock that went
    /// backwards never produces negative durations).
    pub fn since(self, earlier: UnixMillis) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// `self` moved `ms` milliseconds later, saturating at the end of time.
    pub fn plus(self, ms: u64) -> UnixMillis {
        UnixMillis(self.0.saturating_add(ms))
    }
}

impl fmt::Display for UnixMillis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_saturates_when_the_clock_goes_back() {
        assert_eq!(UnixMillis(10).since(UnixMillis(3)), 7);
        assert_eq!(UnixMillis(3).since(UnixMillis(10)), 0);
        assert_eq!(UnixMillis(u64::MAX).plus(5), UnixMillis(u64::MAX));
    }
}

//! The arithmetic of a report: percentiles, success and delivery ratios, rates.

use serde::{Deserialize, Serialize};

/// The value at percentile `p` (0–100) of `sorted` by the nearest-rank method: the smallest
/// value with at least `p`% of the values at or below it. `None` if empty.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let p = p.clamp(0.0, 100.0);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// `part / whole`, or `None` when nothing was attempted (a ratio of nothing is not 100%).
pub fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Latencies (or any sample) summarised: count, p50, p99, max.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of samples.
    pub count: usize,
    /// Median.
    pub p50: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
}

impl Summary {
    /// Summarises `samples` (any order; NaNs are dropped).
    pub fn of(samples: &[f64]) -> Summary {
        let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| !v.is_nan()).collect();
        sorted.sort_by(f64::total_cmp);
        Summary {
            count: sorted.len(),
            p50: percentile(&sorted, 50.0),
            p99: percentile(&sorted, 99.0),
            max: sorted.last().copied(),
        }
    }
}

/// Attempts and successes of one kind of operation, with the latency of the successes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcomes {
    /// Operations started.
    pub attempts: u64,
    /// Operations that succeeded.
    pub successes: u64,
    /// `successes / attempts`.
    pub success_ratio: Option<f64>,
    /// Latency of the successes, in milliseconds.
    pub latency_ms: Summary,
}

impl Outcomes {
    /// From the attempt count and the latencies (ms) of the successes.
    pub fn of(attempts: u64, latencies_ms: &[f64]) -> Outcomes {
        let successes = latencies_ms.len() as u64;
        Outcomes {
            attempts,
            successes,
            success_ratio: ratio(successes, attempts),
            latency_ms: Summary::of(latencies_ms),
        }
    }
}

/// Broadcast delivery: each message should reach each of its intended subscribers once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Messages published.
    pub messages: u64,
    /// (message, subscriber) pairs that should have been delivered.
    pub expected: u64,
    /// Pairs delivered.
    pub delivered: u64,
    /// `delivered / expected`.
    pub ratio: Option<f64>,
    /// Publish-to-delivery latency, in milliseconds.
    pub latency_ms: Summary,
}

impl Delivery {
    /// From the counts and the latencies of the deliveries.
    pub fn of(messages: u64, expected: u64, latencies_ms: &[f64]) -> Delivery {
        let delivered = latencies_ms.len() as u64;
        Delivery {
            messages,
            expected,
            delivered,
            ratio: ratio(delivered, expected),
            latency_ms: Summary::of(latencies_ms),
        }
    }
}

/// `total` spread over `nodes` nodes and `seconds` seconds (0 if either is 0).
pub fn per_node_per_s(total: u64, nodes: usize, seconds: f64) -> f64 {
    if nodes == 0 || seconds <= 0.0 {
        0.0
    } else {
        total as f64 / nodes as f64 / seconds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_on_known_inputs() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        let v = [3.0, 5.0, 7.0, 9.0];
        assert_eq!(percentile(&v, 50.0), Some(5.0));
        assert_eq!(percentile(&v, 75.0), Some(7.0));
        assert_eq!(percentile(&v, 76.0), Some(9.0));
        assert_eq!(percentile(&[4.0], 99.0), Some(4.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn summaries_sort_and_ignore_nans() {
        let s = Summary::of(&[9.0, f64::NAN, 1.0, 5.0]);
        assert_eq!(s.count, 3);
        assert_eq!((s.p50, s.p99, s.max), (Some(5.0), Some(9.0), Some(9.0)));
        assert_eq!(Summary::of(&[]), Summary::default());
    }

    #[test]
    fn ratios_of_nothing_are_unknown() {
        assert_eq!(ratio(0, 0), None);
        assert_eq!(ratio(99, 100), Some(0.99));
        let d = Delivery::of(2, 6, &[1.0, 2.0, 3.0]);
        assert_eq!((d.delivered, d.ratio), (3, Some(0.5)));
        let o = Outcomes::of(4, &[10.0, 20.0, 30.0]);
        assert_eq!((o.successes, o.success_ratio), (3, Some(0.75)));
        assert_eq!(per_node_per_s(1000, 10, 5.0), 20.0);
        assert_eq!(per_node_per_s(1000, 0, 5.0), 0.0);
    }
}

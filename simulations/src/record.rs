//! What the run's tasks observe, gathered under one lock and turned into a [`Report`] at
//! the end.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use micro_node::ledger::micro_ledger::TransferId;
use micro_node::overlay::PeerId;

use crate::metrics::{Delivery, Outcomes, Summary};
use crate::report::{Churn, TopicReport};

/// A node instance: its slot and the slot's generation.
pub type Instance = (usize, u32);

/// One published message and who should get it.
#[derive(Debug, Clone)]
pub struct Sent {
    /// When, in ms since the timeline started.
    pub at_ms: f64,
    /// Subscribers (other than the publisher) live when it was sent.
    pub expected: Vec<Instance>,
}

/// Observations; every task appends here.
#[derive(Debug, Default)]
pub struct Recorder(Mutex<Observed>);

/// The raw observations.
#[derive(Debug, Default)]
pub struct Observed {
    /// Lookups started.
    pub lookup_attempts: u64,
    /// Latency (ms) of the successful ones.
    pub lookup_ms: Vec<f64>,
    /// Kademlia requests of the successful ones.
    pub lookup_requests: Vec<f64>,
    /// Calls started.
    pub call_attempts: u64,
    /// Latency (ms) of the correct answers.
    pub call_ms: Vec<f64>,
    /// Wrong answers.
    pub wrong_answers: u64,
    /// Per topic: message id → what was sent.
    pub sent: BTreeMap<String, HashMap<String, Sent>>,
    /// Per topic: message id → instance → delivery latency (ms).
    pub received: BTreeMap<String, HashMap<String, HashMap<Instance, f64>>>,
    /// Spam that reached a subscriber.
    pub spam_delivered: u64,
    /// Crashed providers: peer → crash time (ms since the timeline started).
    pub crashed_providers: HashMap<PeerId, f64>,
    /// Crashed providers no live node lists any more: peer → seconds it took.
    pub dropped_providers: HashMap<PeerId, f64>,
    /// Churn counts.
    pub churn: Churn,
    /// Transfers submitted: id → (submitting instance, ms since start).
    pub transfers: HashMap<TransferId, (Instance, f64)>,
    /// Transfers accepted where submitted.
    pub transfers_accepted: u64,
    /// Submit-to-final latencies (ms).
    pub final_ms: Vec<f64>,
    /// Transfers seen final.
    pub finalized: HashSet<TransferId>,
    /// Convergence times after heals (ms).
    pub convergence_ms: Vec<f64>,
    /// Dead instances (slot, generation) — their deliveries are not expected.
    pub dead: HashSet<Instance>,
}

impl Recorder {
    /// Runs `f` on the observations.
    pub fn with<T>(&self, f: impl FnOnce(&mut Observed) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Observed {
    /// Lookup outcomes.
    pub fn lookups(&self) -> Outcomes {
        Outcomes::of(self.lookup_attempts, &self.lookup_ms)
    }

    /// Call outcomes.
    pub fn calls(&self) -> Outcomes {
        Outcomes::of(self.call_attempts, &self.call_ms)
    }

    /// Delivery per topic: a (message, subscriber) pair counts if the subscriber was live
    /// when it was sent and still is at the end.
    pub fn topics(&self) -> Vec<TopicReport> {
        self.sent
            .iter()
            .map(|(topic, sent)| {
                let received = self.received.get(topic);
                let mut expected = 0;
                let mut latencies = Vec::new();
                for (id, message) in sent {
                    let got = received.and_then(|r| r.get(id));
                    for who in message.expected.iter().filter(|w| !self.dead.contains(w)) {
                        expected += 1;
                        if let Some(ms) = got.and_then(|g| g.get(who)) {
                            latencies.push(*ms);
                        }
                    }
                }
                TopicReport {
                    topic: topic.clone(),
                    delivery: Delivery::of(sent.len() as u64, expected, &latencies),
                }
            })
            .collect()
    }

    /// How long crashed providers stayed listed (seconds), and how many still are.
    pub fn dead_providers(&self) -> (Summary, u64) {
        let drops: Vec<f64> = self.dropped_providers.values().copied().collect();
        let still = self
            .crashed_providers
            .keys()
            .filter(|p| !self.dropped_providers.contains_key(p))
            .count() as u64;
        (Summary::of(&drops), still)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_counts_only_subscribers_that_lived_to_the_end() {
        let mut o = Observed::default();
        let sent = Sent {
            at_ms: 0.0,
            expected: vec![(1, 1), (2, 1), (3, 1)],
        };
        o.sent
            .entry("news".into())
            .or_default()
            .insert("m1".into(), sent);
        let got = o.received.entry("news".into()).or_default();
        got.entry("m1".into()).or_default().insert((1, 1), 5.0);
        // Slot 2 crashed after the send: not expected any more.
        o.dead.insert((2, 1));
        // A delivery to an instance that was not expected does not count.
        got.entry("m1".into()).or_default().insert((9, 1), 1.0);
        let topics = o.topics();
        let d = &topics[0].delivery;
        assert_eq!((d.messages, d.expected, d.delivered), (1, 2, 1));
        assert_eq!(d.ratio, Some(0.5));
    }
}

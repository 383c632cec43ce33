//! The directory: the verified service records a node has heard (by gossip or by fetching),
//! one per (service name, owner), kept until they expire or are withdrawn.
//!
//! Pure bookkeeping: the caller verifies records (see [`super::verify`]), passes the time in,
//! and calls [`Directory::expire`] periodically. Every table is bounded by
//! [`DirectoryConfig::max_records`].

use std::collections::{BTreeMap, HashMap};

use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};
use tracing::debug;

use super::name::{EndpointName, ServiceName};
use super::record::{Endpoint, ServiceRecord};

/// Bounds of a [`Directory`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryConfig {
    /// Most live records held (and, separately, most tombstones and most penalized peers).
    pub max_records: usize,
    /// Longest a record is kept after it was inserted, whatever its own expiry says; also how
    /// long a withdrawal is remembered.
    pub max_ttl_ms: u64,
}

impl Default for DirectoryConfig {
    /// 10 000 records (a few tens of MB at most), kept at most 10 minutes, matching
    /// [`super::RecordLimits::max_ttl_ms`].
    fn default() -> Self {
        Self {
            max_records: 10_000,
            max_ttl_ms: 600_000,
        }
    }
}

/// What [`Directory::insert`] did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    /// A provider the directory did not list: now listed (also when a withdrawn one comes back
    /// with a higher seq).
    New,
    /// A newer record (higher seq) from a provider already listed replaced the old one.
    Refreshed,
    /// The owner withdrew the service: the provider is no longer listed.
    Withdrawn,
    /// The record's seq is not above the highest known for its (name, owner): ignored. Usually
    /// a duplicate by gossip; an older record replayed after a withdrawal is refused the same way.
    Replayed,
    /// The directory is full and the record is from a provider it does not list: ignored.
    /// Also a withdrawal from a provider it does not list when the tombstone table is full.
    Full,
}

/// One service on the network, aggregated over its providers; see [`Directory::services`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSummary {
    /// The service's name.
    pub name: ServiceName,
    /// The versions its providers report, sorted, without duplicates.
    pub versions: Vec<String>,
    /// Its providers, sorted by PeerId.
    pub providers: Vec<ProviderSummary>,
    /// The union of the providers' endpoints by name, sorted by name; where providers disagree,
    /// the first provider's (in PeerId order) wins.
    pub endpoints: Vec<Endpoint>,
}

/// One provider of a service, as listed in a [`ServiceSummary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderSummary {
    /// The providing node.
    pub peer_id: PeerId,
    /// The version it serves.
    pub version: String,
    /// Where it can be dialled.
    pub addrs: Vec<Multiaddr>,
    /// Its price per call.
    pub price_per_call: u64,
    /// When this directory drops it unless refreshed: the record's expiry, capped at insert time
    /// plus [`DirectoryConfig::max_ttl_ms`]; unix milliseconds.
    pub expires_at_ms: u64,
}

type Key = (ServiceName, PeerId);

/// A live record and when this directory drops it.
#[derive(Debug, Clone)]
struct Entry {
    record: ServiceRecord,
    expires_at_ms: u64,
}

/// The memory of a withdrawal (or removal): records with this seq or lower are refused.
#[derive(Debug, Clone, Copy)]
struct Tombstone {
    seq: u64,
    expires_at_ms: u64,
}

/// The node's table of service records, keyed by (service name, owner).
///
/// Keeps the highest seq per key; remembers withdrawals for [`DirectoryConfig::max_ttl_ms`] so
/// older records replayed later are refused. Holds at most [`DirectoryConfig::max_records`]
/// live records, as many tombstones and as many penalty counters.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    config: DirectoryConfig,
    /// Live records by name, then owner; no inner map is empty.
    live: BTreeMap<ServiceName, BTreeMap<PeerId, Entry>>,
    /// The number of entries in `live`'s inner maps.
    live_count: usize,
    tombstones: HashMap<Key, Tombstone>,
    penalties: HashMap<PeerId, u32>,
}

impl Directory {
    /// An empty directory with the given bounds.
    pub fn new(config: DirectoryConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// Adds a verified record heard from `from` (`None`: fetched or local) at `now_ms`.
    ///
    /// See [`Insert`] for the outcomes. Nothing is ever evicted to make room for a live record;
    /// a withdrawal of a listed provider always takes effect, its tombstone displacing the
    /// oldest one if the tombstone table is full.
    pub fn insert(&mut self, record: ServiceRecord, from: Option<PeerId>, now_ms: u64) -> Insert {
        let key = (record.name.clone(), record.owner);
        let (service, owner) = (&key.0, &key.1);
        let known_seq = self
            .live(&key)
            .map(|e| e.record.seq)
            .or_else(|| self.tombstones.get(&key).map(|t| t.seq));
        if known_seq.is_some_and(|seq| record.seq <= seq) {
            debug!(%service, %owner, ?from, seq = record.seq, ?known_seq, "registry: replayed");
            return Insert::Replayed;
        }
        if record.withdrawn {
            let was_live = self.take_live(&key).is_some();
            if !was_live
                && !self.tombstones.contains_key(&key)
                && self.tombstones.len() >= self.config.max_records
            {
                debug!(%service, %owner, ?from, "registry: tombstones full, withdrawal ignored");
                return Insert::Full;
            }
            self.put_tombstone(
                key.clone(),
                record.seq,
                now_ms.saturating_add(self.config.max_ttl_ms),
            );
            debug!(%service, %owner, ?from, seq = record.seq, "registry: withdrawn");
            return Insert::Withdrawn;
        }
        let expires_at_ms = record
            .expires_at_ms
            .min(now_ms.saturating_add(self.config.max_ttl_ms));
        let entry = Entry {
            record,
            expires_at_ms,
        };
        let outcome = if let Some(live) = self.live.get_mut(service).and_then(|m| m.get_mut(owner))
        {
            *live = entry;
            Insert::Refreshed
        } else if self.live_count >= self.config.max_records {
            debug!(%service, %owner, ?from, "registry: directory full, record ignored");
            return Insert::Full;
        } else {
            self.tombstones.remove(&key);
            self.live
                .entry(key.0.clone())
                .or_default()
                .insert(key.1, entry);
            self.live_count += 1;
            Insert::New
        };
        debug!(%service, %owner, ?from, ?outcome, "registry: record stored");
        outcome
    }

    /// The live entry for `key`, expired or not.
    fn live(&self, (name, owner): &Key) -> Option<&Entry> {
        self.live.get(name).and_then(|m| m.get(owner))
    }

    /// Removes and returns the live entry for `key`, keeping `live` free of empty maps.
    fn take_live(&mut self, (name, owner): &Key) -> Option<Entry> {
        let providers = self.live.get_mut(name)?;
        let entry = providers.remove(owner)?;
        if providers.is_empty() {
            self.live.remove(name);
        }
        self.live_count -= 1;
        Some(entry)
    }

    /// Records a tombstone, evicting the one that would expire first if the table is full.
    fn put_tombstone(&mut self, key: Key, seq: u64, expires_at_ms: u64) {
        if !self.tombstones.contains_key(&key) && self.tombstones.len() >= self.config.max_records {
            let oldest = self
                .tombstones
                .iter()
                .min_by_key(|(_, t)| t.expires_at_ms)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.tombstones.remove(&oldest);
            }
        }
        self.tombstones
            .insert(key, Tombstone { seq, expires_at_ms });
    }

    /// Drops the live records whose local expiry is at or before `now_ms`, and the tombstones
    /// that old; returns the (name, owner) of the dropped live records (not of the tombstones),
    /// sorted.
    pub fn expire(&mut self, now_ms: u64) -> Vec<(ServiceName, PeerId)> {
        self.tombstones.retain(|_, t| t.expires_at_ms > now_ms);
        let expired: Vec<Key> = self
            .live
            .iter()
            .flat_map(|(name, providers)| {
                providers
                    .iter()
                    .filter(|(_, e)| e.expires_at_ms <= now_ms)
                    .map(|(owner, _)| (name.clone(), *owner))
            })
            .collect();
        for key in &expired {
            self.take_live(key);
        }
        expired
    }

    /// The live, unexpired records of `name`, sorted by owner.
    pub fn providers(&self, name: &ServiceName, now_ms: u64) -> Vec<ServiceRecord> {
        self.live
            .get(name)
            .into_iter()
            .flat_map(|providers| providers.values())
            .filter(|e| e.expires_at_ms > now_ms)
            .map(|e| e.record.clone())
            .collect()
    }

    /// Stops listing `owner` as a provider of `name` (e.g. its RPC says it does not serve it).
    ///
    /// The removed record's seq is remembered like a withdrawal (until the record would have
    /// expired), so re-gossip of the same record does not bring it back; the owner's next
    /// announcement (higher seq) does.
    pub fn remove_owner(&mut self, name: &ServiceName, owner: &PeerId) {
        let key = (name.clone(), *owner);
        if let Some(entry) = self.take_live(&key) {
            self.put_tombstone(key, entry.record.seq, entry.expires_at_ms);
        }
    }

    /// Every service with at least one live, unexpired provider, sorted by name.
    pub fn services(&self, now_ms: u64) -> Vec<ServiceSummary> {
        self.live
            .iter()
            .filter_map(|(name, providers)| {
                let live: Vec<&Entry> = providers
                    .values()
                    .filter(|e| e.expires_at_ms > now_ms)
                    .collect();
                (!live.is_empty()).then(|| summarize(name, &live))
            })
            .collect()
    }

    /// Counts one invalid record received from `peer`.
    ///
    /// At most [`DirectoryConfig::max_records`] peers are counted; when full, the peer with the
    /// lowest count makes room, so the worst offenders stay counted.
    pub fn penalize(&mut self, peer: PeerId) {
        if !self.penalties.contains_key(&peer) && self.penalties.len() >= self.config.max_records {
            let mildest = self
                .penalties
                .iter()
                .min_by_key(|(_, n)| **n)
                .map(|(p, _)| *p);
            if let Some(mildest) = mildest {
                self.penalties.remove(&mildest);
            }
        }
        if self.config.max_records > 0 {
            let count = self.penalties.entry(peer).or_insert(0);
            *count = count.saturating_add(1);
        }
    }

    /// Invalid records received per peer (see [`Directory::penalize`]).
    pub fn penalties(&self) -> &HashMap<PeerId, u32> {
        &self.penalties
    }

    /// Number of live records, including expired ones [`Directory::expire`] has not dropped yet.
    pub fn len(&self) -> usize {
        self.live_count
    }

    /// True when no live record is held.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }
}

/// Aggregates the (non-empty, owner-ordered) live entries of one service.
fn summarize(name: &ServiceName, entries: &[&Entry]) -> ServiceSummary {
    let mut versions: Vec<String> = entries.iter().map(|e| e.record.version.clone()).collect();
    versions.sort();
    versions.dedup();
    let mut endpoints: BTreeMap<&EndpointName, &Endpoint> = BTreeMap::new();
    for endpoint in entries.iter().flat_map(|e| &e.record.endpoints) {
        endpoints.entry(&endpoint.name).or_insert(endpoint);
    }
    ServiceSummary {
        name: name.clone(),
        versions,
        providers: entries
            .iter()
            .map(|e| ProviderSummary {
                peer_id: e.record.owner,
                version: e.record.version.clone(),
                addrs: e.record.addrs.clone(),
                price_per_call: e.record.price_per_call,
                expires_at_ms: e.expires_at_ms,
            })
            .collect(),
        endpoints: endpoints.into_values().cloned().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    fn peer(n: u8) -> PeerId {
        libp2p::identity::Keypair::ed25519_from_bytes([n; 32])
            .unwrap()
            .public()
            .to_peer_id()
    }

    fn rec(name: &str, owner: PeerId, seq: u64) -> ServiceRecord {
        ServiceRecord {
            name: name.parse().unwrap(),
            version: "1.0.0".into(),
            older_versions: Vec::new(),
            owner,
            addrs: vec!["/ip4/10.0.0.1/tcp/4001".parse().unwrap()],
            endpoints: vec![],
            metadata: BTreeMap::new(),
            price_per_call: 0,
            issued_at_ms: NOW,
            expires_at_ms: NOW + 60_000,
            seq,
            withdrawn: false,
        }
    }

    fn withdrawal(name: &str, owner: PeerId, seq: u64) -> ServiceRecord {
        ServiceRecord {
            withdrawn: true,
            ..rec(name, owner, seq)
        }
    }

    fn endpoint(name: &str, description: &str) -> Endpoint {
        Endpoint {
            name: name.parse().unwrap(),
            description: description.into(),
            request_schema: None,
            response_schema: None,
        }
    }

    fn svc(name: &str) -> ServiceName {
        name.parse().unwrap()
    }

    #[test]
    fn keeps_the_highest_seq() {
        let mut dir = Directory::default();
        let a = peer(1);
        assert_eq!(
            dir.insert(rec("greeter", a, 5), Some(peer(9)), NOW),
            Insert::New
        );
        assert_eq!(
            dir.insert(rec("greeter", a, 5), None, NOW),
            Insert::Replayed
        );
        assert_eq!(
            dir.insert(rec("greeter", a, 4), None, NOW),
            Insert::Replayed
        );
        let mut newer = rec("greeter", a, 6);
        newer.version = "1.1.0".into();
        assert_eq!(dir.insert(newer.clone(), None, NOW), Insert::Refreshed);
        assert_eq!(dir.providers(&svc("greeter"), NOW), vec![newer]);
        assert_eq!(dir.len(), 1);
    }

    #[test]
    fn replay_after_withdraw_is_refused() {
        let mut dir = Directory::default();
        let a = peer(1);
        dir.insert(rec("greeter", a, 1), None, NOW);
        assert_eq!(
            dir.insert(withdrawal("greeter", a, 2), None, NOW),
            Insert::Withdrawn
        );
        assert!(dir.is_empty());
        assert!(dir.providers(&svc("greeter"), NOW).is_empty());
        assert_eq!(
            dir.insert(rec("greeter", a, 1), None, NOW),
            Insert::Replayed
        );
        assert_eq!(
            dir.insert(rec("greeter", a, 2), None, NOW),
            Insert::Replayed
        );
        assert!(dir.is_empty());
    }

    #[test]
    fn withdrawal_heard_before_the_record_still_wins() {
        let mut dir = Directory::default();
        let a = peer(1);
        assert_eq!(
            dir.insert(withdrawal("greeter", a, 2), None, NOW),
            Insert::Withdrawn
        );
        assert_eq!(
            dir.insert(rec("greeter", a, 1), None, NOW),
            Insert::Replayed
        );
    }

    #[test]
    fn higher_seq_revives_a_withdrawn_provider() {
        let mut dir = Directory::default();
        let a = peer(1);
        dir.insert(rec("greeter", a, 1), None, NOW);
        dir.insert(withdrawal("greeter", a, 2), None, NOW);
        assert_eq!(dir.insert(rec("greeter", a, 3), None, NOW), Insert::New);
        assert_eq!(dir.providers(&svc("greeter"), NOW).len(), 1);
        // The tombstone is gone with the revival: a later withdrawal works as usual.
        assert_eq!(
            dir.insert(withdrawal("greeter", a, 4), None, NOW),
            Insert::Withdrawn
        );
    }

    #[test]
    fn tombstones_are_forgotten_after_max_ttl() {
        let mut dir = Directory::default();
        let a = peer(1);
        dir.insert(withdrawal("greeter", a, 2), None, NOW);
        assert!(dir.expire(NOW + 600_000 - 1).is_empty());
        assert_eq!(
            dir.insert(rec("greeter", a, 1), None, NOW),
            Insert::Replayed
        );
        // Expired tombstones are not reported as removed providers.
        assert!(dir.expire(NOW + 600_000).is_empty());
        assert_eq!(dir.insert(rec("greeter", a, 1), None, NOW), Insert::New);
    }

    #[test]
    fn records_expire_at_their_expiry_capped_by_max_ttl() {
        let config = DirectoryConfig {
            max_ttl_ms: 30_000,
            ..DirectoryConfig::default()
        };
        let mut dir = Directory::new(config);
        let (a, b) = (peer(1), peer(2));
        let mut short = rec("greeter", a, 1);
        short.expires_at_ms = NOW + 10_000;
        dir.insert(short, None, NOW);
        dir.insert(rec("greeter", b, 1), None, NOW); // expires at NOW + 60 s, capped to + 30 s

        assert_eq!(dir.providers(&svc("greeter"), NOW + 9_999).len(), 2);
        let left = dir.providers(&svc("greeter"), NOW + 10_000);
        assert_eq!(left.iter().map(|r| r.owner).collect::<Vec<_>>(), vec![b]);
        assert!(dir.providers(&svc("greeter"), NOW + 30_000).is_empty());
        assert!(dir.services(NOW + 30_000).is_empty());

        assert_eq!(dir.len(), 2, "expire() has not run yet");
        assert_eq!(dir.expire(NOW + 10_000), vec![(svc("greeter"), a)]);
        assert_eq!(dir.expire(NOW + 30_000), vec![(svc("greeter"), b)]);
        assert!(dir.is_empty());
    }

    #[test]
    fn full_directory_refuses_new_providers_but_takes_refreshes() {
        let mut dir = Directory::new(DirectoryConfig {
            max_records: 2,
            ..DirectoryConfig::default()
        });
        let (a, b, c) = (peer(1), peer(2), peer(3));
        assert_eq!(dir.insert(rec("greeter", a, 1), None, NOW), Insert::New);
        assert_eq!(dir.insert(rec("greeter", b, 1), None, NOW), Insert::New);
        assert_eq!(dir.insert(rec("greeter", c, 1), None, NOW), Insert::Full);
        assert_eq!(dir.insert(rec("other", a, 1), None, NOW), Insert::Full);
        assert_eq!(
            dir.insert(rec("greeter", a, 2), None, NOW),
            Insert::Refreshed
        );
        assert_eq!(dir.len(), 2);
        // Room again once one is withdrawn.
        assert_eq!(
            dir.insert(withdrawal("greeter", b, 2), None, NOW),
            Insert::Withdrawn
        );
        assert_eq!(dir.insert(rec("greeter", c, 1), None, NOW), Insert::New);
    }

    #[test]
    fn tombstones_are_bounded() {
        let mut dir = Directory::new(DirectoryConfig {
            max_records: 2,
            ..DirectoryConfig::default()
        });
        let (a, b, c) = (peer(1), peer(2), peer(3));
        assert_eq!(
            dir.insert(withdrawal("greeter", a, 1), None, NOW),
            Insert::Withdrawn
        );
        assert_eq!(
            dir.insert(withdrawal("greeter", b, 1), None, NOW + 1),
            Insert::Withdrawn
        );
        // A withdrawal of a provider never listed does not fit...
        assert_eq!(
            dir.insert(withdrawal("greeter", c, 1), None, NOW),
            Insert::Full
        );
        // ...but a listed provider's withdrawal always takes effect, displacing the oldest.
        assert_eq!(dir.insert(rec("other", c, 1), None, NOW), Insert::New);
        assert_eq!(
            dir.insert(withdrawal("other", c, 2), None, NOW + 2),
            Insert::Withdrawn
        );
        assert!(dir.is_empty());
        assert_eq!(dir.insert(rec("greeter", a, 1), None, NOW), Insert::New);
        assert_eq!(
            dir.insert(rec("greeter", b, 1), None, NOW),
            Insert::Replayed
        );
    }

    #[test]
    fn remove_owner_delists_until_the_next_announcement() {
        let mut dir = Directory::default();
        let (a, b) = (peer(1), peer(2));
        dir.insert(rec("greeter", a, 1), None, NOW);
        dir.insert(rec("greeter", b, 1), None, NOW);
        dir.remove_owner(&svc("greeter"), &a);
        let owners: Vec<_> = dir
            .providers(&svc("greeter"), NOW)
            .iter()
            .map(|r| r.owner)
            .collect();
        assert_eq!(owners, vec![b]);
        assert_eq!(
            dir.insert(rec("greeter", a, 1), None, NOW),
            Insert::Replayed
        );
        assert_eq!(dir.insert(rec("greeter", a, 2), None, NOW), Insert::New);
        dir.remove_owner(&svc("unknown"), &a); // no-op
        assert_eq!(dir.len(), 2);
    }

    #[test]
    fn summary_aggregates_two_providers_with_different_versions() {
        let mut dir = Directory::default();
        let (a, b) = if peer(1) < peer(2) {
            (peer(1), peer(2))
        } else {
            (peer(2), peer(1))
        };
        let mut first = rec("greeter", a, 1);
        first.version = "2.0.0".into();
        first.price_per_call = 5;
        first.endpoints = vec![endpoint("Say.Hello", "from a"), endpoint("Say.Bye", "bye")];
        let mut second = rec("greeter", b, 1);
        second.version = "1.0.0".into();
        second.expires_at_ms = NOW + 5_000;
        second.endpoints = vec![
            endpoint("Say.Hello", "from b"),
            endpoint("Say.Ahoy", "ahoy"),
        ];
        dir.insert(second, None, NOW);
        dir.insert(first, None, NOW);
        dir.insert(rec("billing", a, 1), None, NOW);

        let services = dir.services(NOW);
        let names: Vec<_> = services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["billing", "greeter"]);
        let greeter = &services[1];
        assert_eq!(greeter.versions, ["1.0.0", "2.0.0"]);
        assert_eq!(
            greeter.providers,
            vec![
                ProviderSummary {
                    peer_id: a,
                    version: "2.0.0".into(),
                    addrs: vec!["/ip4/10.0.0.1/tcp/4001".parse().unwrap()],
                    price_per_call: 5,
                    expires_at_ms: NOW + 60_000,
                },
                ProviderSummary {
                    peer_id: b,
                    version: "1.0.0".into(),
                    addrs: vec!["/ip4/10.0.0.1/tcp/4001".parse().unwrap()],
                    price_per_call: 0,
                    expires_at_ms: NOW + 5_000,
                },
            ]
        );
        assert_eq!(
            greeter.endpoints,
            vec![
                endpoint("Say.Ahoy", "ahoy"),
                endpoint("Say.Bye", "bye"),
                endpoint("Say.Hello", "from a"),
            ]
        );
        // Serializes for the control API.
        let json = serde_json::to_value(greeter).unwrap();
        assert_eq!(json["name"], "greeter");

        // Once b expires, its version disappears from the summary.
        assert_eq!(dir.services(NOW + 5_000)[1].versions, ["2.0.0"]);
    }

    #[test]
    fn penalties_are_counted_and_bounded() {
        let mut dir = Directory::new(DirectoryConfig {
            max_records: 3,
            ..DirectoryConfig::default()
        });
        for _ in 0..5 {
            dir.penalize(peer(1));
        }
        dir.penalize(peer(2));
        dir.penalize(peer(2));
        dir.penalize(peer(3));
        assert_eq!(dir.penalties().len(), 3);
        dir.penalize(peer(4)); // displaces the mildest offender, peer 3
        assert_eq!(dir.penalties().len(), 3);
        assert_eq!(dir.penalties().get(&peer(1)), Some(&5));
        assert_eq!(dir.penalties().get(&peer(2)), Some(&2));
        assert_eq!(dir.penalties().get(&peer(3)), None);
        assert_eq!(dir.penalties().get(&peer(4)), Some(&1));
        for n in 10..100 {
            dir.penalize(peer(n));
        }
        assert_eq!(dir.penalties().len(), 3);
        assert_eq!(dir.penalties().get(&peer(1)), Some(&5));
    }
}

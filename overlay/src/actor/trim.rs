//! The connection manager: keeps a node below its connection cap by closing its least useful
//! connections, so that a new caller always finds room (see
//! [`crate::config::ConnectionLimitsConfig`]).
//!
//! libp2p's `connection_limits` refuses connections beyond the cap; it never closes one. Kept
//! alone, a node whose gossip mesh and past lookups filled its cap refused every caller: at
//! 1,000 simulated nodes, 4 calls in 73 were answered. Trimming is what go-libp2p's
//! connection manager does: a high and a low watermark, a grace period for new connections,
//! and the least valuable connections closed first.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use libp2p::PeerId;
use tokio::time::Instant;
use tracing::debug;

use crate::Role;

use super::EventLoop;

/// How a peer's connections are used, for choosing which to trim.
#[derive(Debug, Clone, Copy)]
pub(super) struct Usage {
    /// When the last request to or from it started or ended.
    pub last_used: Instant,
    /// Requests to or from it awaiting their answer.
    pub in_flight: u32,
}

/// What trimming weighs about one connected peer.
#[derive(Debug, Clone)]
pub(super) struct Candidate {
    pub peer: PeerId,
    /// Its open connections.
    pub connections: usize,
    /// When its oldest open connection was established.
    pub opened: Instant,
    /// When it was last used, if ever.
    pub last_used: Option<Instant>,
    /// Requests in flight.
    pub in_flight: u32,
    /// Whether it is in one of this node's gossip meshes.
    pub in_mesh: bool,
    /// Whether a mesh would fall below its target degree without it.
    pub needed_in_mesh: bool,
    /// Whether it is a super node.
    pub is_super: bool,
}

impl Candidate {
    fn protected(&self, now: Instant, grace: Duration) -> bool {
        let recent = |t: Instant| now.saturating_duration_since(t) < grace;
        self.in_flight > 0
            || self.needed_in_mesh
            || recent(self.opened)
            || self.last_used.is_some_and(recent)
    }

    /// When it last did anything: its last request, or its connection.
    fn last_active(&self) -> Instant {
        self.last_used.map_or(self.opened, |t| t.max(self.opened))
    }
}

/// The peers to disconnect so that at most `target` of `open` connections are left, least
/// valuable first: outside the gossip mesh before inside it, peers before supers, then the
/// least recently active. Protected peers (see [`Candidate::protected`]) and the
/// `keep_supers` most recently active super nodes are never chosen, so fewer may be returned
/// than needed.
pub(super) fn victims(
    mut candidates: Vec<Candidate>,
    open: usize,
    target: usize,
    now: Instant,
    grace: Duration,
    keep_supers: usize,
) -> Vec<PeerId> {
    if open <= target {
        return Vec::new();
    }
    let mut supers: Vec<(Instant, PeerId)> = candidates
        .iter()
        .filter(|c| c.is_super)
        .map(|c| (c.last_active(), c.peer))
        .collect();
    supers.sort_unstable_by(|a, b| b.cmp(a));
    let kept: HashSet<PeerId> = supers.iter().take(keep_supers).map(|(_, p)| *p).collect();
    candidates.retain(|c| !c.protected(now, grace) && !kept.contains(&c.peer));
    candidates.sort_by_key(|c| (c.in_mesh, c.is_super, c.last_active()));
    let mut left = open;
    let mut chosen = Vec::new();
    for c in candidates {
        if left <= target {
            break;
        }
        left = left.saturating_sub(c.connections);
        chosen.push(c.peer);
    }
    chosen
}

/// Why a node's open connections are held, for the log line of a dial its cap refused.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Census {
    /// Connections open.
    pub open: usize,
    /// Of these, opened by the remote.
    pub inbound: usize,
    /// Of these, to peers trimming may not close, by the first reason that protects them:
    /// younger than the grace,
    pub young: usize,
    /// with a request in flight,
    pub in_flight: usize,
    /// used within the grace,
    pub recently_used: usize,
    /// or needed by a gossip mesh.
    pub needed_in_mesh: usize,
}

impl Census {
    fn of(candidates: &[Candidate], now: Instant, grace: Duration) -> Self {
        let recent = |t: Instant| now.saturating_duration_since(t) < grace;
        let mut census = Census::default();
        for c in candidates {
            census.open += c.connections;
            let slot = if recent(c.opened) {
                &mut census.young
            } else if c.in_flight > 0 {
                &mut census.in_flight
            } else if c.last_used.is_some_and(recent) {
                &mut census.recently_used
            } else if c.needed_in_mesh {
                &mut census.needed_in_mesh
            } else {
                continue;
            };
            *slot += c.connections;
        }
        census
    }
}

impl EventLoop {
    /// Why this node's connections are held (see [`Census`]).
    pub(super) fn connection_census(&self) -> Census {
        let (mesh, needed) = self.mesh_view();
        let candidates = candidates(
            &self.connections,
            &self.usage,
            &HashSet::new(),
            (&mesh, &needed),
            |_| false,
        );
        Census {
            inbound: self
                .connections
                .values()
                .flatten()
                .filter(|c| c.direction == crate::Direction::Inbound)
                .count(),
            ..Census::of(&candidates, Instant::now(), self.config.limits.trim_grace)
        }
    }

    /// The peers in this node's gossip meshes, and those no mesh can spare.
    fn mesh_view(&self) -> (HashSet<PeerId>, HashSet<PeerId>) {
        let gossipsub = &self.swarm.behaviour().gossipsub;
        let mesh: HashSet<PeerId> = gossipsub.all_mesh_peers().copied().collect();
        let needed = needed_in_mesh(
            gossipsub
                .topics()
                .map(|topic| gossipsub.mesh_peers(topic).copied().collect()),
            |peer| self.usage.get(peer).map(|u| u.last_used),
        );
        (mesh, needed)
    }

    /// A request to or from `peer` starts.
    pub(super) fn begin_use(&mut self, peer: PeerId) {
        let usage = self.usage.entry(peer).or_insert(Usage {
            last_used: Instant::now(),
            in_flight: 0,
        });
        usage.last_used = Instant::now();
        usage.in_flight = usage.in_flight.saturating_add(1);
    }

    /// A request to or from `peer` ended (answered, failed or dropped).
    pub(super) fn end_use(&mut self, peer: PeerId) {
        if let Some(usage) = self.usage.get_mut(&peer) {
            usage.last_used = Instant::now();
            usage.in_flight = usage.in_flight.saturating_sub(1);
            if usage.in_flight == 0 && !self.connections.contains_key(&peer) {
                self.usage.remove(&peer);
            }
        }
    }

    /// A one-message exchange with `peer` (peer exchange): it was used now.
    pub(super) fn touch(&mut self, peer: PeerId) {
        if self.connections.contains_key(&peer) {
            self.usage
                .entry(peer)
                .or_insert(Usage {
                    last_used: Instant::now(),
                    in_flight: 0,
                })
                .last_used = Instant::now();
        }
    }

    /// Closes the least useful connections if more than `trim_above` are open.
    pub(super) fn trim_connections(&mut self) {
        let limits = self.config.limits;
        let closing: usize = self
            .trimming
            .iter()
            .filter_map(|p| self.connections.get(p))
            .map(Vec::len)
            .sum();
        let open = self.connections.values().map(Vec::len).sum::<usize>() - closing;
        if open <= limits.trim_above as usize {
            return;
        }
        let (mesh, needed) = self.mesh_view();
        let candidates = candidates(
            &self.connections,
            &self.usage,
            &self.trimming,
            (&mesh, &needed),
            |p| self.book.get(p).and_then(|n| n.role) == Some(Role::Super),
        );
        // A peer keeps one super node, its way back into the network; a super keeps the
        // whole backbone, which it would otherwise redial at its next upkeep.
        let keep_supers = match self.config.role {
            Role::Peer => 1,
            Role::Super => usize::MAX,
        };
        // Near the cap, a burst of new connections must not hold the node there: young
        // ones are protected only for the short grace, and trimming stops at `trim_above`.
        let (target, grace) = if open > limits.trim_urgent_above as usize {
            (limits.trim_above, limits.trim_urgent_grace)
        } else {
            (limits.trim_to, limits.trim_grace)
        };
        let chosen = victims(
            candidates,
            open,
            target as usize,
            Instant::now(),
            grace,
            keep_supers,
        );
        if chosen.is_empty() {
            return;
        }
        debug!(
            open,
            closing = chosen.len(),
            trim_to = target,
            "trimming the least useful connections"
        );
        self.connections_trimmed += chosen.len() as u64;
        for peer in chosen {
            self.trimming.insert(peer);
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }
}

/// Gossipsub's target mesh degree (`mesh_n`, its default, which the overlay keeps).
const MESH_DEGREE: usize = 6;

/// The mesh peers no topic can spare: every peer of a mesh at or below [`MESH_DEGREE`], and
/// the [`MESH_DEGREE`] most recently used of a larger one. Trimming them would leave the
/// mesh short until gossipsub's next heartbeat grafts a replacement, and with every
/// connection in some mesh a node would keep cutting its own broadcast paths.
fn needed_in_mesh(
    meshes: impl Iterator<Item = Vec<PeerId>>,
    last_used: impl Fn(&PeerId) -> Option<Instant>,
) -> HashSet<PeerId> {
    let mut needed = HashSet::new();
    for mut peers in meshes {
        if peers.len() > MESH_DEGREE {
            peers.sort_by_key(|p| std::cmp::Reverse(last_used(p)));
            peers.truncate(MESH_DEGREE);
        }
        needed.extend(peers);
    }
    needed
}

/// One [`Candidate`] per connected peer that is not being disconnected already.
fn candidates(
    connections: &HashMap<PeerId, Vec<super::Conn>>,
    usage: &HashMap<PeerId, Usage>,
    trimming: &HashSet<PeerId>,
    (mesh, needed): (&HashSet<PeerId>, &HashSet<PeerId>),
    is_super: impl Fn(&PeerId) -> bool,
) -> Vec<Candidate> {
    connections
        .iter()
        .filter(|(peer, _)| !trimming.contains(peer))
        .filter_map(|(peer, conns)| {
            let opened = conns.iter().map(|c| c.opened).min()?;
            let usage = usage.get(peer);
            Some(Candidate {
                peer: *peer,
                connections: conns.len(),
                opened,
                last_used: usage.map(|u| u.last_used),
                in_flight: usage.map_or(0, |u| u.in_flight),
                in_mesh: mesh.contains(peer),
                needed_in_mesh: needed.contains(peer),
                is_super: is_super(peer),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(30);

    fn candidate(now: Instant, idle_s: u64) -> Candidate {
        Candidate {
            peer: PeerId::random(),
            connections: 1,
            opened: now - Duration::from_secs(3600),
            last_used: Some(now - Duration::from_secs(idle_s)),
            in_flight: 0,
            in_mesh: false,
            needed_in_mesh: false,
            is_super: false,
        }
    }

    #[test]
    fn nothing_is_trimmed_at_or_below_the_target() {
        let now = Instant::now();
        let all = vec![candidate(now, 100), candidate(now, 200)];
        assert!(victims(all, 2, 2, now, GRACE, 1).is_empty());
    }

    #[test]
    fn the_least_recently_used_go_first_and_only_as_many_as_needed() {
        let now = Instant::now();
        let all: Vec<Candidate> = [300, 100, 200, 400].map(|s| candidate(now, s)).to_vec();
        let chosen = victims(all.clone(), 4, 2, now, GRACE, 1);
        assert_eq!(chosen, vec![all[3].peer, all[0].peer]);
    }

    #[test]
    fn a_peer_with_two_connections_counts_twice() {
        let now = Instant::now();
        let mut all: Vec<Candidate> = [300, 100].map(|s| candidate(now, s)).to_vec();
        all[0].connections = 2;
        assert_eq!(victims(all.clone(), 3, 1, now, GRACE, 1), vec![all[0].peer]);
    }

    #[test]
    fn new_busy_and_recently_used_peers_are_protected() {
        let now = Instant::now();
        let mut new = candidate(now, 500);
        new.opened = now - Duration::from_secs(5);
        new.last_used = None;
        let mut busy = candidate(now, 500);
        busy.in_flight = 1;
        let recent = candidate(now, 5);
        let idle = candidate(now, 100);
        let chosen = victims(vec![new, busy, recent, idle.clone()], 4, 0, now, GRACE, 1);
        assert_eq!(chosen, vec![idle.peer]);
    }

    #[test]
    fn a_mesh_peer_its_mesh_cannot_spare_is_protected() {
        let now = Instant::now();
        let mut needed = candidate(now, 900);
        needed.in_mesh = true;
        needed.needed_in_mesh = true;
        let idle = candidate(now, 100);
        let chosen = victims(vec![needed, idle.clone()], 2, 0, now, GRACE, 1);
        assert_eq!(chosen, vec![idle.peer]);
    }

    #[test]
    fn small_meshes_are_needed_whole_and_large_ones_keep_their_most_recently_used() {
        let now = Instant::now();
        let small: Vec<PeerId> = (0..MESH_DEGREE).map(|_| PeerId::random()).collect();
        let large: Vec<PeerId> = (0..MESH_DEGREE + 3).map(|_| PeerId::random()).collect();
        // The large mesh's first three peers were used longest ago.
        let age: HashMap<PeerId, Instant> = large
            .iter()
            .enumerate()
            .map(|(i, p)| (*p, now - Duration::from_secs(100 - i as u64)))
            .collect();
        let needed = needed_in_mesh([small.clone(), large.clone()].into_iter(), |p| {
            age.get(p).copied()
        });
        assert!(small.iter().all(|p| needed.contains(p)));
        assert!(large[..3].iter().all(|p| !needed.contains(p)));
        assert!(large[3..].iter().all(|p| needed.contains(p)));
    }

    #[test]
    fn mesh_peers_and_supers_go_last_and_the_freshest_super_stays() {
        let now = Instant::now();
        let mut mesh = candidate(now, 900);
        mesh.in_mesh = true;
        let mut old_super = candidate(now, 800);
        old_super.is_super = true;
        let mut fresh_super = candidate(now, 50);
        fresh_super.is_super = true;
        let plain = candidate(now, 40);
        let all = vec![mesh.clone(), old_super.clone(), fresh_super, plain.clone()];
        let chosen = victims(all, 4, 0, now, GRACE, 1);
        assert_eq!(chosen, vec![plain.peer, old_super.peer, mesh.peer]);
    }

    #[test]
    fn a_never_used_peer_counts_as_active_when_it_connected() {
        let now = Instant::now();
        let mut never = candidate(now, 0);
        never.last_used = None;
        never.opened = now - Duration::from_secs(60);
        let old = candidate(now, 120);
        let chosen = victims(vec![never.clone(), old.clone()], 2, 1, now, GRACE, 1);
        assert_eq!(chosen, vec![old.peer]);
    }
}

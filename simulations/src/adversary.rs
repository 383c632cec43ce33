//! Misbehaving nodes. They run the real node code and add what an attacker can send with
//! their own keys: forged registry records, spoofed and malformed broker messages, wrong
//! answers to calls (their backend), double spends.

use std::sync::Arc;
use std::time::Duration;

use libp2p::identity::Keypair;
use micro_node::broker::GOSSIP_PREFIX;
use micro_node::overlay::PeerId;
use micro_node::registry::{GOSSIP_TOPIC, RecordLimits, ServiceRecord, now_ms, proto};
use prost::Message;
use rand::Rng;
use rand::rngs::StdRng;
use tokio::time::MissedTickBehavior;
use tracing::{debug, info};

use crate::cluster::{Duty, Handles};
use crate::run::{Shared, task_rng};
use crate::scenario::{Adversary, TopicKind};

/// Name prefix of the services forged records claim: no honest node serves one, so any
/// honest directory listing one was fooled.
pub const FORGED_PREFIX: &str = "forged-";

/// Plays adversary `index` until the timeline ends.
pub async fn act(shared: Arc<Shared>, index: usize, adversary: Adversary) {
    let mut rng = task_rng(shared.scenario.seed, &format!("adversary-{index}"));
    match adversary {
        Adversary::ForgeRecords { rate_per_s, .. } => {
            let forger = Keypair::generate_ed25519();
            every(&shared, rate_per_s, |shared, n| {
                let forger = forger.clone();
                let mut rng = task_rng(shared.scenario.seed ^ n, "forge");
                async move {
                    let victim = shared.pick(&mut rng, |s| s.honest()).map(|h| h.peer_id);
                    let Some(victim) = victim else { return };
                    let announcement = forged(&forger, victim, n);
                    for h in own_nodes(&shared, index) {
                        let _ = h.overlay.publish(GOSSIP_TOPIC, announcement.clone()).await;
                    }
                }
            })
            .await
        }
        Adversary::Spam {
            topic, rate_per_s, ..
        } => {
            let kind = shared
                .scenario
                .topics
                .iter()
                .find(|t| t.name == topic)
                .map_or(TopicKind::Broker, |t| t.kind);
            let gossip = match kind {
                TopicKind::Broker => format!("{GOSSIP_PREFIX}{topic}"),
                TopicKind::Events => format!("{}{topic}", micro_node::events::GOSSIP_PREFIX),
            };
            let spammer = Keypair::generate_ed25519();
            every(&shared, rate_per_s, |shared, n| {
                let (gossip, topic, spammer) = (gossip.clone(), topic.clone(), spammer.clone());
                let mut rng = task_rng(shared.scenario.seed ^ n, "spam");
                async move {
                    let victim = shared.pick(&mut rng, |s| s.honest()).map(|h| h.peer_id);
                    let Some(victim) = victim else { return };
                    let junk = spam(&spammer, &topic, victim, n, &mut rng);
                    for h in own_nodes(&shared, index) {
                        let _ = h.overlay.publish(&gossip, junk.clone()).await;
                    }
                }
            })
            .await
        }
        // Their nodes serve the wrong backend (see `load::activate`); nothing more to do.
        Adversary::WrongAnswers { .. } => {}
        Adversary::Equivocate { count, at_s } => {
            if !shared.clock.until(at_s).await {
                return;
            }
            let Some(wallets) = &shared.wallets else {
                return;
            };
            for _ in 0..count {
                let (account, (x, y)) = {
                    let mut w = wallets.lock().unwrap_or_else(|e| e.into_inner());
                    let cheat = w.len() - 1 - shared.equivocators().len();
                    (w.account(cheat), w.equivocate(cheat))
                };
                shared.add_equivocator(account);
                let (a, b) = (
                    shared.pick(&mut rng, |s| s.honest()),
                    shared.pick(&mut rng, |s| s.honest()),
                );
                if let (Some(a), Some(b)) = (a, b) {
                    let _ = a.ledger.submit(x).await;
                    let _ = b.ledger.submit(y).await;
                    info!(%account, "equivocation injected");
                }
            }
        }
    }
}

/// Calls `f` `rate_per_s` times a second until the timeline ends.
async fn every<F, Fut>(shared: &Arc<Shared>, rate_per_s: f64, mut f: F)
where
    F: FnMut(Arc<Shared>, u64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate_per_s));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut n = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shared.clock.ended() => return,
        }
        n += 1;
        f(shared.clone(), n).await;
    }
}

fn own_nodes(shared: &Shared, index: usize) -> Vec<Handles> {
    shared.all(|s| s.duty == Duty::Adversary(index))
}

/// An announcement of forged records naming `victim` as the owner of a service it does not
/// serve: one signed by the forger's key (signer ≠ owner) and one whose bytes were altered
/// after signing (bad signature), riding with a valid record of the forger's own key. Gossip
/// names no author, so that valid record alone would be taken (a service of a key that runs
/// no node, unreachable; sybil services are reputation's concern); the forgeries make
/// receivers reject the whole announcement.
pub fn forged(forger: &Keypair, victim: PeerId, n: u64) -> Vec<u8> {
    let now = now_ms();
    let record = ServiceRecord {
        name: format!("{FORGED_PREFIX}{n}")
            .parse()
            .expect("a valid service name"),
        version: "1.0.0".into(),
        older_versions: Vec::new(),
        owner: forger.public().to_peer_id(),
        addrs: Vec::new(),
        endpoints: Vec::new(),
        metadata: Default::default(),
        price_per_call: 0,
        issued_at_ms: now,
        expires_at_ms: now + 60_000,
        seq: n,
        withdrawn: false,
    };
    let Ok(valid) = record.sign(forger, &RecordLimits::default()) else {
        return Vec::new();
    };
    let Ok(signed) = proto::SignedRecord::decode(valid.as_slice()) else {
        return Vec::new();
    };
    let mut records = vec![signed.clone()];
    if let Ok(mut inner) = proto::ServiceRecord::decode(signed.record.as_slice()) {
        inner.owner = victim.to_bytes();
        records.push(proto::SignedRecord {
            record: inner.encode_to_vec(),
            ..signed.clone()
        });
        let mut tampered = signed;
        if let Some(byte) = tampered.record.last_mut() {
            *byte ^= 1;
        }
        records.push(tampered);
    }
    debug!(%victim, n, "forged records");
    proto::Announcement { records }.encode_to_vec()
}

/// A broker message claiming to come from `victim` (signed with the spammer's key), or plain
/// junk.
fn spam(spammer: &Keypair, topic: &str, victim: PeerId, n: u64, rng: &mut StdRng) -> Vec<u8> {
    if n.is_multiple_of(2) {
        let claim = micro_node::broker::proto::BrokerMessage {
            id: format!("spam-{n}"),
            topic: topic.to_owned(),
            headers: Default::default(),
            content_type: "text/plain".into(),
            body: b"spam".to_vec(),
            publisher: victim.to_bytes(),
            timestamp_ms: now_ms(),
        };
        micro_node::broker::wire::seal(spammer, &claim)
    } else {
        let len = rng.random_range(1..512);
        (0..len).map(|_| rng.random()).collect()
    }
}

//! Reputation on real nodes: observations become trust reports, reports spread by gossip, and
//! every node's EigenTrust scores weigh the peers the super node vouches for; forged reports
//! are refused and cost their sender.

use std::time::Duration;

use anyhow::{Result, ensure};
use micro_node::reputation::REPUTATION_TOPIC;
use micro_testkit::{eventually, init_tracing, start_network};

const PATIENCE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_flows_from_the_super_node_to_the_peers_it_sees() -> Result<()> {
    init_tracing();
    let (_dirs, nodes) = start_network(3).await?;
    let (super_node, a, b) = (&nodes[0], &nodes[1], &nodes[2]);

    // Node a learns, from the super node's report, that the super node trusts b.
    eventually("a scores the super node and b", PATIENCE, || async {
        let scores = a.reputation().scores();
        Ok(scores.score(&super_node.peer_id()) > 0.0 && scores.score(&b.peer_id()) > 0.0)
    })
    .await?;
    let why = a.reputation().explain(&b.peer_id());
    ensure!(
        why.reported_by
            .iter()
            .any(|e| e.issuer == super_node.peer_id() && e.trust > 0.0),
        "the super node's report is behind b's score: {why}"
    );
    let scores = a.reputation().scores();
    ensure!(
        scores.is_pre_trusted(&super_node.peer_id()) && !scores.is_pre_trusted(&b.peer_id()),
        "only the super node seeds the computation"
    );
    let total: f64 = scores.iter().map(|(_, s)| s).sum();
    ensure!((total - 1.0).abs() < 1e-6, "scores sum to 1, not {total}");

    // b publishes garbage on the reputation topic: the super node refuses it and penalises b.
    eventually("b's garbage reaches the super node", PATIENCE, || async {
        b.overlay()
            .publish(REPUTATION_TOPIC, b"not a trust report".to_vec())
            .await
            .ok();
        Ok(super_node
            .reputation()
            .explain(&b.peer_id())
            .local
            .is_some_and(|l| l.penalty_points > 0.0))
    })
    .await?;
    // The penalty reaches gossipsub: the super node's peer score of b turns negative at the
    // next round (the application score is the reputation view), while a stays positive.
    eventually(
        "the super node's gossipsub scores b below zero",
        PATIENCE,
        || async {
            let overlay = super_node.overlay();
            let (of_a, of_b) = (
                overlay.gossip_score(a.peer_id()).await?,
                overlay.gossip_score(b.peer_id()).await?,
            );
            Ok(of_b.is_some_and(|s| s < 0.0) && of_a.is_some_and(|s| s > 0.0))
        },
    )
    .await?;
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}

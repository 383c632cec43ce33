//! The broker: fire-and-forget messages reach every subscriber on every node; forged ones
//! reach none.

use std::time::Duration;

use anyhow::{Result, ensure};

use micro_node::broker::{GOSSIP_PREFIX, TopicName, proto, wire};
use micro_node::overlay::PeerId;
use micro_testkit::{eventually, init_tracing, start_network};
use tokio::sync::broadcast::error::TryRecvError;

const PATIENCE: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_subscribers_on_three_nodes_get_a_message_from_a_fourth() -> Result<()> {
    init_tracing();
    let (_dirs, nodes) = start_network(4).await?;
    let orders: TopicName = "orders".parse()?;

    // Nobody listens yet: not an error, delivered to nobody.
    let lonely = nodes[0]
        .broker()
        .publish(
            orders.clone(),
            b"{}".to_vec(),
            "application/json".into(),
            Default::default(),
        )
        .await?;
    ensure!(lonely.delivered_to == 0);

    let mut subscriptions = Vec::new();
    for node in &nodes[1..] {
        subscriptions.push(node.broker().subscribe(orders.clone()).await?);
    }
    eventually(
        "the publisher to see three subscribers",
        PATIENCE,
        || async { Ok(nodes[0].broker().topic_peers(&orders).await? == 3) },
    )
    .await?;

    let headers = [("k".to_owned(), "v".to_owned())].into();
    let published = nodes[0]
        .broker()
        .publish(
            orders.clone(),
            br#"{"id":1}"#.to_vec(),
            "application/json".into(),
            headers,
        )
        .await?;
    ensure!(published.delivered_to == 3, "{published:?}");
    for subscription in &mut subscriptions {
        let message = tokio::time::timeout(PATIENCE, subscription.recv()).await??;
        ensure!(message.id == published.id && message.body == br#"{"id":1}"#);
        ensure!(message.publisher == nodes[0].peer_id());
        ensure!(message.headers.get("k").map(String::as_str) == Some("v"));
    }
    for node in &nodes[1..] {
        let info = node.overlay().info().await?;
        ensure!(
            info.messages_received > 0,
            "received messages are counted: {info:?}"
        );
    }
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_claiming_another_publisher_is_rejected() -> Result<()> {
    init_tracing();
    let (_dirs, nodes) = start_network(3).await?;
    let topic: TopicName = "alerts".parse()?;
    let mut subscription = nodes[1].broker().subscribe(topic.clone()).await?;
    eventually("the forger to see the subscriber", PATIENCE, || async {
        Ok(nodes[2].broker().topic_peers(&topic).await? >= 1)
    })
    .await?;

    // Node 2 publishes raw gossip claiming node 0 wrote it, signed with a key of its own;
    // then a genuine message follows.
    let forged = proto::BrokerMessage {
        id: "forged".into(),
        topic: topic.to_string(),
        body: b"trust me".to_vec(),
        publisher: nodes[0].peer_id().to_bytes(),
        ..Default::default()
    };
    let forger = micro_node::overlay::Keypair::generate_ed25519();
    nodes[2]
        .overlay()
        .publish(
            &format!("{GOSSIP_PREFIX}{topic}"),
            wire::seal(&forger, &forged),
        )
        .await?;
    let genuine = nodes[2]
        .broker()
        .publish(
            topic.clone(),
            b"real".to_vec(),
            "text/plain".into(),
            Default::default(),
        )
        .await?;
    let message = tokio::time::timeout(PATIENCE, subscription.recv()).await??;
    ensure!(
        message.id == genuine.id,
        "the first message through is the genuine one: {message:?}"
    );
    ensure!(
        matches!(subscription.try_recv(), Err(TryRecvError::Empty)),
        "nothing else arrived"
    );
    let sender: PeerId = message.publisher;
    ensure!(sender == nodes[2].peer_id());
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}

//! A hostile peer answers peer exchange with oversized, malformed and over-long replies: each
//! is dropped, the crawl marks the peer failed, and the node carries on.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Result, ensure};
use futures::{AsyncRead, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, StreamProtocol, SwarmBuilder, noise, tcp, yamux};
use micro_node::overlay::crawl::{self, CrawlLimits, CrawlState};
use micro_node::overlay::{OverlayError, Role, peer_exchange, proto};
use micro_testkit::{eventually, init_tracing, start_node};
use prost::Message;

/// Answers each request with the next kind of bad reply.
#[derive(Clone, Default)]
struct HostileCodec {
    served: Arc<AtomicUsize>,
}

fn bad_reply(n: usize) -> Vec<u8> {
    match n % 3 {
        // A length prefix claiming 1 GiB.
        0 => {
            let mut out = Vec::new();
            prost::encoding::encode_varint(1 << 30, &mut out);
            out.extend_from_slice(&[0; 64]);
            out
        }
        // A sane length followed by bytes that are no protobuf.
        1 => {
            let mut out = vec![32];
            out.extend_from_slice(&[0xff; 32]);
            out
        }
        // A well-formed reply listing far more peers than allowed.
        _ => {
            let reply = proto::PeersResponse {
                peers: (0..1000)
                    .map(|_| proto::PeerEntry {
                        peer_id: libp2p::PeerId::random().to_bytes(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            };
            let body = reply.encode_to_vec();
            let mut out = Vec::new();
            prost::encoding::encode_varint(body.len() as u64, &mut out);
            out.extend_from_slice(&body);
            out
        }
    }
}

impl request_response::Codec for HostileCodec {
    type Protocol = StreamProtocol;
    type Request = ();
    type Response = ();

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<()> {
        micro_node::overlay::framing::read_frame(io, 1024)
            .await
            .map(drop)
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
    ) -> io::Result<()> {
        Ok(())
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
        _: (),
    ) -> io::Result<()> {
        Ok(())
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        _: (),
    ) -> io::Result<()> {
        let n = self.served.fetch_add(1, Ordering::SeqCst);
        io.write_all(&bad_reply(n)).await?;
        io.close().await
    }
}

/// Starts the hostile peer; returns its address (with `/p2p/`).
async fn spawn_hostile() -> Result<Multiaddr> {
    let mut swarm = SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_behaviour(|_| {
            request_response::Behaviour::<HostileCodec>::new(
                [(peer_exchange::PROTOCOL, ProtocolSupport::Inbound)],
                request_response::Config::default(),
            )
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
    let addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            break address;
        }
    };
    let peer_id = *swarm.local_peer_id();
    tokio::spawn(async move {
        loop {
            if let SwarmEvent::Behaviour(request_response::Event::Message {
                message: request_response::Message::Request { channel, .. },
                ..
            }) = swarm.select_next_some().await
            {
                let _ = swarm.behaviour_mut().send_response(channel, ());
            }
        }
    });
    Ok(addr.with_p2p(peer_id).expect("fresh address has no /p2p/"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_peer_exchange_replies_are_dropped_and_the_node_carries_on() -> Result<()> {
    init_tracing();
    let dir = tempfile::tempdir()?;
    let node = start_node(dir.path(), Role::Peer, vec![]).await?;
    let hostile = spawn_hostile().await?;
    let hostile_id = match hostile.iter().last() {
        Some(libp2p::multiaddr::Protocol::P2p(id)) => id,
        _ => unreachable!("built with /p2p/"),
    };
    node.overlay().dial(hostile.clone()).await?;
    eventually(
        "the hostile peer to connect",
        Duration::from_secs(10),
        || async {
            Ok(node
                .overlay()
                .connected_peers()
                .await?
                .iter()
                .any(|p| p.peer_id == hostile_id))
        },
    )
    .await?;

    // Oversized, then malformed: the codec refuses both.
    for _ in 0..2 {
        let err = node
            .overlay()
            .ask_peers(hostile_id, vec![])
            .await
            .unwrap_err();
        ensure!(matches!(err, OverlayError::PeerExchange { .. }), "{err}");
    }
    // Well-formed but over the limit: refused after decoding.
    let err = node
        .overlay()
        .ask_peers(hostile_id, vec![])
        .await
        .unwrap_err();
    ensure!(matches!(err, OverlayError::InvalidPeerList { .. }), "{err}");

    // The crawl reports the peer as failed and the result as partial, not as an error.
    let graph = crawl::crawl(node.overlay(), CrawlLimits::default()).await?;
    let bad = graph
        .nodes
        .iter()
        .find(|n| n.peer_id == hostile_id)
        .expect("listed");
    ensure!(
        bad.state == CrawlState::Failed && bad.error.is_some(),
        "{bad:?}"
    );
    ensure!(graph.partial);
    ensure!(
        graph.nodes.len() == 2,
        "none of the hostile entries got in: {}",
        graph.nodes.len()
    );

    // Nothing the hostile peer said reached the peer book; the node still answers.
    let known = node.overlay().known_nodes().await?;
    ensure!(
        known.len() == 1,
        "only the hostile peer itself is known: {known:?}"
    );
    ensure!(node.overlay().info().await?.connected_peers == 1);
    node.shutdown().await;
    Ok(())
}

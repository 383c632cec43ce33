//! A hostile peer sends garbage on `/micro/rpc/1.0.0`: each stream is reset, the node keeps
//! serving real calls.

use std::io;
use std::time::Duration;

use anyhow::{Result, bail, ensure};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{StreamProtocol, SwarmBuilder, noise, tcp, yamux};
use micro_node::overlay::{Role, rpc};
use micro_node::services::CallRequest;
use micro_testkit::{bootstrap_addr, init_tracing, start_node};

/// Writes its request bytes verbatim; reads whatever comes back.
#[derive(Clone, Default)]
struct RawCodec;

impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
    ) -> io::Result<Vec<u8>> {
        Err(io::Error::other("the hostile peer serves nothing"))
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        io.take(1 << 20).read_to_end(&mut out).await?;
        if out.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "stream reset without a reply",
            ));
        }
        Ok(out)
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()> {
        io.write_all(&req).await?;
        io.close().await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
        _: Vec<u8>,
    ) -> io::Result<()> {
        Ok(())
    }
}

fn garbage() -> Vec<Vec<u8>> {
    let mut oversized = Vec::new();
    prost::encoding::encode_varint(1 << 40, &mut oversized);
    let mut not_protobuf = vec![16];
    not_protobuf.extend_from_slice(&[0xff; 16]);
    vec![oversized, not_protobuf, vec![0xff; 64], Vec::new()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_rpc_streams_are_reset_and_the_node_keeps_serving() -> Result<()> {
    init_tracing();
    let (victim_dir, friend_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let victim = start_node(victim_dir.path(), Role::Super, vec![]).await?;
    let boot = bootstrap_addr(&victim);

    let mut hostile = SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_behaviour(|_| {
            request_response::Behaviour::<RawCodec>::new(
                [(rpc::PROTOCOL, ProtocolSupport::Outbound)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(10)),
            )
        })?
        .build();
    let payloads = garbage();
    for payload in &payloads {
        hostile.behaviour_mut().send_request_with_addresses(
            &boot.peer_id,
            payload.clone(),
            vec![boot.addr.clone()],
        );
    }
    let mut failures = 0;
    let wait = async {
        while failures < payloads.len() {
            match hostile.select_next_some().await {
                SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                    error, ..
                }) => {
                    // The node read the garbage and reset the stream: an I/O failure here, not
                    // a refused protocol or a timeout.
                    ensure!(
                        matches!(error, request_response::OutboundFailure::Io(_)),
                        "{error}"
                    );
                    failures += 1;
                }
                SwarmEvent::Behaviour(request_response::Event::Message { message, .. }) => {
                    bail!("the node answered garbage: {message:?}")
                }
                _ => {}
            }
        }
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(20), wait).await??;

    // The node is unharmed: a real node calls it.
    let friend = start_node(friend_dir.path(), Role::Peer, vec![boot]).await?;
    let outcome = friend
        .services()
        .call(CallRequest {
            service: "node".parse()?,
            endpoint: "Node.Ping".parse()?,
            body: b"still here".to_vec(),
            content_type: "text/plain".into(),
            headers: Default::default(),
            timeout_ms: Some(5_000),
            node: Some(victim.peer_id()),
            version: None,
        })
        .await?;
    ensure!(outcome.body == b"still here" && outcome.provider == victim.peer_id());
    friend.shutdown().await;
    victim.shutdown().await;
    Ok(())
}

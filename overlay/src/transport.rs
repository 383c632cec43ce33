//! Builds the swarm: TCP and in-memory (each + Noise + Yamux, optionally shaped), QUIC, DNS,
//! and the behaviour.

use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::{Boxed, MemoryTransport};
use libp2p::core::upgrade::Version;
use libp2p::identity::Keypair;
use libp2p::{PeerId, Swarm, SwarmBuilder, Transport, noise, tcp, yamux};

use crate::OverlayError;
use crate::behaviour::Behaviour;
use crate::config::OverlayConfig;
use crate::link::{LinkShaper, Shaped};

pub(crate) fn build_swarm(
    key: Keypair,
    config: &OverlayConfig,
) -> Result<Swarm<Behaviour>, OverlayError> {
    let transport_error = |transport: &'static str| {
        move |e: &dyn std::fmt::Display| OverlayError::Transport {
            transport,
            reason: e.to_string(),
        }
    };
    let behaviour = Behaviour::new(&key, config)?;
    let streams =
        stream_transports(&key, config.link.clone()).map_err(|e| transport_error("tcp")(&e))?;
    let swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_quic()
        .with_other_transport(|_| streams)
        .map_err(|e| transport_error("tcp")(&e))?
        .with_dns()
        .map_err(|e| transport_error("dns")(&e))?
        .with_behaviour(|_| behaviour)
        .map_err(|e| transport_error("behaviour")(&e))?
        .with_swarm_config(|c| {
            c.with_idle_connection_timeout(config.idle_connection_timeout)
                // Send the first request with the protocol proposal instead of waiting a round
                // trip for the remote to confirm it: about a fifth off an RPC's latency
                // (docs/BENCHMARKS.md). A remote that lacks the protocol still fails the stream.
                .with_substream_upgrade_protocol_override(Version::V1Lazy)
        })
        .build();
    Ok(swarm)
}

/// TCP and in-memory connections, each secured with Noise and multiplexed with Yamux, the way
/// `SwarmBuilder::with_tcp` sets up TCP. Built here rather than with `with_tcp` so a
/// [`LinkShaper`] can go between the raw connection and Noise; one path with or without it.
fn stream_transports(
    key: &Keypair,
    link: Option<LinkShaper>,
) -> Result<Boxed<(PeerId, StreamMuxerBox)>, noise::Error> {
    let raw = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
        .or_transport(MemoryTransport::default());
    let noise = noise::Config::new(key)?;
    let transport = match link {
        None => raw
            .upgrade(Version::V1Lazy)
            .authenticate(noise)
            .multiplex(yamux::Config::default())
            .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
            .boxed(),
        Some(shaper) => Shaped::new(raw, shaper)
            .upgrade(Version::V1Lazy)
            .authenticate(noise)
            .multiplex(yamux::Config::default())
            .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
            .boxed(),
    };
    Ok(transport)
}

//! Builds the swarm: TCP + Noise + Yamux, QUIC, DNS, and the behaviour.

use libp2p::identity::Keypair;
use libp2p::{Swarm, SwarmBuilder, noise, tcp, yamux};

use crate::OverlayError;
use crate::behaviour::Behaviour;
use crate::config::OverlayConfig;

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
    let swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| transport_error("tcp")(&e))?
        .with_quic()
        .with_dns()
        .map_err(|e| transport_error("dns")(&e))?
        .with_behaviour(|_| behaviour)
        .map_err(|e| transport_error("behaviour")(&e))?
        .with_swarm_config(|c| {
            c.with_idle_connection_timeout(config.idle_connection_timeout)
                // Send the first request with the protocol proposal instead of waiting a round
                // trip for the remote to confirm it: about a fifth off an RPC's latency
                // (docs/BENCHMARKS.md). A remote that lacks the protocol still fails the stream.
                .with_substream_upgrade_protocol_override(libp2p::core::upgrade::Version::V1Lazy)
        })
        .build();
    Ok(swarm)
}

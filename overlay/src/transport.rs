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
        .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_connection_timeout))
        .build();
    Ok(swarm)
}

//! Provider lookups between real overlays on loopback: a provider found through the DHT can
//! be called afterwards, though the caller never connected to it and the lookup is over.

mod common;

use common::{
    Node, PATIENCE, TestResult, connected_to, echo_request, eventually, next_event, serve_echo,
};
use micro_overlay::{KadMode, OverlayConfig, OverlayEvent};

const KEY: &[u8] = b"/micro/services/echo";

async fn start(provider_lookup_enough: usize) -> TestResult<Node> {
    common::start_with(OverlayConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse()?],
        kad_mode: KadMode::Server,
        provider_lookup_enough,
        ..OverlayConfig::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_found_by_lookup_is_callable_after_the_lookup_ends() -> TestResult {
    // The DHT node answers its own lookups from its store when it can (see below).
    let dht = start(1).await?;
    let mut provider = start(3).await?;
    let _echo = serve_echo(&mut provider);
    let provider_id = provider.id();
    // The caller answers its lookup at the first provider, which ends the query there. Until
    // then it blocks the provider, so neither its bootstrap walks nor the lookup connect to
    // it: the only address it can learn is the one the lookup carries.
    let caller = start(1).await?;
    caller.overlay.block_peer(provider_id).await?;
    let mut caller_events = caller.overlay.subscribe();
    caller.overlay.dial(dht.addr.clone()).await?;
    next_event(&mut caller_events, PATIENCE, |e| {
        matches!(e, OverlayEvent::Joined { .. })
    })
    .await?;

    let mut provider_events = provider.overlay.subscribe();
    provider.overlay.dial(dht.addr.clone()).await?;
    next_event(&mut provider_events, PATIENCE, |e| {
        matches!(e, OverlayEvent::Joined { .. })
    })
    .await?;
    provider.overlay.start_providing(KEY.to_vec()).await?;
    // Stored, not just found: a lookup that sent no request answered from the store.
    eventually("the DHT node to store the provider record", || async {
        let lookup = dht.overlay.lookup_providers(KEY.to_vec()).await?;
        Ok(lookup.requests == 0 && lookup.providers.contains(&provider_id))
    })
    .await?;
    assert_eq!(
        caller.overlay.get_providers(KEY.to_vec()).await?,
        vec![provider_id]
    );
    assert!(!connected_to(&caller, provider_id).await?);

    // The lookup is over and the caller never connected to the provider; the call still
    // reaches it.
    caller.overlay.unblock_peer(provider_id).await?;
    let answer = caller
        .overlay
        .rpc(
            provider_id,
            Vec::new(),
            echo_request(b"found you"),
            PATIENCE,
        )
        .await?;
    assert_eq!(answer.body, b"found you");

    for node in [caller, provider, dht] {
        node.stop().await;
    }
    Ok(())
}

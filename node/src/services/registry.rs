//! Announcing what this node serves (gossip heartbeat + DHT provider records), and taking in
//! what other nodes announce.

use std::sync::Arc;

use micro_overlay::{GossipMessage, MessageAcceptance, Multiaddr, PeerId};
use micro_wasm_runtime::version_matches;
use prost::Message;
use tracing::{debug, info, warn};

use super::{Backend, ServeError, ServeSpec, Served, Services, lock};
use crate::registry::{
    GOSSIP_TOPIC, Insert, RecordError, ServiceName, ServiceRecord, ServiceSummary, now_ms, proto,
    verify,
};

/// Bytes of records packed into one announcement (gossip messages are bounded).
const ANNOUNCEMENT_BYTES: usize = 128 * 1024;

/// The DHT key under which providers of `name` are announced.
pub fn provider_key(name: &ServiceName) -> Vec<u8> {
    format!("/micro/svc/{name}").into_bytes()
}

fn check_backend(backend: &Backend, allow_remote: bool) -> Result<(), ServeError> {
    let Backend::Http { url } = backend else {
        return Ok(());
    };
    let bad = |reason: &str| ServeError::BadBackend {
        url: url.clone(),
        reason: reason.to_owned(),
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("only http:// and https:// backends are supported"));
    }
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => return Err(bad("no host")),
    };
    if !loopback && !allow_remote {
        return Err(bad(
            "backends must be on this machine (loopback) unless the node allows remote backends",
        ));
    }
    Ok(())
}

impl Services {
    /// Serves a new service: checks it, records it, announces it (gossip and DHT).
    pub async fn serve(&self, spec: ServeSpec) -> Result<ServiceRecord, ServeError> {
        if spec.name.as_str() == super::BUILTIN_SERVICE {
            return Err(ServeError::Reserved(spec.name));
        }
        check_backend(&spec.backend, self.0.config.allow_remote_backends)?;
        let record = self.record_for(&spec, Vec::new(), false);
        // Refuse what others would refuse before taking the name.
        record.sign(&self.0.key, &self.0.limits)?;
        {
            let mut local = lock(&self.0.local);
            if local.contains_key(&spec.name) {
                return Err(ServeError::AlreadyServed(spec.name));
            }
            if local.len() > self.0.config.max_local_services {
                return Err(ServeError::TooMany(self.0.config.max_local_services));
            }
            local.insert(spec.name.clone(), Arc::new(Served::new(spec.clone())));
        }
        if let Err(e) = self
            .0
            .overlay
            .start_providing(provider_key(&spec.name))
            .await
        {
            warn!(service = %spec.name, error = %e, "cannot announce the service in the DHT");
        }
        lock(&self.0.cache).remove(&spec.name);
        info!(service = %spec.name, version = %spec.version, "serving");
        self.announce().await;
        Ok(record)
    }

    /// Serves `spec`, or, when this node already serves a wasm service of that name, puts
    /// the new spec in its place at once (a redeploy: no call sees the name missing).
    pub(crate) async fn serve_replacing(
        &self,
        spec: ServeSpec,
    ) -> Result<ServiceRecord, ServeError> {
        let replaced = {
            let mut local = lock(&self.0.local);
            match local.get(&spec.name).cloned() {
                Some(old) if matches!(old.spec.backend, Backend::Wasm { .. }) => {
                    local.insert(spec.name.clone(), Arc::new(old.replaced_by(spec.clone())));
                    true
                }
                _ => false,
            }
        };
        if !replaced {
            return self.serve(spec).await;
        }
        let record = self.record_for(&spec, Vec::new(), false);
        lock(&self.0.cache).remove(&spec.name);
        info!(service = %spec.name, version = %spec.version, "serving a new version");
        self.announce().await;
        Ok(record)
    }

    /// Stops serving `name` and tells the network.
    pub async fn deregister(&self, name: &ServiceName) -> Result<(), ServeError> {
        if name.as_str() == super::BUILTIN_SERVICE {
            return Err(ServeError::Reserved(name.clone()));
        }
        let Some(served) = lock(&self.0.local).remove(name) else {
            return Err(ServeError::NotServed(name.clone()));
        };
        self.0.overlay.stop_providing(provider_key(name)).await;
        lock(&self.0.cache).remove(name);
        self.publish(std::slice::from_ref(&served.spec), true).await;
        info!(service = %name, "deregistered");
        Ok(())
    }

    /// Withdraws every service (clean stop).
    pub async fn withdraw_all(&self) {
        let specs = self.announced_specs();
        for spec in &specs {
            self.0
                .overlay
                .stop_providing(provider_key(&spec.name))
                .await;
        }
        self.publish(&specs, true).await;
    }

    /// Re-announces every service with a fresh expiry: the heartbeat.
    pub async fn announce(&self) {
        let specs = self.announced_specs();
        self.publish(&specs, false).await;
        let gone = lock(&self.0.directory).expire(now_ms());
        if !gone.is_empty() {
            debug!(count = gone.len(), "expired service records");
            let mut cache = lock(&self.0.cache);
            for (name, _) in gone {
                cache.remove(&name);
            }
        }
    }

    /// The services announced to the network (the built-in one is not: every node has it).
    fn announced_specs(&self) -> Vec<ServeSpec> {
        lock(&self.0.local)
            .values()
            .filter(|s| s.spec.backend != Backend::Builtin)
            .map(|s| s.spec.clone())
            .collect()
    }

    fn record_for(
        &self,
        spec: &ServeSpec,
        addrs: Vec<micro_overlay::Multiaddr>,
        withdrawn: bool,
    ) -> ServiceRecord {
        let now = now_ms();
        let ttl = u64::try_from(self.0.config.record_ttl.as_millis()).unwrap_or(u64::MAX);
        ServiceRecord {
            name: spec.name.clone(),
            version: spec.version.clone(),
            older_versions: spec.older_versions.clone(),
            owner: self.0.overlay.local_peer_id(),
            addrs,
            endpoints: spec.endpoints.clone(),
            metadata: spec.metadata.clone(),
            price_per_call: spec.price_per_call,
            issued_at_ms: now,
            expires_at_ms: now.saturating_add(ttl),
            seq: self.next_seq(),
            withdrawn,
        }
    }

    /// Signs `specs` as records and publishes them, in announcements of bounded size. Own
    /// records also go into the own directory, so every node lists the same things.
    async fn publish(&self, specs: &[ServeSpec], withdrawn: bool) {
        if specs.is_empty() {
            return;
        }
        let addrs = match self.0.overlay.info().await {
            Ok(info) => info.listen_addrs,
            Err(_) => return,
        };
        let mut batches = vec![proto::Announcement::default()];
        let mut batch_bytes = 0;
        for spec in specs {
            let record = self.record_for(spec, addrs.clone(), withdrawn);
            let signed = match record.sign(&self.0.key, &self.0.limits) {
                Ok(signed) => signed,
                Err(e) => {
                    warn!(service = %spec.name, error = %e, "cannot sign the service record");
                    continue;
                }
            };
            lock(&self.0.directory).insert(record, None, now_ms());
            let Ok(signed) = proto::SignedRecord::decode(signed.as_slice()) else {
                continue;
            };
            if batch_bytes + signed.encoded_len() > ANNOUNCEMENT_BYTES {
                batches.push(proto::Announcement::default());
                batch_bytes = 0;
            }
            batch_bytes += signed.encoded_len();
            if let Some(batch) = batches.last_mut() {
                batch.records.push(signed);
            }
        }
        for batch in batches.into_iter().filter(|b| !b.records.is_empty()) {
            match self
                .0
                .overlay
                .publish(GOSSIP_TOPIC, batch.encode_to_vec())
                .await
            {
                Ok(peers) => debug!(
                    records = batch.records.len(),
                    peers, withdrawn, "announced services"
                ),
                Err(e) => warn!(error = %e, "cannot announce services"),
            }
        }
    }

    /// Takes in a registry announcement from gossip and tells gossipsub whether it was valid.
    pub async fn on_gossip(&self, message: GossipMessage) {
        let verdict = if message.topic == GOSSIP_TOPIC {
            self.absorb(&message)
        } else {
            MessageAcceptance::Ignore
        };
        self.0.overlay.report_message(&message, verdict).await;
    }

    fn absorb(&self, message: &GossipMessage) -> MessageAcceptance {
        // Gossip names no author: each record is signed by its owner, and whoever relays a
        // valid one relays the truth (older copies are ignored by the directory).
        let sender = message.propagation_source;
        let reject = |why: &dyn std::fmt::Display| {
            warn!(peer = %sender, reason = %why, "rejected a registry announcement");
            lock(&self.0.directory).penalize(sender);
            MessageAcceptance::Reject
        };
        let announcement = match proto::Announcement::decode(message.data.as_slice()) {
            Ok(a) => a,
            Err(e) => return reject(&format!("malformed: {e}")),
        };
        let now = now_ms();
        let mut records = Vec::with_capacity(announcement.records.len());
        for signed in announcement.records {
            match verify(&signed.encode_to_vec(), now, &self.0.limits) {
                Ok(record) => records.push(record),
                // Late gossip, not malice.
                Err(RecordError::Expired { .. }) => {}
                Err(e) => return reject(&e),
            }
        }
        let mut directory = lock(&self.0.directory);
        let mut cache = lock(&self.0.cache);
        for record in records {
            let name = record.name.clone();
            let owner = record.owner;
            match directory.insert(record, Some(message.propagation_source), now) {
                Insert::New => {
                    debug!(service = %name, provider = %owner, "learned a provider");
                    cache.remove(&name);
                }
                Insert::Withdrawn => {
                    debug!(service = %name, provider = %owner, "provider withdrew");
                    cache.remove(&name);
                }
                Insert::Refreshed => {}
                Insert::Replayed => {
                    debug!(peer = %sender, service = %name, "ignored an old record")
                }
                Insert::Full => warn!(service = %name, "directory full: record not kept"),
            }
        }
        MessageAcceptance::Accept
    }

    /// Every service the network announces, as this node's directory holds them.
    pub fn network_services(&self) -> Vec<ServiceSummary> {
        lock(&self.0.directory).services(now_ms())
    }

    /// How many invalid records each peer sent (the hook reputation will use).
    pub fn penalties(&self) -> std::collections::HashMap<PeerId, u32> {
        lock(&self.0.directory).penalties().clone()
    }

    /// What `provider` charges per call of `name`, as its record in the directory says; 0 if
    /// unknown.
    pub fn price_per_call(&self, name: &ServiceName, provider: &PeerId) -> u64 {
        lock(&self.0.directory)
            .providers(name, now_ms())
            .into_iter()
            .find(|r| r.owner == *provider)
            .map_or(0, |r| r.price_per_call)
    }

    /// The most any known provider of `name` charges per call: what a call is priced at
    /// before a provider is picked (the gateway reserves it against a token's spend limit).
    pub fn max_price_per_call(&self, name: &ServiceName) -> u64 {
        lock(&self.0.directory)
            .providers(name, now_ms())
            .into_iter()
            .map(|r| r.price_per_call)
            .max()
            .unwrap_or(0)
    }

    /// Live providers of `name` according to the directory.
    pub(super) fn directory_providers(&self, name: &ServiceName) -> Vec<PeerId> {
        lock(&self.0.directory)
            .providers(name, now_ms())
            .into_iter()
            .map(|r| r.owner)
            .collect()
    }

    /// Where `owner`'s live record of `name` says it listens (empty if the directory holds
    /// no such record).
    pub(super) fn directory_addrs(&self, name: &ServiceName, owner: &PeerId) -> Vec<Multiaddr> {
        lock(&self.0.directory)
            .providers(name, now_ms())
            .into_iter()
            .find(|r| r.owner == *owner)
            .map(|r| r.addrs)
            .unwrap_or_default()
    }

    /// Providers in the directory whose records announce a version `pin` names.
    pub(super) fn directory_providers_of(&self, name: &ServiceName, pin: &str) -> Vec<PeerId> {
        lock(&self.0.directory)
            .providers(name, now_ms())
            .into_iter()
            .filter(|r| {
                std::iter::once(&r.version)
                    .chain(&r.older_versions)
                    .any(|v| version_matches(v, pin))
            })
            .map(|r| r.owner)
            .collect()
    }

    /// Forgets that `owner` serves `name` (it said it does not).
    pub(super) fn forget_provider(&self, name: &ServiceName, owner: &PeerId) {
        lock(&self.0.directory).remove_owner(name, owner);
        lock(&self.0.cache).remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_are_loopback_unless_allowed() {
        let http = |url: &str| Backend::Http {
            url: url.to_owned(),
        };
        assert!(check_backend(&http("http://127.0.0.1:8080"), false).is_ok());
        assert!(check_backend(&http("http://localhost:8080/api"), false).is_ok());
        assert!(check_backend(&http("http://[::1]:8080"), false).is_ok());
        assert!(check_backend(&http("http://192.0.2.1:8080"), false).is_err());
        assert!(check_backend(&http("http://192.0.2.1:8080"), true).is_ok());
        assert!(check_backend(&http("ftp://127.0.0.1/"), true).is_err());
        assert!(check_backend(&http("not a url"), true).is_err());
    }
}

//! Ledger anti-entropy over `/micro/ledger-sync/1.0.0`: each round, ask one connected peer for
//! its proofs and its account heads, and fetch every range of transfers it has beyond ours.
//! Gossip spreads new transfers fast; this repairs what gossip missed (a partition, a restart,
//! a late joiner).

use std::time::Duration;

use micro_ledger::Account;
use micro_overlay::sync::LEDGER_SYNC;
use micro_overlay::{PeerId, SyncResponder};
use prost::Message;
use rand::seq::IndexedRandom;
use tokio::sync::watch;
use tokio::time::{MissedTickBehavior, interval};
use tracing::{debug, warn};

use super::wire::{
    AcksRequest, Ask, Head, HeadsRequest, ProofsRequest, RangeRequest, SyncRequest, SyncResponse,
};
use super::{NodeLedger, decode_items};

/// Most acks sent per transfer in a range or acks answer.
const MAX_ACKS_PER_TRANSFER: usize = 64;
/// Most transfers whose acks one request asks for.
const MAX_ACK_IDS: usize = 32;
/// Largest sync request read, in bytes: the largest is an acks request for [`MAX_ACK_IDS`]
/// transfers (34 bytes per id with its field header), plus room for the envelope.
const MAX_REQUEST_BYTES: usize = MAX_ACK_IDS * 34 + 64;

impl NodeLedger {
    /// Answers one sync request on a blocking thread.
    pub fn spawn_serve_sync(&self, peer: PeerId, request: Vec<u8>, responder: SyncResponder) {
        let this = self.clone();
        tokio::spawn(async move {
            let answer = tokio::task::spawn_blocking(move || this.answer(&request)).await;
            match answer {
                Ok(Ok(response)) => {
                    let _ = responder.respond(response.encode_to_vec());
                }
                Ok(Err(reason)) => warn!(%peer, %reason, "refused a ledger sync request"),
                Err(e) => warn!(%peer, error = %e, "ledger sync answer failed"),
            }
        });
    }

    fn answer(&self, request: &[u8]) -> Result<SyncResponse, String> {
        if request.len() > MAX_REQUEST_BYTES {
            return Err(format!("{} bytes, over the limit", request.len()));
        }
        let request = SyncRequest::decode(request).map_err(|e| e.to_string())?;
        let config = &self.0.config;
        let ledger = self.ledger();
        let mut response = SyncResponse::default();
        match request.ask.ok_or("empty request")? {
            Ask::Heads(HeadsRequest { after, limit }) => {
                let after = match after.len() {
                    0 => None,
                    _ => Some(Account(after.try_into().map_err(|_| "bad account")?)),
                };
                let limit = limit.min(config.sync_page) as usize;
                response.heads = ledger
                    .heads(after, limit)
                    .into_iter()
                    .map(|head| Head {
                        account: head.account.0.to_vec(),
                        next_seq: head.next_seq,
                        history: head.history.0.to_vec(),
                    })
                    .collect();
            }
            Ask::Range(RangeRequest {
                account,
                from_seq,
                limit,
            }) => {
                let account = Account(account.try_into().map_err(|_| "bad account")?);
                let limit = limit.min(config.sync_range) as usize;
                let transfers = ledger
                    .transfers_from(&account, from_seq, limit)
                    .map_err(|e| e.to_string())?;
                for t in &transfers {
                    let acks = ledger.acks(&t.id()).map_err(|e| e.to_string())?;
                    response
                        .acks
                        .extend(acks.iter().take(MAX_ACKS_PER_TRANSFER).map(Into::into));
                }
                response.transfers = transfers.iter().map(Into::into).collect();
            }
            Ask::Acks(AcksRequest { ids }) => {
                for id in ids.iter().take(MAX_ACK_IDS) {
                    let id = micro_ledger::TransferId(
                        id.as_slice().try_into().map_err(|_| "bad transfer id")?,
                    );
                    let acks = ledger.acks(&id).map_err(|e| e.to_string())?;
                    response
                        .acks
                        .extend(acks.iter().take(MAX_ACKS_PER_TRANSFER).map(Into::into));
                }
            }
            Ask::Proofs(ProofsRequest {}) => {
                response.proofs = ledger
                    .proofs()
                    .map_err(|e| e.to_string())?
                    .iter()
                    .map(Into::into)
                    .collect();
            }
        }
        Ok(response)
    }

    async fn ask(&self, peer: PeerId, ask: Ask) -> Option<SyncResponse> {
        let request = SyncRequest { ask: Some(ask) }.encode_to_vec();
        let answer = self
            .0
            .overlay
            .request(LEDGER_SYNC, peer, request, self.0.config.sync_timeout)
            .await;
        match answer {
            Ok(bytes) => match SyncResponse::decode(bytes.as_slice()) {
                Ok(response) => Some(response),
                Err(e) => {
                    warn!(%peer, error = %e, "malformed ledger sync answer");
                    None
                }
            },
            Err(e) => {
                debug!(%peer, error = %e, "ledger sync request failed");
                None
            }
        }
    }

    /// Takes what a sync answer brought; false if it carried something invalid.
    async fn take(&self, peer: PeerId, response: SyncResponse) -> bool {
        let (transfers, acks, proofs) =
            match decode_items(response.transfers, response.acks, response.proofs) {
                Ok(items) => items,
                Err(reason) => {
                    warn!(%peer, %reason, "malformed item in a ledger sync answer");
                    return false;
                }
            };
        let this = self.clone();
        let absorbed = tokio::task::spawn_blocking(move || this.absorb(transfers, acks, proofs))
            .await
            .unwrap_or_default();
        if let Some(reason) = &absorbed.invalid {
            warn!(%peer, %reason, "invalid item in a ledger sync answer");
            self.0
                .reputation
                .penalise(peer, micro_reputation::Penalty::InvalidMessage);
        }
        self.spread(&absorbed).await;
        absorbed.invalid.is_none()
    }

    /// Asks `peer` for its acks of transfers still pending here; forgets those now final.
    async fn sync_acks(&self, peer: PeerId) {
        // Never hold `unsettled` while the ledger is locked here: applying takes them the
        // other way round.
        let known: Vec<micro_ledger::TransferId> = self
            .0
            .unsettled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
        let settled: std::collections::HashSet<micro_ledger::TransferId> = known
            .iter()
            .filter(|id| {
                matches!(
                    self.status(id),
                    Ok(Some(
                        micro_ledger::TransferStatus::Final | micro_ledger::TransferStatus::Void
                    )) | Ok(None)
                )
            })
            .copied()
            .collect();
        let pending: Vec<micro_ledger::TransferId> = {
            let mut unsettled = self.0.unsettled.lock().unwrap_or_else(|e| e.into_inner());
            unsettled.retain(|id| !settled.contains(id));
            // Round robin: the ids asked about go to the back, so a transfer no peer can
            // settle yet does not starve the others.
            let asked = unsettled.len().min(MAX_ACK_IDS);
            let pending: Vec<_> = unsettled.drain(..asked).collect();
            unsettled.extend(pending.iter().copied());
            pending
        };
        if pending.is_empty() {
            return;
        }
        let ask = Ask::Acks(AcksRequest {
            ids: pending.iter().map(|id| id.0.to_vec()).collect(),
        });
        if let Some(response) = self.ask(peer, ask).await {
            self.take(peer, response).await;
        }
    }

    /// One anti-entropy round with `peer`: its proofs, every account it is ahead on, then
    /// its acks of what is still pending here.
    pub async fn sync_with(&self, peer: PeerId) {
        self.sync_transfers(peer).await;
        self.sync_acks(peer).await;
    }

    async fn sync_transfers(&self, peer: PeerId) {
        let config = self.0.config.clone();
        if let Some(response) = self.ask(peer, Ask::Proofs(ProofsRequest {})).await
            && !self.take(peer, response).await
        {
            return;
        }
        let mut after: Option<Account> = None;
        for _ in 0..config.sync_pages {
            let Some(page) = self
                .ask(
                    peer,
                    Ask::Heads(HeadsRequest {
                        after: after.map(|a| a.0.to_vec()).unwrap_or_default(),
                        limit: config.sync_page,
                    }),
                )
                .await
            else {
                return;
            };
            let full = page.heads.len() >= config.sync_page as usize;
            for head in page.heads {
                let Ok(bytes) = <[u8; 32]>::try_from(head.account.as_slice()) else {
                    warn!(%peer, "malformed account in ledger heads");
                    return;
                };
                let account = Account(bytes);
                after = Some(account);
                if !self.catch_up(peer, account, head.next_seq).await {
                    return;
                }
                if self.diverges(&account, &head) && !self.find_divergence(peer, account).await {
                    return;
                }
            }
            if !full {
                return;
            }
        }
    }

    /// Fetches `account`'s transfers from `peer` until this node reaches `their_next` (or,
    /// for a frozen account, the seq it is frozen at: the transfers before an equivocation
    /// stay valid) or the peer sends nothing new. False if the peer stopped answering.
    async fn catch_up(&self, peer: PeerId, account: Account, their_next: u64) -> bool {
        let mut ours = self.next_seq(&account);
        while ours < their_next.min(self.frozen(&account).unwrap_or(u64::MAX)) {
            let Some(range) = self.range(peer, account, ours).await else {
                return false;
            };
            if range.transfers.is_empty() || !self.take(peer, range).await {
                break;
            }
            let now = self.next_seq(&account);
            if now == ours {
                // Held (e.g. unfunded until another account syncs): move on.
                break;
            }
            ours = now;
        }
        true
    }

    /// Whether `head` says the peer applied other transfers of its account than this node
    /// did at the same seqs: same next seq, different history digest. Only an equivocating
    /// sender causes that, and balances may not show it (two spends of one seq, then the
    /// same later transfers on both sides).
    fn diverges(&self, account: &Account, head: &Head) -> bool {
        let Ok(theirs) = <[u8; 32]>::try_from(head.history.as_slice()) else {
            return false;
        };
        self.next_seq(account) == head.next_seq && self.history_digest(account).0 != theirs
    }

    /// Walks `account`'s history at `peer` from seq 1 until one of its transfers conflicts
    /// with one here — which freezes the account and spreads the proof — or the walk ends.
    /// O(history), paid only on a real divergence. False if the peer stopped answering.
    async fn find_divergence(&self, peer: PeerId, account: Account) -> bool {
        let (mut from_seq, end) = (1, self.next_seq(&account));
        let frozen = self.frozen(&account);
        debug!(%peer, %account, "history digests differ: looking for the equivocation");
        // Until the walk ends or finds it (the account gets frozen, or frozen earlier).
        while from_seq < end && self.frozen(&account) == frozen {
            let Some(range) = self.range(peer, account, from_seq).await else {
                return false;
            };
            let Some(last) = range.transfers.iter().map(|t| t.seq).max() else {
                break;
            };
            if last < from_seq || !self.take(peer, range).await {
                break;
            }
            from_seq = last + 1;
        }
        true
    }

    async fn range(&self, peer: PeerId, account: Account, from_seq: u64) -> Option<SyncResponse> {
        let ask = Ask::Range(RangeRequest {
            account: account.0.to_vec(),
            from_seq,
            limit: self.0.config.sync_range,
        });
        self.ask(peer, ask).await
    }

    /// Runs an anti-entropy round with a random connected peer every interval until told to
    /// stop.
    pub async fn run_sync(self, mut stop: watch::Receiver<bool>) {
        let mut tick = interval(self.0.config.sync_interval.max(Duration::from_millis(50)));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            let peers = self.0.overlay.connected_peers().await.unwrap_or_default();
            let Some(peer) = peers.choose(&mut rand::rng()).map(|p| p.peer_id) else {
                continue;
            };
            self.sync_with(peer).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The largest request this node sends must be one it would read: an acks request for
    /// 32 transfers once exceeded a 1 KiB limit, and finality stalled wherever more than 30
    /// transfers were pending.
    #[test]
    fn largest_acks_request_fits_the_request_limit() {
        let request = SyncRequest {
            ask: Some(Ask::Acks(AcksRequest {
                ids: vec![vec![0xff; 32]; MAX_ACK_IDS],
            })),
        };
        let len = request.encode_to_vec().len();
        assert!(
            len <= MAX_REQUEST_BYTES,
            "{len} bytes > {MAX_REQUEST_BYTES}"
        );
    }
}

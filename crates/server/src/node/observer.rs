//! How a broker that is not a voter follows the metadata log: it fetches committed entries from the active
//! controller (or any voter it can reach) and hands them to the applier thread in order, as Kafka's brokers
//! fetch `__cluster_metadata`.
//!
//! ```text
//!   next = 0 ─▶ Fetch { from: next } ─▶ snapshot (index, image) and/or entries ─▶ applier ─▶ next = last + 1
//!                  │ long poll: the voter answers when there is something past `next` (or after 500 ms)
//!                  └ unreachable / not a voter ─▶ the next voter, after a short pause
//! ```
//! It keeps no metadata log of its own: after a restart it starts from the voter's image, which is as
//! complete as the log.

use super::Node;
use ferrite_coordinator::quorum::rpc::{MetadataBatch, Peer, QuorumRequest, QuorumResponse};
use ferrite_coordinator::quorum::Applied;
use ferrite_metadata::MetadataImage;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How long a voter holds a fetch that has nothing new.
const LONG_POLL: Duration = Duration::from_millis(500);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Starts the fetch loop; it ends when `stop` turns true or the node goes away.
pub(super) fn spawn(
    node: &Arc<Node>,
    applier: mpsc::UnboundedSender<Applied>,
    stop: watch::Receiver<bool>,
) {
    let voters: Vec<(i32, String)> = node
        .config
        .quorum
        .voters
        .iter()
        .map(|v| (v.id, v.address()))
        .collect();
    let local = u64::try_from(node.config.node_id).unwrap_or(0);
    tokio::spawn(follow(Arc::downgrade(node), voters, local, applier, stop));
}

async fn follow(
    node: Weak<Node>,
    voters: Vec<(i32, String)>,
    local: u64,
    applier: mpsc::UnboundedSender<Applied>,
    mut stop: watch::Receiver<bool>,
) {
    if voters.is_empty() {
        return;
    }
    let mut peers: Vec<Peer> = voters.iter().map(|(_, a)| Peer::new(a.clone())).collect();
    let mut current = 0usize;
    let mut next = 0u64;
    let mut warned = false;
    loop {
        if *stop.borrow() {
            return;
        }
        // Prefer the active controller when one is known: it has the newest entries.
        if let Some(leader) = node
            .upgrade()
            .and_then(|n| n.quorum().ok().and_then(|q| q.leader()))
        {
            if let Some(i) = voters.iter().position(|(id, _)| *id == leader) {
                current = i;
            }
        }
        let request = QuorumRequest::Fetch {
            node_id: local,
            from: next,
            max_wait_ms: u64::try_from(LONG_POLL.as_millis()).unwrap_or(500),
        };
        let answer = tokio::select! {
            answer = peers[current].call(&request, FETCH_TIMEOUT) => answer,
            _ = stop.changed() => return,
        };
        match answer {
            Ok(QuorumResponse::Fetch(batch)) => {
                warned = false;
                let Some(node) = node.upgrade() else { return };
                if let Ok(quorum) = node.quorum() {
                    quorum.set_known_leader(batch.leader.and_then(|l| i32::try_from(l).ok()));
                }
                match deliver(batch, next, &applier) {
                    Some(after) => next = after,
                    None => return,
                }
            }
            other => {
                let reason = match other {
                    Ok(QuorumResponse::Unavailable(reason)) => reason,
                    Ok(_) => "an unexpected answer".into(),
                    Err(e) => e.to_string(),
                };
                if !warned {
                    tracing::warn!(voter = voters[current].0, %reason, "cannot fetch the metadata log; trying the next voter");
                    warned = true;
                }
                if let Some(node) = node.upgrade() {
                    if let Ok(quorum) = node.quorum() {
                        quorum.forget_leader(voters[current].0);
                    }
                }
                current = (current + 1) % voters.len();
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
}

/// Hands a fetched batch to the applier; returns the next index to ask for (`None`: the applier is gone).
fn deliver(
    batch: MetadataBatch,
    mut next: u64,
    applier: &mpsc::UnboundedSender<Applied>,
) -> Option<u64> {
    if let Some((index, records)) = batch.snapshot {
        match MetadataImage::from_records(&records) {
            Ok(image) => {
                applier.send(Applied::Snapshot { index, image }).ok()?;
                next = index + 1;
            }
            Err(e) => {
                tracing::error!(index, error = %e, "a metadata snapshot from the controller does not apply");
                return Some(next);
            }
        }
    }
    for (index, records) in batch.entries {
        // Entries this node already has (a retried fetch) are skipped, never applied twice.
        if index < next {
            continue;
        }
        applier.send(Applied::Records { index, records }).ok()?;
        next = index + 1;
    }
    Some(next)
}

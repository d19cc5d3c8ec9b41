//! What a voter's controller listener answers besides Raft's RPCs: brokers fetching the committed metadata
//! log, and requests for the active controller forwarded by other nodes.

use super::controller::ControllerFailure;
use super::forward::{ControllerCall, ControllerReply};
use super::Node;
use ferrite_coordinator::quorum::rpc::{BoxFuture, MetadataBatch, QuorumResponse, QuorumService};
use ferrite_coordinator::quorum::{NodeId, Raft};
use std::sync::Weak;
use std::time::Duration;

pub(super) struct NodeService {
    node: Weak<Node>,
    raft: Option<Raft>,
}

impl NodeService {
    pub(super) fn new(node: Weak<Node>, raft: Option<Raft>) -> NodeService {
        NodeService { node, raft }
    }
}

fn stopping() -> QuorumResponse {
    QuorumResponse::Unavailable("this node is stopping".into())
}

impl QuorumService for NodeService {
    fn raft(&self) -> Option<Raft> {
        self.raft.clone()
    }

    fn fetch(&self, node_id: NodeId, from: u64, max_wait: Duration) -> BoxFuture<QuorumResponse> {
        let node = self.node.clone();
        Box::pin(async move {
            let Some(mut applied) = node
                .upgrade()
                .and_then(|n| n.quorum().ok().map(|q| q.applied_watch()))
            else {
                return stopping();
            };
            if from > 0 {
                // Long poll: an up-to-date follower waits here for the next entry.
                let _ = tokio::time::timeout(max_wait, applied.wait_for(|at| *at >= from)).await;
            }
            let Some(node) = node.upgrade() else {
                return stopping();
            };
            let Ok(quorum) = node.quorum() else {
                return stopping();
            };
            quorum.observer_fetched(i32::try_from(node_id).unwrap_or(-1), from);
            let mut batch: MetadataBatch = node.applied_log().batch_from(from);
            batch.leader = quorum.leader().and_then(|l| u64::try_from(l).ok());
            QuorumResponse::Fetch(batch)
        })
    }

    fn controller(&self, request: serde_json::Value) -> BoxFuture<QuorumResponse> {
        let node = self.node.clone();
        Box::pin(async move {
            let call: ControllerCall = match serde_json::from_value(request) {
                Ok(call) => call,
                Err(e) => {
                    return QuorumResponse::Unavailable(format!(
                        "unreadable controller request: {e}"
                    ))
                }
            };
            // The controller's work blocks (it waits for the quorum); keep it off the async workers.
            let answered = tokio::task::spawn_blocking(move || match node.upgrade() {
                Some(node) => node.answer_here(call),
                None => ControllerReply::Op(Err(ControllerFailure::NotController {
                    leader: None,
                    reason: "this node is stopping".into(),
                })),
            })
            .await;
            match answered.map(|reply| serde_json::to_value(&reply)) {
                Ok(Ok(value)) => QuorumResponse::Controller(value),
                Ok(Err(e)) => QuorumResponse::Unavailable(format!("encoding the answer: {e}")),
                Err(e) => QuorumResponse::Unavailable(format!("the controller failed: {e}")),
            }
        })
    }
}

//! The simulated network: every message between nodes and the controller waits here until the scheduler
//! delivers it (the oldest, or any other: a reordering), or drops it. Nothing is ever duplicated. An answer
//! names the incarnation of the node that asked, so one reaching a restarted process is discarded, as a
//! reply on a closed connection would be.

use bytes::Bytes;
use ferrite_log::EpochEndOffset;
use ferrite_metadata::PartitionRecord;
use ferrite_replication::{LeaderEpoch, NodeId, Offset};

use crate::node::isr_change::AlterPartitionRequest;

/// Who a message is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Address {
    Node(NodeId),
    Controller,
}

/// A leader's answer to a follower's Fetch, as the fetch handler would build it.
#[derive(Debug, Clone)]
pub enum FetchAnswer {
    /// Whole batches from the fetch offset (maybe none), the leader's high watermark and log start.
    Records {
        bytes: Bytes,
        high_watermark: Offset,
        log_start: Offset,
    },
    /// OFFSET_OUT_OF_RANGE: the fetch offset is outside the leader's log.
    OffsetOutOfRange { log_start: Offset },
    /// Any other error code (not the leader, a fenced or unknown epoch, not a replica): back off and retry.
    Refused,
}

#[derive(Debug, Clone)]
pub enum Message {
    /// Follower to leader: Fetch with the follower's id in the ReplicaState.
    Fetch {
        from: NodeId,
        incarnation: u64,
        round: u64,
        current_epoch: LeaderEpoch,
        fetch_offset: Offset,
    },
    FetchAnswer {
        incarnation: u64,
        round: u64,
        answer: FetchAnswer,
    },
    /// Follower to leader: OffsetForLeaderEpoch for the follower's latest epoch.
    EpochQuery {
        from: NodeId,
        incarnation: u64,
        round: u64,
        current_epoch: LeaderEpoch,
        latest_epoch: LeaderEpoch,
    },
    /// `None`: refused (this node does not lead in the epoch the follower named).
    EpochAnswer {
        incarnation: u64,
        round: u64,
        answer: Option<EpochEndOffset>,
    },
    /// Leader to controller.
    AlterPartition {
        incarnation: u64,
        id: u64,
        request: AlterPartitionRequest,
    },
    AlterPartitionAnswer {
        incarnation: u64,
        id: u64,
        accepted: bool,
    },
    /// A (re)started broker to the controller, and the controller's acknowledgement.
    Register {
        node: NodeId,
        incarnation: u64,
    },
    Registered {
        incarnation: u64,
    },
    Heartbeat {
        node: NodeId,
        incarnation: u64,
    },
    /// The controller does not know this incarnation: register again.
    HeartbeatRefused {
        incarnation: u64,
    },
    /// Controller to broker: the partition's record at metadata offset `offset`.
    Metadata {
        offset: u64,
        record: PartitionRecord,
    },
}

#[derive(Debug, Clone)]
pub struct Envelope {
    pub to: Address,
    pub message: Message,
}

/// Messages in flight, oldest first.
#[derive(Debug, Default)]
pub struct Network {
    in_flight: Vec<Envelope>,
}

impl Network {
    pub fn send(&mut self, to: Address, message: Message) {
        self.in_flight.push(Envelope { to, message });
    }

    pub fn len(&self) -> usize {
        self.in_flight.len()
    }

    pub fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// Takes the message at `index` (0 is the oldest) out of the network, to deliver or to drop.
    pub fn take(&mut self, index: usize) -> Option<Envelope> {
        (index < self.in_flight.len()).then(|| self.in_flight.remove(index))
    }

    /// Drops every message for `node` (it crashed: nothing it was sent reaches the new process; what it
    /// sent is still on the wire).
    pub fn forget_node(&mut self, node: NodeId) -> usize {
        let before = self.in_flight.len();
        self.in_flight.retain(|e| e.to != Address::Node(node));
        before - self.in_flight.len()
    }
}

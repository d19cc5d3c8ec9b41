//! The simulated network: every message between nodes and the controller waits here until the scheduler
//! delivers it (the oldest, or any other: a reordering), or drops it. Only requests to the controller are
//! ever duplicated (a retry of the forwarding layer). A message
//! for a node that is down is lost (connection refused), and so is every message waiting for a node when it
//! crashes (its connections die with it), so a request never reaches a later incarnation. An answer names the
//! incarnation of the node that asked, so one reaching a restarted process is discarded too.

use std::collections::BTreeSet;
use std::time::Instant;

use bytes::Bytes;
use ferrite_log::EpochEndOffset;
use ferrite_metadata::PartitionRecord;
use ferrite_replication::{LeaderEpoch, NodeId, Offset};

use crate::node::isr_change::AlterPartitionRequest;

/// Who sends or receives a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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
    /// `execute` returns only once this node applied the metadata up to the change, so an acceptance
    /// carries that metadata.
    AlterPartitionAnswer {
        incarnation: u64,
        id: u64,
        accepted: Result<(u64, PartitionRecord), ferrite_replication::IsrProposalFailure>,
    },
    /// A (re)started broker to the controller, and the controller's acknowledgement.
    Register {
        node: NodeId,
        incarnation: u64,
    },
    /// The registration is committed; the broker applies the metadata up to it before it serves.
    Registered {
        incarnation: u64,
        offset: u64,
        record: PartitionRecord,
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
    pub from: Address,
    pub to: Address,
    /// A retried request is sent again only after a while.
    pub not_before: Option<Instant>,
    pub message: Message,
}

impl Envelope {
    /// One line, for traces and failure reports.
    pub fn describe(&self) -> String {
        let e = self;
        let what = match &e.message {
            Message::Fetch {
                from,
                current_epoch,
                fetch_offset,
                ..
            } => {
                format!("Fetch from {from} epoch {current_epoch} at {fetch_offset}")
            }
            Message::FetchAnswer { round, answer, .. } => match answer {
                FetchAnswer::Records {
                    bytes,
                    high_watermark,
                    ..
                } => format!(
                    "FetchAnswer round {round}: {} bytes, high watermark {high_watermark}",
                    bytes.len()
                ),
                other => format!("FetchAnswer round {round}: {other:?}"),
            },
            Message::Metadata { offset, record } => format!(
                "Metadata {offset}: leader {:?} epoch {} isr {:?}",
                record.leader, record.leader_epoch, record.isr
            ),
            other => format!("{other:?}"),
        };
        format!("{:?} -> {:?}: {what}", e.from, e.to)
    }
}

/// Messages in flight, oldest first.
#[derive(Debug, Default)]
pub struct Network {
    in_flight: Vec<Envelope>,
    down: BTreeSet<NodeId>,
}

impl Network {
    pub fn send(&mut self, from: Address, to: Address, message: Message) {
        if let Address::Node(node) = to {
            if self.down.contains(&node) {
                return;
            }
        }
        self.in_flight.push(Envelope {
            from,
            to,
            not_before: None,
            message,
        });
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

    /// One line per message in flight, for failure reports.
    pub fn describe(&self) -> Vec<String> {
        self.in_flight.iter().map(Envelope::describe).collect()
    }

    /// Sends the message at `index` again, not before `at`; returns whether there was one.
    pub fn duplicate(&mut self, index: usize, at: Instant) -> bool {
        match self.in_flight.get(index).cloned() {
            Some(mut copy) => {
                copy.not_before = Some(at);
                self.in_flight.push(copy);
                true
            }
            None => false,
        }
    }

    /// Indexes of the messages for the controller.
    pub fn to_controller(&self) -> Vec<usize> {
        self.in_flight
            .iter()
            .enumerate()
            .filter(|(_, e)| e.to == Address::Controller)
            .map(|(i, _)| i)
            .collect()
    }

    pub fn get(&self, index: usize) -> Option<&Envelope> {
        self.in_flight.get(index)
    }

    /// The index of the oldest message `matches` picks.
    pub fn position(&self, matches: impl Fn(&Envelope) -> bool) -> Option<usize> {
        self.in_flight.iter().position(matches)
    }

    /// The index of the newest message `matches` picks.
    pub fn position_last(&self, matches: impl Fn(&Envelope) -> bool) -> Option<usize> {
        self.in_flight.iter().rposition(matches)
    }

    /// Indexes of the messages that can arrive now, oldest first: not for a stalled node, not on a slow link,
    /// not a retry still waiting to be sent.
    pub fn deliverable(
        &self,
        stalled: &BTreeSet<NodeId>,
        slow: &BTreeSet<(Address, Address)>,
        now: Instant,
    ) -> Vec<usize> {
        self.in_flight
            .iter()
            .enumerate()
            .filter(|(_, e)| {
                !matches!(e.to, Address::Node(n) if stalled.contains(&n))
                    && !slow.contains(&(e.from, e.to))
                    && e.not_before.is_none_or(|at| at <= now)
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// `node` crashed: every message for it is lost until it is up again (what it sent is still on the wire).
    pub fn node_down(&mut self, node: NodeId) {
        self.in_flight.retain(|e| e.to != Address::Node(node));
        self.down.insert(node);
    }

    pub fn node_up(&mut self, node: NodeId) {
        self.down.remove(&node);
    }
}

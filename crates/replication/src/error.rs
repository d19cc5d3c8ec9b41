//! Why a partition request cannot be served here; the server maps each to the Kafka error a client acts on.

use crate::ids::{LeaderEpoch, NodeId};
use ferrite_log::LogError;

#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// UNKNOWN_TOPIC_OR_PARTITION: this node has no replica of it.
    #[error("no replica of {topic}-{partition} on this node")]
    UnknownTopicOrPartition { topic: String, partition: i32 },
    /// NOT_LEADER_OR_FOLLOWER: the client must refresh its metadata.
    #[error("this node is not the leader of {topic}-{partition} (it is {role})")]
    NotLeader {
        topic: String,
        partition: i32,
        role: &'static str,
        leader: Option<NodeId>,
    },
    /// FENCED_LEADER_EPOCH: the client's view of the leadership is older than ours.
    #[error("leader epoch {requested} is older than the current {current}")]
    FencedLeaderEpoch {
        requested: LeaderEpoch,
        current: LeaderEpoch,
    },
    /// UNKNOWN_LEADER_EPOCH: the client knows a newer leadership than this node does yet.
    #[error("leader epoch {requested} is newer than the current {current}")]
    UnknownLeaderEpoch {
        requested: LeaderEpoch,
        current: LeaderEpoch,
    },
    /// A role change older than the role in force (stale metadata): refused, nothing changes.
    #[error("{topic}-{partition}: cannot go from {from:?} to {to:?}")]
    StaleRole {
        topic: String,
        partition: i32,
        from: Box<crate::Role>,
        to: Box<crate::Role>,
    },
    /// NOT_LEADER_OR_FOLLOWER, to a replica: a follower's operation (a replica append, a truncation) on a
    /// replica that no longer follows, or a fetch from a node that is not a replica of the partition.
    #[error("{topic}-{partition}: {reason}")]
    NotFollower {
        topic: String,
        partition: i32,
        reason: String,
    },
    /// REQUEST_TIMED_OUT: the in-sync replicas did not all get the records in time.
    #[error("{topic}-{partition}: not committed by the in-sync replicas within {waited_ms} ms")]
    NotCommitted {
        topic: String,
        partition: i32,
        waited_ms: u64,
    },
    #[error(transparent)]
    Log(#[from] LogError),
}

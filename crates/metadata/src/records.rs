//! Metadata records: every change to the cluster's metadata is one of these, applied in order. They are the
//! unit the metadata log (the Raft quorum, later) replicates, and replaying them from the start (or from a
//! snapshot, which is itself a list of records) rebuilds the image. The shapes follow KRaft's records
//! (`TopicRecord`, `PartitionRecord`, `ConfigRecord`, `RegisterBrokerRecord`, `ProducerIdsRecord`, ...).

use ferrite_replication::{LeaderEpoch, NodeId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One change to the cluster metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MetadataRecord {
    /// The cluster's id; written once, first.
    Cluster { cluster_id: String },
    /// A broker announces itself (again after a restart: a new incarnation).
    RegisterBroker(BrokerRegistration),
    /// A broker leaves the cluster for good.
    UnregisterBroker { node_id: NodeId },
    /// The controller stopped hearing from a broker: it is left out of Metadata answers and leads nothing.
    FenceBroker { node_id: NodeId },
    /// A fenced broker is heard from again.
    UnfenceBroker { node_id: NodeId },
    /// A topic is created; its partitions follow as `Partition` records.
    Topic { name: String, topic_id: Uuid },
    /// A partition's assignment, whole: written when it is created and whenever it changes.
    Partition(PartitionRecord),
    /// A topic and all its partitions are deleted.
    RemoveTopic { topic_id: Uuid },
    /// A config is set (`value: Some`) or removed (`value: None`).
    Config {
        resource: ConfigResource,
        name: String,
        value: Option<String>,
    },
    /// Producer ids below `next_producer_id` are taken: a broker was handed a block ending there.
    ProducerIds {
        node_id: NodeId,
        next_producer_id: i64,
    },
}

/// A broker as it registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    pub node_id: NodeId,
    /// A fresh id every time the process starts, so a restart is told from a duplicate.
    pub incarnation_id: Uuid,
    /// Where clients reach it.
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
    /// Kafka's broker epoch: one more than the previous registration's, set by the controller.
    #[serde(default)]
    pub epoch: i64,
}

/// A partition's replicas and leadership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    pub topic_id: Uuid,
    pub partition: i32,
    pub replicas: Vec<NodeId>,
    pub isr: Vec<NodeId>,
    /// `None` when no replica can lead (Kafka's leader -1).
    pub leader: Option<NodeId>,
    pub leader_epoch: LeaderEpoch,
    /// Bumped by every change of this partition's record.
    pub partition_epoch: i32,
    /// A reassignment in progress (AlterPartitionReassignments): `replicas` holds the old and the new replicas
    /// until every added one is in sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reassignment: Option<Reassignment>,
}

/// Which of a partition's replicas a reassignment adds and which it will remove; the target is `replicas`
/// without `removing`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reassignment {
    pub adding: Vec<NodeId>,
    pub removing: Vec<NodeId>,
}

/// What a config record is about, as Kafka's ConfigResource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ConfigResource {
    Topic(String),
    /// `None`: the cluster-wide default; `Some`: one broker.
    Broker(Option<NodeId>),
    Group(String),
}

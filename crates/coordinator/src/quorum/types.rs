//! What the metadata quorum replicates, in openraft's terms.

use ferrite_metadata::MetadataRecord;
use serde::{Deserialize, Serialize};
use std::io::Cursor;

/// A node of the quorum: voters and learners (brokers following the metadata log) alike.
pub type NodeId = u64;

/// One committed change of the metadata: the records a controller decision wrote, applied together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataCommand {
    pub records: Vec<MetadataRecord>,
}

/// What applying a command answers: where it is in the log, so the writer can wait until its own node has
/// applied it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandApplied {
    pub index: u64,
}

openraft::declare_raft_types!(
    /// The metadata quorum's type configuration.
    pub MetadataRaftConfig:
        D = MetadataCommand,
        R = CommandApplied,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<MetadataRaftConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Entry = openraft::Entry<MetadataRaftConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type Raft = openraft::Raft<MetadataRaftConfig>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, openraft::BasicNode>;
pub type StoredMembership = openraft::StoredMembership<NodeId, openraft::BasicNode>;

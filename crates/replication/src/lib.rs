//! `ferrite-replication`: the partitions a node holds, with their roles and high watermarks.
//!
//! ```text
//! ReplicaManager          every replica on this node; opened, given roles and removed as the metadata says
//!   └── Partition         one replica: log + role + high watermark + waiters
//!         ├── role        Leader { epoch, replicas, isr, .. } | Follower { epoch, leader } | Offline
//!         ├── high_watermark   the rule, as one pure function
//!         ├── leader_side      followers' positions, ISR proposals, acks=all status
//!         │     └── followers  what the leader knows of each follower; lagging / caught-up rules
//!         ├── follower_side    replica appends, the leader's high watermark, truncation
//!         └── waiters     long polls and acks woken when the high watermark moves (or the leader appends)
//! ids                     NodeId, LeaderEpoch, Offset
//! ```
//! The server's replica fetcher moves records from leaders to followers; this crate holds the state and the
//! rules. With one replica the high watermark is the log end (or, in durable mode, the synced offset).

mod error;
mod follower_side;
pub mod followers;
pub mod high_watermark;
mod ids;
mod leader_side;
mod partition;
mod replica_manager;
mod role;
#[cfg(test)]
mod test_support;
mod waiters;

pub use error::ReplicaError;
pub use ids::{LeaderEpoch, NodeId, Offset};
pub use leader_side::{AckStatus, IsrProposal, IsrProposalFailure};
pub use partition::Partition;
pub use replica_manager::{PartitionChange, ReplicaManager, TopicPartition};
pub use role::{FollowerState, LeaderState, Role};

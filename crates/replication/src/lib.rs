//! `ferrite-replication`: the partitions a node holds, with their roles and high watermarks.
//!
//! ```text
//! ReplicaManager          every replica on this node; opened, given roles and removed as the metadata says
//!   └── Partition         one replica: log + role + high watermark + waiters
//!         ├── role        Leader { epoch, isr, .. } | Follower { epoch, leader } | Offline, allowed changes
//!         ├── high_watermark   the rule, as one pure function
//!         └── waiters     long polls woken when the high watermark moves
//! ids                     NodeId, LeaderEpoch, Offset
//! ```
//! Today every partition has one replica, so the high watermark is the log end (or, in durable mode, the
//! synced offset): the one-replica case of the same code that followers will extend.

mod error;
pub mod high_watermark;
mod ids;
mod partition;
mod replica_manager;
mod role;
mod waiters;

pub use error::ReplicaError;
pub use ids::{LeaderEpoch, NodeId, Offset};
pub use partition::Partition;
pub use replica_manager::{PartitionChange, ReplicaManager, TopicPartition};
pub use role::{FollowerState, LeaderState, Role};

//! The metadata quorum: Kafka's KRaft, with openraft underneath. Every metadata change is a command of
//! records committed through Raft; every node applies committed commands in log order to its image.
//!
//! ```text
//!   types          the type configuration: commands (records), node ids, entries
//!   log_store      the Raft log in a ferrite-log partition (__cluster_metadata-0), vote and commit files
//!   state_machine  the metadata image, snapshots, and what was applied, sent to the node in order
//!   rpc            the controller listener's wire: openraft's RPCs, brokers' fetches, controller requests
//!   durable_file   small JSON files written atomically and fsynced
//!   reserve        space held back so a full disk cannot stop the metadata log
//! ```

// openraft's traits return its `StorageError`, which is large; helpers return it too rather than convert.
#![allow(clippy::result_large_err)]

mod durable_file;
pub mod log_store;
mod reserve;
pub mod rpc;
pub mod state_machine;
pub mod types;

pub use log_store::LogStore;
pub use state_machine::{Applied, StateMachine};
pub use types::{CommandApplied, MetadataCommand, MetadataRaftConfig, NodeId, Raft};

#[cfg(test)]
mod tests;

//! `ferrite-server`: the broker.
//!
//! ```text
//! main ──> config (file < env < flags) ──> Node::open (metadata, partition logs, recovery)
//!      ──> network::serve ──> connection ──> handlers::dispatch ──> broker / ferrite-log
//!      ──> broker::maintenance (retention, flush.ms, checkpoints)
//! ```

pub mod authz;
pub mod config;
pub mod groups;
pub mod handlers;
pub mod network;
pub mod node;
pub mod replica_fetcher;
#[cfg(test)]
mod replication_model;
pub mod run;
pub mod sys;

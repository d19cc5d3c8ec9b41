//! `ferrite-metadata`: the cluster's metadata as records, the image they build, and the deltas that say what
//! a batch of records changed.
//!
//! ```text
//! records   MetadataRecord: Cluster, RegisterBroker, Topic, Partition, RemoveTopic, Config, ProducerIds
//!    │ applied in order (MetadataImage::apply_all)
//!    ▼
//! image     MetadataImage: brokers, topics with partition assignments, configs, producer-id high mark
//!    │ + delta (MetadataDelta): created / deleted topics, changed partitions and configs
//!    ▼
//! the node: replica manager, group coordinator and caches apply the delta
//! ```
//! Where records come from and where they are kept is not this crate's business: today one node writes
//! them and keeps the image in its metadata file; with the Raft quorum they are the replicated log.

mod delta;
mod image;
mod records;
mod shared;

pub use delta::MetadataDelta;
pub use image::{Configs, ImageError, MetadataImage, TopicImage};
pub use records::{
    BrokerRegistration, ConfigResource, MetadataRecord, PartitionRecord, Reassignment,
};
pub use shared::SharedImage;

#[cfg(test)]
mod tests;

//! A topic as handlers see it: what the metadata image says of it, with its effective config worked out. The
//! partitions themselves are in the replica manager (this node's replicas) and in the image (assignments).

use crate::config::topic::{EffectiveTopicConfig, TopicOverrides};
pub use ferrite_replication::Partition;

/// Immutable: a change to the topic (partitions added, configs altered, broker defaults changed) builds a
/// new one.
#[derive(Debug, Clone)]
pub struct Topic {
    pub name: String,
    pub id: uuid::Uuid,
    pub partition_count: i32,
    /// The topic's own configs.
    pub overrides: TopicOverrides,
    /// Overrides on top of the broker's topic defaults.
    pub effective: EffectiveTopicConfig,
}

impl Topic {
    /// Kafka marks topics whose names start with `__` (such as `__consumer_offsets`) internal.
    pub fn is_internal(&self) -> bool {
        self.name.starts_with("__")
    }

    pub fn has_partition(&self, index: i32) -> bool {
        (0..self.partition_count).contains(&index)
    }
}

//! A topic and its partitions as the broker serves them.

use crate::config::topic::{EffectiveTopicConfig, TopicOverrides};
pub use ferrite_replication::Partition;
use std::sync::Arc;

/// A topic: immutable once built; a change (partitions added, configs altered) builds a new `Topic` that
/// shares the existing partitions.
#[derive(Debug)]
pub struct Topic {
    pub name: String,
    pub id: uuid::Uuid,
    pub partitions: Vec<Arc<Partition>>,
    pub overrides: TopicOverrides,
    pub effective: EffectiveTopicConfig,
}

impl Topic {
    pub fn partition(&self, index: i32) -> Option<&Arc<Partition>> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.get(i))
    }

    /// Kafka marks topics whose names start with `__` (such as `__consumer_offsets`) internal.
    pub fn is_internal(&self) -> bool {
        self.name.starts_with("__")
    }
}

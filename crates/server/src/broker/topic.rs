//! A topic and its partitions as the broker serves them.

use crate::config::topic::{EffectiveTopicConfig, TopicOverrides};
use ferrite_log::{FlushPolicy, PartitionLog};
use std::sync::Arc;

/// One partition this broker leads (single node: all of them).
#[derive(Debug)]
pub struct Partition {
    pub topic: String,
    pub index: i32,
    pub log: Arc<PartitionLog>,
    /// Leader epoch stamped into produced batches; 0 until leadership can move.
    pub leader_epoch: i32,
    /// Long-polling fetches to wake when this partition's high watermark moves.
    pub waiters: super::data_waiters::DataWaiters,
}

impl Partition {
    /// Offset below which records are visible to consumers.
    ///
    /// With a single replica Kafka's high watermark is the log end. In durable mode Ferrite holds it at the
    /// flushed offset instead, so a consumer never reads a record that a crash could still take back.
    pub fn high_watermark(&self) -> i64 {
        if self.log.config().flush == FlushPolicy::Durable {
            self.log.recovery_point().min(self.log.log_end_offset())
        } else {
            self.log.log_end_offset()
        }
    }
}

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

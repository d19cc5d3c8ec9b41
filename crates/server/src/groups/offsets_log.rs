//! The `__consumer_offsets` topic as the coordinator's durable state: each partition is replayed when this
//! node becomes its leader, appended to for every commit and group change while it leads, and dropped when
//! it stops leading.
//!
//! It is an ordinary topic written through the partition log (so recovery, flush policy and fetch work as for
//! any topic), with `cleanup.policy=compact` so time and size retention never delete commits. There is no log
//! cleaner yet; `compaction` bounds the topic by rewriting outgrown partitions from the live state.

use crate::config::topic::TopicOverrides;
use crate::node::Partition;
use bytes::BytesMut;
use ferrite_log::batch::{self, BatchHeader};
use ferrite_log::batch_builder::{encode_batch, RecordSpec};
use ferrite_log::{AppendInfo, LogError};
use ferrite_replication::ReplicaError;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, RwLock};

pub const TOPIC: &str = "__consumer_offsets";
/// Kafka's `offsets.topic.segment.bytes` default: smaller segments than user topics, so compaction (when it
/// exists) can clean them sooner.
const SEGMENT_BYTES: &str = "104857600";
/// How much of a partition replay reads at a time.
const REPLAY_CHUNK_BYTES: u64 = 4 << 20;

/// One record to append: a key and a value, or a tombstone (no value).
pub type Record = (Vec<u8>, Option<Vec<u8>>);

/// The partitions of `__consumer_offsets` this node leads and has loaded: it coordinates exactly the groups
/// that hash to them.
#[derive(Debug, Default)]
pub struct OffsetsLog {
    /// The topic's partition count (0 until the topic exists); groups hash over it.
    partition_count: AtomicI32,
    loaded: RwLock<BTreeMap<i32, Arc<Partition>>>,
}

/// What replay found, for the start-up log line.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReplayStats {
    pub records: u64,
    pub bytes: u64,
}

/// The configs `__consumer_offsets` is created with: compacted (never deleted by retention), with Kafka's
/// smaller segments.
pub fn offsets_topic_overrides() -> TopicOverrides {
    let mut overrides = TopicOverrides::new();
    overrides.insert("cleanup.policy".into(), "compact".into());
    overrides.insert("segment.bytes".into(), SEGMENT_BYTES.into());
    overrides
}

impl OffsetsLog {
    pub fn partition_count(&self) -> i32 {
        self.partition_count.load(Ordering::Acquire)
    }

    fn loaded(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<i32, Arc<Partition>>> {
        self.loaded.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The partition index of a group, by Kafka's hash of the group id (`None` before the topic exists).
    pub fn index_for(&self, group_id: &str) -> Option<i32> {
        let count = self.partition_count();
        (count > 0).then(|| ferrite_coordinator::offsets::partition_for_group(group_id, count))
    }

    /// The partition holding a group's records, if this node has it loaded (coordinates the group).
    pub fn partition_for(&self, group_id: &str) -> Option<Arc<Partition>> {
        self.partition(self.index_for(group_id)?)
    }

    /// Partition `index`, if it is loaded here.
    pub fn partition(&self, index: i32) -> Option<Arc<Partition>> {
        self.loaded().get(&index).cloned()
    }

    /// The loaded partitions' indexes.
    pub fn loaded_indexes(&self) -> Vec<i32> {
        self.loaded().keys().copied().collect()
    }

    /// Partition `index` of a topic of `count` partitions is now loaded here.
    pub fn insert(&self, index: i32, count: i32, partition: Arc<Partition>) {
        self.partition_count.store(count, Ordering::Release);
        self.loaded
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(index, partition);
    }

    /// Partition `index` is no longer coordinated here; returns whether it was.
    pub fn remove(&self, index: i32) -> bool {
        self.loaded
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&index)
            .is_some()
    }

    /// Calls `visit(key, value)` for every record of one partition, in log order.
    pub fn replay(
        partition: &Partition,
        mut visit: impl FnMut(&[u8], Option<&[u8]>),
    ) -> Result<ReplayStats, LogError> {
        let mut stats = ReplayStats::default();
        let log = partition.log();
        let end = log.log_end_offset();
        let mut offset = log.log_start_offset();
        while offset < end {
            let read = log.read(offset, REPLAY_CHUNK_BYTES, end, true)?;
            if read.slices.is_empty() || read.next_offset <= offset {
                break;
            }
            for slice in &read.slices {
                let bytes = slice.read_to_vec().map_err(|e| LogError::Io {
                    path: log.dir().to_path_buf(),
                    source: e,
                })?;
                stats.bytes += bytes.len() as u64;
                for (position, header) in batch::batches(&bytes) {
                    let end = (position + header.total_size()).min(bytes.len());
                    stats.records += replay_batch(&header, &bytes[position..end], &mut visit);
                }
            }
            offset = read.next_offset;
        }
        Ok(stats)
    }

    /// Appends records for one group as one batch, without waiting for durability; returns the partition (to
    /// wait on with [`wait_committed`]) and where the batch landed. A group this node does not coordinate (its
    /// partition moved away) is NOT_LEADER, which callers answer as NOT_COORDINATOR.
    pub fn append(
        &self,
        group_id: &str,
        records: &[Record],
        now_ms: i64,
    ) -> Result<(Arc<Partition>, AppendInfo), ReplicaError> {
        let partition = self
            .partition_for(group_id)
            .ok_or_else(|| ReplicaError::NotLeader {
                topic: TOPIC.to_string(),
                partition: self.index_for(group_id).unwrap_or(-1),
                role: "not loaded",
                leader: None,
            })?;
        let info = append_to(&partition, records, now_ms)?;
        Ok((partition, info))
    }
}

/// Appends records to one partition as one batch, as its leader, without waiting for durability (the
/// partition stamps its leader epoch into the batch).
pub fn append_to(
    partition: &Partition,
    records: &[Record],
    now_ms: i64,
) -> Result<AppendInfo, ReplicaError> {
    let specs: Vec<RecordSpec<'_>> = records
        .iter()
        .map(|(key, value)| RecordSpec {
            key: Some(key),
            value: value.as_deref(),
            headers: vec![],
            timestamp: now_ms,
        })
        .collect();
    let mut payload = BytesMut::new();
    encode_batch(&mut payload, &specs, -1, None);
    partition.append_as_leader(payload.freeze())
}

/// Kafka's `offsets.commit.timeout.ms`: how long a commit waits for the in-sync replicas.
const COMMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(5000);

/// Blocks until an append is acknowledged under its topic's flush policy (see
/// [`Partition::wait_acknowledged`]) and committed by the partition's in-sync replicas, as Kafka writes
/// commits with acks=all: a commit answered before its followers have it could be lost with its coordinator.
pub fn wait_committed(partition: &Partition, info: &AppendInfo) -> Result<(), ReplicaError> {
    partition.wait_acknowledged(info)?;
    let end = ferrite_replication::Offset(info.last_offset + 1);
    if partition.wait_high_watermark_blocking(end, COMMIT_TIMEOUT) {
        return Ok(());
    }
    if partition.check_leader(None).is_err() {
        return Err(ReplicaError::NotLeader {
            topic: TOPIC.to_string(),
            partition: partition.index(),
            role: "no longer leader",
            leader: None,
        });
    }
    Err(ReplicaError::NotCommitted {
        topic: TOPIC.to_string(),
        partition: partition.index(),
        waited_ms: COMMIT_TIMEOUT.as_millis() as u64,
    })
}

/// Visits one batch's records; a batch that cannot be read is logged and skipped (its records were validated
/// when written, so this means damage recovery did not catch). Returns how many records were visited.
fn replay_batch(
    header: &BatchHeader,
    batch: &[u8],
    visit: &mut impl FnMut(&[u8], Option<&[u8]>),
) -> u64 {
    if header.is_control() {
        return 0;
    }
    let records = match batch::stored_records_of(header, batch) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(offset = header.base_offset, error = %e, "unreadable __consumer_offsets batch skipped");
            return 0;
        }
    };
    let mut count = 0;
    let walked = batch::walk_records(header, &records, |meta| {
        let key = meta.key.and_then(|k| records.get(k));
        let value = meta.value.and_then(|v| records.get(v));
        if let Some(key) = key {
            visit(key, value);
            count += 1;
        }
        Ok(())
    });
    if let Err(e) = walked {
        tracing::error!(offset = header.base_offset, error = %e, "malformed __consumer_offsets batch");
    }
    count
}

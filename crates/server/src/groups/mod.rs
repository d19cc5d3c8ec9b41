//! The group coordinator's runtime: it owns the groups this broker coordinates, feeds them requests and time,
//! routes the answers they release to the requests waiting for them, and keeps their state in
//! `__consumer_offsets`.
//!
//! ```text
//!   handlers ──join/sync/heartbeat/commit──▶ GroupCoordinator ──(pure decisions)──▶ ferrite-coordinator
//!       ▲                                      │  │                                     (ClassicGroup,
//!       └──── oneshot answers (Join/Sync) ─────┘  └── records ──▶ __consumer_offsets     ConsumerGroup,
//!                                                                                         OffsetStore)
//!   tick task (every 100 ms): session and join deadlines      start-up: replay the topic
//!   expiry task (offsets.retention.check.interval.ms): tombstones for expired offsets, then outgrown
//!   partitions rewritten from the live state (compaction.rs)
//! ```
//! Committed offsets change only by applying a record's bytes (the same code replays the topic at start-up);
//! a commit is answered once its record is durable under the topic's flush policy, and so is a KIP-848
//! heartbeat that changed its group's state (consumer_ops.rs).

mod classic_ops;
mod compaction;
mod consumer_ops;
mod offset_ops;
pub mod offsets_log;

#[cfg(test)]
mod tests;

use crate::config::group::{group_timings, GroupTimings};
use crate::config::BrokerConfig;
use crate::node::{Partition, TopicError};
use consumer_ops::ConsumerEntry;
use ferrite_coordinator::consumer_group_records::{ConsumerGroupImage, ConsumerGroupRecord};
use ferrite_coordinator::group::{
    ClassicGroup, ConsumerGroup, ConsumerGroupConfig, GroupLimits, GroupState, JoinResponse,
};
use ferrite_coordinator::group_metadata::{self, GroupSnapshot};
use ferrite_coordinator::offsets::{decode_key, OffsetStore, RecordError, RecordKey};
use ferrite_metadata::{ConfigResource, SharedImage};
use offsets_log::{OffsetsLog, Record};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::oneshot;

pub use classic_ops::{join_error, GroupDescription, JoinWait, SyncWait};
pub use consumer_ops::{HeartbeatOutcome, ImageTopics};
pub use offset_ops::{CommitOutcome, Committer, PartitionOffset};
pub use offsets_log::{offsets_topic_overrides, TOPIC as OFFSETS_TOPIC};

/// How often session and join deadlines are checked.
pub const TICK: Duration = Duration::from_millis(100);

/// The coordinator settings, from the broker config.
#[derive(Debug, Clone)]
pub struct GroupSettings {
    pub limits: GroupLimits,
    pub offsets_retention_ms: i64,
}

impl GroupSettings {
    pub fn from_config(config: &BrokerConfig) -> Self {
        GroupSettings {
            limits: GroupLimits {
                min_session_timeout_ms: config.group_min_session_timeout_ms,
                max_session_timeout_ms: config.group_max_session_timeout_ms,
                initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
                max_size: usize::try_from(config.group_max_size).unwrap_or(usize::MAX),
            },
            offsets_retention_ms: config.offsets_retention_minutes.saturating_mul(60_000),
        }
    }
}

/// A classic group and the requests waiting on it.
#[derive(Debug)]
pub(crate) struct ClassicEntry {
    pub group: ClassicGroup,
    joins: HashMap<String, oneshot::Sender<JoinResponse>>,
    syncs: HashMap<String, oneshot::Sender<(i16, Vec<u8>)>>,
    /// The (generation, state) last written to `__consumer_offsets`.
    persisted: Option<(i32, GroupState)>,
    /// The value of that record, rewritten when the partition is compacted.
    persisted_value: Option<Vec<u8>>,
}

impl ClassicEntry {
    fn new(group: ClassicGroup) -> Self {
        ClassicEntry {
            group,
            joins: HashMap::new(),
            syncs: HashMap::new(),
            persisted: None,
            persisted_value: None,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Groups {
    pub classic: HashMap<String, ClassicEntry>,
    /// KIP-848 groups, with what `__consumer_offsets` holds for each (see `consumer_ops`).
    pub consumer: HashMap<String, ConsumerEntry>,
    pub offsets: OffsetStore,
    /// Commits appended but not yet durable, per group: OffsetFetch with `require_stable` waits them out.
    pub pending_commits: HashMap<String, usize>,
}

/// What the coordinator is started with. It holds no reference to the node: topics and group configs come
/// from the shared metadata image; the node hands it each `__consumer_offsets` partition it comes to lead.
#[derive(Debug)]
pub struct CoordinatorContext {
    pub config: BrokerConfig,
    pub metadata: Arc<SharedImage>,
}

#[derive(Debug)]
pub struct GroupCoordinator {
    settings: GroupSettings,
    consumer_config: ConsumerGroupConfig,
    /// For the broker-level group settings that per-group configs override.
    config: BrokerConfig,
    metadata: Arc<SharedImage>,
    log: OffsetsLog,
    groups: Mutex<Groups>,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl GroupCoordinator {
    /// A coordinator of no group yet: it coordinates the groups of each `__consumer_offsets` partition it is
    /// given with [`GroupCoordinator::load_partition`].
    pub fn start(context: CoordinatorContext) -> GroupCoordinator {
        let CoordinatorContext { config, metadata } = context;
        GroupCoordinator {
            settings: GroupSettings::from_config(&config),
            consumer_config: consumer_ops::consumer_config(&config),
            config,
            metadata,
            log: OffsetsLog::default(),
            groups: Mutex::new(Groups::default()),
        }
    }

    /// Whether this node coordinates a group now (leads and has loaded its `__consumer_offsets` partition).
    pub fn coordinates(&self, group_id: &str) -> bool {
        self.log.partition_for(group_id).is_some()
    }

    /// The `__consumer_offsets` partition index of a group (`None` before the topic exists).
    pub fn partition_index_for(&self, group_id: &str) -> Option<i32> {
        self.log.index_for(group_id)
    }

    /// The partitions loaded here.
    pub fn loaded_partitions(&self) -> Vec<i32> {
        self.log.loaded_indexes()
    }

    /// Becomes the coordinator of partition `index` (of `count`): rebuilds its groups and committed offsets
    /// from the partition, which this node now leads.
    pub fn load_partition(
        &self,
        index: i32,
        count: i32,
        partition: Arc<Partition>,
    ) -> Result<(), TopicError> {
        let started = std::time::Instant::now();
        let mut replayed = Replayed::default();
        let mut malformed = 0u64;
        let mut groups = self.lock();
        if self.log.partition(index).is_some() {
            return Ok(()); // Loaded by a concurrent call (start-up and the metadata applier both reconcile).
        }
        let stats = OffsetsLog::replay(&partition, |key, value| {
            if let Err(e) = replay_record(&mut groups, &mut replayed, key, value) {
                malformed += 1;
                tracing::warn!(error = %e, "skipping malformed __consumer_offsets record");
            }
        })
        .map_err(|e| TopicError::Storage(format!("replaying __consumer_offsets-{index}: {e}")))?;
        let image = self.metadata.current();
        let restored_consumer: Vec<String> = replayed.consumer.keys().cloned().collect();
        replayed.restore(
            &mut groups,
            &self.settings,
            &self.consumer_config,
            &ImageTopics(&image),
        );
        for group_id in &restored_consumer {
            if let Some(entry) = groups.consumer.get_mut(group_id) {
                let overrides = image.configs(&ConfigResource::Group(group_id.clone()));
                let timings = group_timings(&self.config, overrides);
                entry
                    .group
                    .set_timings(timings.session_timeout_ms, timings.heartbeat_interval_ms);
            }
        }
        self.log.insert(index, count, partition);
        tracing::info!(
            partition = index,
            records = stats.records,
            bytes = stats.bytes,
            malformed,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "coordinating the groups of __consumer_offsets-{index}"
        );
        drop(groups);
        self.persist_restored_consumer_groups(&restored_consumer);
        Ok(())
    }

    /// Stops coordinating partition `index` (its leadership moved): its groups and offsets are dropped here,
    /// and requests waiting on them are answered NOT_COORDINATOR so their clients find the new coordinator.
    pub fn unload_partition(&self, index: i32) {
        if !self.log.remove(index) {
            return;
        }
        let count = self.log.partition_count();
        let ours = |group_id: &str| {
            ferrite_coordinator::offsets::partition_for_group(group_id, count) == index
        };
        let mut groups = self.lock();
        let classic: Vec<String> = groups.classic.keys().filter(|g| ours(g)).cloned().collect();
        for group_id in &classic {
            if let Some(entry) = groups.classic.remove(group_id) {
                classic_ops::release_not_coordinator(entry);
            }
        }
        groups.consumer.retain(|group_id, _| !ours(group_id));
        groups.offsets.retain_groups(|group_id| !ours(group_id));
        groups.pending_commits.retain(|group_id, _| !ours(group_id));
        tracing::info!(
            partition = index,
            "no longer coordinating the groups of __consumer_offsets-{index}"
        );
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Groups> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn settings(&self) -> &GroupSettings {
        &self.settings
    }

    /// A consumer group's session timeout and heartbeat interval: the broker's, or its own configs.
    fn timings(&self, group_id: &str) -> GroupTimings {
        let image = self.metadata.current();
        group_timings(
            &self.config,
            image.configs(&ConfigResource::Group(group_id.to_string())),
        )
    }

    /// Session and join deadlines of every group; answers released by them go to their waiting requests.
    pub fn tick(&self) {
        let now = now_ms();
        {
            let mut groups = self.lock();
            for (group_id, entry) in groups.classic.iter_mut() {
                let replies = entry.group.tick(now);
                classic_ops::route(entry, replies);
                self.persist_if_changed(group_id, entry, now);
            }
        }
        self.tick_consumer_groups(now);
    }

    /// Writes a classic group's record when it reaches a state a restart can resume from (a completed
    /// generation, or empty) that was not written yet. A failed write is logged: the group goes on, and a
    /// restart would find the previous record (its members then rejoin).
    fn persist_if_changed(&self, group_id: &str, entry: &mut ClassicEntry, now: i64) {
        let current = (entry.group.generation_id(), entry.group.state());
        // A group that never had a generation (known only by commits) has nothing to resume.
        let never_formed = current == (0, GroupState::Empty);
        if !matches!(current.1, GroupState::Stable | GroupState::Empty)
            || entry.persisted == Some(current)
            || never_formed
        {
            return;
        }
        let value = group_metadata::encode_value(&entry.group.snapshot(now));
        let record: Record = (group_metadata::encode_key(group_id), Some(value.clone()));
        match self.log.append(group_id, &[record], now) {
            Ok(_) => {
                entry.persisted = Some(current);
                entry.persisted_value = Some(value);
            }
            Err(e) => {
                tracing::error!(group = group_id, error = %e, "writing group metadata failed")
            }
        }
    }

    /// The group ids this coordinator knows: groups with state, and groups known only by committed offsets.
    pub fn group_ids(&self) -> Vec<String> {
        let groups = self.lock();
        let mut ids: Vec<String> = groups.classic.keys().cloned().collect();
        ids.extend(groups.consumer.keys().cloned());
        ids.extend(groups.offsets.group_ids().map(str::to_string));
        ids.sort();
        ids.dedup();
        ids
    }
}

/// Group state found by replay: the latest record of each classic group, the records of each KIP-848 group.
#[derive(Default)]
struct Replayed {
    classic: HashMap<String, GroupSnapshot>,
    consumer: HashMap<String, ConsumerGroupImage>,
}

impl Replayed {
    /// Rebuilds the groups, as of now (sessions start over). A group id with records of both kinds is a
    /// consumer group: a classic group becomes one only while empty, and deleting writes tombstones for both.
    fn restore(
        self,
        groups: &mut Groups,
        settings: &GroupSettings,
        consumer_config: &ConsumerGroupConfig,
        topics: &ImageTopics<'_>,
    ) {
        let now = now_ms();
        for (group_id, image) in self.consumer {
            if image.is_empty() {
                continue;
            }
            let group =
                ConsumerGroup::restore(&group_id, consumer_config.clone(), &image, topics, now);
            groups.consumer.insert(
                group_id,
                ConsumerEntry {
                    group,
                    persisted: image,
                },
            );
        }
        for (group_id, snapshot) in self.classic {
            if groups.consumer.contains_key(&group_id) {
                continue;
            }
            let value = group_metadata::encode_value(&snapshot);
            let group = ClassicGroup::restore(&group_id, snapshot, settings.limits, now);
            let mut entry = ClassicEntry::new(group);
            entry.persisted = Some((entry.group.generation_id(), entry.group.state()));
            entry.persisted_value = Some(value);
            groups.classic.insert(group_id, entry);
        }
    }
}

/// Applies one replayed record: offsets to the store, group records to the latest state per group.
fn replay_record(
    groups: &mut Groups,
    replayed: &mut Replayed,
    key: &[u8],
    value: Option<&[u8]>,
) -> Result<(), RecordError> {
    match decode_key(key)? {
        RecordKey::Offset(_) => groups.offsets.apply(key, value),
        RecordKey::Group(group_id) => {
            match value {
                Some(v) => {
                    replayed
                        .classic
                        .insert(group_id, group_metadata::decode_value(v)?);
                }
                None => {
                    replayed.classic.remove(&group_id);
                }
            }
            Ok(())
        }
        RecordKey::ConsumerGroup(key) => {
            if let Some(record) = ConsumerGroupRecord::decode(&key, value)? {
                let image = replayed.consumer.entry(record.group_id).or_default();
                image.apply(record.body);
            }
            Ok(())
        }
        RecordKey::Other(_) => Ok(()),
    }
}

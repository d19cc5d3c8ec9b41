//! KIP-848 consumer-protocol groups: heartbeats (which carry joins, leaves and assignment reconciliation),
//! describe, and their timers. A group id is either classic or consumer: an empty classic group (such as one
//! known only by committed offsets) becomes a consumer group on the first consumer heartbeat.
//!
//! Their state is durable in `__consumer_offsets`, in Kafka's ConsumerGroup* records:
//! ```text
//!   heartbeat / tick (under the lock) ─▶ group.records_since(persisted image) ─▶ append ─▶ image.apply
//!   answer (outside the lock) ◀─ wait until durable ◀─┘      (nothing changed: no records, no wait)
//!   start-up: replay ─▶ image per group ─▶ ConsumerGroup::restore (sessions restart from now)
//! ```
//! Only the records of what changed are written (a member's change writes that member's records), so a
//! restarted broker (clean or kill -9) knows every group: epochs, members, target and current assignments.
//! Members that are still there go on heartbeating with their epochs and keep their partitions; those that
//! are gone expire after the session timeout. A heartbeat whose records could not be appended or synced is
//! answered COORDINATOR_NOT_AVAILABLE, and the next successful append writes what it changed.

use super::offsets_log::{wait_committed, Record};
use super::{now_ms, GroupCoordinator};
use crate::config::group::GroupTimings;
use crate::node::Partition;
use ferrite_coordinator::consumer_group_records::ConsumerGroupImage;
use ferrite_coordinator::group::consumer::{
    GroupDescription, HeartbeatRequest, HeartbeatResponse, TopicView,
};
use ferrite_coordinator::group::{ConsumerGroup, ConsumerGroupConfig};
use ferrite_log::AppendInfo;
use ferrite_metadata::MetadataImage;
use ferrite_replication::ReplicaError;
use ferrite_wire::error_code;
use std::sync::Arc;
use uuid::Uuid;

/// Records per batch: a group-wide change (a new epoch's target assignments) of a large group is split so
/// that each batch stays far below `max.message.bytes`. The target epoch record comes after the targets, so
/// a crash between batches leaves the target epoch behind the group epoch, and restore recomputes it.
const RECORDS_PER_BATCH: usize = 500;

/// Topic metadata as the metadata image has it.
pub struct ImageTopics<'a>(pub &'a MetadataImage);

impl TopicView for ImageTopics<'_> {
    fn topic(&self, name: &str) -> Option<(Uuid, i32)> {
        let topic = self.0.topic(name)?;
        Some((topic.id, topic.partition_count()))
    }

    fn topic_names(&self) -> Vec<String> {
        self.0.topics().map(|t| t.name.clone()).collect()
    }

    fn names_version(&self) -> u64 {
        self.0.topics_version()
    }
}

/// A KIP-848 group and what `__consumer_offsets` holds for it.
#[derive(Debug)]
pub(crate) struct ConsumerEntry {
    pub group: ConsumerGroup,
    /// What replaying the group's records gives: what `records_since` compares with, and what a partition
    /// rewrite writes (compaction.rs).
    pub persisted: ConsumerGroupImage,
}

impl ConsumerEntry {
    pub fn new(group: ConsumerGroup) -> Self {
        ConsumerEntry {
            group,
            persisted: ConsumerGroupImage::default(),
        }
    }
}

/// A heartbeat's answer, and the append to wait on before sending it (none when nothing was written).
pub struct HeartbeatOutcome {
    response: HeartbeatResponse,
    pending: Option<(Arc<Partition>, AppendInfo)>,
}

impl HeartbeatOutcome {
    /// Whether the answer must wait for an append to be durable ([`GroupCoordinator::finish_heartbeat`]).
    pub fn is_waiting(&self) -> bool {
        self.pending.is_some()
    }
}

impl GroupCoordinator {
    /// Runs one ConsumerGroupHeartbeat and appends the records of what it changed; the answer is sent after
    /// [`GroupCoordinator::finish_heartbeat`].
    pub fn consumer_heartbeat(
        &self,
        group_id: &str,
        request: HeartbeatRequest,
    ) -> HeartbeatOutcome {
        let now = now_ms();
        let image = self.metadata.current();
        let mut groups = self.lock();
        if let Some(classic) = groups.classic.get(group_id) {
            if classic.group.has_members() {
                let response = HeartbeatResponse {
                    error_code: error_code::GROUP_ID_NOT_FOUND,
                    error_message: Some(format!("{group_id} is a classic group with members")),
                    member_id: request.member_id,
                    ..Default::default()
                };
                return HeartbeatOutcome {
                    response,
                    pending: None,
                };
            }
            groups.classic.remove(group_id);
        }
        let config = self.consumer_config_for(group_id);
        let entry = groups
            .consumer
            .entry(group_id.to_string())
            .or_insert_with(|| ConsumerEntry::new(ConsumerGroup::new(group_id, config)));
        let response = entry
            .group
            .heartbeat(request, &ImageTopics(&image), now, || {
                Uuid::new_v4().to_string()
            });
        match self.persist_consumer(group_id, entry, now) {
            Ok(pending) => HeartbeatOutcome { response, pending },
            Err(e) => {
                tracing::error!(group = group_id, error = %e, "writing consumer group records failed");
                HeartbeatOutcome {
                    response: unavailable(response.member_id),
                    pending: None,
                }
            }
        }
    }

    /// Blocks until the heartbeat's records are durable; a failed sync turns the answer into
    /// COORDINATOR_NOT_AVAILABLE, so the client retries rather than trusting it.
    pub fn finish_heartbeat(&self, outcome: HeartbeatOutcome) -> HeartbeatResponse {
        let Some((partition, info)) = outcome.pending else {
            return outcome.response;
        };
        match wait_committed(&partition, &info) {
            Ok(()) => outcome.response,
            Err(e) => {
                tracing::error!(error = %e, "consumer group records sync failed");
                unavailable(outcome.response.member_id)
            }
        }
    }

    /// Appends the records of what changed in a group since its last append and applies them to its image;
    /// returns the last append, to wait on. After a failed batch the image holds what was written, so the
    /// next call writes the rest.
    pub(super) fn persist_consumer(
        &self,
        group_id: &str,
        entry: &mut ConsumerEntry,
        now: i64,
    ) -> Result<Option<(Arc<Partition>, AppendInfo)>, ReplicaError> {
        let records = entry.group.records_since(&entry.persisted);
        let mut last = None;
        for chunk in records.chunks(RECORDS_PER_BATCH) {
            let encoded: Vec<Record> = chunk.iter().map(|r| r.encode()).collect();
            last = Some(self.log.append(group_id, &encoded, now)?);
            for record in chunk {
                entry.persisted.apply(record.body.clone());
            }
        }
        entry.group.mark_persisted();
        Ok(last)
    }

    /// Session and revocation deadlines of consumer groups; members removed get tombstones.
    pub(super) fn tick_consumer_groups(&self, now: i64) {
        let image = self.metadata.current();
        let topics = ImageTopics(&image);
        let mut groups = self.lock();
        for (group_id, entry) in groups.consumer.iter_mut() {
            if entry.group.next_deadline_ms().is_none_or(|d| d > now) {
                continue;
            }
            let removed = entry.group.tick(now, &topics);
            if removed.is_empty() {
                continue;
            }
            tracing::info!(group = %group_id, members = ?removed, "removed consumer group members");
            if let Err(e) = self.persist_consumer(group_id, entry, now) {
                tracing::error!(group = %group_id, error = %e, "writing consumer group records failed");
            }
        }
    }

    /// Writes what restoring changed (a group whose topics moved while the coordinator was elsewhere gets a
    /// new epoch). Called after a partition is loaded, for the groups it restored.
    pub(super) fn persist_restored_consumer_groups(&self, restored: &[String]) {
        let now = now_ms();
        let mut groups = self.lock();
        for (group_id, entry) in groups
            .consumer
            .iter_mut()
            .filter(|(id, _)| restored.contains(id))
        {
            if let Err(e) = self.persist_consumer(group_id, entry, now) {
                tracing::error!(group = %group_id, error = %e, "writing restored consumer group failed");
            }
        }
    }

    /// The settings a consumer group starts with: the broker's, with the group's own configs applied.
    pub(super) fn consumer_config_for(&self, group_id: &str) -> ConsumerGroupConfig {
        let timings = self.timings(group_id);
        ConsumerGroupConfig {
            session_timeout_ms: timings.session_timeout_ms,
            heartbeat_interval_ms: timings.heartbeat_interval_ms,
            ..self.consumer_config.clone()
        }
    }

    /// A group's configs changed: its members get the new session timeout and heartbeat interval from now
    /// on (the next heartbeat's answer carries the interval; the session deadline moves at once).
    pub fn apply_group_timings(&self, group_id: &str, timings: GroupTimings) {
        if let Some(entry) = self.lock().consumer.get_mut(group_id) {
            entry
                .group
                .set_timings(timings.session_timeout_ms, timings.heartbeat_interval_ms);
        }
    }

    /// ConsumerGroupDescribe: `None` for a group that is not a consumer group.
    pub fn describe_consumer(&self, group_id: &str) -> Option<GroupDescription> {
        self.lock()
            .consumer
            .get(group_id)
            .map(|e| e.group.describe())
    }

    /// Whether `group_id` is a consumer-protocol group (classic APIs refuse it).
    pub fn is_consumer_group(&self, group_id: &str) -> bool {
        self.lock().consumer.contains_key(group_id)
    }
}

fn unavailable(member_id: String) -> HeartbeatResponse {
    HeartbeatResponse {
        error_code: error_code::COORDINATOR_NOT_AVAILABLE,
        error_message: Some("the group's state could not be written".to_string()),
        member_id,
        ..Default::default()
    }
}

/// The coordinator settings for consumer groups, from the broker config.
pub fn consumer_config(config: &crate::config::BrokerConfig) -> ConsumerGroupConfig {
    ConsumerGroupConfig {
        session_timeout_ms: config.group_consumer_session_timeout_ms,
        heartbeat_interval_ms: config.group_consumer_heartbeat_interval_ms,
        max_size: usize::try_from(config.group_max_size).unwrap_or(usize::MAX),
        ..Default::default()
    }
}

//! Committed offsets: commit, fetch, delete, expire, and group deletion. Every change is a record appended to
//! the group's `__consumer_offsets` partition and then applied to the store from its encoded bytes, the same
//! path replay takes; appends happen under the coordinator lock, so the store changes in log order.

use super::offsets_log::{wait_committed, Record};
use super::{now_ms, ClassicEntry, GroupCoordinator, Groups};
use crate::node::Partition;
use ferrite_coordinator::consumer_group_records::ConsumerGroupRecord;
use ferrite_coordinator::group::{ClassicGroup, ConsumerGroup, GroupState};
use ferrite_coordinator::group_metadata;
use ferrite_coordinator::offsets::{encode_key, encode_value, CommittedOffset, OffsetKey};
use ferrite_log::AppendInfo;
use ferrite_metadata::MetadataImage;
use ferrite_wire::error_code;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Kafka's `offset.metadata.max.bytes`.
const OFFSET_METADATA_MAX_BYTES: usize = 4096;

/// One partition of an OffsetCommit, or of an OffsetFetch answer.
#[derive(Debug, Clone)]
pub struct PartitionOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    /// On a commit, -1 stores the time the broker receives it (OffsetCommit v1 may name another time); on a
    /// fetch answer, when the offset was committed (-1: never).
    pub commit_timestamp_ms: i64,
    pub error_code: i16,
}

/// What an OffsetCommit did: per-partition errors (in request order), and the append to wait on before
/// answering (none when nothing was written).
pub struct CommitOutcome {
    pub errors: Vec<i16>,
    pending: Option<PendingCommit>,
}

struct PendingCommit {
    group_id: String,
    partition: Arc<Partition>,
    info: AppendInfo,
}

impl CommitOutcome {
    fn all(error: i16, count: usize) -> Self {
        CommitOutcome {
            errors: vec![error; count],
            pending: None,
        }
    }
}

/// Who is committing, as OffsetCommit names it.
pub struct Committer<'a> {
    pub member_id: &'a str,
    pub group_instance_id: Option<&'a str>,
    pub generation_id: i32,
}

impl GroupCoordinator {
    /// Validates and appends an OffsetCommit; answer only after [`GroupCoordinator::finish_commit`].
    pub fn commit(
        &self,
        group_id: &str,
        committer: Committer<'_>,
        offsets: &[PartitionOffset],
    ) -> CommitOutcome {
        let now = now_ms();
        let image = self.metadata.current();
        let mut groups = self.lock();
        let consumer_group = groups.consumer.get(group_id).map(|e| &e.group);
        let group_error = match groups.classic.get(group_id) {
            _ if consumer_group.is_some() => consumer_commit_error(consumer_group, &committer),
            Some(entry) => entry.group.validate_offset_commit(
                committer.member_id,
                committer.group_instance_id,
                committer.generation_id,
            ),
            None if committer.generation_id < 0 => error_code::NONE,
            None => error_code::ILLEGAL_GENERATION,
        };
        if group_error != error_code::NONE {
            return CommitOutcome::all(group_error, offsets.len());
        }
        let mut errors = Vec::with_capacity(offsets.len());
        let mut records: Vec<Record> = vec![];
        for p in offsets {
            let error = partition_error(&image, p);
            errors.push(error);
            if error == error_code::NONE {
                let key = OffsetKey {
                    group: group_id.to_string(),
                    topic: p.topic.clone(),
                    partition: p.partition,
                };
                let value = CommittedOffset {
                    offset: p.offset,
                    leader_epoch: p.leader_epoch,
                    metadata: p.metadata.clone().unwrap_or_default(),
                    commit_timestamp_ms: if p.commit_timestamp_ms == -1 {
                        now
                    } else {
                        p.commit_timestamp_ms
                    },
                };
                records.push((encode_key(&key), Some(encode_value(&value))));
            }
        }
        if records.is_empty() {
            return CommitOutcome {
                errors,
                pending: None,
            };
        }
        let (partition, info) = match self.log.append(group_id, &records, now) {
            Ok(appended) => appended,
            Err(e) => {
                tracing::error!(group = group_id, error = %e, "offset commit append failed");
                return CommitOutcome::all(error_code::COORDINATOR_NOT_AVAILABLE, offsets.len());
            }
        };
        apply(&mut groups, &records);
        if !groups.consumer.contains_key(group_id) {
            groups
                .classic
                .entry(group_id.to_string())
                .or_insert_with(|| {
                    ClassicEntry::new(ClassicGroup::new(group_id, self.settings.limits))
                });
        }
        *groups
            .pending_commits
            .entry(group_id.to_string())
            .or_default() += 1;
        CommitOutcome {
            errors,
            pending: Some(PendingCommit {
                group_id: group_id.to_string(),
                partition,
                info,
            }),
        }
    }

    /// Blocks until the commit is durable; a failed sync turns every written partition's answer into
    /// COORDINATOR_NOT_AVAILABLE, so the client retries rather than trusting it.
    pub fn finish_commit(&self, mut outcome: CommitOutcome) -> Vec<i16> {
        let Some(pending) = outcome.pending.take() else {
            return outcome.errors;
        };
        let synced = wait_committed(&pending.partition, &pending.info);
        let mut groups = self.lock();
        if let Some(n) = groups.pending_commits.get_mut(&pending.group_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                groups.pending_commits.remove(&pending.group_id);
            }
        }
        if let Err(e) = synced {
            tracing::error!(group = %pending.group_id, error = %e, "offset commit sync failed");
            for error in outcome
                .errors
                .iter_mut()
                .filter(|e| **e == error_code::NONE)
            {
                *error = error_code::COORDINATOR_NOT_AVAILABLE;
            }
        }
        outcome.errors
    }

    /// OffsetFetch for one group: the listed partitions (or every committed one when `partitions` is None).
    /// A partition without a commit answers offset -1. With `require_stable`, a group with commits still
    /// being made durable answers UNSTABLE_OFFSET_COMMIT so the client retries.
    /// OffsetFetch v9 from a KIP-848 member: its member epoch must be current (the group-level error, or NONE).
    pub fn check_fetch_member(&self, group_id: &str, member_id: &str, member_epoch: i32) -> i16 {
        match self.lock().consumer.get(group_id) {
            Some(entry) => entry.group.validate_offset_fetch(member_id, member_epoch),
            None => error_code::NONE,
        }
    }

    pub fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<Vec<(String, i32)>>,
        require_stable: bool,
    ) -> Vec<PartitionOffset> {
        let groups = self.lock();
        let unstable = require_stable && groups.pending_commits.contains_key(group_id);
        let wanted = partitions.unwrap_or_else(|| {
            groups
                .offsets
                .group(group_id)
                .map(|(k, _)| (k.topic.clone(), k.partition))
                .collect()
        });
        wanted
            .into_iter()
            .map(|(topic, partition)| {
                let key = OffsetKey {
                    group: group_id.to_string(),
                    topic,
                    partition,
                };
                let committed = groups.offsets.get(&key);
                PartitionOffset {
                    offset: committed.map_or(-1, |c| c.offset),
                    leader_epoch: committed.map_or(-1, |c| c.leader_epoch),
                    metadata: Some(committed.map(|c| c.metadata.clone()).unwrap_or_default()),
                    commit_timestamp_ms: committed.map_or(-1, |c| c.commit_timestamp_ms),
                    error_code: if unstable {
                        error_code::UNSTABLE_OFFSET_COMMIT
                    } else {
                        error_code::NONE
                    },
                    topic: key.topic,
                    partition,
                }
            })
            .collect()
    }

    /// OffsetDelete: removes a group's offsets for partitions of topics no live member subscribes to.
    /// Returns the group-level error, or per-partition errors.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<Vec<i16>, i16> {
        let now = now_ms();
        let mut groups = self.lock();
        let subscribed: Option<Subscribed> = match groups.classic.get(group_id) {
            _ if groups
                .consumer
                .get(group_id)
                .is_some_and(|e| !e.group.is_empty()) =>
            {
                Some(Subscribed::Everything)
            }
            _ if groups.consumer.contains_key(group_id) => None,
            Some(entry) if entry.group.has_members() => Some(subscribed_topics(&entry.group)),
            Some(_) => None,
            None if groups.offsets.group(group_id).next().is_some() => None,
            None => return Err(error_code::GROUP_ID_NOT_FOUND),
        };
        let mut errors = vec![];
        let mut records: Vec<Record> = vec![];
        for (topic, partition) in partitions {
            if subscribed.as_ref().is_some_and(|s| s.contains(topic)) {
                errors.push(error_code::GROUP_SUBSCRIBED_TO_TOPIC);
                continue;
            }
            errors.push(error_code::NONE);
            let key = OffsetKey {
                group: group_id.to_string(),
                topic: topic.clone(),
                partition: *partition,
            };
            if groups.offsets.get(&key).is_some() {
                records.push((encode_key(&key), None));
            }
        }
        self.write_and_apply(&mut groups, group_id, &records, now)?;
        Ok(errors)
    }

    /// DeleteGroups for one group: only a group without members can go; its offsets and its records (classic
    /// or KIP-848) get tombstones.
    pub fn delete_group(&self, group_id: &str) -> i16 {
        let now = now_ms();
        let mut groups = self.lock();
        let known_by_offsets = groups.offsets.group(group_id).next().is_some();
        if let Some(consumer) = groups.consumer.get(group_id) {
            if !consumer.group.is_empty() {
                return error_code::NON_EMPTY_GROUP;
            }
        }
        let known_as_consumer = groups.consumer.contains_key(group_id);
        match groups.classic.get(group_id) {
            Some(entry) if entry.group.has_members() => return error_code::NON_EMPTY_GROUP,
            None if !known_by_offsets && !known_as_consumer => {
                return error_code::GROUP_ID_NOT_FOUND
            }
            _ => {}
        }
        let mut records: Vec<Record> = groups
            .offsets
            .group(group_id)
            .map(|(k, _)| (encode_key(k), None))
            .collect();
        records.push((group_metadata::encode_key(group_id), None));
        if let Some(consumer) = groups.consumer.get(group_id) {
            let tombstones = consumer.persisted.tombstones(group_id);
            records.extend(tombstones.iter().map(ConsumerGroupRecord::encode));
        }
        if let Err(code) = self.write_and_apply(&mut groups, group_id, &records, now) {
            return code;
        }
        if let Some(mut entry) = groups.classic.remove(group_id) {
            let _ = entry.group.delete();
        }
        if let Some(mut entry) = groups.consumer.remove(group_id) {
            let _ = entry.group.delete();
        }
        error_code::NONE
    }

    /// `offsets.retention.minutes`: tombstones for offsets of groups without members, committed longer ago
    /// than the retention; an empty group left with no offsets is deleted too. Returns how many expired.
    pub fn expire_offsets(&self) -> usize {
        self.expire_offsets_at(now_ms())
    }

    /// [`GroupCoordinator::expire_offsets`] as of `now` (tests move time forward).
    pub fn expire_offsets_at(&self, now: i64) -> usize {
        let mut groups = self.lock();
        let expired = {
            let (classic, consumer) = (&groups.classic, &groups.consumer);
            groups
                .offsets
                .expired(now, self.settings.offsets_retention_ms, |g| {
                    classic.get(g).is_some_and(|e| e.group.has_members())
                        || consumer.get(g).is_some_and(|c| !c.group.is_empty())
                })
        };
        let mut by_group: std::collections::BTreeMap<String, Vec<Record>> = Default::default();
        for key in &expired {
            by_group
                .entry(key.group.clone())
                .or_default()
                .push((encode_key(key), None));
        }
        for (group_id, mut records) in by_group {
            let emptied = groups.offsets.group(&group_id).count() == records.len();
            let group_is_empty = groups
                .classic
                .get(&group_id)
                .is_none_or(|e| e.group.state() == GroupState::Empty);
            if emptied && group_is_empty {
                records.push((group_metadata::encode_key(&group_id), None));
            }
            if self
                .write_and_apply(&mut groups, &group_id, &records, now_ms())
                .is_ok()
                && emptied
                && group_is_empty
            {
                groups.classic.remove(&group_id);
            }
        }
        expired.len()
    }

    /// Appends tombstones (or any records) for a group and applies them; waits for durability under the lock,
    /// as these are rare administrative changes.
    fn write_and_apply(
        &self,
        groups: &mut Groups,
        group_id: &str,
        records: &[Record],
        now: i64,
    ) -> Result<(), i16> {
        if records.is_empty() {
            return Ok(());
        }
        let appended = self
            .log
            .append(group_id, records, now)
            .and_then(|(partition, info)| wait_committed(&partition, &info));
        if let Err(e) = appended {
            tracing::error!(group = group_id, error = %e, "writing to __consumer_offsets failed");
            return Err(error_code::COORDINATOR_NOT_AVAILABLE);
        }
        apply(groups, records);
        Ok(())
    }
}

/// OffsetCommit checks for a KIP-848 group: a member commits with its member epoch (STALE_MEMBER_EPOCH when
/// it is behind); a non-member (empty id, negative epoch) only while the group has no members.
fn consumer_commit_error(group: Option<&ConsumerGroup>, committer: &Committer<'_>) -> i16 {
    let Some(group) = group else {
        return error_code::NONE;
    };
    if committer.member_id.is_empty() && committer.generation_id < 0 {
        return if group.is_empty() {
            error_code::NONE
        } else {
            error_code::UNKNOWN_MEMBER_ID
        };
    }
    group.validate_offset_commit(committer.member_id, committer.generation_id)
}

/// Applies written records to the store through the replay path.
fn apply(groups: &mut Groups, records: &[Record]) {
    for (key, value) in records {
        if let Err(e) = groups.offsets.apply(key, value.as_deref()) {
            tracing::error!(error = %e, "applying a record this coordinator wrote failed");
        }
    }
}

fn partition_error(image: &MetadataImage, p: &PartitionOffset) -> i16 {
    if p.metadata
        .as_ref()
        .is_some_and(|m| m.len() > OFFSET_METADATA_MAX_BYTES)
    {
        return error_code::OFFSET_METADATA_TOO_LARGE;
    }
    let exists = image
        .topic(&p.topic)
        .is_some_and(|t| t.partitions.contains_key(&p.partition));
    if !exists {
        return error_code::UNKNOWN_TOPIC_OR_PARTITION;
    }
    error_code::NONE
}

/// The topics a group's live members consume, for OffsetDelete.
enum Subscribed {
    /// Unknown (mid-rebalance, or unreadable metadata): OffsetDelete errs on the safe side.
    Everything,
    Topics(BTreeSet<String>),
}

impl Subscribed {
    fn contains(&self, topic: &str) -> bool {
        match self {
            Subscribed::Everything => true,
            Subscribed::Topics(topics) => topics.contains(topic),
        }
    }
}

/// Reads the members' subscription metadata (ConsumerProtocolSubscription) of a stable group.
fn subscribed_topics(group: &ClassicGroup) -> Subscribed {
    if group.state() != GroupState::Stable || group.protocol_type() != Some("consumer") {
        return Subscribed::Everything;
    }
    let mut topics = BTreeSet::new();
    for member in group.describe() {
        match ferrite_coordinator::group::subscription_topics(&member.metadata) {
            Some(t) => topics.extend(t),
            None => return Subscribed::Everything,
        }
    }
    Subscribed::Topics(topics)
}

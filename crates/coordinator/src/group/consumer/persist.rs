//! A consumer group as `__consumer_offsets` records ([`crate::consumer_group_records`]): the records that
//! describe what changed since the last append, and the group rebuilt from what replay found.
//!
//! ```text
//!   heartbeat / tick ─▶ records_since(persisted image) ─▶ runtime appends them ─▶ image.apply(each)
//!                                                                                  + mark_persisted()
//!   start-up: replay ─▶ one ConsumerGroupImage per group ─▶ ConsumerGroup::restore(image, topics, now)
//! ```
//! `records_since` compares only the members touched since [`ConsumerGroup::mark_persisted`] (joined,
//! updated, reconciled, left, renamed), plus every member's target assignment when the assignment epoch
//! moved; a record is produced only where the state differs from the image. So a heartbeat that changed
//! nothing writes nothing, and a change of one member writes that member's records only.
//!
//! Not in the records (Kafka keeps them out too): heartbeat times and revocation deadlines (a restored
//! member's timers start at `now`), the chosen assignor (recomputed from the members), and the subscribed
//! topics' metadata (read again from the [`TopicView`]; the hash in the group record tells whether it
//! changed meanwhile, and then the group epoch is bumped, as the heartbeat that would have seen it does).
//! A group at epoch 0 never had a member and writes nothing.

use super::member::Member;
use super::reconcile::{MemberAssignment, MemberState};
use super::{ConsumerGroup, ConsumerGroupConfig, TopicView, STATIC_LEAVE_EPOCH};
use crate::assignor::Assignment;
use crate::consumer_group_records::{
    topics_hash, ConsumerGroupImage, ConsumerGroupRecord, CurrentAssignmentValue,
    GroupMetadataValue, MemberMetadataValue, RecordBody,
};
use std::collections::BTreeSet;

#[cfg(test)]
mod tests;

impl ConsumerGroup {
    /// The group that `image` describes, as of `now_ms`: every member's session starts now.
    pub fn restore(
        group_id: impl Into<String>,
        config: ConsumerGroupConfig,
        image: &ConsumerGroupImage,
        topics: &impl TopicView,
        now_ms: i64,
    ) -> ConsumerGroup {
        let mut group = ConsumerGroup::new(group_id, config);
        let metadata = image.metadata.unwrap_or_default();
        group.group_epoch = metadata.epoch;
        group.assignment_epoch = image.assignment_epoch.unwrap_or(0);
        for (member_id, value) in &image.members {
            let member = restored_member(value, image.current.get(member_id), now_ms);
            if let Some(instance_id) = &member.instance_id {
                group
                    .static_members
                    .insert(instance_id.clone(), member_id.clone());
            }
            group.members.insert(member_id.clone(), member);
        }
        group.target = image
            .targets
            .iter()
            .filter(|(id, _)| group.members.contains_key(*id))
            .map(|(id, target)| (id.clone(), target.clone()))
            .collect();
        group.assignor = group.chosen_assignor();
        group.refresh_regexes(topics, now_ms, true);
        group.refresh_topics(topics);
        // A constructor, not a transition: the group starts in the state its epochs call for.
        group.state = group.derived_state();
        let topics_moved = metadata.metadata_hash != topics_hash(&group.topics);
        let never_formed = group.group_epoch == 0 && group.members.is_empty();
        if (topics_moved || group.group_epoch != group.assignment_epoch) && !never_formed {
            group.bump_group_epoch();
            group.refresh_state();
        }
        group
    }

    /// The records that bring `persisted` (what the log holds for this group) up to this group's state.
    pub fn records_since(&self, persisted: &ConsumerGroupImage) -> Vec<ConsumerGroupRecord> {
        let all_targets = persisted.assignment_epoch != Some(self.assignment_epoch);
        self.diff(persisted, &self.unpersisted, all_targets)
    }

    /// Tells the group that the records [`ConsumerGroup::records_since`] returned were appended (and applied
    /// to the image), so later calls compare only members changed from here on.
    pub fn mark_persisted(&mut self) {
        self.unpersisted.clear();
    }

    /// The whole state as records would leave it: what replaying every record written so far gives.
    pub fn image(&self) -> ConsumerGroupImage {
        if self.image_is_empty() {
            return ConsumerGroupImage::default();
        }
        ConsumerGroupImage {
            metadata: Some(self.metadata_value()),
            assignment_epoch: Some(self.assignment_epoch),
            members: self
                .members
                .iter()
                .map(|(id, m)| (id.clone(), member_value(m)))
                .collect(),
            targets: self
                .members
                .keys()
                .map(|id| (id.clone(), self.target_value(id)))
                .collect(),
            current: self
                .members
                .iter()
                .map(|(id, m)| (id.clone(), current_value(m)))
                .collect(),
        }
    }

    /// Records for the differences between `persisted` and this group, looking at the members in `touched`
    /// (and at every target assignment with `all_targets`), in Kafka's order: records of members gone,
    /// member metadata, group metadata, target assignments, target metadata, current assignments.
    fn diff(
        &self,
        persisted: &ConsumerGroupImage,
        touched: &BTreeSet<String>,
        all_targets: bool,
    ) -> Vec<ConsumerGroupRecord> {
        if self.image_is_empty() && persisted.is_empty() {
            return vec![];
        }
        let record = |body| ConsumerGroupRecord {
            group_id: self.group_id.clone(),
            body,
        };
        let mut out = vec![];
        for id in self.gone(persisted, touched, all_targets) {
            if persisted.current.contains_key(id) {
                out.push(record(RecordBody::CurrentAssignment(id.clone(), None)));
            }
            if persisted.targets.contains_key(id) {
                out.push(record(RecordBody::TargetMember(id.clone(), None)));
            }
            if persisted.members.contains_key(id) {
                out.push(record(RecordBody::Member(id.clone(), None)));
            }
        }
        let present: Vec<(&String, &Member)> = touched
            .iter()
            .filter_map(|id| self.members.get_key_value(id))
            .collect();
        for (id, member) in &present {
            let value = member_value(member);
            if persisted.members.get(*id) != Some(&value) {
                out.push(record(RecordBody::Member((*id).clone(), Some(value))));
            }
        }
        let metadata = self.metadata_value();
        if persisted.metadata != Some(metadata) {
            out.push(record(RecordBody::Metadata(Some(metadata))));
        }
        let target_ids: Vec<&String> = if all_targets {
            self.members.keys().collect()
        } else {
            present.iter().map(|(id, _)| *id).collect()
        };
        for id in target_ids {
            let target = self.target_value(id);
            if persisted.targets.get(id) != Some(&target) {
                out.push(record(RecordBody::TargetMember(id.clone(), Some(target))));
            }
        }
        if persisted.assignment_epoch != Some(self.assignment_epoch) {
            out.push(record(RecordBody::TargetMetadata(Some(
                self.assignment_epoch,
            ))));
        }
        for (id, member) in &present {
            let value = current_value(member);
            if persisted.current.get(*id) != Some(&value) {
                out.push(record(RecordBody::CurrentAssignment(
                    (*id).clone(),
                    Some(value),
                )));
            }
        }
        out
    }

    /// Members with records in `persisted` that are no longer in the group: among `touched`, or among all of
    /// them with `all_targets` (membership changes bump the epoch, which moves the assignment epoch).
    fn gone<'a>(
        &self,
        persisted: &'a ConsumerGroupImage,
        touched: &'a BTreeSet<String>,
        all_targets: bool,
    ) -> BTreeSet<&'a String> {
        let mut ids: BTreeSet<&String> = touched.iter().collect();
        if all_targets {
            ids.extend(persisted.members.keys());
            ids.extend(persisted.targets.keys());
            ids.extend(persisted.current.keys());
        }
        ids.retain(|id| !self.members.contains_key(*id));
        ids
    }

    fn image_is_empty(&self) -> bool {
        self.group_epoch == 0 && self.members.is_empty()
    }

    fn metadata_value(&self) -> GroupMetadataValue {
        GroupMetadataValue {
            epoch: self.group_epoch,
            metadata_hash: topics_hash(&self.topics),
        }
    }

    fn target_value(&self, member_id: &str) -> Assignment {
        self.target
            .get(member_id)
            .map(canonical)
            .unwrap_or_default()
    }
}

/// An assignment without topics that have no partitions, as the records hold it.
fn canonical(assignment: &Assignment) -> Assignment {
    assignment
        .iter()
        .filter(|(_, partitions)| !partitions.is_empty())
        .map(|(topic_id, partitions)| (*topic_id, partitions.clone()))
        .collect()
}

fn member_value(m: &Member) -> MemberMetadataValue {
    MemberMetadataValue {
        instance_id: m.instance_id.clone(),
        rack_id: m.rack_id.clone(),
        client_id: m.client_id.clone(),
        client_host: m.client_host.clone(),
        subscribed_topic_names: m.subscribed_topic_names.iter().cloned().collect(),
        subscribed_topic_regex: m.subscribed_topic_regex.clone(),
        rebalance_timeout_ms: m.rebalance_timeout_ms,
        server_assignor: m.server_assignor.map(|kind| kind.name().to_string()),
    }
}

/// A static member away is written with epoch -2 and its real epoch as the previous one (see
/// [`CurrentAssignmentValue`]).
fn current_value(m: &Member) -> CurrentAssignmentValue {
    let a = &m.assignment;
    let (member_epoch, previous_member_epoch) = if m.away {
        (STATIC_LEAVE_EPOCH, a.epoch)
    } else {
        (a.epoch, a.previous_epoch)
    };
    CurrentAssignmentValue {
        member_epoch,
        previous_member_epoch,
        state: a.state,
        assigned: canonical(&a.assigned),
        pending_revocation: canonical(&a.pending_revocation),
    }
}

/// A member from its records; without a current assignment it is where a joining member is (epoch 0, so
/// its next heartbeat is fenced and it rejoins).
fn restored_member(
    value: &MemberMetadataValue,
    current: Option<&CurrentAssignmentValue>,
    now_ms: i64,
) -> Member {
    let away = current.is_some_and(|c| c.member_epoch == STATIC_LEAVE_EPOCH);
    let assignment = current.map_or_else(MemberAssignment::joining, |c| MemberAssignment {
        state: c.state,
        epoch: if away {
            c.previous_member_epoch
        } else {
            c.member_epoch
        },
        previous_epoch: c.previous_member_epoch,
        assigned: c.assigned.clone(),
        pending_revocation: c.pending_revocation.clone(),
    });
    let revocation_deadline_ms = (assignment.state == MemberState::UnrevokedPartitions)
        .then(|| now_ms.saturating_add(i64::from(value.rebalance_timeout_ms.max(0))));
    Member {
        instance_id: value.instance_id.clone(),
        rack_id: value.rack_id.clone(),
        client_id: value.client_id.clone(),
        client_host: value.client_host.clone(),
        subscribed_topic_names: value.subscribed_topic_names.iter().cloned().collect(),
        subscribed_topic_regex: value
            .subscribed_topic_regex
            .clone()
            .filter(|pattern| !pattern.is_empty()),
        server_assignor: value
            .server_assignor
            .as_deref()
            .and_then(|name| name.parse().ok()),
        rebalance_timeout_ms: value.rebalance_timeout_ms,
        assignment,
        last_heartbeat_ms: now_ms,
        revocation_deadline_ms,
        away,
    }
}

//! KIP-848 consumer-protocol groups: heartbeats (which carry joins, leaves and assignment reconciliation),
//! describe, and their timers. A group id is either classic or consumer: an empty classic group (such as one
//! known only by committed offsets) becomes a consumer group on the first consumer heartbeat.
//!
//! Status: these groups live in memory; only their committed offsets are in `__consumer_offsets`. After a
//! restart, members are answered UNKNOWN_MEMBER_ID and rejoin with epoch 0 (KIP-848 clients do so on their
//! own), resuming from the committed offsets.

use super::{now_ms, GroupCoordinator};
use crate::broker::Broker;
use ferrite_coordinator::group::consumer::{
    GroupDescription, HeartbeatRequest, HeartbeatResponse, TopicView,
};
use ferrite_coordinator::group::{ConsumerGroup, ConsumerGroupConfig};
use ferrite_wire::error_code;
use uuid::Uuid;

/// Topic metadata straight from the broker's topic table.
pub struct BrokerTopics<'a>(pub &'a Broker);

impl TopicView for BrokerTopics<'_> {
    fn topic(&self, name: &str) -> Option<(Uuid, i32)> {
        let topic = self.0.topic(name)?;
        Some((topic.id, i32::try_from(topic.partitions.len()).ok()?))
    }
}

impl GroupCoordinator {
    pub fn consumer_heartbeat(
        &self,
        broker: &Broker,
        group_id: &str,
        request: HeartbeatRequest,
    ) -> HeartbeatResponse {
        let now = now_ms();
        let mut groups = self.lock();
        if let Some(classic) = groups.classic.get(group_id) {
            if classic.group.has_members() {
                return HeartbeatResponse {
                    error_code: error_code::GROUP_ID_NOT_FOUND,
                    error_message: Some(format!("{group_id} is a classic group with members")),
                    member_id: request.member_id,
                    ..Default::default()
                };
            }
            groups.classic.remove(group_id);
        }
        let config = self.consumer_config.clone();
        let group = groups
            .consumer
            .entry(group_id.to_string())
            .or_insert_with(|| ConsumerGroup::new(group_id, config));
        group.heartbeat(request, &BrokerTopics(broker), now, || {
            Uuid::new_v4().to_string()
        })
    }

    /// Session and revocation deadlines of consumer groups.
    pub(super) fn tick_consumer_groups(&self, broker: &Broker, now: i64) {
        let mut groups = self.lock();
        let topics = BrokerTopics(broker);
        for (group_id, group) in groups.consumer.iter_mut() {
            if group.next_deadline_ms().is_some_and(|d| d <= now) {
                let removed = group.tick(now, &topics);
                if !removed.is_empty() {
                    tracing::info!(group = %group_id, members = ?removed, "removed consumer group members");
                }
            }
        }
    }

    /// ConsumerGroupDescribe: `None` for a group that is not a consumer group.
    pub fn describe_consumer(&self, group_id: &str) -> Option<GroupDescription> {
        self.lock().consumer.get(group_id).map(|g| g.describe())
    }

    /// Whether `group_id` is a consumer-protocol group (classic APIs refuse it).
    pub fn is_consumer_group(&self, group_id: &str) -> bool {
        self.lock().consumer.contains_key(group_id)
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

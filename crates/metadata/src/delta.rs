//! What a batch of records changed, for the parts of a node that act on changes: the replica manager (open,
//! re-role or remove partitions), the group coordinator (group configs), the topic cache (effective configs).

use crate::image::{MetadataImage, TopicImage};
use crate::records::ConfigResource;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataDelta {
    /// Topics created by the batch (and not deleted again in it).
    pub created_topics: BTreeSet<Uuid>,
    /// Topics deleted by the batch, as they were.
    pub deleted_topics: BTreeMap<Uuid, TopicImage>,
    /// Partitions whose record was written (created or changed), of topics that still exist.
    pub changed_partitions: BTreeSet<(Uuid, i32)>,
    /// Resources whose configs changed.
    pub changed_configs: BTreeSet<ConfigResource>,
    pub brokers_changed: bool,
}

impl MetadataDelta {
    pub fn is_empty(&self) -> bool {
        *self == MetadataDelta::default()
    }

    /// Whether the set of topic names changed (pattern subscriptions must be resolved again).
    pub fn topic_names_changed(&self) -> bool {
        !self.created_topics.is_empty() || !self.deleted_topics.is_empty()
    }

    /// Whether configs that every topic inherits changed (broker-level configs).
    pub fn broker_configs_changed(&self) -> bool {
        self.changed_configs
            .iter()
            .any(|r| matches!(r, ConfigResource::Broker(_)))
    }

    /// What changed from `old` to `new`, for a node that jumps from one image to another (a snapshot
    /// installed from the leader, or the image it starts from).
    pub fn between(old: &MetadataImage, new: &MetadataImage) -> MetadataDelta {
        let mut delta = MetadataDelta::default();
        for topic in new.topics() {
            let before = old.topic_by_id(topic.id);
            if before.is_none() {
                delta.created_topics.insert(topic.id);
            }
            for (index, partition) in &topic.partitions {
                if before.and_then(|b| b.partitions.get(index)) != Some(partition) {
                    delta.changed_partitions.insert((topic.id, *index));
                }
            }
        }
        for topic in old.topics() {
            if new.topic_by_id(topic.id).is_none() {
                delta.deleted_topics.insert(topic.id, topic.clone());
            }
        }
        let resources = old
            .config_resources()
            .chain(new.config_resources())
            .map(|(resource, _)| resource);
        for resource in resources {
            if old.configs(resource) != new.configs(resource) {
                delta.changed_configs.insert(resource.clone());
            }
        }
        delta.brokers_changed =
            !old.brokers().eq(new.brokers()) || !old.live_brokers().eq(new.live_brokers());
        delta
    }
}

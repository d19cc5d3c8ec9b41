//! The controller's part: every metadata change is checked against the image in force and written as
//! records, which `publish` applies. Today the node is its own controller; with the quorum these checks run
//! on the active controller and the records go through the Raft log.
//!
//! ```text
//!   request ─▶ lock writer ─▶ check against the current image ─▶ records ─▶ commit (publish.rs)
//!                                  └─ refused: TopicError, nothing written
//! ```
//! `validate_only` requests stop after the checks.

use super::topic_name;
use super::{Node, Topic, TopicError, MAX_PARTITIONS_PER_TOPIC};
use crate::config::dynamic::{
    validate_entity, BrokerEntity, DynamicBrokerConfigs, DynamicSettings, LiveConfig,
};
use crate::config::group::{group_timings, validate_group_overrides, GroupOverrides, GroupTimings};
use crate::config::topic::{effective_config, validate_topic_config, TopicOverrides};
use ferrite_metadata::{ConfigResource, MetadataImage, MetadataRecord, PartitionRecord};
use ferrite_replication::{LeaderEpoch, NodeId};
use std::collections::BTreeMap;
use std::sync::{Arc, MutexGuard};

impl Node {
    pub(super) fn lock_writer(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks a CreateTopics request without creating anything.
    pub fn validate_new_topic(
        &self,
        name: &str,
        partitions: i32,
        replication: i16,
        overrides: &TopicOverrides,
    ) -> Result<(), TopicError> {
        topic_name::validate_topic_name(name).map_err(TopicError::InvalidName)?;
        if self.image().topic(name).is_some() {
            return Err(TopicError::AlreadyExists(name.to_string()));
        }
        if !(1..=MAX_PARTITIONS_PER_TOPIC).contains(&partitions) {
            return Err(TopicError::InvalidPartitions(format!("number of partitions must be between 1 and {MAX_PARTITIONS_PER_TOPIC}, not {partitions}")));
        }
        if replication != 1 {
            return Err(TopicError::InvalidReplicationFactor(format!(
                "replication factor {replication} is larger than the 1 available broker"
            )));
        }
        for (key, value) in overrides {
            validate_topic_config(key, value)
                .map_err(|e| TopicError::InvalidConfig(e.to_string()))?;
        }
        effective_config(&self.live_config().effective.topic_defaults, overrides)
            .map_err(|e| TopicError::InvalidConfig(e.to_string()))?;
        Ok(())
    }

    /// Creates a topic (its metadata, then its partitions' logs). `partitions`/`replication` of -1 mean the
    /// broker defaults. Blocking: call from a blocking context.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication: i16,
        overrides: TopicOverrides,
    ) -> Result<Arc<Topic>, TopicError> {
        let partitions = if partitions == -1 {
            self.config.num_partitions
        } else {
            partitions
        };
        let replication = if replication == -1 {
            self.config.default_replication_factor
        } else {
            replication
        };
        let _writer = self.lock_writer();
        self.validate_new_topic(name, partitions, replication, &overrides)?;
        let topic_id = uuid::Uuid::new_v4();
        let mut records = vec![MetadataRecord::Topic {
            name: name.to_string(),
            topic_id,
        }];
        let local = self.replicas.local_node();
        records.extend((0..partitions).map(|partition| new_partition(topic_id, partition, local)));
        records.extend(config_changes(
            ConfigResource::Topic(name.to_string()),
            &BTreeMap::new(),
            &overrides,
        ));
        self.commit(&records)?;
        tracing::info!(topic = name, partitions, "created topic");
        self.topic(name)
            .ok_or_else(|| TopicError::UnknownTopic(name.to_string()))
    }

    /// Auto-creation on Metadata requests (`auto.create.topics.enable`); `None` if disabled or invalid.
    pub fn auto_create_topic(&self, name: &str) -> Option<Arc<Topic>> {
        if !self.config.auto_create_topics_enable {
            return None;
        }
        match self.create_topic(name, -1, -1, TopicOverrides::new()) {
            Ok(topic) => Some(topic),
            Err(TopicError::AlreadyExists(_)) => self.topic(name),
            Err(e) => {
                tracing::debug!(topic = name, error = %e, "not auto-creating topic");
                None
            }
        }
    }

    /// Deletes a topic and its data; long polls waiting on it answer at once.
    pub fn delete_topic(&self, name: &str) -> Result<(), TopicError> {
        let _writer = self.lock_writer();
        let topic_id = self
            .image()
            .topic(name)
            .map(|t| t.id)
            .ok_or_else(|| TopicError::UnknownTopic(name.to_string()))?;
        self.commit(&[MetadataRecord::RemoveTopic { topic_id }])?;
        tracing::info!(topic = name, "deleted topic");
        Ok(())
    }

    /// Grows a topic to `total` partitions.
    pub fn create_partitions(
        &self,
        name: &str,
        total: i32,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let _writer = self.lock_writer();
        let image = self.image();
        let topic = image
            .topic(name)
            .ok_or_else(|| TopicError::UnknownTopic(name.to_string()))?;
        let existing = topic.partition_count();
        if total <= existing || total > MAX_PARTITIONS_PER_TOPIC {
            return Err(TopicError::InvalidPartitions(format!(
                "topic currently has {existing} partitions; {total} would not add any (or exceeds {MAX_PARTITIONS_PER_TOPIC})"
            )));
        }
        if validate_only {
            return Ok(());
        }
        let local = self.replicas.local_node();
        let records: Vec<MetadataRecord> = (existing..total)
            .map(|partition| new_partition(topic.id, partition, local))
            .collect();
        self.commit(&records)?;
        Ok(())
    }

    /// Replaces a topic's config overrides; they reach its partitions at once.
    pub fn set_topic_overrides(
        &self,
        name: &str,
        overrides: TopicOverrides,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let _writer = self.lock_writer();
        let image = self.image();
        if image.topic(name).is_none() {
            return Err(TopicError::UnknownTopic(name.to_string()));
        }
        for (key, value) in &overrides {
            validate_topic_config(key, value)
                .map_err(|e| TopicError::InvalidConfig(e.to_string()))?;
        }
        effective_config(&self.live_config().effective.topic_defaults, &overrides)
            .map_err(|e| TopicError::InvalidConfig(e.to_string()))?;
        if validate_only {
            return Ok(());
        }
        let resource = ConfigResource::Topic(name.to_string());
        let records = config_changes(resource.clone(), image.configs(&resource), &overrides);
        self.commit(&records)?;
        Ok(())
    }

    /// Replaces the dynamic settings of `entity` with what `change` makes of the current ones (AlterConfigs
    /// replaces them all; IncrementalAlterConfigs edits them). The live view is passed for list operations,
    /// which start from the effective value.
    pub fn alter_broker_configs(
        &self,
        entity: BrokerEntity,
        validate_only: bool,
        change: impl FnOnce(&DynamicSettings, &LiveConfig) -> Result<DynamicSettings, TopicError>,
    ) -> Result<(), TopicError> {
        let _writer = self.lock_writer();
        let image = self.image();
        let resource = broker_resource(entity);
        let current = image.configs(&resource);
        let proposed = change(current, &self.live_config())?;
        let canonical =
            validate_entity(&proposed).map_err(|e| TopicError::InvalidConfig(e.to_string()))?;
        let mut stored = dynamic_broker_configs(&image);
        stored.set(entity, canonical.clone());
        let (_, skipped) = LiveConfig::new(&self.config, &stored);
        if let Some(reason) = skipped.first() {
            return Err(TopicError::InvalidConfig(reason.clone()));
        }
        if validate_only {
            return Ok(());
        }
        let records = config_changes(resource, current, &canonical);
        self.commit(&records)?;
        tracing::info!(?entity, settings = ?canonical, "dynamic broker configs changed");
        Ok(())
    }

    /// A group's own configs (empty if it has none).
    pub fn group_overrides(&self, group_id: &str) -> GroupOverrides {
        self.image()
            .configs(&ConfigResource::Group(group_id.to_string()))
            .clone()
    }

    /// The session timeout and heartbeat interval of a consumer-protocol group.
    pub fn group_timings(&self, group_id: &str) -> GroupTimings {
        group_timings(&self.config, &self.group_overrides(group_id))
    }

    /// Replaces a group's configs with what `change` makes of the current ones; they reach the group and its
    /// members at once.
    pub fn alter_group_configs(
        &self,
        group_id: &str,
        validate_only: bool,
        change: impl FnOnce(&GroupOverrides) -> Result<GroupOverrides, TopicError>,
    ) -> Result<(), TopicError> {
        let _writer = self.lock_writer();
        let image = self.image();
        let resource = ConfigResource::Group(group_id.to_string());
        let current = image.configs(&resource);
        let proposed = change(current)?;
        let canonical = validate_group_overrides(&self.config, &proposed)
            .map_err(|e| TopicError::InvalidConfig(e.to_string()))?;
        if validate_only {
            return Ok(());
        }
        let records = config_changes(resource, current, &canonical);
        self.commit(&records)?;
        tracing::info!(group = group_id, settings = ?canonical, "group configs changed");
        Ok(())
    }

    /// Hands out a new producer id, recorded before it is returned so it is never reused after a restart.
    pub fn allocate_producer_id(&self) -> Result<i64, TopicError> {
        let _writer = self.lock_writer();
        let id = self.image().next_producer_id();
        self.commit(&[MetadataRecord::ProducerIds {
            node_id: self.replicas.local_node(),
            next_producer_id: id + 1,
        }])?;
        Ok(id)
    }
}

/// A new partition with one replica, this node, leading it in epoch 0.
fn new_partition(topic_id: uuid::Uuid, partition: i32, local: NodeId) -> MetadataRecord {
    MetadataRecord::Partition(PartitionRecord {
        topic_id,
        partition,
        replicas: vec![local],
        isr: vec![local],
        leader: Some(local),
        leader_epoch: LeaderEpoch(0),
        partition_epoch: 0,
    })
}

fn broker_resource(entity: BrokerEntity) -> ConfigResource {
    match entity {
        BrokerEntity::Default => ConfigResource::Broker(None),
        BrokerEntity::Broker(id) => ConfigResource::Broker(Some(NodeId(id))),
    }
}

/// The dynamic broker configs of every entity, as the config layer reads them.
pub(super) fn dynamic_broker_configs(image: &MetadataImage) -> DynamicBrokerConfigs {
    let mut stored = DynamicBrokerConfigs::default();
    for (resource, configs) in image.config_resources() {
        match resource {
            ConfigResource::Broker(None) => stored.set(BrokerEntity::Default, configs.clone()),
            ConfigResource::Broker(Some(id)) => {
                stored.set(BrokerEntity::Broker(id.0), configs.clone())
            }
            ConfigResource::Topic(_) | ConfigResource::Group(_) => {}
        }
    }
    stored
}

/// The config records that turn `current` into `next`: removals for names gone, sets for new or changed values.
fn config_changes(
    resource: ConfigResource,
    current: &BTreeMap<String, String>,
    next: &BTreeMap<String, String>,
) -> Vec<MetadataRecord> {
    let removed = current
        .keys()
        .filter(|name| !next.contains_key(*name))
        .map(|name| MetadataRecord::Config {
            resource: resource.clone(),
            name: name.clone(),
            value: None,
        });
    let set = next
        .iter()
        .filter(|(name, value)| current.get(*name) != Some(*value))
        .map(|(name, value)| MetadataRecord::Config {
            resource: resource.clone(),
            name: name.clone(),
            value: Some(value.clone()),
        });
    removed.chain(set).collect()
}

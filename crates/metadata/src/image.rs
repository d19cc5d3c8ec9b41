//! The metadata image: the cluster's metadata as applying every record in order leaves it. Readers share an
//! immutable image (`Arc`); a change applies records to a copy and swaps it in, with the [`MetadataDelta`]
//! saying what moved, for the parts of the node that act on changes (replicas, groups, caches).

use crate::delta::MetadataDelta;
use crate::records::{BrokerRegistration, ConfigResource, MetadataRecord, PartitionRecord};
use ferrite_replication::NodeId;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// Config name -> value, for one resource.
pub type Configs = BTreeMap<String, String>;

/// A topic and its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicImage {
    pub name: String,
    pub id: Uuid,
    pub partitions: BTreeMap<i32, PartitionRecord>,
}

impl TopicImage {
    pub fn partition_count(&self) -> i32 {
        i32::try_from(self.partitions.len()).unwrap_or(i32::MAX)
    }
}

/// A record that cannot apply to the image: records come from the controller, which checked them, so this
/// means a damaged log or a bug; the record is not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("topic name {0:?} is already used by another topic id")]
    TopicNameTaken(String),
    #[error("no topic with id {0}")]
    UnknownTopicId(Uuid),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataImage {
    cluster_id: Option<String>,
    brokers: BTreeMap<NodeId, BrokerRegistration>,
    /// Registered brokers the controller fenced (not heard from within the session timeout).
    fenced: BTreeSet<NodeId>,
    topics: BTreeMap<Uuid, TopicImage>,
    topic_ids: BTreeMap<String, Uuid>,
    configs: BTreeMap<ConfigResource, Configs>,
    next_producer_id: i64,
    /// How many records built this image: a version that only grows.
    records_applied: u64,
    /// Bumped by every record that creates or removes a topic, so readers can tell the set of topic names
    /// changed (pattern subscriptions are resolved again only then).
    topics_version: u64,
}

static NO_CONFIGS: Configs = BTreeMap::new();

impl MetadataImage {
    /// Applies `records` in order to a copy of this image; returns the new image and what changed. On an error
    /// the image is left as it was.
    pub fn apply_all(
        &self,
        records: &[MetadataRecord],
    ) -> Result<(MetadataImage, MetadataDelta), ImageError> {
        let mut next = self.clone();
        let mut delta = MetadataDelta::default();
        for record in records {
            next.apply(record, &mut delta)?;
        }
        Ok((next, delta))
    }

    /// Builds an image from a snapshot or a whole log.
    pub fn from_records(records: &[MetadataRecord]) -> Result<MetadataImage, ImageError> {
        MetadataImage::default()
            .apply_all(records)
            .map(|(image, _)| image)
    }

    fn apply(
        &mut self,
        record: &MetadataRecord,
        delta: &mut MetadataDelta,
    ) -> Result<(), ImageError> {
        match record {
            MetadataRecord::Cluster { cluster_id } => self.cluster_id = Some(cluster_id.clone()),
            MetadataRecord::RegisterBroker(registration) => {
                self.brokers
                    .insert(registration.node_id, registration.clone());
                delta.brokers_changed = true;
            }
            MetadataRecord::UnregisterBroker { node_id } => {
                self.brokers.remove(node_id);
                self.fenced.remove(node_id);
                delta.brokers_changed = true;
            }
            MetadataRecord::FenceBroker { node_id } => {
                self.fenced.insert(*node_id);
                delta.brokers_changed = true;
            }
            MetadataRecord::UnfenceBroker { node_id } => {
                self.fenced.remove(node_id);
                delta.brokers_changed = true;
            }
            MetadataRecord::Topic { name, topic_id } => {
                if self.topic_ids.get(name).is_some_and(|id| id != topic_id) {
                    return Err(ImageError::TopicNameTaken(name.clone()));
                }
                self.topic_ids.insert(name.clone(), *topic_id);
                self.topics.entry(*topic_id).or_insert_with(|| TopicImage {
                    name: name.clone(),
                    id: *topic_id,
                    partitions: BTreeMap::new(),
                });
                delta.created_topics.insert(*topic_id);
                self.topics_version += 1;
            }
            MetadataRecord::Partition(partition) => {
                let topic = self
                    .topics
                    .get_mut(&partition.topic_id)
                    .ok_or(ImageError::UnknownTopicId(partition.topic_id))?;
                topic
                    .partitions
                    .insert(partition.partition, partition.clone());
                delta
                    .changed_partitions
                    .insert((partition.topic_id, partition.partition));
            }
            MetadataRecord::RemoveTopic { topic_id } => {
                let topic = self
                    .topics
                    .remove(topic_id)
                    .ok_or(ImageError::UnknownTopicId(*topic_id))?;
                self.topic_ids.remove(&topic.name);
                self.configs
                    .remove(&ConfigResource::Topic(topic.name.clone()));
                delta.created_topics.remove(topic_id);
                delta.changed_partitions.retain(|(id, _)| id != topic_id);
                delta.deleted_topics.insert(*topic_id, topic);
                self.topics_version += 1;
            }
            MetadataRecord::Config {
                resource,
                name,
                value,
            } => {
                let configs = self.configs.entry(resource.clone()).or_default();
                match value {
                    Some(v) => {
                        configs.insert(name.clone(), v.clone());
                    }
                    None => {
                        configs.remove(name);
                    }
                }
                if configs.is_empty() {
                    self.configs.remove(resource);
                }
                delta.changed_configs.insert(resource.clone());
            }
            MetadataRecord::ProducerIds {
                next_producer_id, ..
            } => {
                self.next_producer_id = self.next_producer_id.max(*next_producer_id);
            }
        }
        self.records_applied += 1;
        Ok(())
    }

    /// The records that rebuild this image (a snapshot): cluster, brokers, topics with their partitions,
    /// configs, producer ids.
    pub fn to_records(&self) -> Vec<MetadataRecord> {
        let mut records = vec![];
        if let Some(cluster_id) = &self.cluster_id {
            records.push(MetadataRecord::Cluster {
                cluster_id: cluster_id.clone(),
            });
        }
        records.extend(
            self.brokers
                .values()
                .cloned()
                .map(MetadataRecord::RegisterBroker),
        );
        records.extend(
            self.fenced
                .iter()
                .map(|node_id| MetadataRecord::FenceBroker { node_id: *node_id }),
        );
        for topic in self.topics() {
            records.push(MetadataRecord::Topic {
                name: topic.name.clone(),
                topic_id: topic.id,
            });
            records.extend(
                topic
                    .partitions
                    .values()
                    .cloned()
                    .map(MetadataRecord::Partition),
            );
        }
        for (resource, configs) in &self.configs {
            records.extend(configs.iter().map(|(name, value)| MetadataRecord::Config {
                resource: resource.clone(),
                name: name.clone(),
                value: Some(value.clone()),
            }));
        }
        if self.next_producer_id > 0 {
            records.push(MetadataRecord::ProducerIds {
                node_id: NodeId(-1),
                next_producer_id: self.next_producer_id,
            });
        }
        records
    }

    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }

    pub fn brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values()
    }

    pub fn broker(&self, node_id: NodeId) -> Option<&BrokerRegistration> {
        self.brokers.get(&node_id)
    }

    pub fn is_fenced(&self, node_id: NodeId) -> bool {
        self.fenced.contains(&node_id)
    }

    /// The registered brokers that are not fenced: the ones clients are told about and replicas go to.
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers
            .values()
            .filter(|b| !self.fenced.contains(&b.node_id))
    }

    pub fn topic(&self, name: &str) -> Option<&TopicImage> {
        self.topics.get(self.topic_ids.get(name)?)
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<&TopicImage> {
        self.topics.get(&id)
    }

    /// Every topic, in name order.
    pub fn topics(&self) -> impl Iterator<Item = &TopicImage> {
        self.topic_ids.values().filter_map(|id| self.topics.get(id))
    }

    pub fn topic_count(&self) -> usize {
        self.topics.len()
    }

    /// The configs set on `resource` (empty if none).
    pub fn configs(&self, resource: &ConfigResource) -> &Configs {
        self.configs.get(resource).unwrap_or(&NO_CONFIGS)
    }

    /// Every resource of one kind with configs set, such as every group with its own configs.
    pub fn config_resources(&self) -> impl Iterator<Item = (&ConfigResource, &Configs)> {
        self.configs.iter()
    }

    /// The next producer id no broker has been handed.
    pub fn next_producer_id(&self) -> i64 {
        self.next_producer_id
    }

    pub fn records_applied(&self) -> u64 {
        self.records_applied
    }

    /// Changes whenever a topic is created or deleted.
    pub fn topics_version(&self) -> u64 {
        self.topics_version
    }
}

//! Cluster metadata persisted in the data directory: topics (names, ids, partition counts, config overrides),
//! the cluster id, the producer-id counter, dynamic broker configs and per-group configs.
//!
//! The node keeps its metadata as an image built from records (`ferrite-metadata`) and saves the file form of
//! the image on every change, atomically (temp file, fsync, rename, fsync directory). Loading turns the file
//! back into the records that build the same image. [`MetadataStore`] is the seam where the Raft metadata
//! quorum will replace this single-node file (and import it once).

use crate::config::dynamic::DynamicBrokerConfigs;
use crate::config::group::GroupOverrides;
use ferrite_metadata::{ConfigResource, MetadataRecord, PartitionRecord};
use ferrite_replication::{LeaderEpoch, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    pub name: String,
    pub id: uuid::Uuid,
    pub partitions: i32,
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMetadata {
    pub cluster_id: String,
    /// The next producer id InitProducerId hands out; ids are never reused.
    pub next_producer_id: i64,
    pub topics: BTreeMap<String, TopicRecord>,
    /// Broker configs changed live (AlterConfigs on the broker resource).
    #[serde(default)]
    pub broker_configs: DynamicBrokerConfigs,
    /// Per-group configs (AlterConfigs on the group resource), by group id.
    #[serde(default)]
    pub group_configs: BTreeMap<String, GroupOverrides>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("metadata file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("metadata file {path} is not valid: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

/// Where cluster metadata lives.
pub trait MetadataStore: Send + Sync + std::fmt::Debug {
    /// The stored metadata, or `None` on a fresh data directory.
    fn load(&self) -> Result<Option<ClusterMetadata>, StoreError>;
    /// Replaces the stored metadata durably.
    fn save(&self, metadata: &ClusterMetadata) -> Result<(), StoreError>;
    /// Sets the stored metadata aside once it has been imported into the metadata log, so it is neither
    /// read again nor mistaken for current.
    fn retire(&self) -> Result<(), StoreError>;
}

/// The first id InitProducerId hands out on a new cluster.
pub const FIRST_PRODUCER_ID: i64 = 1000;

/// The records that build the image a file describes. The file predates clusters: every partition has one
/// replica, this node, which leads it.
pub fn records_of(file: &ClusterMetadata, local: NodeId) -> Vec<MetadataRecord> {
    let mut records = vec![
        MetadataRecord::Cluster {
            cluster_id: file.cluster_id.clone(),
        },
        MetadataRecord::ProducerIds {
            node_id: local,
            next_producer_id: file.next_producer_id,
        },
    ];
    for topic in file.topics.values() {
        records.push(MetadataRecord::Topic {
            name: topic.name.clone(),
            topic_id: topic.id,
        });
        records.extend((0..topic.partitions).map(|partition| {
            MetadataRecord::Partition(PartitionRecord {
                topic_id: topic.id,
                partition,
                replicas: vec![local],
                isr: vec![local],
                leader: Some(local),
                leader_epoch: LeaderEpoch(0),
                partition_epoch: 0,
                reassignment: None,
            })
        }));
        records.extend(config_records(
            ConfigResource::Topic(topic.name.clone()),
            &topic.configs,
        ));
    }
    records.extend(config_records(
        ConfigResource::Broker(None),
        &file.broker_configs.default,
    ));
    for (id, settings) in &file.broker_configs.brokers {
        records.extend(config_records(
            ConfigResource::Broker(Some(NodeId(*id))),
            settings,
        ));
    }
    for (group, settings) in &file.group_configs {
        records.extend(config_records(
            ConfigResource::Group(group.clone()),
            settings,
        ));
    }
    records
}

fn config_records(
    resource: ConfigResource,
    settings: &BTreeMap<String, String>,
) -> impl Iterator<Item = MetadataRecord> + '_ {
    settings
        .iter()
        .map(move |(name, value)| MetadataRecord::Config {
            resource: resource.clone(),
            name: name.clone(),
            value: Some(value.clone()),
        })
}

/// The file form of an image (what [`records_of`] turns back into the same image).
#[cfg(test)]
pub fn file_of(image: &ferrite_metadata::MetadataImage) -> ClusterMetadata {
    use crate::config::dynamic::BrokerEntity;
    let mut broker_configs = DynamicBrokerConfigs::default();
    let mut group_configs = BTreeMap::new();
    for (resource, configs) in image.config_resources() {
        match resource {
            ConfigResource::Broker(None) => {
                broker_configs.set(BrokerEntity::Default, configs.clone())
            }
            ConfigResource::Broker(Some(id)) => {
                broker_configs.set(BrokerEntity::Broker(id.0), configs.clone())
            }
            ConfigResource::Group(group) => {
                group_configs.insert(group.clone(), configs.clone());
            }
            ConfigResource::Topic(_) => {}
        }
    }
    ClusterMetadata {
        cluster_id: image.cluster_id().unwrap_or_default().to_string(),
        next_producer_id: image.next_producer_id(),
        topics: image
            .topics()
            .map(|t| {
                let record = TopicRecord {
                    name: t.name.clone(),
                    id: t.id,
                    partitions: t.partition_count(),
                    configs: image
                        .configs(&ConfigResource::Topic(t.name.clone()))
                        .clone(),
                };
                (t.name.clone(), record)
            })
            .collect(),
        broker_configs,
        group_configs,
    }
}

/// `<data-dir>/ferrite-metadata.json`.
#[derive(Debug)]
pub struct FileMetadataStore {
    path: PathBuf,
}

pub const METADATA_FILE: &str = "ferrite-metadata.json";

impl FileMetadataStore {
    pub fn new(data_dir: &Path) -> Self {
        FileMetadataStore {
            path: data_dir.join(METADATA_FILE),
        }
    }

    fn io(&self, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

impl MetadataStore for FileMetadataStore {
    fn retire(&self) -> Result<(), StoreError> {
        let imported = self.path.with_extension("json.imported");
        std::fs::rename(&self.path, &imported).map_err(|e| self.io(e))?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| self.io(e))?;
        }
        Ok(())
    }

    fn load(&self) -> Result<Option<ClusterMetadata>, StoreError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io(e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                path: self.path.clone(),
                reason: e.to_string(),
            })
    }

    fn save(&self, metadata: &ClusterMetadata) -> Result<(), StoreError> {
        let json = serde_json::to_vec_pretty(metadata).map_err(|e| StoreError::Corrupt {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        let tmp = self.path.with_extension("json.tmp");
        let mut file = std::fs::File::create(&tmp).map_err(|e| self.io(e))?;
        file.write_all(&json).map_err(|e| self.io(e))?;
        file.sync_all().map_err(|e| self.io(e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.io(e))?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| self.io(e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_and_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileMetadataStore::new(dir.path());
        assert_eq!(store.load().expect("load"), None);
        let mut metadata = ClusterMetadata {
            cluster_id: "c".into(),
            next_producer_id: 7,
            topics: BTreeMap::new(),
            broker_configs: DynamicBrokerConfigs::default(),
            group_configs: BTreeMap::new(),
        };
        metadata
            .broker_configs
            .default
            .insert("log.retention.ms".into(), "1000".into());
        metadata
            .group_configs
            .entry("g".into())
            .or_default()
            .insert("consumer.session.timeout.ms".into(), "50000".into());
        metadata.topics.insert(
            "t".into(),
            TopicRecord {
                name: "t".into(),
                id: uuid::Uuid::from_u128(5),
                partitions: 3,
                configs: BTreeMap::new(),
            },
        );
        store.save(&metadata).expect("save");
        assert_eq!(store.load().expect("load"), Some(metadata));
        // A file written before dynamic and group configs existed still loads.
        std::fs::write(
            dir.path().join(METADATA_FILE),
            br#"{"cluster_id":"c","next_producer_id":7,"topics":{}}"#,
        )
        .expect("write");
        let old = store.load().expect("load").expect("present");
        assert!(old.broker_configs.default.is_empty() && old.group_configs.is_empty());
        std::fs::write(dir.path().join(METADATA_FILE), b"{broken").expect("write");
        assert!(matches!(store.load(), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn the_file_and_the_image_convert_both_ways() {
        let mut file = ClusterMetadata {
            cluster_id: "c".into(),
            next_producer_id: 1234,
            topics: BTreeMap::new(),
            broker_configs: DynamicBrokerConfigs::default(),
            group_configs: BTreeMap::new(),
        };
        let mut configs = BTreeMap::new();
        configs.insert("retention.ms".to_string(), "5".to_string());
        file.topics.insert(
            "t".into(),
            TopicRecord {
                name: "t".into(),
                id: uuid::Uuid::from_u128(5),
                partitions: 3,
                configs,
            },
        );
        file.broker_configs
            .default
            .insert("log.retention.ms".into(), "7".into());
        file.broker_configs
            .brokers
            .entry(1)
            .or_default()
            .insert("max.connections".into(), "9".into());
        file.group_configs
            .entry("g".into())
            .or_default()
            .insert("consumer.session.timeout.ms".into(), "50000".into());
        let image = ferrite_metadata::MetadataImage::from_records(&records_of(&file, NodeId(1)))
            .expect("image");
        assert_eq!(image.topic("t").expect("topic").partition_count(), 3);
        assert_eq!(image.next_producer_id(), 1234);
        assert_eq!(file_of(&image), file);
    }
}

//! Cluster metadata persisted in the data directory: topics (names, ids, partition counts, config overrides),
//! the cluster id, the producer-id counter, dynamic broker configs and per-group configs.
//!
//! The broker keeps the whole [`ClusterMetadata`] in memory and saves a new snapshot on every change, atomically
//! (temp file, fsync, rename, fsync directory). [`MetadataStore`] is the seam where the Raft metadata quorum
//! will replace this single-node file.

use crate::config::dynamic::DynamicBrokerConfigs;
use crate::config::group::GroupOverrides;
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
}

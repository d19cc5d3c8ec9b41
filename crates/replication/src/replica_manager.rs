//! The partitions this node holds a replica of, opened and given roles as the metadata says, and found for
//! each request with one typed answer.
//!
//! ```text
//!   metadata delta ──▶ ReplicaManager::apply(changes)  ──▶ open / set role / close / delete
//!   request        ──▶ ReplicaManager::leader_partition(topic, partition, client's leader epoch)
//!                        ──▶ Ok(partition) | UnknownTopicOrPartition | NotLeader | Fenced/UnknownLeaderEpoch
//! ```
//! The replica manager knows nothing of topics' configs or names beyond what a change carries: the server
//! turns metadata into [`PartitionChange`]s, so this crate depends on the log alone.

use crate::error::ReplicaError;
use crate::ids::{LeaderEpoch, NodeId};
use crate::partition::Partition;
use crate::role::Role;
use ferrite_log::file_names::partition_dir;
use ferrite_log::{LogConfig, LogOptions, PartitionLog};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// A partition by topic name and index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

/// What the metadata says of one partition this node is concerned with.
#[derive(Debug, Clone)]
pub enum PartitionChange {
    /// This node holds a replica in `role`: open the log if it is not open, and apply the role.
    Replica {
        tp: TopicPartition,
        role: Role,
        config: LogConfig,
    },
    /// The topic's config changed.
    Config {
        tp: TopicPartition,
        config: LogConfig,
    },
    /// This node no longer holds a replica: close it, and remove its data if the topic was deleted.
    Removed {
        tp: TopicPartition,
        delete_data: bool,
    },
}

#[derive(Debug)]
pub struct ReplicaManager {
    local: NodeId,
    data_dir: PathBuf,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
}

impl ReplicaManager {
    pub fn new(local: NodeId, data_dir: impl Into<PathBuf>) -> Self {
        ReplicaManager {
            local,
            data_dir: data_dir.into(),
            partitions: RwLock::new(HashMap::new()),
        }
    }

    pub fn local_node(&self) -> NodeId {
        self.local
    }

    /// Applies the changes in order; stops at the first that fails (the caller logs it: a partition that
    /// cannot be opened is not served, the others are).
    pub fn apply(&self, changes: Vec<PartitionChange>) -> Vec<(TopicPartition, ReplicaError)> {
        let mut failed = vec![];
        for change in changes {
            let (tp, result) = match change {
                PartitionChange::Replica { tp, role, config } => {
                    let result = self.open_or_update(&tp, role, config).map(|_| ());
                    (tp, result)
                }
                PartitionChange::Config { tp, config } => {
                    if let Some(p) = self.partition(&tp.topic, tp.partition) {
                        p.log().update_config(config);
                    }
                    (tp, Ok(()))
                }
                PartitionChange::Removed { tp, delete_data } => {
                    let result = self.remove(&tp, delete_data);
                    (tp, result)
                }
            };
            if let Err(e) = result {
                failed.push((tp, e));
            }
        }
        failed
    }

    /// Opens the replica (recovering its log if needed) or updates the open one; returns it.
    pub fn open_or_update(
        &self,
        tp: &TopicPartition,
        role: Role,
        config: LogConfig,
    ) -> Result<Arc<Partition>, ReplicaError> {
        if let Some(existing) = self.partition(&tp.topic, tp.partition) {
            existing.log().update_config(config);
            existing.set_role(role)?;
            return Ok(existing);
        }
        let dir = partition_dir(&self.data_dir, &tp.topic, tp.partition);
        let log = PartitionLog::open(&dir, config, LogOptions::default())?;
        let partition = Arc::new(Partition::new(
            tp.topic.clone(),
            tp.partition,
            self.local,
            log,
            role,
        )?);
        self.write().insert(tp.clone(), Arc::clone(&partition));
        Ok(partition)
    }

    /// Takes the replica out of service and closes its log; with `delete_data`, removes its directory too.
    pub fn remove(&self, tp: &TopicPartition, delete_data: bool) -> Result<(), ReplicaError> {
        let Some(partition) = self.write().remove(tp) else {
            return Ok(());
        };
        let dir = partition.log().dir().to_path_buf();
        let closed = partition.close();
        if delete_data {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove a deleted partition's directory");
            }
        }
        closed.map_err(ReplicaError::from)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<TopicPartition, Arc<Partition>>> {
        self.partitions.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The replica of `topic`-`partition` on this node, whatever its role.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        let key = TopicPartition::new(topic, partition);
        self.partitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned()
    }

    /// The partition a produce or consumer fetch must go to: this node's replica, leading, at the epoch the
    /// client believes in (if it says).
    pub fn leader_partition(
        &self,
        topic: &str,
        partition: i32,
        requested_epoch: Option<LeaderEpoch>,
    ) -> Result<Arc<Partition>, ReplicaError> {
        let p = self.partition(topic, partition).ok_or_else(|| {
            ReplicaError::UnknownTopicOrPartition {
                topic: topic.to_string(),
                partition,
            }
        })?;
        p.check_leader(requested_epoch)?;
        Ok(p)
    }

    /// Every replica on this node.
    pub fn partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Flushes and closes every log, so the next start need not recover them.
    pub fn close_all(&self) -> usize {
        let mut failed = 0;
        for p in self.partitions() {
            if let Err(e) = p.close() {
                failed += 1;
                tracing::error!(topic = %p.topic(), partition = p.index(), error = %e, "closing log failed");
            }
        }
        failed
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn opens_finds_and_removes_replicas() {
        let tmp = tempfile::tempdir().unwrap();
        let manager = ReplicaManager::new(NodeId(1), tmp.path());
        let tp = TopicPartition::new("t", 0);
        let failed = manager.apply(vec![PartitionChange::Replica {
            tp: tp.clone(),
            role: Role::sole_leader(NodeId(1), LeaderEpoch(0)),
            config: LogConfig::default(),
        }]);
        assert!(failed.is_empty());
        assert!(manager.leader_partition("t", 0, None).is_ok());
        assert!(matches!(
            manager.leader_partition("t", 1, None),
            Err(ReplicaError::UnknownTopicOrPartition { .. })
        ));
        assert!(matches!(
            manager.leader_partition("t", 0, Some(LeaderEpoch(1))),
            Err(ReplicaError::UnknownLeaderEpoch { .. })
        ));
        let dir = manager.partition("t", 0).unwrap().log().dir().to_path_buf();
        assert!(manager
            .apply(vec![PartitionChange::Removed {
                tp,
                delete_data: true
            }])
            .is_empty());
        assert!(manager.partition("t", 0).is_none());
        assert!(!dir.exists());
    }
}

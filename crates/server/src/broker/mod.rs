//! The broker's shared state: configuration, topics and their partition logs, cluster metadata.
//!
//! Handlers hold an `Arc<Broker>`. Reads (topic lookups) take a read lock for a map lookup only; changes to
//! topics are serialised by the metadata mutex, persisted through [`MetadataStore`] before they become
//! visible, and swap in new immutable [`Topic`] values.

mod dynamic_configs;
pub mod log_dir_lock;
pub mod maintenance;
pub mod metadata_store;
pub mod topic;
pub mod topic_name;

use crate::config::broker::BrokerConfig;
use crate::config::dynamic::LiveConfig;
use crate::config::topic::{effective_config, validate_topic_config, TopicOverrides};
use crate::groups::GroupCoordinator;
use ferrite_replication::{
    LeaderEpoch, NodeId, PartitionChange, ReplicaManager, Role, TopicPartition,
};
use log_dir_lock::{LogDirError, LogDirLocks};
use metadata_store::{ClusterMetadata, MetadataStore, StoreError, TopicRecord};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
pub use topic::{Partition, Topic};

/// Why a topic operation failed; handlers map these to Kafka error codes.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error("topic '{0}' already exists")]
    AlreadyExists(String),
    #[error("unknown topic '{0}'")]
    UnknownTopic(String),
    #[error("{0}")]
    InvalidName(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0}")]
    InvalidConfig(String),
    /// A request that makes no sense whatever the state (an unknown config operation, a bad resource name).
    #[error("{0}")]
    InvalidRequest(String),
    #[error("storage error: {0}")]
    Storage(String),
    #[error(transparent)]
    LogDir(#[from] LogDirError),
}

impl From<StoreError> for TopicError {
    fn from(e: StoreError) -> Self {
        TopicError::Storage(e.to_string())
    }
}

impl From<ferrite_log::LogError> for TopicError {
    fn from(e: ferrite_log::LogError) -> Self {
        TopicError::Storage(e.to_string())
    }
}

/// Counters an operator (and the tests) can read.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Record bytes sent to sockets with sendfile(2).
    pub fetch_sendfile_bytes: AtomicU64,
    /// Record bytes copied through user space (none on plaintext connections).
    pub fetch_copied_bytes: AtomicU64,
    pub produce_requests: AtomicU64,
    pub fetch_requests: AtomicU64,
    /// Produce v0-2: partitions whose magic 0/1 message set was up-converted to a v2 batch, and its messages.
    pub produce_up_converted_batches: AtomicU64,
    pub produce_up_converted_records: AtomicU64,
    /// Fetch v0-3: partition answers down-converted to magic 0/1 message sets, built in memory instead of sent
    /// with sendfile(2), and their bytes.
    pub fetch_down_conversions: AtomicU64,
    pub fetch_down_converted_bytes: AtomicU64,
}

#[derive(Debug)]
pub struct Broker {
    /// The configuration as loaded at start-up; settings that can change live are read from
    /// [`Broker::live_config`] instead.
    pub config: BrokerConfig,
    /// The configuration with the dynamic broker configs applied (`dynamic_configs.rs`).
    live: RwLock<Arc<LiveConfig>>,
    pub data_dir: PathBuf,
    /// Every partition replica this node holds.
    pub replicas: ReplicaManager,
    pub metrics: Metrics,
    store: Box<dyn MetadataStore>,
    metadata: Mutex<ClusterMetadata>,
    cluster_id: String,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    /// Bumped whenever a topic is created or deleted: pattern subscriptions are resolved again only then.
    topic_names_version: AtomicU64,
    /// Set once at the end of [`Broker::open`], after the topics it replays are open.
    groups: OnceLock<GroupCoordinator>,
    /// Held while the broker runs, so no second broker opens the same log directories.
    _log_dir_locks: LogDirLocks,
}

pub const MAX_PARTITIONS_PER_TOPIC: i32 = 100_000;

impl Broker {
    /// Locks the log directories, loads metadata and opens every partition log (recovering any that were not
    /// closed cleanly).
    pub fn open(config: BrokerConfig, store: Box<dyn MetadataStore>) -> Result<Broker, TopicError> {
        let locks = LogDirLocks::acquire(&config.log_dirs)?;
        Self::open_locked(config, store, locks)
    }

    /// [`Broker::open`] with the log directories already locked (the server locks them before it binds its
    /// listener, so a second broker on the same directories stops before it accepts anything).
    pub fn open_locked(
        config: BrokerConfig,
        store: Box<dyn MetadataStore>,
        locks: LogDirLocks,
    ) -> Result<Broker, TopicError> {
        let data_dir = config
            .log_dirs
            .first()
            .cloned()
            .unwrap_or_else(|| PathBuf::from("./data"));
        let metadata = match store.load()? {
            Some(m) => m,
            None => {
                let fresh = ClusterMetadata {
                    cluster_id: new_cluster_id(),
                    next_producer_id: 1000,
                    topics: BTreeMap::new(),
                    broker_configs: Default::default(),
                    group_configs: BTreeMap::new(),
                };
                store.save(&fresh)?;
                fresh
            }
        };
        let (live, skipped) = LiveConfig::new(&config, &metadata.broker_configs);
        for setting in skipped {
            tracing::warn!(%setting, "ignoring a stored dynamic broker config this version cannot apply");
        }
        let replicas = ReplicaManager::new(NodeId(config.node_id), &data_dir);
        let mut topics = HashMap::new();
        for record in metadata.topics.values() {
            let topic = open_topic(&live.effective, &replicas, record)?;
            topics.insert(record.name.clone(), Arc::new(topic));
        }
        let broker = Broker {
            cluster_id: metadata.cluster_id.clone(),
            config,
            live: RwLock::new(Arc::new(live)),
            data_dir,
            replicas,
            metrics: Metrics::default(),
            store,
            metadata: Mutex::new(metadata),
            topics: RwLock::new(topics),
            topic_names_version: AtomicU64::new(0),
            groups: OnceLock::new(),
            _log_dir_locks: locks,
        };
        let coordinator = GroupCoordinator::start(&broker)?;
        let _ = broker.groups.set(coordinator);
        Ok(broker)
    }

    /// The group coordinator (every group maps to a partition this single broker leads).
    pub fn groups(&self) -> Option<&GroupCoordinator> {
        self.groups.get()
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    pub fn node_id(&self) -> i32 {
        self.config.node_id
    }

    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    pub fn topic_by_id(&self, id: uuid::Uuid) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .find(|t| t.id == id)
            .cloned()
    }

    /// All topics, sorted by name.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        let mut all: Vec<_> = self
            .topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Changes whenever a topic is created or deleted.
    pub fn topic_names_version(&self) -> u64 {
        self.topic_names_version.load(Ordering::Relaxed)
    }

    pub fn partition(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        self.topic(topic)?.partition(index).cloned()
    }

    fn lock_metadata(&self) -> std::sync::MutexGuard<'_, ClusterMetadata> {
        self.metadata.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish(&self, topic: Topic) -> Arc<Topic> {
        let topic = Arc::new(topic);
        self.topics
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(topic.name.clone(), Arc::clone(&topic));
        topic
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
        if self.topic(name).is_some() {
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

    /// Creates a topic: partition logs first, then the metadata record (so a crash in between leaves only
    /// unreferenced directories, never a topic without its logs). `partitions`/`replication` of -1 mean the
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
        let mut metadata = self.lock_metadata();
        self.validate_new_topic(name, partitions, replication, &overrides)?;
        let record = TopicRecord {
            name: name.to_string(),
            id: uuid::Uuid::new_v4(),
            partitions,
            configs: overrides,
        };
        let topic = open_topic(&self.live_config().effective, &self.replicas, &record)?;
        metadata.topics.insert(name.to_string(), record);
        if let Err(e) = self.store.save(&metadata) {
            metadata.topics.remove(name);
            return Err(e.into());
        }
        self.topic_names_version.fetch_add(1, Ordering::Relaxed);
        tracing::info!(topic = name, partitions, "created topic");
        Ok(self.publish(topic))
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

    /// Deletes a topic and its data.
    pub fn delete_topic(&self, name: &str) -> Result<(), TopicError> {
        let mut metadata = self.lock_metadata();
        let removed = metadata
            .topics
            .remove(name)
            .ok_or_else(|| TopicError::UnknownTopic(name.to_string()))?;
        if let Err(e) = self.store.save(&metadata) {
            metadata.topics.insert(name.to_string(), removed);
            return Err(e.into());
        }
        let topic = self
            .topics
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        drop(metadata);
        if let Some(topic) = &topic {
            // Taking a replica offline also answers the long polls waiting on it.
            let removed = topic.partitions.iter().map(|p| PartitionChange::Removed {
                tp: TopicPartition::new(name, p.index()),
                delete_data: true,
            });
            for (tp, e) in self.replicas.apply(removed.collect()) {
                tracing::warn!(topic = %tp.topic, partition = tp.partition, error = %e, "removing a deleted partition failed");
            }
        }
        self.topic_names_version.fetch_add(1, Ordering::Relaxed);
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
        let mut metadata = self.lock_metadata();
        let current = self
            .topic(name)
            .ok_or_else(|| TopicError::UnknownTopic(name.to_string()))?;
        let existing = current.partitions.len() as i32;
        if total <= existing || total > MAX_PARTITIONS_PER_TOPIC {
            return Err(TopicError::InvalidPartitions(format!(
                "topic currently has {existing} partitions; {total} would not add any (or exceeds {MAX_PARTITIONS_PER_TOPIC})"
            )));
        }
        if validate_only {
            return Ok(());
        }
        let mut partitions = current.partitions.clone();
        for index in existing..total {
            partitions.push(open_partition(
                &self.replicas,
                name,
                index,
                &current.effective.log,
            )?);
        }
        if let Some(record) = metadata.topics.get_mut(name) {
            record.partitions = total;
        }
        self.store.save(&metadata)?;
        self.publish(Topic {
            partitions,
            ..clone_topic(&current)
        });
        Ok(())
    }

    /// Replaces a topic's config overrides and applies them live to its partition logs.
    pub fn set_topic_overrides(
        &self,
        name: &str,
        overrides: TopicOverrides,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let mut metadata = self.lock_metadata();
        let current = self
            .topic(name)
            .ok_or_else(|| TopicError::UnknownTopic(name.to_string()))?;
        for (key, value) in &overrides {
            validate_topic_config(key, value)
                .map_err(|e| TopicError::InvalidConfig(e.to_string()))?;
        }
        let effective = effective_config(&self.live_config().effective.topic_defaults, &overrides)
            .map_err(|e| TopicError::InvalidConfig(e.to_string()))?;
        if validate_only {
            return Ok(());
        }
        if let Some(record) = metadata.topics.get_mut(name) {
            record.configs = overrides.clone();
        }
        self.store.save(&metadata)?;
        for partition in &current.partitions {
            partition.log().update_config(effective.log.clone());
        }
        self.publish(Topic {
            overrides,
            effective,
            ..clone_topic(&current)
        });
        Ok(())
    }

    /// Hands out a new producer id, persisted before it is returned so it is never reused after a restart.
    pub fn allocate_producer_id(&self) -> Result<i64, TopicError> {
        let mut metadata = self.lock_metadata();
        let id = metadata.next_producer_id;
        metadata.next_producer_id += 1;
        self.store.save(&metadata)?;
        Ok(id)
    }

    /// Flushes and closes every log so the next start need not recover them.
    pub fn close(&self) {
        self.replicas.close_all();
    }
}

fn clone_topic(t: &Topic) -> Topic {
    Topic {
        name: t.name.clone(),
        id: t.id,
        partitions: t.partitions.clone(),
        overrides: t.overrides.clone(),
        effective: t.effective.clone(),
    }
}

fn open_topic(
    config: &BrokerConfig,
    replicas: &ReplicaManager,
    record: &TopicRecord,
) -> Result<Topic, TopicError> {
    let effective = effective_config(&config.topic_defaults, &record.configs)
        .map_err(|e| TopicError::InvalidConfig(e.to_string()))?;
    let partitions = (0..record.partitions)
        .map(|index| open_partition(replicas, &record.name, index, &effective.log))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Topic {
        name: record.name.clone(),
        id: record.id,
        partitions,
        overrides: record.configs.clone(),
        effective,
    })
}

/// Opens this node's replica of a partition: a single node leads every partition, always in epoch 0.
fn open_partition(
    replicas: &ReplicaManager,
    topic: &str,
    index: i32,
    log_config: &ferrite_log::LogConfig,
) -> Result<Arc<Partition>, TopicError> {
    let role = Role::sole_leader(replicas.local_node(), LeaderEpoch(0));
    replicas
        .open_or_update(&TopicPartition::new(topic, index), role, log_config.clone())
        .map_err(|e| TopicError::Storage(e.to_string()))
}

/// A random 22-character base64url id, the form Kafka uses for cluster ids.
fn new_cluster_id() -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits: u128 = u128::from_be_bytes(bytes);
    (0..22)
        .map(|_| {
            let c = ALPHABET[(bits & 63) as usize] as char;
            bits >>= 6;
            c
        })
        .collect()
}

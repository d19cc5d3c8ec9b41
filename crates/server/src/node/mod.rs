//! A node of the cluster and everything its handlers need: configuration, the metadata image, the replicas it
//! holds, the group coordinator and metrics.
//!
//! ```text
//!   handlers ──▶ Node ──reads──▶ SharedImage (metadata) ── Topic views (effective configs, cached)
//!                  │                   ▲
//!                  │ changes ──▶ controller: checks, writes records ──▶ publish: store, image, delta
//!                  │                                                        │
//!                  ├── replicas: ReplicaManager ◀── PartitionChanges ───────┤
//!                  ├── groups: GroupCoordinator ◀── group configs ──────────┤
//!                  └── live: LiveConfig ◀── dynamic broker configs ─────────┘
//! ```
//! Today one node is the whole cluster: it is its own controller, its metadata file is the store, and it
//! leads every partition. Handlers read topics through cached [`Topic`] views and partitions through the
//! replica manager; every change goes through records, so the quorum can take over the controller's part.

mod applied_log;
mod controller;
mod describe_quorum;
mod forward;
pub(crate) mod isr_change;
pub mod leader_election;
pub(crate) mod lifecycle;
pub mod log_dir_lock;
pub mod maintenance;
pub mod metadata_store;
mod observer;
mod placement;
mod producer_ids;
pub(crate) mod publish;
mod quorum;
pub mod reassignment;
mod service;
pub mod topic;
pub mod topic_name;

use crate::config::broker::BrokerConfig;
use crate::config::dynamic::LiveConfig;
use crate::groups::{CoordinatorContext, GroupCoordinator};
use ferrite_metadata::{MetadataImage, SharedImage};
use ferrite_replication::{NodeId, ReplicaManager};
pub use forward::{QuorumDescription, ReplicaProgress};
use log_dir_lock::{LogDirError, LogDirLocks};
use metadata_store::{MetadataStore, StoreError};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use tokio::sync::watch;
pub use topic::{Partition, Topic};

/// Why a metadata change or a start-up step failed; handlers map these to Kafka error codes.
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
    InvalidReplicaAssignment(String),
    #[error("{0}")]
    InvalidConfig(String),
    /// A request that makes no sense whatever the state (an unknown config operation, a bad resource name).
    #[error("{0}")]
    InvalidRequest(String),
    /// This node cannot write metadata now (it is not the quorum's leader); retriable elsewhere.
    #[error("not the active controller: {0}")]
    NotController(String),
    /// The quorum did not commit the change in time (it may have lost its majority); retriable.
    #[error("{0}")]
    Timeout(String),
    /// A change computed from a state the metadata has moved on from (a newer leader or partition epoch),
    /// refused; the newer state reaches the asking node through the metadata.
    #[error("{0}")]
    Stale(String),
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
    /// Record bytes written to sockets from memory instead of sendfile(2): the message sets down-converted for
    /// Fetch v0-3 (none for current clients on plaintext connections).
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
    /// On the active controller: leaders elected outside the ISR (`unclean.leader.election.enable`).
    pub unclean_leader_elections: AtomicU64,
    /// acks=all produces answered NOT_ENOUGH_REPLICAS (before appending) or ..._AFTER_APPEND.
    pub produce_not_enough_replicas: AtomicU64,
    /// Record bytes followers appended from their leaders.
    pub replica_fetched_bytes: AtomicU64,
    /// ISR changes this node (as leader) asked for and the controller accepted, shrinks and expansions.
    pub isr_shrinks: AtomicU64,
    pub isr_expands: AtomicU64,
}

#[derive(Debug)]
pub struct Node {
    /// The configuration as loaded at start-up; settings that can change live are read from
    /// [`Node::live_config`] instead.
    pub config: BrokerConfig,
    /// The configuration with the dynamic broker configs of the image applied.
    live: RwLock<Arc<LiveConfig>>,
    pub data_dir: PathBuf,
    /// Every partition replica this node holds.
    pub replicas: Arc<ReplicaManager>,
    pub metrics: Metrics,
    /// The metadata image this node serves from: what it has applied of the quorum's log.
    metadata: Arc<SharedImage>,
    /// The metadata quorum (set once, at start).
    quorum: OnceLock<quorum::QuorumRuntime>,
    /// What this node applied of the metadata log, for brokers that follow it from here.
    applied_log: Mutex<applied_log::AppliedLog>,
    /// This process's registration id: a restart is a new incarnation.
    incarnation: uuid::Uuid,
    /// On the active controller: when each broker was last heard from.
    liveness: lifecycle::Liveness,
    /// The block of producer ids this broker hands out.
    producer_ids: Mutex<producer_ids::ProducerIdBlock>,
    /// The single-node metadata file of older versions, imported into a new metadata log once.
    store: Box<dyn MetadataStore>,
    /// One change of the metadata at a time: held from reading the image a change starts from until the
    /// image it makes is published.
    writer: Mutex<()>,
    /// Topic views by name, rebuilt from the image (and the live config) whenever either changes.
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    /// The group coordinator, on a node with the broker role.
    groups: OnceLock<GroupCoordinator>,
    /// The fetchers that replicate the partitions this node follows (set once, right after the node is made).
    fetchers: OnceLock<crate::replica_fetcher::ReplicaFetchers>,
    /// Set once a controlled shutdown began: heartbeats stop, so nothing unfences this broker again.
    shutting_down: std::sync::atomic::AtomicBool,
    /// Set once the start has caught up with the metadata log: the coordinator loads its partitions only from
    /// then on, so groups are restored against the current topics, not a half-replayed image.
    caught_up: std::sync::atomic::AtomicBool,
    /// Held while the node runs, so no second broker opens the same log directories.
    _log_dir_locks: LogDirLocks,
}

pub const MAX_PARTITIONS_PER_TOPIC: i32 = 100_000;

impl Node {
    /// Locks the log directories, starts the metadata quorum, applies the metadata log (opening and recovering
    /// every partition log this node holds) and starts the group coordinator. Blocking: call from a blocking
    /// thread of the runtime.
    pub fn open(
        config: BrokerConfig,
        store: Box<dyn MetadataStore>,
    ) -> Result<Arc<Node>, TopicError> {
        let locks = LogDirLocks::acquire(&config.log_dirs)?;
        Self::open_locked(config, store, locks)
    }

    /// [`Node::open`] with the log directories already locked (the server locks them before it binds its
    /// listener, so a second broker on the same directories stops before it accepts anything).
    pub fn open_locked(
        config: BrokerConfig,
        store: Box<dyn MetadataStore>,
        locks: LogDirLocks,
    ) -> Result<Arc<Node>, TopicError> {
        let data_dir = config
            .log_dirs
            .first()
            .cloned()
            .unwrap_or_else(|| PathBuf::from("./data"));
        let local = NodeId(config.node_id);
        let empty = MetadataImage::default();
        let live = publish::live_config(&config, &empty);
        let node = Arc::new(Node {
            config,
            live: RwLock::new(Arc::new(live)),
            replicas: Arc::new(ReplicaManager::new(local, &data_dir)),
            data_dir,
            metrics: Metrics::default(),
            metadata: Arc::new(SharedImage::new(empty)),
            quorum: OnceLock::new(),
            applied_log: Mutex::new(applied_log::AppliedLog::default()),
            incarnation: uuid::Uuid::new_v4(),
            liveness: Mutex::new(lifecycle::BrokerLiveness::default()),
            producer_ids: Mutex::new(producer_ids::ProducerIdBlock::default()),
            store,
            writer: Mutex::new(()),
            topics: RwLock::new(HashMap::new()),
            groups: OnceLock::new(),
            fetchers: OnceLock::new(),
            shutting_down: std::sync::atomic::AtomicBool::new(false),
            caught_up: std::sync::atomic::AtomicBool::new(false),
            _log_dir_locks: locks,
        });
        let _ = node
            .fetchers
            .set(crate::replica_fetcher::ReplicaFetchers::new(
                Arc::downgrade(&node),
                tokio::runtime::Handle::try_current().ok(),
            ));
        if node.config.quorum.broker {
            let context = CoordinatorContext {
                config: node.config.clone(),
                metadata: Arc::clone(&node.metadata),
            };
            // Before the quorum starts: applying the metadata hands it the partitions it coordinates.
            let _ = node.groups.set(GroupCoordinator::start(context));
        }
        let (applied, _) = watch::channel(0);
        let runtime = quorum::start(&node, applied)?;
        let _ = node.quorum.set(runtime);
        node.bootstrap()?;
        if node.config.quorum.is_single_node() {
            node.ensure_offsets_topic()?;
        }
        node.check_replicas_open()?;
        node.caught_up
            .store(true, std::sync::atomic::Ordering::Release);
        node.reconcile_group_coordinator(&node.image());
        Ok(node)
    }

    /// The group coordinator (on a node with the broker role); it coordinates the groups of the
    /// `__consumer_offsets` partitions this node leads.
    pub fn groups(&self) -> Option<&GroupCoordinator> {
        self.groups.get()
    }

    /// The coordinator of a group, if this node is it; else the error a client acts on: NOT_COORDINATOR
    /// (look it up again), or COORDINATOR_NOT_AVAILABLE (none yet).
    pub fn group_coordinator(&self, group_id: &str) -> Result<&GroupCoordinator, i16> {
        let groups = self
            .groups()
            .ok_or(ferrite_wire::error_code::COORDINATOR_NOT_AVAILABLE)?;
        if groups.coordinates(group_id) {
            Ok(groups)
        } else if groups.partition_index_for(group_id).is_none() {
            Err(ferrite_wire::error_code::COORDINATOR_NOT_AVAILABLE)
        } else {
            Err(ferrite_wire::error_code::NOT_COORDINATOR)
        }
    }

    pub fn cluster_id(&self) -> String {
        self.metadata
            .current()
            .cluster_id()
            .unwrap_or_default()
            .to_string()
    }

    pub fn node_id(&self) -> i32 {
        self.config.node_id
    }

    fn applied_log(&self) -> std::sync::MutexGuard<'_, applied_log::AppliedLog> {
        self.applied_log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The metadata image in force now.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.metadata.current()
    }

    /// The configuration in force now: the static one with the dynamic broker configs applied.
    pub fn live_config(&self) -> Arc<LiveConfig> {
        Arc::clone(&self.live.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    pub fn topic_by_id(&self, id: uuid::Uuid) -> Option<Arc<Topic>> {
        let name = self.image().topic_by_id(id)?.name.clone();
        self.topic(&name)
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

    /// The active controller as this node knows it.
    pub fn active_controller(&self) -> Option<i32> {
        self.quorum().ok().and_then(|q| q.leader())
    }

    /// The controllers: (node id, host, port) of each voter's controller listener; a single node names itself
    /// at its client listener.
    pub fn controller_endpoints(&self) -> Vec<(i32, String, u16)> {
        let voters = &self.config.quorum.voters;
        if voters.is_empty() {
            return vec![(
                self.node_id(),
                self.config.advertised_host.clone(),
                self.config.advertised_port,
            )];
        }
        voters
            .iter()
            .map(|v| (v.id, v.host.clone(), v.port))
            .collect()
    }

    /// Whether the cluster has partition `index` of `topic` (on whichever broker).
    pub fn cluster_has(&self, topic: &str, index: i32) -> bool {
        self.image()
            .topic(topic)
            .is_some_and(|t| t.partitions.contains_key(&index))
    }

    /// This node's replica of a partition, whatever its role.
    pub fn partition(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        self.replicas.partition(topic, index)
    }

    /// The replica fetchers of this node.
    pub fn fetchers(&self) -> Option<&crate::replica_fetcher::ReplicaFetchers> {
        self.fetchers.get()
    }

    /// Flushes and closes every log (the metadata log too) so the next start need not recover them. Returns
    /// how many logs could not be closed cleanly (each logged); the next start recovers those.
    pub fn close(&self) -> usize {
        if let Some(fetchers) = self.fetchers.get() {
            fetchers.shutdown();
        }
        let mut failed = self.replicas.close_all();
        if let Some(quorum) = self.quorum.get() {
            failed += usize::from(!quorum.shutdown());
        }
        failed
    }
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

//! The controller's part: every metadata change is an operation ([`ControllerOp`]) that the active controller
//! checks against the image in force and writes as records. A node that is not the active controller
//! forwards the operation to it (`quorum.rs`) and answers once its own image includes the result.
//!
//! ```text
//!   request ─▶ Node::execute(op) ─▶ active controller here? ─▶ execute_here: lock writer, check, records,
//!                                         │                                  commit through the quorum
//!                                         └─ no: forward to it ─▶ wait until this node applied the result
//! ```
//! `validate_only` operations stop after the checks and write nothing.

use super::placement::place_replicas;
use super::topic_name;
use super::{Node, Topic, TopicError, MAX_PARTITIONS_PER_TOPIC};
use crate::config::change::{list_value, ChangeError, ConfigChange};
use crate::config::dynamic::{
    validate_entity, BrokerEntity, DynamicBrokerConfigs, DynamicSettings, LiveConfig,
};
use crate::config::group::{group_timings, validate_group_overrides, GroupOverrides, GroupTimings};
use crate::config::topic::{
    describe_topic, effective_config, validate_topic_config, TopicOverrides,
};
use ferrite_metadata::{
    BrokerRegistration, ConfigResource, MetadataImage, MetadataRecord, PartitionRecord,
};
use ferrite_replication::{LeaderEpoch, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, MutexGuard};

/// A metadata change, as data: what a broker forwards to the active controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControllerOp {
    CreateTopic {
        name: String,
        /// -1: `num.partitions`.
        partitions: i32,
        /// -1: `default.replication.factor`.
        replication: i16,
        overrides: TopicOverrides,
        /// Replicas per partition as the request gives them (empty: placed by the controller).
        #[serde(default)]
        assignments: Vec<Vec<NodeId>>,
        validate_only: bool,
    },
    DeleteTopic {
        name: String,
    },
    CreatePartitions {
        name: String,
        total: i32,
        /// Replicas of each new partition (empty: placed by the controller).
        #[serde(default)]
        assignments: Vec<Vec<NodeId>>,
        validate_only: bool,
    },
    AlterTopicConfigs {
        name: String,
        change: ConfigChange,
        validate_only: bool,
    },
    AlterBrokerConfigs {
        entity: BrokerEntity,
        change: ConfigChange,
        validate_only: bool,
    },
    AlterGroupConfigs {
        group: String,
        change: ConfigChange,
        validate_only: bool,
    },
    /// A block of `count` producer ids for the asking broker.
    AllocateProducerIds {
        count: i64,
    },
    /// A broker announces itself (at every start, with a new incarnation).
    RegisterBroker(BrokerRegistration),
    /// A broker is alive; a fenced one is unfenced.
    BrokerHeartbeat {
        node_id: NodeId,
        incarnation_id: uuid::Uuid,
    },
    /// The active controller stopped hearing from a broker (never forwarded: the controller decides it).
    FenceBroker {
        node_id: NodeId,
    },
    /// A leader asks for a new ISR (followers fell behind or caught up).
    AlterPartition(super::isr_change::AlterPartitionRequest),
    /// Preferred or unclean leader elections of these partitions (topic id, index), where they can happen.
    ElectLeaders {
        kind: super::leader_election::ElectionKind,
        partitions: Vec<(uuid::Uuid, i32)>,
    },
    /// AlterPartitionReassignments: new replica lists (or cancellations) of partitions.
    ReassignPartitions {
        requests: Vec<super::reassignment::ReassignmentRequest>,
        allow_replication_factor_change: bool,
    },
    /// A broker stopping on purpose: its leaderships move now, before it exits.
    ControlledShutdown {
        node_id: NodeId,
        incarnation_id: uuid::Uuid,
    },
    /// A new cluster's first records (its id, the producer-id counter), or the import of an older version's
    /// single-node metadata file; written only if the cluster has no id yet.
    Bootstrap {
        records: Vec<MetadataRecord>,
    },
}

/// What the active controller answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerAnswer {
    /// The metadata log index that includes the change (0: nothing was written).
    pub index: u64,
    /// For `AllocateProducerIds`: the first id of the block.
    pub first_producer_id: i64,
}

/// A refused operation, as it travels back from the active controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControllerFailure {
    AlreadyExists(String),
    UnknownTopic(String),
    InvalidName(String),
    InvalidPartitions(String),
    InvalidReplicationFactor(String),
    InvalidReplicaAssignment(String),
    InvalidConfig(String),
    InvalidRequest(String),
    Storage(String),
    Timeout(String),
    Stale(String),
    /// The node asked is not the active controller; `leader` is the one it knows, if any.
    NotController {
        leader: Option<i32>,
        reason: String,
    },
}

impl From<&TopicError> for ControllerFailure {
    fn from(e: &TopicError) -> Self {
        match e {
            TopicError::AlreadyExists(t) => ControllerFailure::AlreadyExists(t.clone()),
            TopicError::UnknownTopic(t) => ControllerFailure::UnknownTopic(t.clone()),
            TopicError::InvalidName(m) => ControllerFailure::InvalidName(m.clone()),
            TopicError::InvalidPartitions(m) => ControllerFailure::InvalidPartitions(m.clone()),
            TopicError::InvalidReplicationFactor(m) => {
                ControllerFailure::InvalidReplicationFactor(m.clone())
            }
            TopicError::InvalidReplicaAssignment(m) => {
                ControllerFailure::InvalidReplicaAssignment(m.clone())
            }
            TopicError::InvalidConfig(m) => ControllerFailure::InvalidConfig(m.clone()),
            TopicError::InvalidRequest(m) => ControllerFailure::InvalidRequest(m.clone()),
            TopicError::Timeout(m) => ControllerFailure::Timeout(m.clone()),
            TopicError::Stale(m) => ControllerFailure::Stale(m.clone()),
            TopicError::NotController(m) => ControllerFailure::NotController {
                leader: None,
                reason: m.clone(),
            },
            TopicError::Storage(_) | TopicError::LogDir(_) => {
                ControllerFailure::Storage(e.to_string())
            }
        }
    }
}

impl From<ControllerFailure> for TopicError {
    fn from(f: ControllerFailure) -> Self {
        match f {
            ControllerFailure::AlreadyExists(t) => TopicError::AlreadyExists(t),
            ControllerFailure::UnknownTopic(t) => TopicError::UnknownTopic(t),
            ControllerFailure::InvalidName(m) => TopicError::InvalidName(m),
            ControllerFailure::InvalidPartitions(m) => TopicError::InvalidPartitions(m),
            ControllerFailure::InvalidReplicationFactor(m) => {
                TopicError::InvalidReplicationFactor(m)
            }
            ControllerFailure::InvalidReplicaAssignment(m) => {
                TopicError::InvalidReplicaAssignment(m)
            }
            ControllerFailure::InvalidConfig(m) => TopicError::InvalidConfig(m),
            ControllerFailure::InvalidRequest(m) => TopicError::InvalidRequest(m),
            ControllerFailure::Storage(m) => TopicError::Storage(m),
            ControllerFailure::Timeout(m) => TopicError::Timeout(m),
            ControllerFailure::Stale(m) => TopicError::Stale(m),
            ControllerFailure::NotController { reason, .. } => TopicError::NotController(reason),
        }
    }
}

impl From<ChangeError> for TopicError {
    fn from(e: ChangeError) -> Self {
        match e {
            ChangeError::InvalidConfig(m) => TopicError::InvalidConfig(m),
            ChangeError::InvalidRequest(m) => TopicError::InvalidRequest(m),
        }
    }
}

/// The public face of the operations, for handlers.
impl Node {
    /// Creates a topic as a CreateTopics request asks (`assignments` empty: the controller places the
    /// replicas); returns it once this node's metadata has it, or `None` for `validate_only`. Blocking.
    pub fn create_topic_as_requested(
        &self,
        name: &str,
        partitions: i32,
        replication: i16,
        overrides: TopicOverrides,
        assignments: Vec<Vec<NodeId>>,
        validate_only: bool,
    ) -> Result<Option<Arc<Topic>>, TopicError> {
        self.execute(ControllerOp::CreateTopic {
            name: name.to_string(),
            partitions,
            replication,
            overrides,
            assignments,
            validate_only,
        })?;
        if validate_only {
            return Ok(None);
        }
        self.topic(name)
            .map(Some)
            .ok_or_else(|| TopicError::UnknownTopic(name.to_string()))
    }

    /// Creates a topic; returns it once this node's metadata has it. `partitions`/`replication` of -1 mean the
    /// broker defaults. Blocking: call from a blocking context.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication: i16,
        overrides: TopicOverrides,
    ) -> Result<Arc<Topic>, TopicError> {
        self.create_topic_as_requested(name, partitions, replication, overrides, vec![], false)?
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
        self.execute(ControllerOp::DeleteTopic {
            name: name.to_string(),
        })
        .map(|_| ())
    }

    /// Grows a topic to `total` partitions (`assignments`: the new partitions' replicas, or empty).
    pub fn create_partitions(
        &self,
        name: &str,
        total: i32,
        assignments: Vec<Vec<NodeId>>,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        self.execute(ControllerOp::CreatePartitions {
            name: name.to_string(),
            total,
            assignments,
            validate_only,
        })
        .map(|_| ())
    }

    /// Changes a topic's own configs; they reach its partitions at once.
    pub fn alter_topic_configs(
        &self,
        name: &str,
        change: ConfigChange,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        self.execute(ControllerOp::AlterTopicConfigs {
            name: name.to_string(),
            change,
            validate_only,
        })
        .map(|_| ())
    }

    /// Changes the dynamic configs of one broker or of every broker.
    pub fn alter_broker_configs(
        &self,
        entity: BrokerEntity,
        change: ConfigChange,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        self.execute(ControllerOp::AlterBrokerConfigs {
            entity,
            change,
            validate_only,
        })
        .map(|_| ())
    }

    /// Changes a group's configs; they reach the group and its members at once.
    pub fn alter_group_configs(
        &self,
        group: &str,
        change: ConfigChange,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        self.execute(ControllerOp::AlterGroupConfigs {
            group: group.to_string(),
            change,
            validate_only,
        })
        .map(|_| ())
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

    /// A block of `count` producer ids, unique in the cluster: recorded before it is handed out, so never
    /// reused after a restart.
    pub fn allocate_producer_ids(&self, count: i64) -> Result<i64, TopicError> {
        self.execute(ControllerOp::AllocateProducerIds { count })
            .map(|answer| answer.first_producer_id)
    }
}

/// The active controller's side.
impl Node {
    pub(super) fn lock_writer(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs an operation as the active controller: checks it against the current image and commits its
    /// records. Blocking.
    pub(super) fn execute_here(&self, op: ControllerOp) -> Result<ControllerAnswer, TopicError> {
        let _writer = self.lock_writer();
        self.quorum()?.catch_up()?;
        let image = self.image();
        let (records, first_producer_id) = match op {
            ControllerOp::AllocateProducerIds { count } => {
                let first = image.next_producer_id();
                let record = MetadataRecord::ProducerIds {
                    node_id: self.replicas.local_node(),
                    next_producer_id: first + count.max(1),
                };
                (vec![record], first)
            }
            other => match self.records_for(&image, other)? {
                Some(records) => (records, 0),
                None => return Ok(ControllerAnswer::default()),
            },
        };
        let index = if records.is_empty() {
            0
        } else {
            self.quorum()?.commit(records)?
        };
        Ok(ControllerAnswer {
            index,
            first_producer_id,
        })
    }

    /// The records an operation writes; `None` for a check that passed (validate only) or a change that
    /// changes nothing.
    fn records_for(
        &self,
        image: &MetadataImage,
        op: ControllerOp,
    ) -> Result<Option<Vec<MetadataRecord>>, TopicError> {
        let records = match op {
            ControllerOp::CreateTopic {
                name,
                partitions,
                replication,
                overrides,
                assignments,
                validate_only,
            } => {
                let records = self.create_topic_records(
                    image,
                    &name,
                    partitions,
                    replication,
                    &overrides,
                    assignments,
                )?;
                tracing::info!(topic = %name, validate_only, "creating topic");
                (!validate_only).then_some(records)
            }
            ControllerOp::DeleteTopic { name } => {
                let topic = image
                    .topic(&name)
                    .ok_or_else(|| TopicError::UnknownTopic(name.clone()))?;
                tracing::info!(topic = %name, "deleting topic");
                Some(vec![MetadataRecord::RemoveTopic { topic_id: topic.id }])
            }
            ControllerOp::CreatePartitions {
                name,
                total,
                assignments,
                validate_only,
            } => {
                let records = self.new_partition_records(image, &name, total, assignments)?;
                (!validate_only).then_some(records)
            }
            ControllerOp::AlterTopicConfigs {
                name,
                change,
                validate_only,
            } => {
                let records = self.topic_config_records(image, &name, &change)?;
                (!validate_only).then_some(records)
            }
            ControllerOp::AlterBrokerConfigs {
                entity,
                change,
                validate_only,
            } => {
                let records = self.broker_config_records(image, entity, &change)?;
                (!validate_only).then_some(records)
            }
            ControllerOp::AlterGroupConfigs {
                group,
                change,
                validate_only,
            } => {
                let resource = ConfigResource::Group(group.clone());
                let current = image.configs(&resource);
                let proposed = change.apply(current, |_| None)?;
                let canonical = validate_group_overrides(&self.config, &proposed)
                    .map_err(|e| TopicError::InvalidConfig(e.to_string()))?;
                tracing::info!(%group, settings = ?canonical, validate_only, "altering group configs");
                (!validate_only).then(|| config_changes(resource, current, &canonical))
            }
            ControllerOp::RegisterBroker(registration) => {
                Some(self.register_records(image, registration))
            }
            ControllerOp::BrokerHeartbeat {
                node_id,
                incarnation_id,
            } => self.heartbeat_records(image, node_id, incarnation_id)?,
            ControllerOp::FenceBroker { node_id } => Some(self.fence_records(image, node_id)),
            ControllerOp::AlterPartition(request) => {
                super::isr_change::altered_partition(image, &request)
                    .map_err(super::isr_change::AlterPartitionError::into_topic_error)?
                    .map(|record| {
                        tracing::info!(topic_id = %request.topic_id, partition = request.partition, isr = ?record.isr, "ISR changed");
                        // The new ISR may be what a reassignment waited for.
                        let record = super::reassignment::completed(image, &record).unwrap_or(record);
                        vec![MetadataRecord::Partition(record)]
                    })
            }
            ControllerOp::ReassignPartitions {
                requests,
                allow_replication_factor_change,
            } => Some(self.reassignment_records(image, &requests, allow_replication_factor_change)),
            ControllerOp::ElectLeaders { kind, partitions } => {
                Some(self.election_records(image, kind, &partitions))
            }
            ControllerOp::ControlledShutdown {
                node_id,
                incarnation_id,
            } => Some(self.controlled_shutdown_records(image, node_id, incarnation_id)?),
            ControllerOp::Bootstrap { records } => image.cluster_id().is_none().then_some(records),
            ControllerOp::AllocateProducerIds { .. } => None,
        };
        Ok(records)
    }

    fn create_topic_records(
        &self,
        image: &MetadataImage,
        name: &str,
        partitions: i32,
        replication: i16,
        overrides: &TopicOverrides,
        assignments: Vec<Vec<NodeId>>,
    ) -> Result<Vec<MetadataRecord>, TopicError> {
        let (partitions, replication) = match assignments.first() {
            Some(first) => (
                i32::try_from(assignments.len()).unwrap_or(i32::MAX),
                i16::try_from(first.len()).unwrap_or(i16::MAX),
            ),
            None => (partitions, replication),
        };
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
        topic_name::validate_topic_name(name).map_err(TopicError::InvalidName)?;
        if image.topic(name).is_some() {
            return Err(TopicError::AlreadyExists(name.to_string()));
        }
        if !(1..=MAX_PARTITIONS_PER_TOPIC).contains(&partitions) {
            return Err(TopicError::InvalidPartitions(format!("number of partitions must be between 1 and {MAX_PARTITIONS_PER_TOPIC}, not {partitions}")));
        }
        for (key, value) in overrides {
            validate_topic_config(key, value)
                .map_err(|e| TopicError::InvalidConfig(e.to_string()))?;
        }
        effective_config(&self.live_config().effective.topic_defaults, overrides)
            .map_err(|e| TopicError::InvalidConfig(e.to_string()))?;
        let assignments = if assignments.is_empty() {
            place_replicas(image, 0, partitions, replication, random_seed())
                .map_err(TopicError::InvalidReplicationFactor)?
        } else {
            check_assignments(image, &assignments)?;
            assignments
        };
        let topic_id = uuid::Uuid::new_v4();
        let mut records = vec![MetadataRecord::Topic {
            name: name.to_string(),
            topic_id,
        }];
        records.extend(
            assignments
                .into_iter()
                .enumerate()
                .map(|(p, replicas)| new_partition(topic_id, p as i32, replicas)),
        );
        records.extend(config_changes(
            ConfigResource::Topic(name.to_string()),
            &BTreeMap::new(),
            overrides,
        ));
        Ok(records)
    }

    fn new_partition_records(
        &self,
        image: &MetadataImage,
        name: &str,
        total: i32,
        assignments: Vec<Vec<NodeId>>,
    ) -> Result<Vec<MetadataRecord>, TopicError> {
        let topic = image
            .topic(name)
            .ok_or_else(|| TopicError::UnknownTopic(name.to_string()))?;
        let existing = topic.partition_count();
        if total <= existing || total > MAX_PARTITIONS_PER_TOPIC {
            return Err(TopicError::InvalidPartitions(format!(
                "topic currently has {existing} partitions; {total} would not add any (or exceeds {MAX_PARTITIONS_PER_TOPIC})"
            )));
        }
        let replication = topic
            .partitions
            .values()
            .next()
            .map_or(1, |p| i16::try_from(p.replicas.len()).unwrap_or(1));
        let assignments = if assignments.is_empty() {
            place_replicas(
                image,
                existing,
                total - existing,
                replication,
                random_seed(),
            )
            .map_err(TopicError::InvalidReplicationFactor)?
        } else {
            if i64::try_from(assignments.len()).unwrap_or(i64::MAX)
                != i64::from(total) - i64::from(existing)
            {
                return Err(TopicError::InvalidReplicaAssignment(format!(
                    "{} assignments for {} new partitions",
                    assignments.len(),
                    total - existing
                )));
            }
            check_assignments(image, &assignments)?;
            assignments
        };
        Ok(assignments
            .into_iter()
            .enumerate()
            .map(|(i, replicas)| new_partition(topic.id, existing + i as i32, replicas))
            .collect())
    }

    fn topic_config_records(
        &self,
        image: &MetadataImage,
        name: &str,
        change: &ConfigChange,
    ) -> Result<Vec<MetadataRecord>, TopicError> {
        if image.topic(name).is_none() {
            return Err(TopicError::UnknownTopic(name.to_string()));
        }
        let resource = ConfigResource::Topic(name.to_string());
        let current = image.configs(&resource);
        let defaults = self.live_config().effective.topic_defaults.clone();
        let described = describe_topic(&defaults, current);
        let overrides = change.apply(current, |n| list_value(&described, n))?;
        for (key, value) in &overrides {
            validate_topic_config(key, value)
                .map_err(|e| TopicError::InvalidConfig(e.to_string()))?;
        }
        effective_config(&defaults, &overrides)
            .map_err(|e| TopicError::InvalidConfig(e.to_string()))?;
        Ok(config_changes(resource, current, &overrides))
    }

    fn broker_config_records(
        &self,
        image: &MetadataImage,
        entity: BrokerEntity,
        change: &ConfigChange,
    ) -> Result<Vec<MetadataRecord>, TopicError> {
        let resource = broker_resource(entity);
        let current = image.configs(&resource);
        let described = self.live_config().describe();
        let proposed: DynamicSettings = change.apply(current, |n| list_value(&described, n))?;
        let canonical =
            validate_entity(&proposed).map_err(|e| TopicError::InvalidConfig(e.to_string()))?;
        let mut stored = dynamic_broker_configs(image);
        stored.set(entity, canonical.clone());
        let (_, skipped) = LiveConfig::new(&self.config, &stored);
        if let Some(reason) = skipped.first() {
            return Err(TopicError::InvalidConfig(reason.clone()));
        }
        tracing::info!(?entity, settings = ?canonical, "altering dynamic broker configs");
        Ok(config_changes(resource, current, &canonical))
    }
}

/// A request's own replica assignments: every partition with the same number of distinct, registered and
/// unfenced brokers.
fn check_assignments(image: &MetadataImage, assignments: &[Vec<NodeId>]) -> Result<(), TopicError> {
    let invalid = |m: String| Err(TopicError::InvalidReplicaAssignment(m));
    let Some(first) = assignments.first() else {
        return invalid("no partitions assigned".into());
    };
    for (p, replicas) in assignments.iter().enumerate() {
        if replicas.is_empty() || replicas.len() != first.len() {
            return invalid(format!(
                "partition {p} has {} replicas; every partition needs the same number, at least one",
                replicas.len()
            ));
        }
        let mut seen = replicas.clone();
        seen.sort();
        seen.dedup();
        if seen.len() != replicas.len() {
            return invalid(format!("partition {p} names a broker twice"));
        }
        if let Some(missing) = replicas
            .iter()
            .find(|id| image.broker(**id).is_none() || image.is_fenced(**id))
        {
            return invalid(format!(
                "broker {} of partition {p} is not a live broker of the cluster",
                missing.0
            ));
        }
    }
    Ok(())
}

/// Where the striped placement starts, so leaders of successive topics do not all begin on one broker.
fn random_seed() -> u64 {
    let bits = uuid::Uuid::new_v4().as_u128();
    (bits >> 64) as u64 ^ bits as u64
}

/// A new partition on `replicas`, led by the first, in epoch 0.
fn new_partition(topic_id: uuid::Uuid, partition: i32, replicas: Vec<NodeId>) -> MetadataRecord {
    MetadataRecord::Partition(PartitionRecord {
        topic_id,
        partition,
        leader: replicas.first().copied(),
        isr: replicas.clone(),
        replicas,
        leader_epoch: LeaderEpoch(0),
        partition_epoch: 0,
        reassignment: None,
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

//! How metadata takes effect on this node. A change is committed through the quorum; the applier thread
//! (quorum.rs) applies what the quorum committed to the image, publishes it, and then what the delta touched
//! is brought in line:
//!
//! ```text
//!   committed records ─▶ image.apply_all ─▶ publish image ─▶ delta:
//!                                                 broker configs changed ─▶ LiveConfig rebuilt
//!                                                 topics, partitions, configs ─▶ Topic views rebuilt
//!                                                 partitions of this node ─▶ ReplicaManager (open, role, config,
//!                                                                             remove with data)
//!                                                 group configs ─▶ GroupCoordinator (members' timings)
//! ```
//! Nothing is applied that the quorum did not commit (fsynced in its log), so a restart finds what clients
//! were told succeeded.

use super::controller::ControllerOp;
use super::metadata_store;
use super::{Node, Topic, TopicError};
use crate::config::broker::BrokerConfig;
use crate::config::dynamic::LiveConfig;
use crate::config::group::group_timings;
use crate::config::topic::effective_config;
use crate::groups::OFFSETS_TOPIC;
use ferrite_metadata::{
    ConfigResource, MetadataDelta, MetadataImage, MetadataRecord, PartitionRecord, TopicImage,
};
use ferrite_replication::{
    FollowerState, LeaderState, NodeId, PartitionChange, Role, TopicPartition,
};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// How long a start waits for the quorum (a cluster's nodes may start minutes apart).
const START_PATIENCE: Duration = Duration::from_secs(300);

/// The live configuration for an image: the static one with the image's dynamic broker configs applied.
pub(super) fn live_config(config: &BrokerConfig, image: &MetadataImage) -> LiveConfig {
    let stored = super::controller::dynamic_broker_configs(image);
    let (live, skipped) = LiveConfig::new(config, &stored);
    for setting in skipped {
        tracing::warn!(%setting, "ignoring a stored dynamic broker config this version cannot apply");
    }
    live
}

/// This node's role for a partition, as its record says.
pub(crate) fn role_of(record: &PartitionRecord, local: NodeId) -> Role {
    if record.leader == Some(local) {
        Role::Leader(LeaderState {
            epoch: record.leader_epoch,
            replicas: record.replicas.clone(),
            isr: record.isr.clone(),
            partition_epoch: record.partition_epoch,
        })
    } else {
        Role::Follower(FollowerState {
            epoch: record.leader_epoch,
            leader: record.leader,
        })
    }
}

impl Node {
    /// Writes what a start needs into the metadata log: on a new cluster, the cluster itself (or, when the
    /// single-node metadata file of an older version is there, everything it holds, imported once); and this
    /// broker's registration, with a new incarnation. In a cluster of several nodes this waits for the quorum
    /// to elect a leader (up to [`START_PATIENCE`]).
    pub(super) fn bootstrap(&self) -> Result<(), TopicError> {
        let local = self.replicas.local_node();
        let single = self.config.quorum.is_single_node();
        let mut imported = false;
        if self.config.quorum.controller && self.image().cluster_id().is_none() {
            let file = if single { self.store.load()? } else { None };
            let records = match file {
                Some(file) => {
                    tracing::info!(
                        topics = file.topics.len(),
                        "importing the single-node metadata file into the metadata log"
                    );
                    imported = true;
                    metadata_store::records_of(&file, local)
                }
                None => vec![
                    MetadataRecord::Cluster {
                        cluster_id: super::new_cluster_id(),
                    },
                    MetadataRecord::ProducerIds {
                        node_id: local,
                        next_producer_id: metadata_store::FIRST_PRODUCER_ID,
                    },
                ],
            };
            // Written only if no voter bootstrapped the cluster first.
            let op = ControllerOp::Bootstrap { records };
            self.until_quorum_answers(|| {
                self.execute_within(op.clone(), START_PATIENCE).map(|_| ())
            })?;
        }
        if self.config.quorum.broker {
            self.until_quorum_answers(|| self.register(START_PATIENCE))?;
        }
        if imported {
            self.store.retire()?;
        }
        Ok(())
    }

    /// Retries a start-up step while the quorum cannot answer (no leader yet, or a leader still finding out
    /// that this node completes its majority), up to [`START_PATIENCE`]: a node waits for its cluster, as
    /// Kafka's do, rather than exit.
    fn until_quorum_answers(
        &self,
        mut step: impl FnMut() -> Result<(), TopicError>,
    ) -> Result<(), TopicError> {
        let deadline = std::time::Instant::now() + START_PATIENCE;
        loop {
            match step() {
                Err(TopicError::Timeout(reason) | TopicError::NotController(reason))
                    if std::time::Instant::now() < deadline =>
                {
                    tracing::warn!(%reason, "waiting for the metadata quorum");
                    std::thread::sleep(Duration::from_millis(500));
                }
                other => return other,
            }
        }
    }

    /// Every replica the metadata gives this node is open: one that could not open (a damaged log the
    /// recovery cannot repair, a full disk) stops the start rather than leave its partition unserved.
    pub(super) fn check_replicas_open(&self) -> Result<(), TopicError> {
        let local = self.replicas.local_node();
        for topic in self.image().topics() {
            for p in topic
                .partitions
                .values()
                .filter(|p| p.replicas.contains(&local))
            {
                if self.replicas.partition(&topic.name, p.partition).is_none() {
                    return Err(TopicError::Storage(format!(
                        "{}-{} could not be opened (see the log above)",
                        topic.name, p.partition
                    )));
                }
            }
        }
        Ok(())
    }

    /// Brings the node in line with a new image (already published): live config, topic views, replicas,
    /// group configs.
    pub(super) fn apply_delta(&self, delta: &MetadataDelta) -> Result<(), TopicError> {
        let image = self.image();
        if delta.broker_configs_changed() {
            *self.live.write().unwrap_or_else(|p| p.into_inner()) =
                Arc::new(live_config(&self.config, &image));
        }
        let before = self
            .topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let views = match topic_views(&image, &self.live_config()) {
            Ok(views) => views,
            Err(e) => {
                tracing::error!(error = %e, "keeping the topics' configs: the new metadata does not apply to them");
                before.clone()
            }
        };
        let mut changes = vec![];
        for topic in delta.deleted_topics.values() {
            changes.extend(topic.partitions.keys().map(|p| PartitionChange::Removed {
                tp: TopicPartition::new(topic.name.clone(), *p),
                delete_data: true,
            }));
        }
        let touched: BTreeSet<uuid::Uuid> =
            delta.changed_partitions.iter().map(|(id, _)| *id).collect();
        for topic in image.topics() {
            if touched.contains(&topic.id) {
                changes.extend(self.replica_changes(topic, &views));
            } else if views.get(&topic.name).map(|v| &v.effective)
                != before.get(&topic.name).map(|v| &v.effective)
            {
                changes.extend(self.config_changes(topic, &views));
            }
        }
        *self.topics.write().unwrap_or_else(|p| p.into_inner()) = views;
        let fetching = fetch_directives(&changes, &image);
        let failed = self.replicas.apply(changes);
        self.apply_fetch_directives(fetching);
        for (tp, e) in &failed {
            tracing::error!(topic = %tp.topic, partition = tp.partition, error = %e, "applying a partition change failed");
        }
        self.reconcile_group_coordinator(&image);
        self.apply_group_configs(delta, &image);
        match failed.into_iter().next() {
            Some((tp, e)) => Err(TopicError::Storage(format!(
                "{}-{}: {e}",
                tp.topic, tp.partition
            ))),
            None => Ok(()),
        }
    }

    /// Open (or re-role) every replica of `topic` this node holds, with the topic's log config.
    fn replica_changes(
        &self,
        topic: &TopicImage,
        views: &HashMap<String, Arc<Topic>>,
    ) -> Vec<PartitionChange> {
        let local = self.replicas.local_node();
        let Some(view) = views.get(&topic.name) else {
            return vec![];
        };
        topic
            .partitions
            .values()
            .filter_map(|p| {
                let tp = TopicPartition::new(topic.name.clone(), p.partition);
                if p.replicas.contains(&local) {
                    Some(PartitionChange::Replica {
                        tp,
                        role: role_of(p, local),
                        config: view.effective.log.clone(),
                    })
                } else if self.replicas.partition(&topic.name, p.partition).is_some() {
                    // Reassigned away from this broker: the replica and its data go.
                    Some(PartitionChange::Removed {
                        tp,
                        delete_data: true,
                    })
                } else {
                    None
                }
            })
            .collect()
    }

    /// The new log config for every replica of `topic` this node holds.
    fn config_changes(
        &self,
        topic: &TopicImage,
        views: &HashMap<String, Arc<Topic>>,
    ) -> Vec<PartitionChange> {
        let Some(view) = views.get(&topic.name) else {
            return vec![];
        };
        let local = self.replicas.local_node();
        topic
            .partitions
            .values()
            .filter(|p| p.replicas.contains(&local))
            .map(|p| PartitionChange::Config {
                tp: TopicPartition::new(topic.name.clone(), p.partition),
                config: view.effective.log.clone(),
            })
            .collect()
    }

    /// Starts, moves or stops the replication of each partition whose role changed.
    fn apply_fetch_directives(&self, directives: Vec<FetchDirective>) {
        let Some(fetchers) = self.fetchers() else {
            return;
        };
        let per_source = usize::try_from(self.config.replication.num_fetchers).unwrap_or(1);
        for directive in directives {
            match directive {
                FetchDirective::Follow {
                    tp,
                    topic_id,
                    leader,
                    epoch,
                } => fetchers.follow(tp, topic_id, leader, epoch, per_source),
                FetchDirective::Stop(tp) => fetchers.unfollow(&tp),
            }
        }
    }

    fn apply_group_configs(&self, delta: &MetadataDelta, image: &MetadataImage) {
        let Some(groups) = self.groups() else {
            return;
        };
        for resource in &delta.changed_configs {
            if let ConfigResource::Group(group_id) = resource {
                let timings = group_timings(&self.config, image.configs(resource));
                groups.apply_group_timings(group_id, timings);
            }
        }
    }

    /// Creates `__consumer_offsets` if it does not exist yet: at the start of a single node (which leads all
    /// of it), and in a cluster at the first FindCoordinator, as Kafka does, when the brokers are there to
    /// spread its partitions and replicas over.
    pub fn ensure_offsets_topic(&self) -> Result<(), TopicError> {
        if self.topic(OFFSETS_TOPIC).is_some() {
            return Ok(());
        }
        let overrides = crate::groups::offsets_topic_overrides();
        // `offsets.topic.replication.factor`, or every broker when there are fewer (a small cluster, or one
        // node).
        let live = i16::try_from(self.image().live_brokers().count()).unwrap_or(i16::MAX);
        let replication = self
            .config
            .replication
            .offsets_topic_replication_factor
            .min(live.max(1));
        match self.create_topic(
            OFFSETS_TOPIC,
            self.config.offsets_topic_num_partitions,
            replication,
            overrides,
        ) {
            Ok(_) | Err(TopicError::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The group coordinator loads the `__consumer_offsets` partitions this node leads and drops those it no
    /// longer leads.
    pub(super) fn reconcile_group_coordinator(&self, image: &MetadataImage) {
        let Some(groups) = self.groups() else {
            return;
        };
        if !self.caught_up.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let local = self.replicas.local_node();
        let mut loaded = groups.loaded_partitions();
        if let Some(topic) = image.topic(OFFSETS_TOPIC) {
            let count = topic.partition_count();
            for p in topic.partitions.values() {
                let leads = p.leader == Some(local);
                let is_loaded = loaded.contains(&p.partition);
                loaded.retain(|i| *i != p.partition);
                if leads && !is_loaded {
                    let Some(partition) = self.replicas.partition(OFFSETS_TOPIC, p.partition)
                    else {
                        continue;
                    };
                    if let Err(e) = groups.load_partition(p.partition, count, partition) {
                        tracing::error!(partition = p.partition, error = %e, "loading a __consumer_offsets partition failed");
                    }
                } else if !leads && is_loaded {
                    groups.unload_partition(p.partition);
                }
            }
        }
        // Partitions the topic no longer has (it cannot be deleted, but a rebuilt cluster might lack it).
        for index in loaded {
            groups.unload_partition(index);
        }
    }
}

/// What the replica fetchers do about one partition change.
enum FetchDirective {
    Follow {
        tp: TopicPartition,
        topic_id: uuid::Uuid,
        leader: NodeId,
        epoch: ferrite_replication::LeaderEpoch,
    },
    Stop(TopicPartition),
}

/// A follower with a leader fetches from it; a leader, a leaderless follower or a removed replica fetches
/// nothing.
fn fetch_directives(changes: &[PartitionChange], image: &MetadataImage) -> Vec<FetchDirective> {
    changes
        .iter()
        .filter_map(|change| match change {
            PartitionChange::Replica {
                tp,
                role:
                    Role::Follower(FollowerState {
                        epoch,
                        leader: Some(leader),
                    }),
                ..
            } => match image.topic(&tp.topic) {
                Some(topic) => Some(FetchDirective::Follow {
                    tp: tp.clone(),
                    topic_id: topic.id,
                    leader: *leader,
                    epoch: *epoch,
                }),
                None => Some(FetchDirective::Stop(tp.clone())),
            },
            PartitionChange::Replica { tp, .. } | PartitionChange::Removed { tp, .. } => {
                Some(FetchDirective::Stop(tp.clone()))
            }
            PartitionChange::Config { .. } => None,
        })
        .collect()
}

/// Every topic's view: its own configs over the live topic defaults. A stored override this version cannot
/// apply is an error naming it (the node refuses to start rather than serve a topic with the wrong config).
fn topic_views(
    image: &MetadataImage,
    live: &LiveConfig,
) -> Result<HashMap<String, Arc<Topic>>, TopicError> {
    image
        .topics()
        .map(|t| {
            let overrides = image
                .configs(&ConfigResource::Topic(t.name.clone()))
                .clone();
            let effective = effective_config(&live.effective.topic_defaults, &overrides)
                .map_err(|e| TopicError::InvalidConfig(format!("topic {}: {e}", t.name)))?;
            let view = Topic {
                name: t.name.clone(),
                id: t.id,
                partition_count: t.partition_count(),
                overrides,
                effective,
            };
            Ok((t.name.clone(), Arc::new(view)))
        })
        .collect()
}

//! The model's controller: one `MetadataImage`, changed only through the real controller's decisions
//! (`altered_partition` for AlterPartition, `partitions_after_fence` / `partitions_after_unfence` for brokers
//! leaving and coming back, `BrokerLiveness` for sessions). It never fails itself: the model is about one
//! partition's replication, not the metadata quorum. Every change is a new metadata offset; brokers learn the
//! partition record through the network, in offset order, as they would by following the metadata log.

use std::time::{Duration, Instant};

use ferrite_metadata::{BrokerRegistration, MetadataImage, MetadataRecord, PartitionRecord};
use ferrite_replication::{LeaderEpoch, NodeId};
use uuid::Uuid;

use super::stats::Stats;
use crate::node::isr_change::{altered_partition, AlterPartitionRequest};
use crate::node::lifecycle::{partitions_after_fence, partitions_after_unfence, BrokerLiveness};
use ferrite_replication::IsrProposalFailure;

pub const TOPIC: &str = "model";
pub const TOPIC_ID: Uuid = Uuid::from_u128(0x5EED);

/// No unclean elections: the model checks what Ferrite promises without them.
const UNCLEAN: &dyn Fn(&str) -> bool = &|_| false;

pub struct Controller {
    image: MetadataImage,
    liveness: BrokerLiveness,
    /// The metadata offset of the latest change.
    offset: u64,
    /// The last leader the partition had (for counting leader changes, not for any decision).
    last_leader: Option<NodeId>,
}

fn registration(node: NodeId, incarnation: u64, epoch: i64) -> MetadataRecord {
    MetadataRecord::RegisterBroker(BrokerRegistration {
        node_id: node,
        incarnation_id: Uuid::from_u128(u128::from(incarnation)),
        host: "model".into(),
        port: 9092,
        rack: None,
        epoch,
    })
}

impl Controller {
    /// Every broker registered (incarnation 0) and the partition on all of them, led by the first.
    pub fn new(nodes: &[NodeId], now: Instant) -> Controller {
        let mut records: Vec<MetadataRecord> =
            nodes.iter().map(|n| registration(*n, 0, 1)).collect();
        records.push(MetadataRecord::Topic {
            name: TOPIC.into(),
            topic_id: TOPIC_ID,
        });
        records.push(MetadataRecord::Partition(PartitionRecord {
            topic_id: TOPIC_ID,
            partition: 0,
            replicas: nodes.to_vec(),
            isr: nodes.to_vec(),
            leader: nodes.first().copied(),
            leader_epoch: LeaderEpoch(0),
            partition_epoch: 0,
            reassignment: None,
        }));
        let image = MetadataImage::from_records(&records).expect("the initial metadata applies");
        let mut liveness = BrokerLiveness::default();
        for n in nodes {
            liveness.heard_from(*n, now);
        }
        Controller {
            image,
            liveness,
            offset: 1,
            last_leader: nodes.first().copied(),
        }
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn record(&self) -> &PartitionRecord {
        self.image
            .topic_by_id(TOPIC_ID)
            .and_then(|t| t.partitions.get(&0))
            .expect("the partition exists")
    }

    pub fn is_fenced(&self, node: NodeId) -> bool {
        self.image.is_fenced(node)
    }

    fn incarnation_of(&self, node: NodeId) -> Option<Uuid> {
        self.image.broker(node).map(|b| b.incarnation_id)
    }

    /// Commits `records`; returns whether the partition record changed (the caller tells the brokers).
    fn commit(&mut self, records: &[MetadataRecord], stats: &mut Stats) -> bool {
        if records.is_empty() {
            return false;
        }
        let before = self.record().clone();
        let (image, _) = self
            .image
            .apply_all(records)
            .expect("the controller's records apply to its image");
        self.image = image;
        self.offset += 1;
        for r in records {
            match r {
                MetadataRecord::FenceBroker { .. } => stats.fencings += 1,
                MetadataRecord::UnfenceBroker { .. } => stats.unfencings += 1,
                _ => {}
            }
        }
        let after = self.record().clone();
        if after.leader_epoch > before.leader_epoch
            && after.leader.is_some()
            && after.leader != self.last_leader
        {
            stats.leader_changes += 1;
        }
        if after.leader.is_some() {
            self.last_leader = after.leader;
        }
        if after.leader_epoch == before.leader_epoch {
            if after.isr.len() < before.isr.len() {
                stats.isr_shrinks += 1;
            } else if after.isr.len() > before.isr.len() {
                stats.isr_expands += 1;
            }
        }
        after != before
    }

    /// `FenceBroker` and the partition's new leadership without `node` (Node::fence_records).
    fn fence_records(&self, image: &MetadataImage, node: NodeId) -> Vec<MetadataRecord> {
        if image.broker(node).is_none() || image.is_fenced(node) {
            return vec![];
        }
        let (moved, _) = partitions_after_fence(image, node, UNCLEAN);
        let mut records = vec![MetadataRecord::FenceBroker { node_id: node }];
        records.extend(moved.into_iter().map(MetadataRecord::Partition));
        records
    }

    /// `UnfenceBroker` and the leaderless partitions `node` can lead again (Node::unfence_records).
    fn unfence_records(&self, image: &MetadataImage, node: NodeId) -> Vec<MetadataRecord> {
        let (back, _) = partitions_after_unfence(image, node, UNCLEAN);
        let mut records = vec![MetadataRecord::UnfenceBroker { node_id: node }];
        records.extend(back.into_iter().map(MetadataRecord::Partition));
        records
    }

    /// A (re)started broker registers: a new incarnation of a live broker is fenced first, as a crash is,
    /// then registered with the next broker epoch and unfenced (Node::register_records).
    pub fn register(
        &mut self,
        node: NodeId,
        incarnation: u64,
        now: Instant,
        stats: &mut Stats,
    ) -> bool {
        self.liveness.heard_from(node, now);
        self.liveness.registered(node);
        let wanted = Uuid::from_u128(u128::from(incarnation));
        let restarted = self.incarnation_of(node).is_some_and(|i| i != wanted);
        let mut records = if restarted && !self.image.is_fenced(node) {
            self.fence_records(&self.image, node)
        } else {
            vec![]
        };
        let epoch = self.image.broker(node).map_or(1, |b| b.epoch + 1);
        records.push(registration(node, incarnation, epoch));
        let (after, _) = self
            .image
            .apply_all(&records)
            .expect("a registration applies");
        if after.is_fenced(node) {
            records.extend(self.unfence_records(&after, node));
        }
        self.commit(&records, stats)
    }

    /// A heartbeat. `Err` when the incarnation is not the registered one (the broker must register again);
    /// otherwise whether the partition changed (a fenced broker is unfenced).
    pub fn heartbeat(
        &mut self,
        node: NodeId,
        incarnation: u64,
        now: Instant,
        stats: &mut Stats,
    ) -> Result<bool, ()> {
        if self.incarnation_of(node) != Some(Uuid::from_u128(u128::from(incarnation))) {
            return Err(());
        }
        self.liveness.heard_from(node, now);
        if !self.image.is_fenced(node) {
            return Ok(false);
        }
        let records = self.unfence_records(&self.image, node);
        Ok(self.commit(&records, stats))
    }

    /// Fences the brokers whose session expired; returns whether the partition changed.
    pub fn check_sessions(&mut self, now: Instant, session: Duration, stats: &mut Stats) -> bool {
        let live: Vec<NodeId> = self.image.live_brokers().map(|b| b.node_id).collect();
        // The model's controller leads in one term throughout.
        let expired = self.liveness.expired(Some(1), live, now, session);
        let mut changed = false;
        for node in expired {
            changed |= self.fence(node, stats);
        }
        changed
    }

    /// Fences `node` now, as if its session had expired (a long pause, a partition from the controller).
    pub fn fence(&mut self, node: NodeId, stats: &mut Stats) -> bool {
        let records = self.fence_records(&self.image, node);
        self.commit(&records, stats)
    }

    /// AlterPartition: `Ok(changed)` if accepted (the ISR may already be the one asked for), `Err` with what
    /// the refusal tells the leader (as `Node::check_isr` reads the real controller's answer).
    pub fn alter_partition(
        &mut self,
        request: &AlterPartitionRequest,
        stats: &mut Stats,
    ) -> Result<bool, IsrProposalFailure> {
        match altered_partition(&self.image, request) {
            Ok(Some(record)) => {
                // The new ISR may be what a reassignment waited for (none in the model, but the same path).
                let record =
                    crate::node::reassignment::completed(&self.image, &record).unwrap_or(record);
                Ok(self.commit(&[MetadataRecord::Partition(record)], stats))
            }
            Ok(None) => Ok(false),
            Err(e) => {
                stats.alter_refused += 1;
                Err(match e.into_topic_error() {
                    crate::node::TopicError::InvalidRequest(_) => IsrProposalFailure::Refused,
                    _ => IsrProposalFailure::Unknown,
                })
            }
        }
    }
}

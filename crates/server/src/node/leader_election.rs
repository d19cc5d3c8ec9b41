//! Elections the controller runs on request (ElectLeaders) or by itself (`auto.leader.rebalance.enable`):
//!
//! ```text
//!   preferred: the first replica leads again, if it is live and in the ISR    (after restarts moved leaders)
//!   unclean:   a leaderless partition gets a live ISR member, else any live replica (records may be lost)
//!   auto:      every leader.imbalance.check.interval.seconds, per broker: if more than
//!              leader.imbalance.per.broker.percentage of the partitions it prefers are led elsewhere,
//!              elect it for them (preferred elections)
//! ```
//! Each election is a partition record with the new leader, leader epoch + 1 and partition epoch + 1.

use super::controller::ControllerOp;
use super::Node;
use ferrite_metadata::{MetadataImage, PartitionRecord};
use ferrite_replication::{LeaderEpoch, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElectionKind {
    Preferred,
    Unclean,
}

/// What an election of one partition comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElectionOutcome {
    Elected(PartitionRecord),
    /// The partition already has the leader the election would give it (ELECTION_NOT_NEEDED).
    NotNeeded,
    /// The preferred replica is fenced, unregistered or out of the ISR (PREFERRED_LEADER_NOT_AVAILABLE).
    PreferredNotAvailable,
    /// No live replica can lead (ELIGIBLE_LEADERS_NOT_AVAILABLE).
    EligibleNotAvailable,
}

fn live(image: &MetadataImage, node: NodeId) -> bool {
    image.broker(node).is_some() && !image.is_fenced(node)
}

fn with_leader(p: &PartitionRecord, leader: NodeId, isr: Vec<NodeId>) -> PartitionRecord {
    let mut next = p.clone();
    next.leader = Some(leader);
    next.isr = isr;
    next.leader_epoch = LeaderEpoch(p.leader_epoch.0 + 1);
    next.partition_epoch += 1;
    next
}

pub fn elect(image: &MetadataImage, p: &PartitionRecord, kind: ElectionKind) -> ElectionOutcome {
    match kind {
        ElectionKind::Preferred => {
            let Some(preferred) = p.replicas.first().copied() else {
                return ElectionOutcome::PreferredNotAvailable;
            };
            if p.leader == Some(preferred) {
                ElectionOutcome::NotNeeded
            } else if live(image, preferred) && p.isr.contains(&preferred) {
                ElectionOutcome::Elected(with_leader(p, preferred, p.isr.clone()))
            } else {
                ElectionOutcome::PreferredNotAvailable
            }
        }
        ElectionKind::Unclean => {
            if p.leader.is_some() {
                return ElectionOutcome::NotNeeded;
            }
            if let Some(in_sync) = p.isr.iter().copied().find(|n| live(image, *n)) {
                return ElectionOutcome::Elected(with_leader(p, in_sync, p.isr.clone()));
            }
            match p.replicas.iter().copied().find(|n| live(image, *n)) {
                Some(replica) => ElectionOutcome::Elected(with_leader(p, replica, vec![replica])),
                None => ElectionOutcome::EligibleNotAvailable,
            }
        }
    }
}

/// The preferred elections that rebalance leadership: for each broker whose share of preferred partitions
/// led by another broker is above `percentage`, those partitions (where the election can happen).
pub fn rebalancing_elections(image: &MetadataImage, percentage: i32) -> Vec<PartitionRecord> {
    let mut per_broker: BTreeMap<NodeId, (usize, Vec<&PartitionRecord>)> = BTreeMap::new();
    for p in image.topics().flat_map(|t| t.partitions.values()) {
        let Some(preferred) = p.replicas.first().copied() else {
            continue;
        };
        let entry = per_broker.entry(preferred).or_default();
        entry.0 += 1;
        if p.leader != Some(preferred) {
            entry.1.push(p);
        }
    }
    per_broker
        .into_iter()
        .filter(|(_, (total, moved))| {
            moved.len() * 100 > *total * usize::try_from(percentage).unwrap_or(10)
        })
        .flat_map(|(_, (_, moved))| moved)
        .filter_map(|p| match elect(image, p, ElectionKind::Preferred) {
            ElectionOutcome::Elected(next) => Some(next),
            _ => None,
        })
        .collect()
}

impl Node {
    /// The periodic leader-balance check on the active controller (`auto.leader.rebalance.enable`).
    pub fn check_leader_balance(&self) {
        if !self.config.replication.auto_leader_rebalance_enable {
            return;
        }
        let Ok(quorum) = self.quorum() else { return };
        if !quorum.is_leader() {
            return;
        }
        let image = self.image();
        let elections = rebalancing_elections(
            &image,
            self.config
                .replication
                .leader_imbalance_per_broker_percentage,
        );
        if elections.is_empty() {
            return;
        }
        let partitions: Vec<(uuid::Uuid, i32)> = elections
            .iter()
            .map(|p| (p.topic_id, p.partition))
            .collect();
        tracing::info!(
            partitions = partitions.len(),
            "leadership imbalanced: electing preferred leaders"
        );
        let op = ControllerOp::ElectLeaders {
            kind: ElectionKind::Preferred,
            partitions,
        };
        if let Err(e) = self.execute_here(op) {
            tracing::warn!(error = %e, "preferred leader elections failed");
        }
    }

    /// ElectLeaders: runs the elections the controller can run for `partitions` (topic name, index); every
    /// partition's outcome as it was decided on this node's image (the controller decides again on its own).
    pub fn elect_leaders(
        &self,
        kind: ElectionKind,
        partitions: &[(String, i32)],
    ) -> Result<Vec<Option<ElectionOutcome>>, super::TopicError> {
        let image = self.image();
        let mut wanted = vec![];
        let outcomes: Vec<Option<ElectionOutcome>> = partitions
            .iter()
            .map(|(topic, index)| {
                let t = image.topic(topic)?;
                let p = t.partitions.get(index)?;
                let outcome = elect(&image, p, kind);
                if matches!(outcome, ElectionOutcome::Elected(_)) {
                    wanted.push((t.id, *index));
                }
                Some(outcome)
            })
            .collect();
        if !wanted.is_empty() {
            self.execute(ControllerOp::ElectLeaders {
                kind,
                partitions: wanted,
            })?;
        }
        Ok(outcomes)
    }

    /// The controller's side: the records of the elections that can happen now.
    pub(super) fn election_records(
        &self,
        image: &MetadataImage,
        kind: ElectionKind,
        partitions: &[(uuid::Uuid, i32)],
    ) -> Vec<ferrite_metadata::MetadataRecord> {
        partitions
            .iter()
            .filter_map(|(topic_id, index)| image.topic_by_id(*topic_id)?.partitions.get(index))
            .filter_map(|p| match elect(image, p, kind) {
                ElectionOutcome::Elected(next) => {
                    if kind == ElectionKind::Unclean && !p.isr.contains(&next.leader?) {
                        tracing::warn!(topic_id = %p.topic_id, partition = p.partition, "unclean leader election requested: records may be lost");
                        self.metrics
                            .unclean_leader_elections
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Some(ferrite_metadata::MetadataRecord::Partition(next))
                }
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ferrite_metadata::{BrokerRegistration, MetadataRecord};

    const TOPIC: uuid::Uuid = uuid::Uuid::from_u128(5);

    fn image(partitions: &[(Vec<i32>, Option<i32>, Vec<i32>)], fenced: &[i32]) -> MetadataImage {
        let mut records: Vec<MetadataRecord> = (1..=3)
            .map(|id| {
                MetadataRecord::RegisterBroker(BrokerRegistration {
                    node_id: NodeId(id),
                    incarnation_id: uuid::Uuid::nil(),
                    host: "h".into(),
                    port: 1,
                    rack: None,
                    epoch: 1,
                })
            })
            .collect();
        records.push(MetadataRecord::Topic {
            name: "t".into(),
            topic_id: TOPIC,
        });
        for (i, (replicas, leader, isr)) in partitions.iter().enumerate() {
            records.push(MetadataRecord::Partition(PartitionRecord {
                topic_id: TOPIC,
                partition: i as i32,
                replicas: replicas.iter().copied().map(NodeId).collect(),
                isr: isr.iter().copied().map(NodeId).collect(),
                leader: leader.map(NodeId),
                leader_epoch: LeaderEpoch(3),
                partition_epoch: 4,
                reassignment: None,
            }));
        }
        records.extend(fenced.iter().map(|id| MetadataRecord::FenceBroker {
            node_id: NodeId(*id),
        }));
        MetadataImage::from_records(&records).unwrap()
    }

    fn partition(image: &MetadataImage, index: i32) -> PartitionRecord {
        image.topic("t").unwrap().partitions[&index].clone()
    }

    #[test]
    fn preferred_elections() {
        let img = image(
            &[
                (vec![1, 2, 3], Some(2), vec![1, 2, 3]),
                (vec![1, 2, 3], Some(1), vec![1, 2, 3]),
                (vec![3, 1, 2], Some(1), vec![1, 2]),
            ],
            &[],
        );
        match elect(&img, &partition(&img, 0), ElectionKind::Preferred) {
            ElectionOutcome::Elected(p) => {
                assert_eq!(
                    (p.leader, p.leader_epoch, p.partition_epoch),
                    (Some(NodeId(1)), LeaderEpoch(4), 5)
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            elect(&img, &partition(&img, 1), ElectionKind::Preferred),
            ElectionOutcome::NotNeeded
        );
        assert_eq!(
            elect(&img, &partition(&img, 2), ElectionKind::Preferred),
            ElectionOutcome::PreferredNotAvailable,
            "node 3 is out of the ISR"
        );
    }

    #[test]
    fn unclean_elections_prefer_the_isr() {
        let img = image(
            &[
                (vec![1, 2, 3], None, vec![1, 2]),
                (vec![1, 2, 3], None, vec![1]),
            ],
            &[1],
        );
        match elect(&img, &partition(&img, 0), ElectionKind::Unclean) {
            ElectionOutcome::Elected(p) => {
                assert_eq!((p.leader, p.isr.len()), (Some(NodeId(2)), 2))
            }
            other => panic!("{other:?}"),
        }
        match elect(&img, &partition(&img, 1), ElectionKind::Unclean) {
            ElectionOutcome::Elected(p) => {
                assert_eq!((p.leader, p.isr), (Some(NodeId(2)), vec![NodeId(2)]))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rebalancing_moves_leadership_back_only_past_the_threshold() {
        // Node 1 prefers 2 partitions, both led by 2: 100% imbalance. Node 2 prefers 1, led by itself.
        let img = image(
            &[
                (vec![1, 2], Some(2), vec![1, 2]),
                (vec![1, 2], Some(2), vec![1, 2]),
                (vec![2, 1], Some(2), vec![1, 2]),
            ],
            &[],
        );
        let elections = rebalancing_elections(&img, 10);
        assert_eq!(elections.len(), 2);
        assert!(elections.iter().all(|p| p.leader == Some(NodeId(1))));
        assert!(
            rebalancing_elections(&img, 100).is_empty(),
            "not above 100%"
        );
    }
}

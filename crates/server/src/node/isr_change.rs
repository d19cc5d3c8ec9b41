//! AlterPartition on the controller: a leader asks for a new ISR, and the controller accepts it only if the
//! leader's view is current (KIP-497). A leader that was replaced, or that computed its change from an older
//! partition record, is refused, so a stale leader can never shrink the ISR to itself and go on acknowledging
//! writes alone.
//!
//! ```text
//!   leader: (leader id, leader epoch, partition epoch, proposed ISR)
//!     ─▶ partition exists?                        else UnknownPartition
//!     ─▶ leader and leader epoch match?            else FencedLeaderEpoch
//!     ─▶ partition epoch matches?                  else InvalidUpdateVersion
//!     ─▶ ISR has the leader, only replicas, and only live brokers among the members it adds?
//!                                                  else InvalidIsr / IneligibleReplica
//!     ─▶ the record with the new ISR, partition epoch + 1 (or nothing if the ISR is the same)
//! ```

use super::controller::ControllerOp;
use super::Node;
use ferrite_metadata::{MetadataImage, PartitionRecord};
use ferrite_replication::{IsrProposalFailure, LeaderEpoch, NodeId};
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What a leader asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterPartitionRequest {
    pub topic_id: uuid::Uuid,
    pub partition: i32,
    pub leader: NodeId,
    pub leader_epoch: LeaderEpoch,
    pub partition_epoch: i32,
    pub isr: Vec<NodeId>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlterPartitionError {
    #[error("no partition {partition} of topic id {topic_id}")]
    UnknownPartition {
        topic_id: uuid::Uuid,
        partition: i32,
    },
    #[error("node {leader} in epoch {epoch} is not the partition's current leader")]
    FencedLeaderEpoch { leader: i32, epoch: i32 },
    #[error("partition epoch {requested} is not the current {current}")]
    InvalidUpdateVersion { requested: i32, current: i32 },
    #[error("broker {0} cannot join the ISR: it is fenced or not registered")]
    IneligibleReplica(i32),
    #[error("{0}")]
    InvalidIsr(String),
}

impl AlterPartitionError {
    /// A change refused because the partition moved on (possibly by this very change, applied before its
    /// answer was lost) is `Stale`: the leader keeps counting the members it adds until the metadata shows
    /// the partition's next state. Any other refusal says the change was not applied.
    pub fn into_topic_error(self) -> super::TopicError {
        match self {
            AlterPartitionError::FencedLeaderEpoch { .. }
            | AlterPartitionError::InvalidUpdateVersion { .. } => {
                super::TopicError::Stale(self.to_string())
            }
            other => super::TopicError::InvalidRequest(other.to_string()),
        }
    }
}

/// The partition record after the change, or `None` when the ISR asked for is the one in force.
pub fn altered_partition(
    image: &MetadataImage,
    request: &AlterPartitionRequest,
) -> Result<Option<PartitionRecord>, AlterPartitionError> {
    let current = image
        .topic_by_id(request.topic_id)
        .and_then(|t| t.partitions.get(&request.partition))
        .ok_or(AlterPartitionError::UnknownPartition {
            topic_id: request.topic_id,
            partition: request.partition,
        })?;
    if current.leader != Some(request.leader) || current.leader_epoch != request.leader_epoch {
        return Err(AlterPartitionError::FencedLeaderEpoch {
            leader: request.leader.0,
            epoch: request.leader_epoch.0,
        });
    }
    if current.partition_epoch != request.partition_epoch {
        return Err(AlterPartitionError::InvalidUpdateVersion {
            requested: request.partition_epoch,
            current: current.partition_epoch,
        });
    }
    let mut isr = request.isr.clone();
    isr.sort();
    isr.dedup();
    if !isr.contains(&request.leader) {
        return Err(AlterPartitionError::InvalidIsr(
            "the ISR must include the leader".into(),
        ));
    }
    if let Some(stranger) = isr.iter().find(|n| !current.replicas.contains(n)) {
        return Err(AlterPartitionError::InvalidIsr(format!(
            "broker {} is not a replica",
            stranger.0
        )));
    }
    if let Some(ineligible) = isr
        .iter()
        .find(|n| !current.isr.contains(n) && (image.broker(**n).is_none() || image.is_fenced(**n)))
    {
        return Err(AlterPartitionError::IneligibleReplica(ineligible.0));
    }
    let mut in_force = current.isr.clone();
    in_force.sort();
    if in_force == isr {
        return Ok(None);
    }
    let mut next = current.clone();
    // Kept in replica order, as Kafka lists it.
    next.isr = current
        .replicas
        .iter()
        .copied()
        .filter(|n| isr.contains(n))
        .collect();
    next.partition_epoch += 1;
    Ok(Some(next))
}

/// How long a leader waits for the controller to take one ISR change; the next check asks again.
const ALTER_PATIENCE: Duration = Duration::from_secs(5);

/// The leader's side: a periodic check over the partitions this node leads.
impl Node {
    /// Asks the controller for the ISR changes this node's leaderships need (followers that fell more than
    /// `replica.lag.time.max.ms` behind leave, followers that caught up join). A refused change is logged and
    /// computed afresh at the next check, from the metadata then in force.
    pub fn check_isr(&self) {
        let max_lag = Duration::from_millis(
            u64::try_from(self.config.replication.lag_time_max_ms).unwrap_or(30_000),
        );
        let image = self.image();
        for partition in self.replicas.partitions() {
            let Some(proposal) = partition.isr_proposal(Instant::now(), max_lag) else {
                continue;
            };
            let Some(topic) = image.topic(partition.topic()) else {
                partition.isr_proposal_failed(IsrProposalFailure::Refused);
                continue;
            };
            let before = topic
                .partitions
                .get(&partition.index())
                .map_or(0, |p| p.isr.len());
            let request = AlterPartitionRequest {
                topic_id: topic.id,
                partition: partition.index(),
                leader: self.replicas.local_node(),
                leader_epoch: proposal.leader_epoch,
                partition_epoch: proposal.partition_epoch,
                isr: proposal.isr.clone(),
            };
            match self.execute_within(ControllerOp::AlterPartition(request), ALTER_PATIENCE) {
                Ok(_) => {
                    let counter = if proposal.isr.len() < before {
                        &self.metrics.isr_shrinks
                    } else {
                        &self.metrics.isr_expands
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(topic = %partition.topic(), partition = partition.index(), from = before, isr = ?proposal.isr, "ISR change accepted");
                }
                Err(e) => {
                    // Only a refusal against the state the change was computed from says it was not
                    // applied; after a timeout, a lost answer or a stale refusal it may have been.
                    let failure = match e {
                        super::TopicError::InvalidRequest(_) => IsrProposalFailure::Refused,
                        _ => IsrProposalFailure::Unknown,
                    };
                    tracing::warn!(topic = %partition.topic(), partition = partition.index(), isr = ?proposal.isr, error = %e, ?failure, "ISR change not confirmed");
                    partition.isr_proposal_failed(failure);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ferrite_metadata::{BrokerRegistration, MetadataRecord};

    const TOPIC: uuid::Uuid = uuid::Uuid::from_u128(9);

    fn image(fenced: &[i32]) -> MetadataImage {
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
        records.push(MetadataRecord::Partition(PartitionRecord {
            topic_id: TOPIC,
            partition: 0,
            replicas: vec![NodeId(1), NodeId(2), NodeId(3)],
            isr: vec![NodeId(1), NodeId(2)],
            leader: Some(NodeId(1)),
            leader_epoch: LeaderEpoch(4),
            partition_epoch: 7,
            reassignment: None,
        }));
        records.extend(fenced.iter().map(|id| MetadataRecord::FenceBroker {
            node_id: NodeId(*id),
        }));
        MetadataImage::from_records(&records).unwrap()
    }

    fn request(
        leader: i32,
        epoch: i32,
        partition_epoch: i32,
        isr: &[i32],
    ) -> AlterPartitionRequest {
        AlterPartitionRequest {
            topic_id: TOPIC,
            partition: 0,
            leader: NodeId(leader),
            leader_epoch: LeaderEpoch(epoch),
            partition_epoch,
            isr: isr.iter().copied().map(NodeId).collect(),
        }
    }

    #[test]
    fn the_current_leader_changes_the_isr_and_the_partition_epoch_moves() {
        let next = altered_partition(&image(&[]), &request(1, 4, 7, &[3, 1, 2]))
            .unwrap()
            .unwrap();
        assert_eq!(next.isr, vec![NodeId(1), NodeId(2), NodeId(3)]);
        assert_eq!(
            (next.partition_epoch, next.leader_epoch),
            (8, LeaderEpoch(4))
        );
        let shrunk = altered_partition(&image(&[]), &request(1, 4, 7, &[1]))
            .unwrap()
            .unwrap();
        assert_eq!(shrunk.isr, vec![NodeId(1)]);
        assert_eq!(
            altered_partition(&image(&[]), &request(1, 4, 7, &[2, 1])).unwrap(),
            None
        );
    }

    #[test]
    fn stale_leaders_and_bad_isrs_are_refused() {
        let img = image(&[3]);
        let cases = [
            (request(2, 4, 7, &[2]), "not the leader"),
            (request(1, 3, 7, &[1]), "an old leader epoch"),
            (request(1, 4, 6, &[1]), "an old partition epoch"),
            (request(1, 4, 7, &[2]), "without the leader"),
            (request(1, 4, 7, &[1, 9]), "a stranger"),
            (request(1, 4, 7, &[1, 2, 3]), "a fenced broker joining"),
        ];
        for (req, why) in cases {
            assert!(altered_partition(&img, &req).is_err(), "{why}");
        }
        assert!(matches!(
            altered_partition(&img, &request(1, 4, 6, &[1])),
            Err(AlterPartitionError::InvalidUpdateVersion { current: 7, .. })
        ));
    }
}

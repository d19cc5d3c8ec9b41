//! Partition reassignment (AlterPartitionReassignments, ListPartitionReassignments), as KRaft does it:
//!
//! ```text
//!   start:    replicas = target ++ (old not in target), adding = target - old, removing = old - target
//!             (the new replicas open the partition as followers and catch up; the leader stays)
//!   progress: the leader adds them to the ISR once caught up (AlterPartition)
//!   complete: every added replica in the ISR -> replicas = target, ISR = ISR within target, and if the leader
//!             is being removed, the first live in-sync replica of the target leads (leader epoch + 1); the
//!             removed brokers close the partition and delete its data
//!   cancel:   (replicas null) back to the old replicas, the added ones dropped
//! ```

use super::controller::ControllerOp;
use super::{Node, TopicError};
use ferrite_metadata::{MetadataImage, MetadataRecord, PartitionRecord, Reassignment};
use ferrite_replication::{LeaderEpoch, NodeId};
use serde::{Deserialize, Serialize};

/// One partition's requested change: a new replica list, or `None` to cancel the one in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReassignmentRequest {
    pub topic: String,
    pub partition: i32,
    pub target: Option<Vec<NodeId>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReassignError {
    #[error("unknown topic or partition")]
    UnknownTopicOrPartition,
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error("the replication factor would change and the request does not allow it")]
    ReplicationFactorChange,
    #[error("no reassignment in progress")]
    NoReassignmentInProgress,
}

/// The replicas a partition had before its reassignment began (its replicas now, if none is in progress).
fn original(p: &PartitionRecord) -> Vec<NodeId> {
    match &p.reassignment {
        Some(r) => p
            .replicas
            .iter()
            .copied()
            .filter(|n| !r.adding.contains(n))
            .collect(),
        None => p.replicas.clone(),
    }
}

/// The replicas a partition will have once its reassignment completes.
pub fn target(p: &PartitionRecord) -> Vec<NodeId> {
    match &p.reassignment {
        Some(r) => p
            .replicas
            .iter()
            .copied()
            .filter(|n| !r.removing.contains(n))
            .collect(),
        None => p.replicas.clone(),
    }
}

fn live(image: &MetadataImage, node: NodeId) -> bool {
    image.broker(node).is_some() && !image.is_fenced(node)
}

/// The record that starts (or replaces) a reassignment of `p` to `target`, or cancels it (`None`); a
/// reassignment that can already complete is completed at once.
pub fn reassigned(
    image: &MetadataImage,
    p: &PartitionRecord,
    target: Option<&[NodeId]>,
    allow_replication_factor_change: bool,
) -> Result<PartitionRecord, ReassignError> {
    let old = original(p);
    let Some(target) = target else {
        if p.reassignment.is_none() {
            return Err(ReassignError::NoReassignmentInProgress);
        }
        return Ok(settle(image, p, &old));
    };
    let mut distinct = target.to_vec();
    distinct.sort();
    distinct.dedup();
    if target.is_empty() || distinct.len() != target.len() {
        return Err(ReassignError::InvalidReplicaAssignment(
            "the replicas must be distinct, and at least one".into(),
        ));
    }
    if let Some(unknown) = target.iter().find(|n| image.broker(**n).is_none()) {
        return Err(ReassignError::InvalidReplicaAssignment(format!(
            "broker {} is not registered",
            unknown.0
        )));
    }
    if !allow_replication_factor_change && target.len() != old.len() {
        return Err(ReassignError::ReplicationFactorChange);
    }
    let adding: Vec<NodeId> = target
        .iter()
        .copied()
        .filter(|n| !old.contains(n))
        .collect();
    let removing: Vec<NodeId> = old
        .iter()
        .copied()
        .filter(|n| !target.contains(n))
        .collect();
    let mut next = p.clone();
    next.partition_epoch += 1;
    if adding.is_empty() && removing.is_empty() {
        // The target is the old replica set (in a new order, perhaps): no reassignment remains.
        next.replicas = target.to_vec();
        next.isr.retain(|n| target.contains(n));
        next.reassignment = None;
        return Ok(next);
    }
    next.replicas = target.iter().chain(removing.iter()).copied().collect();
    // Replicas added by an earlier reassignment that this one no longer wants leave at once.
    next.isr.retain(|n| next.replicas.contains(n));
    next.reassignment = Some(Reassignment { adding, removing });
    Ok(completed(image, &next).unwrap_or(next))
}

/// The record that completes `p`'s reassignment, if every added replica is in the ISR and some replica of
/// the target is in sync and live to lead.
pub fn completed(image: &MetadataImage, p: &PartitionRecord) -> Option<PartitionRecord> {
    let r = p.reassignment.as_ref()?;
    if !r.adding.iter().all(|n| p.isr.contains(n)) {
        return None;
    }
    let target = target(p);
    if !target.iter().any(|n| p.isr.contains(n)) {
        return None;
    }
    Some(settle(image, p, &target))
}

/// `p` with exactly `replicas`: the ISR within them, a new leader (epoch + 1) if the current one is not
/// among them, no reassignment. A partition left with no in-sync replica keeps its last ISR member as
/// Kafka keeps it, leaderless.
fn settle(image: &MetadataImage, p: &PartitionRecord, replicas: &[NodeId]) -> PartitionRecord {
    let mut next = p.clone();
    next.replicas = replicas.to_vec();
    next.isr = p
        .isr
        .iter()
        .copied()
        .filter(|n| replicas.contains(n))
        .collect();
    next.reassignment = None;
    next.partition_epoch = p.partition_epoch + 1;
    if !p.leader.is_some_and(|l| replicas.contains(&l)) {
        next.leader = next.isr.iter().copied().find(|n| live(image, *n));
        next.leader_epoch = LeaderEpoch(p.leader_epoch.0 + 1);
    }
    next
}

impl Node {
    /// AlterPartitionReassignments: each partition's outcome (`Ok` once the reassignment is recorded).
    pub fn reassign_partitions(
        &self,
        requests: Vec<ReassignmentRequest>,
        allow_replication_factor_change: bool,
    ) -> Result<Vec<Result<(), ReassignError>>, TopicError> {
        let image = self.image();
        let checked: Vec<Result<(), ReassignError>> = requests
            .iter()
            .map(|r| {
                let p = image
                    .topic(&r.topic)
                    .and_then(|t| t.partitions.get(&r.partition))
                    .ok_or(ReassignError::UnknownTopicOrPartition)?;
                reassigned(
                    &image,
                    p,
                    r.target.as_deref(),
                    allow_replication_factor_change,
                )
                .map(|_| ())
            })
            .collect();
        let valid: Vec<ReassignmentRequest> = requests
            .into_iter()
            .zip(&checked)
            .filter(|(_, c)| c.is_ok())
            .map(|(r, _)| r)
            .collect();
        if !valid.is_empty() {
            self.execute(ControllerOp::ReassignPartitions {
                requests: valid,
                allow_replication_factor_change,
            })?;
        }
        Ok(checked)
    }

    /// The controller's side: the records of the reassignments that apply to its image.
    pub(super) fn reassignment_records(
        &self,
        image: &MetadataImage,
        requests: &[ReassignmentRequest],
        allow_replication_factor_change: bool,
    ) -> Vec<MetadataRecord> {
        requests
            .iter()
            .filter_map(|r| {
                let p = image.topic(&r.topic)?.partitions.get(&r.partition)?;
                match reassigned(image, p, r.target.as_deref(), allow_replication_factor_change) {
                    Ok(next) => {
                        tracing::info!(topic = %r.topic, partition = r.partition, replicas = ?next.replicas, reassignment = ?next.reassignment, "reassigning partition");
                        Some(MetadataRecord::Partition(next))
                    }
                    Err(e) => {
                        tracing::info!(topic = %r.topic, partition = r.partition, error = %e, "reassignment refused");
                        None
                    }
                }
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ferrite_metadata::BrokerRegistration;

    fn image(brokers: i32) -> MetadataImage {
        let records: Vec<MetadataRecord> = (1..=brokers)
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
        MetadataImage::from_records(&records).unwrap()
    }

    fn record(replicas: &[i32], isr: &[i32], leader: i32) -> PartitionRecord {
        PartitionRecord {
            topic_id: uuid::Uuid::nil(),
            partition: 0,
            replicas: replicas.iter().copied().map(NodeId).collect(),
            isr: isr.iter().copied().map(NodeId).collect(),
            leader: Some(NodeId(leader)),
            leader_epoch: LeaderEpoch(2),
            partition_epoch: 5,
            reassignment: None,
        }
    }

    fn nodes(ids: &[i32]) -> Vec<NodeId> {
        ids.iter().copied().map(NodeId).collect()
    }

    #[test]
    fn a_move_adds_catches_up_switches_and_drops() {
        let img = image(4);
        // [1, 2] -> [3, 4]: grows to [3, 4, 1, 2], the leader stays.
        let started = reassigned(
            &img,
            &record(&[1, 2], &[1, 2], 1),
            Some(&nodes(&[3, 4])),
            true,
        )
        .unwrap();
        assert_eq!(started.replicas, nodes(&[3, 4, 1, 2]));
        assert_eq!(started.leader, Some(NodeId(1)));
        let r = started.reassignment.clone().unwrap();
        assert_eq!((r.adding, r.removing), (nodes(&[3, 4]), nodes(&[1, 2])));
        assert_eq!(
            completed(&img, &started),
            None,
            "3 and 4 are not in sync yet"
        );
        let mut caught_up = started.clone();
        caught_up.isr = nodes(&[1, 2, 3, 4]);
        let done = completed(&img, &caught_up).unwrap();
        assert_eq!(
            (done.replicas.clone(), done.isr.clone()),
            (nodes(&[3, 4]), nodes(&[3, 4]))
        );
        assert_eq!(
            (done.leader, done.leader_epoch),
            (Some(NodeId(3)), LeaderEpoch(3))
        );
        assert_eq!(done.reassignment, None);
        // Cancelled before completion: back to [1, 2].
        let cancelled = reassigned(&img, &started, None, true).unwrap();
        assert_eq!(
            (cancelled.replicas, cancelled.leader),
            (nodes(&[1, 2]), Some(NodeId(1)))
        );
    }

    #[test]
    fn a_pure_removal_completes_at_once_and_bad_requests_are_refused() {
        let img = image(3);
        let shrunk = reassigned(
            &img,
            &record(&[1, 2, 3], &[1, 2, 3], 2),
            Some(&nodes(&[1, 3])),
            true,
        )
        .unwrap();
        assert_eq!(
            (shrunk.replicas, shrunk.leader),
            (nodes(&[1, 3]), Some(NodeId(1)))
        );
        assert_eq!(shrunk.reassignment, None);
        let p = record(&[1, 2], &[1, 2], 1);
        assert!(reassigned(&img, &p, Some(&nodes(&[1, 1])), true).is_err());
        assert!(reassigned(&img, &p, Some(&nodes(&[9])), true).is_err());
        assert_eq!(
            reassigned(&img, &p, Some(&nodes(&[1, 2, 3])), false),
            Err(ReassignError::ReplicationFactorChange)
        );
        assert_eq!(
            reassigned(&img, &p, None, true),
            Err(ReassignError::NoReassignmentInProgress)
        );
    }
}

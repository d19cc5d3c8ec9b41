//! A broker's life as the controller sees it, as in KRaft:
//!
//! ```text
//!   start ─▶ RegisterBroker (new incarnation, epoch + 1) ─▶ live: in Metadata answers, leads its partitions
//!             heartbeat every broker.heartbeat.interval.ms ─▶ the active controller notes the time
//!   no heartbeat for broker.session.timeout.ms ─▶ FenceBroker: left out of Metadata, its partitions lose
//!             it as leader (another live ISR member leads, else the leader is -1), leader epoch + 1
//!   heartbeat or registration again ─▶ UnfenceBroker: leaderless partitions it holds get it back as leader
//! ```
//! When each broker was last heard from is the active controller's memory, not metadata: a new controller
//! gives every broker a full session from the moment it took over.

use super::controller::ControllerOp;
use super::{Node, TopicError};
use ferrite_metadata::{BrokerRegistration, MetadataImage, MetadataRecord, PartitionRecord};
use ferrite_replication::{LeaderEpoch, NodeId};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// When the active controller last heard from each broker.
#[derive(Debug, Default)]
pub struct BrokerLiveness {
    last_seen: HashMap<NodeId, Instant>,
    /// Whether this node led the quorum at the last check; a new term starts every session afresh.
    leading: bool,
}

impl BrokerLiveness {
    pub fn heard_from(&mut self, node: NodeId, now: Instant) {
        self.last_seen.insert(node, now);
    }

    /// The live brokers whose session expired, given whether this node leads now. Brokers it has not heard
    /// from since it took over are given a session from the first check.
    pub fn expired(
        &mut self,
        leading: bool,
        live: impl IntoIterator<Item = NodeId>,
        now: Instant,
        session: Duration,
    ) -> Vec<NodeId> {
        if leading && !self.leading {
            self.last_seen.clear();
        }
        self.leading = leading;
        if !leading {
            return vec![];
        }
        live.into_iter()
            .filter(|node| {
                let seen = *self.last_seen.entry(*node).or_insert(now);
                now.duration_since(seen) > session
            })
            .collect()
    }
}

/// The partitions `node` leads, after it is fenced: led by another live ISR member if there is one, else
/// leaderless; the fenced broker leaves the ISR unless it is the last member (Kafka keeps the last one, so
/// the partition can come back with it).
pub fn partitions_after_fence(image: &MetadataImage, node: NodeId) -> Vec<PartitionRecord> {
    let live = |id: &NodeId| *id != node && image.broker(*id).is_some() && !image.is_fenced(*id);
    image
        .topics()
        .flat_map(|t| t.partitions.values())
        .filter(|p| p.leader == Some(node) || (p.isr.contains(&node) && p.isr.len() > 1))
        .map(|p| {
            let mut next = p.clone();
            if next.isr.len() > 1 {
                next.isr.retain(|id| *id != node);
            }
            if p.leader == Some(node) {
                next.leader = next.isr.iter().copied().find(|id| live(id));
                next.leader_epoch = LeaderEpoch(p.leader_epoch.0 + 1);
            }
            next.partition_epoch += 1;
            next
        })
        .collect()
}

/// The leaderless partitions `node` can lead again once it is back: those whose ISR has it.
pub fn partitions_after_unfence(image: &MetadataImage, node: NodeId) -> Vec<PartitionRecord> {
    image
        .topics()
        .flat_map(|t| t.partitions.values())
        .filter(|p| p.leader.is_none() && p.isr.contains(&node))
        .map(|p| {
            let mut next = p.clone();
            next.leader = Some(node);
            next.leader_epoch = LeaderEpoch(p.leader_epoch.0 + 1);
            next.partition_epoch += 1;
            next
        })
        .collect()
}

/// The controller's side.
impl Node {
    pub(super) fn liveness(&self) -> std::sync::MutexGuard<'_, BrokerLiveness> {
        self.liveness.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A registration: the broker with its next epoch, unfenced (and leading again) if it was fenced.
    pub(super) fn register_records(
        &self,
        image: &MetadataImage,
        mut registration: BrokerRegistration,
    ) -> Vec<MetadataRecord> {
        let node = registration.node_id;
        registration.epoch = image.broker(node).map_or(1, |b| b.epoch + 1);
        self.liveness().heard_from(node, Instant::now());
        tracing::info!(node = node.0, epoch = registration.epoch, host = %registration.host, port = registration.port, "broker registered");
        let mut records = vec![MetadataRecord::RegisterBroker(registration)];
        if image.is_fenced(node) {
            records.extend(unfence_records(image, node));
        }
        records
    }

    /// A heartbeat from the current incarnation of a broker; a fenced one is unfenced. An unknown broker or
    /// an old incarnation is refused (the broker registers again).
    pub(super) fn heartbeat_records(
        &self,
        image: &MetadataImage,
        node: NodeId,
        incarnation: uuid::Uuid,
    ) -> Result<Option<Vec<MetadataRecord>>, TopicError> {
        match image.broker(node) {
            Some(b) if b.incarnation_id == incarnation => {}
            _ => {
                return Err(TopicError::InvalidRequest(format!(
                    "broker {} incarnation {incarnation} is not registered",
                    node.0
                )))
            }
        }
        self.liveness().heard_from(node, Instant::now());
        if !image.is_fenced(node) {
            return Ok(None);
        }
        tracing::info!(node = node.0, "broker heard from again: unfencing it");
        Ok(Some(unfence_records(image, node)))
    }

    /// Fencing a broker whose session expired.
    pub(super) fn fence_records(&self, image: &MetadataImage, node: NodeId) -> Vec<MetadataRecord> {
        if image.broker(node).is_none() || image.is_fenced(node) {
            return vec![];
        }
        let moved = partitions_after_fence(image, node);
        tracing::warn!(
            node = node.0,
            partitions = moved.len(),
            "broker session expired: fencing it"
        );
        let mut records = vec![MetadataRecord::FenceBroker { node_id: node }];
        records.extend(moved.into_iter().map(MetadataRecord::Partition));
        records
    }

    /// This broker's registration, at start (forwarded to the controller when it is elsewhere).
    pub(super) fn register(&self, patience: Duration) -> Result<(), TopicError> {
        let registration = BrokerRegistration {
            node_id: self.replicas.local_node(),
            incarnation_id: self.incarnation,
            host: self.config.advertised_host.clone(),
            port: self.config.advertised_port,
            rack: self.config.broker_rack.clone(),
            epoch: 0,
        };
        self.execute_within(ControllerOp::RegisterBroker(registration), patience)
            .map(|_| ())
    }

    /// One heartbeat (a periodic task on brokers). Registers again if the controller does not know this
    /// incarnation (its registration was lost, or the cluster was rebuilt).
    pub fn heartbeat(&self) {
        if !self.config.quorum.broker {
            return;
        }
        let sent = self.execute(ControllerOp::BrokerHeartbeat {
            node_id: self.replicas.local_node(),
            incarnation_id: self.incarnation,
        });
        match sent {
            Ok(_) => {}
            Err(TopicError::InvalidRequest(reason)) => {
                tracing::warn!(%reason, "the controller does not know this broker: registering again");
                if let Err(e) = self.register(super::quorum::COMMIT_TIMEOUT) {
                    tracing::warn!(error = %e, "registering again failed");
                }
            }
            Err(e) => tracing::debug!(error = %e, "heartbeat not delivered"),
        }
    }

    /// Fences the brokers whose session expired (a periodic task; only the active controller acts).
    pub fn check_broker_sessions(&self) {
        let Ok(quorum) = self.quorum() else { return };
        let session = Duration::from_millis(
            u64::try_from(self.config.quorum.broker_session_timeout_ms).unwrap_or(9000),
        );
        let image = self.image();
        let expired = self.liveness().expired(
            quorum.is_leader(),
            image.live_brokers().map(|b| b.node_id),
            Instant::now(),
            session,
        );
        for node in expired {
            if let Err(e) = self.execute_here(ControllerOp::FenceBroker { node_id: node }) {
                tracing::warn!(node = node.0, error = %e, "fencing a broker failed");
            }
        }
    }
}

fn unfence_records(image: &MetadataImage, node: NodeId) -> Vec<MetadataRecord> {
    let mut records = vec![MetadataRecord::UnfenceBroker { node_id: node }];
    records.extend(
        partitions_after_unfence(image, node)
            .into_iter()
            .map(MetadataRecord::Partition),
    );
    records
}

/// Shared by the node: when each broker was last heard from.
pub(super) type Liveness = Mutex<BrokerLiveness>;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn image(fenced: &[i32]) -> MetadataImage {
        let mut records: Vec<MetadataRecord> = (1..=3)
            .map(|id| {
                MetadataRecord::RegisterBroker(BrokerRegistration {
                    node_id: NodeId(id),
                    incarnation_id: Uuid::nil(),
                    host: "h".into(),
                    port: 1,
                    rack: None,
                    epoch: 1,
                })
            })
            .collect();
        let topic_id = Uuid::from_u128(7);
        records.push(MetadataRecord::Topic {
            name: "t".into(),
            topic_id,
        });
        // p0 on 1 alone; p1 on 2 alone; p2 on 1,2 led by 1.
        for (partition, replicas) in [(0, vec![1]), (1, vec![2]), (2, vec![1, 2])] {
            let replicas: Vec<NodeId> = replicas.into_iter().map(NodeId).collect();
            records.push(MetadataRecord::Partition(PartitionRecord {
                topic_id,
                partition,
                leader: replicas.first().copied(),
                isr: replicas.clone(),
                replicas,
                leader_epoch: LeaderEpoch(0),
                partition_epoch: 0,
            }));
        }
        records.extend(fenced.iter().map(|id| MetadataRecord::FenceBroker {
            node_id: NodeId(*id),
        }));
        MetadataImage::from_records(&records).unwrap()
    }

    #[test]
    fn fencing_moves_leadership_to_live_isr_members_or_none() {
        let moved = partitions_after_fence(&image(&[]), NodeId(1));
        assert_eq!(moved.len(), 2);
        let p0 = moved.iter().find(|p| p.partition == 0).unwrap();
        assert_eq!(p0.leader, None);
        assert_eq!(p0.isr, vec![NodeId(1)], "the last ISR member stays");
        assert_eq!(p0.leader_epoch, LeaderEpoch(1));
        assert_eq!(p0.partition_epoch, 1);
        let p2 = moved.iter().find(|p| p.partition == 2).unwrap();
        assert_eq!(p2.leader, Some(NodeId(2)));
        assert_eq!(p2.isr, vec![NodeId(2)]);
        // Broker 2 is fenced too: p2 has no live ISR member left once 1 goes.
        let moved = partitions_after_fence(&image(&[2]), NodeId(1));
        let p2 = moved.iter().find(|p| p.partition == 2).unwrap();
        assert_eq!(p2.leader, None);
    }

    #[test]
    fn unfencing_gives_leaderless_partitions_their_broker_back() {
        let fenced = image(&[1]);
        let records: Vec<MetadataRecord> = partitions_after_fence(&image(&[]), NodeId(1))
            .into_iter()
            .map(MetadataRecord::Partition)
            .collect();
        let (after, _) = fenced.apply_all(&records).unwrap();
        let back = partitions_after_unfence(&after, NodeId(1));
        assert_eq!(back.len(), 1, "p0 only: p2 is led by 2 now");
        assert_eq!(back[0].partition, 0);
        assert_eq!(back[0].leader, Some(NodeId(1)));
        assert_eq!(back[0].leader_epoch, LeaderEpoch(2));
    }

    #[test]
    fn sessions_expire_only_under_a_leader_and_restart_with_a_new_term() {
        let mut liveness = BrokerLiveness::default();
        let session = Duration::from_secs(9);
        let t0 = Instant::now();
        let live = [NodeId(1), NodeId(2)];
        assert!(liveness.expired(false, live, t0, session).is_empty());
        assert!(liveness.expired(true, live, t0, session).is_empty());
        liveness.heard_from(NodeId(1), t0 + Duration::from_secs(5));
        let later = t0 + Duration::from_secs(10);
        assert_eq!(
            liveness.expired(true, live, later, session),
            vec![NodeId(2)]
        );
        // Losing and regaining the leadership gives everyone a new session.
        assert!(liveness.expired(false, live, later, session).is_empty());
        assert!(liveness.expired(true, live, later, session).is_empty());
        assert!(liveness
            .expired(true, live, later + Duration::from_secs(8), session)
            .is_empty());
        assert_eq!(
            liveness.expired(true, live, later + Duration::from_secs(10), session),
            live.to_vec()
        );
    }
}

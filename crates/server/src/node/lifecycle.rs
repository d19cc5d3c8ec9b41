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

/// How long a controlled shutdown waits for the controller (Kafka retries 3 times, 5 s apart); after that the
/// broker stops anyway and its session expiring moves its leaderships.
const CONTROLLED_SHUTDOWN_PATIENCE: Duration = Duration::from_secs(10);

/// When the active controller last heard from each broker.
#[derive(Debug, Default)]
pub struct BrokerLiveness {
    last_seen: HashMap<NodeId, Instant>,
    /// Brokers in a controlled shutdown, by the incarnation that asked: their heartbeats no longer unfence
    /// them (a new registration, the next start, does).
    shutting_down: HashMap<NodeId, uuid::Uuid>,
    /// The term this node led the quorum in at the last check; leading in another term (even one won between
    /// two checks) starts every session afresh, as the times heard in an older term say nothing now.
    leading: Option<u64>,
}

impl BrokerLiveness {
    pub fn heard_from(&mut self, node: NodeId, now: Instant) {
        self.last_seen.insert(node, now);
    }

    /// A new registration of `node` ends its controlled shutdown.
    pub fn registered(&mut self, node: NodeId) {
        self.shutting_down.remove(&node);
    }

    /// The live brokers whose session expired, given the term this node leads in now (`None`: it does not
    /// lead). Brokers it has not heard from since it took over are given a session from the first check.
    pub fn expired(
        &mut self,
        leading: Option<u64>,
        live: impl IntoIterator<Item = NodeId>,
        now: Instant,
        session: Duration,
    ) -> Vec<NodeId> {
        if leading.is_some() && leading != self.leading {
            self.last_seen.clear();
        }
        self.leading = leading;
        if leading.is_none() {
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

/// Whether a topic may elect a replica outside its ISR when no in-sync replica is live
/// (`unclean.leader.election.enable`): such an election may lose acknowledged records, so it is counted and
/// logged.
pub type UncleanAllowed<'a> = &'a dyn Fn(&str) -> bool;

/// The partitions `node` leads or is in sync for, after it is fenced: led by another live ISR member if there
/// is one, else (where the topic allows an unclean election) by another live replica, else leaderless. The
/// fenced broker leaves the ISR unless it is the last member (Kafka keeps the last one, so the partition can
/// come back with it). Returns the new records and how many elections were unclean.
pub fn partitions_after_fence(
    image: &MetadataImage,
    node: NodeId,
    unclean: UncleanAllowed<'_>,
) -> (Vec<PartitionRecord>, usize) {
    let live = |id: &NodeId| *id != node && image.broker(*id).is_some() && !image.is_fenced(*id);
    let mut unclean_elections = 0;
    let records = image
        .topics()
        .flat_map(|t| t.partitions.values().map(move |p| (t, p)))
        .filter(|(_, p)| p.leader == Some(node) || (p.isr.contains(&node) && p.isr.len() > 1))
        .map(|(topic, p)| {
            let mut next = p.clone();
            if next.isr.len() > 1 {
                next.isr.retain(|id| *id != node);
            }
            if p.leader == Some(node) {
                next.leader = next.isr.iter().copied().find(|id| live(id));
                if next.leader.is_none() && unclean(&topic.name) {
                    if let Some(replica) = p.replicas.iter().copied().find(|id| live(id)) {
                        tracing::warn!(topic = %topic.name, partition = p.partition, leader = replica.0, "unclean leader election: no in-sync replica is live; records may be lost");
                        unclean_elections += 1;
                        next.leader = Some(replica);
                        next.isr = vec![replica];
                    }
                }
                next.leader_epoch = LeaderEpoch(p.leader_epoch.0 + 1);
            }
            next.partition_epoch += 1;
            next
        })
        .collect();
    (records, unclean_elections)
}

/// The leaderless partitions `node` can lead again once it is back: those whose ISR has it, and (where the
/// topic allows an unclean election) those it is a replica of. Returns the records and the unclean count.
pub fn partitions_after_unfence(
    image: &MetadataImage,
    node: NodeId,
    unclean: UncleanAllowed<'_>,
) -> (Vec<PartitionRecord>, usize) {
    let mut unclean_elections = 0;
    let records = image
        .topics()
        .flat_map(|t| t.partitions.values().map(move |p| (t, p)))
        .filter(|(topic, p)| {
            p.leader.is_none()
                && (p.isr.contains(&node) || (p.replicas.contains(&node) && unclean(&topic.name)))
        })
        .map(|(topic, p)| {
            let mut next = p.clone();
            if !p.isr.contains(&node) {
                tracing::warn!(topic = %topic.name, partition = p.partition, leader = node.0, "unclean leader election: the returning replica was not in sync; records may be lost");
                unclean_elections += 1;
                next.isr = vec![node];
            }
            next.leader = Some(node);
            next.leader_epoch = LeaderEpoch(p.leader_epoch.0 + 1);
            next.partition_epoch += 1;
            next
        })
        .collect();
    (records, unclean_elections)
}

/// The controller's side.
impl Node {
    pub(super) fn liveness(&self) -> std::sync::MutexGuard<'_, BrokerLiveness> {
        self.liveness.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A registration: the broker with its next epoch, unfenced (and leading again) if it was fenced. A new
    /// incarnation of a live broker (it restarted within its session) is fenced first, as a crash is: its
    /// leaderships move to in-sync replicas with a new epoch, so a log that lost an unsynced tail in the
    /// restart follows (and truncates to) the new leader instead of leading with a gap.
    pub(super) fn register_records(
        &self,
        image: &MetadataImage,
        mut registration: BrokerRegistration,
    ) -> Vec<MetadataRecord> {
        let node = registration.node_id;
        registration.epoch = image.broker(node).map_or(1, |b| b.epoch + 1);
        self.liveness().heard_from(node, Instant::now());
        self.liveness().registered(node);
        tracing::info!(node = node.0, epoch = registration.epoch, host = %registration.host, port = registration.port, "broker registered");
        let restarted = image
            .broker(node)
            .is_some_and(|b| b.incarnation_id != registration.incarnation_id);
        let mut records = if restarted && !image.is_fenced(node) {
            self.fence_records(image, node)
        } else {
            vec![]
        };
        records.push(MetadataRecord::RegisterBroker(registration));
        let after = match image.apply_all(&records) {
            Ok((after, _)) => after,
            Err(e) => {
                tracing::error!(error = %e, "a registration's records do not apply");
                return records;
            }
        };
        if after.is_fenced(node) {
            records.extend(self.unfence_records(&after, node));
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
        if self.is_shutting_down(node) {
            return Ok(None);
        }
        tracing::info!(node = node.0, "broker heard from again: unfencing it");
        Ok(Some(self.unfence_records(image, node)))
    }

    /// Fencing a broker whose session expired.
    pub(super) fn fence_records(&self, image: &MetadataImage, node: NodeId) -> Vec<MetadataRecord> {
        if image.broker(node).is_none() || image.is_fenced(node) {
            return vec![];
        }
        let (moved, unclean) = partitions_after_fence(image, node, &|t| self.unclean_allowed(t));
        self.count_unclean_elections(unclean);
        tracing::warn!(
            node = node.0,
            partitions = moved.len(),
            "fencing broker: its partitions get new leaders"
        );
        let mut records = vec![MetadataRecord::FenceBroker { node_id: node }];
        records.extend(moved.into_iter().map(MetadataRecord::Partition));
        records
    }

    /// The records that unfence `node` and give it back the leaderless partitions it can lead.
    fn unfence_records(&self, image: &MetadataImage, node: NodeId) -> Vec<MetadataRecord> {
        let (back, unclean) = partitions_after_unfence(image, node, &|t| self.unclean_allowed(t));
        self.count_unclean_elections(unclean);
        let mut records = vec![MetadataRecord::UnfenceBroker { node_id: node }];
        records.extend(back.into_iter().map(MetadataRecord::Partition));
        records
    }

    /// Whether `topic` allows an unclean leader election (its effective config).
    fn unclean_allowed(&self, topic: &str) -> bool {
        self.topic(topic)
            .is_some_and(|t| t.effective.unclean_leader_election_enable)
    }

    fn count_unclean_elections(&self, count: usize) {
        if count > 0 {
            self.metrics
                .unclean_leader_elections
                .fetch_add(count as u64, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// A broker stopping on purpose (SIGTERM): fenced at once, so its leaderships move to in-sync replicas
    /// while it still answers, and not unfenced by a heartbeat still in flight.
    pub(super) fn controlled_shutdown_records(
        &self,
        image: &MetadataImage,
        node: NodeId,
        incarnation: uuid::Uuid,
    ) -> Result<Vec<MetadataRecord>, TopicError> {
        match image.broker(node) {
            Some(b) if b.incarnation_id == incarnation => {}
            _ => {
                return Err(TopicError::InvalidRequest(format!(
                    "broker {} incarnation {incarnation} is not registered",
                    node.0
                )))
            }
        }
        self.liveness().shutting_down.insert(node, incarnation);
        tracing::info!(
            node = node.0,
            "controlled shutdown: moving the broker's leaderships"
        );
        Ok(self.fence_records(image, node))
    }

    fn is_shutting_down(&self, node: NodeId) -> bool {
        self.liveness().shutting_down.contains_key(&node)
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
    /// incarnation (its registration was lost, or the cluster was rebuilt). None once a controlled shutdown
    /// began: it would unfence the broker that is leaving.
    pub fn heartbeat(&self) {
        if !self.config.quorum.broker
            || self
                .shutting_down
                .load(std::sync::atomic::Ordering::Acquire)
        {
            return;
        }
        // A third of the session: a heartbeat stuck on a controller that stopped answering gives way to the
        // next one (sent to whichever controller is known then) well before the session runs out.
        let patience = Duration::from_millis(
            u64::try_from(self.config.quorum.broker_session_timeout_ms / 3).unwrap_or(3000),
        );
        let sent = self.execute_within(
            ControllerOp::BrokerHeartbeat {
                node_id: self.replicas.local_node(),
                incarnation_id: self.incarnation,
            },
            patience,
        );
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

    /// On SIGTERM (`controlled.shutdown.enable`): asks the controller to move this broker's leaderships to
    /// other in-sync replicas, and returns once this node's metadata shows they moved, so clients are sent
    /// to the new leaders (a retriable NOT_LEADER_OR_FOLLOWER) while this broker still answers. A single node,
    /// or a controller that cannot be reached, is logged and the shutdown goes on. Blocking.
    pub fn controlled_shutdown(&self) {
        if !self.config.quorum.broker || !self.config.replication.controlled_shutdown_enable {
            return;
        }
        self.shutting_down
            .store(true, std::sync::atomic::Ordering::Release);
        let local = self.replicas.local_node();
        let image = self.image();
        if !image.live_brokers().any(|b| b.node_id != local) {
            return;
        }
        let started = Instant::now();
        let op = ControllerOp::ControlledShutdown {
            node_id: local,
            incarnation_id: self.incarnation,
        };
        match self.execute_within(op, CONTROLLED_SHUTDOWN_PATIENCE) {
            Ok(_) => {
                let still_leading = self
                    .image()
                    .topics()
                    .flat_map(|t| t.partitions.values())
                    .filter(|p| p.leader == Some(local))
                    .count();
                tracing::info!(
                    still_leading,
                    took_ms = started.elapsed().as_millis() as u64,
                    "controlled shutdown: leaderships moved (partitions with no other in-sync replica stay)"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "controlled shutdown failed; stopping anyway");
            }
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
            quorum.leader_term(),
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
                reassignment: None,
            }));
        }
        records.extend(fenced.iter().map(|id| MetadataRecord::FenceBroker {
            node_id: NodeId(*id),
        }));
        MetadataImage::from_records(&records).unwrap()
    }

    #[test]
    fn fencing_moves_leadership_to_live_isr_members_or_none() {
        let (moved, unclean) = partitions_after_fence(&image(&[]), NodeId(1), &|_| false);
        assert_eq!((moved.len(), unclean), (2, 0));
        let p0 = moved.iter().find(|p| p.partition == 0).unwrap();
        assert_eq!(p0.leader, None);
        assert_eq!(p0.isr, vec![NodeId(1)], "the last ISR member stays");
        assert_eq!(p0.leader_epoch, LeaderEpoch(1));
        assert_eq!(p0.partition_epoch, 1);
        let p2 = moved.iter().find(|p| p.partition == 2).unwrap();
        assert_eq!(p2.leader, Some(NodeId(2)));
        assert_eq!(p2.isr, vec![NodeId(2)]);
        // Broker 2 is fenced too: p2 has no live ISR member left once 1 goes.
        let (moved, _) = partitions_after_fence(&image(&[2]), NodeId(1), &|_| false);
        let p2 = moved.iter().find(|p| p.partition == 2).unwrap();
        assert_eq!(p2.leader, None);
    }

    #[test]
    fn an_unclean_election_picks_a_live_replica_outside_the_isr_only_when_allowed() {
        // p2 on 1,2 with the ISR shrunk to 1 alone; then 1 is fenced.
        let base = image(&[]);
        let topic_id = base.topic("t").unwrap().id;
        let mut p2 = base.topic("t").unwrap().partitions[&2].clone();
        p2.isr = vec![NodeId(1)];
        let (shrunk, _) = base.apply_all(&[MetadataRecord::Partition(p2)]).unwrap();
        let (clean, count) = partitions_after_fence(&shrunk, NodeId(1), &|_| false);
        let p = clean.iter().find(|p| p.partition == 2).unwrap();
        assert_eq!((p.leader, count), (None, 0));
        let (unclean, count) = partitions_after_fence(&shrunk, NodeId(1), &|t| t == "t");
        let p = unclean.iter().find(|p| p.partition == 2).unwrap();
        assert_eq!(
            (p.leader, p.isr.clone(), count),
            (Some(NodeId(2)), vec![NodeId(2)], 1)
        );
        assert_eq!(p.topic_id, topic_id);
    }

    #[test]
    fn unfencing_gives_leaderless_partitions_their_broker_back() {
        let fenced = image(&[1]);
        let records: Vec<MetadataRecord> =
            partitions_after_fence(&image(&[]), NodeId(1), &|_| false)
                .0
                .into_iter()
                .map(MetadataRecord::Partition)
                .collect();
        let (after, _) = fenced.apply_all(&records).unwrap();
        let (back, _) = partitions_after_unfence(&after, NodeId(1), &|_| false);
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
        assert!(liveness.expired(None, live, t0, session).is_empty());
        assert!(liveness.expired(Some(1), live, t0, session).is_empty());
        liveness.heard_from(NodeId(1), t0 + Duration::from_secs(5));
        let later = t0 + Duration::from_secs(10);
        assert_eq!(
            liveness.expired(Some(1), live, later, session),
            vec![NodeId(2)]
        );
        // Losing and regaining the leadership gives everyone a new session.
        assert!(liveness.expired(None, live, later, session).is_empty());
        assert!(liveness.expired(Some(2), live, later, session).is_empty());
        assert!(liveness
            .expired(Some(2), live, later + Duration::from_secs(8), session)
            .is_empty());
        assert_eq!(
            liveness.expired(Some(2), live, later + Duration::from_secs(10), session),
            live.to_vec()
        );
        // So does a new term won between two checks, without a check seeing the loss.
        assert!(liveness
            .expired(Some(3), live, later + Duration::from_secs(30), session)
            .is_empty());
    }
}

//! The producer: `acks=all` with `min.insync.replicas=2`, to whichever broker it believes leads. It counts
//! a record acknowledged only when the produce handler would answer success: `ack_status` says `Committed`
//! for the epoch the records were appended in. Every record's value is a fresh number.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ferrite_replication::{AckStatus, LeaderEpoch, NodeId, Offset};

use super::records::batch_of;
use super::replica::ModelNode;
use super::rng::Rng;
use super::stats::Stats;

pub const MIN_INSYNC: usize = 2;
/// `request.timeout.ms`, in simulated time: a produce still waiting then is answered REQUEST_TIMED_OUT.
const PRODUCE_TIMEOUT: Duration = Duration::from_secs(3);

/// A produce appended and waiting for its acknowledgement.
#[derive(Debug, Clone)]
struct Pending {
    node: NodeId,
    incarnation: u64,
    epoch: LeaderEpoch,
    first_offset: i64,
    values: Vec<u64>,
    sent_at: Instant,
}

/// A record the producer was told is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acked {
    pub offset: i64,
    pub value: u64,
}

#[derive(Debug, Default)]
pub struct Client {
    believed_leader: Option<NodeId>,
    next_value: u64,
    pending: Vec<Pending>,
    pub acked: Vec<Acked>,
}

impl Client {
    /// A metadata answer from some broker: its view of the leader, maybe stale.
    pub fn learn_leader(&mut self, leader: Option<NodeId>) {
        self.believed_leader = leader;
    }

    pub fn knows_leader(&self) -> bool {
        self.believed_leader.is_some()
    }

    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }

    /// One produce of 1 to 3 records to the believed leader, as the produce handler takes it.
    /// A produce to a broker that cannot answer now (stalled, not serving yet) is not sent.
    pub fn produce(
        &mut self,
        nodes: &[ModelNode],
        stalled: &BTreeSet<NodeId>,
        rng: &mut Rng,
        now: Instant,
        stats: &mut Stats,
    ) {
        let Some(node) = self
            .believed_leader
            .and_then(|id| nodes.iter().find(|n| n.id == id))
        else {
            stats.produce_refused += 1;
            return;
        };
        if stalled.contains(&node.id) {
            stats.produce_refused += 1;
            return;
        }
        let Some(partition) = node.partition() else {
            // Connection refused: the client refreshes its metadata.
            self.believed_leader = None;
            stats.produce_refused += 1;
            return;
        };
        if let Err(e) = partition.check_leader(None) {
            // NOT_LEADER_OR_FOLLOWER names the leader this broker knows of, if any.
            self.believed_leader = match e {
                ferrite_replication::ReplicaError::NotLeader { leader, .. } => leader,
                _ => None,
            };
            stats.produce_refused += 1;
            return;
        }
        if partition.in_sync_replicas() < MIN_INSYNC {
            stats.produce_refused += 1;
            return; // NOT_ENOUGH_REPLICAS, before the append.
        }
        let count = 1 + rng.below(3);
        let values: Vec<u64> = (0..count).map(|i| self.next_value + i as u64).collect();
        match partition.append_as_leader_in_epoch(batch_of(&values)) {
            Ok((info, epoch)) => {
                self.next_value += count as u64;
                stats.produced += count as u64;
                if info.flush_due {
                    let _ = partition.run_due_flush();
                }
                self.pending.push(Pending {
                    node: node.id,
                    incarnation: node.incarnation,
                    epoch,
                    first_offset: info.first_offset,
                    values,
                    sent_at: now,
                });
            }
            Err(_) => {
                self.believed_leader = None;
                stats.produce_refused += 1;
            }
        }
    }

    /// Looks at every waiting produce as the produce handler does when woken (not on a stalled broker);
    /// returns the records acknowledged now.
    pub fn poll(
        &mut self,
        nodes: &[ModelNode],
        stalled: &BTreeSet<NodeId>,
        now: Instant,
        stats: &mut Stats,
    ) -> Vec<Acked> {
        let mut acked = vec![];
        let mut lost = 0;
        self.pending.retain(|p| {
            if stalled.contains(&p.node) {
                return true;
            }
            let Some(partition) = nodes
                .iter()
                .find(|n| n.id == p.node && n.incarnation == p.incarnation)
                .and_then(|n| n.partition())
            else {
                lost += p.values.len() as u64;
                return false; // the connection died with the process
            };
            let end = Offset(p.first_offset + p.values.len() as i64);
            match partition.ack_status(end, p.epoch, MIN_INSYNC) {
                AckStatus::Committed => {
                    acked.extend(p.values.iter().enumerate().map(|(i, v)| Acked {
                        offset: p.first_offset + i as i64,
                        value: *v,
                    }));
                    false
                }
                AckStatus::Waiting => {
                    let waiting = now.saturating_duration_since(p.sent_at) < PRODUCE_TIMEOUT;
                    if !waiting {
                        lost += p.values.len() as u64;
                    }
                    waiting
                }
                AckStatus::NotEnoughReplicasAfterAppend | AckStatus::NotLeader => {
                    lost += p.values.len() as u64;
                    false
                }
            }
        });
        stats.acknowledged += acked.len() as u64;
        stats.unacknowledged += lost;
        self.acked.extend(&acked);
        acked
    }
}

//! What a partition does as leader beyond appending: tracks its followers from their fetches, proposes ISR
//! changes, and tells an `acks=all` produce when its records are committed.
//!
//! ```text
//!   follower fetch(offset) ──▶ record_follower_fetch ──▶ Followers ──▶ advance_high_watermark
//!   periodic check ──▶ isr_proposal (lagging out, caught-up in) ──▶ controller (AlterPartition, with the
//!                        partition epoch) ──▶ new metadata ──▶ set_role(Leader, same epoch, new ISR)
//!   acks=all produce ──▶ ack_status(end of its records) ──▶ Waiting | Committed | NotEnoughReplicasAfterAppend
//!                                                            | NotLeader
//! ```

use crate::error::ReplicaError;
use crate::followers::proposed_isr;
use crate::ids::{LeaderEpoch, NodeId, Offset};
use crate::partition::Partition;
use crate::role::{LeaderState, Role};
use ferrite_log::{LogError, ReadResult};
use std::time::{Duration, Instant};

/// An ISR change for the controller: the leader's view it was computed from travels with it, so the
/// controller refuses it if the leadership or the partition changed meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrProposal {
    pub leader_epoch: LeaderEpoch,
    pub partition_epoch: i32,
    pub isr: Vec<NodeId>,
}

/// Where an `acks=all` produce stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckStatus {
    /// The high watermark has not reached the records yet.
    Waiting,
    /// Every in-sync replica has them.
    Committed,
    /// They are committed, but the ISR shrank below `min.insync.replicas` while the produce waited.
    NotEnoughReplicasAfterAppend,
    /// This node no longer leads in the epoch the records were appended in: they may be lost.
    NotLeader,
}

/// Why an ISR proposal came back without the change showing in the metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsrProposalFailure {
    /// The controller refused it against the partition state it was computed from: it was not applied, and
    /// the next check computes a proposal afresh.
    Refused,
    /// No answer (a timeout, a lost answer, no controller), or refused because the partition moved on,
    /// perhaps by this very change: it may have been applied. The members it adds stay counted for the high
    /// watermark, and the same proposal is sent again, until the metadata shows the partition's next state
    /// (KIP-497's rule: never count fewer members than the controller may have admitted).
    Unknown,
}

/// How long a proposal may stay unanswered before the leader sends it again (the controller may have failed
/// over and lost it).
const PROPOSAL_RETRY: Duration = Duration::from_secs(5);

impl Partition {
    /// Called under the role lock when `leader` is about to be applied: a new leadership (from another role
    /// or epoch) starts its followers' tracking afresh; the same one (an ISR or assignment change) keeps it.
    pub(crate) fn start_or_update_leadership(
        &self,
        current: &Role,
        leader: &LeaderState,
        now: Instant,
    ) {
        let followers: Vec<NodeId> = leader
            .replicas
            .iter()
            .copied()
            .filter(|n| *n != self.local)
            .collect();
        let mut leadership = self.lock_leadership();
        match current {
            Role::Leader(old) if old.epoch == leader.epoch => {
                leadership.followers.retain_replicas(&followers, now);
                for left in old.isr.iter().filter(|n| !leader.isr.contains(n)) {
                    leadership.followers.forget(*left, now);
                }
                if old.partition_epoch != leader.partition_epoch {
                    // The controller decided (our proposal or another change): propose again from here.
                    leadership.pending_isr = None;
                }
            }
            _ => {
                leadership.followers.reset(followers, now);
                leadership.epoch_start = self.log_end_offset();
                leadership.pending_isr = None;
            }
        }
    }

    /// A follower's fetch at `fetch_offset`: it has every record below. Moves the high watermark if the
    /// follower is in sync. Refused for a node that is not a replica of the partition.
    pub fn record_follower_fetch(
        &self,
        node: NodeId,
        fetch_offset: Offset,
        now: Instant,
    ) -> Result<(), ReplicaError> {
        self.check_leader(None)?;
        let (start, end) = (self.log_start_offset(), self.log_end_offset());
        if fetch_offset > end || fetch_offset < start {
            // A follower past the log end has a tail this leader does not (it must truncate first); one
            // before the log start must start over from it. Neither position counts.
            return Err(ReplicaError::Log(LogError::OffsetOutOfRange {
                offset: fetch_offset.0,
                log_start_offset: start.0,
                log_end_offset: end.0,
            }));
        }
        let known = self.lock_leadership().followers.record_fetch(
            node,
            fetch_offset,
            self.log_end_offset(),
            now,
        );
        if !known {
            return Err(ReplicaError::NotFollower {
                topic: self.topic.clone(),
                partition: self.index,
                reason: format!("node {} is not a replica", node.0),
            });
        }
        self.advance_high_watermark();
        Ok(())
    }

    /// Whole batches from `offset` for a follower: up to the log end, not the high watermark (a follower must
    /// have records before they can be committed). Also returns the high watermark, for the follower to learn.
    pub fn read_for_follower(
        &self,
        offset: i64,
        max_bytes: u64,
        min_one: bool,
    ) -> Result<(ReadResult, Offset), LogError> {
        let end = self.log.log_end_offset();
        let read = self.log.read(offset, max_bytes, end, min_one)?;
        Ok((read, self.high_watermark()))
    }

    /// The number of in-sync replicas as the metadata says (the leader counts itself); 0 if not leading.
    pub fn in_sync_replicas(&self) -> usize {
        match &*self.lock_role() {
            Role::Leader(leader) => leader.isr.len(),
            _ => 0,
        }
    }

    /// Where an `acks=all` produce of the records ending before `end`, appended in `epoch`, stands.
    pub fn ack_status(&self, end: Offset, epoch: LeaderEpoch, min_insync: usize) -> AckStatus {
        let isr = match &*self.lock_role() {
            Role::Leader(leader) if leader.epoch == epoch => leader.isr.len(),
            _ => return AckStatus::NotLeader,
        };
        if self.high_watermark() < end {
            AckStatus::Waiting
        } else if isr < min_insync {
            AckStatus::NotEnoughReplicasAfterAppend
        } else {
            AckStatus::Committed
        }
    }

    /// The ISR change this leader should ask the controller for now, if any: followers not caught up for
    /// `max_lag` leave, followers that caught up join. Marks it pending (see [`Partition::isr_proposal_failed`]).
    pub fn isr_proposal(&self, now: Instant, max_lag: Duration) -> Option<IsrProposal> {
        let role = self.lock_role();
        let Role::Leader(leader) = &*role else {
            return None;
        };
        let mut leadership = self.lock_leadership();
        if let Some((pending, sent)) = &mut leadership.pending_isr {
            if now.saturating_duration_since(*sent) < PROPOSAL_RETRY {
                return None;
            }
            // Unconfirmed: the same change again, never a recomputed one that might drop a member the
            // controller already admitted.
            *sent = now;
            return Some(IsrProposal {
                leader_epoch: leader.epoch,
                partition_epoch: leader.partition_epoch,
                isr: pending.clone(),
            });
        }
        let isr = proposed_isr(
            self.local,
            &leader.isr,
            &leadership.followers,
            self.high_watermark(),
            leadership.epoch_start,
            now,
            max_lag,
        )?;
        leadership.pending_isr = Some((isr.clone(), now));
        Some(IsrProposal {
            leader_epoch: leader.epoch,
            partition_epoch: leader.partition_epoch,
            isr,
        })
    }

    /// A proposal came back without the change (see [`IsrProposalFailure`]).
    pub fn isr_proposal_failed(&self, failure: IsrProposalFailure) {
        if failure == IsrProposalFailure::Refused {
            self.lock_leadership().pending_isr = None;
            self.advance_high_watermark();
        }
    }

    /// The followers as this leader tracks them: (node, log end if known, time since last caught up).
    pub fn follower_progress(&self, now: Instant) -> Vec<(NodeId, Option<Offset>, Duration)> {
        let role = self.lock_role();
        let Role::Leader(leader) = &*role else {
            return vec![];
        };
        let leadership = self.lock_leadership();
        leader
            .replicas
            .iter()
            .filter_map(|n| {
                let p = leadership.followers.get(*n)?;
                Some((
                    *n,
                    p.log_end,
                    now.saturating_duration_since(p.last_caught_up),
                ))
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::role::FollowerState;
    use crate::test_support::batch;
    use ferrite_log::{LogConfig, LogOptions, PartitionLog};

    fn leader(epoch: i32, partition_epoch: i32, isr: &[i32]) -> Role {
        Role::Leader(LeaderState {
            epoch: LeaderEpoch(epoch),
            replicas: vec![NodeId(1), NodeId(2), NodeId(3)],
            isr: isr.iter().copied().map(NodeId).collect(),
            partition_epoch,
        })
    }

    fn partition(dir: &std::path::Path) -> Partition {
        let log = PartitionLog::open(dir, LogConfig::default(), LogOptions::default()).unwrap();
        Partition::new("t", 0, NodeId(1), log, leader(1, 0, &[1, 2, 3])).unwrap()
    }

    #[test]
    fn the_high_watermark_waits_for_every_in_sync_follower() {
        let tmp = tempfile::tempdir().unwrap();
        let p = partition(tmp.path());
        let info = p.append_as_leader(batch("a")).unwrap();
        p.append_as_leader(batch("b")).unwrap();
        let end = Offset(info.last_offset + 1);
        assert_eq!(p.high_watermark(), Offset(0), "no follower has fetched");
        assert_eq!(p.ack_status(end, LeaderEpoch(1), 2), AckStatus::Waiting);
        let now = Instant::now();
        p.record_follower_fetch(NodeId(2), Offset(2), now).unwrap();
        assert_eq!(p.high_watermark(), Offset(0), "node 3 is in the ISR too");
        p.record_follower_fetch(NodeId(3), Offset(1), now).unwrap();
        assert_eq!(p.high_watermark(), Offset(1));
        assert_eq!(p.ack_status(end, LeaderEpoch(1), 2), AckStatus::Committed);
        assert!(p.read(0, 1 << 20, true).unwrap().0.next_offset == 1);
        // A follower reads past the high watermark.
        assert_eq!(
            p.read_for_follower(0, 1 << 20, true).unwrap().0.next_offset,
            2
        );
        assert!(matches!(
            p.record_follower_fetch(NodeId(7), Offset(0), now),
            Err(ReplicaError::NotFollower { .. })
        ));
    }

    #[test]
    fn a_lagging_follower_is_proposed_out_and_the_shrunk_isr_commits_without_it() {
        let tmp = tempfile::tempdir().unwrap();
        let p = partition(tmp.path());
        let t0 = Instant::now();
        p.append_as_leader(batch("a")).unwrap();
        p.record_follower_fetch(NodeId(2), Offset(1), t0).unwrap();
        let lag = Duration::from_secs(30);
        assert_eq!(p.isr_proposal(t0, lag), None);
        let later = t0 + Duration::from_secs(31);
        p.record_follower_fetch(NodeId(2), Offset(1), later)
            .unwrap();
        let proposal = p.isr_proposal(later, lag).unwrap();
        assert_eq!(proposal.isr, vec![NodeId(1), NodeId(2)]);
        assert_eq!(
            (proposal.leader_epoch, proposal.partition_epoch),
            (LeaderEpoch(1), 0)
        );
        assert_eq!(p.isr_proposal(later, lag), None, "one proposal in flight");
        assert_eq!(
            p.high_watermark(),
            Offset(0),
            "node 3 still counts until the change commits"
        );
        p.set_role(leader(1, 1, &[1, 2])).unwrap();
        assert_eq!(p.high_watermark(), Offset(1));
        assert_eq!(
            p.ack_status(Offset(1), LeaderEpoch(1), 3),
            AckStatus::NotEnoughReplicasAfterAppend
        );
    }

    #[test]
    fn a_joining_follower_counts_for_the_high_watermark_while_its_admission_is_pending() {
        let tmp = tempfile::tempdir().unwrap();
        let log =
            PartitionLog::open(tmp.path(), LogConfig::default(), LogOptions::default()).unwrap();
        let p = Partition::new("t", 0, NodeId(1), log, leader(1, 0, &[1, 2])).unwrap();
        let t0 = Instant::now();
        p.append_as_leader(batch("a")).unwrap();
        p.record_follower_fetch(NodeId(2), Offset(1), t0).unwrap();
        p.record_follower_fetch(NodeId(3), Offset(1), t0).unwrap();
        assert_eq!(p.high_watermark(), Offset(1));
        let proposal = p.isr_proposal(t0, Duration::from_secs(30)).unwrap();
        assert_eq!(proposal.isr, vec![NodeId(1), NodeId(2), NodeId(3)]);
        p.append_as_leader(batch("b")).unwrap();
        p.record_follower_fetch(NodeId(2), Offset(2), t0).unwrap();
        assert_eq!(
            p.high_watermark(),
            Offset(1),
            "node 3 may be in the ISR already: wait for it"
        );
        p.record_follower_fetch(NodeId(3), Offset(2), t0).unwrap();
        assert_eq!(p.high_watermark(), Offset(2));
    }

    #[test]
    fn losing_the_leadership_ends_the_wait() {
        let tmp = tempfile::tempdir().unwrap();
        let p = partition(tmp.path());
        let info = p.append_as_leader(batch("a")).unwrap();
        p.set_role(Role::Follower(FollowerState {
            epoch: LeaderEpoch(2),
            leader: Some(NodeId(2)),
        }))
        .unwrap();
        assert_eq!(
            p.ack_status(Offset(info.last_offset + 1), LeaderEpoch(1), 1),
            AckStatus::NotLeader
        );
        assert_eq!(p.in_sync_replicas(), 0);
    }
}

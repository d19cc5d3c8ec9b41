//! What a partition does as follower: appends what the leader sent with the leader's offsets and epochs,
//! learns the high watermark from it, and cuts a divergent tail when a new leadership begins.
//!
//! Every write names the leader epoch the caller follows in, and is refused unless the replica still follows
//! in that epoch; the role lock is held across the write. The fetcher that called may be a step behind a
//! metadata change: one that made this replica the leader (a leader's log must never be truncated or written
//! with someone else's offsets), or one that moved it to another leader, whose fetcher may already have
//! truncated the log for the new leadership (an answer from the previous leader must not land after that).
//! Holding the lock makes `set_role` wait for a write in progress, so every write for an older leadership
//! happens before the new leadership's fetcher starts.

use crate::error::ReplicaError;
use crate::ids::{LeaderEpoch, Offset};
use crate::partition::Partition;
use crate::role::Role;
use bytes::Bytes;
use ferrite_log::{AppendInfo, AppendOrigin};
use std::sync::atomic::Ordering;
use std::sync::MutexGuard;

impl Partition {
    /// The epoch this replica follows in, or why it does not follow.
    pub fn check_follower(&self) -> Result<LeaderEpoch, ReplicaError> {
        match &*self.lock_role() {
            Role::Follower(f) => Ok(f.epoch),
            other => Err(ReplicaError::NotFollower {
                topic: self.topic.clone(),
                partition: self.index,
                reason: format!("the replica is {}", other.name()),
            }),
        }
    }

    /// The role, locked, if this replica follows in `epoch`; else why not.
    fn lock_following(&self, epoch: LeaderEpoch) -> Result<MutexGuard<'_, Role>, ReplicaError> {
        let role = self.lock_role();
        match &*role {
            Role::Follower(f) if f.epoch == epoch => Ok(role),
            other => Err(ReplicaError::NotFollower {
                topic: self.topic.clone(),
                partition: self.index,
                reason: format!(
                    "the replica is {} in epoch {}, not a follower in epoch {epoch}",
                    other.name(),
                    other.epoch().map_or(-1, |e| e.0)
                ),
            }),
        }
    }

    /// Appends batches fetched from the leader of `epoch`, keeping their offsets and epochs (producer state
    /// and the epoch cache follow them, so this replica can lead with them). Does not sync: in durable mode
    /// the fetcher syncs before it fetches again, since its next fetch offset tells the leader what it holds.
    pub fn append_as_follower(
        &self,
        epoch: LeaderEpoch,
        payload: Bytes,
    ) -> Result<AppendInfo, ReplicaError> {
        let _following = self.lock_following(epoch)?;
        Ok(self.log.append_unsynced(payload, AppendOrigin::Replica)?)
    }

    /// The high watermark the leader reported: never past what this replica has, never backwards.
    pub fn update_follower_high_watermark(&self, leader_high_watermark: Offset) {
        if self.check_follower().is_err() {
            return;
        }
        let next = leader_high_watermark.min(self.log_end_offset());
        let previous = self.high_watermark.fetch_max(next.0, Ordering::AcqRel);
        if next.0 > previous {
            // Consumers reading from this follower (KIP-392) wait for it.
            self.waiters.wake_all();
        }
    }

    /// Checks that this replica can serve a consumer's read (KIP-392: a follower serves reads up to its high
    /// watermark), with Kafka's fencing of the client's view of the leader epoch.
    pub fn check_readable(&self, requested: Option<LeaderEpoch>) -> Result<(), ReplicaError> {
        let current = match &*self.lock_role() {
            Role::Leader(l) => l.epoch,
            Role::Follower(f) => f.epoch,
            Role::Offline => {
                return Err(ReplicaError::NotLeader {
                    topic: self.topic.clone(),
                    partition: self.index,
                    role: "offline",
                    leader: None,
                })
            }
        };
        match requested {
            Some(r) if r < current => Err(ReplicaError::FencedLeaderEpoch {
                requested: r,
                current,
            }),
            Some(r) if r > current => Err(ReplicaError::UnknownLeaderEpoch {
                requested: r,
                current,
            }),
            _ => Ok(()),
        }
    }

    /// Removes every record at or after `offset` (a tail the leader of `epoch` does not have).
    pub fn truncate_to(&self, epoch: LeaderEpoch, offset: Offset) -> Result<(), ReplicaError> {
        let _following = self.lock_following(epoch)?;
        self.log.truncate_to(offset.0)?;
        self.clamp_high_watermark();
        Ok(())
    }

    /// Empties the log and restarts it at `offset` (this replica is behind the log start of the leader of
    /// `epoch`).
    pub fn truncate_fully_and_start_at(
        &self,
        epoch: LeaderEpoch,
        offset: Offset,
    ) -> Result<(), ReplicaError> {
        let _following = self.lock_following(epoch)?;
        self.log.truncate_fully_and_start_at(offset.0)?;
        self.high_watermark.store(offset.0, Ordering::Release);
        Ok(())
    }

    /// Follows the leader's log start (DeleteRecords, retention) as far as this replica has the log.
    pub fn follow_log_start(&self, leader_log_start: Offset) -> Result<(), ReplicaError> {
        self.check_follower()?;
        let target = leader_log_start.min(self.log_end_offset());
        if target > self.log_start_offset() {
            self.log.advance_log_start_offset(target.0)?;
        }
        Ok(())
    }

    /// The latest epoch this replica's log has batches or a start for (what it asks the leader about).
    pub fn latest_epoch(&self) -> Option<LeaderEpoch> {
        self.log.latest_epoch().map(LeaderEpoch)
    }

    fn clamp_high_watermark(&self) {
        let end = self.log_end_offset().0;
        self.high_watermark.fetch_min(end, Ordering::AcqRel);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::error::ReplicaError;
    use crate::ids::{LeaderEpoch, NodeId, Offset};
    use crate::partition::Partition;
    use crate::role::{FollowerState, LeaderState, Role};
    use crate::test_support::batch;
    use ferrite_log::{LogConfig, LogOptions, PartitionLog};

    fn log(dir: &std::path::Path) -> PartitionLog {
        PartitionLog::open(dir, LogConfig::default(), LogOptions::default()).unwrap()
    }

    fn leader(epoch: i32) -> Role {
        Role::Leader(LeaderState {
            epoch: LeaderEpoch(epoch),
            replicas: vec![NodeId(1), NodeId(2)],
            isr: vec![NodeId(1), NodeId(2)],
            partition_epoch: 0,
        })
    }

    fn follower(epoch: i32) -> Role {
        Role::Follower(FollowerState {
            epoch: LeaderEpoch(epoch),
            leader: Some(NodeId(1)),
        })
    }

    #[test]
    fn a_follower_copies_the_leaders_batches_and_truncates_a_divergent_tail() {
        let tmp = tempfile::tempdir().unwrap();
        let leader_replica =
            Partition::new("t", 0, NodeId(1), log(&tmp.path().join("l")), leader(1)).unwrap();
        for v in ["a", "b", "c"] {
            leader_replica.append_as_leader(batch(v)).unwrap();
        }
        let follower_replica =
            Partition::new("t", 0, NodeId(2), log(&tmp.path().join("f")), follower(1)).unwrap();
        let (read, _) = leader_replica.read_for_follower(0, 1 << 20, true).unwrap();
        let mut bytes = vec![];
        for slice in read.slices {
            bytes.extend(slice.read_to_vec().unwrap());
        }
        let info = follower_replica
            .append_as_follower(LeaderEpoch(1), bytes::Bytes::from(bytes))
            .unwrap();
        assert_eq!((info.first_offset, info.last_offset), (0, 2));
        assert_eq!(follower_replica.latest_epoch(), Some(LeaderEpoch(1)));
        follower_replica.update_follower_high_watermark(Offset(10));
        assert_eq!(
            follower_replica.high_watermark(),
            Offset(3),
            "capped at its log end"
        );
        follower_replica
            .truncate_to(LeaderEpoch(1), Offset(1))
            .unwrap();
        assert_eq!(follower_replica.log_end_offset(), Offset(1));
        assert_eq!(follower_replica.high_watermark(), Offset(1));
        // A leader refuses follower operations.
        assert!(leader_replica
            .append_as_follower(LeaderEpoch(1), batch("x"))
            .is_err());
        assert!(leader_replica
            .truncate_to(LeaderEpoch(1), Offset(0))
            .is_err());
        assert_eq!(leader_replica.log_end_offset(), Offset(3));
        // So does a follower of a later leadership: an answer its fetcher was still waiting for belongs to the
        // previous one, and the log (ending at 1) would otherwise take these batches (from 1).
        let (read, _) = leader_replica.read_for_follower(1, 1 << 20, true).unwrap();
        let mut tail = vec![];
        for slice in read.slices {
            tail.extend(slice.read_to_vec().unwrap());
        }
        follower_replica.set_role(follower(2)).unwrap();
        assert!(matches!(
            follower_replica.append_as_follower(LeaderEpoch(1), bytes::Bytes::from(tail)),
            Err(ReplicaError::NotFollower { .. })
        ));
        assert!(follower_replica
            .truncate_to(LeaderEpoch(1), Offset(0))
            .is_err());
        assert!(follower_replica
            .truncate_fully_and_start_at(LeaderEpoch(1), Offset(0))
            .is_err());
        assert_eq!(follower_replica.log_end_offset(), Offset(1));
    }
}

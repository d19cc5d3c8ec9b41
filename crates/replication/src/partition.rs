//! One partition replica on this node: its log, its role, and its high watermark.
//!
//! ```text
//!   append (leader) ──────────┐
//!   flush / sync ─────────────┼──▶ advance_high_watermark ──▶ high watermark moves ──▶ waiters woken
//!   follower fetch positions ─┘      (the one place; the rule is        (fetch long polls,
//!   (leader_side.rs)                  `high_watermark::next_high_watermark`)   acks=all produces)
//! ```
//! Readers (consumer fetches) see the log up to the high watermark only. Every request that names a leader
//! epoch is checked against the role here, so a stale client or leader is fenced in one place. What only a
//! leader does (tracking followers, ISR proposals, acks=all) is in `leader_side.rs`; what only a follower
//! does (replica appends, truncation) in `follower_side.rs`.

use crate::error::ReplicaError;
use crate::followers::Followers;
use crate::high_watermark::{next_high_watermark, ReplicaPosition};
use crate::ids::{LeaderEpoch, NodeId, Offset};
use crate::role::Role;
use crate::waiters::Waiters;
use bytes::Bytes;
use ferrite_log::{AppendInfo, AppendOrigin, FlushPolicy, LogError, PartitionLog, ReadResult};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::Notify;

/// A leader's bookkeeping, started afresh with each leadership (a new epoch).
#[derive(Debug)]
pub(crate) struct Leadership {
    pub(crate) followers: Followers,
    /// The log end when this leader's epoch began: a follower joins the ISR only once it has the log past it.
    pub(crate) epoch_start: Offset,
    /// An ISR change sent to the controller and not yet seen in the metadata, and when it was sent. While it
    /// is pending, the high watermark counts the members it adds too (KIP-497's "maximal ISR"), so a member
    /// the controller admits never lacks a record below the high watermark.
    pub(crate) pending_isr: Option<(Vec<NodeId>, Instant)>,
}

#[derive(Debug)]
pub struct Partition {
    pub(crate) topic: String,
    pub(crate) index: i32,
    pub(crate) local: NodeId,
    pub(crate) log: Arc<PartitionLog>,
    pub(crate) role: Mutex<Role>,
    pub(crate) leadership: Mutex<Leadership>,
    pub(crate) high_watermark: AtomicI64,
    /// Woken when the high watermark moves: consumer long polls, acks=all produces, offset commits.
    pub(crate) waiters: Waiters,
    /// Woken by every leader append: followers' long polls wait for new records, not for the high watermark
    /// (which their own fetches move).
    pub(crate) appended: Waiters,
}

impl Partition {
    /// A replica of `topic`-`index` on node `local` with an open log, in `role`.
    pub fn new(
        topic: impl Into<String>,
        index: i32,
        local: NodeId,
        log: PartitionLog,
        role: Role,
    ) -> Result<Partition, ReplicaError> {
        let partition = Partition {
            topic: topic.into(),
            index,
            local,
            high_watermark: AtomicI64::new(log.log_start_offset()),
            log: Arc::new(log),
            role: Mutex::new(Role::Offline),
            leadership: Mutex::new(Leadership {
                followers: Followers::default(),
                epoch_start: Offset(0),
                pending_isr: None,
            }),
            waiters: Waiters::default(),
            appended: Waiters::default(),
        };
        partition.set_role(role)?;
        Ok(partition)
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn index(&self) -> i32 {
        self.index
    }

    /// The log, for reads and maintenance (retention, checkpoints, lookups). Appends and flushes go through
    /// the partition so the high watermark follows them.
    pub fn log(&self) -> &Arc<PartitionLog> {
        &self.log
    }

    pub(crate) fn lock_role(&self) -> MutexGuard<'_, Role> {
        self.role.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn lock_leadership(&self) -> MutexGuard<'_, Leadership> {
        self.leadership.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn role(&self) -> Role {
        self.lock_role().clone()
    }

    /// Applies a role from the metadata; an older one is refused (see [`Role::can_become`]). Becoming leader
    /// starts the epoch in the log, so batches appended from now on carry it and OffsetForLeaderEpoch answers
    /// for it.
    pub fn set_role(&self, next: Role) -> Result<(), ReplicaError> {
        let mut role = self.lock_role();
        if !role.can_become(&next) {
            return Err(ReplicaError::StaleRole {
                topic: self.topic.clone(),
                partition: self.index,
                from: Box::new(role.clone()),
                to: Box::new(next),
            });
        }
        if let Role::Leader(leader) = &next {
            self.log.begin_leader_epoch(leader.epoch.0)?;
            self.start_or_update_leadership(&role, leader, Instant::now());
        }
        let was_leader = matches!(*role, Role::Leader(_));
        let offline = next == Role::Offline;
        *role = next;
        drop(role);
        if offline || was_leader {
            // Waiting produces and long polls answer now: nothing may move the high watermark any more, or
            // they must find out they lost the leadership (or see a changed ISR).
            self.waiters.wake_all();
            self.appended.wake_all();
        }
        if !offline {
            self.advance_high_watermark();
        }
        Ok(())
    }

    /// The current leader epoch, if the replica has a role.
    pub fn leader_epoch(&self) -> Option<LeaderEpoch> {
        self.lock_role().epoch()
    }

    /// Checks that this replica leads, and Kafka's fencing of a request carrying the client's view of the
    /// leader epoch (`None`: the client does not say). Returns the current epoch.
    pub fn check_leader(
        &self,
        requested: Option<LeaderEpoch>,
    ) -> Result<LeaderEpoch, ReplicaError> {
        let role = self.lock_role();
        let Role::Leader(leader) = &*role else {
            let leader = match &*role {
                Role::Follower(f) => f.leader,
                _ => None,
            };
            return Err(ReplicaError::NotLeader {
                topic: self.topic.clone(),
                partition: self.index,
                role: role.name(),
                leader,
            });
        };
        let current = leader.epoch;
        match requested {
            Some(r) if r < current => Err(ReplicaError::FencedLeaderEpoch {
                requested: r,
                current,
            }),
            Some(r) if r > current => Err(ReplicaError::UnknownLeaderEpoch {
                requested: r,
                current,
            }),
            _ => Ok(current),
        }
    }

    pub fn high_watermark(&self) -> Offset {
        Offset(self.high_watermark.load(Ordering::Acquire))
    }

    pub fn log_end_offset(&self) -> Offset {
        Offset(self.log.log_end_offset())
    }

    pub fn log_start_offset(&self) -> Offset {
        Offset(self.log.log_start_offset())
    }

    /// Whether the topic acknowledges only synced records (`flush.messages=1`).
    pub fn is_durable(&self) -> bool {
        self.log.config().flush == FlushPolicy::Durable
    }

    /// Appends a producer's batches as the leader, stamping the current leader epoch into them. Does not wait
    /// for anything: see [`Partition::wait_acknowledged`].
    pub fn append_as_leader(&self, payload: Bytes) -> Result<AppendInfo, ReplicaError> {
        self.append_as_leader_in_epoch(payload)
            .map(|(info, _)| info)
    }

    /// [`Partition::append_as_leader`], also returning the leader epoch the records were appended in (what an
    /// `acks=all` produce waits in: see [`Partition::ack_status`]).
    pub fn append_as_leader_in_epoch(
        &self,
        payload: Bytes,
    ) -> Result<(AppendInfo, LeaderEpoch), ReplicaError> {
        let epoch = self.check_leader(None)?;
        let info = self.log.append_unsynced(
            payload,
            AppendOrigin::Client {
                leader_epoch: epoch.0,
            },
        )?;
        self.advance_high_watermark();
        self.appended.wake_all();
        Ok((info, epoch))
    }

    /// Blocks until an append is acknowledged under the topic's flush policy: synced in durable mode; in
    /// periodic mode a written record already survives the process being killed, which is that mode's
    /// promise, and only a flush the append made due (a roll) is run here.
    pub fn wait_acknowledged(&self, info: &AppendInfo) -> Result<(), ReplicaError> {
        if self.is_durable() {
            self.flush_to(Offset(info.last_offset + 1))?;
        } else if info.flush_due {
            self.run_due_flush()?;
        }
        Ok(())
    }

    /// Syncs the log up to `end` (shared with concurrent callers: group commit).
    pub fn flush_to(&self, end: Offset) -> Result<(), LogError> {
        self.log.flush_to(end.0)?;
        self.advance_high_watermark();
        Ok(())
    }

    /// Runs the flush an append made due (a roll, or the periodic policy).
    pub fn run_due_flush(&self) -> Result<(), LogError> {
        self.log.run_due_flush()?;
        self.advance_high_watermark();
        Ok(())
    }

    /// The periodic flush (`flush.ms`), if due; returns whether it ran.
    pub fn flush_if_due(&self) -> Result<bool, LogError> {
        let flushed = self.log.flush_if_due()?;
        if flushed {
            self.advance_high_watermark();
        }
        Ok(flushed)
    }

    /// Whole batches from `offset` for a consumer, never past the high watermark; also returns that high
    /// watermark, so the answer reports the bound it was read with.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: u64,
        min_one: bool,
    ) -> Result<(ReadResult, Offset), LogError> {
        let high_watermark = self.high_watermark();
        let read = self
            .log
            .read(offset, max_bytes, high_watermark.0, min_one)?;
        Ok((read, high_watermark))
    }

    /// The first record at or after `timestamp` (ListOffsets by time); the caller hides what is at or above
    /// the high watermark.
    pub fn offset_for_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<ferrite_log::TimestampAndOffset>, LogError> {
        self.log.offset_for_timestamp(timestamp)
    }

    /// The record with the largest timestamp (ListOffsets -3).
    pub fn max_timestamp_offset(
        &self,
    ) -> Result<Option<ferrite_log::TimestampAndOffset>, LogError> {
        self.log.max_timestamp_offset()
    }

    /// OffsetForLeaderEpoch: the end offset of `epoch` (the start of the next one) in this log.
    pub fn end_offset_for_epoch(&self, epoch: LeaderEpoch) -> ferrite_log::EpochEndOffset {
        self.log.end_offset_for_epoch(epoch.0)
    }

    /// Bytes on disk.
    pub fn size_bytes(&self) -> u64 {
        self.log.size_bytes()
    }

    /// The log's config in force (the topic's effective config).
    pub fn config(&self) -> Arc<ferrite_log::LogConfig> {
        self.log.config()
    }

    /// ListOffsets v0: segment base offsets and the log end before `timestamp`, newest first.
    pub fn legacy_offsets_before(&self, timestamp: i64, max_offsets: i32) -> Vec<i64> {
        self.log.legacy_offsets_before(timestamp, max_offsets)
    }

    /// Asks to be woken when the high watermark moves (or the replica goes offline).
    pub fn register_waiter(&self, notify: &Arc<Notify>) {
        self.waiters.register(notify);
    }

    /// Blocks the thread until the high watermark reaches `end` or `timeout` passes; returns whether it did
    /// (for callers on blocking threads, such as the group coordinator's commits).
    pub fn wait_high_watermark_blocking(&self, end: Offset, timeout: std::time::Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.waiters.generation();
            if self.high_watermark() >= end {
                return true;
            }
            let now = Instant::now();
            if now >= deadline || self.leader_epoch().is_none() {
                return false;
            }
            self.waiters.wait_blocking(seen, deadline - now);
        }
    }

    /// Asks to be woken by the next leader append (a follower's long poll), or a change of role.
    pub fn register_append_waiter(&self, notify: &Arc<Notify>) {
        self.appended.register(notify);
    }

    /// Wakes every waiter without a move, for a topic being deleted: they answer with what they have.
    pub fn wake_waiters(&self) {
        self.waiters.wake_all();
        self.appended.wake_all();
    }

    /// The one place a leader's high watermark moves: by the rule of [`next_high_watermark`] over the
    /// in-sync replicas (with the members a pending ISR change adds), never below the log start. A follower
    /// whose position is unknown (it has not fetched in this leadership) holds it where it is. Wakes the
    /// waiters when it moved. A follower's high watermark is the leader's, set in `follower_side.rs`.
    pub(crate) fn advance_high_watermark(&self) {
        let isr_followers: Vec<ReplicaPosition> = {
            let role = self.lock_role();
            let Role::Leader(leader) = &*role else {
                return;
            };
            let leadership = self.lock_leadership();
            let pending = leadership.pending_isr.as_ref().map(|(isr, _)| isr);
            let mut members: Vec<NodeId> = leader
                .isr
                .iter()
                .chain(pending.into_iter().flatten())
                .copied()
                .filter(|n| *n != self.local)
                .collect();
            members.sort();
            members.dedup();
            members
                .into_iter()
                .map(|n| {
                    // A follower syncs what it appended before it fetches again, so in durable mode its fetch
                    // offset is also what it has synced.
                    let end = leadership.followers.log_end(n).unwrap_or(Offset(i64::MIN));
                    ReplicaPosition {
                        log_end: end,
                        synced: end,
                    }
                })
                .collect()
        };
        let leader = ReplicaPosition {
            log_end: self.log_end_offset(),
            synced: Offset(self.log.recovery_point()),
        };
        let current = self.high_watermark();
        let next = next_high_watermark(current, leader, &isr_followers, self.is_durable())
            .max(self.log_start_offset());
        let previous = self.high_watermark.fetch_max(next.0, Ordering::AcqRel);
        debug_assert!(
            self.log_start_offset().0 <= next.0 && next <= self.log_end_offset(),
            "{}-{}: log start {} <= high watermark {} <= log end {}",
            self.topic,
            self.index,
            self.log_start_offset(),
            next,
            self.log_end_offset()
        );
        if next.0 > previous {
            self.waiters.wake_all();
        }
    }

    /// Moves the log start (DeleteRecords, retention) and keeps the high watermark at or above it.
    pub fn advance_log_start_offset(&self, offset: Offset) -> Result<bool, LogError> {
        let moved = self.log.advance_log_start_offset(offset.0)?;
        self.advance_high_watermark();
        Ok(moved)
    }

    /// Flushes and closes the log and takes the replica offline.
    pub fn close(&self) -> Result<(), LogError> {
        let closed = self.log.close();
        let _ = self.set_role(Role::Offline);
        closed
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::role::{FollowerState, LeaderState};
    use crate::test_support::batch;
    use ferrite_log::{LogConfig, LogOptions};

    fn partition(dir: &std::path::Path, config: LogConfig) -> Partition {
        let log = PartitionLog::open(dir, config, LogOptions::default()).unwrap();
        Partition::new(
            "t",
            0,
            NodeId(1),
            log,
            Role::sole_leader(NodeId(1), LeaderEpoch(0)),
        )
        .unwrap()
    }

    #[test]
    fn one_replica_high_watermark_is_the_log_end_or_the_synced_offset() {
        let tmp = tempfile::tempdir().unwrap();
        let p = partition(&tmp.path().join("a"), LogConfig::default());
        p.append_as_leader(batch("a")).unwrap();
        assert_eq!(p.high_watermark(), Offset(1));
        let (reads, high_watermark) = p.read(0, 1 << 20, true).unwrap();
        assert_eq!((reads.next_offset, high_watermark), (1, Offset(1)));

        let durable = LogConfig {
            flush: FlushPolicy::Durable,
            ..LogConfig::default()
        };
        let d = partition(&tmp.path().join("b"), durable);
        let info = d.append_as_leader(batch("b")).unwrap();
        assert_eq!(d.high_watermark(), Offset(0), "not synced yet");
        assert!(d.read(0, 1 << 20, true).unwrap().0.slices.is_empty());
        let woken = Arc::new(Notify::new());
        d.register_waiter(&woken);
        d.wait_acknowledged(&info).unwrap();
        assert_eq!(d.high_watermark(), Offset(1));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let woke = runtime.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(1), woken.notified()).await
        });
        assert!(woke.is_ok(), "the move woke the waiter");
    }

    #[test]
    fn leadership_and_epochs_are_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let p = partition(tmp.path(), LogConfig::default());
        p.set_role(Role::Leader(LeaderState {
            epoch: LeaderEpoch(3),
            replicas: vec![NodeId(1)],
            isr: vec![NodeId(1)],
            partition_epoch: 1,
        }))
        .unwrap();
        assert_eq!(p.check_leader(None).unwrap(), LeaderEpoch(3));
        assert!(matches!(
            p.check_leader(Some(LeaderEpoch(2))),
            Err(ReplicaError::FencedLeaderEpoch { .. })
        ));
        assert!(matches!(
            p.check_leader(Some(LeaderEpoch(4))),
            Err(ReplicaError::UnknownLeaderEpoch { .. })
        ));
        assert!(matches!(
            p.set_role(Role::sole_leader(NodeId(1), LeaderEpoch(2))),
            Err(ReplicaError::StaleRole { .. })
        ));
        p.set_role(Role::Follower(FollowerState {
            epoch: LeaderEpoch(4),
            leader: Some(NodeId(2)),
        }))
        .unwrap();
        assert!(matches!(
            p.append_as_leader(batch("x")),
            Err(ReplicaError::NotLeader {
                leader: Some(NodeId(2)),
                ..
            })
        ));
        let info = p.log().latest_epoch();
        assert_eq!(info, Some(3), "the leader's epoch was started in the log");
    }
}

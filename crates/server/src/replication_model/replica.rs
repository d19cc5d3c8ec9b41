//! One broker of the model, holding one replica of the partition: the real `Partition` over a real log in
//! its own directory, the fetchers that feed it as a follower, and what the broker's handlers do with a
//! follower's Fetch or OffsetForLeaderEpoch when it leads.
//!
//! A crash drops the process (the `Partition`, its fetchers, every round out) but keeps the directory: the
//! page cache survives a kill -9, so the log keeps what was written. The broker's metadata is a log on disk
//! too, so the newest partition record it applied survives, and a restart opens the replica in the role that
//! record gives it, however stale, before it registers again.

pub(crate) use crate::node::publish::role_of;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ferrite_log::{LogConfig, LogError, LogOptions, PartitionLog};
use ferrite_metadata::PartitionRecord;
use ferrite_replication::{
    FollowerState, LeaderEpoch, NodeId, Offset, Partition, ReplicaError, Role,
};

use super::controller::TOPIC;
use super::fetcher::{Fetchers, FETCH_MAX_BYTES};
use super::network::FetchAnswer;
use super::stats::Stats;
use crate::node::isr_change::AlterPartitionRequest;

/// How long the leader's AlterPartition may go unanswered before its ISR check counts it as failed.
pub const ALTER_TIMEOUT: Duration = Duration::from_secs(2);

/// The log config of every replica: small segments, so reads and truncations cross segment files.
pub fn log_config() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        segment_index_bytes: 4096,
        ..LogConfig::default()
    }
}

/// A live broker process.
pub struct Running {
    pub partition: Partition,
    pub fetchers: Fetchers,
    /// Whether the controller acknowledged this incarnation's registration.
    pub registered: bool,
    /// Whether the broker answers Fetch, OffsetForLeaderEpoch and Produce: a restarted broker starts serving
    /// only once its registration is committed and applied (`Node::open` registers before the listener
    /// serves), so it never leads on the stale metadata it restarted with. Its fetchers run before that.
    pub serving: bool,
    /// The AlterPartition out, by id, and when it was sent (the ISR check waits for it, as
    /// `Node::check_isr` waits on the controller).
    pub alter_out: Option<(u64, Instant)>,
    next_alter: u64,
}

pub struct ModelNode {
    pub id: NodeId,
    dir: PathBuf,
    /// Bumped by every crash: answers to an older incarnation are discarded.
    pub incarnation: u64,
    /// The newest metadata offset applied and the partition record it carried (on disk: survives crashes).
    pub metadata: (u64, PartitionRecord),
    pub running: Option<Running>,
}

impl ModelNode {
    /// A broker started for the first time with the initial metadata.
    pub fn start(id: NodeId, dir: PathBuf, metadata: (u64, PartitionRecord)) -> ModelNode {
        let mut node = ModelNode {
            id,
            dir,
            incarnation: 0,
            metadata,
            running: None,
        };
        node.open(true);
        node
    }

    /// Opens the replica from the log directory in the role the stored metadata gives it.
    fn open(&mut self, registered: bool) {
        let log = PartitionLog::open(&self.dir, log_config(), LogOptions::default())
            .expect("a crashed replica's log reopens");
        let role = role_of(&self.metadata.1, self.id);
        let partition =
            Partition::new(TOPIC, 0, self.id, log, role).expect("an opened replica takes its role");
        let mut running = Running {
            partition,
            fetchers: Fetchers::default(),
            registered,
            serving: registered,
            alter_out: None,
            next_alter: 0,
        };
        apply_fetch_directive(&mut running, &self.metadata.1, self.id);
        self.running = Some(running);
    }

    pub fn crash(&mut self) {
        self.running = None;
        self.incarnation += 1;
    }

    /// Starts the process again; it registers at its first heartbeat.
    pub fn restart(&mut self) {
        assert!(self.running.is_none(), "node {} is running", self.id);
        self.open(false);
    }

    pub fn partition(&self) -> Option<&Partition> {
        self.running.as_ref().map(|r| &r.partition)
    }

    /// The replica, if the broker is up and serving clients and other brokers.
    pub fn serving(&self) -> Option<&Partition> {
        self.running
            .as_ref()
            .filter(|r| r.serving)
            .map(|r| &r.partition)
    }

    /// A metadata record reached this broker. The metadata log is applied in order, so a record older than
    /// the one applied never takes effect; a newer one sets the role (which refuses an older leader epoch)
    /// and moves the fetchers, as `Node::apply_delta` does.
    pub fn apply_metadata(&mut self, offset: u64, record: PartitionRecord, stats: &mut Stats) {
        if offset <= self.metadata.0 {
            return;
        }
        self.metadata = (offset, record);
        let Some(running) = self.running.as_mut() else {
            return;
        };
        let record = &self.metadata.1;
        match running.partition.set_role(role_of(record, self.id)) {
            Ok(()) => {}
            Err(ReplicaError::StaleRole { .. }) => stats.stale_roles += 1,
            Err(e) => panic!("node {}: applying {record:?}: {e}", self.id),
        }
        apply_fetch_directive(running, record, self.id);
    }

    /// The fetch handler, for a follower's Fetch at `fetch_offset` in `current_epoch`.
    pub fn answer_fetch(
        &self,
        follower: NodeId,
        current_epoch: LeaderEpoch,
        fetch_offset: Offset,
        now: Instant,
    ) -> Option<FetchAnswer> {
        let p = self.serving()?;
        let log_start = p.log_start_offset();
        if p.check_leader(Some(current_epoch)).is_err() {
            return Some(FetchAnswer::Refused);
        }
        if let Err(e) = p.record_follower_fetch(follower, fetch_offset, now) {
            return Some(match e {
                ReplicaError::Log(LogError::OffsetOutOfRange { .. }) => {
                    FetchAnswer::OffsetOutOfRange { log_start }
                }
                _ => FetchAnswer::Refused,
            });
        }
        Some(
            match p.read_for_follower(fetch_offset.0, FETCH_MAX_BYTES, true) {
                Ok((read, high_watermark)) => {
                    let mut bytes = vec![];
                    for slice in &read.slices {
                        bytes.extend(slice.read_to_vec().expect("a slice of the log reads"));
                    }
                    FetchAnswer::Records {
                        bytes: bytes.into(),
                        high_watermark,
                        log_start,
                    }
                }
                Err(LogError::OffsetOutOfRange { .. }) => {
                    FetchAnswer::OffsetOutOfRange { log_start }
                }
                Err(_) => FetchAnswer::Refused,
            },
        )
    }

    /// The OffsetForLeaderEpoch handler: where `latest_epoch` ends here, if this node leads in
    /// `current_epoch`.
    pub fn answer_epoch_query(
        &self,
        current_epoch: LeaderEpoch,
        latest_epoch: LeaderEpoch,
    ) -> Option<Option<ferrite_log::EpochEndOffset>> {
        let p = self.serving()?;
        Some(
            p.check_leader(Some(current_epoch))
                .ok()
                .map(|_| p.end_offset_for_epoch(latest_epoch)),
        )
    }

    /// `Node::check_isr` for this partition: the AlterPartition to send, if the leader wants a change and
    /// has none out. With `alter_timeout`, one left unanswered for `ALTER_TIMEOUT` counts as failed first, as
    /// when `execute` fails in `Node::check_isr`; otherwise the check waits for the answer (see
    /// `alter_faults` in world.rs).
    pub fn check_isr(
        &mut self,
        now: Instant,
        max_lag: Duration,
        alter_timeout: bool,
    ) -> Option<(u64, AlterPartitionRequest)> {
        let id = self.id;
        let running = self.running.as_mut().filter(|r| r.serving)?;
        if let Some((_, sent)) = running.alter_out {
            if !alter_timeout || now.saturating_duration_since(sent) < ALTER_TIMEOUT {
                return None;
            }
            // `execute` timed out: the leader cannot tell whether the controller applied the change.
            running.alter_out = None;
            running
                .partition
                .isr_proposal_failed(ferrite_replication::IsrProposalFailure::Unknown);
        }
        let proposal = running.partition.isr_proposal(now, max_lag)?;
        let alter = running.next_alter;
        running.next_alter += 1;
        running.alter_out = Some((alter, now));
        let request = AlterPartitionRequest {
            topic_id: super::controller::TOPIC_ID,
            partition: 0,
            leader: id,
            leader_epoch: proposal.leader_epoch,
            partition_epoch: proposal.partition_epoch,
            isr: proposal.isr,
        };
        Some((alter, request))
    }

    /// The controller's answer to the AlterPartition out, as `Node::check_isr` takes it.
    pub fn on_alter_answer(
        &mut self,
        id: u64,
        outcome: Result<(), ferrite_replication::IsrProposalFailure>,
    ) {
        let Some(running) = self.running.as_mut() else {
            return;
        };
        if running.alter_out.is_some_and(|(out, _)| out == id) {
            running.alter_out = None;
            if let Err(failure) = outcome {
                running.partition.isr_proposal_failed(failure);
            }
        }
    }

    /// Whether this node leads in `epoch` as far as its replica knows.
    pub fn leads_in(&self, epoch: LeaderEpoch) -> bool {
        self.partition().is_some_and(|p| match p.role() {
            Role::Leader(l) => l.epoch == epoch,
            _ => false,
        })
    }
}

/// `fetch_directives` + `apply_fetch_directives`: a follower with a leader fetches from it; a leader or a
/// leaderless follower fetches nothing.
fn apply_fetch_directive(running: &mut Running, record: &PartitionRecord, local: NodeId) {
    match role_of(record, local) {
        Role::Follower(FollowerState {
            epoch,
            leader: Some(leader),
        }) => running.fetchers.follow(leader, epoch),
        _ => running.fetchers.unfollow(),
    }
}

//! A follower's replica fetchers, step by step as `replica_fetcher/mod.rs` and `fetcher.rs` run them, with
//! the simulated network in place of a connection:
//!
//! ```text
//!   metadata: follow(leader, epoch) ─▶ that leader's fetcher carries the partition, Truncating
//!   step ─▶ Truncating: OffsetForLeaderEpoch(latest epoch) ─▶ answer ─▶ truncation_offset ─▶ truncate_to
//!                                                                       ─▶ Fetching
//!        ─▶ Fetching:  Fetch(log end) ─▶ answer ─▶ append_as_follower, update_follower_high_watermark
//!                                      ─▶ OFFSET_OUT_OF_RANGE ─▶ Truncating again
//! ```
//! A fetcher runs one round at a time and checks, when the round starts, that the replica still follows in
//! the epoch of its entry; it applies the answer to the replica it started with, even if the partition moved
//! to another fetcher meanwhile (the real fetcher does the same: its round holds the entry it began with), and
//! the replica refuses the write unless it still follows in the round's epoch. A round unanswered for
//! `ANSWER_TIMEOUT` is abandoned (the connection is dropped), and a late answer to it is discarded.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferrite_log::EpochEndOffset;
use ferrite_replication::{LeaderEpoch, NodeId, Offset, Partition, ReplicaError};

use super::network::{FetchAnswer, Message};
use super::stats::Stats;
use crate::replica_fetcher::truncation::{truncation_offset, LocalLog};

/// `replica.fetch.backoff.ms`, in simulated time.
pub const FETCH_BACKOFF: Duration = Duration::from_millis(500);
/// How long a round may wait for its answer before the connection is given up.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
/// A small `replica.fetch.max.bytes`, so catching up takes several rounds.
pub const FETCH_MAX_BYTES: u64 = 600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FetchState {
    Truncating,
    Fetching,
}

/// The partition as a fetcher carries it (`PartitionFetch`).
#[derive(Debug, Clone)]
struct PartitionFetch {
    epoch: LeaderEpoch,
    state: FetchState,
    retry_at: Option<Instant>,
}

/// One fetcher task: its entry for the partition (if it still carries it) and the round it awaits.
#[derive(Debug, Default)]
struct Fetcher {
    entry: Option<PartitionFetch>,
    busy: Option<u64>,
    /// After a round timed out: the task backs off before it connects again.
    reconnect_at: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RoundKind {
    Truncate,
    Fetch,
}

/// A request out, and what the task holds across its await: the entry's epoch as the round began.
#[derive(Debug, Clone)]
struct Round {
    source: NodeId,
    epoch: LeaderEpoch,
    kind: RoundKind,
    sent_at: Instant,
}

/// Every fetcher of one node (one process incarnation).
#[derive(Debug, Default)]
pub struct Fetchers {
    by_leader: BTreeMap<NodeId, Fetcher>,
    rounds: BTreeMap<u64, Round>,
    next_round: u64,
}

/// What one answer did to the replica, for the caller's accounting.
enum Outcome {
    Appended,
    Diverged,
    Retry,
}

impl Fetchers {
    /// `ReplicaFetchers::follow`: the partition moves to `leader`'s fetcher, starting with truncation when
    /// the leadership is new to it.
    pub fn follow(&mut self, leader: NodeId, epoch: LeaderEpoch) {
        for (source, fetcher) in self.by_leader.iter_mut() {
            if *source != leader {
                fetcher.entry = None;
            }
        }
        let fetcher = self.by_leader.entry(leader).or_default();
        if fetcher.entry.as_ref().is_some_and(|p| p.epoch == epoch) {
            return;
        }
        fetcher.entry = Some(PartitionFetch {
            epoch,
            state: FetchState::Truncating,
            retry_at: None,
        });
    }

    /// `ReplicaFetchers::unfollow`: no fetcher carries the partition; fetchers left empty stop (a round they
    /// await still completes).
    pub fn unfollow(&mut self) {
        for fetcher in self.by_leader.values_mut() {
            fetcher.entry = None;
        }
        self.by_leader.retain(|_, f| f.entry.is_some());
    }

    /// The leaders this node has a fetcher for.
    pub fn sources(&self) -> Vec<NodeId> {
        self.by_leader.keys().copied().collect()
    }

    /// Abandons the rounds that waited too long (their connection is closed).
    pub fn expire(&mut self, now: Instant) {
        let late: Vec<u64> = self
            .rounds
            .iter()
            .filter(|(_, r)| now.saturating_duration_since(r.sent_at) >= ANSWER_TIMEOUT)
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            if let Some(round) = self.rounds.remove(&id) {
                if let Some(f) = self.by_leader.get_mut(&round.source) {
                    if f.busy == Some(id) {
                        f.busy = None;
                        f.reconnect_at = Some(now + FETCH_BACKOFF);
                    }
                }
            }
        }
    }

    /// One round of the fetcher for `source`, if it is free and its partition is due: the request to send
    /// (to `source`), or nothing.
    pub fn step(
        &mut self,
        source: NodeId,
        partition: &Partition,
        local: (NodeId, u64),
        now: Instant,
        stats: &mut Stats,
    ) -> Option<Message> {
        self.expire(now);
        let fetcher = self.by_leader.get_mut(&source)?;
        if fetcher.busy.is_some() || fetcher.reconnect_at.is_some_and(|at| at > now) {
            return None;
        }
        let entry = fetcher.entry.clone()?;
        if entry.retry_at.is_some_and(|at| at > now) {
            return None;
        }
        // `follower_replica`: only while the replica still follows in this entry's epoch.
        if partition.check_follower().ok() != Some(entry.epoch) {
            return None;
        }
        let round = self.next_round;
        let (node, incarnation) = local;
        let message = match entry.state {
            FetchState::Truncating => match partition.latest_epoch() {
                Some(latest) => Message::EpochQuery {
                    from: node,
                    incarnation,
                    round,
                    current_epoch: entry.epoch,
                    latest_epoch: latest,
                },
                None => {
                    // No epochs: an empty log has nothing to cut; otherwise keep what was committed.
                    if partition.log_end_offset() != partition.log_start_offset() {
                        cut_tail(partition, entry.epoch, partition.high_watermark(), stats);
                    }
                    self.update(source, entry.epoch, |p| p.state = FetchState::Fetching);
                    return None;
                }
            },
            FetchState::Fetching => Message::Fetch {
                from: node,
                incarnation,
                round,
                current_epoch: entry.epoch,
                fetch_offset: partition.log_end_offset(),
            },
        };
        let kind = match entry.state {
            FetchState::Truncating => RoundKind::Truncate,
            FetchState::Fetching => RoundKind::Fetch,
        };
        self.next_round += 1;
        self.rounds.insert(
            round,
            Round {
                source,
                epoch: entry.epoch,
                kind,
                sent_at: now,
            },
        );
        if let Some(f) = self.by_leader.get_mut(&source) {
            f.busy = Some(round);
        }
        Some(message)
    }

    /// `FetcherShared::update`: changes the entry of `source`'s fetcher only if it is still at `epoch`.
    fn update(&mut self, source: NodeId, epoch: LeaderEpoch, f: impl FnOnce(&mut PartitionFetch)) {
        if let Some(entry) = self
            .by_leader
            .get_mut(&source)
            .and_then(|fetcher| fetcher.entry.as_mut())
            .filter(|e| e.epoch == epoch)
        {
            f(entry);
        }
    }

    /// Ends round `id` (if it is still awaited): the round it was, and its fetcher freed.
    fn finish(&mut self, id: u64, kind: RoundKind) -> Option<Round> {
        let round = self.rounds.get(&id).filter(|r| r.kind == kind)?.clone();
        self.rounds.remove(&id);
        if let Some(f) = self.by_leader.get_mut(&round.source) {
            if f.busy == Some(id) {
                f.busy = None;
            }
        }
        Some(round)
    }

    /// A Fetch answer, as `fetch` and `apply_answer` handle it.
    pub fn on_fetch_answer(
        &mut self,
        id: u64,
        answer: FetchAnswer,
        partition: &Partition,
        now: Instant,
        stats: &mut Stats,
    ) {
        let Some(round) = self.finish(id, RoundKind::Fetch) else {
            return;
        };
        let outcome = match answer {
            FetchAnswer::OffsetOutOfRange { log_start } => {
                if partition.log_end_offset() < log_start {
                    match partition.truncate_fully_and_start_at(round.epoch, log_start) {
                        Ok(()) => Outcome::Appended,
                        Err(_) => Outcome::Retry,
                    }
                } else {
                    Outcome::Diverged
                }
            }
            FetchAnswer::Refused => Outcome::Retry,
            FetchAnswer::Records {
                bytes,
                high_watermark,
                log_start,
            } => self.apply_records(&round, bytes, high_watermark, log_start, partition, stats),
        };
        match outcome {
            Outcome::Appended => {}
            Outcome::Diverged => self.update(round.source, round.epoch, |p| {
                p.state = FetchState::Truncating;
            }),
            Outcome::Retry => self.update(round.source, round.epoch, |p| {
                p.retry_at = Some(now + FETCH_BACKOFF);
            }),
        }
    }

    /// The records of a Fetch answer (Ferrite's leaders send whole batches only, so `complete_batches`
    /// has nothing to cut here).
    fn apply_records(
        &self,
        round: &Round,
        bytes: bytes::Bytes,
        high_watermark: Offset,
        log_start: Offset,
        partition: &Partition,
        stats: &mut Stats,
    ) -> Outcome {
        if !bytes.is_empty() {
            match partition.append_as_follower(round.epoch, bytes) {
                Ok(info) => {
                    if info.flush_due {
                        let _ = partition.run_due_flush();
                    }
                }
                Err(ReplicaError::NotFollower { .. }) => {
                    // The leadership moved on while the fetch was out.
                    stats.stale_answers_refused += 1;
                    return Outcome::Retry;
                }
                Err(_) => return Outcome::Diverged,
            }
        }
        partition.update_follower_high_watermark(high_watermark);
        if log_start > partition.log_start_offset() {
            let _ = partition.follow_log_start(log_start);
        }
        Outcome::Appended
    }

    /// An OffsetForLeaderEpoch answer, as `truncate` handles it.
    pub fn on_epoch_answer(
        &mut self,
        id: u64,
        answer: Option<EpochEndOffset>,
        partition: &Partition,
        now: Instant,
        stats: &mut Stats,
    ) {
        let Some(round) = self.finish(id, RoundKind::Truncate) else {
            return;
        };
        let Some(leader_end) = answer else {
            self.update(round.source, round.epoch, |p| {
                p.retry_at = Some(now + FETCH_BACKOFF)
            });
            return;
        };
        let log = partition.log();
        let local = LocalLog {
            log_start: log.log_start_offset(),
            log_end: log.log_end_offset(),
            high_watermark: partition.high_watermark().0,
        };
        let cut = truncation_offset(leader_end, |e| log.end_offset_for_epoch(e), local);
        if cut_tail(partition, round.epoch, Offset(cut), stats) {
            self.update(round.source, round.epoch, |p| {
                p.state = FetchState::Fetching;
                p.retry_at = None;
            });
        } else {
            self.update(round.source, round.epoch, |p| {
                p.retry_at = Some(now + FETCH_BACKOFF)
            });
        }
    }
}

/// `cut_tail`: truncates to `offset` (at or past the log end too: see `PartitionLog::truncate_to`), while
/// the replica follows in `epoch`; returns whether that succeeded.
fn cut_tail(partition: &Partition, epoch: LeaderEpoch, offset: Offset, stats: &mut Stats) -> bool {
    let end = partition.log_end_offset();
    match partition.truncate_to(epoch, offset) {
        Ok(()) => {
            if offset < end {
                stats.truncations += 1;
                stats.truncated_records += u64::try_from(end.0 - offset.0).unwrap_or(0);
            }
            true
        }
        Err(ReplicaError::NotFollower { .. }) => {
            stats.stale_answers_refused += 1;
            false
        }
        Err(_) => false,
    }
}

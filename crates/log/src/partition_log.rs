//! The log of one partition: an ordered set of segments with a single writer and lock-free readers.
//!
//! ```text
//!            readers (fetch, ListOffsets)              writer (append, roll, truncate, retention)
//!                     |                                          |
//!     view: RwLock<Arc<SegmentView>>  <-- swapped on roll/delete  writer: Mutex<WriterState>
//!                     |                                          |
//!     [seg 0] [seg 4096] ... [active]  <-- active.size published after each write (Release)
//! ```
//! Readers clone the `Arc` of the current view (a pointer copy under a read lock held for nanoseconds) and then
//! work without locks; the writer publishes new bytes with atomics and new segment sets by swapping the view.
//! Offsets obey `log_start_offset <= recovery point <= log_end_offset`.

use crate::batch::{
    self, check_frame, set_base_offset, set_partition_leader_epoch, BatchHeader, ValidationRules,
    BATCH_HEADER_LEN,
};
use crate::checkpoint;
use crate::clock::{Clock, SystemClock};
use crate::config::{FlushPolicy, LogConfig, TimestampType};
use crate::epoch_cache::{EpochEndOffset, LeaderEpochCache};
use crate::error::{LogError, Result, ValidationError};
use crate::file_names;
use crate::file_slice::FileSlice;
use crate::group_commit::{GroupCommit, SyncOutcome};
use crate::segment::{BatchLocation, Segment, SegmentLimits};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

/// Who is appending: a producer (offsets assigned here) or a replica fetcher (offsets already assigned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOrigin {
    /// Validate fully and assign offsets; stamp `leader_epoch` into each batch if it is not negative.
    Client { leader_epoch: i32 },
    /// Keep offsets and epochs as they are (they came from the leader); check framing, CRC and ordering.
    Replica,
}

/// What an append returns to the produce path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub first_offset: i64,
    pub last_offset: i64,
    /// The broker time written into the batches for LogAppendTime topics, else -1.
    pub log_append_time: i64,
    pub log_start_offset: i64,
    pub record_count: u64,
    /// The batch was a retry of one already in the log (idempotent producer): nothing was written and the
    /// offsets are the original ones.
    pub duplicate: bool,
    /// The append rolled a segment, or `flush.messages` / `flush.ms` (periodic flush policy) is reached: the
    /// caller should run [`PartitionLog::run_due_flush`] (off any latency-critical thread). Reported once until
    /// that flush is done.
    pub flush_due: bool,
}

/// Whole batches for a fetch, as file slices ready for `sendfile`.
#[derive(Debug, Clone, Default)]
pub struct ReadResult {
    pub slices: Vec<FileSlice>,
    /// Offset after the last returned batch (the fetch offset when nothing was returned).
    pub next_offset: i64,
    pub bytes: u64,
}

/// An offset found by timestamp (ListOffsets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampAndOffset {
    pub timestamp: i64,
    pub offset: i64,
    /// Leader epoch of the batch holding the offset, -1 if none.
    pub leader_epoch: i32,
}

/// Options fixed for the lifetime of an open log.
#[derive(Debug, Clone)]
pub struct LogOptions {
    pub clock: Arc<dyn Clock>,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            clock: Arc::new(SystemClock),
        }
    }
}

/// The set of segments readers see, keyed by base offset; the last one is the active segment.
#[derive(Default)]
pub(crate) struct SegmentView {
    pub(crate) segments: BTreeMap<i64, Arc<Segment>>,
}

impl SegmentView {
    pub(crate) fn active(&self) -> Option<&Arc<Segment>> {
        self.segments.values().next_back()
    }

    /// The segment that would hold `offset`, then every later one.
    pub(crate) fn starting_at(&self, offset: i64) -> impl Iterator<Item = &Arc<Segment>> {
        let start = self
            .segments
            .range(..=offset)
            .next_back()
            .map_or(i64::MIN, |(k, _)| *k);
        self.segments.range(start..).map(|(_, s)| s)
    }
}

/// A segment file renamed to `.deleted`, to be unlinked once `file.delete.delay.ms` has passed.
#[derive(Debug)]
pub(crate) struct PendingDelete {
    pub(crate) paths: Vec<PathBuf>,
    pub(crate) due_ms: i64,
}

/// State only the writer touches.
#[derive(Debug, Default)]
pub(crate) struct WriterState {
    /// Whether the recovery-point checkpoint has been rewritten as "not cleanly closed" since open.
    pub(crate) marked_dirty: bool,
    pub(crate) closed: bool,
    pub(crate) last_flush_ms: i64,
    /// An append reported `flush_due` and no flush has completed since.
    pub(crate) flush_requested: bool,
    pub(crate) pending_deletes: Vec<PendingDelete>,
    /// Recovery point in the checkpoint file as last written by `checkpoint_recovery_point`.
    pub(crate) checkpointed_recovery_point: Option<i64>,
    /// Idempotent producers' recent batches, checked and updated with every append.
    pub(crate) producers: crate::producer_state::ProducerStates,
}

pub struct PartitionLog {
    pub(crate) dir: PathBuf,
    pub(crate) config: RwLock<Arc<LogConfig>>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) view: RwLock<Arc<SegmentView>>,
    pub(crate) writer: Mutex<WriterState>,
    pub(crate) log_start_offset: AtomicI64,
    pub(crate) log_end_offset: AtomicI64,
    pub(crate) epochs: Mutex<LeaderEpochCache>,
    pub(crate) sync: GroupCommit,
    /// A roll created files without syncing the directory, and captured the producer state at its offset
    /// without writing it; the next flush writes that snapshot and syncs, before it reports anything durable.
    pub(crate) roll_unsynced: AtomicBool,
    pub(crate) snapshot_at_roll: Mutex<Option<Vec<Vec<i64>>>>,
    pub(crate) recovery: crate::RecoveryReport,
}

impl std::fmt::Debug for PartitionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionLog")
            .field("dir", &self.dir)
            .field("log_start_offset", &self.log_start_offset())
            .field("log_end_offset", &self.log_end_offset())
            .finish()
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PartitionLog {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset.load(Ordering::Acquire)
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset.load(Ordering::Acquire)
    }

    /// Offset below which all data is known to be on disk.
    pub fn recovery_point(&self) -> i64 {
        self.sync.durable_end()
    }

    pub fn config(&self) -> Arc<LogConfig> {
        Arc::clone(&self.config.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Applies a new configuration live. Segment and index sizes take effect from the next roll.
    pub fn update_config(&self, config: LogConfig) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
    }

    /// What happened when the log was opened.
    pub fn recovery_report(&self) -> &crate::RecoveryReport {
        &self.recovery
    }

    pub(crate) fn view(&self) -> Arc<SegmentView> {
        Arc::clone(&self.view.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub(crate) fn set_view(&self, view: SegmentView) {
        *self.view.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(view);
    }

    pub(crate) fn limits(config: &LogConfig) -> SegmentLimits {
        SegmentLimits {
            index_bytes: config.effective_index_bytes(),
            index_interval_bytes: config.index_interval_bytes,
        }
    }

    pub fn segment_count(&self) -> usize {
        self.view().segments.len()
    }

    /// Total bytes of all segment files.
    pub fn size_bytes(&self) -> u64 {
        self.view().segments.values().map(|s| s.size()).sum()
    }

    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.view().segments.keys().copied().collect()
    }

    /// Appends one or more batches with a single write, then applies the flush policy (in durable mode, returns
    /// only once the bytes are on disk). Invalid input writes nothing.
    pub fn append(&self, payload: impl Into<Bytes>, origin: AppendOrigin) -> Result<AppendInfo> {
        let info = self.append_unsynced(payload, origin)?;
        if self.config().flush == FlushPolicy::Durable {
            self.flush_to(info.last_offset + 1)?;
        } else if info.flush_due {
            self.run_due_flush()?;
        }
        Ok(info)
    }

    /// The append without waiting for the disk: for callers that wait with [`PartitionLog::flush_to`] (durable
    /// mode) or run [`PartitionLog::run_due_flush`] (when `flush_due`) on a thread of their choosing (the async server)
    /// instead of blocking in `append`. It writes to the page cache and never fsyncs, also when it rolls.
    ///
    /// The payload is never modified or copied: each batch is written as a patched copy of its 61-byte header
    /// (offset, epoch, LogAppendTime) followed by its body straight from `payload`, in one vectored write.
    /// Validation (CRCs, the record walk) runs before the writer lock is taken.
    pub fn append_unsynced(
        &self,
        payload: impl Into<Bytes>,
        origin: AppendOrigin,
    ) -> Result<AppendInfo> {
        let payload: Bytes = payload.into();
        let config = self.config();
        let now = self.clock.now_ms();
        let summary = match origin {
            AppendOrigin::Client { .. } => Some(batch::validate_payload(
                &payload,
                &ValidationRules::from_config(&config),
                now,
            )?),
            AppendOrigin::Replica => None,
        };
        let mut writer = self.writer_for_append()?;
        let leo = self.log_end_offset();
        let plan = match (origin, summary) {
            (AppendOrigin::Client { leader_epoch }, Some(summary)) => {
                if let Some(duplicate) =
                    self.check_idempotence(&writer, &payload, summary.batch_count)?
                {
                    return Ok(duplicate);
                }
                assign_offsets(
                    &payload,
                    leo,
                    leader_epoch,
                    &config,
                    now,
                    summary.batch_count,
                )
            }
            _ => plan_replica_append(&payload, leo)?,
        };
        let (active, rolled) =
            self.maybe_roll(&mut writer, &config, payload.len() as u64, &plan, now)?;
        if let Err(e) = active.append(&plan.parts(&payload), &plan.batches) {
            if matches!(e, LogError::TornWrite(_)) {
                self.sync.mark_failed();
            }
            return Err(e);
        }
        self.log_end_offset
            .store(plan.next_offset, Ordering::Release);
        self.update_epochs(&plan.batches)?;
        for b in &plan.batches {
            writer.producers.update(&b.header);
        }
        let flush_due = rolled || self.periodic_flush_due(&config, &writer, now);
        writer.flush_requested |= flush_due;
        Ok(AppendInfo {
            first_offset: plan.first_offset,
            last_offset: plan.next_offset - 1,
            log_append_time: if config.timestamp_type == TimestampType::LogAppendTime {
                now
            } else {
                -1
            },
            log_start_offset: self.log_start_offset(),
            record_count: plan.record_count,
            duplicate: false,
            flush_due,
        })
    }

    /// Whether the periodic flush policy asks for a flush now that was not asked for already.
    fn periodic_flush_due(&self, config: &LogConfig, writer: &WriterState, now: i64) -> bool {
        !writer.flush_requested && self.periodic_thresholds_reached(config, writer, now)
    }

    /// `flush.messages` or `flush.ms` reached. Unflushed messages are counted as offsets past the durable end,
    /// as Kafka counts them (log end minus recovery point).
    fn periodic_thresholds_reached(
        &self,
        config: &LogConfig,
        writer: &WriterState,
        now: i64,
    ) -> bool {
        let FlushPolicy::Periodic {
            messages,
            interval_ms,
        } = config.flush
        else {
            return false;
        };
        let unflushed = u64::try_from(self.log_end_offset() - self.sync.durable_end()).unwrap_or(0);
        unflushed > 0
            && (unflushed >= messages || now.saturating_sub(writer.last_flush_ms) >= interval_ms)
    }

    /// Runs the flush an append reported as `flush_due`: everything when the periodic policy asks for it, else
    /// (after a roll) only the sealed segments, leaving the active one alone: its fsync would hold the
    /// filesystem's block-mapping lock of the file that every append to it needs (appends waited for it,
    /// measured as latency spikes). That is Kafka's flush after a roll, up to the new segment's base.
    pub fn run_due_flush(&self) -> Result<()> {
        let config = self.config();
        let now = self.clock.now_ms();
        let everything = self.periodic_thresholds_reached(&config, &lock(&self.writer), now);
        if everything {
            return self.flush();
        }
        let active_base = self
            .view()
            .active()
            .map_or_else(|| self.log_end_offset(), |a| a.base_offset());
        let result = self.flush_to(active_base);
        lock(&self.writer).flush_requested = false;
        result
    }

    /// Sequence checks for an idempotent batch; `Some` with the original offsets when it is a retry.
    fn check_idempotence(
        &self,
        writer: &WriterState,
        payload: &[u8],
        batch_count: usize,
    ) -> Result<Option<AppendInfo>> {
        let Some((_, header)) = batch::batches(payload).find(|(_, h)| h.has_producer_id()) else {
            return Ok(None);
        };
        if batch_count > 1 {
            // As in Kafka: sequence numbers only make sense for one batch per partition per request.
            let reason =
                "an idempotent produce must carry exactly one batch per partition".to_string();
            return Err(ValidationError::InvalidRecord {
                position: 0,
                reason,
            }
            .into());
        }
        match writer.producers.check(&header)? {
            crate::producer_state::SequenceVerdict::Append => Ok(None),
            crate::producer_state::SequenceVerdict::Duplicate(original) => Ok(Some(AppendInfo {
                first_offset: original.first_offset,
                last_offset: original.last_offset,
                log_append_time: -1,
                log_start_offset: self.log_start_offset(),
                record_count: 0,
                duplicate: true,
                flush_due: false,
            })),
        }
    }

    /// Takes the writer lock for an append. Appends need not mark the log "not clean": a clean checkpoint
    /// names the active segment's size at close, and an append grows it (or rolls a new segment), which the
    /// next open notices (see [`PartitionLog::write_recovery_checkpoint`]). So the first append to each of
    /// thousands of partitions after a restart costs no checkpoint write and no fsync.
    pub(crate) fn writer_for_append(&self) -> Result<MutexGuard<'_, WriterState>> {
        let writer = lock(&self.writer);
        if writer.closed {
            return Err(LogError::Closed(self.dir.clone()));
        }
        if self.is_poisoned() {
            return Err(LogError::Poisoned(self.dir.clone()));
        }
        Ok(writer)
    }

    /// Takes the writer lock for any other change to the files (truncation, deletion, a forced roll),
    /// rewriting the recovery checkpoint as "not clean" on the first such change since open: truncation can
    /// bring the active segment back to its size at close with other bytes in it.
    pub(crate) fn writer_for_mutation(&self) -> Result<MutexGuard<'_, WriterState>> {
        let mut writer = self.writer_for_append()?;
        if !writer.marked_dirty {
            self.write_recovery_checkpoint(self.recovery_point(), false)?;
            writer.marked_dirty = true;
        }
        Ok(writer)
    }

    pub(crate) fn is_poisoned(&self) -> bool {
        self.sync.is_failed()
    }

    /// Writes the recovery point; a clean one (at close) also records the active segment's base offset and
    /// size, which the next open compares with the files to tell whether anything was appended after the
    /// close: `recovery_point 1 active_base active_bytes`, or `recovery_point 0`.
    pub(crate) fn write_recovery_checkpoint(&self, recovery_point: i64, clean: bool) -> Result<()> {
        let path = self.dir.join(file_names::RECOVERY_POINT_CHECKPOINT);
        let mut entry = vec![recovery_point, i64::from(clean)];
        if clean {
            let view = self.view();
            let (base, size) = view
                .active()
                .map_or((-1, 0), |a| (a.base_offset(), a.size()));
            entry.extend([base, i64::try_from(size).unwrap_or(i64::MAX)]);
        }
        checkpoint::write(&path, &[entry])
    }

    /// Rolls to a new segment when the append would not fit the active one; returns the segment to write to and
    /// whether the append rolled.
    fn maybe_roll(
        &self,
        writer: &mut WriterState,
        config: &LogConfig,
        bytes: u64,
        plan: &AppendPlan,
        now: i64,
    ) -> Result<(Arc<Segment>, bool)> {
        let view = self.view();
        let active = view
            .active()
            .cloned()
            .ok_or_else(|| LogError::Closed(self.dir.clone()))?;
        if active.size() == 0 {
            return Ok((active, false));
        }
        let reason = if active.size() + bytes > config.effective_segment_bytes() {
            Some("segment.bytes")
        } else if active.time_waited_for_roll(now, plan.max_timestamp) > config.segment_ms {
            Some("segment.ms")
        } else if active.index_full() {
            Some("index full")
        } else if plan.next_offset - 1 - active.base_offset() > i64::from(i32::MAX) {
            Some("relative offset overflow")
        } else {
            None
        };
        let Some(reason) = reason else {
            return Ok((active, false));
        };
        let started = std::time::Instant::now();
        let segment = self.roll_locked(writer, config, plan.first_offset, now)?;
        // Kafka logs every roll with its duration; a slow one (the filesystem's journal busy) explains a
        // latency spike on the partition.
        tracing::info!(
            dir = %self.dir.display(),
            reason,
            new_base = plan.first_offset,
            elapsed_us = started.elapsed().as_micros() as u64,
            "rolled segment"
        );
        Ok((segment, true))
    }

    /// Seals the active segment and starts a new one at `base_offset`. Nothing here waits for the disk but
    /// creating the new files: trimming and syncing the sealed segment's indexes, its data, the directory and
    /// the producer snapshot (captured here, written there) are the next flush's work (`flush_to`), done before
    /// it reports any offset they cover durable. The append that rolled reports `flush_due`, so the caller runs
    /// that flush off the produce path, as Kafka flushes a rolled segment from a background task.
    pub(crate) fn roll_locked(
        &self,
        writer: &mut WriterState,
        config: &LogConfig,
        base_offset: i64,
        now: i64,
    ) -> Result<Arc<Segment>> {
        let view = self.view();
        if let Some(old) = view.active() {
            if let Err(e) = old.seal(false) {
                self.sync.mark_failed();
                return Err(e);
            }
        }
        self.roll_unsynced.store(true, Ordering::Release);
        *lock(&self.snapshot_at_roll) = Some(self.producer_snapshot_at_roll(&mut writer.producers));
        writer.flush_requested = true;
        let segment = Arc::new(Segment::create(
            &self.dir,
            base_offset,
            Self::limits(config),
            now,
        )?);
        let mut segments = view.segments.clone();
        segments.insert(base_offset, Arc::clone(&segment));
        self.set_view(SegmentView { segments });
        Ok(segment)
    }

    fn update_epochs(&self, batches: &[BatchLocation]) -> Result<()> {
        let mut epochs = lock(&self.epochs);
        let mut changed = false;
        for b in batches {
            changed |= epochs.assign(b.header.partition_leader_epoch, b.header.base_offset);
        }
        if changed {
            self.write_epoch_checkpoint(&epochs)?;
        }
        Ok(())
    }

    pub(crate) fn write_epoch_checkpoint(&self, epochs: &LeaderEpochCache) -> Result<()> {
        let entries: Vec<Vec<i64>> = epochs
            .entries()
            .iter()
            .map(|e| vec![i64::from(e.epoch), e.start_offset])
            .collect();
        checkpoint::write(
            &self.dir.join(file_names::LEADER_EPOCH_CHECKPOINT),
            &entries,
        )
    }

    /// Blocks until every offset below `offset` is on disk, sharing the sync with concurrent callers.
    pub fn flush_to(&self, offset: i64) -> Result<()> {
        let outcome = self.sync.wait_for(offset, || {
            // Everything written before this point is covered by the syncs below: the active segment, and any
            // segment rolled since the last sync (its data was not synced at the roll).
            let end = self.log_end_offset();
            let durable = self.sync.durable_end();
            let view = self.view();
            let active_base = view.active().map_or(end, |a| a.base_offset());
            // A target at or below the active segment's base (the flush after a roll) needs the sealed
            // segments only; the active one is left to appends.
            let sealed_only = offset <= active_base;
            let mut unsynced = view
                .segments
                .values()
                .filter(|s| s.next_offset() > durable)
                .filter(|s| !sealed_only || s.base_offset() < active_base)
                .peekable();
            if unsynced.peek().is_none() && !sealed_only {
                if let Some(active) = view.active() {
                    active.sync_data()?;
                }
            }
            for segment in unsynced {
                segment.sync_data()?;
            }
            self.sync_roll()?;
            Ok(if sealed_only { active_base } else { end })
        });
        match outcome {
            Ok(SyncOutcome::Durable) => Ok(()),
            Ok(SyncOutcome::Failed) => Err(LogError::Poisoned(self.dir.clone())),
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), error = %e, "fsync failed; log is poisoned");
                Err(e)
            }
        }
    }

    /// What a roll left to the next flush: the producer snapshot at its offset (written durably), then the
    /// directory (new segment files).
    fn sync_roll(&self) -> Result<()> {
        if !self.roll_unsynced.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let snapshot = lock(&self.snapshot_at_roll).take();
        let synced = snapshot
            .map_or(Ok(()), |lines| self.write_producer_snapshot_lines(&lines))
            .and_then(|()| checkpoint::sync_dir(&self.dir));
        if synced.is_err() {
            self.roll_unsynced.store(true, Ordering::Release);
        }
        synced
    }

    /// Flushes everything appended so far. Appends go on meanwhile: the writer lock is not held during the
    /// sync.
    pub fn flush(&self) -> Result<()> {
        let now = self.clock.now_ms();
        let result = self.flush_to(self.log_end_offset());
        let mut writer = lock(&self.writer);
        writer.flush_requested = false;
        if result.is_ok() {
            writer.last_flush_ms = now;
        }
        result
    }

    /// The flush scheduler's check, called periodically: flushes unflushed data once `flush.ms` has passed (a
    /// partition that went quiet), or when an append reported `flush_due` and no flush followed (a caller that
    /// could not run it).
    pub fn flush_if_due(&self) -> Result<bool> {
        let FlushPolicy::Periodic { interval_ms, .. } = self.config().flush else {
            return Ok(false);
        };
        let now = self.clock.now_ms();
        let (last_flush_ms, requested) = {
            let writer = lock(&self.writer);
            (writer.last_flush_ms, writer.flush_requested)
        };
        let interval_passed = now.saturating_sub(last_flush_ms) >= interval_ms;
        if self.log_end_offset() <= self.sync.durable_end() || !(interval_passed || requested) {
            return Ok(false);
        }
        if interval_passed {
            self.flush()?;
        } else {
            self.run_due_flush()?;
        }
        Ok(true)
    }

    /// OffsetForLeaderEpoch: the largest epoch <= `epoch` and the offset where it ended.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> EpochEndOffset {
        lock(&self.epochs).end_offset_for(epoch, self.log_end_offset())
    }

    /// Records that this replica leads from `epoch` on, starting at the log end, when the epoch is newer than
    /// the latest one the log knows. Called when a partition gets its leader (creation, open, election), so
    /// the leader-epoch checkpoint (two fsyncs) is written there rather than inside the first append of the
    /// epoch, which is on a produce request's path. An append in a newer epoch still records it itself.
    pub fn begin_leader_epoch(&self, epoch: i32) -> Result<()> {
        let _writer = self.writer_for_append()?;
        let mut epochs = lock(&self.epochs);
        if epochs.assign(epoch, self.log_end_offset()) {
            self.write_epoch_checkpoint(&epochs)?;
        }
        Ok(())
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        lock(&self.epochs).latest_epoch()
    }

    pub fn epoch_entries(&self) -> Vec<crate::EpochEntry> {
        lock(&self.epochs).entries().to_vec()
    }
}

/// Offsets and index bookkeeping for the batches of one append.
pub(crate) struct AppendPlan {
    pub(crate) batches: Vec<BatchLocation>,
    /// For client appends, each batch's header with offsets (and LogAppendTime) assigned; the bodies are
    /// written from the payload unchanged. Empty for replica appends, which are written as received.
    pub(crate) headers: Vec<[u8; BATCH_HEADER_LEN]>,
    pub(crate) first_offset: i64,
    pub(crate) next_offset: i64,
    pub(crate) record_count: u64,
    pub(crate) max_timestamp: i64,
}

impl AppendPlan {
    /// The buffers that, concatenated, are the batches to write.
    fn parts<'a>(&'a self, payload: &'a [u8]) -> Vec<&'a [u8]> {
        if self.headers.is_empty() {
            return vec![payload];
        }
        let mut parts = Vec::with_capacity(self.batches.len() * 2);
        for (location, header) in self.batches.iter().zip(&self.headers) {
            let start = location.position as usize;
            parts.push(&header[..]);
            parts.push(&payload[start + BATCH_HEADER_LEN..start + location.header.total_size()]);
        }
        parts
    }
}

/// Assigns offsets (and epochs, and LogAppendTime) in copies of each batch header; never re-encodes records
/// and never modifies the payload.
fn assign_offsets(
    payload: &[u8],
    first_offset: i64,
    leader_epoch: i32,
    config: &LogConfig,
    now: i64,
    batch_count: usize,
) -> AppendPlan {
    let mut plan = AppendPlan {
        batches: Vec::with_capacity(batch_count),
        headers: Vec::with_capacity(batch_count),
        first_offset,
        next_offset: first_offset,
        record_count: 0,
        max_timestamp: batch::NO_TIMESTAMP,
    };
    for (position, original) in batch::batches(payload) {
        let mut header = [0u8; BATCH_HEADER_LEN];
        header.copy_from_slice(&payload[position..position + BATCH_HEADER_LEN]);
        set_base_offset(&mut header, plan.next_offset);
        if leader_epoch >= 0 {
            set_partition_leader_epoch(&mut header, leader_epoch);
        }
        if config.timestamp_type == TimestampType::LogAppendTime {
            let body = &payload[position + BATCH_HEADER_LEN..position + original.total_size()];
            batch::set_log_append_time_split(&mut header, body, now);
        }
        let Some(parsed) = BatchHeader::parse(&header) else {
            break;
        };
        plan.record_count += parsed.records_count.max(0) as u64;
        plan.max_timestamp = plan.max_timestamp.max(parsed.max_timestamp);
        plan.next_offset = parsed.next_offset();
        plan.batches.push(BatchLocation {
            position: position as u64,
            header: parsed,
        });
        plan.headers.push(header);
    }
    plan
}

/// Checks a replica's batches (offsets already assigned by the leader) and describes them.
fn plan_replica_append(payload: &[u8], log_end_offset: i64) -> Result<AppendPlan> {
    let mut plan = AppendPlan {
        batches: Vec::new(),
        headers: Vec::new(),
        first_offset: log_end_offset,
        next_offset: log_end_offset,
        record_count: 0,
        max_timestamp: batch::NO_TIMESTAMP,
    };
    let mut position = 0usize;
    while position < payload.len() {
        let header = check_frame(&payload[position..], usize::MAX).map_err(|e| {
            ValidationError::Corrupt {
                position,
                reason: e.reason(),
            }
        })?;
        if header.base_offset < plan.next_offset || header.last_offset_delta < 0 {
            return Err(LogError::InvalidArgument(format!(
                "replica batch at offset {} does not follow log end {}",
                header.base_offset, plan.next_offset
            )));
        }
        if plan.batches.is_empty() {
            plan.first_offset = header.base_offset;
        }
        plan.record_count += header.records_count.max(0) as u64;
        plan.max_timestamp = plan.max_timestamp.max(header.max_timestamp);
        plan.next_offset = header.next_offset();
        plan.batches.push(BatchLocation {
            position: position as u64,
            header,
        });
        position += header.total_size();
    }
    if plan.batches.is_empty() {
        return Err(ValidationError::InvalidRecord {
            position: 0,
            reason: "empty record set".into(),
        }
        .into());
    }
    Ok(plan)
}

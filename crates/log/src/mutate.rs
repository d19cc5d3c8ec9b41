//! Changes to the set of segments: truncation (replication), log start offset (DeleteRecords), retention,
//! delayed file deletion, forced roll, close and delete.
//!
//! Segments leave the view first (new readers stop finding them), then their files are renamed to `.deleted`
//! and unlinked after `file.delete.delay.ms`. A reader that already holds a slice keeps reading through its
//! open file handle either way.

use crate::checkpoint;
use crate::error::{IoContext, LogError, Result};
use crate::file_names::{self, DELETED_SUFFIX};
use crate::partition_log::{lock, PartitionLog, PendingDelete, SegmentView, WriterState};
use crate::retention::{segments_to_delete, DeletionReason, RetentionPolicy, SegmentStat};
use crate::segment::Segment;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What a retention pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    pub segments_deleted: usize,
    pub bytes_deleted: u64,
    pub log_start_offset: i64,
}

impl PartitionLog {
    /// Removes every offset >= `offset` (a batch spanning it goes whole). Used by followers to cut a divergent
    /// tail. Below the log start offset this becomes [`PartitionLog::truncate_fully_and_start_at`].
    ///
    /// At or past the log end no record goes, but an epoch that starts at the log end does (Kafka's
    /// `truncateTo` does the same): this replica began it as leader and appended nothing in it, and the
    /// records a new leader sends next may be of an older epoch, which the cache would not take. Left in
    /// place, it would claim those records, and OffsetForLeaderEpoch would answer that the older epoch ended
    /// where it began.
    pub fn truncate_to(&self, offset: i64) -> Result<()> {
        if offset < self.log_start_offset() {
            return self.truncate_fully_and_start_at(offset);
        }
        let mut writer = self.writer_for_mutation()?;
        if offset >= self.log_end_offset() {
            let mut epochs = lock(&self.epochs);
            if epochs.truncate_from_end(self.log_end_offset()) {
                self.write_epoch_checkpoint(&epochs)?;
            }
            return Ok(());
        }
        let view = self.view();
        let (mut kept, removed): (Vec<_>, Vec<_>) = view
            .segments
            .values()
            .cloned()
            .partition(|s| s.base_offset() < offset || s.base_offset() == view_first(&view));
        let Some(last) = kept.pop() else {
            drop(writer);
            return self.truncate_fully_and_start_at(offset);
        };
        let now = self.clock.now_ms();
        let was_active = removed.is_empty();
        // Later segments go first, durably: a power cut between the steps then leaves a shorter log, never
        // the cut segment followed by segments past a gap in the offsets.
        if !was_active {
            let mut view: std::collections::BTreeMap<i64, Arc<Segment>> = kept
                .iter()
                .map(|s| (s.base_offset(), Arc::clone(s)))
                .collect();
            view.insert(last.base_offset(), Arc::clone(&last));
            self.set_view(SegmentView { segments: view });
            self.retire(&mut writer, removed, now)?;
        }
        let bytes = last.truncate_to(offset)?;
        let target = if was_active {
            last
        } else {
            // A sealed segment becomes the active one again. Its index files must first shrink to the entries
            // that survived (reopening counts entries by file length), then it is reopened with writable,
            // preallocated indexes.
            last.seal(true)?;
            let base = last.base_offset();
            drop(last);
            let reopened = Segment::open(&self.dir, base, Self::limits(&self.config()), true, now)?;
            reopened.load_tail()?;
            Arc::new(reopened)
        };
        target.sync_data()?;
        let mut segments: std::collections::BTreeMap<i64, Arc<Segment>> =
            kept.into_iter().map(|s| (s.base_offset(), s)).collect();
        segments.insert(target.base_offset(), Arc::clone(&target));
        self.set_view(SegmentView { segments });
        let new_end = target.next_offset();
        let log_start = self.log_start_offset();
        if new_end < log_start {
            // The batch spanning `offset` also spanned the log start: nothing readable remains, and the log
            // end may not fall below the log start, so restart the log empty at the log start.
            drop(writer);
            return self.truncate_fully_and_start_at(log_start);
        }
        self.after_truncation(new_end)?;
        writer.producers = self.rebuild_producer_state()?;
        tracing::info!(dir = %self.dir.display(), offset, log_end_offset = new_end, bytes, "truncated log");
        Ok(())
    }

    /// Deletes every segment and starts an empty log at `offset` (a follower far behind, or a reset).
    pub fn truncate_fully_and_start_at(&self, offset: i64) -> Result<()> {
        let mut writer = self.writer_for_mutation()?;
        let now = self.clock.now_ms();
        let view = self.view();
        let removed: Vec<_> = view.segments.values().cloned().collect();
        // The old files must be out of the way before a new segment may take the same name.
        let mut segments = std::collections::BTreeMap::new();
        self.set_view(SegmentView::default());
        self.retire(&mut writer, removed, now)?;
        let segment = Arc::new(Segment::create(
            &self.dir,
            offset,
            Self::limits(&self.config()),
            now,
        )?);
        checkpoint::sync_dir(&self.dir)?;
        segments.insert(offset, segment);
        self.set_view(SegmentView { segments });
        self.log_start_offset.store(offset, Ordering::Release);
        self.write_log_start_checkpoint(offset)?;
        self.sync.reset(offset);
        self.log_end_offset.store(offset, Ordering::Release);
        {
            let mut epochs = lock(&self.epochs);
            epochs.truncate_from_end(i64::MIN);
            self.write_epoch_checkpoint(&epochs)?;
        }
        self.write_recovery_checkpoint(offset, false)?;
        writer.producers = crate::producer_state::ProducerStates::default();
        self.write_producer_snapshot(&mut writer.producers)?;
        tracing::info!(dir = %self.dir.display(), offset, "truncated log fully");
        Ok(())
    }

    fn after_truncation(&self, new_end: i64) -> Result<()> {
        self.log_end_offset.store(new_end, Ordering::Release);
        self.sync.clamp(new_end);
        // Persist the lower recovery point, so a crash cannot make recovery trust bytes that were cut.
        self.write_recovery_checkpoint(self.recovery_point(), false)?;
        let mut epochs = lock(&self.epochs);
        if epochs.truncate_from_end(new_end) {
            self.write_epoch_checkpoint(&epochs)?;
        }
        Ok(())
    }

    /// Moves the log start offset forward (DeleteRecords). Records below it become unreadable at once; segments
    /// wholly below it are deleted. Returns whether it moved.
    pub fn advance_log_start_offset(&self, offset: i64) -> Result<bool> {
        let mut writer = self.writer_for_mutation()?;
        let (start, end) = (self.log_start_offset(), self.log_end_offset());
        if offset > end {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: start,
                log_end_offset: end,
            });
        }
        if offset <= start {
            return Ok(false);
        }
        self.set_log_start_locked(offset)?;
        self.delete_segments_locked(
            &mut writer,
            RetentionPolicy {
                retention_ms: -1,
                retention_bytes: -1,
            },
        )?;
        Ok(true)
    }

    fn set_log_start_locked(&self, offset: i64) -> Result<()> {
        self.log_start_offset.store(offset, Ordering::Release);
        self.write_log_start_checkpoint(offset)?;
        let mut epochs = lock(&self.epochs);
        if epochs.truncate_from_start(offset) {
            self.write_epoch_checkpoint(&epochs)?;
        }
        Ok(())
    }

    fn write_log_start_checkpoint(&self, offset: i64) -> Result<()> {
        checkpoint::write(
            &self.dir.join(file_names::LOG_START_OFFSET_CHECKPOINT),
            &[vec![offset]],
        )
    }

    /// One retention pass with the current `retention.ms` / `retention.bytes`.
    pub fn enforce_retention(&self) -> Result<RetentionOutcome> {
        let config = self.config();
        let mut writer = self.writer_for_mutation()?;
        let policy = RetentionPolicy {
            retention_ms: config.retention_ms,
            retention_bytes: config.retention_bytes,
        };
        self.delete_segments_locked(&mut writer, policy)
    }

    fn delete_segments_locked(
        &self,
        writer: &mut WriterState,
        policy: RetentionPolicy,
    ) -> Result<RetentionOutcome> {
        let view = self.view();
        let segments: Vec<Arc<Segment>> = view.segments.values().cloned().collect();
        let stats: Vec<SegmentStat> = segments
            .iter()
            .map(|s| SegmentStat {
                base_offset: s.base_offset(),
                next_offset: s.next_offset(),
                size_bytes: s.size(),
                max_timestamp: s.retention_timestamp(),
            })
            .collect();
        let now = self.clock.now_ms();
        let (count, reason) = segments_to_delete(&stats, policy, self.log_start_offset(), now);
        let mut outcome = RetentionOutcome {
            log_start_offset: self.log_start_offset(),
            ..Default::default()
        };
        if count == 0 {
            return Ok(outcome);
        }
        let (removed, kept) = segments.split_at(count);
        outcome.segments_deleted = count;
        outcome.bytes_deleted = removed.iter().map(|s| s.size()).sum();
        self.set_view(SegmentView {
            segments: kept
                .iter()
                .map(|s| (s.base_offset(), Arc::clone(s)))
                .collect(),
        });
        let new_start = kept
            .first()
            .map_or(self.log_start_offset(), |s| s.base_offset())
            .max(self.log_start_offset());
        if new_start != self.log_start_offset() {
            self.set_log_start_locked(new_start)?;
        }
        outcome.log_start_offset = new_start;
        self.retire(writer, removed.to_vec(), now)?;
        tracing::info!(
            dir = %self.dir.display(),
            segments = count,
            bytes = outcome.bytes_deleted,
            log_start_offset = new_start,
            reason = ?reason.unwrap_or(DeletionReason::Time),
            "deleted segments by retention"
        );
        Ok(outcome)
    }

    /// Renames the segments' files to `.deleted` and schedules their unlinking.
    fn retire(
        &self,
        writer: &mut WriterState,
        segments: Vec<Arc<Segment>>,
        now: i64,
    ) -> Result<()> {
        if segments.is_empty() {
            return Ok(());
        }
        let delay = self.config().file_delete_delay_ms;
        for segment in segments {
            let mut paths = Vec::with_capacity(3);
            let [index, time_index] = segment.index_paths();
            for path in [segment.log_path(), index, time_index] {
                let deleted = file_names::with_suffix(path, DELETED_SUFFIX);
                match std::fs::rename(path, &deleted) {
                    Ok(()) => paths.push(deleted),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e).at(path),
                }
            }
            writer.pending_deletes.push(PendingDelete {
                paths,
                due_ms: now.saturating_add(delay.max(0)),
            });
        }
        checkpoint::sync_dir(&self.dir)?;
        if delay <= 0 {
            self.delete_expired_files_locked(writer, now)?;
        }
        Ok(())
    }

    /// Unlinks `.deleted` files whose `file.delete.delay.ms` has passed; returns how many files went.
    pub fn delete_expired_files(&self) -> Result<usize> {
        let mut writer = lock(&self.writer);
        self.delete_expired_files_locked(&mut writer, self.clock.now_ms())
    }

    fn delete_expired_files_locked(&self, writer: &mut WriterState, now: i64) -> Result<usize> {
        let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut writer.pending_deletes)
            .into_iter()
            .partition(|p| p.due_ms <= now);
        writer.pending_deletes = waiting;
        let mut count = 0;
        for pending in due {
            for path in pending.paths {
                match std::fs::remove_file(&path) {
                    Ok(()) => count += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e).at(&path),
                }
            }
        }
        Ok(count)
    }

    /// Starts a new segment at the log end, if the active one holds anything.
    pub fn roll(&self) -> Result<()> {
        let mut writer = self.writer_for_mutation()?;
        let active_empty = self.view().active().is_none_or(|s| s.size() == 0);
        if active_empty {
            return Ok(());
        }
        let config = self.config();
        self.roll_locked(
            &mut writer,
            &config,
            self.log_end_offset(),
            self.clock.now_ms(),
        )?;
        Ok(())
    }

    /// Persists the current recovery point (Kafka's `log.flush.offset.checkpoint.interval.ms` task), so that
    /// recovery after a crash scans only what was appended since.
    /// Writes nothing when the recovery point has not moved since the last checkpoint.
    pub fn checkpoint_recovery_point(&self) -> Result<()> {
        // Not a change to the files: a clean checkpoint stays valid until the recovery point moves.
        let mut writer = self.writer_for_append()?;
        let recovery_point = self.recovery_point();
        if writer.checkpointed_recovery_point == Some(recovery_point) {
            return Ok(());
        }
        self.write_recovery_checkpoint(recovery_point, false)?;
        writer.checkpointed_recovery_point = Some(recovery_point);
        Ok(())
    }

    /// Flushes and seals everything and records a clean shutdown, so the next open need not rescan. The log
    /// refuses writes afterwards; reads of already-open slices still work.
    pub fn close(&self) -> Result<()> {
        let mut writer = lock(&self.writer);
        if writer.closed {
            return Ok(());
        }
        if self.is_poisoned() {
            writer.closed = true;
            return Err(LogError::Poisoned(self.dir.clone()));
        }
        let end = self.log_end_offset();
        // Every segment with unsynced data, then the active one sealed for a clean reopen.
        self.flush_to(end)?;
        if let Some(active) = self.view().active() {
            active.seal(true)?;
        }
        self.sync.mark_durable(end);
        self.write_producer_snapshot(&mut writer.producers)?;
        self.write_recovery_checkpoint(end, true)?;
        self.delete_expired_files_locked(&mut writer, i64::MAX)?;
        writer.closed = true;
        Ok(())
    }

    /// Closes the log and removes its directory (DeleteTopics).
    pub fn delete(self) -> Result<()> {
        {
            let mut writer = lock(&self.writer);
            writer.closed = true;
        }
        self.set_view(SegmentView::default());
        std::fs::remove_dir_all(&self.dir).at(&self.dir)?;
        if let Some(parent) = self.dir.parent() {
            checkpoint::sync_dir(parent)?;
        }
        Ok(())
    }
}

fn view_first(view: &SegmentView) -> i64 {
    view.segments.keys().next().copied().unwrap_or(i64::MIN)
}

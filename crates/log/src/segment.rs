//! One segment: a `.log` file of record batches plus its offset and time indexes.
//!
//! A segment is shared (`Arc`) between the partition's single writer and any number of readers. What readers
//! may see is bounded by `size`, published with `Release` only after the bytes are in the file, so a reader
//! never sees a partially written batch. Index entries are published after `size`, so they never point past it.

use crate::batch::{self, BatchHeader, FrameError, BATCH_HEADER_LEN, LOG_OVERHEAD, NO_TIMESTAMP};
use crate::error::{IoContext, LogError, Result};
use crate::file_names;
use crate::file_slice::FileSlice;
use crate::index::{OffsetIndex, TimeIndex};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

/// Sizes that shape a segment's files; taken from the log config when the segment is created or opened.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SegmentLimits {
    pub index_bytes: u64,
    pub index_interval_bytes: u64,
}

/// Where a batch starts and what it holds, as found by scanning the log file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchLocation {
    pub position: u64,
    pub header: BatchHeader,
}

/// What a read found in one segment.
#[derive(Debug)]
pub(crate) enum SegmentRead {
    /// No batch at or after the offset in this segment: the next segment may have it.
    NoBatch,
    /// The next batch starts at or after the caller's upper bound.
    ReachedMaxOffset,
    /// The next batch does not fit the byte budget (and the caller did not ask for at least one).
    OverBudget,
    /// Whole batches; `reached_end` when no further batch was left in the segment.
    Data {
        slice: FileSlice,
        next_offset: i64,
        reached_end: bool,
    },
}

/// Result of scanning a segment during recovery.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SegmentRecovery {
    pub valid_bytes: u64,
    pub truncated_bytes: u64,
    pub batches: u64,
}

pub(crate) struct Segment {
    base_offset: i64,
    log_path: PathBuf,
    log: Arc<File>,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    index_interval_bytes: u64,
    /// Bytes readers may see; every byte below it belongs to a complete batch.
    size: AtomicU64,
    /// Offset after the last batch (the base offset while empty).
    next_offset: AtomicI64,
    max_timestamp: AtomicI64,
    /// Base offset of the batch that carries `max_timestamp`.
    offset_of_max_timestamp: AtomicI64,
    /// Writer-only: log bytes appended since the last offset-index entry.
    bytes_since_index_entry: AtomicU64,
    /// Writer-only: max timestamp of the first batch, the reference point for `segment.ms` (as in Kafka).
    rolling_timestamp: AtomicI64,
    /// Wall clock time this process created or opened the segment; the `segment.ms` fallback.
    created_ms: i64,
    /// Sealed by a roll, which leaves trimming and syncing the indexes to the next [`Segment::sync_data`].
    indexes_unsynced: AtomicBool,
}

impl Segment {
    /// Creates a new, empty, writable segment (replacing stale files of the same name).
    pub(crate) fn create(
        dir: &Path,
        base_offset: i64,
        limits: SegmentLimits,
        now_ms: i64,
    ) -> Result<Self> {
        let log_path = file_names::log_file(dir, base_offset);
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)
            .at(&log_path)?;
        for stale in [
            file_names::index_file(dir, base_offset),
            file_names::time_index_file(dir, base_offset),
        ] {
            match std::fs::remove_file(&stale) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e).at(&stale),
                _ => {}
            }
        }
        Self::with_files(dir, base_offset, log_path, log, limits, true, now_ms)
    }

    /// Opens an existing segment. Indexes are trusted as they are; call [`Segment::recover`] to rebuild them.
    pub(crate) fn open(
        dir: &Path,
        base_offset: i64,
        limits: SegmentLimits,
        writable: bool,
        now_ms: i64,
    ) -> Result<Self> {
        let log_path = file_names::log_file(dir, base_offset);
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .at(&log_path)?;
        Self::with_files(dir, base_offset, log_path, log, limits, writable, now_ms)
    }

    fn with_files(
        dir: &Path,
        base_offset: i64,
        log_path: PathBuf,
        log: File,
        limits: SegmentLimits,
        writable: bool,
        now_ms: i64,
    ) -> Result<Self> {
        let size = log.metadata().at(&log_path)?.len();
        let index_path = file_names::index_file(dir, base_offset);
        let time_path = file_names::time_index_file(dir, base_offset);
        Ok(Segment {
            base_offset,
            log: Arc::new(log),
            offset_index: OffsetIndex::open(
                &index_path,
                base_offset,
                limits.index_bytes,
                writable,
            )?,
            time_index: TimeIndex::open(
                &time_path,
                base_offset,
                limits.index_bytes / 8 * 12,
                writable,
            )?,
            log_path,
            index_interval_bytes: limits.index_interval_bytes.max(1),
            size: AtomicU64::new(size),
            next_offset: AtomicI64::new(base_offset),
            max_timestamp: AtomicI64::new(NO_TIMESTAMP),
            offset_of_max_timestamp: AtomicI64::new(base_offset),
            bytes_since_index_entry: AtomicU64::new(0),
            rolling_timestamp: AtomicI64::new(NO_TIMESTAMP),
            created_ms: now_ms,
            indexes_unsynced: AtomicBool::new(false),
        })
    }

    pub(crate) fn base_offset(&self) -> i64 {
        self.base_offset
    }

    pub(crate) fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    pub(crate) fn next_offset(&self) -> i64 {
        self.next_offset.load(Ordering::Acquire)
    }

    pub(crate) fn max_timestamp(&self) -> i64 {
        self.max_timestamp.load(Ordering::Acquire)
    }

    pub(crate) fn offset_of_max_timestamp(&self) -> i64 {
        self.offset_of_max_timestamp.load(Ordering::Acquire)
    }

    pub(crate) fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub(crate) fn index_paths(&self) -> [&Path; 2] {
        [self.offset_index.path(), self.time_index.path()]
    }

    /// Whether one more index entry might not fit (Kafka rolls on a full index rather than losing entries).
    pub(crate) fn index_full(&self) -> bool {
        self.offset_index.is_full() || self.time_index.is_full()
    }

    /// Time this segment has been open for writes, in record time when records carry timestamps (Kafka's rule),
    /// else in wall clock time.
    pub(crate) fn time_waited_for_roll(&self, now_ms: i64, incoming_max_timestamp: i64) -> i64 {
        let reference = self.rolling_timestamp.load(Ordering::Relaxed);
        if reference != NO_TIMESTAMP && incoming_max_timestamp != NO_TIMESTAMP {
            incoming_max_timestamp.saturating_sub(reference)
        } else {
            now_ms.saturating_sub(self.created_ms)
        }
    }

    /// Appends already-assigned batches with a single (vectored) write: `parts` concatenated are the batches,
    /// and `batches` describes them (positions relative to the concatenation). The caller has checked that the
    /// result stays within u32 positions and relative offsets.
    pub(crate) fn append(&self, parts: &[&[u8]], batches: &[BatchLocation]) -> Result<()> {
        let start = self.size.load(Ordering::Relaxed);
        if let Err(e) = crate::vectored_write::write_all_at(&self.log, parts, start) {
            // A failed write (ENOSPC, EIO) may have put part of the batches in the file. Cut them off before
            // anything else is written, so no partial batch is served (readers stop at `size` anyway) or
            // survives a restart. Shrinking a file frees space, so this works on a full disk.
            return Err(match self.log.set_len(start) {
                Ok(()) => LogError::Io {
                    path: self.log_path.clone(),
                    source: e,
                },
                Err(cut) => {
                    tracing::error!(path = %self.log_path.display(), write = %e, truncate = %cut,
                        "cannot cut a failed write off the segment");
                    LogError::TornWrite(self.log_path.clone())
                }
            });
        }
        let new_size = start + parts.iter().map(|p| p.len() as u64).sum::<u64>();
        // Publish the bytes first, then everything that points into them.
        self.size.store(new_size, Ordering::Release);
        for b in batches {
            self.note_batch(start + b.position, &b.header)?;
        }
        Ok(())
    }

    /// Updates offsets, timestamps and index entries for a batch that is now in the file at `position`.
    fn note_batch(&self, position: u64, header: &BatchHeader) -> Result<()> {
        let size = header.total_size() as u64;
        if self.rolling_timestamp.load(Ordering::Relaxed) == NO_TIMESTAMP {
            self.rolling_timestamp
                .store(header.max_timestamp, Ordering::Relaxed);
        }
        if header.max_timestamp > self.max_timestamp.load(Ordering::Relaxed) {
            self.offset_of_max_timestamp
                .store(header.base_offset, Ordering::Release);
            self.max_timestamp
                .store(header.max_timestamp, Ordering::Release);
        }
        self.next_offset
            .store(header.next_offset(), Ordering::Release);
        let since = self.bytes_since_index_entry.load(Ordering::Relaxed);
        if since >= self.index_interval_bytes && position > 0 {
            let pos = u32::try_from(position).map_err(|_| {
                LogError::InvalidArgument(format!("segment position {position} exceeds u32"))
            })?;
            // The batch is in the log already; an index entry that cannot be written (its page could not be
            // allocated on a full disk) is only a missing shortcut, as indexes are sparse: lookups scan forward
            // from the entry before. The next batch tries again.
            let since = match self.append_index_entries(header.base_offset, pos) {
                Ok(()) => size,
                Err(e @ LogError::Io { .. }) => {
                    tracing::warn!(path = %self.log_path.display(), error = %e, "index entry skipped");
                    since + size
                }
                Err(e) => return Err(e),
            };
            self.bytes_since_index_entry.store(since, Ordering::Relaxed);
        } else {
            self.bytes_since_index_entry
                .store(since + size, Ordering::Relaxed);
        }
        Ok(())
    }

    fn append_index_entries(&self, base_offset: i64, position: u32) -> Result<()> {
        if !self.offset_index.is_full() {
            self.offset_index.append(base_offset, position)?;
        }
        if !self.time_index.is_full() {
            self.time_index
                .maybe_append(self.max_timestamp(), self.offset_of_max_timestamp())?;
        }
        Ok(())
    }

    /// Reads the header of the batch at `position`, if a whole header lies below `limit`.
    pub(crate) fn header_at(&self, position: u64, limit: u64) -> Result<Option<BatchHeader>> {
        if position + BATCH_HEADER_LEN as u64 > limit {
            return Ok(None);
        }
        let mut buf = [0u8; BATCH_HEADER_LEN];
        self.log
            .read_exact_at(&mut buf, position)
            .at(&self.log_path)?;
        let header = BatchHeader::parse(&buf);
        Ok(header.filter(|h| {
            h.total_size() >= BATCH_HEADER_LEN && position + h.total_size() as u64 <= limit
        }))
    }

    /// Walks batch headers from `position` (a batch boundary) to the first batch satisfying `wanted`.
    fn first_batch_from(
        &self,
        mut position: u64,
        mut wanted: impl FnMut(&BatchHeader) -> bool,
    ) -> Result<Option<BatchLocation>> {
        let limit = self.size();
        while let Some(header) = self.header_at(position, limit)? {
            if wanted(&header) {
                return Ok(Some(BatchLocation { position, header }));
            }
            position += header.total_size() as u64;
        }
        Ok(None)
    }

    /// Finds the first batch whose last offset is >= `offset`, scanning from the nearest index entry.
    pub(crate) fn find_batch(&self, offset: i64) -> Result<Option<BatchLocation>> {
        let start = u64::from(self.offset_index.lookup(offset).position).min(self.size());
        self.first_batch_from(start, |h| h.last_offset() >= offset)
    }

    /// Whole batches starting with the one that holds `offset`: at most `max_bytes` (but always the first batch
    /// when `min_one_batch`), and only batches that start below `max_offset`.
    pub(crate) fn read(
        &self,
        offset: i64,
        max_bytes: u64,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<SegmentRead> {
        let Some(first) = self.find_batch(offset)? else {
            return Ok(SegmentRead::NoBatch);
        };
        if first.header.base_offset >= max_offset {
            return Ok(SegmentRead::ReachedMaxOffset);
        }
        let limit = self.size();
        let start = first.position;
        let mut end = start + first.header.total_size() as u64;
        let mut next_offset = first.header.next_offset();
        if end - start > max_bytes && !min_one_batch {
            return Ok(SegmentRead::OverBudget);
        }
        // Skip over whole batches known (from the index) to fit, instead of reading every header.
        if let Some(entry) = self
            .offset_index
            .last_entry_within(start.saturating_add(max_bytes), max_offset)
        {
            if u64::from(entry.position) > end {
                if let Some(header) = self.header_at(u64::from(entry.position), limit)? {
                    let entry_end = u64::from(entry.position) + header.total_size() as u64;
                    if entry_end - start <= max_bytes && header.base_offset < max_offset {
                        end = entry_end;
                        next_offset = header.next_offset();
                    }
                }
            }
        }
        let mut reached_end = true;
        while let Some(header) = self.header_at(end, limit)? {
            let next_end = end + header.total_size() as u64;
            if header.base_offset >= max_offset || next_end - start > max_bytes {
                reached_end = false;
                break;
            }
            end = next_end;
            next_offset = header.next_offset();
        }
        let slice = FileSlice::new(Arc::clone(&self.log), start, end - start);
        Ok(SegmentRead::Data {
            slice,
            next_offset,
            reached_end,
        })
    }

    /// The batch holding the first record with timestamp >= `timestamp`, searching from the time index.
    pub(crate) fn find_batch_by_timestamp(
        &self,
        timestamp: i64,
        start_offset: i64,
    ) -> Result<Option<BatchLocation>> {
        if self.max_timestamp() < timestamp {
            return Ok(None);
        }
        let from = self.time_index.lookup(timestamp).offset.max(start_offset);
        let position = u64::from(self.offset_index.lookup(from).position);
        self.first_batch_from(position, |h| {
            h.max_timestamp >= timestamp && h.last_offset() >= start_offset
        })
    }

    /// The first batch with the largest max timestamp among the batches that start at or after `start_offset`.
    pub(crate) fn max_timestamp_batch_from(
        &self,
        start_offset: i64,
    ) -> Result<Option<BatchLocation>> {
        let Some(mut location) = self.find_batch(start_offset)? else {
            return Ok(None);
        };
        let limit = self.size();
        let mut best = (location.header.base_offset >= start_offset).then_some(location);
        loop {
            location.position += location.header.total_size() as u64;
            let Some(header) = self.header_at(location.position, limit)? else {
                return Ok(best);
            };
            location.header = header;
            if best.is_none_or(|b| header.max_timestamp > b.header.max_timestamp) {
                best = Some(location);
            }
        }
    }

    /// Copies the whole batch at `location` into memory (timestamp lookups inside one batch).
    pub(crate) fn read_batch(&self, location: &BatchLocation) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; location.header.total_size()];
        self.log
            .read_exact_at(&mut buf, location.position)
            .at(&self.log_path)?;
        Ok(buf)
    }

    /// Recomputes `next_offset` and timestamps from the indexes plus a scan of the tail after the last index
    /// entry: what a trusted (cleanly closed) segment needs at open, without reading the whole file.
    pub(crate) fn load_tail(&self) -> Result<()> {
        let limit = self.size();
        if let Some(last) = self.time_index.last() {
            self.max_timestamp.store(last.timestamp, Ordering::Release);
            self.offset_of_max_timestamp
                .store(last.offset, Ordering::Release);
        }
        let mut position = self
            .offset_index
            .last()
            .map_or(0, |e| u64::from(e.position));
        let mut first = true;
        while let Some(header) = self.header_at(position, limit)? {
            if first && position == 0 {
                self.rolling_timestamp
                    .store(header.max_timestamp, Ordering::Relaxed);
            }
            first = false;
            if header.max_timestamp > self.max_timestamp() {
                self.max_timestamp
                    .store(header.max_timestamp, Ordering::Release);
                self.offset_of_max_timestamp
                    .store(header.base_offset, Ordering::Release);
            }
            self.next_offset
                .store(header.next_offset(), Ordering::Release);
            position += header.total_size() as u64;
        }
        if position != limit {
            return Err(LogError::CorruptFile {
                path: self.log_path.clone(),
                reason: format!("batches end at byte {position} but the file is {limit} bytes"),
            });
        }
        if self.rolling_timestamp.load(Ordering::Relaxed) == NO_TIMESTAMP {
            if let Some(h) = self.header_at(0, limit)? {
                self.rolling_timestamp
                    .store(h.max_timestamp, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Checks that trusted indexes look sane against the log file.
    pub(crate) fn sanity_check(&self) -> std::result::Result<(), String> {
        self.offset_index.sanity_check_size()?;
        self.time_index.sanity_check_size()?;
        self.offset_index.sanity_check(self.size())?;
        self.time_index.sanity_check()
    }

    /// Scans every batch with CRC checks, rebuilds both indexes, and truncates the file at the first byte that
    /// is not part of a valid batch. `expected_base` is the offset the first batch must not precede.
    pub(crate) fn recover(&self, max_batch_bytes: u64) -> Result<SegmentRecovery> {
        let file_size = self.log.metadata().at(&self.log_path)?.len();
        self.offset_index.truncate_entries_all();
        self.time_index.truncate_to(self.base_offset);
        self.size.store(0, Ordering::Release);
        self.next_offset.store(self.base_offset, Ordering::Release);
        self.max_timestamp.store(NO_TIMESTAMP, Ordering::Release);
        self.rolling_timestamp
            .store(NO_TIMESTAMP, Ordering::Relaxed);
        self.bytes_since_index_entry.store(0, Ordering::Relaxed);

        let mut report = SegmentRecovery::default();
        let mut position = 0u64;
        let mut buf = Vec::new();
        let mut expected_min_offset = self.base_offset;
        loop {
            match self.read_valid_batch(position, file_size, max_batch_bytes, &mut buf)? {
                Ok(header) if header.base_offset >= expected_min_offset => {
                    let end = position + header.total_size() as u64;
                    self.size.store(end, Ordering::Release);
                    self.note_batch(position, &header)?;
                    expected_min_offset = header.next_offset();
                    report.batches += 1;
                    position = end;
                }
                Ok(_) | Err(_) => break,
            }
        }
        report.valid_bytes = position;
        report.truncated_bytes = file_size - position;
        if report.truncated_bytes > 0 {
            self.log.set_len(position).at(&self.log_path)?;
            self.log.sync_all().at(&self.log_path)?;
        }
        Ok(report)
    }

    /// Reads and checks the batch at `position`; the inner error says why it is not a valid batch.
    fn read_valid_batch(
        &self,
        position: u64,
        file_size: u64,
        max_batch_bytes: u64,
        buf: &mut Vec<u8>,
    ) -> Result<std::result::Result<BatchHeader, FrameError>> {
        if position + LOG_OVERHEAD as u64 > file_size {
            return Ok(Err(FrameError::Truncated));
        }
        let mut overhead = [0u8; LOG_OVERHEAD];
        self.log
            .read_exact_at(&mut overhead, position)
            .at(&self.log_path)?;
        let batch_length =
            i32::from_be_bytes([overhead[8], overhead[9], overhead[10], overhead[11]]);
        let total = LOG_OVERHEAD as u64 + u64::try_from(batch_length).unwrap_or(0);
        if total < BATCH_HEADER_LEN as u64 || total > max_batch_bytes {
            return Ok(Err(FrameError::BadLength));
        }
        if position + total > file_size {
            return Ok(Err(FrameError::Truncated));
        }
        buf.resize(total as usize, 0);
        self.log.read_exact_at(buf, position).at(&self.log_path)?;
        Ok(batch::check_frame(buf, max_batch_bytes as usize))
    }

    /// Removes every batch whose last offset is >= `offset` (a batch spanning it goes whole, as in Kafka).
    /// Returns the bytes removed.
    pub(crate) fn truncate_to(&self, offset: i64) -> Result<u64> {
        let Some(location) = self.find_batch(offset)? else {
            return Ok(0);
        };
        let old_size = self.size();
        let new_size = location.position;
        self.size.store(new_size, Ordering::Release);
        self.offset_index.truncate_to(location.header.base_offset);
        self.time_index.truncate_to(location.header.base_offset);
        self.log.set_len(new_size).at(&self.log_path)?;
        // Recompute the derived state from what is left (short: from the last index entry).
        self.next_offset.store(self.base_offset, Ordering::Release);
        self.max_timestamp.store(NO_TIMESTAMP, Ordering::Release);
        self.rolling_timestamp
            .store(NO_TIMESTAMP, Ordering::Relaxed);
        self.load_tail()?;
        let since_last = new_size
            - self
                .offset_index
                .last()
                .map_or(0, |e| u64::from(e.position));
        self.bytes_since_index_entry
            .store(since_last, Ordering::Relaxed);
        Ok(old_size - new_size)
    }

    /// fdatasync of the log file, plus the indexes of a segment sealed by a roll. The active segment's indexes
    /// are not synced: after a crash, the segments past the recovery point have their indexes rebuilt anyway,
    /// while a sealed segment's indexes are trusted once the recovery point passes it, which happens only
    /// after a flush that came through here.
    pub(crate) fn sync_data(&self) -> Result<()> {
        self.log.sync_data().at(&self.log_path)?;
        if self.indexes_unsynced.swap(false, Ordering::AcqRel) {
            if let Err(e) = self.trim_and_sync_indexes() {
                self.indexes_unsynced.store(true, Ordering::Release);
                return Err(e);
            }
        }
        Ok(())
    }

    fn trim_and_sync_indexes(&self) -> Result<()> {
        self.offset_index.trim()?;
        self.time_index.trim()?;
        self.offset_index.sync()?;
        self.time_index.sync()
    }

    /// Called when the segment stops being the active one (roll or close): a final time-index entry for the
    /// largest timestamp, then (with `sync`, at close) indexes trimmed to their entries and everything synced.
    /// A roll leaves the trim and the syncs to the next flush: shrinking a file waits for writeback of its
    /// last page and for the filesystem journal, which took up to 60 ms under a busy disk, on the produce path.
    /// Until then the indexes keep their preallocated size, which readers never look past.
    pub(crate) fn seal(&self, sync: bool) -> Result<()> {
        if self.max_timestamp() != NO_TIMESTAMP && !self.time_index.is_full() {
            match self
                .time_index
                .maybe_append(self.max_timestamp(), self.offset_of_max_timestamp())
            {
                // On a full disk the entry's page may not be allocatable; the entry is a shortcut only (the
                // next open scans the tail after the last index entry for the largest timestamp).
                Err(e @ LogError::Io { .. }) => {
                    tracing::warn!(path = %self.log_path.display(), error = %e, "final time-index entry skipped");
                }
                other => other?,
            }
        }
        if sync {
            self.log.sync_all().at(&self.log_path)?;
            self.trim_and_sync_indexes()
        } else {
            self.indexes_unsynced.store(true, Ordering::Release);
            Ok(())
        }
    }

    /// Flushes the memory-mapped indexes (for a clean close of the active segment).
    pub(crate) fn flush_indexes(&self) -> Result<()> {
        self.offset_index.flush()?;
        self.time_index.flush()
    }

    /// Largest timestamp for retention; a segment without timestamps falls back to its file's mtime, as Kafka.
    pub(crate) fn retention_timestamp(&self) -> i64 {
        let ts = self.max_timestamp();
        if ts != NO_TIMESTAMP {
            return ts;
        }
        self.log
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(NO_TIMESTAMP, |d| d.as_millis() as i64)
    }
}

#[cfg(test)]
mod tests;

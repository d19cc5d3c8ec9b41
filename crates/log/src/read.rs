//! Reads of a partition log: whole batches for fetches, and the lookups of ListOffsets (by timestamp, max
//! timestamp). Readers take no lock: they clone the segment view and read published bytes.

use crate::batch::{self, BatchHeader};
use crate::error::{LogError, Result};
use crate::partition_log::{PartitionLog, ReadResult, TimestampAndOffset};
use crate::segment::SegmentRead;

impl PartitionLog {
    /// Whole batches from `offset` on: at most `max_bytes` (always at least one batch when `min_one_batch`,
    /// KIP-74), only batches that start below `max_offset` (the caller's high watermark or last stable offset).
    pub fn read(
        &self,
        offset: i64,
        max_bytes: u64,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<ReadResult> {
        let (start, end) = (self.log_start_offset(), self.log_end_offset());
        if offset < start || offset > end {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: start,
                log_end_offset: end,
            });
        }
        let max_offset = max_offset.min(end);
        let mut result = ReadResult {
            slices: Vec::new(),
            next_offset: offset,
            bytes: 0,
        };
        if offset >= max_offset {
            return Ok(result);
        }
        let view = self.view();
        for segment in view.starting_at(offset) {
            let from = result.next_offset.max(segment.base_offset());
            let budget = max_bytes.saturating_sub(result.bytes);
            let min_one = min_one_batch && result.slices.is_empty();
            match segment.read(from, budget, max_offset, min_one)? {
                // The offset is past this segment's last batch (or in a compaction gap at its end).
                SegmentRead::NoBatch => continue,
                SegmentRead::ReachedMaxOffset | SegmentRead::OverBudget => break,
                SegmentRead::Data {
                    slice,
                    next_offset,
                    reached_end,
                } => {
                    result.bytes += slice.len();
                    result.next_offset = next_offset;
                    result.slices.push(slice);
                    if !reached_end || next_offset >= max_offset || result.bytes >= max_bytes {
                        break;
                    }
                }
            }
        }
        Ok(result)
    }

    /// ListOffsets by timestamp: the first offset whose record timestamp is >= `timestamp`, or `None` when every
    /// record is older.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<TimestampAndOffset>> {
        let start = self.log_start_offset();
        let view = self.view();
        // A batch is found by its max timestamp, but the records that reach it may all lie below the log start
        // (a batch the log start cuts through): the search then goes on after that batch.
        let mut from = start;
        for segment in view.segments.values() {
            if segment.next_offset() <= from || segment.max_timestamp() < timestamp {
                continue;
            }
            while let Some(location) = segment.find_batch_by_timestamp(timestamp, from)? {
                let bytes = segment.read_batch(&location)?;
                match first_record_at_or_after(&location.header, &bytes, timestamp, start) {
                    Some(found) => return Ok(Some(found)),
                    None => from = location.header.next_offset(),
                }
            }
        }
        Ok(None)
    }

    /// ListOffsets -3 (MAX_TIMESTAMP): the first record (in offset order) with the largest timestamp at or above
    /// the log start offset; `None` for an empty log.
    pub fn max_timestamp_offset(&self) -> Result<Option<TimestampAndOffset>> {
        let start = self.log_start_offset();
        let view = self.view();
        let mut best: Option<TimestampAndOffset> = None;
        // Strictly greater wins, and candidates come in offset order, so ties keep the first record.
        fn consider(best: &mut Option<TimestampAndOffset>, found: TimestampAndOffset) {
            if best.is_none_or(|b| found.timestamp > b.timestamp) {
                *best = Some(found);
            }
        }
        // A batch straddling the log start may owe its maximum to records that are already deleted.
        if let Some(segment) = view.starting_at(start).next() {
            if let Some(location) = segment.find_batch(start)? {
                if location.header.base_offset < start {
                    let bytes = segment.read_batch(&location)?;
                    if let Some(found) = max_record(&location.header, &bytes, start) {
                        consider(&mut best, found);
                    }
                }
            }
        }
        for segment in view
            .segments
            .values()
            .filter(|s| s.next_offset() > start && s.size() > 0)
        {
            if best.is_some_and(|b| segment.max_timestamp() <= b.timestamp) {
                continue;
            }
            // Batches that start at or after the log start; the segment's own maximum if it is one of them.
            let candidate = if segment.offset_of_max_timestamp() >= start {
                segment.find_batch(segment.offset_of_max_timestamp())?
            } else {
                segment.max_timestamp_batch_from(start)?
            };
            if let Some(location) = candidate {
                let bytes = segment.read_batch(&location)?;
                let max = location.header.max_timestamp;
                if let Some(found) = first_record_at_or_after(&location.header, &bytes, max, start)
                {
                    consider(&mut best, found);
                }
            }
        }
        Ok(best)
    }
}

/// The first record of the batch at or after `min_offset` with a timestamp at or after `timestamp`; `None` if
/// no record of the batch qualifies. Compressed batches are decompressed; a batch whose records cannot be read
/// is answered by its own max timestamp and first offset.
fn first_record_at_or_after(
    header: &BatchHeader,
    batch: &[u8],
    timestamp: i64,
    min_offset: i64,
) -> Option<TimestampAndOffset> {
    let batch_answer = TimestampAndOffset {
        timestamp: header.max_timestamp,
        offset: header.base_offset.max(min_offset),
        leader_epoch: header.partition_leader_epoch,
    };
    let Ok(records) = batch::stored_records_of(header, batch) else {
        return Some(batch_answer);
    };
    let mut found = None;
    let _ = batch::walk_records(header, &records, |meta| {
        let offset = header.base_offset + i64::from(meta.offset_delta);
        if found.is_none() && meta.timestamp >= timestamp && offset >= min_offset {
            found = Some(TimestampAndOffset {
                timestamp: meta.timestamp,
                offset,
                leader_epoch: header.partition_leader_epoch,
            });
        }
        Ok(())
    });
    found
}

/// The record with the largest timestamp among those at or after `min_offset` (first one on ties).
fn max_record(header: &BatchHeader, batch: &[u8], min_offset: i64) -> Option<TimestampAndOffset> {
    let fallback = TimestampAndOffset {
        timestamp: header.max_timestamp,
        offset: header.base_offset.max(min_offset),
        leader_epoch: header.partition_leader_epoch,
    };
    let Ok(records) = batch::stored_records_of(header, batch) else {
        return Some(fallback);
    };
    let mut best: Option<TimestampAndOffset> = None;
    let _ = batch::walk_records(header, &records, |meta| {
        let offset = header.base_offset + i64::from(meta.offset_delta);
        if offset >= min_offset && best.is_none_or(|b| meta.timestamp > b.timestamp) {
            best = Some(TimestampAndOffset {
                timestamp: meta.timestamp,
                offset,
                leader_epoch: header.partition_leader_epoch,
            });
        }
        Ok(())
    });
    best
}

//! ListOffsets v0's answer: Kafka's `UnifiedLog.legacyFetchOffsetsBefore`, which lists segment base offsets
//! rather than looking up one offset.
//!
//! ```text
//! candidates: (max(base offset, log start), file last modified) of every segment, oldest first,
//!             then (log end offset, now) when the active segment holds data
//! -1 (latest):             start at the last candidate
//! -2 / -4 (earliest):      start at the first
//! T:                       start at the newest candidate last modified at or before T (none: empty answer)
//! answer:                  the offsets from the start back to the first candidate, newest first,
//!                          at most max_num_offsets of them
//! ```

use crate::partition_log::PartitionLog;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const EARLIEST_LOCAL: i64 = -4;

/// One segment as the legacy lookup sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentStamp {
    pub base_offset: i64,
    pub last_modified_ms: i64,
    pub size: u64,
}

impl PartitionLog {
    /// ListOffsets v0: up to `max_num_offsets` segment base offsets (and the log end) at or before
    /// `timestamp` (-1 latest, -2 earliest), newest first. A segment file that cannot be looked at counts as
    /// last modified at 0, as Java's `File.lastModified` answers for a missing file.
    pub fn legacy_offsets_before(&self, timestamp: i64, max_num_offsets: i32) -> Vec<i64> {
        let view = self.view();
        let stamps: Vec<SegmentStamp> = view
            .segments
            .values()
            .map(|s| SegmentStamp {
                base_offset: s.base_offset(),
                last_modified_ms: std::fs::metadata(s.log_path())
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
                size: s.size(),
            })
            .collect();
        offsets_before(
            &stamps,
            self.log_start_offset(),
            self.log_end_offset(),
            self.clock.now_ms(),
            timestamp,
            max_num_offsets,
        )
    }
}

/// The lookup itself, over segments oldest first.
pub(crate) fn offsets_before(
    segments: &[SegmentStamp],
    log_start_offset: i64,
    log_end_offset: i64,
    now_ms: i64,
    timestamp: i64,
    max_num_offsets: i32,
) -> Vec<i64> {
    let mut candidates: Vec<(i64, i64)> = segments
        .iter()
        .map(|s| (s.base_offset.max(log_start_offset), s.last_modified_ms))
        .collect();
    if segments.last().is_some_and(|s| s.size > 0) {
        candidates.push((log_end_offset, now_ms));
    }
    let start = match timestamp {
        LATEST => candidates.len().checked_sub(1),
        EARLIEST | EARLIEST_LOCAL => (!candidates.is_empty()).then_some(0),
        t => candidates.iter().rposition(|&(_, modified)| modified <= t),
    };
    let Some(start) = start else {
        return vec![];
    };
    // Kafka fails a negative count with an exception; no offsets is the harmless reading of it.
    let count = usize::try_from(max_num_offsets).unwrap_or(0).min(start + 1);
    let mut offsets: Vec<i64> = candidates[..=start]
        .iter()
        .rev()
        .take(count)
        .map(|&(offset, _)| offset)
        .collect();
    // Newest first, as Kafka sorts them (log start clamping can make neighbours equal).
    offsets.sort_unstable_by(|a, b| b.cmp(a));
    offsets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(base_offset: i64, last_modified_ms: i64, size: u64) -> SegmentStamp {
        SegmentStamp {
            base_offset,
            last_modified_ms,
            size,
        }
    }

    /// Segments, log start, timestamp, max offsets, expected answer.
    type Case<'a> = (&'a [SegmentStamp], i64, i64, i32, &'a [i64]);

    #[test]
    fn table() {
        let three = [seg(0, 100, 50), seg(10, 200, 50), seg(20, 300, 50)];
        let empty_active = [seg(0, 100, 50), seg(10, 200, 0)];
        #[rustfmt::skip]
        let cases: &[Case] = &[
            (&three, 0, LATEST, 1, &[25]),
            (&three, 0, LATEST, 10, &[25, 20, 10, 0]),
            (&three, 0, EARLIEST, 1, &[0]),
            (&three, 0, EARLIEST, 10, &[0]),
            (&three, 0, EARLIEST_LOCAL, 3, &[0]),
            (&three, 0, 250, 10, &[10, 0]),
            (&three, 0, 200, 1, &[10]),
            (&three, 0, 99, 10, &[]),
            (&three, 0, 5000, 2, &[25, 20]),  // the log end counts as modified now (1000)
            (&three, 5, EARLIEST, 1, &[5]),   // base offsets below the log start are clamped
            (&three, 5, LATEST, 9, &[25, 20, 10, 5]),
            (&three, 0, LATEST, 0, &[]),
            (&three, 0, LATEST, -3, &[]),
            // An empty active segment adds no log-end entry: its base offset is the end.
            (&empty_active, 0, LATEST, 5, &[10, 0]),
            (&[seg(0, 100, 0)], 0, LATEST, 1, &[0]),
            (&[seg(0, 100, 0)], 0, EARLIEST, 1, &[0]),
            (&[], 0, LATEST, 1, &[]),
        ];
        for (i, &(segments, start, timestamp, max, expected)) in cases.iter().enumerate() {
            assert_eq!(
                offsets_before(segments, start, 25, 1000, timestamp, max),
                expected,
                "case {i}: timestamp {timestamp} max {max}"
            );
        }
    }
}

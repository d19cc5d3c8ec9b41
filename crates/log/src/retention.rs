//! Which segments retention deletes: a pure function of segment statistics, so the policy is testable without
//! files. Kafka's rules: only a prefix of the log goes (oldest first), never the active segment, and a segment
//! goes if (a) all its offsets are below the log start offset, (b) its newest record is older than
//! `retention.ms`, or (c) the partition is still larger than `retention.bytes` without it.

/// What retention needs to know about one segment, oldest first; the last one is the active segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentStat {
    pub base_offset: i64,
    /// Offset after the segment's last batch.
    pub next_offset: i64,
    pub size_bytes: u64,
    /// Largest record timestamp (or file mtime when there are none).
    pub max_timestamp: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub retention_ms: i64,
    pub retention_bytes: i64,
}

/// Why a segment is deleted; reported in the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeletionReason {
    BelowLogStart,
    Time,
    Size,
}

/// The number of leading segments to delete, with the reason for the last one counted.
pub fn segments_to_delete(
    segments: &[SegmentStat],
    policy: RetentionPolicy,
    log_start_offset: i64,
    now_ms: i64,
) -> (usize, Option<DeletionReason>) {
    let deletable = segments.len().saturating_sub(1); // never the active segment
    let mut total: u64 = segments.iter().map(|s| s.size_bytes).sum();
    let mut count = 0;
    let mut reason = None;
    for seg in &segments[..deletable] {
        let why = if seg.next_offset <= log_start_offset {
            Some(DeletionReason::BelowLogStart)
        } else if policy.retention_ms >= 0
            && now_ms.saturating_sub(seg.max_timestamp) > policy.retention_ms
        {
            Some(DeletionReason::Time)
        } else if policy.retention_bytes >= 0
            && total.saturating_sub(seg.size_bytes) >= policy.retention_bytes as u64
        {
            Some(DeletionReason::Size)
        } else {
            None
        };
        match why {
            Some(w) => {
                count += 1;
                total -= seg.size_bytes;
                reason = Some(w);
            }
            None => break,
        }
    }
    (count, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(base: i64, next: i64, size: u64, ts: i64) -> SegmentStat {
        SegmentStat {
            base_offset: base,
            next_offset: next,
            size_bytes: size,
            max_timestamp: ts,
        }
    }

    const UNLIMITED: RetentionPolicy = RetentionPolicy {
        retention_ms: -1,
        retention_bytes: -1,
    };

    #[test]
    fn table() {
        let log = [
            seg(0, 10, 100, 1000),
            seg(10, 20, 100, 2000),
            seg(20, 30, 100, 3000),
            seg(30, 35, 50, 9000),
        ];
        type Case = (
            &'static str,
            RetentionPolicy,
            i64,
            i64,
            (usize, Option<DeletionReason>),
        );
        let cases: &[Case] = &[
            ("nothing to do", UNLIMITED, 0, 10_000, (0, None)),
            (
                "time: two expired",
                RetentionPolicy {
                    retention_ms: 7_500,
                    ..UNLIMITED
                },
                0,
                10_000,
                (2, Some(DeletionReason::Time)),
            ),
            (
                "time: all expired but active kept",
                RetentionPolicy {
                    retention_ms: 0,
                    ..UNLIMITED
                },
                0,
                10_000,
                (3, Some(DeletionReason::Time)),
            ),
            // Kafka deletes a segment only if what remains is still >= retention.bytes: 350 -> 250, not 150.
            (
                "size: keep at least 200",
                RetentionPolicy {
                    retention_bytes: 200,
                    ..UNLIMITED
                },
                0,
                0,
                (1, Some(DeletionReason::Size)),
            ),
            (
                "size: keep at least 150",
                RetentionPolicy {
                    retention_bytes: 150,
                    ..UNLIMITED
                },
                0,
                0,
                (2, Some(DeletionReason::Size)),
            ),
            (
                "size: exactly fits",
                RetentionPolicy {
                    retention_bytes: 350,
                    ..UNLIMITED
                },
                0,
                0,
                (0, None),
            ),
            (
                "size: zero keeps active",
                RetentionPolicy {
                    retention_bytes: 0,
                    ..UNLIMITED
                },
                0,
                0,
                (3, Some(DeletionReason::Size)),
            ),
            (
                "log start inside second",
                UNLIMITED,
                15,
                0,
                (1, Some(DeletionReason::BelowLogStart)),
            ),
            (
                "log start at third",
                UNLIMITED,
                20,
                0,
                (2, Some(DeletionReason::BelowLogStart)),
            ),
            (
                "prefix only: young first segment stops time retention",
                RetentionPolicy {
                    retention_ms: 5_000,
                    ..UNLIMITED
                },
                0,
                6_000,
                (0, None),
            ),
        ];
        for (name, policy, start, now, expected) in cases {
            assert_eq!(
                segments_to_delete(&log, *policy, *start, *now),
                *expected,
                "{name}"
            );
        }
    }

    #[test]
    fn prefix_stops_at_first_keeper() {
        // The second segment is young; the third is old but must not go before it.
        let log = [
            seg(0, 10, 1, 1000),
            seg(10, 20, 1, 9000),
            seg(20, 30, 1, 1000),
            seg(30, 31, 1, 9000),
        ];
        let policy = RetentionPolicy {
            retention_ms: 5000,
            retention_bytes: -1,
        };
        assert_eq!(
            segments_to_delete(&log, policy, 0, 10_000),
            (1, Some(DeletionReason::Time))
        );
    }

    #[test]
    fn single_active_segment_is_never_deleted() {
        let log = [seg(0, 10, 100, 0)];
        let policy = RetentionPolicy {
            retention_ms: 0,
            retention_bytes: 0,
        };
        assert_eq!(segments_to_delete(&log, policy, 10, 1_000_000), (0, None));
    }
}

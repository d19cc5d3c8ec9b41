use super::*;
use crate::batch_builder::simple_batch;

const LIMITS: SegmentLimits = SegmentLimits {
    index_bytes: 4096,
    index_interval_bytes: 100,
};

/// Appends `count` single-record batches, assigning offsets from the segment base.
fn fill(segment: &Segment, count: usize, value_size: usize) -> Vec<(u64, BatchHeader)> {
    let mut out = vec![];
    for _ in 0..count {
        let mut batch = simple_batch(1, value_size, 1000 + segment.next_offset());
        batch::set_base_offset(&mut batch, segment.next_offset());
        let header = BatchHeader::parse(&batch).expect("header");
        let position = segment.size();
        segment
            .append(
                &[&batch[..]],
                &[BatchLocation {
                    position: 0,
                    header,
                }],
            )
            .expect("append");
        out.push((position, header));
    }
    out
}

#[test]
fn append_find_read_and_index_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let segment = Segment::create(dir.path(), 10, LIMITS, 0).expect("create");
    let written = fill(&segment, 50, 40);
    assert_eq!(segment.next_offset(), 60);
    assert!(segment.offset_index.len() > 5, "sparse index has entries");
    for (i, (position, _)) in written.iter().enumerate() {
        let found = segment
            .find_batch(10 + i as i64)
            .expect("find")
            .expect("present");
        assert_eq!(found.position, *position);
    }
    assert!(segment.find_batch(60).expect("find").is_none());
    let batch_size = written[1].0 - written[0].0;
    match segment
        .read(12, batch_size * 3, i64::MAX, true)
        .expect("read")
    {
        SegmentRead::Data {
            slice,
            next_offset,
            reached_end,
        } => {
            assert_eq!(
                (slice.position(), slice.len(), next_offset, reached_end),
                (written[2].0, batch_size * 3, 15, false)
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    // KIP-74: a budget smaller than one batch still returns that batch when asked to.
    assert!(matches!(
        segment.read(12, 1, i64::MAX, true).expect("read"),
        SegmentRead::Data {
            next_offset: 13,
            ..
        }
    ));
    assert!(matches!(
        segment.read(12, 1, i64::MAX, false).expect("read"),
        SegmentRead::OverBudget
    ));
    assert!(matches!(
        segment.read(12, u64::MAX, 12, true).expect("read"),
        SegmentRead::ReachedMaxOffset
    ));
}

#[test]
fn recover_rebuilds_indexes_and_truncates_garbage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let segment = Segment::create(dir.path(), 0, LIMITS, 0).expect("create");
    fill(&segment, 20, 40);
    let good_size = segment.size();
    let entries = segment.offset_index.len();
    segment
        .log
        .write_all_at(b"garbage after the last batch", good_size)
        .expect("write");
    segment.offset_index.truncate_entries_all();
    let report = segment.recover(1 << 20).expect("recover");
    assert_eq!(
        report,
        SegmentRecovery {
            valid_bytes: good_size,
            truncated_bytes: 28,
            batches: 20
        }
    );
    assert_eq!(segment.offset_index.len(), entries);
    assert_eq!(segment.next_offset(), 20);
    assert_eq!(
        std::fs::metadata(segment.log_path()).expect("meta").len(),
        good_size
    );
}

#[test]
fn truncate_to_removes_whole_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let segment = Segment::create(dir.path(), 0, LIMITS, 0).expect("create");
    let written = fill(&segment, 30, 40);
    let removed = segment.truncate_to(17).expect("truncate");
    assert_eq!(segment.size(), written[17].0);
    assert_eq!(
        removed,
        written[29].0 + written[29].1.total_size() as u64 - written[17].0
    );
    assert_eq!(segment.next_offset(), 17);
    assert!(segment.find_batch(17).expect("find").is_none());
    assert!(segment.find_batch(16).expect("find").is_some());
    fill(&segment, 3, 40);
    assert_eq!(segment.next_offset(), 20);
}

#[test]
fn time_lookup_finds_first_batch_at_or_after() {
    let dir = tempfile::tempdir().expect("tempdir");
    let segment = Segment::create(dir.path(), 0, LIMITS, 0).expect("create");
    fill(&segment, 40, 40); // timestamps 1000..1040
    let found = segment
        .find_batch_by_timestamp(1025, 0)
        .expect("lookup")
        .expect("found");
    assert_eq!(found.header.base_offset, 25);
    assert!(segment
        .find_batch_by_timestamp(5000, 0)
        .expect("lookup")
        .is_none());
    let found = segment
        .find_batch_by_timestamp(0, 7)
        .expect("lookup")
        .expect("found");
    assert_eq!(found.header.base_offset, 7);
}

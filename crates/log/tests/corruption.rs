//! One test per corruption shape: damage real files the way crashes and disks do, reopen, check what survives.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ferrite_log::file_names::{index_file, log_file, time_index_file, with_suffix};
use ferrite_log::{LogConfig, PartitionLog};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

const BATCHES: i64 = 60;

/// A log of 60 one-record batches over several 4 KiB segments; closed cleanly if `clean`, else dropped as if
/// the process died.
fn build(dir: &Path, clean: bool) -> Vec<i64> {
    let clock = manual_clock();
    let log = open_with_clock(dir, small_segments(), &clock);
    for i in 0..BATCHES {
        log.append(tagged_batch(i, 1, T0, 200), CLIENT).unwrap();
    }
    let bases = log.segment_base_offsets();
    assert!(bases.len() >= 4);
    if clean {
        log.close().unwrap();
    }
    bases
}

fn reopen(dir: &Path) -> PartitionLog {
    open_with_clock(dir, small_segments(), &manual_clock())
}

/// Reads everything and checks offsets run 0..end with no gaps; returns the end.
fn assert_contiguous(log: &PartitionLog) -> i64 {
    let headers = read_all(log, log.log_start_offset());
    for (i, h) in headers.iter().enumerate() {
        assert_eq!(h.base_offset, log.log_start_offset() + i as i64);
    }
    assert_eq!(
        headers
            .last()
            .map_or(log.log_start_offset(), |h| h.next_offset()),
        log.log_end_offset()
    );
    log.log_end_offset()
}

fn append_bytes(path: &Path, bytes: &[u8]) {
    OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

/// Cuts the last `bytes` bytes off a file, as a crash mid-write leaves it.
fn cut_tail(path: &Path, bytes: u64) {
    let len = file_len(path);
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len - bytes)
        .unwrap();
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// Position of each batch in a segment file.
fn batch_positions(path: &Path) -> Vec<u64> {
    let bytes = std::fs::read(path).unwrap();
    let mut positions = vec![];
    let mut pos = 0usize;
    for h in parse_batches(&bytes) {
        positions.push(pos as u64);
        pos += h.total_size();
    }
    positions
}

#[test]
fn torn_last_batch_is_cut_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let bases = build(dir.path(), false);
    let active = log_file(dir.path(), *bases.last().unwrap());
    cut_tail(&active, 10);
    let log = reopen(dir.path());
    assert_eq!(log.log_end_offset(), BATCHES - 1);
    assert!(log.recovery_report().bytes_truncated > 0);
    assert_contiguous(&log);
    log.append(tagged_batch(BATCHES - 1, 1, T0, 200), CLIENT)
        .unwrap();
    assert_eq!(assert_contiguous(&log), BATCHES);
}

#[test]
fn flipped_byte_in_the_tail_truncates_from_that_batch() {
    let dir = tempfile::tempdir().unwrap();
    let bases = build(dir.path(), false);
    let active_base = *bases.last().unwrap();
    let active = log_file(dir.path(), active_base);
    let positions = batch_positions(&active);
    assert!(positions.len() >= 3);
    let victim = positions.len() / 2;
    let mut bytes = std::fs::read(&active).unwrap();
    bytes[positions[victim] as usize + 70] ^= 0x40; // inside the records, covered by the CRC
    std::fs::write(&active, &bytes).unwrap();
    let log = reopen(dir.path());
    assert_eq!(log.log_end_offset(), active_base + victim as i64);
    assert_eq!(
        log.recovery_report().bytes_truncated,
        bytes.len() as u64 - positions[victim]
    );
    assert_contiguous(&log);
}

#[test]
fn corruption_in_an_earlier_unflushed_segment_drops_what_follows_the_hole() {
    let dir = tempfile::tempdir().unwrap();
    let bases = build(dir.path(), false);
    let victim = log_file(dir.path(), bases[1]);
    let positions = batch_positions(&victim);
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[positions[1] as usize + 30] ^= 0xff;
    std::fs::write(&victim, &bytes).unwrap();
    let log = reopen(dir.path());
    assert_eq!(log.log_end_offset(), bases[1] + 1);
    assert_eq!(log.recovery_report().segments_dropped, bases.len() - 2);
    assert_eq!(log.segment_count(), 2);
    assert_contiguous(&log);
    log.append(tagged_batch(0, 1, T0, 200), CLIENT).unwrap();
    assert_contiguous(&log);
}

#[test]
fn garbage_after_the_last_batch_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let bases = build(dir.path(), true);
    let active = log_file(dir.path(), *bases.last().unwrap());
    let len = file_len(&active);
    append_bytes(&active, &[0xde; 100]);
    let log = reopen(dir.path());
    assert_eq!(log.log_end_offset(), BATCHES);
    assert_eq!(log.recovery_report().bytes_truncated, 100);
    assert_eq!(file_len(&active), len);
    assert_contiguous(&log);
}

#[test]
fn garbage_after_a_sealed_segment_costs_no_later_segments() {
    let dir = tempfile::tempdir().unwrap();
    let bases = build(dir.path(), true);
    append_bytes(&log_file(dir.path(), bases[1]), &[0u8; 37]);
    let log = reopen(dir.path());
    assert_eq!(log.segment_count(), bases.len());
    assert_eq!(log.recovery_report().bytes_truncated, 37);
    assert_eq!(assert_contiguous(&log), BATCHES);
}

#[test]
fn truncated_index_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let bases = build(dir.path(), true);
    let index = index_file(dir.path(), bases[1]);
    let original = std::fs::read(&index).unwrap();
    assert!(original.len() >= 16, "segment has index entries");
    OpenOptions::new()
        .write(true)
        .open(&index)
        .unwrap()
        .set_len(original.len() as u64 - 3)
        .unwrap();
    let log = reopen(dir.path());
    assert_eq!(log.recovery_report().segments_recovered, 1);
    assert_eq!(
        std::fs::read(&index).unwrap(),
        original,
        "rebuilt identically"
    );
    assert_eq!(assert_contiguous(&log), BATCHES);
}

#[test]
fn missing_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let bases = build(dir.path(), true);
    let index = index_file(dir.path(), bases[2]);
    let time_index = time_index_file(dir.path(), bases[0]);
    let (original, original_time) = (
        std::fs::read(&index).unwrap(),
        std::fs::read(&time_index).unwrap(),
    );
    std::fs::remove_file(&index).unwrap();
    std::fs::remove_file(&time_index).unwrap();
    let log = reopen(dir.path());
    assert_eq!(log.recovery_report().segments_recovered, 2);
    assert_eq!(std::fs::read(&index).unwrap(), original);
    assert_eq!(std::fs::read(&time_index).unwrap(), original_time);
    assert_eq!(assert_contiguous(&log), BATCHES);
    assert_eq!(log.offset_for_timestamp(T0).unwrap().unwrap().offset, 0);
}

#[test]
fn index_pointing_past_the_log_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let bases = build(dir.path(), true);
    let index = index_file(dir.path(), bases[1]);
    let mut bytes = std::fs::read(&index).unwrap();
    let n = bytes.len();
    bytes[n - 4..].copy_from_slice(&u32::MAX.to_be_bytes());
    std::fs::write(&index, &bytes).unwrap();
    let log = reopen(dir.path());
    assert_eq!(log.recovery_report().segments_recovered, 1);
    assert_eq!(assert_contiguous(&log), BATCHES);
}

#[test]
fn leftover_deleted_cleaned_and_tmp_files_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let bases = build(dir.path(), true);
    let leftovers = [
        with_suffix(&log_file(dir.path(), 9_999), ".deleted"),
        with_suffix(&index_file(dir.path(), 9_999), ".deleted"),
        with_suffix(&log_file(dir.path(), bases[1]), ".cleaned"),
        dir.path().join("log-start-offset-checkpoint.tmp"),
        index_file(dir.path(), 77_777), // an index with no log
    ];
    for path in &leftovers {
        std::fs::write(path, b"partial").unwrap();
    }
    let log = reopen(dir.path());
    for path in &leftovers {
        assert!(!path.exists(), "{} still there", path.display());
    }
    assert_eq!(log.recovery_report().leftovers_resolved, leftovers.len());
    assert_eq!(assert_contiguous(&log), BATCHES);
}

#[test]
fn leftover_swap_replaces_the_segments_it_covers() {
    let dir = tempfile::tempdir().unwrap();
    let bases = build(dir.path(), true);
    // A compaction that merged segments 0 and 1 into one file crashed after writing `.swap`, before the swap.
    let mut merged = std::fs::read(log_file(dir.path(), bases[0])).unwrap();
    merged.extend(std::fs::read(log_file(dir.path(), bases[1])).unwrap());
    std::fs::write(
        with_suffix(&log_file(dir.path(), bases[0]), ".swap"),
        &merged,
    )
    .unwrap();
    std::fs::write(
        with_suffix(&index_file(dir.path(), bases[0]), ".swap"),
        b"stale",
    )
    .unwrap();
    let log = reopen(dir.path());
    assert!(
        !log_file(dir.path(), bases[1]).exists(),
        "replaced segment removed"
    );
    assert!(!with_suffix(&log_file(dir.path(), bases[0]), ".swap").exists());
    assert_eq!(log.segment_count(), bases.len() - 1);
    assert_eq!(
        std::fs::read(log_file(dir.path(), bases[0])).unwrap(),
        merged
    );
    assert_eq!(assert_contiguous(&log), BATCHES);
}

#[test]
fn damaged_checkpoints_only_make_recovery_more_thorough() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), true);
    for name in [
        "recovery-point-offset-checkpoint",
        "log-start-offset-checkpoint",
        "leader-epoch-checkpoint",
    ] {
        std::fs::write(dir.path().join(name), b"0\n7\nnot numbers\n").unwrap();
    }
    let log = reopen(dir.path());
    assert!(!log.recovery_report().clean_shutdown);
    assert_eq!(
        log.recovery_report().segments_recovered,
        log.segment_count()
    );
    assert_eq!(assert_contiguous(&log), BATCHES);
}

#[test]
fn empty_directory_and_empty_segment_open() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), LogConfig::default(), Default::default()).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    drop(log);
    let log = reopen(dir.path());
    assert_eq!(log.log_end_offset(), 0);
    assert!(read_all(&log, 0).is_empty());
}

#[test]
fn a_torn_append_after_a_clean_reopen_is_recovered() {
    // Appends after a clean open do not rewrite the clean checkpoint; the grown segment must still make the
    // next open recover rather than trust the tail.
    let dir = tempfile::tempdir().unwrap();
    let bases = build(dir.path(), true);
    let active = log_file(dir.path(), *bases.last().unwrap());
    {
        let log = reopen(dir.path());
        assert!(log.recovery_report().clean_shutdown);
        log.append(tagged_batch(BATCHES, 1, T0, 200), CLIENT)
            .unwrap();
        // Dropped without close: the process died.
    }
    cut_tail(&active, 10);
    let log = reopen(dir.path());
    assert!(!log.recovery_report().clean_shutdown);
    assert!(log.recovery_report().bytes_truncated > 0);
    assert_eq!(assert_contiguous(&log), BATCHES);
}

#[test]
fn an_idle_clean_reopen_stays_clean() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), true);
    {
        let log = reopen(dir.path());
        assert!(log.recovery_report().clean_shutdown);
        log.checkpoint_recovery_point().unwrap();
        // Dropped without close, nothing appended.
    }
    let log = reopen(dir.path());
    assert!(
        log.recovery_report().clean_shutdown,
        "nothing changed since the clean close"
    );
    assert_eq!(log.recovery_report().segments_recovered, 0);
    assert_eq!(assert_contiguous(&log), BATCHES);
}

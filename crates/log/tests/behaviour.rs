//! Behaviour of the partition log through its public API, on real files.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ferrite_log::batch::{BatchHeader, BATCH_HEADER_LEN};
use ferrite_log::batch_builder::simple_batch;
use ferrite_log::{
    AppendOrigin, FlushPolicy, LogConfig, LogError, LogOptions, PartitionLog, TimestampType,
    ValidationError,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[test]
fn append_assigns_offsets_and_reads_back_exact_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let clock = manual_clock();
    let log = open_with_clock(dir.path(), LogConfig::default(), &clock);
    let info = log.append(tagged_batch(0, 3, T0, 0), CLIENT).unwrap();
    assert_eq!(
        (
            info.first_offset,
            info.last_offset,
            info.log_append_time,
            info.log_start_offset
        ),
        (0, 2, -1, 0)
    );
    let mut two = tagged_batch(3, 2, T0, 0);
    two.extend_from_slice(&tagged_batch(5, 4, T0, 0));
    let info = log.append(two.clone(), CLIENT).unwrap();
    assert_eq!(
        (info.first_offset, info.last_offset, info.record_count),
        (3, 8, 6)
    );
    assert_eq!(log.log_end_offset(), 9);

    let result = log.read(3, u64::MAX, i64::MAX, true).unwrap();
    let bytes: Vec<u8> = result
        .slices
        .iter()
        .flat_map(|s| s.read_to_vec().unwrap())
        .collect();
    // Identical to what was sent except the rewritten base offsets (which the CRC does not cover).
    let mut expected = two.to_vec();
    let second_at = BatchHeader::parse(&expected).unwrap().total_size();
    expected[..8].copy_from_slice(&3i64.to_be_bytes());
    expected[second_at..second_at + 8].copy_from_slice(&5i64.to_be_bytes());
    assert_eq!(bytes, expected);
    assert_eq!(result.next_offset, 9);
    // A fetch in the middle of a batch starts at that batch (clients skip the extra records).
    let headers = read_all(&log, 6);
    assert_eq!(headers[0].base_offset, 5);
}

#[test]
fn read_bounds_and_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), LogConfig::default(), LogOptions::default()).unwrap();
    for i in 0..10 {
        log.append(tagged_batch(i, 1, now(), 100), CLIENT).unwrap();
    }
    let batch_size = read_all(&log, 0)[0].total_size() as u64;
    let r = log.read(0, batch_size * 3 + 1, i64::MAX, true).unwrap();
    assert_eq!((r.bytes, r.next_offset), (batch_size * 3, 3));
    let r = log.read(0, 1, i64::MAX, true).unwrap();
    assert_eq!(
        (r.bytes, r.next_offset),
        (batch_size, 1),
        "KIP-74: first batch even if over budget"
    );
    let r = log.read(0, 1, i64::MAX, false).unwrap();
    assert_eq!(r.bytes, 0);
    let r = log.read(2, u64::MAX, 5, true).unwrap();
    assert_eq!(
        (r.bytes, r.next_offset),
        (batch_size * 3, 5),
        "max offset (high watermark) bounds the read"
    );
    let r = log.read(10, u64::MAX, i64::MAX, true).unwrap();
    assert_eq!(r.bytes, 0, "reading at the log end is empty, not an error");
    assert!(matches!(
        log.read(11, 100, i64::MAX, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert!(matches!(
        log.read(-1, 100, i64::MAX, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
}

fn now() -> i64 {
    ferrite_log::Clock::now_ms(&ferrite_log::SystemClock)
}

#[test]
fn invalid_input_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = manual_clock();
    let config = LogConfig {
        max_message_bytes: 500,
        ..LogConfig::default()
    };
    let log = open_with_clock(dir.path(), config, &clock);
    log.append(tagged_batch(0, 1, T0, 0), CLIENT).unwrap();
    let size = log.size_bytes();

    let mut corrupt = tagged_batch(1, 2, T0, 0);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert!(matches!(
        log.append(corrupt, CLIENT),
        Err(LogError::Validation(ValidationError::Corrupt { .. }))
    ));
    // A valid batch followed by a bad one: all or nothing.
    let mut mixed = tagged_batch(1, 1, T0, 0);
    mixed.extend_from_slice(&tagged_batch(2, 1, T0 + 10_000_000, 0));
    assert!(matches!(
        log.append(mixed, CLIENT),
        Err(LogError::Validation(
            ValidationError::InvalidTimestamp { .. }
        ))
    ));
    assert!(matches!(
        log.append(tagged_batch(1, 1, T0, 600), CLIENT),
        Err(LogError::Validation(ValidationError::TooLarge { .. }))
    ));
    assert!(log.append(bytes::BytesMut::new(), CLIENT).is_err());
    assert_eq!(log.size_bytes(), size);
    assert_eq!(log.log_end_offset(), 1);
}

#[test]
fn log_append_time_is_stamped() {
    let dir = tempfile::tempdir().unwrap();
    let clock = manual_clock();
    let config = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let log = open_with_clock(dir.path(), config, &clock);
    clock.set(T0 + 5000);
    let info = log
        .append(tagged_batch(0, 2, T0 - 99_999_999, 0), CLIENT)
        .unwrap();
    assert_eq!(info.log_append_time, T0 + 5000);
    let header = read_all(&log, 0)[0];
    assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(header.max_timestamp, T0 + 5000);
}

#[test]
fn rolls_on_segment_bytes_and_reads_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let clock = manual_clock();
    let log = open_with_clock(dir.path(), small_segments(), &clock);
    for i in 0..100 {
        log.append(tagged_batch(i, 1, T0, 200), CLIENT).unwrap();
    }
    assert!(log.segment_count() > 5, "{} segments", log.segment_count());
    for base in log.segment_base_offsets() {
        let path = ferrite_log::file_names::log_file(dir.path(), base);
        assert!(std::fs::metadata(&path).unwrap().len() <= 4096);
    }
    let headers = read_all(&log, 0);
    assert_eq!(headers.len(), 100);
    assert!(headers
        .iter()
        .enumerate()
        .all(|(i, h)| h.base_offset == i as i64));
}

#[test]
fn rolls_on_segment_ms_in_record_time() {
    let dir = tempfile::tempdir().unwrap();
    let clock = manual_clock();
    let config = LogConfig {
        segment_ms: 1000,
        timestamp_after_max_ms: i64::MAX,
        ..LogConfig::default()
    };
    let log = open_with_clock(dir.path(), config, &clock);
    log.append(tagged_batch(0, 1, T0, 0), CLIENT).unwrap();
    log.append(tagged_batch(1, 1, T0 + 500, 0), CLIENT).unwrap();
    assert_eq!(log.segment_count(), 1);
    log.append(tagged_batch(2, 1, T0 + 1500, 0), CLIENT)
        .unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 2]);
}

#[test]
fn timestamp_lookups() {
    let dir = tempfile::tempdir().unwrap();
    let clock = manual_clock();
    let log = open_with_clock(dir.path(), small_segments(), &clock);
    // Records at T0 + 10*i, i = 0..200, four records a batch, spread over several segments.
    for i in (0..200).step_by(4) {
        let count = 4.min(200 - i) as usize;
        let mut batch = tagged_batch(i, count, T0, 50);
        // Spread timestamps: rewrite via a fresh batch with 10 ms steps.
        let records: Vec<Vec<u8>> = (0..count)
            .map(|j| format!("r{:0>100}", i + j as i64).into_bytes())
            .collect();
        let specs: Vec<_> = records
            .iter()
            .enumerate()
            .map(|(j, v)| ferrite_log::batch_builder::RecordSpec {
                key: None,
                value: Some(v),
                headers: vec![],
                timestamp: T0 + 10 * (i + j as i64),
            })
            .collect();
        batch.clear();
        ferrite_log::batch_builder::encode_batch(&mut batch, &specs, -1, None);
        log.append(batch, CLIENT).unwrap();
    }
    assert!(log.segment_count() > 2);
    for (ts, expected) in [
        (T0 - 5, 0),
        (T0, 0),
        (T0 + 1, 1),
        (T0 + 10 * 123, 123),
        (T0 + 10 * 123 - 3, 123),
        (T0 + 1990, 199),
    ] {
        let found = log.offset_for_timestamp(ts).unwrap().unwrap();
        assert_eq!(found.offset, expected, "timestamp {ts}");
        assert!(found.timestamp >= ts);
    }
    assert!(log.offset_for_timestamp(T0 + 1991).unwrap().is_none());
    let max = log.max_timestamp_offset().unwrap().unwrap();
    assert_eq!((max.offset, max.timestamp), (199, T0 + 1990));
}

#[test]
fn leader_epochs_are_cached_persisted_and_answered() {
    let dir = tempfile::tempdir().unwrap();
    let clock = manual_clock();
    {
        let log = open_with_clock(dir.path(), LogConfig::default(), &clock);
        log.append(
            tagged_batch(0, 5, T0, 0),
            AppendOrigin::Client { leader_epoch: 1 },
        )
        .unwrap();
        log.append(
            tagged_batch(5, 5, T0, 0),
            AppendOrigin::Client { leader_epoch: 1 },
        )
        .unwrap();
        log.append(
            tagged_batch(10, 5, T0, 0),
            AppendOrigin::Client { leader_epoch: 4 },
        )
        .unwrap();
        assert_eq!(read_all(&log, 10)[0].partition_leader_epoch, 4);
        log.close().unwrap();
    }
    let log = open_with_clock(dir.path(), LogConfig::default(), &clock);
    assert_eq!(log.latest_epoch(), Some(4));
    assert_eq!(log.end_offset_for_epoch(1).end_offset, 10);
    assert_eq!(log.end_offset_for_epoch(3).end_offset, 10);
    assert_eq!(log.end_offset_for_epoch(4).end_offset, 15);
    log.truncate_to(8).unwrap();
    assert_eq!(log.latest_epoch(), Some(1));
    assert_eq!(
        log.log_end_offset(),
        5,
        "the batch spanning offset 8 goes whole"
    );
}

#[test]
fn truncating_at_the_log_end_drops_an_epoch_begun_there_without_records() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), LogConfig::default(), LogOptions::default()).unwrap();
    let replica_batch = |base: i64, epoch: i32| {
        let mut batch = simple_batch(3, 10, now());
        ferrite_log::batch::set_base_offset(&mut batch, base);
        ferrite_log::batch::set_partition_leader_epoch(&mut batch, epoch);
        batch
    };
    log.append(replica_batch(0, 0), AppendOrigin::Replica)
        .unwrap();
    // Elected leader of epoch 1 at offset 3, it appends nothing; then it follows a leader whose epoch 0
    // went on to offset 6.
    log.begin_leader_epoch(1).unwrap();
    assert_eq!(log.end_offset_for_epoch(0).end_offset, 3);
    log.truncate_to(3).unwrap();
    assert_eq!(log.latest_epoch(), Some(0), "the empty epoch 1 is gone");
    log.append(replica_batch(3, 0), AppendOrigin::Replica)
        .unwrap();
    assert_eq!(
        log.end_offset_for_epoch(0).end_offset,
        6,
        "epoch 0 ends where its records end"
    );
    drop(log);
    let log = PartitionLog::open(dir.path(), LogConfig::default(), LogOptions::default()).unwrap();
    assert_eq!(
        (log.latest_epoch(), log.end_offset_for_epoch(0).end_offset),
        (Some(0), 6),
        "and so it stays after a restart"
    );
}

#[test]
fn truncation_then_append_continues_from_new_end() {
    let dir = tempfile::tempdir().unwrap();
    let clock = manual_clock();
    let log = open_with_clock(dir.path(), small_segments(), &clock);
    for i in 0..60 {
        log.append(tagged_batch(i, 1, T0, 200), CLIENT).unwrap();
    }
    let segments_before = log.segment_count();
    log.truncate_to(20).unwrap();
    assert_eq!(log.log_end_offset(), 20);
    assert!(log.segment_count() < segments_before);
    for i in 20..40 {
        log.append(tagged_batch(i, 1, T0, 200), CLIENT).unwrap();
    }
    let headers = read_all(&log, 0);
    assert_eq!(headers.len(), 40);
    assert!(headers
        .iter()
        .enumerate()
        .all(|(i, h)| h.base_offset == i as i64));
    log.close().unwrap();
    let log = open_with_clock(dir.path(), small_segments(), &clock);
    assert_eq!(read_all(&log, 0).len(), 40);

    log.truncate_fully_and_start_at(1000).unwrap();
    assert_eq!(
        (
            log.log_start_offset(),
            log.log_end_offset(),
            log.segment_count()
        ),
        (1000, 1000, 1)
    );
    let info = log.append(tagged_batch(0, 1, T0, 0), CLIENT).unwrap();
    assert_eq!(info.first_offset, 1000);
    drop(log);
    let log = open_with_clock(dir.path(), small_segments(), &clock);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (1000, 1001));
}

#[test]
fn replica_appends_keep_leader_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), LogConfig::default(), LogOptions::default()).unwrap();
    let mut batch = simple_batch(3, 10, now());
    ferrite_log::batch::set_base_offset(&mut batch, 0);
    ferrite_log::batch::set_partition_leader_epoch(&mut batch, 2);
    log.append(batch.clone(), AppendOrigin::Replica).unwrap();
    assert!(
        log.append(batch.clone(), AppendOrigin::Replica).is_err(),
        "offsets must move forward"
    );
    ferrite_log::batch::set_base_offset(&mut batch, 3);
    log.append(batch, AppendOrigin::Replica).unwrap();
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(log.latest_epoch(), Some(2));
}

#[test]
fn retention_by_time_and_size_with_delayed_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let clock = manual_clock();
    let config = LogConfig {
        retention_ms: 60_000,
        file_delete_delay_ms: 1_000,
        ..small_segments()
    };
    let log = open_with_clock(dir.path(), config.clone(), &clock);
    for i in 0..40 {
        log.append(tagged_batch(i, 1, T0, 200), CLIENT).unwrap();
    }
    let later = T0 + 120_000;
    clock.set(later);
    for i in 40..60 {
        log.append(tagged_batch(i, 1, later, 200), CLIENT).unwrap();
    }
    // A reader holds a slice of the oldest segment across its deletion.
    let held = log
        .read(0, u64::MAX, i64::MAX, true)
        .unwrap()
        .slices
        .remove(0);
    let outcome = log.enforce_retention().unwrap();
    assert!(outcome.segments_deleted > 0);
    let start = log.log_start_offset();
    assert!(start > 0 && start <= 40, "log start moved to {start}");
    assert!(matches!(
        log.read(0, 100, i64::MAX, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(read_all(&log, start)[0].base_offset, start);
    let deleted: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".deleted"))
        .collect();
    assert!(!deleted.is_empty());
    assert!(
        !parse_batches(&held.read_to_vec().unwrap()).is_empty(),
        "held slice still readable"
    );
    assert_eq!(log.delete_expired_files().unwrap(), 0, "not yet due");
    clock.advance(1_001);
    assert_eq!(log.delete_expired_files().unwrap(), deleted.len());
    assert!(
        !parse_batches(&held.read_to_vec().unwrap()).is_empty(),
        "open handle survives unlink"
    );

    // Size: Kafka keeps at least retention.bytes, deleting whole segments only while the rest still exceeds it.
    for i in 60..200 {
        log.append(tagged_batch(i, 1, later, 200), CLIENT).unwrap();
    }
    let seg = 4096u64;
    log.update_config(LogConfig {
        retention_ms: -1,
        retention_bytes: 3 * seg as i64,
        ..config
    });
    let before = log.size_bytes();
    assert!(before > 5 * seg);
    log.enforce_retention().unwrap();
    let after = log.size_bytes();
    assert!(after >= 3 * seg && after < 4 * seg, "{before} -> {after}");
    // The start offset survives a reopen.
    let start = log.log_start_offset();
    log.close().unwrap();
    let log = open_with_clock(dir.path(), small_segments(), &clock);
    assert_eq!(log.log_start_offset(), start);
}

#[test]
fn delete_records_moves_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let clock = manual_clock();
    let log = open_with_clock(dir.path(), small_segments(), &clock);
    for i in 0..50 {
        log.append(tagged_batch(i, 1, T0, 200), CLIENT).unwrap();
    }
    assert!(log.advance_log_start_offset(30).unwrap());
    assert!(
        !log.advance_log_start_offset(10).unwrap(),
        "never backwards"
    );
    assert!(
        log.advance_log_start_offset(51).is_err(),
        "not past the end"
    );
    assert_eq!(log.log_start_offset(), 30);
    assert!(matches!(
        log.read(29, 100, i64::MAX, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(read_all(&log, 30)[0].base_offset, 30);
    assert!(
        log.segment_base_offsets()[0] <= 30 && log.segment_base_offsets()[0] > 0,
        "whole segments below went"
    );
    assert_eq!(log.offset_for_timestamp(0).unwrap().unwrap().offset, 30);
}

#[test]
fn clean_reopen_does_not_rescan() {
    let dir = tempfile::tempdir().unwrap();
    let clock = manual_clock();
    let log = open_with_clock(dir.path(), small_segments(), &clock);
    for i in 0..50 {
        log.append(tagged_batch(i, 1, T0, 200), CLIENT).unwrap();
    }
    log.close().unwrap();
    assert!(
        log.append(tagged_batch(0, 1, T0, 0), CLIENT).is_err(),
        "closed log refuses writes"
    );
    drop(log);
    let log = open_with_clock(dir.path(), small_segments(), &clock);
    let report = log.recovery_report().clone();
    assert!(report.clean_shutdown);
    assert_eq!(report.segments_recovered, 0);
    assert_eq!(log.log_end_offset(), 50);
    assert_eq!(log.offset_for_timestamp(T0).unwrap().unwrap().offset, 0);
    // After a crash (no close), recovery scans only from the segment holding the recovery point.
    log.append(tagged_batch(50, 1, T0, 200), CLIENT).unwrap();
    drop(log);
    let log = open_with_clock(dir.path(), small_segments(), &clock);
    let report = log.recovery_report().clone();
    assert!(!report.clean_shutdown);
    assert!(
        report.segments_recovered >= 1 && report.segments_recovered < report.segments,
        "{report:?}"
    );
    assert_eq!(log.log_end_offset(), 51);
}

#[test]
fn concurrent_readers_never_see_partial_batches() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 64 * 1024,
        index_interval_bytes: 1024,
        ..LogConfig::default()
    };
    let log = Arc::new(PartitionLog::open(dir.path(), config, LogOptions::default()).unwrap());
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (log, done) = (Arc::clone(&log), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !done.load(Ordering::Acquire) {
                    let end = log.log_end_offset();
                    let from = (end - 50).max(0);
                    let r = log.read(from, 16 * 1024, end, true).unwrap();
                    let bytes: Vec<u8> = r
                        .slices
                        .iter()
                        .flat_map(|s| s.read_to_vec().unwrap())
                        .collect();
                    let headers = parse_batches(&bytes); // panics on a torn or corrupt batch
                    for pair in headers.windows(2) {
                        assert_eq!(
                            pair[0].next_offset(),
                            pair[1].base_offset,
                            "no gaps, in order"
                        );
                    }
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for i in 0..3000 {
        log.append(tagged_batch(i, 2, now(), 100), CLIENT).unwrap();
    }
    done.store(true, Ordering::Release);
    let reads: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(reads > 0);
    assert_eq!(read_all(&log, 0).len(), 3000);
}

#[test]
fn durable_mode_with_concurrent_appenders() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        flush: FlushPolicy::Durable,
        ..LogConfig::default()
    };
    let log = Arc::new(PartitionLog::open(dir.path(), config, LogOptions::default()).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for i in 0..20 {
                    let info = log
                        .append(tagged_batch(t * 1000 + i, 1, now(), 10), CLIENT)
                        .unwrap();
                    assert!(
                        log.recovery_point() > info.last_offset,
                        "acknowledged only once durable"
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(log.log_end_offset(), 160);
    assert_eq!(log.recovery_point(), 160);
}

#[test]
fn periodic_flush_by_message_count() {
    let dir = tempfile::tempdir().unwrap();
    let clock = manual_clock();
    let config = LogConfig {
        flush: FlushPolicy::Periodic {
            messages: 10,
            interval_ms: i64::MAX,
        },
        ..LogConfig::default()
    };
    let log = open_with_clock(dir.path(), config, &clock);
    for i in 0..9 {
        log.append(tagged_batch(i, 1, T0, 0), CLIENT).unwrap();
    }
    assert_eq!(log.recovery_point(), 0);
    log.append(tagged_batch(9, 1, T0, 0), CLIENT).unwrap();
    assert_eq!(log.recovery_point(), 10);
    let config = LogConfig {
        flush: FlushPolicy::Periodic {
            messages: i64::MAX as u64,
            interval_ms: 100,
        },
        ..LogConfig::default()
    };
    log.update_config(config);
    log.append(tagged_batch(10, 1, T0, 0), CLIENT).unwrap();
    assert!(!log.flush_if_due().unwrap());
    clock.advance(200);
    assert!(log.flush_if_due().unwrap());
    assert_eq!(log.recovery_point(), 11);
}

#[test]
fn delete_removes_the_directory() {
    let parent = tempfile::tempdir().unwrap();
    let dir = ferrite_log::file_names::partition_dir(parent.path(), "orders", 3);
    let log = PartitionLog::open(&dir, LogConfig::default(), LogOptions::default()).unwrap();
    log.append(tagged_batch(0, 1, now(), 0), CLIENT).unwrap();
    assert!(dir.ends_with("orders-3") && dir.exists());
    log.delete().unwrap();
    assert!(!dir.exists());
}

#[test]
fn record_header_len_is_what_batches_start_with() {
    // Guards the constant the server relies on when it writes partition headers in front of slices.
    assert_eq!(BATCH_HEADER_LEN, 61);
}

#[test]
fn a_roll_syncs_nothing_itself_and_asks_for_a_flush() {
    let dir = tempfile::tempdir().unwrap();
    let clock = manual_clock();
    let log = open_with_clock(dir.path(), small_segments(), &clock);
    let mut rolls = 0;
    for i in 0..60 {
        let segments = log.segment_count();
        let info = log
            .append_unsynced(tagged_batch(i, 1, T0, 200), CLIENT)
            .unwrap();
        let rolled = log.segment_count() > segments;
        rolls += usize::from(rolled);
        if rolled {
            assert!(info.flush_due, "a roll asks for the rolled segment's flush");
        }
    }
    assert!(rolls >= 3);
    assert_eq!(
        log.recovery_point(),
        0,
        "rolled segments were not synced yet"
    );
    let bases = log.segment_base_offsets();
    let sealed = ferrite_log::file_names::index_file(dir.path(), bases[0]);
    assert!(
        std::fs::metadata(&sealed).unwrap().len() > 1024,
        "a roll leaves the sealed index preallocated"
    );
    log.run_due_flush().unwrap();
    let active_base = *log.segment_base_offsets().last().unwrap();
    assert_eq!(
        log.recovery_point(),
        active_base,
        "the flush a roll asks for covers the sealed segments, not the active one"
    );
    assert!(
        std::fs::metadata(&sealed).unwrap().len() < 1024,
        "the flush trimmed the sealed index to its entries"
    );
    log.flush().unwrap();
    assert_eq!(log.recovery_point(), 60);
    assert!(dir
        .path()
        .join(ferrite_log::file_names::PRODUCER_SNAPSHOT)
        .exists());
}

#[test]
fn a_due_periodic_flush_is_reported_once_and_never_run_inside_the_append() {
    let dir = tempfile::tempdir().unwrap();
    let clock = manual_clock();
    let config = LogConfig {
        flush: FlushPolicy::Periodic {
            messages: 3,
            interval_ms: i64::MAX,
        },
        ..small_segments()
    };
    let log = open_with_clock(dir.path(), config, &clock);
    let due: Vec<bool> = (0..5)
        .map(|i| {
            log.append_unsynced(tagged_batch(i, 1, T0, 200), CLIENT)
                .unwrap()
                .flush_due
        })
        .collect();
    assert_eq!(
        due,
        [false, false, true, false, false],
        "due at the third message, then not asked again until a flush"
    );
    assert_eq!(log.recovery_point(), 0, "the append itself synced nothing");
    // The caller never ran it: the scheduler's check is the backstop.
    assert!(log.flush_if_due().unwrap());
    assert_eq!(log.recovery_point(), 5);
    assert!(!log.flush_if_due().unwrap(), "nothing left to flush");
    let due: Vec<bool> = (5..8)
        .map(|i| {
            log.append_unsynced(tagged_batch(i, 1, T0, 200), CLIENT)
                .unwrap()
                .flush_due
        })
        .collect();
    assert_eq!(due, [false, false, true], "counted again from the flush");
}

/// Descriptors this process holds open on files under `dir`.
fn descriptors_under(dir: &std::path::Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.starts_with(dir))
        .count()
}

#[test]
fn a_partition_holds_one_descriptor_per_segment() {
    let dir = tempfile::tempdir().unwrap();
    let clock = manual_clock();
    let log = open_with_clock(dir.path(), small_segments(), &clock);
    for i in 0..60 {
        log.append(tagged_batch(i, 1, T0, 200), CLIENT).unwrap();
    }
    let segments = log.segment_count();
    assert!(segments > 3);
    assert_eq!(
        descriptors_under(dir.path()),
        segments,
        "the .log files only: indexes are mapped, not held open"
    );
    log.close().unwrap();
    drop(log);
    let reopened = open_with_clock(dir.path(), small_segments(), &clock);
    assert_eq!(descriptors_under(dir.path()), segments);
    let headers = read_all(&reopened, 0);
    assert_eq!(
        headers.len(),
        60,
        "the trimmed indexes still find every batch"
    );
}

fn idempotent_batch(producer_id: i64, epoch: i16, first_seq: i32, count: usize) -> bytes::BytesMut {
    use ferrite_log::batch_builder::{encode_batch, ProducerIdentity, RecordSpec};
    let values: Vec<Vec<u8>> = (0..count)
        .map(|i| format!("seq{}", first_seq as usize + i).into_bytes())
        .collect();
    let records: Vec<RecordSpec<'_>> = values
        .iter()
        .map(|v| RecordSpec {
            key: None,
            value: Some(v),
            headers: vec![],
            timestamp: T0,
        })
        .collect();
    let mut out = bytes::BytesMut::new();
    let producer = ProducerIdentity {
        producer_id,
        producer_epoch: epoch,
        base_sequence: first_seq,
    };
    encode_batch(&mut out, &records, -1, Some(producer));
    out
}

#[test]
fn idempotent_retries_are_not_written_twice_and_state_survives_reopen_and_crash() {
    use ferrite_log::ProducerError;
    let dir = tempfile::tempdir().unwrap();
    let clock = manual_clock();
    let log = open_with_clock(dir.path(), small_segments(), &clock);
    let first = log.append(idempotent_batch(42, 0, 0, 3), CLIENT).unwrap();
    let second = log.append(idempotent_batch(42, 0, 3, 2), CLIENT).unwrap();
    assert_eq!((second.first_offset, second.last_offset), (3, 4));
    // A retry of the first batch answers its original offsets without writing.
    let retry = log.append(idempotent_batch(42, 0, 0, 3), CLIENT).unwrap();
    assert!(retry.duplicate);
    assert_eq!(
        (retry.first_offset, retry.last_offset),
        (first.first_offset, first.last_offset)
    );
    assert_eq!(log.log_end_offset(), 5);
    let gap = log.append(idempotent_batch(42, 0, 9, 1), CLIENT);
    assert!(
        matches!(
            gap,
            Err(LogError::Producer(ProducerError::OutOfOrderSequence { .. }))
        ),
        "{gap:?}"
    );
    let unknown = log.append(idempotent_batch(77, 0, 5, 1), CLIENT);
    assert!(
        matches!(
            unknown,
            Err(LogError::Producer(ProducerError::UnknownProducerId { .. }))
        ),
        "{unknown:?}"
    );
    log.append(idempotent_batch(42, 1, 0, 1), CLIENT).unwrap();
    let fenced = log.append(idempotent_batch(42, 0, 5, 1), CLIENT);
    assert!(
        matches!(
            fenced,
            Err(LogError::Producer(
                ProducerError::InvalidProducerEpoch { .. }
            ))
        ),
        "{fenced:?}"
    );
    // Many more batches, rolling segments (each roll snapshots), then a clean close.
    for seq in 1..100 {
        log.append(idempotent_batch(42, 1, seq, 1), CLIENT).unwrap();
    }
    assert!(log.segment_count() > 1);
    log.close().unwrap();
    drop(log);
    let log = open_with_clock(dir.path(), small_segments(), &clock);
    assert!(
        log.append(idempotent_batch(42, 1, 99, 1), CLIENT)
            .unwrap()
            .duplicate,
        "remembered across a clean reopen"
    );
    log.append(idempotent_batch(42, 1, 100, 1), CLIENT).unwrap();
    drop(log); // crash: the last snapshot is older than the log end; replay fills the gap
    let log = open_with_clock(dir.path(), small_segments(), &clock);
    assert!(
        log.append(idempotent_batch(42, 1, 100, 1), CLIENT)
            .unwrap()
            .duplicate,
        "remembered after a crash"
    );
    assert!(
        log.append(idempotent_batch(42, 1, 102, 1), CLIENT).is_err(),
        "sequence 101 is next"
    );
    // Truncating the last batch away makes its sequence expected again.
    let end = log.log_end_offset();
    log.truncate_to(end - 1).unwrap();
    let again = log.append(idempotent_batch(42, 1, 100, 1), CLIENT).unwrap();
    assert!(!again.duplicate);
    // Two batches in one request cannot be idempotent.
    let mut two = idempotent_batch(42, 1, 101, 1);
    two.extend_from_slice(&idempotent_batch(42, 1, 102, 1));
    assert!(matches!(
        log.append(two, CLIENT),
        Err(LogError::Validation(ValidationError::InvalidRecord { .. }))
    ));
}

#[test]
fn timestamp_lookups_are_exact_inside_compressed_batches() {
    use ferrite_log::batch::{recompress_payload, Compression};
    use ferrite_log::batch_builder::{encode_batch, RecordSpec};
    let dir = tempfile::tempdir().unwrap();
    let clock = manual_clock();
    let log = open_with_clock(dir.path(), LogConfig::default(), &clock);
    for (b, codec) in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ]
    .into_iter()
    .enumerate()
    {
        let values: Vec<Vec<u8>> = (0..10).map(|i| format!("b{b}r{i}").into_bytes()).collect();
        let records: Vec<RecordSpec<'_>> = values
            .iter()
            .enumerate()
            .map(|(i, v)| RecordSpec {
                key: None,
                value: Some(v),
                headers: vec![],
                timestamp: T0 + (b * 10 + i) as i64 * 100,
            })
            .collect();
        let mut plain = bytes::BytesMut::new();
        encode_batch(&mut plain, &records, -1, None);
        log.append(
            recompress_payload(
                &plain,
                codec,
                ferrite_log::compression::MAX_DECOMPRESSED_BYTES,
            )
            .unwrap(),
            CLIENT,
        )
        .unwrap();
    }
    for target in [0i64, 7, 13, 25, 39] {
        let found = log
            .offset_for_timestamp(T0 + target * 100 - 50)
            .unwrap()
            .unwrap();
        assert_eq!(
            (found.offset, found.timestamp),
            (target, T0 + target * 100),
            "record {target}"
        );
    }
    let max = log.max_timestamp_offset().unwrap().unwrap();
    assert_eq!((max.offset, max.timestamp), (39, T0 + 3900));
}

#[test]
fn a_timestamp_lookup_skips_records_below_the_log_start() {
    // One batch of three records with timestamps T0+0, +7, +3 (offsets 0-2), the log start moved to 2: the
    // batch's max timestamp (+7) belongs to offset 1, which is gone. Found by the model test.
    use ferrite_log::batch_builder::{encode_batch, RecordSpec};
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), LogConfig::default(), LogOptions::default()).unwrap();
    let records: Vec<RecordSpec<'_>> = [0, 7, 3]
        .iter()
        .map(|d| RecordSpec {
            key: None,
            value: Some(b"v"),
            headers: vec![],
            timestamp: T0 + d,
        })
        .collect();
    let mut batch = bytes::BytesMut::new();
    encode_batch(&mut batch, &records, -1, None);
    log.append(batch, CLIENT).unwrap();
    log.append(tagged_batch(3, 1, T0 + 20, 0), CLIENT).unwrap();
    log.advance_log_start_offset(2).unwrap();
    let found = log.offset_for_timestamp(T0 + 4).unwrap().unwrap();
    assert_eq!(
        (found.offset, found.timestamp),
        (3, T0 + 20),
        "offset 2 (T0+3) is too early and offset 1 (T0+7) is below the log start"
    );
    let found = log.offset_for_timestamp(T0 + 2).unwrap().unwrap();
    assert_eq!((found.offset, found.timestamp), (2, T0 + 3));
}

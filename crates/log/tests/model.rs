//! Random sequences of operations against a simple in-memory model of the log (Redpanda's opfuzz idea):
//! append, read, roll, truncate, retention, log-start moves, timestamp lookups, flush, and reopen (clean or
//! as after a crash). Every read and lookup is checked against the model.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::BytesMut;
use common::*;
use ferrite_log::batch::{set_base_offset, BatchHeader};
use ferrite_log::batch_builder::{encode_batch, RecordSpec};
use ferrite_log::{LogConfig, LogError, ManualClock, PartitionLog};
use proptest::prelude::*;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, Clone)]
enum Op {
    /// Batches of (record count, value size, timestamp offset from T0 in ms).
    Append(Vec<(usize, usize, i64)>),
    Read {
        at: f64,
        max_bytes: u64,
        min_one: bool,
        bound: f64,
    },
    Roll,
    Truncate(f64),
    AdvanceLogStart(f64),
    RetainBytes(u64),
    RetainMs {
        age_ms: i64,
    },
    LookupTimestamp(i64),
    MaxTimestamp,
    Flush,
    Reopen {
        clean: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec((1usize..6, 0usize..300, 0i64..5_000), 1..4).prop_map(Op::Append),
        4 => (0.0..=1.0f64, 1u64..6000, any::<bool>(), 0.0..=1.0f64)
            .prop_map(|(at, max_bytes, min_one, bound)| Op::Read { at, max_bytes, min_one, bound }),
        1 => Just(Op::Roll),
        1 => (0.0..=1.0f64).prop_map(Op::Truncate),
        1 => (0.0..=1.0f64).prop_map(Op::AdvanceLogStart),
        1 => (0u64..20_000).prop_map(Op::RetainBytes),
        1 => (0i64..5_000).prop_map(|age_ms| Op::RetainMs { age_ms }),
        2 => (-100i64..5_100).prop_map(Op::LookupTimestamp),
        1 => Just(Op::MaxTimestamp),
        1 => Just(Op::Flush),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
    ]
}

/// One batch as the log should hold it.
#[derive(Debug, Clone)]
struct ModelBatch {
    base: i64,
    bytes: Vec<u8>,
    timestamps: Vec<i64>,
}

impl ModelBatch {
    fn next(&self) -> i64 {
        self.base + self.timestamps.len() as i64
    }
}

#[derive(Debug, Default)]
struct Model {
    batches: Vec<ModelBatch>,
    start: i64,
    end: i64,
}

impl Model {
    fn offset_at(&self, fraction: f64) -> i64 {
        self.start + ((self.end - self.start) as f64 * fraction).round() as i64
    }

    /// What a read must return: whole batches from the one holding `offset`.
    fn read(&self, offset: i64, max_bytes: u64, bound: i64, min_one: bool) -> Vec<u8> {
        let mut out = vec![];
        if offset >= bound {
            return out; // at or above the high watermark: nothing yet
        }
        for b in self.batches.iter().filter(|b| b.next() > offset) {
            if b.base >= bound {
                break;
            }
            let fits = (out.len() + b.bytes.len()) as u64 <= max_bytes;
            let first_anyway = out.is_empty() && min_one; // KIP-74
            if !(fits || first_anyway) {
                break;
            }
            out.extend_from_slice(&b.bytes);
        }
        out
    }

    /// (offset, timestamp) of the first record at or after `start` with timestamp >= `ts`.
    fn first_at_or_after(&self, ts: i64) -> Option<(i64, i64)> {
        self.records().find(|&(_, t)| t >= ts)
    }

    fn max_timestamp(&self) -> Option<(i64, i64)> {
        self.records().fold(None, |best, (o, t)| match best {
            Some((_, bt)) if bt >= t => best,
            _ => Some((o, t)),
        })
    }

    fn records(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.batches
            .iter()
            .flat_map(|b| {
                b.timestamps
                    .iter()
                    .enumerate()
                    .map(move |(i, &t)| (b.base + i as i64, t))
            })
            .filter(|&(o, _)| o >= self.start)
    }
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 3000,
        index_interval_bytes: 300,
        segment_index_bytes: 240,
        file_delete_delay_ms: 0,
        retention_ms: -1,
        ..LogConfig::default()
    }
}

fn encode(spec: &[(usize, usize, i64)], seed: &mut u64) -> (BytesMut, Vec<Vec<i64>>) {
    let mut payload = BytesMut::new();
    let mut stamps = vec![];
    for &(count, value_size, ts) in spec {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let value: Vec<u8> = (0..value_size)
            .map(|i| (*seed >> 33) as u8 ^ i as u8)
            .collect();
        let timestamps: Vec<i64> = (0..count).map(|i| T0 + ts + (i as i64 * 7) % 11).collect();
        let records: Vec<RecordSpec<'_>> = timestamps
            .iter()
            .map(|&timestamp| RecordSpec {
                key: Some(b"key"),
                value: Some(&value),
                headers: vec![("h", None)],
                timestamp,
            })
            .collect();
        encode_batch(&mut payload, &records, -1, None);
        stamps.push(timestamps);
    }
    (payload, stamps)
}

fn reopen(dir: &Path, clock: &Arc<ManualClock>) -> PartitionLog {
    open_with_clock(dir, config(), clock)
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let clock = manual_clock();
    clock.set(T0 + 10_000);
    let mut log = reopen(dir.path(), &clock);
    let mut model = Model::default();
    let mut seed = 7u64;
    // Whether the files on disk say "closed cleanly": true after close, false after any change since.
    let mut disk_clean = false;
    for op in ops {
        let mutates = matches!(
            op,
            Op::Append(_)
                | Op::Roll
                | Op::Truncate(_)
                | Op::AdvanceLogStart(_)
                | Op::RetainBytes(_)
                | Op::RetainMs { .. }
        );
        disk_clean &= !mutates;
        match op {
            Op::Append(spec) => {
                let (payload, stamps) = encode(&spec, &mut seed);
                let info = log.append(payload.clone(), CLIENT).unwrap();
                prop_assert_eq!(info.first_offset, model.end);
                let mut pos = 0;
                for timestamps in stamps {
                    let size = BatchHeader::parse(&payload[pos..]).unwrap().total_size();
                    let mut bytes = payload[pos..pos + size].to_vec();
                    set_base_offset(&mut bytes, model.end);
                    let batch = ModelBatch {
                        base: model.end,
                        bytes,
                        timestamps,
                    };
                    model.end = batch.next();
                    model.batches.push(batch);
                    pos += size;
                }
                prop_assert_eq!(info.last_offset, model.end - 1);
            }
            Op::Read {
                at,
                max_bytes,
                min_one,
                bound,
            } => {
                let offset = model.offset_at(at);
                let bound = model.offset_at(bound).max(offset);
                let result = log.read(offset, max_bytes, bound, min_one).unwrap();
                let got: Vec<u8> = result
                    .slices
                    .iter()
                    .flat_map(|s| s.read_to_vec().unwrap())
                    .collect();
                prop_assert_eq!(
                    got,
                    model.read(offset, max_bytes, bound, min_one),
                    "read at {} max {}",
                    offset,
                    max_bytes
                );
                let above = log.read(model.end + 1, 10, i64::MAX, true);
                prop_assert!(
                    matches!(above, Err(LogError::OffsetOutOfRange { .. })),
                    "read above the end: {:?}",
                    above
                );
                if model.start > 0 {
                    let below = log.read(model.start - 1, 10, i64::MAX, true);
                    prop_assert!(
                        matches!(below, Err(LogError::OffsetOutOfRange { .. })),
                        "read below the start: {:?}",
                        below
                    );
                }
            }
            Op::Roll => log.roll().unwrap(),
            Op::Truncate(at) => {
                let offset = model.offset_at(at);
                log.truncate_to(offset).unwrap();
                model.batches.retain(|b| b.next() <= offset);
                model.end = model.batches.last().map_or(model.start, |b| b.next());
                model.end = model.end.max(model.start);
                // A batch straddling the log start offset can be cut entirely: the log then restarts there.
                prop_assert_eq!(log.log_end_offset(), model.end);
            }
            Op::AdvanceLogStart(at) => {
                let offset = model.offset_at(at);
                log.advance_log_start_offset(offset).unwrap();
                model.start = model.start.max(offset);
            }
            Op::RetainBytes(bytes) => {
                let mut c = config();
                c.retention_bytes = bytes as i64;
                log.update_config(c);
                check_retention(&log, &mut model)?;
                log.update_config(config());
            }
            Op::RetainMs { age_ms } => {
                let mut c = config();
                c.retention_ms = age_ms;
                log.update_config(c);
                check_retention(&log, &mut model)?;
                log.update_config(config());
            }
            Op::LookupTimestamp(delta) => {
                let found = log
                    .offset_for_timestamp(T0 + delta)
                    .unwrap()
                    .map(|f| (f.offset, f.timestamp));
                prop_assert_eq!(
                    found,
                    model.first_at_or_after(T0 + delta),
                    "timestamp {}",
                    T0 + delta
                );
            }
            Op::MaxTimestamp => {
                let found = log
                    .max_timestamp_offset()
                    .unwrap()
                    .map(|f| (f.offset, f.timestamp));
                prop_assert_eq!(found, model.max_timestamp());
            }
            Op::Flush => {
                log.flush().unwrap();
                prop_assert_eq!(log.recovery_point(), model.end);
            }
            Op::Reopen { clean } => {
                if clean {
                    log.close().unwrap();
                    disk_clean = true;
                }
                drop(log);
                log = reopen(dir.path(), &clock);
                prop_assert_eq!(log.recovery_report().clean_shutdown, disk_clean);
                if disk_clean {
                    prop_assert_eq!(
                        log.recovery_report().segments_recovered,
                        0,
                        "{:?}",
                        log.recovery_report()
                    );
                }
                prop_assert_eq!(log.recovery_report().bytes_truncated, 0);
            }
        }
        prop_assert_eq!(log.log_end_offset(), model.end);
        prop_assert_eq!(log.log_start_offset(), model.start);
    }
    Ok(())
}

/// Retention removes whole leading segments; the model learns the new start from the log and checks it is
/// legal: never backwards, never past the end, and at a batch boundary.
fn check_retention(log: &PartitionLog, model: &mut Model) -> Result<(), TestCaseError> {
    let before = log.log_start_offset();
    log.enforce_retention().unwrap();
    let after = log.log_start_offset();
    prop_assert!(after >= before && after <= model.end);
    if after != before {
        let first_base = log.segment_base_offsets().first().copied();
        prop_assert_eq!(Some(after), first_base);
        prop_assert!(model.batches.iter().any(|b| b.base == after) || after == model.end);
    }
    model.start = after;
    model.batches.retain(|b| b.next() > after);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_model(ops in prop::collection::vec(op(), 1..60)) {
        run(ops)?;
    }
}

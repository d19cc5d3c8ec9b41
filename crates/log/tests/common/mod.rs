//! Helpers shared by the integration tests: real logs in temp directories, real batches.
#![allow(dead_code, clippy::unwrap_used)]

use bytes::BytesMut;
use ferrite_log::batch::{self, BatchHeader};
use ferrite_log::batch_builder::{encode_batch, RecordSpec};
use ferrite_log::{AppendOrigin, Clock, LogConfig, LogOptions, ManualClock, PartitionLog};
use std::path::Path;
use std::sync::Arc;

pub const T0: i64 = 1_700_000_000_000;

pub const CLIENT: AppendOrigin = AppendOrigin::Client { leader_epoch: -1 };

/// A batch whose records carry their intended offsets in the value ("r<n>"), so reads can be checked exactly.
pub fn tagged_batch(first_tag: i64, count: usize, timestamp: i64, value_pad: usize) -> BytesMut {
    let values: Vec<Vec<u8>> = (0..count)
        .map(|i| {
            let mut v = format!("r{}", first_tag + i as i64).into_bytes();
            v.resize(v.len() + value_pad, b'.');
            v
        })
        .collect();
    let records: Vec<RecordSpec<'_>> = values
        .iter()
        .enumerate()
        .map(|(i, v)| RecordSpec {
            key: Some(b"k"),
            value: Some(v),
            headers: vec![],
            timestamp: timestamp + i as i64,
        })
        .collect();
    let mut out = BytesMut::new();
    encode_batch(&mut out, &records, -1, None);
    out
}

/// Every batch in `bytes`, checked for framing and CRC.
pub fn parse_batches(bytes: &[u8]) -> Vec<BatchHeader> {
    let mut out = vec![];
    let mut pos = 0;
    while pos < bytes.len() {
        let header = batch::check_frame(&bytes[pos..], usize::MAX)
            .unwrap_or_else(|e| panic!("bad batch at {pos}: {e:?}"));
        pos += header.total_size();
        out.push(header);
    }
    out
}

/// Reads everything from `offset` to the log end and returns the batch headers seen.
pub fn read_all(log: &PartitionLog, offset: i64) -> Vec<BatchHeader> {
    let result = log.read(offset, u64::MAX, i64::MAX, true).unwrap();
    let mut bytes = vec![];
    for slice in &result.slices {
        bytes.extend(slice.read_to_vec().unwrap());
    }
    parse_batches(&bytes)
}

pub fn manual_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(T0))
}

pub fn open_with_clock(dir: &Path, config: LogConfig, clock: &Arc<ManualClock>) -> PartitionLog {
    let clock: Arc<dyn Clock> = Arc::clone(clock) as Arc<dyn Clock>;
    PartitionLog::open(dir, config, LogOptions { clock }).unwrap()
}

pub fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 256,
        segment_index_bytes: 4096,
        ..LogConfig::default()
    }
}

//! The records the model writes and how it reads them back out of a real log: every record's value is a
//! unique number, so a record is recognised wherever it lands, and two replicas agree on an offset when
//! they hold the same number there, appended in the same leader epoch.

use bytes::{Bytes, BytesMut};
use ferrite_log::batch::{batches, stored_records_of, walk_records};
use ferrite_log::batch_builder::{encode_batch, RecordSpec};
use ferrite_log::PartitionLog;

/// What sits at one offset of a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// The producer's unique number.
    pub value: u64,
    /// The partition leader epoch of the batch that holds it.
    pub epoch: i32,
}

/// One batch of records whose values are `values`, as a producer sends it.
pub fn batch_of(values: &[u64]) -> Bytes {
    let encoded: Vec<[u8; 8]> = values.iter().map(|v| v.to_be_bytes()).collect();
    let records: Vec<RecordSpec<'_>> = encoded
        .iter()
        .map(|v| RecordSpec {
            key: None,
            value: Some(v),
            headers: vec![],
            timestamp: 1,
        })
        .collect();
    let mut out = BytesMut::new();
    encode_batch(&mut out, &records, -1, None);
    out.freeze()
}

/// The records at offsets `from..to` of `log` (fewer if the log ends or starts inside that range), read
/// through the same path a fetch uses. Offsets in the result are ascending.
pub fn read_range(log: &PartitionLog, from: i64, to: i64) -> Result<Vec<(i64, Stored)>, String> {
    let from = from.max(log.log_start_offset());
    let to = to.min(log.log_end_offset());
    if from >= to {
        return Ok(vec![]);
    }
    let read = log
        .read(from, u64::MAX / 2, to, true)
        .map_err(|e| format!("reading {from}..{to}: {e}"))?;
    let mut bytes = vec![];
    for slice in &read.slices {
        bytes.extend(slice.read_to_vec().map_err(|e| e.to_string())?);
    }
    let mut out = vec![];
    for (position, header) in batches(&bytes) {
        let batch = &bytes[position..position + header.total_size()];
        let body = stored_records_of(&header, batch).map_err(|e| e.to_string())?;
        walk_records(&header, &body, |meta| {
            let offset = header.base_offset + i64::from(meta.offset_delta);
            let value = meta
                .value
                .and_then(|range| body.get(range))
                .and_then(|v| <[u8; 8]>::try_from(v).ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| format!("offset {offset}: not a model record"))?;
            if (from..to).contains(&offset) {
                out.push((
                    offset,
                    Stored {
                        value,
                        epoch: header.partition_leader_epoch,
                    },
                ));
            }
            Ok(())
        })?;
    }
    Ok(out)
}

/// The whole log.
pub fn read_all(log: &PartitionLog) -> Result<Vec<(i64, Stored)>, String> {
    read_range(log, log.log_start_offset(), log.log_end_offset())
}

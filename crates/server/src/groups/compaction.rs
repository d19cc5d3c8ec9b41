//! Keeps `__consumer_offsets` bounded without a log cleaner: the coordinator already holds the live state of
//! every group, so a partition that has grown well past that state is rewritten as a fresh copy of it and the
//! older segments are dropped by moving the log start offset.
//!
//! ```text
//!   [ old segments: every commit ever made ......... ][ roll | live state copy | later commits ... ]
//!                                                        ^ new log start offset (after the copy is synced)
//! ```
//! The copy is synced before the start offset moves, so a crash at any point leaves either the old records (plus
//! perhaps a partial copy, which replays to the same state) or the copy. This runs under the coordinator lock:
//! group requests wait for one rewrite (one write and one fsync of the live state).

use super::offsets_log::{append_to, Record};
use super::{now_ms, GroupCoordinator, Groups};
use ferrite_coordinator::consumer_group_records::ConsumerGroupRecord;
use ferrite_coordinator::group_metadata;
use ferrite_coordinator::offsets::{encode_key, encode_value, partition_for_group};
use ferrite_replication::ReplicaError;

/// A partition is rewritten only past this size...
const MIN_BYTES_BEFORE_REWRITE: u64 = 16 << 20;
/// ...and only once it holds this many times its live state.
const LIVE_STATE_FACTOR: u64 = 4;
/// Records per batch in a rewrite, so each batch stays far below `max.message.bytes`.
const RECORDS_PER_BATCH: usize = 500;

impl GroupCoordinator {
    /// Rewrites every partition that has outgrown its live state; returns how many were rewritten.
    pub fn compact_offsets_topic(&self) -> usize {
        let mut rewritten = 0;
        for index in self.log.loaded_indexes() {
            match self.compact_partition(index, false) {
                Ok(true) => rewritten += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(partition = index, error = %e, "__consumer_offsets rewrite failed");
                }
            }
        }
        rewritten
    }

    /// Rewrites one partition if it is large enough (or `force`); returns whether it did.
    pub(crate) fn compact_partition(&self, index: i32, force: bool) -> Result<bool, ReplicaError> {
        let groups = self.lock();
        let Some(partition) = self.log.partition(index) else {
            return Ok(false);
        };
        let live = live_records(&groups, index, self.log.partition_count());
        let live_bytes: u64 = live
            .iter()
            .map(|(k, v)| (k.len() + v.as_ref().map_or(0, Vec::len)) as u64)
            .sum();
        let size = partition.log().size_bytes();
        if !force && size < MIN_BYTES_BEFORE_REWRITE.max(LIVE_STATE_FACTOR * live_bytes) {
            return Ok(false);
        }
        partition.log().roll()?;
        let start = partition.log_end_offset();
        let now = now_ms();
        for chunk in live.chunks(RECORDS_PER_BATCH) {
            append_to(&partition, chunk, now)?;
        }
        partition.flush_to(partition.log_end_offset())?;
        partition.advance_log_start_offset(start)?;
        tracing::info!(
            partition = index,
            bytes_before = size,
            live_records = live.len(),
            live_bytes,
            "rewrote __consumer_offsets partition to its live state"
        );
        Ok(true)
    }
}

/// The records that rebuild the live state of the groups stored in partition `index`: their committed offsets,
/// then the last record written for each classic group, then the live records of each KIP-848 group (as
/// replaying what was appended for it gives them, which is what the log holds).
fn live_records(groups: &Groups, index: i32, partitions: i32) -> Vec<Record> {
    let mut records: Vec<Record> = groups
        .offsets
        .iter()
        .filter(|(k, _)| partition_for_group(&k.group, partitions) == index)
        .map(|(k, v)| (encode_key(k), Some(encode_value(v))))
        .collect();
    records.extend(
        groups
            .classic
            .iter()
            .filter(|(id, _)| partition_for_group(id, partitions) == index)
            .filter_map(|(id, entry)| {
                let value = entry.persisted_value.clone()?;
                Some((group_metadata::encode_key(id), Some(value)))
            }),
    );
    for (id, entry) in &groups.consumer {
        if partition_for_group(id, partitions) == index {
            let live = entry.persisted.records(id);
            records.extend(live.iter().map(ConsumerGroupRecord::encode));
        }
    }
    records
}

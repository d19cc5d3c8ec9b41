//! Persistence of producer state: a snapshot file written at roll and close, and the replay of batch headers
//! after it when the log is opened or truncated.
//!
//! ```text
//! producer-state-snapshot:  0 / N+1 / <snapshot offset> / <producer line>*   (checkpoint format)
//! ```
//! A snapshot past the log end (after truncation) is ignored and the whole log is replayed instead.

use crate::checkpoint;
use crate::error::Result;
use crate::file_names::PRODUCER_SNAPSHOT;
use crate::partition_log::PartitionLog;
use crate::producer_state::ProducerStates;

/// Producers silent for longer than this (in record time) are forgotten at snapshot time, as with Kafka's
/// `producer.id.expiration.ms` default of one day.
const PRODUCER_EXPIRATION_MS: i64 = 24 * 60 * 60 * 1000;

impl PartitionLog {
    /// Writes the current producer state, as of the log end, atomically and durably.
    pub(crate) fn write_producer_snapshot(&self, states: &mut ProducerStates) -> Result<()> {
        checkpoint::write(
            &self.dir.join(PRODUCER_SNAPSHOT),
            &self.snapshot_lines(states),
        )
    }

    /// The snapshot of the current state as lines, for a roll to hand to the next flush (see
    /// `PartitionLog::roll_locked`).
    pub(crate) fn producer_snapshot_at_roll(&self, states: &mut ProducerStates) -> Vec<Vec<i64>> {
        self.snapshot_lines(states)
    }

    /// Writes snapshot lines captured earlier, atomically and durably.
    pub(crate) fn write_producer_snapshot_lines(&self, lines: &[Vec<i64>]) -> Result<()> {
        checkpoint::write(&self.dir.join(PRODUCER_SNAPSHOT), lines)
    }

    fn snapshot_lines(&self, states: &mut ProducerStates) -> Vec<Vec<i64>> {
        states.expire(self.clock.now_ms().saturating_sub(PRODUCER_EXPIRATION_MS));
        let mut lines = vec![vec![self.log_end_offset()]];
        lines.extend(states.to_lines());
        lines
    }

    /// The snapshot (if usable) plus every batch header after it.
    pub(crate) fn rebuild_producer_state(&self) -> Result<ProducerStates> {
        let path = self.dir.join(PRODUCER_SNAPSHOT);
        let end = self.log_end_offset();
        let snapshot = match checkpoint::read_variable(&path) {
            Ok(Some(lines)) => lines.split_first().and_then(|(head, rest)| {
                let offset = *head.first()?;
                let states = ProducerStates::from_lines(rest)?;
                (offset <= end).then_some((offset, states))
            }),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "unreadable producer snapshot; replaying the whole log");
                None
            }
        };
        let (from, mut states) =
            snapshot.unwrap_or((self.log_start_offset(), ProducerStates::default()));
        let view = self.view();
        for segment in view.segments.values().filter(|s| s.next_offset() > from) {
            let Some(mut location) = segment.find_batch(from)? else {
                continue;
            };
            let limit = segment.size();
            loop {
                if location.header.base_offset >= from {
                    states.update(&location.header);
                }
                location.position += location.header.total_size() as u64;
                match segment.header_at(location.position, limit)? {
                    Some(h) => location.header = h,
                    None => break,
                }
            }
        }
        Ok(states)
    }
}

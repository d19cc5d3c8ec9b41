//! Idempotent-producer state of one partition: for each producer id, its epoch and the last five batches
//! (sequence range and offsets), Kafka's `ProducerStateManager`.
//!
//! The rules, checked for each idempotent batch before it is appended:
//! - an epoch older than the producer's current one is fenced: `InvalidProducerEpoch`;
//! - a newer epoch (or an unknown producer) must start at sequence 0, else `UnknownProducerId` /
//!   `OutOfOrderSequence`;
//! - a batch whose sequence range equals one of the cached five is a retry: it is not written again and the
//!   original offsets are returned;
//! - otherwise the first sequence must follow the last one (wrapping at `i32::MAX`): `OutOfOrderSequence`.
//!
//! State is rebuilt on open from a snapshot (written at roll and close) plus the batch headers after it, so a
//! restart never forgets which batches it already has.

use crate::batch::BatchHeader;
use std::collections::{BTreeMap, VecDeque};

/// How many recent batches per producer are remembered for duplicate detection (Kafka's and clients' bound
/// on in-flight requests).
pub const CACHED_BATCHES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<BatchMetadata>,
}

/// Why an idempotent batch was refused; the server maps these to Kafka errors 45, 47 and 59.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProducerError {
    #[error("producer {producer_id}: sequence {first_seq} does not follow {last_seq}")]
    OutOfOrderSequence {
        producer_id: i64,
        first_seq: i32,
        last_seq: i32,
    },
    #[error("producer {producer_id}: epoch {epoch} is older than current epoch {current}")]
    InvalidProducerEpoch {
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
    #[error("producer {producer_id} is unknown and its batch does not start at sequence 0")]
    UnknownProducerId { producer_id: i64 },
}

/// What to do with an idempotent batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceVerdict {
    Append,
    /// Already in the log at these offsets: answer success without writing.
    Duplicate(BatchMetadata),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStates {
    producers: BTreeMap<i64, ProducerEntry>,
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

/// The sequence of the batch's last record (sequences wrap at `i32::MAX`, as in Kafka).
pub fn last_seq(header: &BatchHeader) -> i32 {
    let last = i64::from(header.base_sequence) + i64::from(header.last_offset_delta);
    if last > i64::from(i32::MAX) {
        (last - i64::from(i32::MAX) - 1) as i32
    } else {
        last as i32
    }
}

impl ProducerStates {
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    pub fn entry(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Checks an idempotent batch (one with a producer id) against the state; changes nothing.
    pub fn check(&self, header: &BatchHeader) -> Result<SequenceVerdict, ProducerError> {
        let producer_id = header.producer_id;
        let (epoch, first_seq) = (header.producer_epoch, header.base_sequence);
        let Some(entry) = self.producers.get(&producer_id) else {
            return if first_seq == 0 {
                Ok(SequenceVerdict::Append)
            } else {
                Err(ProducerError::UnknownProducerId { producer_id })
            };
        };
        if epoch < entry.epoch {
            return Err(ProducerError::InvalidProducerEpoch {
                producer_id,
                epoch,
                current: entry.epoch,
            });
        }
        if epoch > entry.epoch {
            return if first_seq == 0 {
                Ok(SequenceVerdict::Append)
            } else {
                Err(ProducerError::OutOfOrderSequence {
                    producer_id,
                    first_seq,
                    last_seq: -1,
                })
            };
        }
        let last = last_seq(header);
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last)
        {
            return Ok(SequenceVerdict::Duplicate(*dup));
        }
        let expected = entry.batches.back().map_or(0, |b| next_seq(b.last_seq));
        if first_seq != expected {
            let last_seq = entry.batches.back().map_or(-1, |b| b.last_seq);
            return Err(ProducerError::OutOfOrderSequence {
                producer_id,
                first_seq,
                last_seq,
            });
        }
        Ok(SequenceVerdict::Append)
    }

    /// Records a batch that is now in the log (appends, and replay during recovery).
    pub fn update(&mut self, header: &BatchHeader) {
        if !header.has_producer_id() {
            return;
        }
        let entry = self.producers.entry(header.producer_id).or_default();
        if header.producer_epoch != entry.epoch {
            entry.epoch = header.producer_epoch;
            entry.batches.clear();
        }
        entry.batches.push_back(BatchMetadata {
            first_seq: header.base_sequence,
            last_seq: last_seq(header),
            first_offset: header.base_offset,
            last_offset: header.last_offset(),
            max_timestamp: header.max_timestamp,
        });
        while entry.batches.len() > CACHED_BATCHES {
            entry.batches.pop_front();
        }
    }

    /// Drops producers whose newest batch is older than `min_timestamp` (Kafka's producer.id.expiration.ms).
    pub fn expire(&mut self, min_timestamp: i64) {
        self.producers.retain(|_, e| {
            e.batches
                .back()
                .is_some_and(|b| b.max_timestamp >= min_timestamp)
        });
    }

    /// Snapshot lines: `producer_id epoch [first_seq last_seq first_offset last_offset max_timestamp]*`.
    pub(crate) fn to_lines(&self) -> Vec<Vec<i64>> {
        self.producers
            .iter()
            .map(|(&pid, e)| {
                let mut line = vec![pid, i64::from(e.epoch)];
                for b in &e.batches {
                    line.extend([
                        i64::from(b.first_seq),
                        i64::from(b.last_seq),
                        b.first_offset,
                        b.last_offset,
                        b.max_timestamp,
                    ]);
                }
                line
            })
            .collect()
    }

    pub(crate) fn from_lines(lines: &[Vec<i64>]) -> Option<Self> {
        let mut producers = BTreeMap::new();
        for line in lines {
            if line.len() < 2 || (line.len() - 2) % 5 != 0 {
                return None;
            }
            let epoch = i16::try_from(line[1]).ok()?;
            let batches = line[2..]
                .chunks(5)
                .map(|c| {
                    Some(BatchMetadata {
                        first_seq: i32::try_from(c[0]).ok()?,
                        last_seq: i32::try_from(c[1]).ok()?,
                        first_offset: c[2],
                        last_offset: c[3],
                        max_timestamp: c[4],
                    })
                })
                .collect::<Option<VecDeque<_>>>()?;
            producers.insert(line[0], ProducerEntry { epoch, batches });
        }
        Some(ProducerStates { producers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pid: i64, epoch: i16, first_seq: i32, records: i32, base_offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: records - 1,
            base_timestamp: 1000,
            max_timestamp: 1000 + base_offset,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: first_seq,
            records_count: records,
        }
    }

    #[test]
    fn in_order_duplicates_gaps_and_epochs() {
        let mut s = ProducerStates::default();
        assert_eq!(
            s.check(&header(7, 0, 3, 1, 0)),
            Err(ProducerError::UnknownProducerId { producer_id: 7 })
        );
        let first = header(7, 0, 0, 3, 0);
        assert_eq!(s.check(&first), Ok(SequenceVerdict::Append));
        s.update(&first);
        let second = header(7, 0, 3, 2, 3);
        assert_eq!(s.check(&second), Ok(SequenceVerdict::Append));
        s.update(&second);
        // A retry of the first batch is a duplicate, answered with the original offsets.
        match s.check(&header(7, 0, 0, 3, 99)) {
            Ok(SequenceVerdict::Duplicate(m)) => {
                assert_eq!((m.first_offset, m.last_offset), (0, 2))
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(
                s.check(&header(7, 0, 9, 1, 5)),
                Err(ProducerError::OutOfOrderSequence { .. })
            ),
            "gap"
        );
        assert!(
            matches!(
                s.check(&header(7, 0, 4, 1, 5)),
                Err(ProducerError::OutOfOrderSequence { .. })
            ),
            "overlap"
        );
        // A new epoch starts over at 0; the old epoch is fenced from then on.
        assert!(matches!(
            s.check(&header(7, 1, 5, 1, 5)),
            Err(ProducerError::OutOfOrderSequence { .. })
        ));
        let bumped = header(7, 1, 0, 1, 5);
        assert_eq!(s.check(&bumped), Ok(SequenceVerdict::Append));
        s.update(&bumped);
        assert!(matches!(
            s.check(&header(7, 0, 5, 1, 6)),
            Err(ProducerError::InvalidProducerEpoch { .. })
        ));
    }

    #[test]
    fn only_the_last_five_batches_are_remembered_and_sequences_wrap() {
        let mut s = ProducerStates::default();
        for i in 0..7 {
            s.update(&header(1, 0, i, 1, i64::from(i)));
        }
        assert!(matches!(
            s.check(&header(1, 0, 6, 1, 0)),
            Ok(SequenceVerdict::Duplicate(_))
        ));
        assert!(matches!(
            s.check(&header(1, 0, 2, 1, 0)),
            Ok(SequenceVerdict::Duplicate(_))
        ));
        assert!(
            matches!(
                s.check(&header(1, 0, 1, 1, 0)),
                Err(ProducerError::OutOfOrderSequence { .. })
            ),
            "forgotten"
        );
        let mut w = ProducerStates::default();
        w.update(&header(2, 0, i32::MAX - 1, 2, 0));
        assert_eq!(
            w.entry(2)
                .and_then(|e| e.batches.back())
                .map(|b| b.last_seq),
            Some(i32::MAX)
        );
        assert_eq!(
            w.check(&header(2, 0, 0, 1, 2)),
            Ok(SequenceVerdict::Append),
            "wraps to 0"
        );
    }

    #[test]
    fn snapshot_lines_round_trip() {
        let mut s = ProducerStates::default();
        s.update(&header(1, 3, 0, 2, 10));
        s.update(&header(1, 3, 2, 1, 12));
        s.update(&header(9, 0, 0, 1, 13));
        assert_eq!(ProducerStates::from_lines(&s.to_lines()), Some(s.clone()));
        assert_eq!(ProducerStates::from_lines(&[vec![1, 2, 3]]), None);
        s.expire(1012);
        assert_eq!(s.len(), 2);
        s.expire(1013);
        assert_eq!(s.len(), 1);
    }
}

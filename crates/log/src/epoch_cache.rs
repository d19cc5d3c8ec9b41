//! Leader epoch cache: for each leader epoch, the first offset written in it.
//!
//! Followers use it (through OffsetForLeaderEpoch) to find where their log diverges from the leader's, and
//! librdkafka uses it to validate its position after a leader change. Invariant: epochs and start offsets
//! both strictly increase. Appends extend it from each batch's partition leader epoch; truncation at the end
//! (`truncate_to`) and at the start (log start offset moving) trim it. Persisted in `leader-epoch-checkpoint`.

/// One entry: `epoch` started at `start_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

/// Answer to "where does epoch E end", as OffsetForLeaderEpoch needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEndOffset {
    /// The largest epoch <= the requested one that this log knows, or -1 if none.
    pub epoch: i32,
    /// The first offset after that epoch (the log end offset for the latest epoch), or -1 if unknown.
    pub end_offset: i64,
}

pub const UNDEFINED_EPOCH_END: EpochEndOffset = EpochEndOffset {
    epoch: -1,
    end_offset: -1,
};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderEpochCache {
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    pub fn from_entries(mut entries: Vec<EpochEntry>) -> Self {
        // Drop anything that violates the invariant rather than trusting a hand-edited or damaged file.
        entries.sort_by_key(|e| e.epoch);
        let mut clean: Vec<EpochEntry> = Vec::with_capacity(entries.len());
        for e in entries {
            if clean
                .last()
                .is_none_or(|l| e.epoch > l.epoch && e.start_offset > l.start_offset)
            {
                clean.push(e);
            }
        }
        LeaderEpochCache { entries: clean }
    }

    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset`. Returns whether the cache changed (and must be persisted).
    /// An epoch older than the latest is ignored, as Kafka does: it can only come from a stale leader.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 {
            return false;
        }
        match self.entries.last() {
            Some(last) if epoch <= last.epoch => false,
            _ => {
                // A new epoch starting at or before an existing start would break monotonicity: drop those.
                self.entries.retain(|e| e.start_offset < start_offset);
                self.entries.push(EpochEntry {
                    epoch,
                    start_offset,
                });
                true
            }
        }
    }

    /// Removes entries that start at or after `end_offset` (the log was truncated to it).
    pub fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < end_offset);
        self.entries.len() != before
    }

    /// The log now starts at `start_offset`: entries before it collapse into one entry starting there.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> bool {
        let first_kept = self
            .entries
            .iter()
            .position(|e| e.start_offset >= start_offset)
            .unwrap_or(self.entries.len());
        if first_kept == 0 {
            return false;
        }
        let mut last_before = self.entries[first_kept - 1];
        let changed = last_before.start_offset != start_offset || first_kept > 1;
        last_before.start_offset = start_offset;
        let keep_covering = self
            .entries
            .get(first_kept)
            .is_none_or(|next| next.start_offset > start_offset);
        let mut rest = self.entries.split_off(first_kept);
        self.entries.clear();
        if keep_covering {
            self.entries.push(last_before);
        }
        self.entries.append(&mut rest);
        changed
    }

    /// Kafka's `endOffsetFor`: the largest known epoch <= `requested` and the offset where it ended.
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> EpochEndOffset {
        let Some(latest) = self.entries.last() else {
            return UNDEFINED_EPOCH_END;
        };
        if requested >= latest.epoch {
            // The current epoch has not ended: it ends where the log ends.
            return EpochEndOffset {
                epoch: latest.epoch,
                end_offset: log_end_offset,
            };
        }
        match self.entries.iter().position(|e| e.epoch > requested) {
            Some(0) | None => UNDEFINED_EPOCH_END,
            Some(i) => EpochEndOffset {
                epoch: self.entries[i - 1].epoch,
                end_offset: self.entries[i].start_offset,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(pairs: &[(i32, i64)]) -> LeaderEpochCache {
        LeaderEpochCache::from_entries(
            pairs
                .iter()
                .map(|&(epoch, start_offset)| EpochEntry {
                    epoch,
                    start_offset,
                })
                .collect(),
        )
    }

    fn pairs(c: &LeaderEpochCache) -> Vec<(i32, i64)> {
        c.entries()
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect()
    }

    #[test]
    fn assign_only_moves_forward() {
        let mut c = LeaderEpochCache::default();
        assert!(c.assign(1, 0));
        assert!(!c.assign(1, 10), "same epoch again");
        assert!(!c.assign(0, 20), "older epoch");
        assert!(!c.assign(-1, 20), "no epoch");
        assert!(c.assign(3, 20));
        assert_eq!(pairs(&c), vec![(1, 0), (3, 20)]);
    }

    #[test]
    fn end_offsets() {
        let c = cache(&[(1, 0), (3, 20), (4, 35)]);
        let table = [
            (0, UNDEFINED_EPOCH_END),
            (
                1,
                EpochEndOffset {
                    epoch: 1,
                    end_offset: 20,
                },
            ),
            (
                2,
                EpochEndOffset {
                    epoch: 1,
                    end_offset: 20,
                },
            ),
            (
                3,
                EpochEndOffset {
                    epoch: 3,
                    end_offset: 35,
                },
            ),
            (
                4,
                EpochEndOffset {
                    epoch: 4,
                    end_offset: 50,
                },
            ),
            (
                9,
                EpochEndOffset {
                    epoch: 4,
                    end_offset: 50,
                },
            ),
        ];
        for (requested, expected) in table {
            assert_eq!(
                c.end_offset_for(requested, 50),
                expected,
                "epoch {requested}"
            );
        }
        assert_eq!(
            LeaderEpochCache::default().end_offset_for(1, 5),
            UNDEFINED_EPOCH_END
        );
    }

    #[test]
    fn truncation_from_end() {
        let mut c = cache(&[(1, 0), (3, 20), (4, 35)]);
        assert!(c.truncate_from_end(35));
        assert_eq!(pairs(&c), vec![(1, 0), (3, 20)]);
        assert!(!c.truncate_from_end(30));
        assert!(c.truncate_from_end(0));
        assert!(pairs(&c).is_empty());
    }

    #[test]
    fn truncation_from_start() {
        let mut c = cache(&[(1, 0), (3, 20), (4, 35)]);
        assert!(c.truncate_from_start(25));
        assert_eq!(pairs(&c), vec![(3, 25), (4, 35)]);
        assert!(!c.truncate_from_start(10));
        assert!(c.truncate_from_start(35));
        assert_eq!(pairs(&c), vec![(4, 35)]);
        assert!(c.truncate_from_start(40));
        assert_eq!(pairs(&c), vec![(4, 40)]);
    }

    #[test]
    fn from_entries_drops_non_monotonic() {
        assert_eq!(
            pairs(&cache(&[(1, 10), (2, 5), (3, 20)])),
            vec![(1, 10), (3, 20)]
        );
    }
}

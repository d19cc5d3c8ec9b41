//! Time index: the largest timestamp seen so far in a segment -> relative offset of the batch that carried it.
//! Timestamps only grow, so "where does time T start" is a floor search followed by a short scan of the log.

use super::floor_search;
use super::mmap_file::MmapEntryFile;
use crate::error::{LogError, Result};
use std::path::Path;

const ENTRY: usize = 12;

pub(crate) struct TimeIndex {
    base_offset: i64,
    file: MmapEntryFile<ENTRY>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimestampOffset {
    pub timestamp: i64,
    pub offset: i64,
}

impl TimeIndex {
    pub(crate) fn open(
        path: &Path,
        base_offset: i64,
        max_bytes: u64,
        writable: bool,
    ) -> Result<Self> {
        Ok(TimeIndex {
            base_offset,
            file: MmapEntryFile::open(path, max_bytes, writable)?,
        })
    }

    fn decode(&self, i: usize) -> TimestampOffset {
        let e = self.file.entry(i);
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&e[..8]);
        let rel = u32::from_be_bytes([e[8], e[9], e[10], e[11]]);
        TimestampOffset {
            timestamp: i64::from_be_bytes(ts),
            offset: self.base_offset + i64::from(rel),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.file.len()
    }

    pub(crate) fn is_full(&self) -> bool {
        self.file.is_full()
    }

    pub(crate) fn last(&self) -> Option<TimestampOffset> {
        self.len().checked_sub(1).map(|i| self.decode(i))
    }

    /// The entry with the largest timestamp <= `timestamp`; the segment start when there is none.
    pub(crate) fn lookup(&self, timestamp: i64) -> TimestampOffset {
        match floor_search(self.len(), timestamp, |i| self.decode(i).timestamp) {
            Some(i) => self.decode(i),
            None => TimestampOffset {
                timestamp: -1,
                offset: self.base_offset,
            },
        }
    }

    /// Adds an entry if the timestamp is larger than the last one (the index is monotonic); otherwise a no-op.
    pub(crate) fn maybe_append(&self, timestamp: i64, offset: i64) -> Result<()> {
        if let Some(last) = self.last() {
            if timestamp <= last.timestamp {
                return Ok(());
            }
            if offset < last.offset {
                return Err(LogError::InvalidArgument(format!(
                    "time index offset {offset} goes backwards"
                )));
            }
        }
        let rel = u32::try_from(offset - self.base_offset).map_err(|_| {
            LogError::InvalidArgument(format!("offset {offset} not representable in time index"))
        })?;
        let mut entry = [0u8; ENTRY];
        entry[..8].copy_from_slice(&timestamp.to_be_bytes());
        entry[8..].copy_from_slice(&rel.to_be_bytes());
        self.file.push(entry)
    }

    /// Drops entries for offsets >= `offset`.
    pub(crate) fn truncate_to(&self, offset: i64) {
        let mut keep = self.len();
        while keep > 0 && self.decode(keep - 1).offset >= offset {
            keep -= 1;
        }
        self.file.truncate_entries(keep);
    }

    pub(crate) fn sanity_check_size(&self) -> std::result::Result<(), String> {
        if self.file.is_torn() {
            return Err(format!(
                "{} is not a whole number of entries",
                self.file.path().display()
            ));
        }
        Ok(())
    }

    pub(crate) fn sanity_check(&self) -> std::result::Result<(), String> {
        if self.len() > 1 {
            let (a, b) = (self.decode(self.len() - 2), self.decode(self.len() - 1));
            if a.timestamp >= b.timestamp || a.offset > b.offset {
                return Err("last time index entries out of order".into());
            }
        }
        match self.last() {
            Some(last) if last.offset < self.base_offset => {
                Err("time index entry below base offset".into())
            }
            _ => Ok(()),
        }
    }

    pub(crate) fn flush(&self) -> Result<()> {
        self.file.flush()
    }

    pub(crate) fn trim(&self) -> Result<()> {
        self.file.trim()
    }

    pub(crate) fn sync(&self) -> Result<()> {
        self.file.sync()
    }

    pub(crate) fn path(&self) -> &Path {
        self.file.path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_appends_and_lookup() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = TimeIndex::open(&dir.path().join("0.timeindex"), 50, 1200, true).expect("open");
        index.maybe_append(1000, 50).expect("append");
        index.maybe_append(900, 55).expect("ignored: older");
        index.maybe_append(2000, 60).expect("append");
        assert_eq!(index.len(), 2);
        assert_eq!(
            index.lookup(999),
            TimestampOffset {
                timestamp: -1,
                offset: 50
            }
        );
        assert_eq!(
            index.lookup(1500),
            TimestampOffset {
                timestamp: 1000,
                offset: 50
            }
        );
        assert_eq!(
            index.lookup(2000),
            TimestampOffset {
                timestamp: 2000,
                offset: 60
            }
        );
        index.truncate_to(60);
        assert_eq!(index.len(), 1);
    }
}

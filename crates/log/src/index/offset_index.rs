//! Offset index: relative offset of a batch's first offset -> byte position of that batch in the `.log`.

use super::floor_search;
use super::mmap_file::MmapEntryFile;
use crate::error::{LogError, Result};
use std::path::Path;

const ENTRY: usize = 8;

pub(crate) struct OffsetIndex {
    base_offset: i64,
    file: MmapEntryFile<ENTRY>,
}

/// One entry: the batch starting at `offset` begins at `position`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetPosition {
    pub offset: i64,
    pub position: u32,
}

impl OffsetIndex {
    pub(crate) fn open(
        path: &Path,
        base_offset: i64,
        max_bytes: u64,
        writable: bool,
    ) -> Result<Self> {
        Ok(OffsetIndex {
            base_offset,
            file: MmapEntryFile::open(path, max_bytes, writable)?,
        })
    }

    fn decode(&self, i: usize) -> OffsetPosition {
        let e = self.file.entry(i);
        let rel = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
        let position = u32::from_be_bytes([e[4], e[5], e[6], e[7]]);
        OffsetPosition {
            offset: self.base_offset + i64::from(rel),
            position,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.file.len()
    }

    pub(crate) fn is_full(&self) -> bool {
        self.file.is_full()
    }

    pub(crate) fn last(&self) -> Option<OffsetPosition> {
        self.len().checked_sub(1).map(|i| self.decode(i))
    }

    /// The entry with the largest offset <= `offset`; the segment start when there is none.
    pub(crate) fn lookup(&self, offset: i64) -> OffsetPosition {
        let len = self.len();
        match floor_search(len, offset, |i| self.decode(i).offset) {
            Some(i) => self.decode(i),
            None => OffsetPosition {
                offset: self.base_offset,
                position: 0,
            },
        }
    }

    /// The last entry whose batch starts at or before `position` and below `max_offset`: where a reader can
    /// resume walking batch headers near the end of a byte budget instead of walking every batch before it.
    pub(crate) fn last_entry_within(
        &self,
        position: u64,
        max_offset: i64,
    ) -> Option<OffsetPosition> {
        let len = self.len();
        let by_position = floor_search(len, position.min(i64::MAX as u64) as i64, |i| {
            i64::from(self.decode(i).position)
        });
        let by_offset = floor_search(len, max_offset.saturating_sub(1), |i| self.decode(i).offset);
        by_position
            .zip(by_offset)
            .map(|(a, b)| self.decode(a.min(b)))
    }

    /// Adds an entry; offsets and positions must both grow, or the entry is refused.
    pub(crate) fn append(&self, offset: i64, position: u32) -> Result<()> {
        let rel = offset - self.base_offset;
        let rel = u32::try_from(rel).map_err(|_| {
            LogError::InvalidArgument(format!("offset {offset} not representable in index"))
        })?;
        if let Some(last) = self.last() {
            if offset <= last.offset || position <= last.position {
                return Err(LogError::InvalidArgument(format!(
                    "index entry ({offset}, {position}) does not follow ({}, {})",
                    last.offset, last.position
                )));
            }
        }
        let mut entry = [0u8; ENTRY];
        entry[..4].copy_from_slice(&rel.to_be_bytes());
        entry[4..].copy_from_slice(&position.to_be_bytes());
        self.file.push(entry)
    }

    pub(crate) fn truncate_entries_all(&self) {
        self.file.truncate_entries(0);
    }

    /// Drops entries for offsets >= `offset`.
    pub(crate) fn truncate_to(&self, offset: i64) {
        let keep =
            floor_search(self.len(), offset - 1, |i| self.decode(i).offset).map_or(0, |i| i + 1);
        self.file.truncate_entries(keep);
    }

    /// Cheap consistency check for an index that is trusted at open: entries in order, last inside the log.
    pub(crate) fn sanity_check_size(&self) -> std::result::Result<(), String> {
        if self.file.is_torn() {
            return Err(format!(
                "{} is not a whole number of entries",
                self.file.path().display()
            ));
        }
        Ok(())
    }

    pub(crate) fn sanity_check(&self, log_size: u64) -> std::result::Result<(), String> {
        let Some(last) = self.last() else {
            return Ok(());
        };
        if u64::from(last.position) >= log_size.max(1) {
            return Err(format!(
                "last entry position {} beyond log size {log_size}",
                last.position
            ));
        }
        if self.len() > 1 {
            let prev = self.decode(self.len() - 2);
            if prev.offset >= last.offset || prev.position >= last.position {
                return Err("last entries out of order".into());
            }
        }
        if self.len() > 0 && self.decode(0).offset < self.base_offset {
            return Err("first entry below base offset".into());
        }
        Ok(())
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
    fn append_lookup_truncate_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.index");
        let index = OffsetIndex::open(&path, 100, 1024, true).expect("open");
        assert_eq!(
            index.lookup(150),
            OffsetPosition {
                offset: 100,
                position: 0
            }
        );
        index.append(110, 4096).expect("append");
        index.append(120, 8192).expect("append");
        index.append(130, 12288).expect("append");
        assert!(index.append(125, 20000).is_err(), "offsets must grow");
        assert!(index.append(140, 100).is_err(), "positions must grow");
        assert_eq!(
            index.lookup(109),
            OffsetPosition {
                offset: 100,
                position: 0
            }
        );
        assert_eq!(
            index.lookup(125),
            OffsetPosition {
                offset: 120,
                position: 8192
            }
        );
        assert_eq!(
            index.lookup(999),
            OffsetPosition {
                offset: 130,
                position: 12288
            }
        );
        index.truncate_to(121);
        assert_eq!(index.len(), 2);
        index.truncate_to(120);
        assert_eq!(index.len(), 1);
        index.trim().expect("trim");
        drop(index);
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), 8);
        let reopened = OffsetIndex::open(&path, 100, 1024, false).expect("reopen");
        assert_eq!(reopened.len(), 1);
        assert_eq!(
            reopened.lookup(115),
            OffsetPosition {
                offset: 110,
                position: 4096
            }
        );
    }

    #[test]
    fn full_index_refuses_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = OffsetIndex::open(&dir.path().join("0.index"), 0, 16, true).expect("open");
        index.append(1, 1).expect("first");
        index.append(2, 2).expect("second");
        assert!(index.is_full());
        assert!(index.append(3, 3).is_err());
    }
}

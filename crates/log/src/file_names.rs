//! Every file name the log writes, in one place.
//!
//! ```text
//! <data-dir>/<topic>-<partition>/
//!     00000000000000000000.log          record batches, as received, offsets assigned
//!     00000000000000000000.index        sparse offset index   (u32 relative offset, u32 position)
//!     00000000000000000000.timeindex    sparse time index     (i64 timestamp, u32 relative offset)
//!     00000000000000004096.log          next segment, named by its base offset
//!     recovery-point-offset-checkpoint  offset below which data is known flushed (+ clean-shutdown flag)
//!     log-start-offset-checkpoint       first offset readers may see
//!     leader-epoch-checkpoint           leader epoch -> first offset of that epoch
//!     producer-state-snapshot           idempotent producers' last batches, as of an offset
//!     *.deleted                         segment files waiting for file.delete.delay.ms before unlink
//!     *.cleaned / *.swap                temporaries of a segment replacement (compaction)
//!     *.tmp                             checkpoint being written
//! ```

use std::path::{Path, PathBuf};

pub const LOG_SUFFIX: &str = ".log";
pub const INDEX_SUFFIX: &str = ".index";
pub const TIME_INDEX_SUFFIX: &str = ".timeindex";
pub const TXN_INDEX_SUFFIX: &str = ".txnindex";
pub const DELETED_SUFFIX: &str = ".deleted";
pub const CLEANED_SUFFIX: &str = ".cleaned";
pub const SWAP_SUFFIX: &str = ".swap";
pub const TMP_SUFFIX: &str = ".tmp";

pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";
pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";
pub const PRODUCER_SNAPSHOT: &str = "producer-state-snapshot";

/// Kafka's 20-digit zero-padded form, so that names sort in offset order.
pub fn offset_file_stem(offset: i64) -> String {
    format!("{offset:020}")
}

pub fn log_file(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{}{LOG_SUFFIX}", offset_file_stem(base_offset)))
}

pub fn index_file(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{}{INDEX_SUFFIX}", offset_file_stem(base_offset)))
}

pub fn time_index_file(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!(
        "{}{TIME_INDEX_SUFFIX}",
        offset_file_stem(base_offset)
    ))
}

/// The directory of one partition: `<topic>-<partition>`, as in Kafka.
pub fn partition_dir(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

/// Appends a suffix such as `.deleted` to a file name.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// What kind of file a directory entry is, with the base offset its name carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentFileKind {
    Log,
    Index,
    TimeIndex,
    TxnIndex,
}

/// A directory entry recognised as a segment file, possibly with a temporary suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedName {
    pub base_offset: i64,
    pub kind: SegmentFileKind,
    /// `.deleted`, `.cleaned` or `.swap`, if present.
    pub temp_suffix: Option<&'static str>,
}

/// Parses `00000000000000000042.log[.swap]`; `None` for anything that is not a segment file.
pub fn parse_segment_file_name(name: &str) -> Option<ParsedName> {
    let mut rest = name;
    let mut temp_suffix = None;
    for suffix in [DELETED_SUFFIX, CLEANED_SUFFIX, SWAP_SUFFIX] {
        if let Some(stripped) = rest.strip_suffix(suffix) {
            rest = stripped;
            temp_suffix = Some(suffix);
            break;
        }
    }
    let (stem, kind) = if let Some(s) = rest.strip_suffix(LOG_SUFFIX) {
        (s, SegmentFileKind::Log)
    } else if let Some(s) = rest.strip_suffix(TIME_INDEX_SUFFIX) {
        (s, SegmentFileKind::TimeIndex)
    } else if let Some(s) = rest.strip_suffix(TXN_INDEX_SUFFIX) {
        (s, SegmentFileKind::TxnIndex)
    } else if let Some(s) = rest.strip_suffix(INDEX_SUFFIX) {
        (s, SegmentFileKind::Index)
    } else {
        return None;
    };
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let base_offset = stem.parse::<i64>().ok()?;
    Some(ParsedName {
        base_offset,
        kind,
        temp_suffix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let dir = Path::new("/d");
        let log = log_file(dir, 42);
        assert_eq!(log, Path::new("/d/00000000000000000042.log"));
        let name = log.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        assert_eq!(
            parse_segment_file_name(name),
            Some(ParsedName {
                base_offset: 42,
                kind: SegmentFileKind::Log,
                temp_suffix: None
            })
        );
        assert_eq!(
            parse_segment_file_name("00000000000000000007.timeindex.swap"),
            Some(ParsedName {
                base_offset: 7,
                kind: SegmentFileKind::TimeIndex,
                temp_suffix: Some(SWAP_SUFFIX)
            })
        );
        assert_eq!(parse_segment_file_name("leader-epoch-checkpoint"), None);
        assert_eq!(parse_segment_file_name("42.log"), None);
        assert_eq!(parse_segment_file_name("0000000000000000004x.log"), None);
    }
}

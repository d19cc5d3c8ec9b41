//! Errors of the partition log. The server maps these to Kafka error codes; this crate knows nothing of them.

use std::io;
use std::path::PathBuf;

/// Why a batch (or a produce payload of several batches) was refused before anything was written.
///
/// Each variant corresponds to one Kafka error a client acts on; the mapping lives in the server.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ValidationError {
    /// Framing or checksum damage: Kafka's CORRUPT_MESSAGE.
    #[error("corrupt record batch at byte {position}: {reason}")]
    Corrupt {
        position: usize,
        reason: &'static str,
    },
    /// A batch larger than `max.message.bytes`: MESSAGE_TOO_LARGE.
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    TooLarge { size: usize, max: usize },
    /// Well framed but semantically wrong (magic, counts): INVALID_RECORD.
    #[error("invalid record batch at byte {position}: {reason}")]
    InvalidRecord { position: usize, reason: String },
    /// A timestamp outside the window allowed by `message.timestamp.before/after.max.ms`: INVALID_TIMESTAMP.
    #[error("timestamp {timestamp} is outside the allowed window around broker time {now}")]
    InvalidTimestamp { timestamp: i64, now: i64 },
}

/// Errors from log operations.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// An idempotent batch out of sequence or from a fenced epoch.
    #[error(transparent)]
    Producer(#[from] crate::producer_state::ProducerError),
    /// The requested offset is below the log start offset or above the log end offset.
    #[error("offset {offset} is out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    /// A previous fsync failed: the state of the page cache versus the disk is unknown, so the log refuses
    /// further writes until it is reopened (and recovered). See fjall's `Poisoned` and the fsyncgate discussion.
    #[error("log {0} is poisoned by an earlier failed fsync or torn write; reopen it to recover")]
    Poisoned(PathBuf),
    /// A write failed and the bytes it may have left in the segment could not be cut off: the log is
    /// poisoned (see [`LogError::Poisoned`]) and recovers at the next open, which drops the partial batch.
    #[error(
        "a failed write left a partial batch in {0} that could not be removed; the log is poisoned"
    )]
    TornWrite(PathBuf),
    /// The log has been closed or deleted.
    #[error("log {0} is closed")]
    Closed(PathBuf),
    /// A caller passed an argument that makes no sense (for example truncating above the end).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A file on disk is not what this crate wrote and could not be repaired.
    #[error("corrupt file {path}: {reason}")]
    CorruptFile { path: PathBuf, reason: String },
    #[error("I/O error on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

pub type Result<T, E = LogError> = std::result::Result<T, E>;

/// Attaches the path to an `io::Error`, so an operator reading the log line knows which file failed.
pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| LogError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

//! The per-log settings this crate acts on, with Kafka's topic-config defaults.
//!
//! Parsing Kafka config names and validating ranges is the server's job; this struct is what it hands the log.
//! It is swapped whole (see [`crate::PartitionLog::update_config`]), so a live change never tears.

/// `message.timestamp.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    /// Keep the producer's timestamps (Kafka's default).
    #[default]
    CreateTime,
    /// Overwrite the batch timestamps with the broker's clock at append.
    LogAppendTime,
}

/// How appends reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Kafka's `flush.messages` / `flush.ms`: fsync once this many messages, or this much time, has accumulated
    /// since the last flush. `i64::MAX` for both (Kafka's defaults) leaves it to the OS.
    Periodic { messages: u64, interval_ms: i64 },
    /// An append returns only once its bytes are on disk (`fdatasync`). Concurrent appenders share one sync
    /// (group commit). `flush.messages=1` selects this mode.
    Durable,
}

impl FlushPolicy {
    /// Kafka's semantics of the two settings, with `flush.messages=1` meaning "every append is synced".
    pub fn from_kafka(flush_messages: i64, flush_ms: i64) -> Self {
        if flush_messages == 1 || flush_ms == 0 {
            FlushPolicy::Durable
        } else {
            FlushPolicy::Periodic {
                messages: u64::try_from(flush_messages).unwrap_or(u64::MAX),
                interval_ms: flush_ms.max(0),
            }
        }
    }
}

impl Default for FlushPolicy {
    fn default() -> Self {
        FlushPolicy::Periodic {
            messages: i64::MAX as u64,
            interval_ms: i64::MAX,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when the active segment would grow past this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment spans more than this much (record) time.
    pub segment_ms: i64,
    /// `segment.index.bytes`: size each index file is preallocated to; a full index rolls the segment.
    pub segment_index_bytes: u64,
    /// `index.interval.bytes`: bytes of log between two offset-index entries.
    pub index_interval_bytes: u64,
    /// `max.message.bytes`: largest batch accepted.
    pub max_message_bytes: usize,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms`: how far in the past a CreateTime timestamp may be.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: how far in the future a CreateTime timestamp may be.
    pub timestamp_after_max_ms: i64,
    /// `retention.ms`; negative means unlimited.
    pub retention_ms: i64,
    /// `retention.bytes` per partition; negative means unlimited.
    pub retention_bytes: i64,
    /// `flush.messages` / `flush.ms`.
    pub flush: FlushPolicy,
    /// `file.delete.delay.ms`: how long a deleted segment stays as `.deleted` before it is unlinked.
    pub file_delete_delay_ms: i64,
}

pub const DEFAULT_SEGMENT_BYTES: u64 = 1024 * 1024 * 1024;
pub const DEFAULT_SEGMENT_MS: i64 = 7 * 24 * 60 * 60 * 1000;
pub const DEFAULT_SEGMENT_INDEX_BYTES: u64 = 10 * 1024 * 1024;
pub const DEFAULT_INDEX_INTERVAL_BYTES: u64 = 4096;
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1_048_588;
pub const DEFAULT_TIMESTAMP_AFTER_MAX_MS: i64 = 3_600_000;
pub const DEFAULT_RETENTION_MS: i64 = 7 * 24 * 60 * 60 * 1000;
pub const DEFAULT_FILE_DELETE_DELAY_MS: i64 = 60_000;

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            segment_ms: DEFAULT_SEGMENT_MS,
            segment_index_bytes: DEFAULT_SEGMENT_INDEX_BYTES,
            index_interval_bytes: DEFAULT_INDEX_INTERVAL_BYTES,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            timestamp_type: TimestampType::CreateTime,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: DEFAULT_TIMESTAMP_AFTER_MAX_MS,
            retention_ms: DEFAULT_RETENTION_MS,
            retention_bytes: -1,
            flush: FlushPolicy::default(),
            file_delete_delay_ms: DEFAULT_FILE_DELETE_DELAY_MS,
        }
    }
}

impl LogConfig {
    /// Positions in the offset index are u32, so a segment can never exceed 4 GiB; Kafka caps segment.bytes at
    /// i32::MAX. Clamp here so that a bad value can never overflow an index entry.
    pub fn effective_segment_bytes(&self) -> u64 {
        self.segment_bytes.clamp(64, i32::MAX as u64)
    }

    /// Index files are at least one entry long, and a whole number of entries.
    pub fn effective_index_bytes(&self) -> u64 {
        self.segment_index_bytes.max(64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_policy_from_kafka_settings() {
        assert_eq!(
            FlushPolicy::from_kafka(i64::MAX, i64::MAX),
            FlushPolicy::default()
        );
        assert_eq!(FlushPolicy::from_kafka(1, i64::MAX), FlushPolicy::Durable);
        assert_eq!(FlushPolicy::from_kafka(i64::MAX, 0), FlushPolicy::Durable);
        assert_eq!(
            FlushPolicy::from_kafka(100, 1000),
            FlushPolicy::Periodic {
                messages: 100,
                interval_ms: 1000
            }
        );
    }
}

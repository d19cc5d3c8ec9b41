//! `ferrite-log`: the storage engine for one Kafka topic partition.
//!
//! ```text
//! PartitionLog            single writer, lock-free readers; append, flush
//!   ├── read              whole batches for fetches, ListOffsets lookups
//!   ├── open              recovery: leftovers, checkpoints, CRC scan of the unflushed tail
//!   ├── mutate            truncation, log start offset, retention, delayed deletes, close
//!   ├── group_commit      shared fdatasync for durable appends
//!   ├── producer_state    idempotent producers' sequences (+ producer_snapshot: persistence, replay)
//!   └── Segment           one .log + .index + .timeindex
//!         └── index       memory-mapped, preallocated, sparse
//! batch                   v2 record batch view: validation, in-place offset/timestamp rewrites, recompression
//! compression             gzip, snappy, lz4, zstd with bounded decompression
//! file_slice              (file, position, length) for sendfile(2)
//! retention, epoch_cache  pure decision logic
//! legacy_offsets          ListOffsets v0's list of segment offsets
//! //! ```
//!
//! The crate does no networking and knows no Kafka error codes; the server maps [`LogError`] and
//! [`ValidationError`] to them.

pub mod batch;
pub mod batch_builder;
mod checkpoint;
mod clock;
pub mod compression;
mod config;
mod epoch_cache;
mod error;
pub mod file_names;
mod file_slice;
mod group_commit;
mod index;
mod legacy_offsets;
mod mutate;
mod open;
mod partition_log;
mod producer_snapshot;
pub mod producer_state;
mod read;
pub mod retention;
mod segment;
mod vectored_write;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{FlushPolicy, LogConfig, TimestampType};
pub use epoch_cache::{EpochEndOffset, EpochEntry, LeaderEpochCache};
pub use error::{LogError, Result, ValidationError};
pub use file_slice::FileSlice;
pub use mutate::RetentionOutcome;
pub use open::RecoveryReport;
pub use partition_log::{
    AppendInfo, AppendOrigin, LogOptions, PartitionLog, ReadResult, TimestampAndOffset,
};
pub use producer_state::{ProducerError, ProducerStates};
pub use segment::SegmentRecovery;

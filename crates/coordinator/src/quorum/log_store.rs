//! The metadata quorum's Raft log, kept in a ferrite-log partition (`__cluster_metadata-0` under
//! `metadata.log.dir`), as Kafka keeps its KRaft log: each entry is one record batch at the offset equal to
//! its index, with the entry (JSON) as the record's value. The partition log brings what it already does for
//! topics: CRC-checked recovery that cuts a torn tail, segments, and fsync through group commit.
//!
//! ```text
//!   append(entries)  ─▶ one batch per entry at offset = index ─▶ fsync ─▶ "flushed" to openraft
//!   truncate(id)     ─▶ remove offsets >= id.index                (a follower's divergent tail)
//!   purge(id)        ─▶ log start past id.index                   (a snapshot covers them)
//!   vote, committed, last purged ─▶ small JSON files, written atomically and fsynced
//! ```
//! Every write is done and synced before the call returns, in call order, which is what openraft asks of a
//! log store. The calls block on the disk; metadata changes are rare and small.

use super::durable_file;
use super::reserve::{self, Reserve};
use super::types::{Entry, LogId, MetadataRaftConfig, NodeId, StorageError, Vote};
use bytes::{Bytes, BytesMut};
use ferrite_log::batch::{self, set_base_offset};
use ferrite_log::batch_builder::{encode_batch, RecordSpec};
use ferrite_log::{AppendOrigin, LogConfig, LogError, LogOptions, PartitionLog};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader, StorageIOError};
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// The partition directory's name, Kafka's.
pub const METADATA_LOG_DIR: &str = "__cluster_metadata-0";
const VOTE_FILE: &str = "quorum-vote.json";
const COMMITTED_FILE: &str = "quorum-committed.json";
const PURGED_FILE: &str = "quorum-purged.json";
/// How much a read takes from the log at a time.
const READ_CHUNK_BYTES: u64 = 1 << 20;

/// The log store; clones share it (openraft's log reader is one).
#[derive(Debug, Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    log: PartitionLog,
    dir: PathBuf,
    reserve: Reserve,
    /// Serialises writes, and holds what the small files say.
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    vote: Option<Vote>,
    committed: Option<LogId>,
    last_purged: Option<LogId>,
}

fn io_error(
    subject: ErrorSubject<NodeId>,
    verb: ErrorVerb,
    e: impl std::fmt::Display,
) -> StorageError {
    StorageIOError::new(subject, verb, openraft::AnyError::error(e.to_string())).into()
}

fn log_out_of_space(e: &LogError) -> bool {
    matches!(e, LogError::Io { source, .. } if reserve::is_out_of_space(source))
}

fn log_error(verb: ErrorVerb, e: LogError) -> StorageError {
    io_error(ErrorSubject::Logs, verb, e)
}

impl LogStore {
    /// Opens (recovering) the log under `metadata_dir`.
    pub fn open(metadata_dir: &Path) -> Result<LogStore, StorageError> {
        let dir = metadata_dir.join(METADATA_LOG_DIR);
        let config = LogConfig {
            retention_ms: -1,
            retention_bytes: -1,
            segment_bytes: 16 << 20,
            ..LogConfig::default()
        };
        let log = PartitionLog::open(&dir, config, LogOptions::default())
            .map_err(|e| log_error(ErrorVerb::Read, e))?;
        let read_log_id = |file: &str| {
            durable_file::read_json::<Option<LogId>>(&dir.join(file))
                .map(Option::flatten)
                .map_err(|e| io_error(ErrorSubject::Store, ErrorVerb::Read, e))
        };
        let state = State {
            vote: durable_file::read_json(&dir.join(VOTE_FILE))
                .map_err(|e| io_error(ErrorSubject::Vote, ErrorVerb::Read, e))?,
            committed: read_log_id(COMMITTED_FILE)?,
            last_purged: read_log_id(PURGED_FILE)?,
        };
        Ok(LogStore {
            inner: Arc::new(Inner {
                log,
                reserve: Reserve::new(&dir),
                dir,
                state: Mutex::new(state),
            }),
        })
    }

    /// Flushes and closes the log, so the next start need not recover it. Call after Raft has stopped.
    pub fn close(&self) -> Result<(), LogError> {
        self.inner.log.close()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Entries with indexes in `[start, end)`.
    fn read_entries(&self, start: u64, end: u64) -> Result<Vec<Entry>, StorageError> {
        let log = &self.inner.log;
        let end = end.min(u64::try_from(log.log_end_offset()).unwrap_or(0));
        let mut offset = i64::try_from(start)
            .unwrap_or(i64::MAX)
            .max(log.log_start_offset());
        let mut entries = vec![];
        while offset < i64::try_from(end).unwrap_or(i64::MAX) {
            let read = log
                .read(offset, READ_CHUNK_BYTES, log.log_end_offset(), true)
                .map_err(|e| log_error(ErrorVerb::Read, e))?;
            if read.slices.is_empty() {
                break;
            }
            for slice in &read.slices {
                let bytes = slice
                    .read_to_vec()
                    .map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Read, e))?;
                for (position, header) in batch::batches(&bytes) {
                    let index = u64::try_from(header.base_offset).unwrap_or(0);
                    if index < start || index >= end {
                        continue;
                    }
                    let batch_end = (position + header.total_size()).min(bytes.len());
                    entries.push(decode_entry(&header, &bytes[position..batch_end])?);
                }
            }
            offset = read.next_offset;
        }
        Ok(entries)
    }

    fn last_entry_id(&self) -> Result<Option<LogId>, StorageError> {
        let end = self.inner.log.log_end_offset();
        if end <= self.inner.log.log_start_offset() {
            return Ok(None);
        }
        let index = u64::try_from(end - 1).unwrap_or(0);
        Ok(self
            .read_entries(index, index + 1)?
            .pop()
            .map(|entry| entry.log_id))
    }

    fn append_entry(&self, entry: &Entry) -> Result<(), StorageError> {
        let log = &self.inner.log;
        let index = i64::try_from(entry.log_id.index).unwrap_or(i64::MAX);
        if index != log.log_end_offset() {
            // Only after a snapshot: the entries before it are purged, and the log restarts at the snapshot.
            log.truncate_fully_and_start_at(index)
                .map_err(|e| log_error(ErrorVerb::Write, e))?;
        }
        let batch = encode_entry(entry, index)?;
        self.inner
            .reserve
            .retry_when_full(
                || log.append_unsynced(batch.clone(), AppendOrigin::Replica),
                log_out_of_space,
            )
            .map_err(|e| log_error(ErrorVerb::Write, e))?;
        Ok(())
    }

    fn write_file<T: serde::Serialize>(
        &self,
        file: &str,
        value: &T,
        subject: ErrorSubject<NodeId>,
    ) -> Result<(), StorageError> {
        let path = self.inner.dir.join(file);
        self.inner
            .reserve
            .retry_when_full(
                || durable_file::write_json(&path, value),
                reserve::is_out_of_space,
            )
            .map_err(|e| io_error(subject, ErrorVerb::Write, e))
    }
}

/// One entry as a record batch at offset `index`.
fn encode_entry(entry: &Entry, index: i64) -> Result<Bytes, StorageError> {
    let value =
        serde_json::to_vec(entry).map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Write, e))?;
    let record = RecordSpec {
        key: None,
        value: Some(&value),
        headers: vec![],
        timestamp: 0,
    };
    let mut out = BytesMut::new();
    encode_batch(&mut out, &[record], -1, None);
    set_base_offset(&mut out, index);
    Ok(out.freeze())
}

fn decode_entry(header: &batch::BatchHeader, bytes: &[u8]) -> Result<Entry, StorageError> {
    let corrupt = |reason: String| io_error(ErrorSubject::Logs, ErrorVerb::Read, reason);
    let records = batch::stored_records_of(header, bytes).map_err(|e| corrupt(e.to_string()))?;
    let mut value = None;
    batch::walk_records(header, &records, |meta| {
        value = meta.value.and_then(|v| records.get(v)).map(<[u8]>::to_vec);
        Ok(())
    })
    .map_err(|e| corrupt(e.to_string()))?;
    let value =
        value.ok_or_else(|| corrupt(format!("entry {} has no value", header.base_offset)))?;
    serde_json::from_slice(&value).map_err(|e| corrupt(e.to_string()))
}

fn range_start(range: &impl RangeBounds<u64>) -> u64 {
    match range.start_bound() {
        Bound::Included(s) => *s,
        Bound::Excluded(s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    }
}

fn range_end(range: &impl RangeBounds<u64>) -> u64 {
    match range.end_bound() {
        Bound::Included(e) => e.saturating_add(1),
        Bound::Excluded(e) => *e,
        Bound::Unbounded => u64::MAX,
    }
}

impl RaftLogReader<MetadataRaftConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let _state = self.state();
        self.read_entries(range_start(&range), range_end(&range))
    }
}

impl RaftLogStorage<MetadataRaftConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<MetadataRaftConfig>, StorageError> {
        let last_purged = self.state().last_purged;
        let last_log_id = self.last_entry_id()?.or(last_purged);
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let mut state = self.state();
        self.write_file(VOTE_FILE, vote, ErrorSubject::Vote)?;
        state.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.state().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let mut state = self.state();
        self.write_file(COMMITTED_FILE, &committed, ErrorSubject::Store)?;
        state.committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.state().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<MetadataRaftConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let _state = self.state();
        for entry in entries {
            self.append_entry(&entry)?;
        }
        let log = &self.inner.log;
        let synced = log.flush_to(log.log_end_offset());
        if synced.is_ok() {
            self.inner.reserve.replenish();
        }
        let result = synced
            .as_ref()
            .map(|_| ())
            .map_err(|e| std::io::Error::other(e.to_string()));
        callback.log_io_completed(result);
        synced.map_err(|e| log_error(ErrorVerb::Write, e))
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let _state = self.state();
        let offset = i64::try_from(log_id.index).unwrap_or(i64::MAX);
        self.inner
            .log
            .truncate_to(offset)
            .map_err(|e| log_error(ErrorVerb::Delete, e))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut state = self.state();
        self.write_file(PURGED_FILE, &Some(log_id), ErrorSubject::Store)?;
        state.last_purged = Some(log_id);
        let log = &self.inner.log;
        let next = i64::try_from(log_id.index)
            .unwrap_or(i64::MAX)
            .saturating_add(1);
        let moved = if next <= log.log_end_offset() {
            log.advance_log_start_offset(next).map(|_| ())
        } else {
            log.truncate_fully_and_start_at(next)
        };
        moved.map_err(|e| log_error(ErrorVerb::Delete, e))
    }
}

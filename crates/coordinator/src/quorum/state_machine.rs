//! The metadata quorum's state machine: the metadata image, built by applying committed commands in log
//! order, and its snapshots.
//!
//! ```text
//!   committed entries ─▶ apply: image.apply_all(records), last applied ─▶ Applied::Records ─▶ the node
//!   build_snapshot    ─▶ the image as records + meta ─▶ snapshots/<index>-<term>.json (atomic, fsynced)
//!   install_snapshot  ─▶ image from the snapshot's records            ─▶ Applied::Snapshot ─▶ the node
//!   start-up          ─▶ the latest snapshot file; openraft re-applies the committed entries after it
//! ```
//! Only snapshots are persisted: the image itself is rebuilt from the last snapshot plus the log, which the
//! log store keeps with its committed index.

use super::durable_file;
use super::types::{
    CommandApplied, Entry, LogId, MetadataRaftConfig, SnapshotMeta, StorageError, StoredMembership,
};
use ferrite_metadata::{MetadataImage, MetadataRecord};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder, StorageIOError,
};
use serde::{Deserialize, Serialize};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc;

const SNAPSHOT_DIR: &str = "__cluster_metadata-snapshots";

/// What the state machine tells the node, in log order.
#[derive(Debug, Clone)]
pub enum Applied {
    /// The records of the entry at `index` (none for Raft's own entries: blank and membership).
    Records {
        index: u64,
        records: Vec<MetadataRecord>,
    },
    /// A snapshot from the leader replaced the state: the whole image as of `index`.
    Snapshot { index: u64, image: MetadataImage },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    records: Vec<MetadataRecord>,
}

#[derive(Debug)]
struct State {
    image: MetadataImage,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    current: Option<StoredSnapshot>,
}

/// The state machine; clones share it (the snapshot builder is one).
#[derive(Debug, Clone)]
pub struct StateMachine {
    state: Arc<Mutex<State>>,
    dir: PathBuf,
    applied: mpsc::UnboundedSender<Applied>,
}

fn io_error(
    subject: ErrorSubject<u64>,
    verb: ErrorVerb,
    e: impl std::fmt::Display,
) -> StorageError {
    StorageIOError::new(subject, verb, openraft::AnyError::error(e.to_string())).into()
}

impl StateMachine {
    /// Opens the state machine under `metadata_dir` from its latest snapshot; what it applies from now on goes
    /// to `applied`. Returns it with the image and index it starts from.
    pub fn open(
        metadata_dir: &Path,
        applied: mpsc::UnboundedSender<Applied>,
    ) -> Result<(StateMachine, MetadataImage, u64), StorageError> {
        let dir = metadata_dir.join(SNAPSHOT_DIR);
        std::fs::create_dir_all(&dir)
            .map_err(|e| io_error(ErrorSubject::StateMachine, ErrorVerb::Read, e))?;
        let current = latest_snapshot(&dir)?;
        let image = match &current {
            Some(snapshot) => MetadataImage::from_records(&snapshot.records)
                .map_err(|e| io_error(ErrorSubject::StateMachine, ErrorVerb::Read, e))?,
            None => MetadataImage::default(),
        };
        let last_applied = current.as_ref().and_then(|s| s.meta.last_log_id);
        let membership = current
            .as_ref()
            .map(|s| s.meta.last_membership.clone())
            .unwrap_or_default();
        let start = (image.clone(), last_applied.map_or(0, |id| id.index));
        let machine = StateMachine {
            state: Arc::new(Mutex::new(State {
                image,
                last_applied,
                membership,
                current,
            })),
            dir,
            applied,
        };
        Ok((machine, start.0, start.1))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn notify(&self, applied: Applied) {
        // The node stops listening only when it shuts down.
        let _ = self.applied.send(applied);
    }

    fn save(&self, snapshot: &StoredSnapshot) -> Result<(), StorageError> {
        let Some(last) = snapshot.meta.last_log_id else {
            return Ok(());
        };
        let name = format!("{:020}-{:020}.json", last.index, last.leader_id.term);
        durable_file::write_json(&self.dir.join(&name), snapshot)
            .map_err(|e| io_error(ErrorSubject::Snapshot(None), ErrorVerb::Write, e))?;
        // Older snapshots are superseded; a failure to remove one only costs disk.
        if let Ok(read) = std::fs::read_dir(&self.dir) {
            for old in read.flatten() {
                let file = old.file_name();
                let file = file.to_string_lossy();
                if file.ends_with(".json") && *file < *name {
                    let _ = std::fs::remove_file(old.path());
                }
            }
        }
        Ok(())
    }
}

/// The snapshot file with the largest index, if any.
fn latest_snapshot(dir: &Path) -> Result<Option<StoredSnapshot>, StorageError> {
    let read = std::fs::read_dir(dir)
        .map_err(|e| io_error(ErrorSubject::Snapshot(None), ErrorVerb::Read, e))?;
    let latest = read
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .max();
    match latest {
        Some(path) => durable_file::read_json(&path)
            .map_err(|e| io_error(ErrorSubject::Snapshot(None), ErrorVerb::Read, e)),
        None => Ok(None),
    }
}

fn snapshot_of(stored: &StoredSnapshot) -> Result<Snapshot<MetadataRaftConfig>, StorageError> {
    let data = serde_json::to_vec(&stored.records)
        .map_err(|e| io_error(ErrorSubject::Snapshot(None), ErrorVerb::Read, e))?;
    Ok(Snapshot {
        meta: stored.meta.clone(),
        snapshot: Box::new(Cursor::new(data)),
    })
}

impl RaftSnapshotBuilder<MetadataRaftConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<MetadataRaftConfig>, StorageError> {
        let stored = {
            let mut state = self.state();
            let last = state.last_applied;
            let snapshot_id = last.map_or_else(
                || "empty".to_string(),
                |id| format!("{}-{}", id.leader_id.term, id.index),
            );
            let stored = StoredSnapshot {
                meta: SnapshotMeta {
                    last_log_id: last,
                    last_membership: state.membership.clone(),
                    snapshot_id,
                },
                records: state.image.to_records(),
            };
            state.current = Some(stored.clone());
            stored
        };
        self.save(&stored)?;
        snapshot_of(&stored)
    }
}

impl RaftStateMachine<MetadataRaftConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let state = self.state();
        Ok((state.last_applied, state.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandApplied>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut answers = vec![];
        for entry in entries {
            let index = entry.log_id.index;
            let records = {
                let mut state = self.state();
                state.last_applied = Some(entry.log_id);
                match entry.payload {
                    EntryPayload::Blank => vec![],
                    EntryPayload::Membership(membership) => {
                        state.membership = StoredMembership::new(Some(entry.log_id), membership);
                        vec![]
                    }
                    EntryPayload::Normal(command) => {
                        match state.image.apply_all(&command.records) {
                            Ok((next, _)) => state.image = next,
                            // Checked by the controller that wrote them: only damage or a bug gets here, and
                            // every node skips the same entry.
                            Err(e) => {
                                tracing::error!(index, error = %e, "a committed metadata entry does not apply; skipped")
                            }
                        }
                        command.records
                    }
                }
            };
            self.notify(Applied::Records { index, records });
            answers.push(CommandApplied { index });
        }
        Ok(answers)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let subject = ErrorSubject::Snapshot(Some(meta.signature()));
        let records: Vec<MetadataRecord> = serde_json::from_slice(snapshot.get_ref())
            .map_err(|e| io_error(subject.clone(), ErrorVerb::Read, e))?;
        let image = MetadataImage::from_records(&records)
            .map_err(|e| io_error(subject, ErrorVerb::Read, e))?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            records,
        };
        self.save(&stored)?;
        {
            let mut state = self.state();
            state.image = image.clone();
            state.last_applied = meta.last_log_id;
            state.membership = meta.last_membership.clone();
            state.current = Some(stored);
        }
        let index = meta.last_log_id.map_or(0, |id| id.index);
        self.notify(Applied::Snapshot { index, image });
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<MetadataRaftConfig>>, StorageError> {
        let current = self.state().current.clone();
        current.as_ref().map(snapshot_of).transpose()
    }
}

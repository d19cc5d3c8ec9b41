#![allow(clippy::unwrap_used)]

use super::*;
use openraft::testing::{StoreBuilder, Suite};
use std::sync::Mutex;

/// Builds a log store and state machine in a fresh directory per test case of openraft's suite.
struct Builder {
    dirs: Mutex<Vec<tempfile::TempDir>>,
}

impl StoreBuilder<MetadataRaftConfig, LogStore, StateMachine, ()> for Builder {
    async fn build(&self) -> Result<((), LogStore, StateMachine), types::StorageError> {
        let dir = tempfile::tempdir().unwrap();
        let log = LogStore::open(dir.path())?;
        let (applied, _) = tokio::sync::mpsc::unbounded_channel();
        let (machine, _, _) = StateMachine::open(dir.path(), applied)?;
        self.dirs.lock().unwrap().push(dir);
        Ok(((), log, machine))
    }
}

/// openraft's storage test suite, on the log store and state machine as the node uses them.
#[test]
fn passes_openrafts_storage_suite() {
    Suite::test_all(Builder {
        dirs: Mutex::new(vec![]),
    })
    .unwrap();
}

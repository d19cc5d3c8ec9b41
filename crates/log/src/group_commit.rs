//! Group commit: appenders waiting for durability share fsyncs.
//!
//! The first waiter that finds no sync in progress becomes the syncer: it notes the log end offset, calls
//! `fdatasync` without holding any lock, then publishes that offset as durable and wakes everyone. Appends
//! that land while a sync runs wait for the next one, which covers all of them at once, so N concurrent
//! appenders cost about one sync per sync-duration rather than N syncs.
//!
//! A failed sync poisons the log (see [`crate::LogError::Poisoned`]): after an fsync error the kernel may have
//! dropped the dirty pages, so no later success proves anything about earlier writes.

use std::sync::{Condvar, Mutex, MutexGuard};

#[derive(Debug)]
struct SyncState {
    /// Every offset below this is on disk.
    durable_end: i64,
    in_progress: bool,
    failed: bool,
}

#[derive(Debug)]
pub(crate) struct GroupCommit {
    state: Mutex<SyncState>,
    done: Condvar,
}

/// Outcome of waiting for durability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SyncOutcome {
    Durable,
    Failed,
}

impl GroupCommit {
    pub(crate) fn new(durable_end: i64) -> Self {
        GroupCommit {
            state: Mutex::new(SyncState {
                durable_end,
                in_progress: false,
                failed: false,
            }),
            done: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SyncState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn is_failed(&self) -> bool {
        self.lock().failed
    }

    pub(crate) fn durable_end(&self) -> i64 {
        self.lock().durable_end
    }

    /// Blocks until every offset below `target` is durable. `sync` captures the current end offset, syncs,
    /// and returns the end offset it covered (or an error).
    pub(crate) fn wait_for<E>(
        &self,
        target: i64,
        mut sync: impl FnMut() -> Result<i64, E>,
    ) -> Result<SyncOutcome, E> {
        let mut state = self.lock();
        loop {
            if state.failed {
                return Ok(SyncOutcome::Failed);
            }
            if state.durable_end >= target {
                return Ok(SyncOutcome::Durable);
            }
            if state.in_progress {
                state = self.done.wait(state).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            state.in_progress = true;
            drop(state);
            let result = sync();
            state = self.lock();
            state.in_progress = false;
            let outcome = match result {
                Ok(covered) => {
                    state.durable_end = state.durable_end.max(covered);
                    Ok(())
                }
                Err(e) => {
                    state.failed = true;
                    Err(e)
                }
            };
            self.done.notify_all();
            outcome?;
        }
    }

    /// After truncation the durable end cannot be past the new log end.
    pub(crate) fn clamp(&self, log_end_offset: i64) {
        let mut state = self.lock();
        state.durable_end = state.durable_end.min(log_end_offset);
    }

    /// Data synced outside the group commit (roll, explicit flush, recovery).
    pub(crate) fn mark_durable(&self, end: i64) {
        let mut state = self.lock();
        state.durable_end = state.durable_end.max(end);
        drop(state);
        self.done.notify_all();
    }

    pub(crate) fn mark_failed(&self) {
        self.lock().failed = true;
        self.done.notify_all();
    }

    pub(crate) fn reset(&self, durable_end: i64) {
        let mut state = self.lock();
        state.durable_end = durable_end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn concurrent_waiters_share_syncs() {
        let gc = Arc::new(GroupCommit::new(0));
        let end = Arc::new(AtomicI64::new(0));
        let syncs = Arc::new(AtomicUsize::new(0));
        // Every waiter has appended before any of them waits, so the first sync covers all 16: with sharing,
        // exactly one sync runs (without it, one per waiter).
        let appended = Arc::new(std::sync::Barrier::new(16));
        let threads: Vec<_> = (0..16)
            .map(|i| {
                let (gc, end, syncs) = (Arc::clone(&gc), Arc::clone(&end), Arc::clone(&syncs));
                let appended = Arc::clone(&appended);
                std::thread::spawn(move || {
                    let target = end.fetch_add(1, Ordering::SeqCst) + 1;
                    appended.wait();
                    let outcome = gc.wait_for::<()>(target, || {
                        syncs.fetch_add(1, Ordering::SeqCst);
                        let covered = end.load(Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        Ok(covered)
                    });
                    assert_eq!(outcome, Ok(SyncOutcome::Durable), "waiter {i}");
                    assert!(gc.durable_end() >= target);
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(
            syncs.load(Ordering::SeqCst),
            1,
            "the 16 waiters shared one sync"
        );
        assert_eq!(gc.durable_end(), 16);
    }

    #[test]
    fn failure_poisons_all_waiters() {
        let gc = GroupCommit::new(0);
        assert_eq!(gc.wait_for(5, || Err("eio")), Err("eio"));
        assert_eq!(gc.wait_for::<&str>(5, || Ok(5)), Ok(SyncOutcome::Failed));
    }
}

//! Long-polling fetches waiting for data on a partition.
//!
//! A fetch registers one `Notify` with each partition it reads, before it first looks for data, and an append
//! wakes only the fetches registered with that partition. `notify_one` leaves a permit when the fetch is not
//! yet waiting, so a wake-up between "no data yet" and "start waiting" is never lost. Registrations are weak:
//! a finished fetch leaves a dead entry, pruned whenever another fetch registers.

use std::sync::{Arc, Mutex, Weak};
use tokio::sync::Notify;

#[derive(Debug, Default)]
pub struct DataWaiters {
    waiters: Mutex<Vec<Weak<Notify>>>,
}

impl DataWaiters {
    /// Registers a fetch (again after a wake-up; registering twice keeps one entry).
    pub fn register(&self, notify: &Arc<Notify>) {
        let mut waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        waiters.retain(|w| w.strong_count() > 0);
        let me = Arc::downgrade(notify);
        if !waiters.iter().any(|w| w.ptr_eq(&me)) {
            waiters.push(me);
        }
    }

    /// Wakes every registered fetch; each re-registers if it goes on waiting.
    pub fn wake_all(&self) {
        let waiters = std::mem::take(&mut *self.waiters.lock().unwrap_or_else(|p| p.into_inner()));
        for notify in waiters.iter().filter_map(Weak::upgrade) {
            notify.notify_one();
        }
    }

    #[cfg(test)]
    pub fn registered(&self) -> usize {
        self.waiters.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wakes_registered_fetches_and_prunes_finished_ones() {
        let waiters = DataWaiters::default();
        let a = Arc::new(Notify::new());
        waiters.register(&a);
        {
            let finished = Arc::new(Notify::new());
            waiters.register(&finished);
        }
        let b = Arc::new(Notify::new());
        waiters.register(&b);
        waiters.register(&b);
        assert_eq!(
            waiters.registered(),
            2,
            "the finished fetch's entry was pruned, b counted once"
        );
        // The wake comes before anyone waits: the permit is kept.
        waiters.wake_all();
        tokio::time::timeout(std::time::Duration::from_secs(1), a.notified())
            .await
            .expect("a woken");
        tokio::time::timeout(std::time::Duration::from_secs(1), b.notified())
            .await
            .expect("b woken");
        assert_eq!(waiters.registered(), 0);
    }
}

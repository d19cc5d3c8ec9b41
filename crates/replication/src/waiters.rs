//! Requests waiting for a partition's high watermark to move: fetch long polls (and, with replication,
//! `acks=all` produces).
//!
//! A waiter registers one `Notify` with each partition it watches, before it first looks, and the partition
//! wakes its waiters whenever the high watermark moves. `notify_one` leaves a permit when the waiter is not
//! yet waiting, so a move between "not enough yet" and "start waiting" is never lost. Registrations are
//! weak: a finished request leaves a dead entry, pruned whenever another one registers.

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Debug, Default)]
pub struct Waiters {
    waiters: Mutex<Vec<Weak<Notify>>>,
    /// Counts wake-ups, for waiters on blocking threads (the group coordinator's commits), which wait on the
    /// condition variable instead of a `Notify`.
    generation: Mutex<u64>,
    moved: Condvar,
}

impl Waiters {
    /// Registers a waiter (again after a wake-up; registering twice keeps one entry).
    pub fn register(&self, notify: &Arc<Notify>) {
        let mut waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        waiters.retain(|w| w.strong_count() > 0);
        let me = Arc::downgrade(notify);
        if !waiters.iter().any(|w| w.ptr_eq(&me)) {
            waiters.push(me);
        }
    }

    /// Wakes every registered waiter; each re-registers if it goes on waiting.
    pub fn wake_all(&self) {
        let waiters = std::mem::take(&mut *self.waiters.lock().unwrap_or_else(|p| p.into_inner()));
        for notify in waiters.iter().filter_map(Weak::upgrade) {
            notify.notify_one();
        }
        *self.generation.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.moved.notify_all();
    }

    /// The number of wake-ups so far; read it before looking, then [`Waiters::wait_blocking`] with it.
    pub fn generation(&self) -> u64 {
        *self.generation.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Blocks the thread until a wake-up after `seen` (returns at once if one happened since) or `timeout`.
    pub fn wait_blocking(&self, seen: u64, timeout: Duration) {
        let generation = self.generation.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self
            .moved
            .wait_timeout_while(generation, timeout, |g| *g == seen);
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
    async fn wakes_registered_waiters_and_prunes_finished_ones() {
        let waiters = Waiters::default();
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
            "the finished waiter's entry was pruned, b counted once"
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

//! Byte budgets for requests in flight (`queued.max.request.bytes`, broker-wide, and
//! `queued.max.request.bytes.per.connection`): a connection stops reading its socket while either budget is
//! used up, and reads again once responses have been written. Nothing is dropped; the client's sends block
//! in TCP instead.
//!
//! ```text
//! read loop: wait_below(conn, broker) ─> read frame ─> charge(frame bytes) ─> dispatch
//! handler:   response computed ─> charge(response bytes held in memory)
//! writer:    response written ─> release(frame + response bytes) ─> wakes waiting readers
//! ```
//!
//! A request is admitted while the budget is *below* its limit, so a single request larger than the whole
//! budget still gets through alone (it is bounded by `socket.request.max.bytes`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// One budget: bytes in use against a limit (`usize::MAX`: unbounded).
#[derive(Debug)]
pub struct Budget {
    used: AtomicUsize,
    limit: usize,
    released: Notify,
}

impl Budget {
    pub fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget {
            used: AtomicUsize::new(0),
            limit: if limit == 0 { usize::MAX } else { limit },
            released: Notify::new(),
        })
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    fn is_full(&self) -> bool {
        self.used() >= self.limit
    }

    /// Waits until the budget is below its limit.
    async fn wait_below(&self) {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            // Registered before the check, so a release between the check and the await is not missed.
            released.as_mut().enable();
            if !self.is_full() {
                return;
            }
            released.await;
        }
    }

    fn charge(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::AcqRel);
    }

    fn release(&self, bytes: usize) {
        let before = self.used.fetch_sub(bytes, Ordering::AcqRel);
        debug_assert!(before >= bytes, "released more than was charged");
        if before >= self.limit && before - bytes < self.limit {
            self.released.notify_waiters();
        }
    }
}

/// A connection's budget and the broker's, charged and released together.
#[derive(Debug, Clone)]
pub struct InFlight {
    pub connection: Arc<Budget>,
    pub broker: Arc<Budget>,
}

impl InFlight {
    /// Waits until both budgets have room. Returns whether it had to wait (for a log line).
    pub async fn wait_for_room(&self) -> bool {
        let full = self.connection.is_full() || self.broker.is_full();
        self.connection.wait_below().await;
        self.broker.wait_below().await;
        full
    }

    /// Charges `bytes`; the returned charge gives them back when dropped (written or abandoned).
    pub fn charge(&self, bytes: usize) -> Charge {
        self.connection.charge(bytes);
        self.broker.charge(bytes);
        Charge {
            budgets: self.clone(),
            bytes,
        }
    }
}

/// Bytes charged to both budgets until dropped.
#[derive(Debug)]
pub struct Charge {
    budgets: InFlight,
    bytes: usize,
}

impl Charge {
    /// Charges `more` bytes (a computed response) on top.
    pub fn add(&mut self, more: usize) {
        self.budgets.connection.charge(more);
        self.budgets.broker.charge(more);
        self.bytes += more;
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budgets.connection.release(self.bytes);
        self.budgets.broker.release(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn readers_wait_while_full_and_wake_on_release() {
        let budgets = InFlight {
            connection: Budget::new(100),
            broker: Budget::new(150),
        };
        let first = budgets.charge(120); // over the connection's 100: one request is always admitted
        assert!(budgets.connection.is_full());
        let waiting = tokio::spawn({
            let budgets = budgets.clone();
            async move { budgets.wait_for_room().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "a full budget must hold the reader");
        drop(first);
        assert!(tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("released budget wakes the reader")
            .expect("task"));
        assert_eq!(budgets.connection.used(), 0);
        assert_eq!(budgets.broker.used(), 0);
    }

    #[tokio::test]
    async fn the_broker_budget_holds_every_connection() {
        let broker = Budget::new(100);
        let a = InFlight {
            connection: Budget::new(1000),
            broker: Arc::clone(&broker),
        };
        let b = InFlight {
            connection: Budget::new(1000),
            broker,
        };
        let mut charge = a.charge(60);
        charge.add(50); // a's computed response
        let waiting = tokio::spawn(async move { b.wait_for_room().await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "b must wait for a's bytes");
        drop(charge);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .expect("task");
    }
}

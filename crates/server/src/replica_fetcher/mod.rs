//! Followers replicating from their leaders, as Kafka's replica fetchers do:
//!
//! ```text
//!   metadata delta ─▶ Node::apply_delta ─▶ ReplicaFetchers::follow(tp, leader, epoch) / unfollow(tp)
//!                                                │
//!          one task per (leader broker, index < num.replica.fetchers), carrying many partitions
//!                                                │
//!   new leadership ─▶ Truncating: OffsetForLeaderEpoch to the leader, cut the divergent tail (truncation.rs)
//!                 ─▶ Fetching: Fetch (replica id in ReplicaState) from the log end, append with the leader's
//!                    offsets, learn the high watermark and log start; durable topics sync before the next fetch
//! ```
//! The leader learns each follower's position from the fetch offsets, which is how the ISR and the high
//! watermark move (`ferrite_replication::Partition::record_follower_fetch`).

mod connection;
mod fetcher;
pub mod truncation;

use crate::node::Node;
use ferrite_replication::{LeaderEpoch, NodeId, TopicPartition};
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;
use tokio::sync::Notify;

/// One fetcher task: the leader it fetches from, and which of that leader's fetchers it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FetcherId {
    pub source: NodeId,
    pub index: usize,
}

/// What a follower replica is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FetchState {
    /// A new leadership: the divergent tail must be cut before anything is fetched.
    Truncating,
    /// Fetching from the log end.
    Fetching,
}

/// One partition a fetcher carries.
#[derive(Debug, Clone)]
struct PartitionFetch {
    topic_id: uuid::Uuid,
    epoch: LeaderEpoch,
    state: FetchState,
    /// After an error, not fetched before this (`replica.fetch.backoff.ms`).
    retry_at: Option<Instant>,
}

/// The state a fetcher task shares with the node that feeds it partitions.
#[derive(Debug)]
struct FetcherShared {
    id: FetcherId,
    partitions: Mutex<BTreeMap<TopicPartition, PartitionFetch>>,
    changed: Notify,
    stopped: AtomicBool,
}

impl FetcherShared {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<TopicPartition, PartitionFetch>> {
        self.partitions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a partition, or restarts it at truncation when its leadership changed.
    fn add(&self, tp: TopicPartition, topic_id: uuid::Uuid, epoch: LeaderEpoch) {
        let mut partitions = self.lock();
        if partitions
            .get(&tp)
            .is_some_and(|p| p.epoch == epoch && p.topic_id == topic_id)
        {
            return;
        }
        partitions.insert(
            tp,
            PartitionFetch {
                topic_id,
                epoch,
                state: FetchState::Truncating,
                retry_at: None,
            },
        );
        drop(partitions);
        self.changed.notify_one();
    }

    fn remove(&self, tp: &TopicPartition) {
        self.lock().remove(tp);
    }

    /// Updates a partition's entry only if it is still at `epoch` (the metadata may have moved on while a
    /// request was out).
    fn update(&self, tp: &TopicPartition, epoch: LeaderEpoch, f: impl FnOnce(&mut PartitionFetch)) {
        if let Some(p) = self.lock().get_mut(tp).filter(|p| p.epoch == epoch) {
            f(p);
        }
    }

    /// The partitions not waiting out a backoff.
    fn due(&self, now: Instant) -> Vec<(TopicPartition, PartitionFetch)> {
        self.lock()
            .iter()
            .filter(|(_, p)| p.retry_at.is_none_or(|at| at <= now))
            .map(|(tp, p)| (tp.clone(), p.clone()))
            .collect()
    }

    /// When the next backed-off partition is due.
    fn next_retry(&self) -> Option<Instant> {
        self.lock().values().filter_map(|p| p.retry_at).min()
    }

    fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.changed.notify_one();
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }
}

/// Every fetcher of this node.
#[derive(Debug)]
pub struct ReplicaFetchers {
    node: Weak<Node>,
    runtime: Option<tokio::runtime::Handle>,
    fetchers: Mutex<HashMap<FetcherId, Arc<FetcherShared>>>,
    stopped: AtomicBool,
}

impl ReplicaFetchers {
    /// Fetchers for `node`, run on `runtime` (none outside a runtime, such as in unit tests: followers then
    /// do not fetch, which is logged).
    pub fn new(node: Weak<Node>, runtime: Option<tokio::runtime::Handle>) -> ReplicaFetchers {
        ReplicaFetchers {
            node,
            runtime,
            fetchers: Mutex::new(HashMap::new()),
            stopped: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<FetcherId, Arc<FetcherShared>>> {
        self.fetchers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// This node follows `leader` for `tp` in `epoch`: the partition moves to that leader's fetcher (and
    /// starts with truncation when the leadership is new to it).
    pub fn follow(
        &self,
        tp: TopicPartition,
        topic_id: uuid::Uuid,
        leader: NodeId,
        epoch: LeaderEpoch,
        fetchers_per_source: usize,
    ) {
        if self.stopped.load(Ordering::Acquire) {
            return;
        }
        let id = FetcherId {
            source: leader,
            index: fetcher_index(&tp, fetchers_per_source),
        };
        let mut fetchers = self.lock();
        for (other, fetcher) in fetchers.iter() {
            if *other != id {
                fetcher.remove(&tp);
            }
        }
        let fetcher = match fetchers.get(&id) {
            Some(f) => Arc::clone(f),
            None => {
                let Some(runtime) = &self.runtime else {
                    tracing::warn!(topic = %tp.topic, partition = tp.partition, "no runtime to fetch in: this replica will not replicate");
                    return;
                };
                let shared = Arc::new(FetcherShared {
                    id,
                    partitions: Mutex::new(BTreeMap::new()),
                    changed: Notify::new(),
                    stopped: AtomicBool::new(false),
                });
                runtime.spawn(fetcher::run(Arc::clone(&shared), self.node.clone()));
                tracing::info!(
                    leader = leader.0,
                    index = id.index,
                    "replica fetcher started"
                );
                fetchers.insert(id, Arc::clone(&shared));
                shared
            }
        };
        fetcher.add(tp, topic_id, epoch);
    }

    /// This node no longer follows `tp` (it leads it, nobody does, or the replica is gone).
    pub fn unfollow(&self, tp: &TopicPartition) {
        let mut fetchers = self.lock();
        for fetcher in fetchers.values() {
            fetcher.remove(tp);
        }
        // A fetcher left without partitions stops; the next partition of its leader starts a new one.
        fetchers.retain(|_, f| {
            let keep = !f.is_empty();
            if !keep {
                f.stop();
            }
            keep
        });
    }

    /// Stops every fetcher (before the logs close).
    pub fn shutdown(&self) {
        self.stopped.store(true, Ordering::Release);
        for fetcher in self.lock().drain().map(|(_, f)| f) {
            fetcher.stop();
        }
    }

    /// The partitions each fetcher carries, for logs and tests.
    pub fn assignments(&self) -> Vec<(FetcherId, Vec<TopicPartition>)> {
        self.lock()
            .iter()
            .map(|(id, f)| (*id, f.lock().keys().cloned().collect()))
            .collect()
    }
}

/// Which of a leader's fetchers carries `tp`: a stable hash, so a partition stays on one connection.
fn fetcher_index(tp: &TopicPartition, fetchers: usize) -> usize {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    tp.hash(&mut hasher);
    usize::try_from(hasher.finish() % fetchers.max(1) as u64).unwrap_or(0)
}

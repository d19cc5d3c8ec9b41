//! What a leader knows of its followers, learned from their fetches, and the ISR decisions it makes from it.
//!
//! A follower's fetch at offset `o` says it has everything below `o` (and, in durable mode, synced it: a
//! follower syncs what it appended before it fetches again). Kafka's rule for "caught up" is kept: a fetch
//! at or past the leader's log end means caught up now; a fetch at or past the log end the leader had at the
//! follower's *previous* fetch means it was caught up then. So a follower that keeps pace with a steady
//! stream of produces is never judged lagging just because new records keep arriving between its fetches.
//!
//! Times are passed in, so the rules are tested without a clock.

use crate::ids::{NodeId, Offset};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One follower, as its fetches describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerProgress {
    /// Where it fetched last: it holds every offset below. `None` until its first fetch in this leadership.
    pub log_end: Option<Offset>,
    /// When it was last known to have the whole log.
    pub last_caught_up: Instant,
    /// The previous fetch: when, and the leader's log end then.
    last_fetch: Option<(Instant, Offset)>,
}

/// The followers of one partition, while this node leads it.
#[derive(Debug, Clone, Default)]
pub struct Followers {
    progress: BTreeMap<NodeId, FollowerProgress>,
}

impl Followers {
    /// A new leadership: every follower's position is unknown until it fetches (so the high watermark cannot
    /// move past what it has not confirmed), and every one gets a full lag window from `now`, as Kafka does.
    pub fn reset(&mut self, followers: impl IntoIterator<Item = NodeId>, now: Instant) {
        self.progress = followers
            .into_iter()
            .map(|node| {
                (
                    node,
                    FollowerProgress {
                        log_end: None,
                        last_caught_up: now,
                        last_fetch: None,
                    },
                )
            })
            .collect();
    }

    /// Keeps the followers in `replicas` (an assignment change), adding new ones as unknown.
    pub fn retain_replicas(&mut self, followers: &[NodeId], now: Instant) {
        self.progress.retain(|node, _| followers.contains(node));
        for node in followers {
            self.progress.entry(*node).or_insert(FollowerProgress {
                log_end: None,
                last_caught_up: now,
                last_fetch: None,
            });
        }
    }

    /// Forgets where `node` was (it left the ISR): it must fetch again before it can rejoin, so a follower
    /// that died is never proposed back on the strength of its last fetch.
    pub fn forget(&mut self, node: NodeId, now: Instant) {
        if let Some(p) = self.progress.get_mut(&node) {
            *p = FollowerProgress {
                log_end: None,
                last_caught_up: now,
                last_fetch: None,
            };
        }
    }

    pub fn is_follower(&self, node: NodeId) -> bool {
        self.progress.contains_key(&node)
    }

    /// A fetch from `node` at `fetch_offset`, when the leader's log ends at `leader_end`. Returns false for a
    /// node that is not a follower of this partition.
    pub fn record_fetch(
        &mut self,
        node: NodeId,
        fetch_offset: Offset,
        leader_end: Offset,
        now: Instant,
    ) -> bool {
        let Some(p) = self.progress.get_mut(&node) else {
            return false;
        };
        if fetch_offset >= leader_end {
            p.last_caught_up = now;
        } else if let Some((then, end_then)) = p.last_fetch {
            if fetch_offset >= end_then {
                p.last_caught_up = p.last_caught_up.max(then);
            }
        }
        p.log_end = Some(fetch_offset);
        p.last_fetch = Some((now, leader_end));
        true
    }

    pub fn get(&self, node: NodeId) -> Option<&FollowerProgress> {
        self.progress.get(&node)
    }

    /// Where `node` has the log to, if it fetched in this leadership.
    pub fn log_end(&self, node: NodeId) -> Option<Offset> {
        self.progress.get(&node).and_then(|p| p.log_end)
    }

    /// The members of `isr` (other than the leader) not caught up for longer than `max_lag`.
    pub fn lagging(&self, isr: &[NodeId], now: Instant, max_lag: Duration) -> Vec<NodeId> {
        isr.iter()
            .copied()
            .filter(|node| {
                self.progress
                    .get(node)
                    .is_some_and(|p| now.saturating_duration_since(p.last_caught_up) > max_lag)
            })
            .collect()
    }

    /// Followers outside `isr` that may join it: they fetched within `max_lag` and have the log up to the
    /// high watermark and up to where this leader's epoch began (Kafka's rule: a follower that missed the
    /// start of the epoch could hold a divergent tail it has not truncated yet).
    pub fn ready_to_join(
        &self,
        isr: &[NodeId],
        high_watermark: Offset,
        epoch_start: Offset,
        now: Instant,
        max_lag: Duration,
    ) -> Vec<NodeId> {
        self.progress
            .iter()
            .filter(|(node, p)| {
                let fetching = p
                    .last_fetch
                    .is_some_and(|(at, _)| now.saturating_duration_since(at) <= max_lag);
                !isr.contains(node)
                    && fetching
                    && p.log_end
                        .is_some_and(|end| end >= high_watermark && end >= epoch_start)
            })
            .map(|(node, _)| *node)
            .collect()
    }
}

/// The ISR the leader should propose, if it differs from `isr`: lagging members out (never the leader), and
/// caught-up followers in. `None` when nothing changes.
pub fn proposed_isr(
    leader: NodeId,
    isr: &[NodeId],
    followers: &Followers,
    high_watermark: Offset,
    epoch_start: Offset,
    now: Instant,
    max_lag: Duration,
) -> Option<Vec<NodeId>> {
    let lagging = followers.lagging(isr, now, max_lag);
    let joining = followers.ready_to_join(isr, high_watermark, epoch_start, now, max_lag);
    if lagging.is_empty() && joining.is_empty() {
        return None;
    }
    let mut next: Vec<NodeId> = isr
        .iter()
        .copied()
        .filter(|n| *n == leader || !lagging.contains(n))
        .chain(joining)
        .collect();
    next.sort();
    next.dedup();
    let mut current = isr.to_vec();
    current.sort();
    (next != current).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAG: Duration = Duration::from_secs(30);

    fn secs(base: Instant, s: u64) -> Instant {
        base + Duration::from_secs(s)
    }

    #[test]
    fn a_follower_keeping_pace_with_a_moving_log_end_stays_caught_up() {
        let t0 = Instant::now();
        let mut f = Followers::default();
        f.reset([NodeId(2)], t0);
        // Every fetch is at the log end of the previous one, while the leader keeps appending.
        for s in 1..100u64 {
            let fetched = Offset(i64::try_from(s).unwrap_or(0) * 10);
            assert!(f.record_fetch(NodeId(2), fetched, Offset(fetched.0 + 10), secs(t0, s)));
        }
        assert!(f.lagging(&[NodeId(2)], secs(t0, 100), LAG).is_empty());
        assert_eq!(f.log_end(NodeId(2)), Some(Offset(990)));
    }

    #[test]
    fn a_stalled_follower_lags_after_the_window_and_rejoins_when_caught_up() {
        let t0 = Instant::now();
        let mut f = Followers::default();
        f.reset([NodeId(2), NodeId(3)], t0);
        f.record_fetch(NodeId(2), Offset(5), Offset(5), secs(t0, 1));
        f.record_fetch(NodeId(3), Offset(5), Offset(5), secs(t0, 1));
        // Node 3 stops fetching; node 2 keeps up.
        f.record_fetch(NodeId(2), Offset(50), Offset(50), secs(t0, 40));
        let isr = [NodeId(1), NodeId(2), NodeId(3)];
        assert_eq!(f.lagging(&isr, secs(t0, 40), LAG), vec![NodeId(3)]);
        let shrunk = proposed_isr(NodeId(1), &isr, &f, Offset(5), Offset(0), secs(t0, 40), LAG);
        assert_eq!(shrunk, Some(vec![NodeId(1), NodeId(2)]));
        // Behind the high watermark it may not join; at it, it may.
        let isr = [NodeId(1), NodeId(2)];
        f.record_fetch(NodeId(3), Offset(20), Offset(50), secs(t0, 41));
        let now = secs(t0, 42);
        assert!(f
            .ready_to_join(&isr, Offset(50), Offset(0), now, LAG)
            .is_empty());
        f.record_fetch(NodeId(3), Offset(50), Offset(50), now);
        assert_eq!(
            f.ready_to_join(&isr, Offset(50), Offset(0), now, LAG),
            vec![NodeId(3)]
        );
        assert!(
            f.ready_to_join(&isr, Offset(50), Offset(60), now, LAG)
                .is_empty(),
            "not before the epoch's start"
        );
        assert!(
            f.ready_to_join(&isr, Offset(50), Offset(0), secs(t0, 80), LAG)
                .is_empty(),
            "not once it stopped fetching"
        );
        f.forget(NodeId(3), now);
        assert!(
            f.ready_to_join(&isr, Offset(50), Offset(0), now, LAG)
                .is_empty(),
            "not on the strength of a fetch from before it left"
        );
    }

    #[test]
    fn unknown_followers_and_strangers() {
        let t0 = Instant::now();
        let mut f = Followers::default();
        f.reset([NodeId(2)], t0);
        assert_eq!(f.log_end(NodeId(2)), None);
        assert!(!f.record_fetch(NodeId(9), Offset(0), Offset(0), t0));
        // A follower never heard from lags once the window passes (it may be dead since the election).
        assert_eq!(
            f.lagging(&[NodeId(1), NodeId(2)], secs(t0, 31), LAG),
            vec![NodeId(2)]
        );
        assert_eq!(
            proposed_isr(NodeId(1), &[NodeId(1)], &f, Offset(0), Offset(0), t0, LAG),
            None,
            "an unknown follower does not join"
        );
    }
}

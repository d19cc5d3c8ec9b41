//! What the runs did, counted where it happens, so the summary shows the model really exercised leader
//! changes, truncations and acknowledgements (a safety check over runs that never fail over proves nothing).

use std::fmt;
use std::ops::AddAssign;

#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub seeds: u64,
    pub steps: u64,
    pub heal_rounds: u64,
    pub produced: u64,
    /// Produces refused before the append: no leader known or reachable, not the leader, too few in sync.
    pub produce_refused: u64,
    /// Appended records that were never acknowledged (the leader lost its leadership or its ISR, or the
    /// produce timed out).
    pub unacknowledged: u64,
    pub acknowledged: u64,
    pub crashes: u64,
    pub stalls: u64,
    pub slow_links: u64,
    pub fencings: u64,
    pub unfencings: u64,
    /// A new leader epoch whose leader is another node than the previous leader.
    pub leader_changes: u64,
    pub isr_shrinks: u64,
    pub isr_expands: u64,
    pub alter_refused: u64,
    /// Truncations that removed at least one record, and how many records they removed.
    pub truncations: u64,
    pub truncated_records: u64,
    pub messages_dropped: u64,
    pub messages_duplicated: u64,
    pub stale_roles: u64,
    /// Answers (fetched records, truncation points) the replica refused because they came from a leadership
    /// it no longer follows.
    pub stale_answers_refused: u64,
}

impl AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.seeds += o.seeds;
        self.steps += o.steps;
        self.heal_rounds += o.heal_rounds;
        self.produced += o.produced;
        self.produce_refused += o.produce_refused;
        self.unacknowledged += o.unacknowledged;
        self.acknowledged += o.acknowledged;
        self.crashes += o.crashes;
        self.stalls += o.stalls;
        self.slow_links += o.slow_links;
        self.fencings += o.fencings;
        self.unfencings += o.unfencings;
        self.leader_changes += o.leader_changes;
        self.isr_shrinks += o.isr_shrinks;
        self.isr_expands += o.isr_expands;
        self.alter_refused += o.alter_refused;
        self.truncations += o.truncations;
        self.truncated_records += o.truncated_records;
        self.messages_dropped += o.messages_dropped;
        self.messages_duplicated += o.messages_duplicated;
        self.stale_roles += o.stale_roles;
        self.stale_answers_refused += o.stale_answers_refused;
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seeds={} steps={} heal_rounds={} produced={} produce_refused={} unacknowledged={} acknowledged={} crashes={} stalls={} slow_links={} fencings={} unfencings={} \
             leader_changes={} isr_shrinks={} isr_expands={} alter_refused={} truncations={} truncated_records={} \
             messages_dropped={} messages_duplicated={} stale_roles={} stale_answers_refused={}",
            self.seeds,
            self.steps,
            self.heal_rounds,
            self.produced,
            self.produce_refused,
            self.unacknowledged,
            self.acknowledged,
            self.crashes,
            self.stalls,
            self.slow_links,
            self.fencings,
            self.unfencings,
            self.leader_changes,
            self.isr_shrinks,
            self.isr_expands,
            self.alter_refused,
            self.truncations,
            self.truncated_records,
            self.messages_dropped,
            self.messages_duplicated,
            self.stale_roles,
            self.stale_answers_refused
        )
    }
}

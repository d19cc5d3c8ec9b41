//! The high watermark rule, in one pure function: the offset below which records are visible to consumers
//! and acknowledged to `acks=all` producers.
//!
//! Kafka's rule (`Partition.maybeIncrementLeaderHW`): the smallest log end offset among the in-sync replicas,
//! the leader included, and it never moves backwards while one leader serves. Ferrite's durable mode
//! (`flush.messages=1`) adds that a replica counts only what it has synced, so a record a consumer has seen can
//! never be lost to a power cut of the whole ISR. With one replica this is the log end (or, in durable mode,
//! the flushed offset), which is today's single-node behaviour.

use crate::ids::Offset;

/// How far one in-sync replica has the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaPosition {
    pub log_end: Offset,
    /// What it has fsynced; only consulted in durable mode.
    pub synced: Offset,
}

impl ReplicaPosition {
    fn counted(self, durable: bool) -> Offset {
        if durable {
            self.log_end.min(self.synced)
        } else {
            self.log_end
        }
    }
}

/// The next high watermark: the smallest counted position over the leader and the in-sync followers, but never
/// below `current`.
pub fn next_high_watermark(
    current: Offset,
    leader: ReplicaPosition,
    in_sync_followers: &[ReplicaPosition],
    durable: bool,
) -> Offset {
    let smallest = in_sync_followers
        .iter()
        .map(|f| f.counted(durable))
        .fold(leader.counted(durable), Offset::min);
    smallest.max(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(log_end: i64, synced: i64) -> ReplicaPosition {
        ReplicaPosition {
            log_end: Offset(log_end),
            synced: Offset(synced),
        }
    }

    #[test]
    fn table() {
        // (current, leader, followers, durable) -> expected
        let cases: &[(i64, ReplicaPosition, &[ReplicaPosition], bool, i64)] = &[
            // One replica: the log end, or what is synced in durable mode.
            (0, at(10, 4), &[], false, 10),
            (0, at(10, 4), &[], true, 4),
            (0, at(3, 10), &[], true, 3),
            // Followers hold it back to the slowest in-sync one.
            (0, at(10, 10), &[at(7, 7), at(9, 9)], false, 7),
            (0, at(10, 10), &[at(12, 5)], true, 5),
            // Never backwards.
            (8, at(10, 10), &[at(7, 7)], false, 8),
            (8, at(6, 6), &[], false, 8),
        ];
        for (i, (current, leader, followers, durable, expected)) in cases.iter().enumerate() {
            assert_eq!(
                next_high_watermark(Offset(*current), *leader, followers, *durable),
                Offset(*expected),
                "case {i}"
            );
        }
    }
}

//! Where a follower cuts its log when a new leadership begins (KIP-101, KIP-279): by leader epochs, never by
//! the high watermark alone, which loses committed records when leaders change in quick succession.
//!
//! ```text
//!   follower: "my latest epoch is E"            ──OffsetForLeaderEpoch──▶ leader
//!   leader:   "the largest epoch I have <= E is L, and it ends at end_L"
//!   follower: truncate to min(end_L, where my own epoch L ends)
//! ```
//! Records below that point are in the same epochs at the same offsets on both sides, so they are the same
//! records (an epoch has one leader, which assigned them); everything after it is a tail the leader does not
//! have.

use ferrite_log::EpochEndOffset;

/// What the follower knows of its own log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalLog {
    pub log_start: i64,
    pub log_end: i64,
    pub high_watermark: i64,
}

/// The offset to truncate to, given the leader's answer and `local_end_for`, this log's own answer for an
/// epoch (`PartitionLog::end_offset_for_epoch`). Never past the log end.
pub fn truncation_offset(
    leader: EpochEndOffset,
    local_end_for: impl Fn(i32) -> EpochEndOffset,
    local: LocalLog,
) -> i64 {
    if leader.epoch < 0 || leader.end_offset < 0 {
        // The leader has no epoch this old (its log starts later): nothing above the high watermark is known
        // to be shared. Kafka's fallback too.
        return local.high_watermark.clamp(local.log_start, local.log_end);
    }
    let own = local_end_for(leader.epoch);
    let own_end = if own.epoch < 0 || own.end_offset < 0 {
        // Every epoch this log has is newer than the leader's: none of it is shared.
        local.log_start
    } else {
        own.end_offset
    };
    leader.end_offset.min(own_end).min(local.log_end)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log whose epochs start at the given offsets, ending at `end`.
    fn epochs(entries: &'static [(i32, i64)], end: i64) -> impl Fn(i32) -> EpochEndOffset {
        move |requested| {
            let Some(latest) = entries.last() else {
                return EpochEndOffset {
                    epoch: -1,
                    end_offset: -1,
                };
            };
            if requested >= latest.0 {
                return EpochEndOffset {
                    epoch: latest.0,
                    end_offset: end,
                };
            }
            match entries.iter().position(|e| e.0 > requested) {
                Some(0) | None => EpochEndOffset {
                    epoch: -1,
                    end_offset: -1,
                },
                Some(i) => EpochEndOffset {
                    epoch: entries[i - 1].0,
                    end_offset: entries[i].1,
                },
            }
        }
    }

    fn local(end: i64, high_watermark: i64) -> LocalLog {
        LocalLog {
            log_start: 0,
            log_end: end,
            high_watermark,
        }
    }

    fn answer(epoch: i32, end_offset: i64) -> EpochEndOffset {
        EpochEndOffset { epoch, end_offset }
    }

    #[test]
    fn same_latest_epoch_keeps_what_the_leader_has() {
        // Follower: epoch 1 from 0, log end 10. Leader: epoch 1 ended at 8 (then epoch 2).
        assert_eq!(
            truncation_offset(answer(1, 8), epochs(&[(1, 0)], 10), local(10, 5)),
            8
        );
        // The leader has more: nothing to cut.
        assert_eq!(
            truncation_offset(answer(1, 12), epochs(&[(1, 0)], 10), local(10, 5)),
            10
        );
    }

    #[test]
    fn a_follower_epoch_the_leader_never_had_is_cut_whole() {
        // Follower led epoch 2 briefly from offset 6 and wrote 6..9 nobody else has; the leader's latest epoch
        // <= 2 is 1, which ended at 7 in its log.
        assert_eq!(
            truncation_offset(answer(1, 7), epochs(&[(1, 0), (2, 6)], 9), local(9, 4)),
            6,
            "the follower's epoch 1 ended at 6"
        );
    }

    #[test]
    fn the_high_watermark_is_not_the_truncation_point() {
        // KIP-101's loss: the follower's high watermark (3) lags the records it shares with the leader (5).
        assert_eq!(
            truncation_offset(answer(1, 5), epochs(&[(1, 0)], 5), local(5, 3)),
            5
        );
    }

    #[test]
    fn unknown_epochs() {
        assert_eq!(
            truncation_offset(answer(-1, -1), epochs(&[(3, 0)], 9), local(9, 4)),
            4,
            "the leader knows no epoch this old: fall back to the high watermark"
        );
        assert_eq!(
            truncation_offset(answer(2, 5), epochs(&[(3, 0)], 9), local(9, 4)),
            0,
            "all of this log is in epochs newer than the leader's"
        );
    }
}

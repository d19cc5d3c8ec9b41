//! The quorum's state as its leader sees it, for DescribeQuorum: the leader and its term, the committed end
//! of the log, and how far each voter (from Raft's replication progress) and each broker following the log
//! (from its last fetch) has come.

use super::forward::{QuorumDescription, ReplicaProgress};
use super::quorum::{raft_id, QuorumRuntime};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Describes the quorum; meaningful on its leader (elsewhere the progress of other voters is unknown).
pub(super) fn describe(quorum: &QuorumRuntime) -> QuorumDescription {
    let now_ms = epoch_ms(SystemTime::now());
    let local = quorum.local();
    let (term, last_log, last_applied, replication) = match quorum.raft() {
        Some(raft) => {
            let m = raft.metrics().borrow().clone();
            (
                m.current_term,
                m.last_log_index,
                m.last_applied.map(|id| id.index),
                m.replication.clone().unwrap_or_default(),
            )
        }
        None => (0, None, None, Default::default()),
    };
    let next = |index: Option<u64>| index.map_or(-1, |i| i64::try_from(i + 1).unwrap_or(i64::MAX));
    let mut voter_ids: Vec<i32> = quorum.voters().keys().copied().collect();
    if voter_ids.is_empty() {
        voter_ids.push(local);
    }
    let voters = voter_ids
        .into_iter()
        .map(|id| {
            let matched = if id == local {
                last_log
            } else {
                replication
                    .get(&raft_id(id))
                    .and_then(|m| m.map(|log_id| log_id.index))
            };
            ReplicaProgress {
                node_id: id,
                log_end_offset: next(matched),
                last_fetch_timestamp: if matched.is_some() { now_ms } else { -1 },
            }
        })
        .collect();
    let observers = quorum
        .observers()
        .into_iter()
        .map(|(id, (from, at))| ReplicaProgress {
            node_id: id,
            log_end_offset: i64::try_from(from).unwrap_or(i64::MAX),
            last_fetch_timestamp: now_ms
                - i64::try_from(Instant::now().duration_since(at).as_millis()).unwrap_or(0),
        })
        .collect();
    QuorumDescription {
        leader_id: quorum.leader().unwrap_or(-1),
        leader_epoch: i32::try_from(term).unwrap_or(i32::MAX),
        high_watermark: next(last_applied),
        voters,
        observers,
    }
}

fn epoch_ms(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

//! The safety properties, checked against the real logs:
//!
//! 1. Every acknowledged record is, once the cluster healed, in the leader's log at the offset it was
//!    acknowledged at, exactly once, and in the log of every in-sync replica. (At every step, too: an
//!    acknowledged record must be the one the committed history holds at its offset.)
//! 2. Committed prefix agreement: two live replicas hold the same records below the lower of their high
//!    watermarks.
//! 3. A record that was below some replica's high watermark (a consumer could have read it) never changes at
//!    that offset, and never goes missing from the current leader or from a live in-sync replica (as the
//!    controller records the ISR: any of them may be elected next).
//! 4. A leader's high watermark never moves backwards within one leader epoch (of one process).
//!
//! 2 and 3 are checked together, incrementally: the first time any replica's high watermark passes an offset,
//! the record there becomes the committed history's; every replica's records below its own high watermark
//! must match it. A mismatch is reported as 2 when another live replica still holds the committed record
//! below its high watermark, as 3 otherwise.

use std::collections::{BTreeMap, HashMap};

use ferrite_metadata::PartitionRecord;
use ferrite_replication::{LeaderEpoch, NodeId, Offset, Role};

use super::client::Acked;
use super::records::{read_all, read_range, Stored};
use super::replica::ModelNode;

/// A committed record: what it is, and which replica's high watermark first passed it, at which step.
#[derive(Debug, Clone, Copy)]
struct Committed {
    stored: Stored,
    by: NodeId,
    step: u64,
}

#[derive(Debug, Default)]
pub struct Checker {
    /// Indexed by offset: the log start never moves in the model, so the history is a prefix from 0.
    committed: Vec<Committed>,
    /// Per node: the incarnation and the offset below which its records were checked.
    checked: BTreeMap<NodeId, (u64, i64)>,
    /// Per node leading: the incarnation, epoch and high watermark last seen.
    leader_high_watermarks: BTreeMap<NodeId, (u64, LeaderEpoch, Offset)>,
    acked: BTreeMap<i64, u64>,
}

fn committed_end(c: &[Committed]) -> i64 {
    i64::try_from(c.len()).unwrap_or(i64::MAX)
}

impl Checker {
    /// Properties 2, 3 and 4 after a step, and property 1 for the records acknowledged in it.
    pub fn after_step(
        &mut self,
        nodes: &[ModelNode],
        record: &PartitionRecord,
        newly_acked: &[Acked],
        step: u64,
    ) -> Result<(), String> {
        for node in nodes {
            self.check_replica(nodes, node, record, step)?;
        }
        self.check_leader_high_watermarks(nodes)?;
        for a in newly_acked {
            if let Some(previous) = self.acked.insert(a.offset, a.value) {
                return Err(format!(
                    "property 1: offset {} acknowledged twice, for values {previous} and {}",
                    a.offset, a.value
                ));
            }
            let at = usize::try_from(a.offset)
                .ok()
                .and_then(|o| self.committed.get(o));
            match at {
                Some(c) if c.stored.value == a.value => {}
                other => {
                    return Err(format!(
                        "property 1: value {} acknowledged at offset {}, but the committed history holds {:?} there",
                        a.value, a.offset, other.map(|c| c.stored)
                    ))
                }
            }
        }
        Ok(())
    }

    /// Checks `node`'s records below its high watermark (and, if it leads or is in sync, up to the end of the
    /// committed history) against the history, extending it.
    fn check_replica(
        &mut self,
        nodes: &[ModelNode],
        node: &ModelNode,
        record: &PartitionRecord,
        step: u64,
    ) -> Result<(), String> {
        let Some(p) = node.partition() else {
            return Ok(());
        };
        let (high_watermark, end) = (p.high_watermark().0, p.log_end_offset().0);
        if high_watermark > end {
            return Err(format!(
                "node {}: high watermark {high_watermark} past the log end {end}",
                node.id
            ));
        }
        let history_end = committed_end(&self.committed);
        let current_leader = record.leader == Some(node.id) && node.leads_in(record.leader_epoch);
        let must_hold_history = current_leader || record.isr.contains(&node.id);
        if must_hold_history && end < history_end {
            let what = if current_leader {
                "the leader"
            } else {
                "in sync"
            };
            return Err(format!(
                "property 3: node {} ({what} in leader epoch {}, ISR {:?}) ends at {end} but offsets up to \
                 {history_end} were committed",
                node.id, record.leader_epoch, record.isr
            ));
        }
        let upto = if must_hold_history {
            high_watermark.max(history_end)
        } else {
            high_watermark
        };
        let from = match self.checked.get(&node.id) {
            Some((incarnation, checked)) if *incarnation == node.incarnation => (*checked).min(end),
            _ => p.log_start_offset().0,
        };
        let found =
            read_range(p.log(), from, upto).map_err(|e| format!("node {}: {e}", node.id))?;
        let mut expected = from;
        for (offset, stored) in found {
            if offset != expected {
                return Err(format!(
                    "node {}: offset {expected} missing below its high watermark {high_watermark}",
                    node.id
                ));
            }
            expected += 1;
            match usize::try_from(offset)
                .ok()
                .and_then(|o| self.committed.get(o))
            {
                Some(c) if c.stored == stored => {}
                Some(c) => return Err(self.disagreement(nodes, node, offset, stored, *c)),
                None => self.committed.push(Committed {
                    stored,
                    by: node.id,
                    step,
                }),
            }
        }
        if expected < upto {
            return Err(format!(
                "node {}: offsets {expected}..{upto} missing below its high watermark {high_watermark}",
                node.id
            ));
        }
        self.checked
            .insert(node.id, (node.incarnation, upto.max(from)));
        Ok(())
    }

    /// Names the property a mismatch breaks: 2 if another live replica holds the committed record below its
    /// high watermark right now, 3 otherwise.
    fn disagreement(
        &self,
        nodes: &[ModelNode],
        node: &ModelNode,
        offset: i64,
        stored: Stored,
        committed: Committed,
    ) -> String {
        let holder = nodes.iter().filter(|n| n.id != node.id).find(|n| {
            n.partition().is_some_and(|p| {
                p.high_watermark().0 > offset
                    && read_range(p.log(), offset, offset + 1)
                        .is_ok_and(|r| r.first().is_some_and(|(_, s)| *s == committed.stored))
            })
        });
        match holder {
            Some(other) => format!(
                "property 2: live replicas {} and {} disagree at offset {offset}, below both high watermarks: \
                 {} holds {stored:?}, {} holds {:?}",
                node.id, other.id, node.id, other.id, committed.stored
            ),
            None => format!(
                "property 3: offset {offset} was committed as {:?} (below node {}'s high watermark at step {}), \
                 but node {} now holds {stored:?} there",
                committed.stored, committed.by, committed.step, node.id
            ),
        }
    }

    fn check_leader_high_watermarks(&mut self, nodes: &[ModelNode]) -> Result<(), String> {
        for node in nodes {
            let Some(p) = node.partition() else {
                self.leader_high_watermarks.remove(&node.id);
                continue;
            };
            let Role::Leader(leader) = p.role() else {
                self.leader_high_watermarks.remove(&node.id);
                continue;
            };
            let now = (node.incarnation, leader.epoch, p.high_watermark());
            if let Some((incarnation, epoch, before)) = self.leader_high_watermarks.get(&node.id) {
                if *incarnation == now.0 && *epoch == now.1 && now.2 < *before {
                    return Err(format!(
                        "property 4: node {} leading in epoch {} moved its high watermark back from {before} to {}",
                        node.id, now.1, now.2
                    ));
                }
            }
            self.leader_high_watermarks.insert(node.id, now);
        }
        Ok(())
    }

    /// Property 1 (and 2, 3 over whole logs) once the cluster healed: every replica holds the leader's log,
    /// which holds the committed history and every acknowledged record, once, where it was acknowledged.
    pub fn after_healing(
        &self,
        nodes: &[ModelNode],
        record: &PartitionRecord,
        acked: &[Acked],
    ) -> Result<(), String> {
        let leader = record
            .leader
            .and_then(|l| nodes.iter().find(|n| n.id == l))
            .and_then(|n| n.partition().map(|p| (n.id, p)));
        let Some((leader_id, leader)) = leader else {
            return Err(format!("healed without a live leader: {record:?}"));
        };
        let log = read_all(leader.log()).map_err(|e| format!("leader {leader_id}: {e}"))?;
        for (offset, c) in self.committed.iter().enumerate() {
            let held = log.get(offset).map(|(_, s)| *s);
            if held != Some(c.stored) {
                return Err(format!(
                    "property 3: offset {offset} was committed as {:?} (node {}, step {}), the healed leader {leader_id} holds {held:?}",
                    c.stored, c.by, c.step
                ));
            }
        }
        let mut count: HashMap<u64, usize> = HashMap::new();
        for (_, s) in &log {
            *count.entry(s.value).or_default() += 1;
        }
        for a in acked {
            let held = usize::try_from(a.offset)
                .ok()
                .and_then(|o| log.get(o))
                .map(|(_, s)| s.value);
            if held != Some(a.value) || count.get(&a.value) != Some(&1) {
                return Err(format!(
                    "property 1: value {} acknowledged at offset {}: the leader {leader_id} holds {held:?} there and the value {} times",
                    a.value,
                    a.offset,
                    count.get(&a.value).copied().unwrap_or(0)
                ));
            }
        }
        for node in nodes {
            let Some(p) = node.partition() else {
                return Err(format!("healed with node {} down", node.id));
            };
            let replica = read_all(p.log()).map_err(|e| format!("node {}: {e}", node.id))?;
            if record.isr.contains(&node.id) {
                for a in acked {
                    let held = usize::try_from(a.offset)
                        .ok()
                        .and_then(|o| replica.get(o))
                        .map(|(_, s)| s.value);
                    if held != Some(a.value) {
                        return Err(format!(
                            "property 1: value {} acknowledged at offset {}: in-sync replica {} holds {held:?} there",
                            a.value, a.offset, node.id
                        ));
                    }
                }
            }
            if replica != log {
                return Err(format!(
                    "healed replica {} differs from the leader {leader_id}: {} records against {}",
                    node.id,
                    replica.len(),
                    log.len()
                ));
            }
        }
        Ok(())
    }
}

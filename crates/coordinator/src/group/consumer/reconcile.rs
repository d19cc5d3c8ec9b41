//! Moving one member from its current assignment towards its target, one safe step per heartbeat (Kafka's
//! `CurrentAssignmentBuilder`).
//!
//! The rule that makes the protocol cooperative: a member is never given a partition that another member
//! still holds (has assigned or has yet to revoke). So a change of owner takes two steps, each confirmed by
//! a heartbeat of the member concerned:
//! ```text
//!   old owner:  Stable@e ──(target moved p away)──▶ UnrevokedPartitions@e ──(heartbeat without p)──▶ Stable@e'
//!   new owner:  Stable@e ──(target gives it p, p still held)──▶ UnreleasedPartitions@e' ──(p freed)──▶ Stable@e'
//! ```
//! A member only advances to the new epoch once it has nothing left to revoke; partitions it keeps never
//! leave it in between, so it can go on consuming them during the whole rebalance.

use crate::assignor::Assignment;
use std::collections::BTreeSet;
use uuid::Uuid;

/// Where a member stands in reconciliation (Kafka's `MemberState`). Only `MemberAssignment::reconcile`
/// changes it; every state may move to every other one there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberState {
    /// Has all of its target that it can have at its epoch; nothing to revoke.
    Stable,
    /// Was asked to give up partitions and has not confirmed it yet; its epoch stays behind the target's.
    UnrevokedPartitions,
    /// At the target epoch, but some target partitions are still held by other members.
    UnreleasedPartitions,
}

impl MemberState {
    pub fn kafka_name(self) -> &'static str {
        match self {
            MemberState::Stable => "stable",
            MemberState::UnrevokedPartitions => "unrevoked_partitions",
            MemberState::UnreleasedPartitions => "unreleased_partitions",
        }
    }
}

/// A member's side of reconciliation: its epoch and what it has been told it owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberAssignment {
    pub state: MemberState,
    pub epoch: i32,
    /// The epoch before the last change: a heartbeat with it is still accepted, since the response that
    /// carried the new epoch may have been lost.
    pub previous_epoch: i32,
    /// The partitions the member was told it owns.
    pub assigned: Assignment,
    /// Partitions taken out of `assigned` that the member has not yet confirmed giving up. Still held: no
    /// other member gets them meanwhile.
    pub pending_revocation: Assignment,
}

impl MemberAssignment {
    /// A member that just joined: epoch 0, nothing assigned.
    pub fn joining() -> Self {
        MemberAssignment {
            state: MemberState::Stable,
            epoch: 0,
            previous_epoch: -1,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
        }
    }

    /// Every partition this member holds: assigned or pending revocation.
    pub fn held(&self) -> impl Iterator<Item = (Uuid, i32)> + '_ {
        self.assigned
            .iter()
            .chain(&self.pending_revocation)
            .flat_map(|(topic_id, partitions)| partitions.iter().map(move |p| (*topic_id, *p)))
    }

    /// The next step towards `target` at `target_epoch`.
    ///
    /// `held_by_others` holds every partition another member has assigned or pending revocation. `owned` is
    /// what the member's heartbeat reported it owns; `None` (the field was not sent) counts as still owning
    /// everything, so a revocation is only confirmed by an explicit list.
    pub fn reconcile(
        &self,
        target_epoch: i32,
        target: &Assignment,
        held_by_others: &BTreeSet<(Uuid, i32)>,
        owned: Option<&Assignment>,
    ) -> MemberAssignment {
        match self.state {
            MemberState::Stable if self.epoch == target_epoch => self.clone(),
            MemberState::UnrevokedPartitions if owns_any(owned, &self.pending_revocation) => {
                self.clone()
            }
            _ => self.next_step(target_epoch, target, held_by_others, owned),
        }
    }

    fn next_step(
        &self,
        target_epoch: i32,
        target: &Assignment,
        held_by_others: &BTreeSet<(Uuid, i32)>,
        owned: Option<&Assignment>,
    ) -> MemberAssignment {
        let mut keep = Assignment::new();
        let mut revoke = Assignment::new();
        let mut gain = Assignment::new();
        let mut unreleased = false;
        let empty = BTreeSet::new();
        let topics: BTreeSet<&Uuid> = target.keys().chain(self.assigned.keys()).collect();
        for topic_id in topics {
            let wanted = target.get(topic_id).unwrap_or(&empty);
            let current = self.assigned.get(topic_id).unwrap_or(&empty);
            insert_nonempty(&mut keep, *topic_id, current & wanted);
            insert_nonempty(&mut revoke, *topic_id, current - wanted);
            let (free, taken): (BTreeSet<i32>, BTreeSet<i32>) = (wanted - current)
                .into_iter()
                .partition(|p| !held_by_others.contains(&(*topic_id, *p)));
            unreleased |= !taken.is_empty();
            insert_nonempty(&mut gain, *topic_id, free);
        }
        if !revoke.is_empty() && owns_any(owned, &revoke) {
            // Give up first, at the current epoch; nothing new until the member confirms.
            return MemberAssignment {
                state: MemberState::UnrevokedPartitions,
                assigned: keep,
                pending_revocation: revoke,
                ..self.clone()
            };
        }
        for (topic_id, partitions) in gain {
            keep.entry(topic_id).or_default().extend(partitions);
        }
        MemberAssignment {
            state: if unreleased {
                MemberState::UnreleasedPartitions
            } else {
                MemberState::Stable
            },
            epoch: target_epoch,
            previous_epoch: if target_epoch == self.epoch {
                self.previous_epoch
            } else {
                self.epoch
            },
            assigned: keep,
            pending_revocation: Assignment::new(),
        }
    }
}

fn insert_nonempty(assignment: &mut Assignment, topic_id: Uuid, partitions: BTreeSet<i32>) {
    if !partitions.is_empty() {
        assignment.insert(topic_id, partitions);
    }
}

/// Whether the member's reported partitions include any of `partitions`; an unreported list counts as yes.
fn owns_any(owned: Option<&Assignment>, partitions: &Assignment) -> bool {
    let Some(owned) = owned else {
        return true;
    };
    partitions.iter().any(|(topic_id, partitions)| {
        owned
            .get(topic_id)
            .is_some_and(|owned| !owned.is_disjoint(partitions))
    })
}

/// Whether every partition of `owned` is in `assigned`.
pub fn is_subset(owned: &Assignment, assigned: &Assignment) -> bool {
    owned
        .iter()
        .all(|(topic_id, partitions)| match assigned.get(topic_id) {
            Some(assigned) => partitions.is_subset(assigned),
            None => partitions.is_empty(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Uuid {
        Uuid::from_u128(7)
    }

    fn of(partitions: &[i32]) -> Assignment {
        [(t(), partitions.iter().copied().collect())].into()
    }

    fn stable(epoch: i32, partitions: &[i32]) -> MemberAssignment {
        MemberAssignment {
            epoch,
            assigned: of(partitions),
            ..MemberAssignment::joining()
        }
    }

    #[test]
    fn stable_member_at_the_target_epoch_is_left_alone() {
        let member = stable(3, &[0, 1]);
        let next = member.reconcile(3, &of(&[5]), &BTreeSet::new(), None);
        assert_eq!(next, member);
    }

    #[test]
    fn revocation_waits_for_an_explicit_owned_list_without_the_partitions() {
        let member = stable(1, &[0, 1, 2, 3]);
        let target = of(&[0, 1]);
        let asked = member.reconcile(2, &target, &BTreeSet::new(), None);
        assert_eq!(asked.state, MemberState::UnrevokedPartitions);
        assert_eq!((asked.epoch, &asked.assigned), (1, &of(&[0, 1])));
        assert_eq!(asked.pending_revocation, of(&[2, 3]));
        assert_eq!(
            asked.held().count(),
            4,
            "revoking partitions are still held"
        );

        let still = asked.reconcile(2, &target, &BTreeSet::new(), Some(&of(&[0, 1, 3])));
        assert_eq!(still, asked);

        let done = asked.reconcile(2, &target, &BTreeSet::new(), Some(&of(&[0, 1])));
        assert_eq!(done.state, MemberState::Stable);
        assert_eq!((done.epoch, done.previous_epoch), (2, 1));
        assert_eq!(
            (done.assigned, done.pending_revocation),
            (target, Assignment::new())
        );
    }

    #[test]
    fn partitions_held_elsewhere_are_given_only_once_released() {
        let member = stable(1, &[0]);
        let target = of(&[0, 1, 2]);
        let held: BTreeSet<(Uuid, i32)> = [(t(), 2)].into();
        let waiting = member.reconcile(2, &target, &held, Some(&of(&[0])));
        assert_eq!(waiting.state, MemberState::UnreleasedPartitions);
        assert_eq!((waiting.epoch, &waiting.assigned), (2, &of(&[0, 1])));

        let still = waiting.reconcile(2, &target, &held, Some(&of(&[0, 1])));
        assert_eq!(still, waiting);
        let released = waiting.reconcile(2, &target, &BTreeSet::new(), Some(&of(&[0, 1])));
        assert_eq!(released.state, MemberState::Stable);
        assert_eq!(released.assigned, target);
        assert_eq!(
            released.previous_epoch, 1,
            "same epoch: previous epoch kept"
        );
    }

    #[test]
    fn subset_check() {
        assert!(is_subset(&of(&[1]), &of(&[1, 2])));
        assert!(!is_subset(&of(&[3]), &of(&[1, 2])));
        assert!(!is_subset(&of(&[1]), &Assignment::new()));
        assert!(is_subset(&Assignment::new(), &Assignment::new()));
    }
}

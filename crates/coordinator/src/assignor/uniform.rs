//! The `uniform` assignor: spreads partitions so member loads differ by at most one, moving as few
//! partitions as it can from where the previous target assignment put them.
//!
//! Three passes over a plan:
//! ```text
//!   1. retain   each member keeps its previous partitions that still exist and that it still subscribes to
//!   2. fill     every partition nobody holds goes to the least loaded member subscribed to its topic
//!               (topics with the fewest subscribers first, ties to the smaller member id)
//!   3. balance  while some member holds at least two more than another member that could take one of its
//!               partitions, move one from the most loaded to the least loaded such member
//! ```
//! When all members subscribe to the same topics this ends with loads differing by at most one, and the
//! number of moved partitions is the least possible: every move in pass 3 takes a partition from a member
//! above its final share to one below it. A joining member therefore takes partitions only from others and
//! a leaving member's partitions only go to others. With different subscriptions the result is as balanced
//! as pass 3 can make it by single moves between members sharing a topic; that is not always optimal.

use super::{resolve_subscriptions, Assignment, TopicMetadata};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

pub(super) fn assign(
    members: &BTreeMap<String, BTreeSet<String>>,
    topics: &TopicMetadata,
    current: &BTreeMap<String, Assignment>,
) -> BTreeMap<String, Assignment> {
    let subscriptions = resolve_subscriptions(members, topics);
    let mut plan = Plan::new(&subscriptions);
    plan.retain(current);
    plan.fill();
    plan.balance();
    plan.assignment
        .into_iter()
        .map(|(member_id, mut assignment)| {
            assignment.retain(|_, partitions| !partitions.is_empty());
            (member_id.to_string(), assignment)
        })
        .collect()
}

/// An assignment under construction. `loads` mirrors the partition counts of `assignment`.
struct Plan<'a> {
    /// Member id -> subscribed existing topics (topic id -> partition count).
    subscriptions: &'a BTreeMap<&'a str, BTreeMap<Uuid, i32>>,
    assignment: BTreeMap<&'a str, Assignment>,
    loads: BTreeMap<&'a str, usize>,
    taken: BTreeSet<(Uuid, i32)>,
}

impl<'a> Plan<'a> {
    fn new(subscriptions: &'a BTreeMap<&'a str, BTreeMap<Uuid, i32>>) -> Self {
        Plan {
            subscriptions,
            assignment: subscriptions
                .keys()
                .map(|m| (*m, Assignment::new()))
                .collect(),
            loads: subscriptions.keys().map(|m| (*m, 0)).collect(),
            taken: BTreeSet::new(),
        }
    }

    fn give(&mut self, member_id: &'a str, topic_id: Uuid, partition: i32) {
        let newly_taken = self.taken.insert((topic_id, partition));
        debug_assert!(newly_taken, "{topic_id}-{partition} given twice");
        if let Some(assignment) = self.assignment.get_mut(member_id) {
            assignment.entry(topic_id).or_default().insert(partition);
        }
        *self.loads.entry(member_id).or_default() += 1;
    }

    fn take_back(&mut self, member_id: &str, topic_id: Uuid, partition: i32) {
        let held = self
            .assignment
            .get_mut(member_id)
            .and_then(|assignment| assignment.get_mut(&topic_id))
            .is_some_and(|partitions| partitions.remove(&partition));
        debug_assert!(held, "{member_id} does not hold {topic_id}-{partition}");
        self.taken.remove(&(topic_id, partition));
        if let Some(load) = self.loads.get_mut(member_id) {
            *load -= 1;
        }
    }

    /// Pass 1. A partition claimed by two members in `current` (which a correct caller never passes) stays
    /// with the one whose id sorts first.
    fn retain(&mut self, current: &BTreeMap<String, Assignment>) {
        let subscriptions = self.subscriptions;
        for (member_id, subscribed) in subscriptions {
            let Some(previous) = current.get(*member_id) else {
                continue;
            };
            for (topic_id, partitions) in previous {
                let Some(count) = subscribed.get(topic_id) else {
                    continue;
                };
                for &partition in partitions.range(0..*count) {
                    if !self.taken.contains(&(*topic_id, partition)) {
                        self.give(member_id, *topic_id, partition);
                    }
                }
            }
        }
    }

    /// Pass 2.
    fn fill(&mut self) {
        let mut subscribers: BTreeMap<Uuid, (i32, Vec<&'a str>)> = BTreeMap::new();
        for (member_id, subscribed) in self.subscriptions {
            for (topic_id, count) in subscribed {
                let entry = subscribers.entry(*topic_id).or_insert((*count, Vec::new()));
                entry.1.push(member_id);
            }
        }
        let mut topics: Vec<(Uuid, i32, Vec<&'a str>)> = subscribers
            .into_iter()
            .map(|(topic_id, (count, members))| (topic_id, count, members))
            .collect();
        topics.sort_by_key(|(topic_id, _, members)| (members.len(), *topic_id));
        for (topic_id, count, members) in topics {
            for partition in 0..count {
                if self.taken.contains(&(topic_id, partition)) {
                    continue;
                }
                // `members` is in id order and min_by_key keeps the first minimum: ties go to the smaller id.
                let least_loaded = members
                    .iter()
                    .copied()
                    .min_by_key(|m| self.loads.get(m).copied().unwrap_or(0));
                if let Some(member_id) = least_loaded {
                    self.give(member_id, topic_id, partition);
                }
            }
        }
    }

    /// Pass 3. Each move lowers the sum of squared loads by at least two, and that sum starts at most at the
    /// square of the partition count, so the loop bound is never what stops it.
    fn balance(&mut self) {
        let total = self.taken.len();
        let max_moves = total.saturating_mul(total) / 2 + 1;
        for _ in 0..max_moves {
            if !self.move_one() {
                return;
            }
        }
        debug_assert!(
            false,
            "uniform assignor did not settle in {max_moves} moves"
        );
    }

    fn move_one(&mut self) -> bool {
        let mut by_load: Vec<(&'a str, usize)> = self.loads.iter().map(|(m, l)| (*m, *l)).collect();
        by_load.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(b.0)));
        let (Some(least), Some(most)) = (by_load.first(), by_load.last()) else {
            return false;
        };
        if most.1 <= least.1 + 1 {
            return false;
        }
        for &(from, from_load) in by_load.iter().rev() {
            for &(to, to_load) in &by_load {
                if to_load + 1 >= from_load {
                    break;
                }
                if let Some((topic_id, partition)) = self.movable(from, to) {
                    self.take_back(from, topic_id, partition);
                    self.give(to, topic_id, partition);
                    return true;
                }
            }
        }
        false
    }

    /// The highest partition of the first topic (by id) that `from` holds and `to` subscribes to.
    fn movable(&self, from: &str, to: &str) -> Option<(Uuid, i32)> {
        let wanted = self.subscriptions.get(to)?;
        self.assignment
            .get(from)?
            .iter()
            .filter(|(topic_id, _)| wanted.contains_key(topic_id))
            .find_map(|(topic_id, partitions)| partitions.last().map(|p| (*topic_id, *p)))
    }
}

//! The `range` assignor: for each topic on its own, the members subscribed to it (in member id order) get
//! contiguous ranges of partitions, the first `partitions % members` of them one more than the rest.
//!
//! ```text
//!   topic t, 7 partitions, members a b c:   a: 0 1 2   b: 3 4   c: 5 6
//! ```
//! Members subscribed to the same topics with the same partition counts get the same partition indexes of
//! each topic, which is what joins of co-partitioned topics rely on. It is not sticky: a member joining
//! shifts the ranges of everyone after it.

use super::{resolve_subscriptions, Assignment, TopicMetadata};
use std::collections::{BTreeMap, BTreeSet};

pub(super) fn assign(
    members: &BTreeMap<String, BTreeSet<String>>,
    topics: &TopicMetadata,
) -> BTreeMap<String, Assignment> {
    let subscriptions = resolve_subscriptions(members, topics);
    let mut result: BTreeMap<String, Assignment> = members
        .keys()
        .map(|id| (id.clone(), Assignment::new()))
        .collect();
    for (topic_id, partitions) in topics.values() {
        let subscribers: Vec<&str> = subscriptions
            .iter()
            .filter(|(_, topics)| topics.contains_key(topic_id))
            .map(|(member_id, _)| *member_id)
            .collect();
        if subscribers.is_empty() || *partitions <= 0 {
            continue;
        }
        // A group of 2^31 members cannot exist in memory; saturating keeps the arithmetic in i32 regardless.
        let count = i32::try_from(subscribers.len()).unwrap_or(i32::MAX);
        let (per_member, with_one_more) = (partitions / count, partitions % count);
        let mut start = 0;
        for (index, member_id) in (0..).zip(subscribers) {
            let len = per_member + i32::from(index < with_one_more);
            if len > 0 {
                if let Some(assignment) = result.get_mut(member_id) {
                    assignment.insert(*topic_id, (start..start + len).collect());
                }
            }
            start += len;
        }
        debug_assert_eq!(start, *partitions);
    }
    result
}

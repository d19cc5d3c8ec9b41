//! Server-side partition assignors of the KIP-848 consumer group protocol, as pure functions.
//!
//! In the new protocol the coordinator, not a group leader, decides who consumes what. An assignor maps the
//! group's subscriptions onto the partitions of the subscribed topics:
//!
//! ```text
//!   members: member id -> subscribed topic names ─┐
//!   topics:  topic name -> (topic id, partitions) ─┼─▶ assignor ─▶ member id -> topic id -> partitions
//!   current target assignment (stickiness) ───────┘
//! ```
//!
//! Every member of the input appears in the output, with an empty assignment if it gets nothing, so a caller
//! can replace its target assignment wholesale. Names of topics that do not exist are ignored. The output is
//! a function of the input only (ordered maps, no randomness), so every replica of the coordinator computes
//! the same assignment.
//!
//! - [`AssignorKind::Uniform`] (`uniform`, Kafka's default): balanced and sticky (module `uniform`).
//! - [`AssignorKind::Range`] (`range`): per topic, contiguous ranges by member id (module `range`).

mod range;
mod uniform;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// One member's partitions: topic id -> partition indexes.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// Topic metadata the assignors need: topic name -> (topic id, partition count).
pub type TopicMetadata = BTreeMap<String, (Uuid, i32)>;

/// The assignors this coordinator implements, named as Kafka names them in `ServerAssignor` and in
/// `group.consumer.assignors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum AssignorKind {
    #[default]
    Uniform,
    Range,
}

/// A `ServerAssignor` name this coordinator does not implement (Kafka answers UNSUPPORTED_ASSIGNOR).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported assignor {0:?} (supported: uniform, range)")]
pub struct UnsupportedAssignor(pub String);

impl AssignorKind {
    pub const ALL: [AssignorKind; 2] = [AssignorKind::Uniform, AssignorKind::Range];

    /// Kafka's name, as ConsumerGroupDescribe reports it.
    pub fn name(self) -> &'static str {
        match self {
            AssignorKind::Uniform => "uniform",
            AssignorKind::Range => "range",
        }
    }

    /// Computes a new target assignment. `current` is the previous target; only the uniform assignor reads
    /// it (to keep partitions where they are).
    pub fn assign(
        self,
        members: &BTreeMap<String, BTreeSet<String>>,
        topics: &TopicMetadata,
        current: &BTreeMap<String, Assignment>,
    ) -> BTreeMap<String, Assignment> {
        match self {
            AssignorKind::Uniform => uniform::assign(members, topics, current),
            AssignorKind::Range => range::assign(members, topics),
        }
    }
}

impl fmt::Display for AssignorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for AssignorKind {
    type Err = UnsupportedAssignor;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        AssignorKind::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
            .ok_or_else(|| UnsupportedAssignor(name.to_string()))
    }
}

/// For each member, the ids and partition counts of the subscribed topics that exist, by topic name.
fn resolve_subscriptions<'a>(
    members: &'a BTreeMap<String, BTreeSet<String>>,
    topics: &TopicMetadata,
) -> BTreeMap<&'a str, BTreeMap<Uuid, i32>> {
    members
        .iter()
        .map(|(member_id, names)| {
            let resolved = names
                .iter()
                .filter_map(|name| topics.get(name))
                .filter(|(_, partitions)| *partitions > 0)
                .map(|(id, partitions)| (*id, *partitions))
                .collect();
            (member_id.as_str(), resolved)
        })
        .collect()
}

/// Total number of partitions in an assignment.
pub fn partition_count(assignment: &Assignment) -> usize {
    assignment.values().map(BTreeSet::len).sum()
}

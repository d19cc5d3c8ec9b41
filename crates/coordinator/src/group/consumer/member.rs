//! One member of a consumer group: what it told us in its heartbeats and where it stands in reconciliation.

use super::reconcile::MemberAssignment;
use super::{HeartbeatRequest, MemberDescription, STATIC_LEAVE_EPOCH};
use crate::assignor::{Assignment, AssignorKind};
use std::collections::BTreeSet;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Member {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: BTreeSet<String>,
    /// The member's pattern subscription, never empty (an empty pattern in a heartbeat removes it).
    pub subscribed_topic_regex: Option<String>,
    /// The assignor this member asked for; the group uses the one most members ask for.
    pub server_assignor: Option<AssignorKind>,
    pub rebalance_timeout_ms: i32,
    pub assignment: MemberAssignment,
    pub last_heartbeat_ms: i64,
    /// Set while the member has partitions to revoke: past it, the member is removed, so one stuck member
    /// cannot hold up the partitions others are waiting for.
    pub revocation_deadline_ms: Option<i64>,
    /// A static member that left with epoch -2. It keeps its partitions (held, not consumed) until the same
    /// instance id rejoins or its session times out, so a restart does not move them.
    pub away: bool,
}

/// Whether a heartbeat changed what the assignor reads: subscriptions or the preferred assignor.
#[must_use]
pub(super) struct SubscriptionChanged(pub bool);

impl Member {
    /// A new member from its joining heartbeat, before [`Member::update`] applies the rest of it.
    pub fn joining(request: &HeartbeatRequest) -> Self {
        Member {
            instance_id: request.instance_id.clone(),
            rack_id: request.rack_id.clone(),
            client_id: request.client_id.clone(),
            client_host: request.client_host.clone(),
            subscribed_topic_names: BTreeSet::new(),
            subscribed_topic_regex: None,
            server_assignor: None,
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            assignment: MemberAssignment::joining(),
            last_heartbeat_ms: 0,
            revocation_deadline_ms: None,
            away: false,
        }
    }

    /// Applies a heartbeat's fields; a field left null (or -1 for the rebalance timeout) keeps its value.
    pub fn update(
        &mut self,
        request: &HeartbeatRequest,
        server_assignor: Option<AssignorKind>,
        now_ms: i64,
    ) -> SubscriptionChanged {
        self.last_heartbeat_ms = now_ms;
        self.away = false;
        self.client_id.clone_from(&request.client_id);
        self.client_host.clone_from(&request.client_host);
        if request.rack_id.is_some() {
            self.rack_id.clone_from(&request.rack_id);
        }
        if request.rebalance_timeout_ms >= 0 {
            self.rebalance_timeout_ms = request.rebalance_timeout_ms;
        }
        let mut changed = false;
        if let Some(names) = &request.subscribed_topic_names {
            let names: BTreeSet<String> = names.iter().cloned().collect();
            changed |= names != self.subscribed_topic_names;
            self.subscribed_topic_names = names;
        }
        if let Some(pattern) = &request.subscribed_topic_regex {
            let pattern = (!pattern.is_empty()).then(|| pattern.clone());
            changed |= pattern != self.subscribed_topic_regex;
            self.subscribed_topic_regex = pattern;
        }
        if server_assignor.is_some() {
            changed |= server_assignor != self.server_assignor;
            self.server_assignor = server_assignor;
        }
        SubscriptionChanged(changed)
    }

    /// The epoch others see: -2 while a static member is away, as Kafka reports it.
    pub fn reported_epoch(&self) -> i32 {
        if self.away {
            STATIC_LEAVE_EPOCH
        } else {
            self.assignment.epoch
        }
    }

    /// Heartbeat deadline, then revocation deadline, whichever comes first.
    pub fn deadline_ms(&self, session_timeout_ms: i32) -> i64 {
        let session = self
            .last_heartbeat_ms
            .saturating_add(i64::from(session_timeout_ms));
        self.revocation_deadline_ms
            .map_or(session, |revocation| revocation.min(session))
    }

    pub fn describe(&self, member_id: &str, target: &Assignment) -> MemberDescription {
        MemberDescription {
            member_id: member_id.to_string(),
            instance_id: self.instance_id.clone(),
            rack_id: self.rack_id.clone(),
            member_epoch: self.reported_epoch(),
            client_id: self.client_id.clone(),
            client_host: self.client_host.clone(),
            subscribed_topic_names: self.subscribed_topic_names.iter().cloned().collect(),
            subscribed_topic_regex: self.subscribed_topic_regex.clone(),
            assignment: to_wire(&self.assignment.assigned),
            target_assignment: to_wire(target),
        }
    }
}

/// The wire shape of an assignment: (topic id, partitions), both in ascending order.
pub(super) fn to_wire(assignment: &Assignment) -> Vec<(Uuid, Vec<i32>)> {
    assignment
        .iter()
        .filter(|(_, partitions)| !partitions.is_empty())
        .map(|(topic_id, partitions)| (*topic_id, partitions.iter().copied().collect()))
        .collect()
}

/// An assignment from the wire; a topic listed twice has its partitions merged.
pub(super) fn from_wire(topics: &[(Uuid, Vec<i32>)]) -> Assignment {
    let mut assignment = Assignment::new();
    for (topic_id, partitions) in topics {
        assignment
            .entry(*topic_id)
            .or_default()
            .extend(partitions.iter().copied());
    }
    assignment.retain(|_, partitions| !partitions.is_empty());
    assignment
}

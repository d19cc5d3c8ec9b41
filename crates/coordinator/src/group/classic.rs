//! One classic group: membership, generations, protocol selection, and the join/sync barrier.
//!
//! Requests that must wait (a JoinGroup until the join phase ends, a follower's SyncGroup until the leader's
//! assignment) return `Pending`; their answers come out later as [`Reply`] values from whichever call
//! completes the phase (another member's join, the leader's sync, or [`ClassicGroup::tick`] at a deadline).

use super::errors::*;
use super::state::{GroupState, IllegalTransition};
use crate::group_metadata::{GroupSnapshot, MemberSnapshot};
use std::collections::BTreeMap;

/// Coordinator settings with Kafka's names and defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupLimits {
    /// `group.min.session.timeout.ms`
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`: an empty group waits this long for more members before the first
    /// generation, so a fleet starting together does not rebalance once per member.
    pub initial_rebalance_delay_ms: i64,
    /// `group.max.size`
    pub max_size: usize,
}

impl Default for GroupLimits {
    fn default() -> Self {
        GroupLimits {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
            max_size: usize::MAX,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    /// Empty on a member's first join.
    pub member_id: String,
    pub client_id: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// (name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Vec<u8>)>,
    /// JoinGroup v4+: a first join gets MEMBER_ID_REQUIRED and an id, and must join again with it.
    pub require_known_member_id: bool,
    /// KIP-345 static membership: a restarted member with the same instance id takes over its old place
    /// (and assignment) without a rebalance.
    pub group_instance_id: Option<String>,
    pub client_host: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JoinResponse {
    pub error_code: i16,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Only the leader gets the members (id, instance id, metadata for the chosen protocol).
    pub members: Vec<(String, Option<String>, Vec<u8>)>,
    /// JoinGroup v9: a static leader rejoining a stable group gets the members but must not reassign.
    pub skip_assignment: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinOutcome {
    Immediate(JoinResponse),
    /// The answer comes later as a [`Reply`] for `member_id` (generated here on a first join without
    /// MEMBER_ID_REQUIRED).
    Pending {
        member_id: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    Immediate {
        error_code: i16,
        assignment: Vec<u8>,
    },
    Pending,
}

/// One member as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Its metadata for the group's protocol.
    pub metadata: Vec<u8>,
    pub assignment: Vec<u8>,
}

/// An answer to a request that was left pending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Join {
        member_id: String,
        response: JoinResponse,
    },
    Sync {
        member_id: String,
        error_code: i16,
        assignment: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    group_instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    protocols: Vec<(String, Vec<u8>)>,
    assignment: Vec<u8>,
    /// Its JoinGroup is waiting for the join phase to end.
    awaiting_join: bool,
    /// Its SyncGroup is waiting for the leader.
    awaiting_sync: bool,
    last_heartbeat_ms: i64,
}

impl Member {
    /// The member's metadata for `protocol` (empty if it has none).
    fn metadata_for(&self, protocol: Option<&str>) -> Vec<u8> {
        self.protocols
            .iter()
            .find(|(n, _)| Some(n.as_str()) == protocol)
            .map(|(_, md)| md.clone())
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone)]
pub struct ClassicGroup {
    pub group_id: String,
    state: GroupState,
    generation_id: i32,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    /// Static members: instance id -> current member id.
    static_members: BTreeMap<String, String>,
    /// Ids handed out with MEMBER_ID_REQUIRED, with when they expire if the member never rejoins.
    pending_members: BTreeMap<String, i64>,
    /// When the join phase ends at the latest.
    join_deadline_ms: Option<i64>,
    limits: GroupLimits,
}

impl ClassicGroup {
    pub fn new(group_id: impl Into<String>, limits: GroupLimits) -> Self {
        ClassicGroup {
            group_id: group_id.into(),
            state: GroupState::Empty,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            pending_members: BTreeMap::new(),
            join_deadline_ms: None,
            limits,
        }
    }

    pub fn state(&self) -> GroupState {
        self.state
    }

    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }

    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }

    pub fn member_ids(&self) -> impl Iterator<Item = &str> {
        self.members.keys().map(String::as_str)
    }

    pub fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }

    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    pub fn has_members(&self) -> bool {
        !self.members.is_empty()
    }

    /// DescribeGroups: members with their metadata and assignment (both empty unless the group is stable,
    /// as in Kafka, where they are meaningless mid-rebalance).
    pub fn describe(&self) -> Vec<MemberDescription> {
        let stable = self.state == GroupState::Stable;
        self.members
            .iter()
            .map(|(id, m)| MemberDescription {
                member_id: id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable {
                    m.metadata_for(self.protocol_name.as_deref())
                } else {
                    vec![]
                },
                assignment: if stable { m.assignment.clone() } else { vec![] },
            })
            .collect()
    }

    /// Kafka's OffsetCommit check. A commit with a negative generation and no member id comes from a client
    /// not using group management (or an admin tool) and is allowed only while the group has no members.
    pub fn validate_offset_commit(
        &self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
    ) -> i16 {
        if self.state == GroupState::Dead {
            return COORDINATOR_NOT_AVAILABLE;
        }
        if generation_id < 0 && member_id.is_empty() && group_instance_id.is_none() {
            return if self.members.is_empty() {
                NONE
            } else {
                UNKNOWN_MEMBER_ID
            };
        }
        if generation_id < 0 && self.state == GroupState::Empty {
            return NONE;
        }
        let member_error = self.check_member(member_id, group_instance_id);
        if member_error != NONE {
            return member_error;
        }
        if generation_id != self.generation_id {
            return ILLEGAL_GENERATION;
        }
        if self.state == GroupState::CompletingRebalance {
            return REBALANCE_IN_PROGRESS;
        }
        NONE
    }

    /// What a `__consumer_offsets` group record holds now; written when a generation completes (Stable) or
    /// the group empties, the two states a restarted coordinator can resume from.
    pub fn snapshot(&self, now_ms: i64) -> GroupSnapshot {
        GroupSnapshot {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation_id: self.generation_id,
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone(),
            current_state_timestamp_ms: now_ms,
            members: self
                .members
                .iter()
                .map(|(id, m)| MemberSnapshot {
                    member_id: id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata_for(self.protocol_name.as_deref()),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// Rebuilds a group from its record at start-up: Stable with its members if it had any (each gets a
    /// fresh session from `now_ms`, so members that are gone expire normally), Empty otherwise.
    pub fn restore(
        group_id: impl Into<String>,
        snapshot: GroupSnapshot,
        limits: GroupLimits,
        now_ms: i64,
    ) -> Self {
        let mut group = ClassicGroup::new(group_id, limits);
        group.generation_id = snapshot.generation_id;
        if !snapshot.protocol_type.is_empty() {
            group.protocol_type = Some(snapshot.protocol_type);
        }
        let Some(protocol) = snapshot
            .protocol_name
            .filter(|_| !snapshot.members.is_empty())
        else {
            return group;
        };
        for m in snapshot.members {
            if let Some(instance_id) = &m.group_instance_id {
                group
                    .static_members
                    .insert(instance_id.clone(), m.member_id.clone());
            }
            group.members.insert(
                m.member_id,
                Member {
                    group_instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocols: vec![(protocol.clone(), m.subscription)],
                    assignment: m.assignment,
                    awaiting_join: false,
                    awaiting_sync: false,
                    last_heartbeat_ms: now_ms,
                },
            );
        }
        group.leader = snapshot
            .leader
            .filter(|l| group.members.contains_key(l))
            .or_else(|| group.members.keys().next().cloned());
        group.protocol_name = Some(protocol);
        group.state = GroupState::Stable;
        group
    }

    fn set_state(&mut self, to: GroupState) -> Result<(), IllegalTransition> {
        if self.state == to {
            return Ok(());
        }
        if !self.state.can_move_to(to) {
            return Err(IllegalTransition {
                from: self.state,
                to,
            });
        }
        self.state = to;
        Ok(())
    }

    /// Moves to `to`; an illegal move is a bug in this module, so it is asserted in debug builds and ignored
    /// (state unchanged) in release, rather than taking the broker down.
    fn transition(&mut self, to: GroupState) {
        let result = self.set_state(to);
        debug_assert!(result.is_ok(), "{result:?}");
    }

    fn error_join(&self, member_id: &str, error_code: i16) -> JoinOutcome {
        JoinOutcome::Immediate(JoinResponse {
            error_code,
            member_id: member_id.to_string(),
            generation_id: -1,
            ..Default::default()
        })
    }

    /// Whether every member (the joining one included) supports a common protocol of this type.
    fn compatible(&self, request: &JoinRequest) -> bool {
        if request.protocol_type.is_empty() || request.protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(request.protocol_type.as_str()) {
            return false;
        }
        request.protocols.iter().any(|(name, _)| {
            self.members
                .iter()
                .filter(|(id, _)| **id != request.member_id)
                .all(|(_, m)| m.protocols.iter().any(|(n, _)| n == name))
        })
    }

    /// JoinGroup. `new_member_id` makes an id for a first join (Kafka: client id + "-" + UUID).
    pub fn join(
        &mut self,
        request: JoinRequest,
        now_ms: i64,
        new_member_id: impl FnOnce() -> String,
    ) -> (JoinOutcome, Vec<Reply>) {
        let l = self.limits;
        if self.state == GroupState::Dead {
            return (
                self.error_join(&request.member_id, COORDINATOR_NOT_AVAILABLE),
                vec![],
            );
        }
        if !(l.min_session_timeout_ms..=l.max_session_timeout_ms)
            .contains(&request.session_timeout_ms)
        {
            return (
                self.error_join(&request.member_id, INVALID_SESSION_TIMEOUT),
                vec![],
            );
        }
        if !self.compatible(&request) {
            return (
                self.error_join(&request.member_id, INCONSISTENT_GROUP_PROTOCOL),
                vec![],
            );
        }
        if let Some(instance_id) = request.group_instance_id.clone() {
            let (outcome, replies) = self.join_static(request, instance_id, now_ms, new_member_id);
            self.forget_departed_static_members();
            return (outcome, replies);
        }
        let mut request = request;
        if request.member_id.is_empty() {
            let id = new_member_id();
            if self.members.len() + self.pending_members.len() >= l.max_size {
                return (self.error_join("", GROUP_MAX_SIZE_REACHED), vec![]);
            }
            if request.require_known_member_id {
                self.pending_members
                    .insert(id.clone(), now_ms + i64::from(request.session_timeout_ms));
                return (self.error_join(&id, MEMBER_ID_REQUIRED), vec![]);
            }
            request.member_id = id;
        } else if !self.members.contains_key(&request.member_id)
            && self.pending_members.remove(&request.member_id).is_none()
        {
            return (
                self.error_join(&request.member_id, UNKNOWN_MEMBER_ID),
                vec![],
            );
        }
        let result = self.add_or_update_member(request, now_ms);
        self.forget_departed_static_members();
        result
    }

    /// KIP-345: a static member's first join (no member id) either takes a new place or replaces the member
    /// that held its instance id; a join with a member id must be the instance's current one.
    fn join_static(
        &mut self,
        mut request: JoinRequest,
        instance_id: String,
        now_ms: i64,
        new_member_id: impl FnOnce() -> String,
    ) -> (JoinOutcome, Vec<Reply>) {
        let current = self.static_members.get(&instance_id).cloned();
        if !request.member_id.is_empty() {
            return match current {
                Some(id) if id == request.member_id => self.add_or_update_member(request, now_ms),
                Some(_) => (
                    self.error_join(&request.member_id, FENCED_INSTANCE_ID),
                    vec![],
                ),
                None => (
                    self.error_join(&request.member_id, UNKNOWN_MEMBER_ID),
                    vec![],
                ),
            };
        }
        let new_id = new_member_id();
        match current.filter(|old| self.members.contains_key(old)) {
            Some(old_id) => self.replace_static_member(old_id, new_id, request, now_ms),
            None => {
                if self.members.len() + self.pending_members.len() >= self.limits.max_size {
                    return (self.error_join("", GROUP_MAX_SIZE_REACHED), vec![]);
                }
                self.static_members.insert(instance_id, new_id.clone());
                request.member_id = new_id;
                self.add_or_update_member(request, now_ms)
            }
        }
    }

    /// A restarted static member takes over its old place: same assignment, leadership kept. Answers the old
    /// member id still has pending are fenced. In a stable group with unchanged metadata there is no
    /// rebalance; otherwise it joins like a known member would.
    fn replace_static_member(
        &mut self,
        old_id: String,
        new_id: String,
        mut request: JoinRequest,
        now_ms: i64,
    ) -> (JoinOutcome, Vec<Reply>) {
        let mut replies = vec![];
        let Some(mut member) = self.members.remove(&old_id) else {
            return (self.error_join("", UNKNOWN_MEMBER_ID), vec![]);
        };
        if member.awaiting_join {
            replies.push(Reply::Join {
                member_id: old_id.clone(),
                response: JoinResponse {
                    error_code: FENCED_INSTANCE_ID,
                    member_id: old_id.clone(),
                    generation_id: -1,
                    ..Default::default()
                },
            });
        }
        if member.awaiting_sync {
            replies.push(Reply::Sync {
                member_id: old_id.clone(),
                error_code: FENCED_INSTANCE_ID,
                assignment: vec![],
            });
        }
        if let Some(instance_id) = &request.group_instance_id {
            self.static_members
                .insert(instance_id.clone(), new_id.clone());
        }
        if self.leader.as_deref() == Some(old_id.as_str()) {
            self.leader = Some(new_id.clone());
        }
        let unchanged = member.protocols == request.protocols;
        member.awaiting_join = false;
        member.awaiting_sync = false;
        member.last_heartbeat_ms = now_ms;
        member.client_id.clone_from(&request.client_id);
        member.client_host.clone_from(&request.client_host);
        member.session_timeout_ms = request.session_timeout_ms;
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        self.members.insert(new_id.clone(), member);
        if self.state == GroupState::Stable && unchanged {
            let is_leader = self.leader.as_deref() == Some(new_id.as_str());
            let mut response = self.join_response(&new_id, is_leader);
            response.skip_assignment = is_leader;
            return (JoinOutcome::Immediate(response), replies);
        }
        request.member_id = new_id;
        let (outcome, more) = self.add_or_update_member(request, now_ms);
        replies.extend(more);
        (outcome, replies)
    }

    /// Drops instance-id mappings whose member is gone (left, expired, or dropped from a join phase).
    fn forget_departed_static_members(&mut self) {
        let members = &self.members;
        self.static_members.retain(|_, id| members.contains_key(id));
    }

    /// Kafka's member check for SyncGroup, Heartbeat, OffsetCommit and LeaveGroup: a static member must be the
    /// instance's current holder (FENCED_INSTANCE_ID otherwise); any member must be known.
    pub fn check_member(&self, member_id: &str, group_instance_id: Option<&str>) -> i16 {
        if let Some(instance_id) = group_instance_id {
            match self.static_members.get(instance_id) {
                Some(id) if id == member_id => {}
                Some(_) => return FENCED_INSTANCE_ID,
                None => return UNKNOWN_MEMBER_ID,
            }
        }
        if self.members.contains_key(member_id) {
            NONE
        } else {
            UNKNOWN_MEMBER_ID
        }
    }

    fn add_or_update_member(
        &mut self,
        request: JoinRequest,
        now_ms: i64,
    ) -> (JoinOutcome, Vec<Reply>) {
        let id = request.member_id.clone();
        let existing = self.members.get(&id).cloned();
        // A follower rejoining a stable group with unchanged metadata just gets the current generation.
        if let Some(member) = &existing {
            if self.state == GroupState::Stable
                && self.leader.as_deref() != Some(id.as_str())
                && member.protocols == request.protocols
            {
                let response = self.join_response(&id, false);
                if let Some(m) = self.members.get_mut(&id) {
                    m.last_heartbeat_ms = now_ms;
                    m.awaiting_join = false;
                }
                return (JoinOutcome::Immediate(response), vec![]);
            }
        }
        if self.members.is_empty() {
            self.protocol_type = Some(request.protocol_type.clone());
        }
        let assignment = existing.map(|m| m.assignment).unwrap_or_default();
        self.members.insert(
            id.clone(),
            Member {
                group_instance_id: request.group_instance_id,
                client_id: request.client_id,
                client_host: request.client_host,
                session_timeout_ms: request.session_timeout_ms,
                rebalance_timeout_ms: request.rebalance_timeout_ms,
                protocols: request.protocols,
                assignment,
                awaiting_join: true,
                awaiting_sync: false,
                last_heartbeat_ms: now_ms,
            },
        );
        let mut replies = self.prepare_rebalance(now_ms);
        replies.extend(self.try_complete_join(now_ms, false));
        (JoinOutcome::Pending { member_id: id }, replies)
    }

    /// Starts (or extends) a join phase. Followers waiting in CompletingRebalance are told to rejoin.
    fn prepare_rebalance(&mut self, now_ms: i64) -> Vec<Reply> {
        let mut replies = vec![];
        if self.state == GroupState::CompletingRebalance {
            for (id, m) in self.members.iter_mut().filter(|(_, m)| m.awaiting_sync) {
                m.awaiting_sync = false;
                replies.push(Reply::Sync {
                    member_id: id.clone(),
                    error_code: REBALANCE_IN_PROGRESS,
                    assignment: vec![],
                });
            }
        }
        let max_rebalance = self
            .members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0);
        match self.state {
            GroupState::PreparingRebalance => {
                // A new member joining an initially delayed join extends the delay, up to the rebalance timeout.
                if self.generation_id == 0 || self.join_deadline_ms.is_none() {
                    let delayed = now_ms + self.limits.initial_rebalance_delay_ms;
                    self.join_deadline_ms =
                        Some(self.join_deadline_ms.map_or(delayed, |d| d.max(delayed)));
                }
            }
            GroupState::Empty => {
                self.transition(GroupState::PreparingRebalance);
                self.join_deadline_ms = Some(
                    now_ms
                        + self
                            .limits
                            .initial_rebalance_delay_ms
                            .min(max_rebalance.max(1)),
                );
            }
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.transition(GroupState::PreparingRebalance);
                self.join_deadline_ms = Some(now_ms + max_rebalance);
            }
            GroupState::Dead => {}
        }
        replies
    }

    /// Ends the join phase when every member has rejoined (after any initial delay), or at the deadline.
    fn try_complete_join(&mut self, now_ms: i64, deadline_passed: bool) -> Vec<Reply> {
        if self.state != GroupState::PreparingRebalance {
            return vec![];
        }
        let all_joined = self.members.values().all(|m| m.awaiting_join);
        let in_initial_delay =
            self.generation_id == 0 && self.join_deadline_ms.is_some_and(|d| now_ms < d);
        if !(deadline_passed || (all_joined && !in_initial_delay)) {
            return vec![];
        }
        // Members that did not rejoin in time are dropped.
        self.members.retain(|_, m| m.awaiting_join);
        self.join_deadline_ms = None;
        if self.members.is_empty() {
            self.transition(GroupState::Empty);
            self.generation_id += 1;
            self.protocol_name = None;
            self.leader = None;
            return vec![];
        }
        self.generation_id += 1;
        self.protocol_name = self.select_protocol();
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.transition(GroupState::CompletingRebalance);
        let ids: Vec<String> = self.members.keys().cloned().collect();
        ids.into_iter()
            .map(|id| {
                let is_leader = self.leader.as_deref() == Some(id.as_str());
                let response = self.join_response(&id, is_leader);
                if let Some(m) = self.members.get_mut(&id) {
                    m.awaiting_join = false;
                    m.last_heartbeat_ms = now_ms;
                }
                Reply::Join {
                    member_id: id,
                    response,
                }
            })
            .collect()
    }

    /// The protocol every member supports with the most first-choice votes; ties go to the leader's (or the
    /// first member's) preference order.
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == *n))
            })
            .collect();
        let votes = |name: &String| {
            self.members
                .values()
                .filter(|m| {
                    m.protocols
                        .iter()
                        .map(|(p, _)| p)
                        .find(|p| candidates.contains(p))
                        == Some(name)
                })
                .count()
        };
        let mut best: Option<(&String, usize)> = None;
        for c in &candidates {
            let v = votes(c);
            if best.is_none_or(|(_, bv)| v > bv) {
                best = Some((c, v));
            }
        }
        best.map(|(n, _)| n.clone())
    }

    fn join_response(&self, member_id: &str, with_members: bool) -> JoinResponse {
        let protocol = self.protocol_name.clone();
        let members = if with_members {
            self.members
                .iter()
                .map(|(id, m)| {
                    (
                        id.clone(),
                        m.group_instance_id.clone(),
                        m.metadata_for(protocol.as_deref()),
                    )
                })
                .collect()
        } else {
            vec![]
        };
        JoinResponse {
            error_code: NONE,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: protocol,
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members,
            skip_assignment: false,
        }
    }

    /// SyncGroup. The leader's call carries the assignment for everyone (members it leaves out get an empty
    /// one) and releases the followers waiting for it.
    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &mut self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Vec<u8>)>,
        now_ms: i64,
    ) -> (SyncOutcome, Vec<Reply>) {
        let fail = |error_code| {
            (
                SyncOutcome::Immediate {
                    error_code,
                    assignment: vec![],
                },
                vec![],
            )
        };
        let member_error = self.check_member(member_id, group_instance_id);
        if member_error != NONE {
            return fail(member_error);
        }
        if generation_id != self.generation_id {
            return fail(ILLEGAL_GENERATION);
        }
        if protocol_type.is_some_and(|t| Some(t) != self.protocol_type.as_deref())
            || protocol_name.is_some_and(|n| Some(n) != self.protocol_name.as_deref())
        {
            return fail(INCONSISTENT_GROUP_PROTOCOL);
        }
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_heartbeat_ms = now_ms;
        }
        match self.state {
            GroupState::PreparingRebalance => fail(REBALANCE_IN_PROGRESS),
            GroupState::Empty | GroupState::Dead => fail(UNKNOWN_MEMBER_ID),
            GroupState::Stable => (self.own_assignment(member_id), vec![]),
            GroupState::CompletingRebalance if self.leader.as_deref() != Some(member_id) => {
                if let Some(m) = self.members.get_mut(member_id) {
                    m.awaiting_sync = true;
                }
                (SyncOutcome::Pending, vec![])
            }
            GroupState::CompletingRebalance => {
                let mut given: BTreeMap<String, Vec<u8>> = assignments.into_iter().collect();
                for (id, m) in self.members.iter_mut() {
                    m.assignment = given.remove(id).unwrap_or_default();
                }
                self.transition(GroupState::Stable);
                let mut replies = vec![];
                for (id, m) in self.members.iter_mut().filter(|(_, m)| m.awaiting_sync) {
                    m.awaiting_sync = false;
                    replies.push(Reply::Sync {
                        member_id: id.clone(),
                        error_code: NONE,
                        assignment: m.assignment.clone(),
                    });
                }
                (self.own_assignment(member_id), replies)
            }
        }
    }

    /// A member's current assignment, as an immediate SyncGroup answer.
    fn own_assignment(&self, member_id: &str) -> SyncOutcome {
        let assignment = self
            .members
            .get(member_id)
            .map(|m| m.assignment.clone())
            .unwrap_or_default();
        SyncOutcome::Immediate {
            error_code: NONE,
            assignment,
        }
    }

    /// Heartbeat: keeps the session alive, and tells members to rejoin while a join phase is open.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        now_ms: i64,
    ) -> i16 {
        let member_error = self.check_member(member_id, group_instance_id);
        if member_error != NONE {
            return member_error;
        }
        let Some(member) = self.members.get_mut(member_id) else {
            return UNKNOWN_MEMBER_ID;
        };
        if generation_id != self.generation_id {
            return ILLEGAL_GENERATION;
        }
        member.last_heartbeat_ms = now_ms;
        match self.state {
            GroupState::PreparingRebalance => REBALANCE_IN_PROGRESS,
            GroupState::CompletingRebalance | GroupState::Stable => NONE,
            GroupState::Empty | GroupState::Dead => UNKNOWN_MEMBER_ID,
        }
    }

    /// LeaveGroup for some (member id, instance id) pairs; returns each one's error and any answers the
    /// departure releases. A static member may be removed by instance id alone (an empty member id, as
    /// `kafka-consumer-groups --delete --members` does); otherwise the pair must match (KIP-345 fencing).
    pub fn leave(
        &mut self,
        leaving: &[(String, Option<String>)],
        now_ms: i64,
    ) -> (Vec<i16>, Vec<Reply>) {
        let mut results = vec![];
        let mut removed = false;
        for (member_id, instance_id) in leaving {
            let member_id = match instance_id {
                Some(instance) if member_id.is_empty() => self
                    .static_members
                    .get(instance)
                    .cloned()
                    .unwrap_or_default(),
                _ => member_id.clone(),
            };
            if self.pending_members.remove(&member_id).is_some() {
                results.push(NONE);
                continue;
            }
            let error = self.check_member(&member_id, instance_id.as_deref());
            if error == NONE && self.members.remove(&member_id).is_some() {
                removed = true;
            }
            results.push(error);
        }
        self.forget_departed_static_members();
        let replies = if removed {
            self.membership_changed(now_ms)
        } else {
            vec![]
        };
        (results, replies)
    }

    fn membership_changed(&mut self, now_ms: i64) -> Vec<Reply> {
        if self
            .leader
            .as_ref()
            .is_some_and(|l| !self.members.contains_key(l))
        {
            self.leader = None;
        }
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                let mut replies = self.prepare_rebalance(now_ms);
                replies.extend(self.try_complete_join(now_ms, false));
                replies
            }
            GroupState::PreparingRebalance => self.try_complete_join(now_ms, false),
            GroupState::Empty | GroupState::Dead => vec![],
        }
    }

    /// Deadlines: expired sessions are removed (and the group rebalances), pending member ids lapse, and a
    /// join phase past its deadline completes with the members that made it.
    ///
    /// A member whose JoinGroup is parked in the join phase is alive by definition (Kafka's `shouldKeepAlive`);
    /// every other member, static ones included, expires at its session timeout in every state. That matters
    /// most while the group prepares a rebalance: a member that died without leaving never rejoins, and
    /// removing it at its session timeout lets the join complete then, instead of at the rebalance deadline
    /// (the largest `max.poll.interval.ms`, five minutes by default).
    pub fn tick(&mut self, now_ms: i64) -> Vec<Reply> {
        self.pending_members.retain(|_, expiry| *expiry > now_ms);
        let waiting_for_join = self.state == GroupState::PreparingRebalance;
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| !(waiting_for_join && m.awaiting_join))
            .filter(|(_, m)| now_ms - m.last_heartbeat_ms >= i64::from(m.session_timeout_ms))
            .map(|(id, _)| id.clone())
            .collect();
        let mut replies = vec![];
        if !expired.is_empty() {
            for id in &expired {
                self.members.remove(id);
            }
            replies.extend(self.membership_changed(now_ms));
        }
        if self.state == GroupState::PreparingRebalance
            && self.join_deadline_ms.is_some_and(|d| now_ms >= d)
        {
            replies.extend(self.try_complete_join(now_ms, true));
        } else if self.state == GroupState::Empty {
            self.join_deadline_ms = None;
        }
        self.forget_departed_static_members();
        replies
    }

    /// DeleteGroups: only an empty group can go.
    pub fn delete(&mut self) -> Result<(), IllegalTransition> {
        if !self.members.is_empty() {
            return Err(IllegalTransition {
                from: self.state,
                to: GroupState::Dead,
            });
        }
        self.set_state(GroupState::Dead)
    }
}

#[cfg(test)]
mod tests;

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

mod join;
#[cfg(test)]
mod tests;

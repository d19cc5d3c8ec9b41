//! One classic group: membership, generations, protocol selection, and the join/sync barrier.
//!
//! Requests that must wait (a JoinGroup until the join phase ends, a follower's SyncGroup until the leader's
//! assignment) return `Pending`; their answers come out later as [`Reply`] values from whichever call
//! completes the phase (another member's join, the leader's sync, or [`ClassicGroup::tick`] at a deadline).

use super::errors::*;
use super::state::{GroupState, IllegalTransition};
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
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JoinResponse {
    pub error_code: i16,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Only the leader gets the members and their metadata for the chosen protocol.
    pub members: Vec<(String, Vec<u8>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinOutcome {
    Immediate(JoinResponse),
    Pending,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    Immediate {
        error_code: i16,
        assignment: Vec<u8>,
    },
    Pending,
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
    client_id: String,
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

#[derive(Debug, Clone)]
pub struct ClassicGroup {
    pub group_id: String,
    state: GroupState,
    generation_id: i32,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
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
        self.add_or_update_member(request, now_ms)
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
                }
                return (JoinOutcome::Immediate(response), vec![]);
            }
        }
        if self.members.is_empty() {
            self.protocol_type = Some(request.protocol_type.clone());
        }
        let assignment = existing.map(|m| m.assignment).unwrap_or_default();
        self.members.insert(
            id,
            Member {
                client_id: request.client_id,
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
        (JoinOutcome::Pending, replies)
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
                    let metadata = m
                        .protocols
                        .iter()
                        .find(|(n, _)| Some(n) == protocol.as_ref())
                        .map(|(_, md)| md.clone());
                    (id.clone(), metadata.unwrap_or_default())
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
        }
    }

    /// SyncGroup. The leader's call carries the assignment for everyone (members it leaves out get an empty
    /// one) and releases the followers waiting for it.
    pub fn sync(
        &mut self,
        member_id: &str,
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
        if !self.members.contains_key(member_id) {
            return fail(UNKNOWN_MEMBER_ID);
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
    pub fn heartbeat(&mut self, member_id: &str, generation_id: i32, now_ms: i64) -> i16 {
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

    /// LeaveGroup for some members; returns each one's error and any answers the departure releases.
    pub fn leave(
        &mut self,
        member_ids: &[String],
        now_ms: i64,
    ) -> (Vec<(String, i16)>, Vec<Reply>) {
        let mut results = vec![];
        let mut removed = false;
        for id in member_ids {
            if self.members.remove(id).is_some() || self.pending_members.remove(id).is_some() {
                removed = true;
                results.push((id.clone(), NONE));
            } else {
                results.push((id.clone(), UNKNOWN_MEMBER_ID));
            }
        }
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
        if !expired.is_empty() && !waiting_for_join {
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

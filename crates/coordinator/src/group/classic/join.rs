//! The join phase of a classic group: JoinGroup (dynamic and static members), the start, extension and end of
//! a rebalance, protocol selection, and the answers the phase releases.

use super::{ClassicGroup, JoinOutcome, JoinRequest, JoinResponse, Member, Reply};
use crate::group::errors::*;
use crate::group::state::GroupState;

impl ClassicGroup {
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
    pub(super) fn forget_departed_static_members(&mut self) {
        let members = &self.members;
        self.static_members.retain(|_, id| members.contains_key(id));
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
    pub(super) fn prepare_rebalance(&mut self, now_ms: i64) -> Vec<Reply> {
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
    pub(super) fn try_complete_join(&mut self, now_ms: i64, deadline_passed: bool) -> Vec<Reply> {
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
}

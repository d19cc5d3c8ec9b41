//! ConsumerGroupHeartbeat: every check first ([`validate`], then [`ConsumerGroup::admit`]), then the changes,
//! so a refused heartbeat leaves the group exactly as it was.

use super::member::{from_wire, to_wire, Member, SubscriptionChanged};
use super::reconcile::is_subset;
use super::{
    ConsumerGroup, ConsumerGroupError, ConsumerGroupState, HeartbeatRequest, HeartbeatResponse,
    TopicView, JOIN_EPOCH, LEAVE_EPOCH, STATIC_LEAVE_EPOCH,
};
use crate::assignor::AssignorKind;

/// How a heartbeat that passed its checks enters the group.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Admission {
    /// Epoch 0 from a member id the group does not know (or an empty one: the coordinator picks it).
    New,
    /// Epoch 0 from a known member, e.g. after being fenced: it keeps its place and reconciles from what it
    /// reports owning (nothing, on a join).
    Rejoin,
    /// Epoch 0 with the instance id of a static member that left with -2: the new member id takes over that
    /// member's assignment and epoch, so a restart moves no partition.
    ReplaceStatic { previous_member_id: String },
    /// A regular heartbeat from a member whose epoch checks passed.
    Known,
}

/// Shape checks that need no group state (Kafka's `throwIfConsumerGroupHeartbeatRequestIsInvalid`); returns
/// the requested assignor, if any.
fn validate(request: &HeartbeatRequest) -> Result<Option<AssignorKind>, ConsumerGroupError> {
    use ConsumerGroupError::InvalidRequest;
    let epoch = request.member_epoch;
    if epoch < STATIC_LEAVE_EPOCH {
        return Err(InvalidRequest("member epoch is invalid"));
    }
    if epoch != JOIN_EPOCH && request.member_id.is_empty() {
        return Err(InvalidRequest("member id can't be empty"));
    }
    if request.instance_id.as_deref() == Some("") {
        return Err(InvalidRequest("instance id can't be empty"));
    }
    if request.rack_id.as_deref() == Some("") {
        return Err(InvalidRequest("rack id can't be empty"));
    }
    if request.rebalance_timeout_ms < -1 {
        return Err(InvalidRequest("rebalance timeout is invalid"));
    }
    if epoch == JOIN_EPOCH {
        if request.rebalance_timeout_ms == -1 {
            return Err(InvalidRequest("rebalance timeout must be set when joining"));
        }
        if request.subscribed_topic_names.is_none() && request.subscribed_topic_regex.is_none() {
            return Err(InvalidRequest(
                "subscribed topic names or a subscribed topic regex must be set when joining",
            ));
        }
        if request
            .owned_partitions
            .as_ref()
            .is_some_and(|o| !o.is_empty())
        {
            return Err(InvalidRequest(
                "owned partitions must be empty when joining",
            ));
        }
    }
    if let Some(pattern) = request.subscribed_topic_regex.as_deref() {
        if !pattern.is_empty() {
            super::regex::compile(pattern)?;
        }
    }
    if epoch == STATIC_LEAVE_EPOCH && request.instance_id.is_none() {
        return Err(InvalidRequest(
            "instance id is required to leave with epoch -2",
        ));
    }
    Ok(request
        .server_assignor
        .as_deref()
        .map(str::parse)
        .transpose()?)
}

impl ConsumerGroup {
    /// Handles one ConsumerGroupHeartbeat. `new_member_id` is called only when a v0 client joins without a
    /// member id.
    pub fn heartbeat(
        &mut self,
        request: HeartbeatRequest,
        topics: &impl TopicView,
        now_ms: i64,
        new_member_id: impl FnOnce() -> String,
    ) -> HeartbeatResponse {
        match self.try_heartbeat(&request, topics, now_ms, new_member_id) {
            Ok(response) => response,
            Err(error) => HeartbeatResponse::error(&request.member_id, &error),
        }
    }

    fn try_heartbeat(
        &mut self,
        request: &HeartbeatRequest,
        topics: &impl TopicView,
        now_ms: i64,
        new_member_id: impl FnOnce() -> String,
    ) -> Result<HeartbeatResponse, ConsumerGroupError> {
        if self.state == ConsumerGroupState::Dead {
            return Err(ConsumerGroupError::Dead);
        }
        let server_assignor = validate(request)?;
        match request.member_epoch {
            LEAVE_EPOCH => return self.leave(request, topics),
            STATIC_LEAVE_EPOCH => return self.leave_for_now(request, now_ms),
            _ => {}
        }
        let admission = self.admit(request)?;
        // Checks are over: from here on the heartbeat is applied.
        let member_id = self.enter(request, &admission, new_member_id);
        self.unpersisted.insert(member_id.clone());
        let Some(member) = self.members.get_mut(&member_id) else {
            debug_assert!(false, "admitted member {member_id} is missing");
            return Err(ConsumerGroupError::UnknownMember(member_id));
        };
        let before = member.assignment.assigned.clone();
        let SubscriptionChanged(changed) = member.update(request, server_assignor, now_ms);
        let patterns_changed = self.refresh_regexes(topics, now_ms, false);
        let topics_changed = self.refresh_topics(topics);
        if changed || patterns_changed || topics_changed || admission == Admission::New {
            self.bump_group_epoch();
        }
        // A joining member owns nothing, whether or not it says so.
        let owned = match &request.owned_partitions {
            None if request.member_epoch == JOIN_EPOCH => Some(Default::default()),
            owned => owned.as_deref().map(from_wire),
        };
        self.reconcile_member(&member_id, owned.as_ref(), now_ms);
        self.refresh_state();
        let full_request = request.rebalance_timeout_ms != -1
            && request.subscribed_topic_names.is_some()
            && request.owned_partitions.is_some();
        let assignment = self.members.get(&member_id).map(|m| &m.assignment);
        Ok(HeartbeatResponse {
            member_id,
            member_epoch: assignment.map_or(0, |a| a.epoch),
            heartbeat_interval_ms: self.config.heartbeat_interval_ms,
            assignment: assignment
                .filter(|a| {
                    request.member_epoch == JOIN_EPOCH || full_request || a.assigned != before
                })
                .map(|a| to_wire(&a.assigned)),
            ..Default::default()
        })
    }

    /// Decides how the heartbeat enters the group, or why it may not. Changes nothing.
    fn admit(&self, request: &HeartbeatRequest) -> Result<Admission, ConsumerGroupError> {
        if request.member_epoch == JOIN_EPOCH {
            return self.admit_join(request);
        }
        let member = self
            .members
            .get(&request.member_id)
            .ok_or_else(|| ConsumerGroupError::UnknownMember(request.member_id.clone()))?;
        if let Some(instance_id) = &request.instance_id {
            if member.instance_id.as_ref() != Some(instance_id) {
                return Err(ConsumerGroupError::FencedInstanceId(instance_id.clone()));
            }
        }
        let (received, current) = (request.member_epoch, member.assignment.epoch);
        let fenced = ConsumerGroupError::FencedMemberEpoch { received, current };
        if member.away || received > current {
            return Err(fenced);
        }
        if received < current {
            // The response that moved the member to `current` may have been lost: its previous epoch is fine
            // as long as it owns nothing it was not given.
            let owned = request.owned_partitions.as_deref().map(from_wire);
            let consistent = owned.is_some_and(|o| is_subset(&o, &member.assignment.assigned));
            if received != member.assignment.previous_epoch || !consistent {
                return Err(fenced);
            }
        }
        Ok(Admission::Known)
    }

    fn admit_join(&self, request: &HeartbeatRequest) -> Result<Admission, ConsumerGroupError> {
        if let Some(instance_id) = &request.instance_id {
            if let Some(owner) = self.static_members.get(instance_id) {
                if *owner == request.member_id {
                    return Ok(Admission::Rejoin);
                }
                if self.members.get(owner).is_some_and(|m| m.away) {
                    return Ok(Admission::ReplaceStatic {
                        previous_member_id: owner.clone(),
                    });
                }
                return Err(ConsumerGroupError::UnreleasedInstanceId {
                    instance_id: instance_id.clone(),
                    owner: owner.clone(),
                });
            }
        }
        if let Some(member) = self.members.get(&request.member_id) {
            if member.instance_id != request.instance_id {
                return Err(ConsumerGroupError::InvalidRequest(
                    "a member cannot change its instance id",
                ));
            }
            return Ok(Admission::Rejoin);
        }
        if self.members.len() >= self.config.max_size {
            return Err(ConsumerGroupError::GroupMaxSizeReached(
                self.config.max_size,
            ));
        }
        Ok(Admission::New)
    }

    /// Adds or renames the member as admitted; returns its id.
    fn enter(
        &mut self,
        request: &HeartbeatRequest,
        admission: &Admission,
        new_member_id: impl FnOnce() -> String,
    ) -> String {
        let chosen_id = || {
            if request.member_id.is_empty() {
                new_member_id()
            } else {
                request.member_id.clone()
            }
        };
        match admission {
            Admission::Rejoin | Admission::Known => request.member_id.clone(),
            Admission::New => {
                let member_id = chosen_id();
                debug_assert!(!self.members.contains_key(&member_id), "{member_id} reused");
                self.members
                    .insert(member_id.clone(), Member::joining(request));
                if let Some(instance_id) = &request.instance_id {
                    self.static_members
                        .insert(instance_id.clone(), member_id.clone());
                }
                member_id
            }
            Admission::ReplaceStatic { previous_member_id } => {
                let member_id = chosen_id();
                self.unpersisted.insert(previous_member_id.clone());
                if let Some(member) = self.members.remove(previous_member_id) {
                    self.members.insert(member_id.clone(), member);
                }
                if let Some(target) = self.target.remove(previous_member_id) {
                    self.target.insert(member_id.clone(), target);
                }
                if let Some(instance_id) = &request.instance_id {
                    self.static_members
                        .insert(instance_id.clone(), member_id.clone());
                }
                member_id
            }
        }
    }

    /// Epoch -1: the member leaves for good; its partitions go to the others at a new group epoch.
    fn leave(
        &mut self,
        request: &HeartbeatRequest,
        topics: &impl TopicView,
    ) -> Result<HeartbeatResponse, ConsumerGroupError> {
        let member = self
            .members
            .get(&request.member_id)
            .ok_or_else(|| ConsumerGroupError::UnknownMember(request.member_id.clone()))?;
        if let Some(instance_id) = &request.instance_id {
            if member.instance_id.as_ref() != Some(instance_id) {
                return Err(ConsumerGroupError::FencedInstanceId(instance_id.clone()));
            }
        }
        self.remove_member(&request.member_id);
        self.refresh_topics(topics);
        self.bump_group_epoch();
        self.refresh_state();
        Ok(left(request, LEAVE_EPOCH))
    }

    /// Epoch -2: a static member goes away but keeps its partitions until its session times out, waiting
    /// for the same instance id to come back. Nothing is reassigned, so the group epoch stays.
    fn leave_for_now(
        &mut self,
        request: &HeartbeatRequest,
        now_ms: i64,
    ) -> Result<HeartbeatResponse, ConsumerGroupError> {
        let instance_id = request.instance_id.clone().unwrap_or_default();
        let owner = self
            .static_members
            .get(&instance_id)
            .ok_or_else(|| ConsumerGroupError::UnknownMember(request.member_id.clone()))?;
        if *owner != request.member_id {
            return Err(ConsumerGroupError::FencedInstanceId(instance_id));
        }
        let Some(member) = self.members.get_mut(&request.member_id) else {
            debug_assert!(false, "static member {} is missing", request.member_id);
            return Err(ConsumerGroupError::UnknownMember(request.member_id.clone()));
        };
        member.away = true;
        member.last_heartbeat_ms = now_ms;
        self.unpersisted.insert(request.member_id.clone());
        Ok(left(request, STATIC_LEAVE_EPOCH))
    }
}

fn left(request: &HeartbeatRequest, member_epoch: i32) -> HeartbeatResponse {
    HeartbeatResponse {
        member_id: request.member_id.clone(),
        member_epoch,
        ..Default::default()
    }
}

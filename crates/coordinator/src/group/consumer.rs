//! One KIP-848 consumer group (ConsumerGroupHeartbeat / ConsumerGroupDescribe), as pure logic.
//!
//! In the new protocol the coordinator assigns partitions itself and every member converges on its share
//! through its own heartbeats; there is no group-wide barrier. Three epochs order everything:
//! ```text
//!   group epoch        bumped when membership, subscriptions, the chosen assignor or the subscribed topics'
//!                      partition counts change
//!   assignment epoch   the group epoch the target assignment was computed at (here: always equal, since the
//!                      assignor runs in the call that bumps the group epoch)
//!   member epoch       per member: the assignment epoch it has reconciled to (see `reconcile`)
//!
//!   heartbeat ─▶ validate ─▶ admit (join / rejoin / static takeover / known member, epoch checks)
//!             ─▶ apply fields ─▶ [bump group epoch ─▶ run assignor] ─▶ reconcile this member ─▶ response
//!   tick ─▶ expire members past their session or revocation deadline ─▶ bump group epoch ─▶ run assignor
//! ```
//! Time is an input (`now_ms`), topic metadata is read through [`TopicView`], and the member id of a joining
//! v0 client comes from the caller, so a runtime drives this with clocks and metadata while tests use numbers.
//!
//! The heartbeat response carries the member's assignment only when the request joins (epoch 0), when it is a
//! full request (rebalance timeout, subscriptions and owned partitions all present, as a client sends after
//! an error), or when this heartbeat changed the assignment; otherwise it is left null, meaning unchanged.
//! That is Kafka's rule, so a lost response is repaired by the client's next full request.
//!
//! Durability is the runtime's, through `persist`: after each call it takes
//! [`ConsumerGroup::records_since`] (Kafka's `__consumer_offsets` records for what changed) and appends
//! them; at start-up [`ConsumerGroup::restore`] rebuilds the group from what replay found.

mod heartbeat;
mod member;
mod persist;
mod reconcile;
pub mod regex;
mod state;

#[cfg(test)]
mod regex_tests;
#[cfg(test)]
mod tests;

pub use reconcile::MemberState;
pub use state::{ConsumerGroupState, IllegalConsumerTransition};

use crate::assignor::{Assignment, AssignorKind, TopicMetadata, UnsupportedAssignor};
use member::Member;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use uuid::Uuid;

/// A member epoch of 0 in a heartbeat: join, or rejoin after being fenced.
pub const JOIN_EPOCH: i32 = 0;
/// A member epoch of -1 in a heartbeat: leave the group.
pub const LEAVE_EPOCH: i32 = -1;
/// A member epoch of -2 in a heartbeat: a static member leaves for now and keeps its partitions.
pub const STATIC_LEAVE_EPOCH: i32 = -2;

/// Kafka error codes of the new protocol, next to the ones the classic group shares.
pub mod errors {
    pub use crate::group::errors::{
        COORDINATOR_NOT_AVAILABLE, GROUP_MAX_SIZE_REACHED, NONE, UNKNOWN_MEMBER_ID,
    };
    pub const INVALID_REQUEST: i16 = 42;
    pub const NON_EMPTY_GROUP: i16 = 68;
    pub const FENCED_INSTANCE_ID: i16 = 82;
    pub const FENCED_MEMBER_EPOCH: i16 = 110;
    pub const UNRELEASED_INSTANCE_ID: i16 = 111;
    pub const UNSUPPORTED_ASSIGNOR: i16 = 112;
    pub const STALE_MEMBER_EPOCH: i16 = 113;
    pub const INVALID_REGULAR_EXPRESSION: i16 = 128;
}

/// Group settings with Kafka's names and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupConfig {
    /// `group.consumer.session.timeout.ms`
    pub session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms`
    pub heartbeat_interval_ms: i32,
    /// `group.consumer.max.size`
    pub max_size: usize,
    /// The first of `group.consumer.assignors`: used when no member asks for one. Typed rather than a name
    /// so that an unknown name is rejected when the configuration is read, not at the first join.
    pub default_assignor: AssignorKind,
}

impl Default for ConsumerGroupConfig {
    fn default() -> Self {
        ConsumerGroupConfig {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
            max_size: usize::MAX,
            default_assignor: AssignorKind::Uniform,
        }
    }
}

/// A ConsumerGroupHeartbeat request. `None` (null on the wire) means "unchanged since the last heartbeat",
/// as does -1 for `rebalance_timeout_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeartbeatRequest {
    /// Empty when a v0 client joins (the coordinator picks one); v1 clients send their own UUID.
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    /// A pattern subscription (RE2 syntax); `Some("")` removes the member's pattern.
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// The partitions the member owns now.
    pub owned_partitions: Option<Vec<(Uuid, Vec<i32>)>>,
    pub client_id: String,
    pub client_host: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeartbeatResponse {
    pub error_code: i16,
    pub error_message: Option<String>,
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// The member's whole current assignment; `None` when unchanged (see the module doc).
    pub assignment: Option<Vec<(Uuid, Vec<i32>)>>,
}

impl HeartbeatResponse {
    /// An error answer; the other fields keep Kafka's defaults, which clients ignore on error.
    fn error(member_id: &str, error: &ConsumerGroupError) -> Self {
        HeartbeatResponse {
            error_code: error.error_code(),
            error_message: Some(error.to_string()),
            member_id: member_id.to_string(),
            ..Default::default()
        }
    }
}

/// Topic metadata as the group needs it: name -> (topic id, partition count), `None` if the topic does not
/// exist; and, for pattern subscriptions, every topic name.
pub trait TopicView {
    fn topic(&self, name: &str) -> Option<(Uuid, i32)>;

    /// Every topic's name.
    fn topic_names(&self) -> Vec<String>;

    /// A number that changes whenever the set of topic names does, so pattern subscriptions are resolved
    /// again only then. The default hashes the names; a view that counts changes can answer cheaper.
    fn names_version(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut names = self.topic_names();
        names.sort();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        names.hash(&mut hasher);
        hasher.finish()
    }
}

impl TopicView for TopicMetadata {
    fn topic(&self, name: &str) -> Option<(Uuid, i32)> {
        self.get(name).copied()
    }

    fn topic_names(&self) -> Vec<String> {
        self.keys().cloned().collect()
    }
}

impl TopicView for HashMap<String, (Uuid, i32)> {
    fn topic(&self, name: &str) -> Option<(Uuid, i32)> {
        self.get(name).copied()
    }

    fn topic_names(&self) -> Vec<String> {
        self.keys().cloned().collect()
    }
}

/// What ConsumerGroupDescribe reports about a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: ConsumerGroupState,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor_name: String,
    /// In member id order.
    pub members: Vec<MemberDescription>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    /// -2 while a static member is away.
    pub member_epoch: i32,
    pub client_id: String,
    pub client_host: String,
    /// Sorted.
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub assignment: Vec<(Uuid, Vec<i32>)>,
    pub target_assignment: Vec<(Uuid, Vec<i32>)>,
}

/// Why a heartbeat (or a delete) was refused; [`ConsumerGroupError::error_code`] is its Kafka error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsumerGroupError {
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    #[error("SubscribedTopicRegex `{regex}` is not a valid regular expression: {reason}")]
    InvalidRegularExpression { regex: String, reason: String },
    #[error(transparent)]
    UnsupportedAssignor(#[from] UnsupportedAssignor),
    #[error("{0:?} is not a member of the group")]
    UnknownMember(String),
    #[error(
        "member epoch {received} is fenced: the member is at epoch {current}; rejoin with epoch 0"
    )]
    FencedMemberEpoch { received: i32, current: i32 },
    #[error("instance id {instance_id:?} is still used by member {owner:?}")]
    UnreleasedInstanceId { instance_id: String, owner: String },
    #[error("instance id {0:?} does not belong to this member")]
    FencedInstanceId(String),
    #[error("the group has reached its maximum size of {0} members")]
    GroupMaxSizeReached(usize),
    #[error("the group still has members")]
    NotEmpty,
    #[error("the group is being deleted")]
    Dead,
}

impl ConsumerGroupError {
    pub fn error_code(&self) -> i16 {
        use errors::*;
        match self {
            ConsumerGroupError::InvalidRequest(_) => INVALID_REQUEST,
            ConsumerGroupError::InvalidRegularExpression { .. } => INVALID_REGULAR_EXPRESSION,
            ConsumerGroupError::UnsupportedAssignor(_) => UNSUPPORTED_ASSIGNOR,
            ConsumerGroupError::UnknownMember(_) => UNKNOWN_MEMBER_ID,
            ConsumerGroupError::FencedMemberEpoch { .. } => FENCED_MEMBER_EPOCH,
            ConsumerGroupError::UnreleasedInstanceId { .. } => UNRELEASED_INSTANCE_ID,
            ConsumerGroupError::FencedInstanceId(_) => FENCED_INSTANCE_ID,
            ConsumerGroupError::GroupMaxSizeReached(_) => GROUP_MAX_SIZE_REACHED,
            ConsumerGroupError::NotEmpty => NON_EMPTY_GROUP,
            // The runtime drops a dead group; a client retrying finds a fresh one.
            ConsumerGroupError::Dead => COORDINATOR_NOT_AVAILABLE,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConsumerGroup {
    group_id: String,
    config: ConsumerGroupConfig,
    state: ConsumerGroupState,
    group_epoch: i32,
    assignment_epoch: i32,
    /// The assignor the current target assignment was computed with.
    assignor: AssignorKind,
    members: BTreeMap<String, Member>,
    /// Instance id -> member id of the static members.
    static_members: BTreeMap<String, String>,
    /// Member id -> target assignment at `assignment_epoch`.
    target: BTreeMap<String, Assignment>,
    /// The subscribed topics that exist, as the target assignment saw them; a difference from what
    /// [`TopicView`] says now bumps the group epoch.
    topics: TopicMetadata,
    /// The members' patterns and the topics they resolved to.
    regexes: regex::RegexSubscriptions,
    /// Members changed (added, updated, reconciled, removed) since [`ConsumerGroup::mark_persisted`]: the
    /// only ones whose records [`ConsumerGroup::records_since`] compares (see `persist`).
    unpersisted: BTreeSet<String>,
}

impl ConsumerGroup {
    pub fn new(group_id: impl Into<String>, config: ConsumerGroupConfig) -> Self {
        ConsumerGroup {
            group_id: group_id.into(),
            assignor: config.default_assignor,
            config,
            state: ConsumerGroupState::Empty,
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            target: BTreeMap::new(),
            topics: TopicMetadata::new(),
            regexes: regex::RegexSubscriptions::default(),
            unpersisted: BTreeSet::new(),
        }
    }

    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    pub fn state(&self) -> ConsumerGroupState {
        self.state
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn group_epoch(&self) -> i32 {
        self.group_epoch
    }

    pub fn assignment_epoch(&self) -> i32 {
        self.assignment_epoch
    }

    pub fn assignor(&self) -> AssignorKind {
        self.assignor
    }

    /// Per-group configs (KIP-848 `consumer.session.timeout.ms`, `consumer.heartbeat.interval.ms`) changed:
    /// session deadlines are measured with the new timeout from now on, and heartbeats answer with the new
    /// interval.
    pub fn set_timings(&mut self, session_timeout_ms: i32, heartbeat_interval_ms: i32) {
        self.config.session_timeout_ms = session_timeout_ms;
        self.config.heartbeat_interval_ms = heartbeat_interval_ms;
    }

    pub fn member_ids(&self) -> impl Iterator<Item = &str> {
        self.members.keys().map(String::as_str)
    }

    /// When [`ConsumerGroup::tick`] next has something to do, if ever: the earliest session or revocation
    /// deadline.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.members
            .values()
            .map(|m| m.deadline_ms(self.config.session_timeout_ms))
            .min()
    }

    /// Removes the members whose session (no heartbeat for `session_timeout_ms`) or revocation (partitions
    /// not given up within their `rebalance_timeout_ms`) deadline has passed, freeing their partitions.
    /// Returns their ids.
    pub fn tick(&mut self, now_ms: i64, topics: &impl TopicView) -> Vec<String> {
        let session_timeout_ms = self.config.session_timeout_ms;
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| now_ms >= m.deadline_ms(session_timeout_ms))
            .map(|(id, _)| id.clone())
            .collect();
        if expired.is_empty() {
            return expired;
        }
        for member_id in &expired {
            self.remove_member(member_id);
        }
        self.refresh_topics(topics);
        self.bump_group_epoch();
        self.refresh_state();
        expired
    }

    /// Re-reads the subscribed topics' metadata (a runtime calls this when topics are created, deleted or
    /// grow partitions); a change bumps the group epoch and recomputes the target. Returns whether it did.
    pub fn topics_changed(&mut self, topics: &impl TopicView) -> bool {
        if self.state == ConsumerGroupState::Dead || !self.refresh_topics(topics) {
            return false;
        }
        self.bump_group_epoch();
        self.refresh_state();
        true
    }

    /// The error code for an OffsetCommit (v9+) by `member_id` at `member_epoch`. A negative epoch with no
    /// members is a commit by a tool or a consumer without group management, which Kafka allows.
    pub fn validate_offset_commit(&self, member_id: &str, member_epoch: i32) -> i16 {
        if member_epoch < 0 && self.members.is_empty() {
            return errors::NONE;
        }
        self.check_member_epoch(member_id, member_epoch)
    }

    /// The error code for an OffsetFetch (v9+). A negative epoch means the fetch is not made as a member,
    /// so it is not checked.
    pub fn validate_offset_fetch(&self, member_id: &str, member_epoch: i32) -> i16 {
        if member_epoch < 0 {
            return errors::NONE;
        }
        self.check_member_epoch(member_id, member_epoch)
    }

    fn check_member_epoch(&self, member_id: &str, member_epoch: i32) -> i16 {
        match self.members.get(member_id) {
            None => errors::UNKNOWN_MEMBER_ID,
            Some(member) if member.assignment.epoch != member_epoch => errors::STALE_MEMBER_EPOCH,
            Some(_) => errors::NONE,
        }
    }

    pub fn describe(&self) -> GroupDescription {
        let empty = Assignment::new();
        GroupDescription {
            group_id: self.group_id.clone(),
            state: self.state,
            group_epoch: self.group_epoch,
            assignment_epoch: self.assignment_epoch,
            assignor_name: self.assignor.name().to_string(),
            members: self
                .members
                .iter()
                .map(|(id, m)| m.describe(id, self.target.get(id).unwrap_or(&empty)))
                .collect(),
        }
    }

    /// Marks the group deleted (DeleteGroups); only an empty group can be.
    pub fn delete(&mut self) -> Result<(), ConsumerGroupError> {
        if !self.members.is_empty() {
            return Err(ConsumerGroupError::NotEmpty);
        }
        self.transition(ConsumerGroupState::Dead);
        Ok(())
    }

    fn set_state(&mut self, to: ConsumerGroupState) -> Result<(), IllegalConsumerTransition> {
        if self.state == to {
            return Ok(());
        }
        if !self.state.can_move_to(to) {
            return Err(IllegalConsumerTransition {
                from: self.state,
                to,
            });
        }
        self.state = to;
        Ok(())
    }

    /// Moves to `to`; an illegal move is a bug in this module, so it is asserted in debug builds and ignored
    /// (state unchanged) in release, rather than taking the broker down.
    fn transition(&mut self, to: ConsumerGroupState) {
        let result = self.set_state(to);
        debug_assert!(result.is_ok(), "{result:?}");
    }

    /// Moves to the state the epochs call for (Kafka's `maybeUpdateGroupState`).
    fn refresh_state(&mut self) {
        self.transition(self.derived_state());
    }

    /// The state the epochs call for.
    fn derived_state(&self) -> ConsumerGroupState {
        let converged = |m: &Member| {
            m.assignment.epoch == self.assignment_epoch && m.assignment.state == MemberState::Stable
        };
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch > self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self.members.values().all(converged) {
            ConsumerGroupState::Stable
        } else {
            ConsumerGroupState::Reconciling
        }
    }

    /// What `member` is subscribed to: the topics it names and those its pattern resolved to.
    fn subscription_of(&self, member: &Member) -> BTreeSet<String> {
        let mut topics = member.subscribed_topic_names.clone();
        let resolved = member
            .subscribed_topic_regex
            .as_deref()
            .and_then(|pattern| self.regexes.topics_of(pattern));
        if let Some(resolved) = resolved {
            topics.extend(resolved.iter().cloned());
        }
        topics
    }

    /// Resolves the members' patterns when due (see `regex`); returns whether a pattern's topics changed.
    fn refresh_regexes(&mut self, view: &impl TopicView, now_ms: i64, force: bool) -> bool {
        let in_use: BTreeSet<String> = self
            .members
            .values()
            .filter_map(|m| m.subscribed_topic_regex.clone())
            .collect();
        self.regexes.refresh(&in_use, view, now_ms, force)
    }

    /// Re-reads the metadata of every subscribed topic; returns whether it differs from what the target
    /// assignment was computed with.
    fn refresh_topics(&mut self, view: &impl TopicView) -> bool {
        let names: BTreeSet<String> = self
            .members
            .values()
            .flat_map(|m| self.subscription_of(m))
            .collect();
        let topics: TopicMetadata = names
            .into_iter()
            .filter_map(|name| view.topic(&name).map(|topic| (name, topic)))
            .collect();
        if topics == self.topics {
            return false;
        }
        self.topics = topics;
        true
    }

    /// A new group epoch, and the target assignment for it.
    fn bump_group_epoch(&mut self) {
        self.group_epoch += 1;
        self.transition(ConsumerGroupState::Assigning);
        self.assignor = self.chosen_assignor();
        let subscriptions: BTreeMap<String, BTreeSet<String>> = self
            .members
            .iter()
            .map(|(id, m)| (id.clone(), self.subscription_of(m)))
            .collect();
        self.target = self
            .assignor
            .assign(&subscriptions, &self.topics, &self.target);
        self.assignment_epoch = self.group_epoch;
    }

    /// The assignor most members ask for; on a tie the configured default if it is among the tied, else the
    /// first in [`AssignorKind`] order; the default when nobody asks.
    fn chosen_assignor(&self) -> AssignorKind {
        let mut votes: BTreeMap<AssignorKind, usize> = BTreeMap::new();
        for kind in self.members.values().filter_map(|m| m.server_assignor) {
            *votes.entry(kind).or_default() += 1;
        }
        let default = self.config.default_assignor;
        votes
            .into_iter()
            .min_by_key(|(kind, count)| (std::cmp::Reverse(*count), *kind != default, *kind))
            .map_or(default, |(kind, _)| kind)
    }

    /// Every partition some member other than `member_id` holds (assigned or pending revocation).
    fn held_by_others(&self, member_id: &str) -> BTreeSet<(Uuid, i32)> {
        self.members
            .iter()
            .filter(|(id, _)| id.as_str() != member_id)
            .flat_map(|(_, m)| m.assignment.held())
            .collect()
    }

    /// One reconciliation step for `member_id`, with the revocation deadline started when it is first asked
    /// to give partitions up and cleared once it has.
    fn reconcile_member(&mut self, member_id: &str, owned: Option<&Assignment>, now_ms: i64) {
        let held = self.held_by_others(member_id);
        let empty = Assignment::new();
        let target = self.target.get(member_id).unwrap_or(&empty);
        let Some(member) = self.members.get_mut(member_id) else {
            debug_assert!(false, "reconciling unknown member {member_id}");
            return;
        };
        self.unpersisted.insert(member_id.to_string());
        let next = member
            .assignment
            .reconcile(self.assignment_epoch, target, &held, owned);
        member.revocation_deadline_ms = match (next.state, member.revocation_deadline_ms) {
            (MemberState::UnrevokedPartitions, Some(deadline)) => Some(deadline),
            (MemberState::UnrevokedPartitions, None) => {
                Some(now_ms.saturating_add(i64::from(member.rebalance_timeout_ms)))
            }
            _ => None,
        };
        member.assignment = next;
    }

    /// Forgets a member, which frees its partitions at once; the caller bumps the group epoch so the target
    /// assignment hands them to the others.
    fn remove_member(&mut self, member_id: &str) {
        self.unpersisted.insert(member_id.to_string());
        if let Some(member) = self.members.remove(member_id) {
            if let Some(instance_id) = member.instance_id {
                if self.static_members.get(&instance_id).map(String::as_str) == Some(member_id) {
                    self.static_members.remove(&instance_id);
                }
            }
        }
        self.target.remove(member_id);
    }
}

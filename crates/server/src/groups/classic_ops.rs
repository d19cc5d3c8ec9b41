//! Classic-protocol operations: each runs one decision of the group under the coordinator lock, routes the
//! answers it releases, and hands the caller either an answer or a receiver to wait on.

use super::{now_ms, ClassicEntry, GroupCoordinator};
use ferrite_coordinator::group::{
    errors, ClassicGroup, GroupState, JoinOutcome, JoinRequest, JoinResponse, MemberDescription,
    Reply, SyncOutcome,
};
use ferrite_wire::error_code;
use tokio::sync::oneshot;

/// A JoinGroup answer now, or later (when the join phase ends).
pub enum JoinWait {
    Now(JoinResponse),
    Later(oneshot::Receiver<JoinResponse>),
}

/// A SyncGroup answer (error, assignment) now, or later (when the leader's assignment arrives).
pub enum SyncWait {
    Now(i16, Vec<u8>),
    Later(oneshot::Receiver<(i16, Vec<u8>)>),
}

/// A classic group as DescribeGroups and ListGroups see it.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub state: &'static str,
    pub protocol_type: String,
    pub protocol_name: String,
    pub members: Vec<MemberDescription>,
}

/// A group whose partition moved away: its waiting JoinGroup and SyncGroup requests answer NOT_COORDINATOR,
/// so their clients look the coordinator up again.
pub(super) fn release_not_coordinator(mut entry: ClassicEntry) {
    for (_, tx) in entry.joins.drain() {
        let _ = tx.send(join_error(error_code::NOT_COORDINATOR));
    }
    for (_, tx) in entry.syncs.drain() {
        let _ = tx.send((error_code::NOT_COORDINATOR, vec![]));
    }
}

/// Sends released answers to the requests waiting for them, and drops the waiters of members that are gone
/// (their requests then answer UNKNOWN_MEMBER_ID).
pub(super) fn route(entry: &mut ClassicEntry, replies: Vec<Reply>) {
    for reply in replies {
        match reply {
            Reply::Join {
                member_id,
                response,
            } => {
                if let Some(tx) = entry.joins.remove(&member_id) {
                    let _ = tx.send(response);
                }
            }
            Reply::Sync {
                member_id,
                error_code,
                assignment,
            } => {
                if let Some(tx) = entry.syncs.remove(&member_id) {
                    let _ = tx.send((error_code, assignment));
                }
            }
        }
    }
    let group = &entry.group;
    let present = |id: &String| group.member_ids().any(|m| m == id);
    entry.joins.retain(|id, _| present(id));
    entry.syncs.retain(|id, _| present(id));
}

impl GroupCoordinator {
    /// Runs `f` on the group's entry (creating an empty group if asked), then routes answers and persists.
    fn with_classic<T>(
        &self,
        group_id: &str,
        create: bool,
        f: impl FnOnce(&mut ClassicEntry, i64) -> (T, Vec<Reply>),
    ) -> Option<T> {
        let now = now_ms();
        let mut groups = self.lock();
        if create && !groups.classic.contains_key(group_id) {
            let group = ClassicGroup::new(group_id, self.settings.limits);
            groups
                .classic
                .insert(group_id.to_string(), ClassicEntry::new(group));
        }
        let entry = groups.classic.get_mut(group_id)?;
        let (result, replies) = f(entry, now);
        route(entry, replies);
        self.persist_if_changed(group_id, entry, now);
        Some(result)
    }

    pub fn join(&self, group_id: &str, request: JoinRequest) -> JoinWait {
        if self.is_consumer_group(group_id) {
            // Classic members joining a KIP-848 group (Kafka's online upgrade path) is not supported.
            return JoinWait::Now(join_error(errors::INCONSISTENT_GROUP_PROTOCOL));
        }
        let client_id = request.client_id.clone();
        let new_id = move || format!("{client_id}-{}", uuid::Uuid::new_v4());
        let joined = self.with_classic(group_id, true, |entry, now| {
            let (outcome, replies) = entry.group.join(request, now, new_id);
            let wait = match outcome {
                JoinOutcome::Immediate(response) => JoinWait::Now(response),
                JoinOutcome::Pending { member_id } => {
                    // Registered before routing: the replies may already hold this member's answer.
                    let (tx, rx) = oneshot::channel();
                    entry.joins.insert(member_id, tx);
                    JoinWait::Later(rx)
                }
            };
            (wait, replies)
        });
        joined.unwrap_or_else(|| JoinWait::Now(join_error(errors::COORDINATOR_NOT_AVAILABLE)))
    }

    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Vec<u8>)>,
    ) -> SyncWait {
        let synced = self.with_classic(group_id, false, |entry, now| {
            let (outcome, replies) = entry.group.sync(
                member_id,
                group_instance_id,
                generation_id,
                protocol_type,
                protocol_name,
                assignments,
                now,
            );
            let wait = match outcome {
                SyncOutcome::Immediate {
                    error_code,
                    assignment,
                } => SyncWait::Now(error_code, assignment),
                SyncOutcome::Pending => {
                    let (tx, rx) = oneshot::channel();
                    entry.syncs.insert(member_id.to_string(), tx);
                    SyncWait::Later(rx)
                }
            };
            (wait, replies)
        });
        synced.unwrap_or(SyncWait::Now(errors::UNKNOWN_MEMBER_ID, vec![]))
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
    ) -> i16 {
        self.with_classic(group_id, false, |entry, now| {
            let error = entry
                .group
                .heartbeat(member_id, group_instance_id, generation_id, now);
            (error, vec![])
        })
        .unwrap_or(errors::UNKNOWN_MEMBER_ID)
    }

    /// LeaveGroup; `None` when the group is unknown.
    pub fn leave(&self, group_id: &str, leaving: &[(String, Option<String>)]) -> Option<Vec<i16>> {
        self.with_classic(group_id, false, |entry, now| {
            entry.group.leave(leaving, now)
        })
    }

    /// DescribeGroups: `None` for a group this coordinator does not know.
    pub fn describe_classic(&self, group_id: &str) -> Option<GroupDescription> {
        let groups = self.lock();
        match groups.classic.get(group_id) {
            Some(entry) => Some(describe(&entry.group)),
            None if groups.offsets.group(group_id).next().is_some() => Some(GroupDescription {
                state: GroupState::Empty.kafka_name(),
                protocol_type: String::new(),
                protocol_name: String::new(),
                members: vec![],
            }),
            None => None,
        }
    }

    /// Whether a group has live members (DeleteGroups and OffsetDelete refuse or restrict on that).
    pub fn has_members(&self, group_id: &str) -> bool {
        self.lock()
            .classic
            .get(group_id)
            .is_some_and(|e| e.group.has_members())
    }
}

fn describe(group: &ClassicGroup) -> GroupDescription {
    GroupDescription {
        state: group.state().kafka_name(),
        protocol_type: group.protocol_type().unwrap_or_default().to_string(),
        protocol_name: if group.state() == GroupState::Stable {
            group.protocol_name().unwrap_or_default().to_string()
        } else {
            String::new()
        },
        members: group.describe(),
    }
}

pub fn join_error(error_code: i16) -> JoinResponse {
    JoinResponse {
        error_code,
        generation_id: -1,
        ..Default::default()
    }
}

/// A group as ListGroups reports it.
#[derive(Debug, Clone)]
pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    pub state: &'static str,
    /// "classic" or "consumer" (KIP-848).
    pub group_type: &'static str,
}

impl GroupCoordinator {
    /// Every group: classic groups (those known only by committed offsets are Empty with no protocol type).
    pub fn list(&self) -> Vec<ListedGroup> {
        let groups = self.lock();
        let mut listed: Vec<ListedGroup> = groups
            .classic
            .iter()
            .map(|(id, entry)| ListedGroup {
                group_id: id.clone(),
                protocol_type: entry.group.protocol_type().unwrap_or_default().to_string(),
                state: entry.group.state().kafka_name(),
                group_type: "classic",
            })
            .collect();
        for (id, entry) in &groups.consumer {
            listed.push(ListedGroup {
                group_id: id.clone(),
                protocol_type: "consumer".to_string(),
                state: entry.group.state().kafka_name(),
                group_type: "consumer",
            });
        }
        for id in groups.offsets.group_ids() {
            if !groups.classic.contains_key(id) && !groups.consumer.contains_key(id) {
                listed.push(ListedGroup {
                    group_id: id.to_string(),
                    protocol_type: String::new(),
                    state: GroupState::Empty.kafka_name(),
                    group_type: "classic",
                });
            }
        }
        listed.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        listed
    }
}

//! A partition replica's role, as the metadata assigns it, and which changes of role are allowed.

use crate::ids::{LeaderEpoch, NodeId};

/// What a leader knows beyond its epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderState {
    pub epoch: LeaderEpoch,
    /// Every replica of the partition, the leader among them: the followers it tracks.
    pub replicas: Vec<NodeId>,
    /// The in-sync replicas, the leader among them.
    pub isr: Vec<NodeId>,
    /// Bumped by every change of the partition's assignment or ISR; AlterPartition requests carry it so a
    /// stale leader's change is refused.
    pub partition_epoch: i32,
}

/// A follower's view of its leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowerState {
    pub epoch: LeaderEpoch,
    /// `None` while the partition has no leader (every replica of it is down).
    pub leader: Option<NodeId>,
}

/// A replica's role. Allowed changes (see [`Role::can_become`]):
/// - `Offline` -> `Leader` / `Follower`: the log was opened, or came back.
/// - `Leader` -> `Leader` at the same epoch (an ISR change) or a later one.
/// - `Follower` -> `Follower` at the same epoch (a new leader id for it) or a later one.
/// - `Leader` <-> `Follower`: only at a later epoch.
/// - anything -> `Offline`: the replica is removed, its topic deleted, or its storage failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Leader(LeaderState),
    Follower(FollowerState),
    Offline,
}

impl Role {
    /// The single-node case: leader of its own ISR.
    pub fn sole_leader(node: NodeId, epoch: LeaderEpoch) -> Role {
        Role::Leader(LeaderState {
            epoch,
            replicas: vec![node],
            isr: vec![node],
            partition_epoch: 0,
        })
    }

    pub fn epoch(&self) -> Option<LeaderEpoch> {
        match self {
            Role::Leader(l) => Some(l.epoch),
            Role::Follower(f) => Some(f.epoch),
            Role::Offline => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Role::Leader(_) => "leader",
            Role::Follower(_) => "follower",
            Role::Offline => "offline",
        }
    }

    /// Whether moving from `self` to `next` is allowed: never to an older epoch, and a change between
    /// leader and follower only with a new one.
    pub fn can_become(&self, next: &Role) -> bool {
        match (self, next) {
            (_, Role::Offline) | (Role::Offline, _) => true,
            (Role::Leader(a), Role::Leader(b)) => b.epoch >= a.epoch,
            (Role::Follower(a), Role::Follower(b)) => b.epoch >= a.epoch,
            (Role::Leader(a), Role::Follower(b)) => b.epoch > a.epoch,
            (Role::Follower(a), Role::Leader(b)) => b.epoch > a.epoch,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader(epoch: i32) -> Role {
        Role::sole_leader(NodeId(1), LeaderEpoch(epoch))
    }

    fn follower(epoch: i32) -> Role {
        Role::Follower(FollowerState {
            epoch: LeaderEpoch(epoch),
            leader: Some(NodeId(2)),
        })
    }

    #[test]
    fn transitions() {
        assert!(Role::Offline.can_become(&leader(0)));
        assert!(leader(3).can_become(&leader(3)), "ISR change");
        assert!(leader(3).can_become(&leader(4)));
        assert!(!leader(3).can_become(&leader(2)), "stale");
        assert!(!leader(3).can_become(&follower(3)));
        assert!(leader(3).can_become(&follower(4)));
        assert!(!follower(4).can_become(&leader(4)));
        assert!(follower(4).can_become(&leader(5)));
        assert!(follower(4).can_become(&Role::Offline));
    }
}

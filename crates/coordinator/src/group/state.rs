//! Group states and the one place their transitions are checked (Kafka's `ClassicGroupState`).

/// The state of a classic group. Each variant lists the states it may move to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members. Next: PreparingRebalance (a join), Dead (deleted or expired).
    Empty,
    /// Waiting for members to (re)join. Next: CompletingRebalance (join phase over), Empty (everyone left),
    /// Dead.
    PreparingRebalance,
    /// Generation formed; waiting for the leader's assignment. Next: Stable (leader synced),
    /// PreparingRebalance (membership changed), Dead.
    CompletingRebalance,
    /// Assignment handed out. Next: PreparingRebalance (membership or metadata changed), Dead.
    Stable,
    /// Removed; it stays only until its last request is answered. Next: none.
    Dead,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("illegal group state transition {from:?} -> {to:?}")]
pub struct IllegalTransition {
    pub from: GroupState,
    pub to: GroupState,
}

impl GroupState {
    pub fn can_move_to(self, to: GroupState) -> bool {
        use GroupState::*;
        matches!(
            (self, to),
            (Empty, PreparingRebalance | Dead)
                | (PreparingRebalance, CompletingRebalance | Empty | Dead)
                | (CompletingRebalance, Stable | PreparingRebalance | Dead)
                | (Stable, PreparingRebalance | Dead)
        )
    }

    /// Kafka's names, as DescribeGroups and ListGroups report them.
    pub fn kafka_name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::GroupState::*;

    #[test]
    fn transition_table() {
        let all = [Empty, PreparingRebalance, CompletingRebalance, Stable, Dead];
        let allowed = [
            (Empty, PreparingRebalance),
            (Empty, Dead),
            (PreparingRebalance, CompletingRebalance),
            (PreparingRebalance, Empty),
            (PreparingRebalance, Dead),
            (CompletingRebalance, Stable),
            (CompletingRebalance, PreparingRebalance),
            (CompletingRebalance, Dead),
            (Stable, PreparingRebalance),
            (Stable, Dead),
        ];
        for from in all {
            for to in all {
                assert_eq!(
                    from.can_move_to(to),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
    }
}

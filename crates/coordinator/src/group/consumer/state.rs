//! The states of a KIP-848 consumer group and the one place their transitions are checked (Kafka's
//! `ConsumerGroup.ConsumerGroupState`).
//!
//! Kafka derives the state from the epochs rather than driving it by events; so does
//! [`ConsumerGroup`](super::ConsumerGroup): after every change it computes the state the epochs call for
//! and moves there through [`ConsumerGroupState::can_move_to`], so a derivation that skips a step is caught.

/// The state of a consumer group. Each variant lists the states it may move to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsumerGroupState {
    /// No members. Next: Assigning (a member joined, which bumps the group epoch), Dead (deleted).
    Empty,
    /// The group epoch is ahead of the target assignment epoch: the assignor has to run. We run it in the
    /// same call that bumps the epoch, so this state is passed through, never reported. Next: Reconciling,
    /// Stable (target computed), Empty (the bump was the last member leaving), Dead.
    Assigning,
    /// The target assignment is current but some member has not reached it (its epoch is behind, or it
    /// still has partitions to revoke or to receive). Next: Stable (all converged), Assigning (group epoch
    /// bumped), Dead.
    Reconciling,
    /// Every member is at the target assignment epoch with its whole target. Next: Assigning, Dead.
    Stable,
    /// Deleted; kept only until its last request is answered. Next: none.
    Dead,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("illegal consumer group state transition {from:?} -> {to:?}")]
pub struct IllegalConsumerTransition {
    pub from: ConsumerGroupState,
    pub to: ConsumerGroupState,
}

impl ConsumerGroupState {
    pub fn can_move_to(self, to: ConsumerGroupState) -> bool {
        use ConsumerGroupState::*;
        matches!(
            (self, to),
            (Empty, Assigning | Dead)
                | (Assigning, Reconciling | Stable | Empty | Dead)
                | (Reconciling, Stable | Assigning | Dead)
                | (Stable, Assigning | Dead)
        )
    }

    /// Kafka's names, as ConsumerGroupDescribe and ListGroups report them.
    pub fn kafka_name(self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
            ConsumerGroupState::Dead => "Dead",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ConsumerGroupState::*;

    #[test]
    fn transition_table() {
        let all = [Empty, Assigning, Reconciling, Stable, Dead];
        let allowed = [
            (Empty, Assigning),
            (Empty, Dead),
            (Assigning, Reconciling),
            (Assigning, Stable),
            (Assigning, Empty),
            (Assigning, Dead),
            (Reconciling, Stable),
            (Reconciling, Assigning),
            (Reconciling, Dead),
            (Stable, Assigning),
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

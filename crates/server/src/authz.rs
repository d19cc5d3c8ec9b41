//! Who may do what to a resource. Ferrite has no authorizer yet (ACLs come with the security work), and Kafka
//! without one lets every client do every operation a resource supports; so does this. "Authorized
//! operations" in Metadata, DescribeCluster, DescribeGroups and ConsumerGroupDescribe answers all come from
//! [`authorized_operations`], the one function an ACL authorizer replaces.

/// Kafka's `AclOperation` codes; an authorized-operations answer is a bit set over them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum AclOperation {
    Read = 3,
    Write = 4,
    Create = 5,
    Delete = 6,
    Alter = 7,
    Describe = 8,
    ClusterAction = 9,
    DescribeConfigs = 10,
    AlterConfigs = 11,
    IdempotentWrite = 12,
    CreateTokens = 13,
    DescribeTokens = 14,
    TwoPhaseCommit = 15,
}

/// The kinds of resource operations are authorized on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    Topic,
    Group,
    Cluster,
    TransactionalId,
    DelegationToken,
    User,
}

impl ResourceKind {
    /// The operations a resource of this kind supports (Kafka's `AclEntry.supportedOperations`).
    pub fn supported_operations(self) -> &'static [AclOperation] {
        use AclOperation::*;
        match self {
            ResourceKind::Topic => &[
                Read,
                Write,
                Create,
                Describe,
                Delete,
                Alter,
                DescribeConfigs,
                AlterConfigs,
            ],
            ResourceKind::Group => &[Read, Describe, Delete],
            ResourceKind::Cluster => &[
                Create,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
                Alter,
                Describe,
            ],
            ResourceKind::TransactionalId => &[Describe, Write, TwoPhaseCommit],
            ResourceKind::DelegationToken => &[Describe],
            ResourceKind::User => &[CreateTokens, DescribeTokens],
        }
    }
}

/// Kafka's "authorized operations not requested" sentinel.
pub const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

/// The operations the requesting client may perform on resource `name` of `kind`, as Kafka's bit set
/// (bit n = AclOperation code n). Without an authorizer: everything the resource supports.
pub fn authorized_operations(kind: ResourceKind, _name: &str) -> i32 {
    kind.supported_operations()
        .iter()
        .fold(0, |bits, op| bits | 1 << (*op as u8))
}

/// The answer for a request that may or may not have asked for authorized operations.
pub fn if_requested(requested: bool, kind: ResourceKind, name: &str) -> i32 {
    if requested {
        authorized_operations(kind, name)
    } else {
        OPERATIONS_NOT_REQUESTED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(bits: i32) -> Vec<u8> {
        (0..32).filter(|n| bits & (1 << n) != 0).collect()
    }

    #[test]
    fn without_an_authorizer_every_supported_operation_is_allowed() {
        assert_eq!(
            codes(authorized_operations(ResourceKind::Cluster, "")),
            vec![5, 7, 8, 9, 10, 11, 12],
            "the 7 cluster operations Kafka reports"
        );
        assert_eq!(
            codes(authorized_operations(ResourceKind::Topic, "t")),
            vec![3, 4, 5, 6, 7, 8, 10, 11]
        );
        assert_eq!(
            codes(authorized_operations(ResourceKind::Group, "g")),
            vec![3, 6, 8]
        );
        assert_eq!(
            if_requested(false, ResourceKind::Topic, "t"),
            OPERATIONS_NOT_REQUESTED
        );
    }
}

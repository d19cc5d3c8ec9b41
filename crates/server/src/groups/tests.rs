//! The coordinator runtime against a real broker in a temporary directory, with time moved by hand where the
//! rule is about time (offset expiry), and reopened to check what replay rebuilds.
#![allow(clippy::unwrap_used)]

use super::offset_ops::Committer;
use super::{now_ms, GroupCoordinator, PartitionOffset};
use crate::config::broker::BrokerConfig;
use crate::node::metadata_store::FileMetadataStore;
use crate::node::Node;
use ferrite_coordinator::group::consumer::{HeartbeatRequest, HeartbeatResponse};
use ferrite_coordinator::group::ConsumerGroupState;
use ferrite_wire::error_code;
use uuid::Uuid;

/// The runtime the nodes of these tests run their metadata quorum on; it outlives every node.
fn test_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

fn open(dir: &std::path::Path) -> std::sync::Arc<Node> {
    let config = BrokerConfig {
        log_dirs: vec![dir.to_path_buf()],
        offsets_topic_num_partitions: 3,
        group_initial_rebalance_delay_ms: 0,
        ..BrokerConfig::default()
    };
    let _runtime = test_runtime().enter();
    Node::open(config, Box::new(FileMetadataStore::new(dir))).unwrap()
}

fn commit(broker: &Node, group: &str, offset: i64) -> i16 {
    commit_at(broker, group, offset, -1)
}

/// A commit outside any generation, stamped `commit_timestamp_ms` (-1: now), as OffsetCommit v0-1 send them.
fn commit_at(broker: &Node, group: &str, offset: i64, commit_timestamp_ms: i64) -> i16 {
    let groups = broker.groups().unwrap();
    let offsets = [PartitionOffset {
        topic: "t".into(),
        partition: 0,
        offset,
        leader_epoch: -1,
        metadata: None,
        commit_timestamp_ms,
        error_code: 0,
    }];
    let committer = Committer {
        member_id: "",
        group_instance_id: None,
        generation_id: -1,
    };
    let outcome = groups.commit(group, committer, &offsets);
    groups.finish_commit(outcome)[0]
}

/// A KIP-848 member as a well-behaved client sees itself: it adopts every assignment it is sent.
#[derive(Debug, Clone)]
struct ConsumerMember {
    id: String,
    epoch: i32,
    owned: Vec<(Uuid, Vec<i32>)>,
}

impl ConsumerMember {
    fn new(id: &str) -> Self {
        ConsumerMember {
            id: id.to_string(),
            epoch: 0,
            owned: vec![],
        }
    }

    /// A full heartbeat (every field set), so the answer always carries the whole assignment.
    fn request(&self) -> HeartbeatRequest {
        HeartbeatRequest {
            member_id: self.id.clone(),
            member_epoch: self.epoch,
            rebalance_timeout_ms: 30_000,
            subscribed_topic_names: Some(vec!["t".into()]),
            owned_partitions: Some(self.owned.clone()),
            client_id: format!("client-{}", self.id),
            client_host: "/127.0.0.1".into(),
            ..Default::default()
        }
    }

    fn beat(&mut self, broker: &Node, group: &str) -> HeartbeatResponse {
        let response = consumer_beat(broker, group, self.request());
        assert_eq!(response.error_code, error_code::NONE, "{response:?}");
        self.epoch = response.member_epoch;
        self.owned = response.assignment.clone().unwrap();
        response
    }
}

fn consumer_beat(broker: &Node, group: &str, request: HeartbeatRequest) -> HeartbeatResponse {
    let groups = broker.groups().unwrap();
    let outcome = groups.consumer_heartbeat(group, request);
    groups.finish_heartbeat(outcome)
}

/// Two KIP-848 members of `group` on topic "t", heartbeating until the group is stable.
fn stable_consumer_group(broker: &Node, group: &str) -> Vec<ConsumerMember> {
    let mut members = vec![
        ConsumerMember::new("member-a"),
        ConsumerMember::new("member-b"),
    ];
    for _ in 0..10 {
        for m in &mut members {
            m.beat(broker, group);
        }
        let groups = broker.groups().unwrap();
        if groups.describe_consumer(group).unwrap().state == ConsumerGroupState::Stable {
            return members;
        }
    }
    panic!(
        "{group} did not settle: {:?}",
        broker.groups().unwrap().describe_consumer(group)
    );
}

/// A group id other than `than` that lives in the same `__consumer_offsets` partition.
fn group_in_partition_of(than: &str) -> String {
    use ferrite_coordinator::offsets::partition_for_group;
    let index = partition_for_group(than, 3);
    (0..)
        .map(|i| format!("consumers-{i}"))
        .find(|g| partition_for_group(g, 3) == index)
        .unwrap()
}

fn committed(groups: &GroupCoordinator, group: &str) -> i64 {
    groups
        .fetch_offsets(group, Some(vec![("t".into(), 0)]), false)
        .first()
        .map_or(-2, |p| p.offset)
}

#[test]
fn expired_offsets_get_tombstones_that_replay_honours() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    broker.create_topic("t", 1, 1, Default::default()).unwrap();
    assert_eq!(commit(&broker, "old", 10), error_code::NONE);
    assert_eq!(commit(&broker, "kept", 20), error_code::NONE);
    let groups = broker.groups().unwrap();
    let retention = groups.settings().offsets_retention_ms;
    assert_eq!(groups.expire_offsets_at(now_ms() + retention / 2), 0);
    // Recommit "kept" later than "old", then move past old's expiry only.
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(commit(&broker, "kept", 21), error_code::NONE);
    let old_expiry = now_ms() - 10 + retention;
    assert_eq!(groups.expire_offsets_at(old_expiry), 1);
    assert_eq!(committed(groups, "old"), -1);
    assert_eq!(committed(groups, "kept"), 21);
    assert!(
        !groups.group_ids().contains(&"old".to_string()),
        "an emptied group goes too"
    );
    broker.close();
    drop(broker);
    let reopened = open(dir.path());
    let groups = reopened.groups().unwrap();
    assert_eq!(
        committed(groups, "old"),
        -1,
        "the tombstone survives replay"
    );
    assert_eq!(committed(groups, "kept"), 21);
}

#[test]
fn commits_to_unknown_partitions_and_oversized_metadata_are_refused_per_partition() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    broker.create_topic("t", 1, 1, Default::default()).unwrap();
    let groups = broker.groups().unwrap();
    let offsets = [
        PartitionOffset {
            topic: "t".into(),
            partition: 0,
            offset: 5,
            leader_epoch: -1,
            metadata: Some("x".repeat(5000)),
            commit_timestamp_ms: -1,
            error_code: 0,
        },
        PartitionOffset {
            topic: "missing".into(),
            partition: 0,
            offset: 5,
            leader_epoch: -1,
            metadata: None,
            commit_timestamp_ms: -1,
            error_code: 0,
        },
    ];
    let committer = Committer {
        member_id: "",
        group_instance_id: None,
        generation_id: -1,
    };
    let outcome = groups.commit("g", committer, &offsets);
    assert_eq!(
        groups.finish_commit(outcome),
        vec![
            error_code::OFFSET_METADATA_TOO_LARGE,
            error_code::UNKNOWN_TOPIC_OR_PARTITION
        ]
    );
    assert_eq!(committed(groups, "g"), -1);
}

#[test]
fn rewriting_a_partition_keeps_the_live_state_and_drops_the_history() {
    use ferrite_coordinator::group::JoinRequest;
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    broker.create_topic("t", 1, 1, Default::default()).unwrap();
    for i in 0..300 {
        assert_eq!(commit(&broker, "busy", i), error_code::NONE);
    }
    let groups = broker.groups().unwrap();
    // A stable classic group, so its record is rewritten too.
    let join = JoinRequest {
        member_id: String::new(),
        client_id: "c".into(),
        session_timeout_ms: 30_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), b"meta".to_vec())],
        require_known_member_id: false,
        group_instance_id: None,
        client_host: "/127.0.0.1".into(),
    };
    let super::JoinWait::Later(mut rx) = groups.join("busy", join) else {
        panic!("a join waits for the join phase")
    };
    // The join phase ends at the initial rebalance delay, which only the tick notices.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let joined = loop {
        groups.tick();
        match rx.try_recv() {
            Ok(joined) => break joined,
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            Err(e) => panic!("no join answer: {e}"),
        }
    };
    let super::SyncWait::Now(0, _) = groups.sync(
        "busy",
        &joined.member_id,
        None,
        joined.generation_id,
        None,
        None,
        vec![(joined.member_id.clone(), b"all".to_vec())],
    ) else {
        panic!("the leader's sync answers at once")
    };
    // A KIP-848 group in the same partition, settled, then with a history of heartbeats.
    let consumers = group_in_partition_of("busy");
    let mut members = stable_consumer_group(&broker, &consumers);
    let described = groups.describe_consumer(&consumers).unwrap();
    let index = ferrite_coordinator::offsets::partition_for_group("busy", 3);
    let partition = broker.partition("__consumer_offsets", index).unwrap();
    let end_before = partition.log().log_end_offset();
    assert!(groups.compact_partition(index, true).unwrap());
    assert_eq!(
        partition.log().log_start_offset(),
        end_before,
        "history before the rewrite is gone"
    );
    assert_eq!(
        partition.log().log_end_offset(),
        end_before + 2 + 8,
        "one offset and one group record; the consumer group's metadata and target epoch, and member, \
         target and current assignment records of each of its two members"
    );
    assert_eq!(committed(groups, "busy"), 299);
    assert_eq!(
        commit(&broker, "busy", 300),
        25,
        "UNKNOWN_MEMBER_ID: the group has a member"
    );
    broker.close();
    drop(broker);
    let reopened = open(dir.path());
    let groups = reopened.groups().unwrap();
    assert_eq!(committed(groups, "busy"), 299);
    assert_eq!(
        groups.heartbeat("busy", &joined.member_id, None, joined.generation_id),
        error_code::NONE,
        "the group came back from its rewritten record"
    );
    assert_eq!(groups.describe_consumer(&consumers), Some(described));
    for m in &mut members {
        let epoch = m.epoch;
        assert_eq!(m.beat(&reopened, &consumers).member_epoch, epoch);
    }
}

#[test]
fn a_consumer_group_survives_a_reopen_and_its_members_keep_their_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    broker.create_topic("t", 4, 1, Default::default()).unwrap();
    let mut members = stable_consumer_group(&broker, "cg");
    let shares: Vec<usize> = members.iter().map(|m| m.owned[0].1.len()).collect();
    assert_eq!(shares, [2, 2], "{members:?}");
    let groups = broker.groups().unwrap();
    let before = groups.describe_consumer("cg").unwrap();
    assert_eq!(before.members.len(), 2);

    let index = ferrite_coordinator::offsets::partition_for_group("cg", 3);
    let partition = broker.partition("__consumer_offsets", index).unwrap();
    let end = partition.log().log_end_offset();
    let response = members[0].beat(&broker, "cg");
    assert_eq!(response.member_epoch, before.group_epoch);
    assert_eq!(
        partition.log().log_end_offset(),
        end,
        "a heartbeat that changed nothing writes nothing"
    );
    broker.close();
    drop(broker);

    let reopened = open(dir.path());
    let groups = reopened.groups().unwrap();
    assert_eq!(groups.describe_consumer("cg"), Some(before.clone()));
    assert!(groups.is_consumer_group("cg"));
    for m in &mut members {
        let (epoch, owned) = (m.epoch, m.owned.clone());
        let response = m.beat(&reopened, "cg");
        assert_eq!(response.member_epoch, epoch, "{} keeps its epoch", m.id);
        assert_eq!(m.owned, owned, "{} keeps its partitions", m.id);
    }
    assert_eq!(groups.describe_consumer("cg"), Some(before));
}

#[test]
fn a_deleted_consumer_group_stays_deleted_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    broker.create_topic("t", 4, 1, Default::default()).unwrap();
    let members = stable_consumer_group(&broker, "gone");
    stable_consumer_group(&broker, "kept");
    let groups = broker.groups().unwrap();
    assert_eq!(groups.delete_group("gone"), error_code::NON_EMPTY_GROUP);
    for m in &members {
        let leave = HeartbeatRequest {
            member_epoch: -1,
            ..m.request()
        };
        assert_eq!(
            consumer_beat(&broker, "gone", leave).error_code,
            error_code::NONE
        );
    }
    assert_eq!(groups.delete_group("gone"), error_code::NONE);
    assert_eq!(groups.describe_consumer("gone"), None);
    broker.close();
    drop(broker);

    let reopened = open(dir.path());
    let groups = reopened.groups().unwrap();
    assert_eq!(groups.describe_consumer("gone"), None);
    assert!(!groups.group_ids().contains(&"gone".to_string()));
    assert_eq!(
        groups.describe_consumer("kept").map(|d| d.members.len()),
        Some(2)
    );
}

#[test]
fn a_heartbeat_whose_records_cannot_be_written_answers_coordinator_not_available() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    broker.create_topic("t", 4, 1, Default::default()).unwrap();
    let members = stable_consumer_group(&broker, "cg");
    let groups = broker.groups().unwrap();
    let durable = groups.describe_consumer("cg").unwrap();
    let index = ferrite_coordinator::offsets::partition_for_group("cg", 3);
    let partition = broker.partition("__consumer_offsets", index).unwrap();
    partition.log().close().unwrap();

    let light = HeartbeatRequest {
        rebalance_timeout_ms: -1,
        subscribed_topic_names: None,
        ..members[0].request()
    };
    let response = consumer_beat(&broker, "cg", light.clone());
    assert_eq!(
        (response.error_code, response.member_epoch),
        (error_code::NONE, members[0].epoch),
        "a heartbeat with nothing to write needs no log"
    );
    let joining = ConsumerMember::new("member-c");
    let response = consumer_beat(&broker, "cg", joining.request());
    assert_eq!(response.error_code, error_code::COORDINATOR_NOT_AVAILABLE);
    let response = consumer_beat(&broker, "cg", light);
    assert_eq!(
        response.error_code,
        error_code::COORDINATOR_NOT_AVAILABLE,
        "the unwritten join is still to be written"
    );
    broker.close();
    drop(broker);

    let reopened = open(dir.path());
    let groups = reopened.groups().unwrap();
    assert_eq!(
        groups.describe_consumer("cg"),
        Some(durable),
        "what was never written is not restored"
    );
}

/// OffsetCommit v1's per-partition commit timestamp is stored as the commit time (Kafka's `commitTimestamp`),
/// also across a reopen; -1 stores the time the broker received the commit.
#[test]
fn a_commit_keeps_the_timestamp_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    broker.create_topic("t", 1, 1, Default::default()).unwrap();
    let stamped = 1_600_000_000_000;
    assert_eq!(commit_at(&broker, "named", 7, stamped), error_code::NONE);
    let before = now_ms();
    assert_eq!(commit_at(&broker, "now", 8, -1), error_code::NONE);
    let fetched = |broker: &Node, group: &str| {
        let found =
            broker
                .groups()
                .unwrap()
                .fetch_offsets(group, Some(vec![("t".into(), 0)]), false);
        (found[0].offset, found[0].commit_timestamp_ms)
    };
    assert_eq!(fetched(&broker, "named"), (7, stamped));
    let (offset, at) = fetched(&broker, "now");
    assert_eq!(offset, 8);
    assert!(
        at >= before && at <= now_ms(),
        "{at} not between {before} and now"
    );
    broker.close();
    drop(broker);
    let broker = open(dir.path());
    assert_eq!(fetched(&broker, "named"), (7, stamped), "after replay");
}

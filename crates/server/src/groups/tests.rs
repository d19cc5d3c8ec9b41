//! The coordinator runtime against a real broker in a temporary directory, with time moved by hand where the
//! rule is about time (offset expiry), and reopened to check what replay rebuilds.
#![allow(clippy::unwrap_used)]

use super::offset_ops::Committer;
use super::{now_ms, GroupCoordinator, PartitionOffset};
use crate::broker::metadata_store::FileMetadataStore;
use crate::broker::Broker;
use crate::config::broker::BrokerConfig;
use ferrite_wire::error_code;

fn open(dir: &std::path::Path) -> Broker {
    let config = BrokerConfig {
        log_dirs: vec![dir.to_path_buf()],
        offsets_topic_num_partitions: 3,
        group_initial_rebalance_delay_ms: 0,
        ..BrokerConfig::default()
    };
    Broker::open(config, Box::new(FileMetadataStore::new(dir))).unwrap()
}

fn commit(broker: &Broker, group: &str, offset: i64) -> i16 {
    let groups = broker.groups().unwrap();
    let offsets = [PartitionOffset {
        topic: "t".into(),
        partition: 0,
        offset,
        leader_epoch: -1,
        metadata: None,
        error_code: 0,
    }];
    let committer = Committer {
        member_id: "",
        group_instance_id: None,
        generation_id: -1,
    };
    let outcome = groups.commit(broker, group, committer, &offsets);
    groups.finish_commit(outcome)[0]
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
            error_code: 0,
        },
        PartitionOffset {
            topic: "missing".into(),
            partition: 0,
            offset: 5,
            leader_epoch: -1,
            metadata: None,
            error_code: 0,
        },
    ];
    let committer = Committer {
        member_id: "",
        group_instance_id: None,
        generation_id: -1,
    };
    let outcome = groups.commit(&broker, "g", committer, &offsets);
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
        groups.tick(&broker);
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
    let index = ferrite_coordinator::offsets::partition_for_group("busy", 3);
    let partition = broker.topic("__consumer_offsets").unwrap().partitions[index as usize].clone();
    let end_before = partition.log.log_end_offset();
    assert!(groups.compact_partition(index, true).unwrap());
    assert_eq!(
        partition.log.log_start_offset(),
        end_before,
        "history before the rewrite is gone"
    );
    assert_eq!(
        partition.log.log_end_offset(),
        end_before + 2,
        "one offset and one group record"
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
}

#![allow(clippy::unwrap_used)]

use super::super::tests::{
    assert_disjoint_and_complete, beat_request, config, heartbeat, join_request, set, settle,
    stable_group, static_join, topics, Client, ORDERS, REBALANCE_MS,
};
use super::super::*;
use crate::consumer_group_records::{ConsumerGroupImage, ConsumerGroupRecord, RecordBody};
use crate::offsets::{decode_key, RecordKey};

/// Every member id the group or the image knows: a comparison of all of them is the exhaustive diff.
fn every_id(group: &ConsumerGroup, image: &ConsumerGroupImage) -> BTreeSet<String> {
    let mut ids: BTreeSet<String> = group.members.keys().cloned().collect();
    ids.extend(image.members.keys().cloned());
    ids.extend(image.targets.keys().cloned());
    ids.extend(image.current.keys().cloned());
    ids
}

/// What the runtime does after each operation: takes the records, appends them (here: encodes them and
/// replays the bytes into the image) and marks them persisted. Checks that the diff limited to touched
/// members equals the exhaustive one, and that the image is then the group's whole state.
fn persist(group: &mut ConsumerGroup, image: &mut ConsumerGroupImage) -> Vec<ConsumerGroupRecord> {
    let records = group.records_since(image);
    let exhaustive = group.diff(image, &every_id(group, image), true);
    assert_eq!(
        records, exhaustive,
        "the diff of touched members missed something"
    );
    for r in &records {
        let (key, value) = r.encode();
        let RecordKey::ConsumerGroup(key) = decode_key(&key).unwrap() else {
            panic!("{r:?} has no consumer group key");
        };
        let decoded = ConsumerGroupRecord::decode(&key, value.as_deref()).unwrap();
        image.apply(decoded.unwrap().body);
    }
    group.mark_persisted();
    assert_eq!(
        *image,
        group.image(),
        "the records describe the whole group"
    );
    records
}

fn persisted(group: &mut ConsumerGroup) -> ConsumerGroupImage {
    let mut image = ConsumerGroupImage::default();
    persist(group, &mut image);
    image
}

fn restore(image: &ConsumerGroupImage, now: i64) -> ConsumerGroup {
    ConsumerGroup::restore("g", config(), image, &topics(), now)
}

/// Each record as "kind member", with a leading "-" for a tombstone, for asserting what was written.
fn kinds(records: &[ConsumerGroupRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            let (kind, member, live) = match &r.body {
                RecordBody::Metadata(v) => ("group", None, v.is_some()),
                RecordBody::Member(m, v) => ("member", Some(m), v.is_some()),
                RecordBody::TargetMetadata(v) => ("target-epoch", None, v.is_some()),
                RecordBody::TargetMember(m, v) => ("target", Some(m), v.is_some()),
                RecordBody::CurrentAssignment(m, v) => ("current", Some(m), v.is_some()),
            };
            let sign = if live { "" } else { "-" };
            match member {
                Some(m) => format!("{sign}{kind} {m}"),
                None => format!("{sign}{kind}"),
            }
        })
        .collect()
}

#[test]
fn a_restored_group_is_the_group_it_was_and_its_members_go_on_with_their_epochs() {
    let (mut group, mut clients) = stable_group(&["a", "b", "c"]);
    let image = persisted(&mut group);
    let mut restored = restore(&image, 50_000);
    assert_eq!(restored.describe(), group.describe());
    assert_eq!(restored.image(), image);
    assert!(restored.records_since(&image).is_empty());
    assert_eq!(
        restored.next_deadline_ms(),
        Some(60_000),
        "sessions start at the restore"
    );
    for client in &mut clients {
        let (epoch, owned) = (client.epoch, client.owned.clone());
        let response = client.beat(&mut restored, 50_000);
        assert_eq!(response.member_epoch, epoch, "{response:?}");
        assert_eq!(response.assignment, None, "nothing changed");
        assert_eq!(client.owned, owned);
    }
    assert_eq!(restored.state(), ConsumerGroupState::Stable);
    assert!(restored.records_since(&image).is_empty());
}

#[test]
fn a_group_restored_mid_rebalance_converges_without_owning_a_partition_twice() {
    let (mut group, mut clients) = stable_group(&["a", "b"]);
    clients.push(Client::join(&mut group, join_request("c"), 1_000));
    clients[0].beat(&mut group, 1_000); // a is asked to revoke, and does in its next heartbeat
    assert_eq!(group.state(), ConsumerGroupState::Reconciling);
    let image = persisted(&mut group);
    let mut restored = restore(&image, 5_000);
    assert_eq!(restored.describe(), group.describe());
    let revoking = restored
        .members
        .values()
        .filter(|m| m.revocation_deadline_ms.is_some());
    for member in revoking {
        assert_eq!(
            member.revocation_deadline_ms,
            Some(5_000 + i64::from(REBALANCE_MS))
        );
    }
    settle(&mut restored, &mut clients, 5_000);
    assert_disjoint_and_complete(&clients);
}

#[test]
fn a_heartbeat_that_changes_nothing_writes_nothing() {
    let (mut group, mut clients) = stable_group(&["a", "b"]);
    let mut image = persisted(&mut group);
    for now in [1_000, 2_000] {
        for client in &mut clients {
            client.beat(&mut group, now);
            assert_eq!(persist(&mut group, &mut image), vec![]);
        }
        assert!(group.tick(now, &topics()).is_empty());
        assert_eq!(persist(&mut group, &mut image), vec![]);
    }
}

#[test]
fn a_change_of_one_member_writes_that_members_records_only() {
    let (mut group, mut clients) = stable_group(&["a", "b"]);
    let mut image = persisted(&mut group);
    let rack = HeartbeatRequest {
        rack_id: Some("rack-1".into()),
        ..beat_request("b", clients[1].epoch, &clients[1].owned)
    };
    assert_eq!(heartbeat(&mut group, rack, 1_000).error_code, errors::NONE);
    assert_eq!(kinds(&persist(&mut group, &mut image)), ["member b"]);

    // A third member: its records, the new epoch and the targets that moved; nobody else's current
    // assignment (they change only with their own heartbeats).
    clients.push(Client::join(&mut group, join_request("d"), 2_000));
    let written = kinds(&persist(&mut group, &mut image));
    assert_eq!(written[0], "member d");
    assert_eq!(written[1], "group");
    assert_eq!(written.last().map(String::as_str), Some("current d"));
    assert!(written.contains(&"target-epoch".to_string()));
    assert!(written.contains(&"target d".to_string()));
    assert!(!written
        .iter()
        .any(|w| w.starts_with("current") && w != "current d"));

    // Each old member's next step writes its current assignment only.
    for client in &mut clients[..2] {
        let before = client.owned.clone();
        client.beat(&mut group, 2_000);
        let written = kinds(&persist(&mut group, &mut image));
        let id = client.id.as_str();
        if client.owned == before && written.is_empty() {
            continue; // this member kept everything
        }
        assert_eq!(written, [format!("current {id}")], "{id}");
    }
}

#[test]
fn members_that_leave_or_expire_get_tombstones() {
    let (mut group, mut clients) = stable_group(&["a", "b", "c"]);
    let mut image = persisted(&mut group);
    let leave = HeartbeatRequest {
        member_epoch: LEAVE_EPOCH,
        ..beat_request("c", clients[2].epoch, &clients[2].owned)
    };
    assert_eq!(heartbeat(&mut group, leave, 1_000).error_code, errors::NONE);
    let written = kinds(&persist(&mut group, &mut image));
    assert_eq!(
        written[..4],
        ["-current c", "-target c", "-member c", "group",]
    );
    assert_eq!(written.last().map(String::as_str), Some("target-epoch"));
    clients.pop();

    clients[0].beat(&mut group, 9_000);
    persist(&mut group, &mut image);
    assert_eq!(group.tick(11_000, &topics()), vec!["b".to_string()]);
    let written = kinds(&persist(&mut group, &mut image));
    assert_eq!(written[..3], ["-current b", "-target b", "-member b",]);
    assert!(!image.members.contains_key("b"));
}

#[test]
fn a_static_member_away_is_restored_away_and_its_successor_takes_over() {
    let mut group = ConsumerGroup::new("g", config());
    let mut clients = vec![
        Client::join(&mut group, static_join("s1", "i1"), 0),
        Client::join(&mut group, join_request("b"), 0),
    ];
    settle(&mut group, &mut clients, 0);
    let leave = HeartbeatRequest {
        member_epoch: STATIC_LEAVE_EPOCH,
        instance_id: Some("i1".into()),
        ..beat_request("s1", clients[0].epoch, &clients[0].owned)
    };
    assert_eq!(heartbeat(&mut group, leave, 1_000).error_code, errors::NONE);
    let mut image = persisted(&mut group);
    assert_eq!(image.current["s1"].member_epoch, STATIC_LEAVE_EPOCH);
    let mut restored = restore(&image, 2_000);
    assert_eq!(restored.describe(), group.describe());

    let successor = Client::join(&mut restored, static_join("s2", "i1"), 2_000);
    assert_eq!(
        successor.owned, clients[0].owned,
        "the assignment moves over"
    );
    let written = kinds(&persist(&mut restored, &mut image));
    assert_eq!(
        written,
        [
            "-current s1",
            "-target s1",
            "-member s1",
            "member s2",
            "target s2",
            "current s2",
        ],
        "a rename, without a new group epoch"
    );
}

#[test]
fn topics_that_changed_while_the_coordinator_was_down_bump_the_epoch() {
    let (mut group, _) = stable_group(&["a", "b"]);
    let mut image = persisted(&mut group);
    let mut grown = topics();
    grown.insert("orders".into(), (ORDERS, 8));
    let mut restored = ConsumerGroup::restore("g", config(), &image, &grown, 1_000);
    assert_eq!(restored.group_epoch(), group.group_epoch() + 1);
    assert_eq!(restored.state(), ConsumerGroupState::Reconciling);
    let written = kinds(&persist(&mut restored, &mut image));
    assert_eq!(written[0], "group");
    assert_eq!(written.last().map(String::as_str), Some("target-epoch"));
    let targets: BTreeSet<i32> = image
        .targets
        .values()
        .flat_map(|t| t[&ORDERS].iter().copied())
        .collect();
    assert_eq!(targets, set(0..8));
}

#[test]
fn a_group_that_never_formed_writes_nothing_and_an_empty_group_is_kept() {
    let mut group = ConsumerGroup::new("g", config());
    let refused = HeartbeatRequest {
        rebalance_timeout_ms: -1,
        ..join_request("a")
    };
    assert_ne!(heartbeat(&mut group, refused, 0).error_code, errors::NONE);
    assert!(group
        .records_since(&ConsumerGroupImage::default())
        .is_empty());
    assert!(group.image().is_empty());

    let (mut group, clients) = stable_group(&["a"]);
    let mut image = persisted(&mut group);
    let leave = HeartbeatRequest {
        member_epoch: LEAVE_EPOCH,
        ..beat_request("a", clients[0].epoch, &clients[0].owned)
    };
    heartbeat(&mut group, leave, 1_000);
    persist(&mut group, &mut image);
    assert!(image.members.is_empty() && image.metadata.is_some());
    let restored = restore(&image, 2_000);
    assert_eq!(restored.describe(), group.describe());
    assert_eq!(restored.state(), ConsumerGroupState::Empty);
}

/// A small deterministic generator for the operation sequences below.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Random joins, heartbeats, leaves, silences (expiry by the tick) and restores: after every step the diff
/// of touched members equals the exhaustive one, and the records describe the whole group; after every
/// restore the group is what it was and its members go on.
#[test]
fn random_operations_keep_the_records_and_the_group_in_step() {
    for seed in 1..=20u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let six = ConsumerGroupConfig {
            max_size: 6,
            ..config()
        };
        let mut group = ConsumerGroup::new("g", six.clone());
        let mut image = ConsumerGroupImage::default();
        let mut clients: BTreeMap<String, Client> = BTreeMap::new();
        let mut now = 0i64;
        // Instance ids of static members that left for now, for a successor to take over.
        let mut away: Vec<String> = vec![];
        for step in 0..150 {
            now += 500 + rng.below(2_000) as i64;
            let name = format!("m{}", rng.below(6));
            let known = group.members.contains_key(&name);
            match (rng.below(10), clients.contains_key(&name)) {
                (0..=1, false) if !known => {
                    let request = match (rng.below(3), away.pop()) {
                        (0, Some(instance)) => static_join(&name, &instance),
                        (_, instance) => {
                            away.extend(instance);
                            match rng.below(2) {
                                0 => static_join(&name, &format!("i-{name}-{step}")),
                                _ => join_request(&name),
                            }
                        }
                    };
                    clients.insert(name.clone(), Client::join(&mut group, request, now));
                }
                (2, true) => {
                    let c = &clients[&name];
                    let leave = HeartbeatRequest {
                        member_epoch: LEAVE_EPOCH,
                        ..beat_request(&c.id, c.epoch, &c.owned)
                    };
                    assert_eq!(heartbeat(&mut group, leave, now).error_code, errors::NONE);
                    clients.remove(&name);
                }
                (3, _) => {
                    let before = group.describe();
                    group = ConsumerGroup::restore("g", six.clone(), &image, &topics(), now);
                    assert_eq!(group.describe(), before, "seed {seed} step {step}");
                }
                (4, true) => {} // silence: the member may expire
                (5, true) if group.members[&name].instance_id.is_some() => {
                    let c = &clients[&name];
                    let instance_id = group.members[&name].instance_id.clone();
                    let leave = HeartbeatRequest {
                        member_epoch: STATIC_LEAVE_EPOCH,
                        instance_id: instance_id.clone(),
                        ..beat_request(&c.id, c.epoch, &c.owned)
                    };
                    assert_eq!(heartbeat(&mut group, leave, now).error_code, errors::NONE);
                    away.extend(instance_id);
                    clients.remove(&name);
                }
                (_, true) => {
                    clients.get_mut(&name).unwrap().beat(&mut group, now);
                }
                _ => {}
            }
            away.retain(|i| group.static_members.contains_key(i));
            persist(&mut group, &mut image);
            group.tick(now, &topics());
            clients.retain(|id, _| group.members.contains_key(id));
            persist(&mut group, &mut image);
        }
    }
}

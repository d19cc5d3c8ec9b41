//! Consumer-group protocol rules checked request by request with a raw client: the member-id handshake,
//! only-the-leader-gets-members, empty assignments, fencing codes, static membership, batched
//! FindCoordinator/LeaveGroup/OffsetFetch, admin APIs, and committed offsets surviving kill -9 and restart.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::raw::Raw;
use common::{topic, Broker};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::time::Duration;

const SETTINGS: &[(&str, &str)] = &[
    ("group.initial.rebalance.delay.ms", "0"),
    ("group.min.session.timeout.ms", "1000"),
    ("offsets.topic.num.partitions", "3"),
];

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn gid(v: &str) -> GroupId {
    GroupId(s(v))
}

fn create(raw: &mut Raw, name: &str, partitions: i32) {
    let mut t = CreatableTopic::default();
    t.name = TopicName(s(name));
    t.num_partitions = partitions;
    t.replication_factor = 1;
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = 5000;
    let r: CreateTopicsResponse = raw.call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(r.topics[0].error_code, 0);
}

/// ConsumerProtocolSubscription v1 for one topic.
fn subscription(topic: &str) -> Bytes {
    let mut b = vec![0, 1, 0, 0, 0, 1];
    b.extend_from_slice(&(topic.len() as i16).to_be_bytes());
    b.extend_from_slice(topic.as_bytes());
    b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    Bytes::from(b)
}

fn join_request(
    group: &str,
    member: &str,
    instance: Option<&str>,
    topic: &str,
) -> JoinGroupRequest {
    let mut p = JoinGroupRequestProtocol::default();
    p.name = s("range");
    p.metadata = subscription(topic);
    let mut r = JoinGroupRequest::default();
    r.group_id = gid(group);
    r.session_timeout_ms = 10_000;
    r.rebalance_timeout_ms = 5_000;
    r.member_id = s(member);
    r.group_instance_id = instance.map(s);
    r.protocol_type = s("consumer");
    r.protocols = vec![p];
    r
}

fn sync_request(
    group: &str,
    member: &str,
    generation: i32,
    assignments: &[(&str, &[u8])],
) -> SyncGroupRequest {
    let mut r = SyncGroupRequest::default();
    r.group_id = gid(group);
    r.member_id = s(member);
    r.generation_id = generation;
    r.protocol_type = Some(s("consumer"));
    r.protocol_name = Some(s("range"));
    r.assignments = assignments
        .iter()
        .map(|(m, a)| {
            let mut x = SyncGroupRequestAssignment::default();
            x.member_id = s(m);
            x.assignment = Bytes::copy_from_slice(a);
            x
        })
        .collect();
    r
}

fn commit_request(
    group: &str,
    member: &str,
    generation: i32,
    topic: &str,
    offset: i64,
) -> OffsetCommitRequest {
    let mut p = OffsetCommitRequestPartition::default();
    p.partition_index = 0;
    p.committed_offset = offset;
    p.committed_leader_epoch = 0;
    p.committed_metadata = Some(s("meta"));
    let mut t = OffsetCommitRequestTopic::default();
    t.name = TopicName(s(topic));
    t.partitions = vec![p];
    let mut r = OffsetCommitRequest::default();
    r.group_id = gid(group);
    r.generation_id_or_member_epoch = generation;
    r.member_id = s(member);
    r.topics = vec![t];
    r
}

fn commit_error(raw: &mut Raw, request: &OffsetCommitRequest) -> i16 {
    let r: OffsetCommitResponse = raw.call(ApiKey::OffsetCommit, 8, request);
    r.topics[0].partitions[0].error_code
}

fn fetch_offset(raw: &mut Raw, group: &str, topic: &str) -> (i64, i16) {
    let mut g = OffsetFetchRequestGroup::default();
    g.group_id = gid(group);
    g.topics = None; // every committed partition
    let mut req = OffsetFetchRequest::default();
    req.groups = vec![g];
    let r: OffsetFetchResponse = raw.call(ApiKey::OffsetFetch, 8, &req);
    let group = &r.groups[0];
    let p = group
        .topics
        .iter()
        .find(|t| t.name.0.as_str() == topic)
        .map(|t| &t.partitions[0]);
    (p.map_or(-1, |p| p.committed_offset), group.error_code)
}

/// A one-member stable group: (member id, generation).
fn stable_single(raw: &mut Raw, group: &str, topic: &str) -> (String, i32) {
    let first: JoinGroupResponse =
        raw.call(ApiKey::JoinGroup, 9, &join_request(group, "", None, topic));
    assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED on the first join");
    let member = first.member_id.to_string();
    assert!(member.starts_with("raw-test-"), "{member}");
    let joined: JoinGroupResponse = raw.call(
        ApiKey::JoinGroup,
        9,
        &join_request(group, &member, None, topic),
    );
    assert_eq!(joined.error_code, 0);
    assert_eq!(joined.leader.as_str(), member);
    assert_eq!(joined.members.len(), 1, "the leader gets the member list");
    let synced: SyncGroupResponse = raw.call(
        ApiKey::SyncGroup,
        5,
        &sync_request(
            group,
            &member,
            joined.generation_id,
            &[(&member, b"assignment")],
        ),
    );
    assert_eq!(synced.error_code, 0);
    assert_eq!(synced.assignment.as_ref(), b"assignment");
    (member, joined.generation_id)
}

#[test]
fn two_members_rebalance_and_fencing_codes() {
    let broker = Broker::start(SETTINGS);
    let t = topic("grp");
    let mut a = Raw::connect(&broker);
    let mut b = Raw::connect(&broker);
    create(&mut a, &t, 2);
    let (ma, gen1) = stable_single(&mut a, "g", &t);
    // b's first join: MEMBER_ID_REQUIRED, then a join that waits for a to rejoin.
    let first: JoinGroupResponse = b.call(ApiKey::JoinGroup, 9, &join_request("g", "", None, &t));
    let mb = first.member_id.to_string();
    let pending = b.send(ApiKey::JoinGroup, 9, &join_request("g", &mb, None, &t));
    let hb = |raw: &mut Raw, member: &str, generation: i32| {
        let mut r = HeartbeatRequest::default();
        r.group_id = gid("g");
        r.member_id = s(member);
        r.generation_id = generation;
        let resp: HeartbeatResponse = raw.call(ApiKey::Heartbeat, 4, &r);
        resp.error_code
    };
    // Once the broker has taken b's join, the group prepares a rebalance: a's heartbeats say so
    // (REBALANCE_IN_PROGRESS tells a to rejoin); until then they answer NONE.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match hb(&mut a, &ma, gen1) {
            27 => break,
            0 if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            other => panic!("a's heartbeat answered {other}, not REBALANCE_IN_PROGRESS"),
        }
    }
    assert_eq!(hb(&mut a, "stranger", gen1), 25, "UNKNOWN_MEMBER_ID");
    let rejoined: JoinGroupResponse =
        a.call(ApiKey::JoinGroup, 9, &join_request("g", &ma, None, &t));
    let (id, mut frame) = b.receive().unwrap();
    assert_eq!(id, pending);
    bytes::Buf::advance(&mut frame, 1);
    let b_joined =
        <JoinGroupResponse as kafka_protocol::protocol::Decodable>::decode(&mut frame, 9).unwrap();
    let gen2 = rejoined.generation_id;
    assert_eq!(b_joined.generation_id, gen2);
    assert!(gen2 > gen1);
    let (leader, follower) = if rejoined.leader.as_str() == ma {
        (
            (&mut a, &rejoined, ma.as_str()),
            (&mut b, &b_joined, mb.as_str()),
        )
    } else {
        (
            (&mut b, &b_joined, mb.as_str()),
            (&mut a, &rejoined, ma.as_str()),
        )
    };
    assert_eq!(
        leader.1.members.len(),
        2,
        "only the leader gets the members"
    );
    assert!(follower.1.members.is_empty());
    // The follower's sync waits for the leader's, which leaves the follower out: it gets an empty assignment.
    let waiting = follower.0.send(
        ApiKey::SyncGroup,
        5,
        &sync_request("g", follower.2, gen2, &[]),
    );
    let ls: SyncGroupResponse = leader.0.call(
        ApiKey::SyncGroup,
        5,
        &sync_request("g", leader.2, gen2, &[(leader.2, b"all")]),
    );
    assert_eq!((ls.error_code, ls.assignment.as_ref()), (0, &b"all"[..]));
    let (id, mut frame) = follower.0.receive().unwrap();
    assert_eq!(id, waiting);
    bytes::Buf::advance(&mut frame, 1);
    let fs =
        <SyncGroupResponse as kafka_protocol::protocol::Decodable>::decode(&mut frame, 5).unwrap();
    assert_eq!((fs.error_code, fs.assignment.len()), (0, 0));
    assert_eq!(fs.protocol_name.as_deref(), Some("range"));
    // Commits: stale generation, unknown member, then a good one.
    assert_eq!(
        commit_error(leader.0, &commit_request("g", leader.2, gen1, &t, 5)),
        22
    );
    assert_eq!(
        commit_error(leader.0, &commit_request("g", "nobody", gen2, &t, 5)),
        25
    );
    assert_eq!(
        commit_error(leader.0, &commit_request("g", leader.2, gen2, &t, 5)),
        0
    );
    assert_eq!(fetch_offset(leader.0, "g", &t), (5, 0));
    // DescribeGroups sees both members of a stable group; DeleteGroups refuses a live group.
    let mut d = DescribeGroupsRequest::default();
    d.groups = vec![gid("g")];
    let described: DescribeGroupsResponse = a.call(ApiKey::DescribeGroups, 5, &d);
    let g = &described.groups[0];
    assert_eq!(
        (
            g.group_state.as_str(),
            g.protocol_data.as_str(),
            g.members.len()
        ),
        ("Stable", "range", 2)
    );
    assert!(g
        .members
        .iter()
        .all(|m| m.client_host.starts_with("/127.0.0.1")));
    let mut del = DeleteGroupsRequest::default();
    del.groups_names = vec![gid("g"), gid("never-existed")];
    let deleted: DeleteGroupsResponse = a.call(ApiKey::DeleteGroups, 2, &del);
    let codes: Vec<i16> = deleted.results.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, vec![68, 69], "NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND");
    // OffsetDelete refuses a topic the live members subscribe to.
    let mut od = OffsetDeleteRequest::default();
    od.group_id = gid("g");
    let mut odt = OffsetDeleteRequestTopic::default();
    odt.name = TopicName(s(&t));
    let mut odp = OffsetDeleteRequestPartition::default();
    odp.partition_index = 0;
    odt.partitions = vec![odp];
    od.topics = vec![odt];
    let r: OffsetDeleteResponse = a.call(ApiKey::OffsetDelete, 0, &od);
    assert_eq!(
        r.topics[0].partitions[0].error_code, 86,
        "GROUP_SUBSCRIBED_TO_TOPIC"
    );
    // Both leave in one batched LeaveGroup; the group is then empty, and deletable with its offsets.
    let mut leave = LeaveGroupRequest::default();
    leave.group_id = gid("g");
    leave.members = [ma.as_str(), mb.as_str(), "ghost"]
        .iter()
        .map(|m| {
            let mut x = MemberIdentity::default();
            x.member_id = s(m);
            x
        })
        .collect();
    let left: LeaveGroupResponse = a.call(ApiKey::LeaveGroup, 5, &leave);
    let codes: Vec<i16> = left.members.iter().map(|m| m.error_code).collect();
    assert_eq!(codes, vec![0, 0, 25]);
    let r: OffsetDeleteResponse = a.call(ApiKey::OffsetDelete, 0, &od);
    assert_eq!((r.error_code, r.topics[0].partitions[0].error_code), (0, 0));
    assert_eq!(fetch_offset(&mut a, "g", &t).0, -1, "offset deleted");
    let mut list = ListGroupsRequest::default();
    list.states_filter = vec![s("empty")];
    let listed: ListGroupsResponse = a.call(ApiKey::ListGroups, 5, &list);
    assert!(listed
        .groups
        .iter()
        .any(|g| g.group_id.as_str() == "g" && g.group_state.as_str() == "Empty"));
    let deleted: DeleteGroupsResponse = a.call(ApiKey::DeleteGroups, 2, &del);
    assert_eq!(deleted.results[0].error_code, 0);
}

#[test]
fn static_member_restart_keeps_its_place_and_fences_the_old_id() {
    let broker = Broker::start(SETTINGS);
    let t = topic("static");
    let mut raw = Raw::connect(&broker);
    create(&mut raw, &t, 1);
    // Static members skip MEMBER_ID_REQUIRED.
    let joined: JoinGroupResponse = raw.call(
        ApiKey::JoinGroup,
        9,
        &join_request("sg", "", Some("instance-1"), &t),
    );
    assert_eq!(joined.error_code, 0);
    let old = joined.member_id.to_string();
    let mut sync = sync_request("sg", &old, joined.generation_id, &[(&old, b"p0")]);
    sync.group_instance_id = Some(s("instance-1"));
    let synced: SyncGroupResponse = raw.call(ApiKey::SyncGroup, 5, &sync);
    assert_eq!(synced.error_code, 0);
    // The same instance restarts: a new member id, the same generation, no rebalance.
    let again: JoinGroupResponse = raw.call(
        ApiKey::JoinGroup,
        9,
        &join_request("sg", "", Some("instance-1"), &t),
    );
    assert_eq!(again.error_code, 0);
    assert_ne!(again.member_id.as_str(), old);
    assert_eq!(again.generation_id, joined.generation_id);
    assert!(
        again.skip_assignment,
        "a rejoining static leader must not reassign"
    );
    let mut hb = HeartbeatRequest::default();
    hb.group_id = gid("sg");
    hb.member_id = s(&old);
    hb.group_instance_id = Some(s("instance-1"));
    hb.generation_id = joined.generation_id;
    let r: HeartbeatResponse = raw.call(ApiKey::Heartbeat, 4, &hb);
    assert_eq!(
        r.error_code, 82,
        "FENCED_INSTANCE_ID for the replaced member"
    );
}

#[test]
fn find_coordinator_batches_and_commits_survive_kill9() {
    let mut broker = Broker::start(&[
        ("group.initial.rebalance.delay.ms", "0"),
        ("offsets.topic.num.partitions", "5"),
        ("log.flush.interval.messages", "1"),
    ]);
    let t = topic("durable");
    let mut raw = Raw::connect(&broker);
    create(&mut raw, &t, 1);
    let mut fc = FindCoordinatorRequest::default();
    fc.key_type = 0;
    fc.coordinator_keys = vec![s("a"), s("b"), s("")];
    let found: FindCoordinatorResponse = raw.call(ApiKey::FindCoordinator, 4, &fc);
    let codes: Vec<(i16, i32)> = found
        .coordinators
        .iter()
        .map(|c| (c.error_code, c.node_id.0))
        .collect();
    assert_eq!(
        codes,
        vec![(0, 1), (0, 1), (24, -1)],
        "INVALID_GROUP_ID for an empty key"
    );
    assert!(found.coordinators[0].port > 0);
    let mut txn = FindCoordinatorRequest::default();
    txn.key_type = 1;
    txn.key = s("tx");
    let found: FindCoordinatorResponse = raw.call(ApiKey::FindCoordinator, 3, &txn);
    assert_eq!(found.error_code, 15, "no transaction coordinator yet");
    // Simple (non-member) commits to many groups, then kill -9: every acknowledged commit is back.
    for i in 0..40 {
        let request = commit_request(&format!("dur-{i}"), "", -1, &t, 1000 + i);
        assert_eq!(commit_error(&mut raw, &request), 0);
    }
    let (member, generation) = stable_single(&mut raw, "live", &t);
    assert_eq!(
        commit_error(
            &mut raw,
            &commit_request("live", &member, generation, &t, 77)
        ),
        0
    );
    broker.kill9();
    broker.restart();
    let mut raw = Raw::connect(&broker);
    for i in 0..40 {
        assert_eq!(
            fetch_offset(&mut raw, &format!("dur-{i}"), &t),
            (1000 + i, 0)
        );
    }
    assert_eq!(fetch_offset(&mut raw, "live", &t), (77, 0));
    // The group itself was restored from its record: the member's session carries on.
    let mut hb = HeartbeatRequest::default();
    hb.group_id = gid("live");
    hb.member_id = s(&member);
    hb.generation_id = generation;
    let r: HeartbeatResponse = raw.call(ApiKey::Heartbeat, 4, &hb);
    assert_eq!(r.error_code, 0);
    let log = broker.log();
    assert!(
        log.contains("coordinating the groups of __consumer_offsets-"),
        "{log}"
    );
}

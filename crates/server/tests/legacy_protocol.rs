//! The request versions Kafka 3.9 served and Kafka 4.0 removed (KIP-896), at the wire level against the real
//! `ferrite` binary: each old version answers in its own layout, with the behaviour of the newer versions or of
//! Kafka 3.9 where the old version differs. `old_clients.rs` runs real old clients; this file covers the old
//! versions those clients do not send (CreateTopics v1, DeleteTopics v0, DescribeConfigs v0, DescribeLogDirs v0,
//! OffsetFetch v0, OffsetCommit v0, OffsetForLeaderEpoch v0-1, JoinGroup v0) and ListOffsets v0 in detail.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::{Bytes, BytesMut};
use common::raw::Raw;
use common::{topic, Broker};
use ferrite_log::batch_builder::{encode_batch, RecordSpec};
use ferrite_wire::legacy::list_offsets::{
    self as list_offsets, ListOffsetsV0Request, PartitionRequest,
};
use ferrite_wire::legacy::offset_commit::{self as offset_commit, LegacyOffsetCommit};
use ferrite_wire::legacy::{LegacyRequest, LegacyResponse};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;

const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const ILLEGAL_GENERATION: i16 = 22;
const TOPIC_ALREADY_EXISTS: i16 = 36;
const INVALID_PARTITIONS: i16 = 37;
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn name(v: &str) -> TopicName {
    TopicName(s(v))
}

fn new_topic(topic: &str, partitions: i32, configs: &[(&str, &str)]) -> CreatableTopic {
    let mut t = CreatableTopic::default();
    t.name = name(topic);
    t.num_partitions = partitions;
    t.replication_factor = 1;
    t.configs = configs
        .iter()
        .map(|(k, v)| {
            let mut c = CreatableTopicConfig::default();
            c.name = s(k);
            c.value = Some(s(v));
            c
        })
        .collect();
    t
}

fn create_topics(
    raw: &mut Raw,
    version: i16,
    topics: Vec<CreatableTopic>,
    validate_only: bool,
) -> CreateTopicsResponse {
    let mut request = CreateTopicsRequest::default();
    request.topics = topics;
    request.timeout_ms = 5000;
    request.validate_only = validate_only;
    let mut body = BytesMut::new();
    request.encode_legacy(&mut body, version).unwrap();
    let answer = raw.call_body(ApiKey::CreateTopics, version, &body);
    CreateTopicsResponse::decode_legacy(answer, version).unwrap()
}

fn metadata_topics(raw: &mut Raw) -> Vec<String> {
    let mut request = MetadataRequest::default();
    request.topics = None;
    let response: MetadataResponse = raw.call(ApiKey::Metadata, 9, &request);
    response
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
        .collect()
}

/// CreateTopics v0 and v1, DescribeConfigs v0, DescribeLogDirs v0 and DeleteTopics v0 on one topic.
#[test]
fn admin_apis_in_their_oldest_versions() {
    let broker = Broker::start(&[("auto.create.topics.enable", "false")]);
    let mut raw = Raw::connect(&broker);
    let (a, b) = (topic("legacy-a"), topic("legacy-b"));

    let created = create_topics(
        &mut raw,
        0,
        vec![new_topic(&a, 2, &[("retention.ms", "1000")])],
        false,
    );
    assert_eq!(created.topics[0].error_code, NONE, "{created:?}");
    let again = create_topics(&mut raw, 0, vec![new_topic(&a, 2, &[])], false);
    assert_eq!(again.topics[0].error_code, TOPIC_ALREADY_EXISTS);
    // v1: validate_only, and an error message.
    let checked = create_topics(
        &mut raw,
        1,
        vec![new_topic(&b, 1, &[]), new_topic("bad-partitions", 0, &[])],
        true,
    );
    assert_eq!(checked.topics[0].error_code, NONE, "{checked:?}");
    assert_eq!(
        checked.topics[1].error_code, INVALID_PARTITIONS,
        "{checked:?}"
    );
    assert!(checked.topics[1]
        .error_message
        .as_ref()
        .is_some_and(|m| !m.is_empty()));
    let listed = metadata_topics(&mut raw);
    assert!(listed.contains(&a) && !listed.contains(&b), "{listed:?}");

    // DescribeConfigs v0: the topic's override is not a default; a config it does not set is.
    let mut resource = DescribeConfigsResource::default();
    resource.resource_type = 2;
    resource.resource_name = s(&a);
    resource.configuration_keys = Some(vec![s("retention.ms"), s("segment.bytes")]);
    let mut request = DescribeConfigsRequest::default();
    request.resources = vec![resource];
    let mut body = BytesMut::new();
    request.encode_legacy(&mut body, 0).unwrap();
    let described =
        DescribeConfigsResponse::decode_legacy(raw.call_body(ApiKey::DescribeConfigs, 0, &body), 0)
            .unwrap();
    let configs: BTreeMap<String, (Option<String>, i8)> = described.results[0]
        .configs
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                (c.value.as_ref().map(|v| v.to_string()), c.config_source),
            )
        })
        .collect();
    // decode_legacy reads is_default back as Kafka's client does: DEFAULT_CONFIG (5) or TOPIC_CONFIG (1).
    assert_eq!(
        configs["retention.ms"],
        (Some("1000".into()), 1),
        "{described:?}"
    );
    assert_eq!(
        configs["segment.bytes"],
        (Some("1073741824".into()), 5),
        "{described:?}"
    );

    // DescribeLogDirs v0 (v1's layout): the topic's partitions are in the one log directory.
    let mut request = DescribeLogDirsRequest::default();
    request.topics = None;
    let mut body_all = BytesMut::new();
    request.encode_legacy(&mut body_all, 0).unwrap();
    let dirs = DescribeLogDirsResponse::decode_legacy(
        raw.call_body(ApiKey::DescribeLogDirs, 0, &body_all),
        0,
    )
    .unwrap();
    let partitions: Vec<i32> = dirs.results[0]
        .topics
        .iter()
        .filter(|t| t.name.0.as_str() == a)
        .flat_map(|t| t.partitions.iter().map(|p| p.partition_index))
        .collect();
    assert_eq!(partitions, vec![0, 1], "{dirs:?}");

    // DeleteTopics v0.
    let mut request = DeleteTopicsRequest::default();
    request.topic_names = vec![name(&a), name("never-created")];
    request.timeout_ms = 5000;
    let mut body = BytesMut::new();
    request.encode_legacy(&mut body, 0).unwrap();
    let deleted =
        DeleteTopicsResponse::decode_legacy(raw.call_body(ApiKey::DeleteTopics, 0, &body), 0)
            .unwrap();
    let errors: Vec<(String, i16)> = deleted
        .responses
        .iter()
        .map(|r| (r.name.as_ref().unwrap().0.to_string(), r.error_code))
        .collect();
    assert_eq!(
        errors,
        vec![
            (a.clone(), NONE),
            ("never-created".into(), UNKNOWN_TOPIC_OR_PARTITION)
        ]
    );
    assert!(!metadata_topics(&mut raw).contains(&a));
}

fn commit_request(
    group: &str,
    generation: i32,
    member: &str,
    topic: &str,
    offsets: &[(i32, i64, Option<&str>)],
) -> OffsetCommitRequest {
    let mut t = OffsetCommitRequestTopic::default();
    t.name = name(topic);
    t.partitions = offsets
        .iter()
        .map(|&(p, o, m)| {
            let mut part = OffsetCommitRequestPartition::default();
            part.partition_index = p;
            part.committed_offset = o;
            part.committed_metadata = m.map(s);
            part
        })
        .collect();
    let mut request = OffsetCommitRequest::default();
    request.group_id = GroupId(s(group));
    request.generation_id_or_member_epoch = generation;
    request.member_id = s(member);
    request.topics = vec![t];
    request
}

/// OffsetCommit v0-1 (answered in v2's layout); their errors per partition.
fn commit_legacy(
    raw: &mut Raw,
    version: i16,
    request: OffsetCommitRequest,
    timestamp: i64,
) -> Vec<i16> {
    let partitions = request.topics[0].partitions.len();
    let commit = LegacyOffsetCommit {
        request,
        commit_timestamps: vec![timestamp; partitions],
    };
    let mut body = BytesMut::new();
    offset_commit::encode_request(&commit, &mut body, version).unwrap();
    let answer = raw.call_body(ApiKey::OffsetCommit, version, &body);
    let response = OffsetCommitResponse::decode_legacy(answer, version).unwrap();
    response.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect()
}

/// OffsetFetch at `version` (0: through `legacy`): (offset, metadata) per partition.
fn fetch_offsets(
    raw: &mut Raw,
    version: i16,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> Vec<(i64, String)> {
    let mut t = OffsetFetchRequestTopic::default();
    t.name = name(topic);
    t.partition_indexes = partitions.to_vec();
    let mut request = OffsetFetchRequest::default();
    request.group_id = GroupId(s(group));
    request.topics = Some(vec![t]);
    let response = if version == 0 {
        let mut body = BytesMut::new();
        request.encode_legacy(&mut body, 0).unwrap();
        OffsetFetchResponse::decode_legacy(raw.call_body(ApiKey::OffsetFetch, 0, &body), 0).unwrap()
    } else {
        raw.call::<_, OffsetFetchResponse>(ApiKey::OffsetFetch, version, &request)
    };
    response.topics[0]
        .partitions
        .iter()
        .map(|p| {
            (
                p.committed_offset,
                p.metadata
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

/// OffsetCommit v0 commits outside any generation and OffsetFetch v0 reads it back, as do newer versions;
/// JoinGroup v0 and SyncGroup v0 make a member whose OffsetCommit v1 is checked against its generation.
#[test]
fn offsets_and_groups_in_their_oldest_versions() {
    let broker = Broker::start(&[
        ("group.initial.rebalance.delay.ms", "0"),
        ("offsets.topic.num.partitions", "2"),
    ]);
    let mut raw = Raw::connect(&broker);
    let t = topic("legacy-offsets");
    let created = create_topics(&mut raw, 0, vec![new_topic(&t, 2, &[])], false);
    assert_eq!(created.topics[0].error_code, NONE);

    let v0 = commit_request("g0", -1, "", &t, &[(0, 5, Some("m")), (1, 6, None)]);
    assert_eq!(commit_legacy(&mut raw, 0, v0, -1), vec![NONE, NONE]);
    let want = vec![(5, "m".to_string()), (6, String::new())];
    assert_eq!(
        fetch_offsets(&mut raw, 0, "g0", &t, &[0, 1]),
        want,
        "OffsetFetch v0"
    );
    assert_eq!(
        fetch_offsets(&mut raw, 7, "g0", &t, &[0, 1]),
        want,
        "OffsetFetch v7"
    );
    let unknown = commit_request("g0", -1, "", "no-such-topic", &[(0, 1, None)]);
    assert_eq!(
        commit_legacy(&mut raw, 0, unknown, -1),
        vec![UNKNOWN_TOPIC_OR_PARTITION]
    );

    // JoinGroup v0 (no rebalance timeout) and SyncGroup v0: a one-member group, generation 1.
    let mut protocol = JoinGroupRequestProtocol::default();
    protocol.name = s("range");
    protocol.metadata = Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let mut join = JoinGroupRequest::default();
    join.group_id = GroupId(s("g1"));
    join.session_timeout_ms = 10_000;
    join.protocol_type = s("consumer");
    join.protocols = vec![protocol];
    let joined: JoinGroupResponse = raw.call(ApiKey::JoinGroup, 0, &join);
    assert_eq!(joined.error_code, NONE, "{joined:?}");
    assert!(!joined.member_id.is_empty());
    assert_eq!(joined.leader, joined.member_id, "the only member leads");
    let mut assignment = SyncGroupRequestAssignment::default();
    assignment.member_id = joined.member_id.clone();
    assignment.assignment = Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let mut sync = SyncGroupRequest::default();
    sync.group_id = GroupId(s("g1"));
    sync.generation_id = joined.generation_id;
    sync.member_id = joined.member_id.clone();
    sync.assignments = vec![assignment];
    let synced: SyncGroupResponse = raw.call(ApiKey::SyncGroup, 0, &sync);
    assert_eq!(synced.error_code, NONE, "{synced:?}");

    // OffsetCommit v1 from the member: its generation commits (with a commit timestamp), another does not.
    let member = joined.member_id.to_string();
    let current = commit_request("g1", joined.generation_id, &member, &t, &[(0, 9, None)]);
    assert_eq!(
        commit_legacy(&mut raw, 1, current, 1_700_000_000_000),
        vec![NONE]
    );
    let stale = commit_request(
        "g1",
        joined.generation_id + 5,
        &member,
        &t,
        &[(0, 10, None)],
    );
    assert_eq!(
        commit_legacy(&mut raw, 1, stale, -1),
        vec![ILLEGAL_GENERATION]
    );
    assert_eq!(
        fetch_offsets(&mut raw, 1, "g1", &t, &[0]),
        vec![(9, String::new())]
    );
}

fn produce_records(raw: &mut Raw, topic: &str, batches: usize, value_bytes: usize) {
    let now = ferrite_log::Clock::now_ms(&ferrite_log::SystemClock);
    let value = vec![b'x'; value_bytes];
    for _ in 0..batches {
        let mut records = BytesMut::new();
        let spec = [RecordSpec {
            key: Some(b"k"),
            value: Some(&value),
            headers: vec![],
            timestamp: now,
        }];
        encode_batch(&mut records, &spec, -1, None);
        let mut p = PartitionProduceData::default();
        p.index = 0;
        p.records = Some(records.freeze());
        let mut td = TopicProduceData::default();
        td.name = name(topic);
        td.partition_data = vec![p];
        let mut request = ProduceRequest::default();
        request.acks = -1;
        request.timeout_ms = 5000;
        request.topic_data = vec![td];
        let response: ProduceResponse = raw.call(ApiKey::Produce, 9, &request);
        assert_eq!(
            response.responses[0].partition_responses[0].error_code,
            NONE
        );
    }
}

fn list_offsets_v0(
    raw: &mut Raw,
    topic: &str,
    partition: i32,
    timestamp: i64,
    max: i32,
) -> (i16, Vec<i64>) {
    let request = ListOffsetsV0Request {
        replica_id: -1,
        topics: vec![(
            topic.to_string(),
            vec![PartitionRequest {
                partition_index: partition,
                timestamp,
                max_num_offsets: max,
            }],
        )],
    };
    let mut body = BytesMut::new();
    list_offsets::encode_request(&request, &mut body);
    let response =
        list_offsets::decode_response(raw.call_body(ApiKey::ListOffsets, 0, &body)).unwrap();
    let p = &response.topics[0].1[0];
    (p.error_code, p.old_style_offsets.clone())
}

/// ListOffsets v0 answers as Kafka 3.9's `legacyFetchOffsetsBefore`: segment base offsets and the log end,
/// newest first, by segment modification time, at most `max_num_offsets`.
#[test]
fn list_offsets_v0_lists_segment_offsets() {
    let broker = Broker::start(&[]);
    let mut raw = Raw::connect(&broker);
    let t = topic("legacy-list");
    let created = create_topics(
        &mut raw,
        0,
        vec![new_topic(&t, 1, &[("segment.bytes", "1024")])],
        false,
    );
    assert_eq!(created.topics[0].error_code, NONE, "{created:?}");
    // An empty log: its one (empty) segment's base offset, whichever end is asked for.
    assert_eq!(list_offsets_v0(&mut raw, &t, 0, LATEST, 1), (NONE, vec![0]));
    assert_eq!(
        list_offsets_v0(&mut raw, &t, 0, EARLIEST, 1),
        (NONE, vec![0])
    );

    produce_records(&mut raw, &t, 12, 300); // about 380 bytes a batch: two per 1 KiB segment
    let dir = broker.data_dir().join(format!("{t}-0"));
    let mut bases: Vec<i64> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().into_string().unwrap();
            n.strip_suffix(".log")?.parse().ok()
        })
        .collect();
    bases.sort_unstable();
    assert!(bases.len() >= 4, "segments {bases:?}");
    let active_has_data = *bases.last().unwrap() < 12;
    let mut everything: Vec<i64> = bases.iter().rev().copied().collect();
    if active_has_data {
        everything.insert(0, 12);
    }
    assert_eq!(
        list_offsets_v0(&mut raw, &t, 0, LATEST, 1),
        (NONE, vec![12])
    );
    assert_eq!(
        list_offsets_v0(&mut raw, &t, 0, LATEST, 100),
        (NONE, everything.clone())
    );
    assert_eq!(
        list_offsets_v0(&mut raw, &t, 0, LATEST, 2),
        (NONE, everything[..2].to_vec())
    );
    assert_eq!(
        list_offsets_v0(&mut raw, &t, 0, EARLIEST, 100),
        (NONE, vec![0])
    );
    // Every segment was written after time 0 and before an hour from now.
    assert_eq!(list_offsets_v0(&mut raw, &t, 0, 0, 100), (NONE, vec![]));
    let later = ferrite_log::Clock::now_ms(&ferrite_log::SystemClock) + 3_600_000;
    assert_eq!(
        list_offsets_v0(&mut raw, &t, 0, later, 100),
        (NONE, everything)
    );
    assert_eq!(
        list_offsets_v0(&mut raw, &t, 7, LATEST, 1),
        (UNKNOWN_TOPIC_OR_PARTITION, vec![])
    );
    assert_eq!(
        list_offsets_v0(&mut raw, "no-such-topic", 0, LATEST, 1).0,
        UNKNOWN_TOPIC_OR_PARTITION
    );
}

/// OffsetForLeaderEpoch v0 (no epoch in the answer) and v1 agree with v2.
#[test]
fn offset_for_leader_epoch_v0_and_v1() {
    let broker = Broker::start(&[]);
    let mut raw = Raw::connect(&broker);
    let t = topic("legacy-epoch");
    let created = create_topics(&mut raw, 0, vec![new_topic(&t, 1, &[])], false);
    assert_eq!(created.topics[0].error_code, NONE);
    produce_records(&mut raw, &t, 3, 10);
    let request = |partition: i32| {
        let mut p = OffsetForLeaderPartition::default();
        p.partition = partition;
        p.leader_epoch = 0;
        let mut topic = OffsetForLeaderTopic::default();
        topic.topic = name(&t);
        topic.partitions = vec![p];
        let mut request = OffsetForLeaderEpochRequest::default();
        request.topics = vec![topic];
        request
    };
    let reference: OffsetForLeaderEpochResponse =
        raw.call(ApiKey::OffsetForLeaderEpoch, 2, &request(0));
    let expected = &reference.topics[0].partitions[0];
    assert_eq!(
        (expected.error_code, expected.end_offset),
        (NONE, 3),
        "{reference:?}"
    );
    for version in 0..=1 {
        let mut body = BytesMut::new();
        request(0).encode_legacy(&mut body, version).unwrap();
        let answer = raw.call_body(ApiKey::OffsetForLeaderEpoch, version, &body);
        let response = OffsetForLeaderEpochResponse::decode_legacy(answer, version).unwrap();
        let got = &response.topics[0].partitions[0];
        assert_eq!((got.error_code, got.end_offset), (NONE, 3), "v{version}");
        if version == 1 {
            assert_eq!(got.leader_epoch, expected.leader_epoch);
        }
        let mut body = BytesMut::new();
        request(4).encode_legacy(&mut body, version).unwrap();
        let answer = raw.call_body(ApiKey::OffsetForLeaderEpoch, version, &body);
        let response = OffsetForLeaderEpochResponse::decode_legacy(answer, version).unwrap();
        assert_eq!(
            response.topics[0].partitions[0].error_code,
            UNKNOWN_TOPIC_OR_PARTITION
        );
    }
}

/// One partition of a Fetch v0-3 answer: (error, high watermark, message set).
fn fetch_old(
    raw: &mut Raw,
    version: i16,
    topic: &str,
    partition: i32,
    offset: i64,
    max: i32,
) -> (i16, i64, Vec<u8>) {
    let mut p = kafka_protocol::messages::fetch_request::FetchPartition::default();
    p.partition = partition;
    p.fetch_offset = offset;
    p.partition_max_bytes = max;
    let mut t = kafka_protocol::messages::fetch_request::FetchTopic::default();
    t.topic = name(topic);
    t.partitions = vec![p];
    let mut request = FetchRequest::default();
    request.max_wait_ms = 100;
    request.min_bytes = 1;
    request.topics = vec![t];
    let mut body = BytesMut::new();
    request.encode_legacy(&mut body, version).unwrap();
    let mut answer: &[u8] = &raw.call_body(ApiKey::Fetch, version, &body);
    let mut take = |n: usize| {
        let (head, rest) = answer.split_at(n);
        answer = rest;
        head.to_vec()
    };
    let int = |b: Vec<u8>| b.iter().fold(0i64, |acc, &x| (acc << 8) | i64::from(x));
    if version >= 1 {
        assert_eq!(int(take(4)), 0, "throttle");
    }
    assert_eq!(int(take(4)), 1, "one topic");
    let name_len = int(take(2)) as usize;
    assert_eq!(take(name_len), topic.as_bytes());
    assert_eq!(int(take(4)), 1, "one partition");
    assert_eq!(int(take(4)) as i32, partition);
    let error = int(take(2)) as i16;
    let high_watermark = int(take(8));
    let size = int(take(4)) as usize;
    let set = take(size);
    assert!(answer.is_empty(), "trailing bytes");
    (error, high_watermark, set)
}

/// Produce v0-2 (answered in their own layouts).
fn produce_old(raw: &mut Raw, version: i16, topic: &str, records: Vec<u8>) -> ProduceResponse {
    let mut p = PartitionProduceData::default();
    p.index = 0;
    p.records = Some(Bytes::from(records));
    let mut t = TopicProduceData::default();
    t.name = name(topic);
    t.partition_data = vec![p];
    let mut request = ProduceRequest::default();
    request.acks = 1;
    request.timeout_ms = 5000;
    request.topic_data = vec![t];
    let mut body = BytesMut::new();
    ferrite_wire::legacy::produce::encode_request(&request, &mut body, version).unwrap();
    ProduceResponse::decode_legacy(raw.call_body(ApiKey::Produce, version, &body), version).unwrap()
}

/// Produce v0-2 with magic 0 and 1 message sets (stored as v2 batches) and a v2 batch; Fetch v0-3 read them all
/// back as message sets of their version's magic, byte for byte what an old broker would have sent.
#[test]
fn old_message_formats_are_converted_both_ways() {
    use ferrite_wire::legacy::message_set::{encode, Plain};
    let broker = Broker::start(&[]);
    let mut raw = Raw::connect(&broker);
    let t = topic("legacy-formats");
    let created = create_topics(&mut raw, 0, vec![new_topic(&t, 1, &[])], false);
    assert_eq!(created.topics[0].error_code, NONE);
    let now = ferrite_log::Clock::now_ms(&ferrite_log::SystemClock);
    let records: Vec<Plain> = vec![
        (Some(b"k0"), Some(b"v0"), -1), // magic 0: no timestamp
        (None, Some(b"v1"), -1),
        (Some(b"k2"), Some(b""), now),
        (Some(b"k3"), None, now + 1),
        (Some(b"k4"), Some(b"v4"), now + 2),
        (Some(b"k5"), Some(b"v5"), now + 3), // sent as a v2 batch
    ];
    let p0 = produce_old(&mut raw, 0, &t, encode(0, 0, &records[..2]));
    let p1 = produce_old(&mut raw, 1, &t, encode(1, 0, &records[2..4]));
    let p2 = produce_old(&mut raw, 2, &t, encode(1, 0, &records[4..5]));
    let bases: Vec<(i16, i64)> = [&p0, &p1, &p2]
        .iter()
        .map(|r| {
            let p = &r.responses[0].partition_responses[0];
            (p.error_code, p.base_offset)
        })
        .collect();
    assert_eq!(bases, vec![(NONE, 0), (NONE, 2), (NONE, 4)]);
    assert_eq!(
        p2.responses[0].partition_responses[0].log_append_time_ms, -1,
        "CreateTime"
    );
    let mut corrupt = encode(1, 0, &records[4..5]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x55;
    let refused = produce_old(&mut raw, 2, &t, corrupt);
    assert_eq!(
        refused.responses[0].partition_responses[0].error_code, 2,
        "CORRUPT_MESSAGE"
    );
    let mut batch = BytesMut::new();
    let spec = [RecordSpec {
        key: records[5].0,
        value: records[5].1,
        headers: vec![("h", Some(b"dropped by down-conversion"))],
        timestamp: records[5].2,
    }];
    encode_batch(&mut batch, &spec, -1, None);
    let p3 = produce_old(&mut raw, 2, &t, batch.to_vec());
    assert_eq!(p3.responses[0].partition_responses[0].base_offset, 5);

    for version in 0..=3 {
        let magic = if version >= 2 { 1 } else { 0 };
        let (error, high_watermark, set) = fetch_old(&mut raw, version, &t, 0, 0, 1 << 20);
        assert_eq!((error, high_watermark), (NONE, 6), "v{version}");
        assert_eq!(
            set,
            encode(magic, 0, &records),
            "v{version}: every record, magic {magic}"
        );
        // From the middle of a batch, and at most one message's worth of bytes (the first always comes).
        let (_, _, tail) = fetch_old(&mut raw, version, &t, 0, 3, 1 << 20);
        assert_eq!(
            tail,
            encode(magic, 3, &records[3..]),
            "v{version} from offset 3"
        );
        let (_, _, one) = fetch_old(&mut raw, version, &t, 0, 1, 1);
        assert_eq!(one, encode(magic, 1, &records[1..2]), "v{version} limited");
        let (_, _, none) = fetch_old(&mut raw, version, &t, 0, 6, 1 << 20);
        assert!(none.is_empty());
        assert_eq!(
            fetch_old(&mut raw, version, &t, 5, 0, 100).0,
            UNKNOWN_TOPIC_OR_PARTITION
        );
    }
}

#![allow(clippy::unwrap_used)]

use super::*;
use crate::offsets::{decode_key, RecordKey};

const T1: Uuid = Uuid::from_u128(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10);
const T2: Uuid = Uuid::from_u128(2);

fn assignment(topics: &[(Uuid, &[i32])]) -> Assignment {
    topics
        .iter()
        .map(|(t, p)| (*t, p.iter().copied().collect()))
        .collect()
}

fn member() -> MemberMetadataValue {
    MemberMetadataValue {
        instance_id: Some("instance-1".into()),
        rack_id: None,
        client_id: "rdkafka".into(),
        client_host: "/127.0.0.1".into(),
        subscribed_topic_names: vec!["orders".into(), "payments".into()],
        subscribed_topic_regex: None,
        rebalance_timeout_ms: 300_000,
        server_assignor: Some("uniform".into()),
    }
}

fn current() -> CurrentAssignmentValue {
    CurrentAssignmentValue {
        member_epoch: 5,
        previous_member_epoch: 4,
        state: MemberState::UnrevokedPartitions,
        assigned: assignment(&[(T1, &[0, 2]), (T2, &[7])]),
        pending_revocation: assignment(&[(T1, &[1])]),
    }
}

fn record(body: RecordBody) -> ConsumerGroupRecord {
    ConsumerGroupRecord {
        group_id: "g".into(),
        body,
    }
}

/// Every kind of record, with values and as tombstones.
fn all_records() -> Vec<ConsumerGroupRecord> {
    let values = [
        RecordBody::Metadata(Some(GroupMetadataValue {
            epoch: 7,
            metadata_hash: -42,
        })),
        RecordBody::Metadata(Some(GroupMetadataValue {
            epoch: 1,
            metadata_hash: 0,
        })),
        RecordBody::Member("m".into(), Some(member())),
        RecordBody::Member("m".into(), Some(MemberMetadataValue::default())),
        RecordBody::TargetMetadata(Some(7)),
        RecordBody::TargetMember("m".into(), Some(assignment(&[(T1, &[3, 4])]))),
        RecordBody::TargetMember("m".into(), Some(Assignment::new())),
        RecordBody::CurrentAssignment("m".into(), Some(current())),
    ];
    let tombstones = [
        RecordBody::Metadata(None),
        RecordBody::Member("m".into(), None),
        RecordBody::TargetMetadata(None),
        RecordBody::TargetMember("m".into(), None),
        RecordBody::CurrentAssignment("m".into(), None),
    ];
    values.into_iter().chain(tombstones).map(record).collect()
}

fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Option<ConsumerGroupRecord>, RecordError> {
    let RecordKey::ConsumerGroup(key) = decode_key(key)? else {
        panic!("not a consumer group key");
    };
    ConsumerGroupRecord::decode(&key, value)
}

#[test]
fn every_record_round_trips() {
    for r in all_records() {
        let (key, value) = r.encode();
        assert_eq!(decode(&key, value.as_deref()), Ok(Some(r.clone())), "{r:?}");
    }
}

#[test]
fn keys_are_kafkas() {
    let (key, _) = record(RecordBody::Metadata(None)).encode();
    assert_eq!(key, [0, 3, 0, 1, b'g']);
    let (key, _) = record(RecordBody::Member("m".into(), None)).encode();
    assert_eq!(key, [0, 5, 0, 1, b'g', 0, 1, b'm']);
    let (key, _) = record(RecordBody::TargetMetadata(None)).encode();
    assert_eq!(key, [0, 6, 0, 1, b'g']);
    let (key, _) = record(RecordBody::TargetMember("m".into(), None)).encode();
    assert_eq!(key, [0, 7, 0, 1, b'g', 0, 1, b'm']);
    let (key, _) = record(RecordBody::CurrentAssignment("m".into(), None)).encode();
    assert_eq!(key, [0, 8, 0, 1, b'g', 0, 1, b'm']);
    assert_eq!(
        decode_key(&[0, 4, 0, 1, b'g']),
        Ok(RecordKey::ConsumerGroup(ConsumerGroupKey {
            record_type: PARTITION_METADATA,
            group_id: "g".into(),
            member_id: None,
        }))
    );
    assert_eq!(
        decode(&[0, 4, 0, 1, b'g'], Some(&[0, 0, 1, 2, 3])),
        Ok(None),
        "partition metadata is read and skipped, whatever its value"
    );
    assert!(
        decode_key(&[0, 5, 0, 1, b'g']).is_err(),
        "member id missing"
    );
    assert_eq!(decode_key(&[0, 9]), Ok(RecordKey::Other(9)));
}

/// ConsumerGroupCurrentMemberAssignmentValue v0 for `current()`, byte by byte from the schema.
#[test]
fn current_assignment_bytes_follow_the_schema() {
    let mut want: Vec<u8> = vec![0, 0]; // version 0
    want.extend([0, 0, 0, 5]); // MemberEpoch
    want.extend([0, 0, 0, 4]); // PreviousMemberEpoch
    want.push(1); // State: UNREVOKED_PARTITIONS
    want.push(3); // AssignedPartitions: compact array of 2, in topic id order
    want.extend(T2.as_bytes()); // TopicId
    want.push(2); // Partitions: compact array of 1
    want.extend([0, 0, 0, 7]);
    want.push(0); // TopicPartitions tagged fields
    want.extend(T1.as_bytes());
    want.push(3);
    want.extend([0, 0, 0, 0, 0, 0, 0, 2]);
    want.push(0);
    want.push(2); // PartitionsPendingRevocation: 1 topic
    want.extend(T1.as_bytes());
    want.push(2);
    want.extend([0, 0, 0, 1]);
    want.push(0);
    want.push(0); // top-level tagged fields
    let (_, value) = record(RecordBody::CurrentAssignment("m".into(), Some(current()))).encode();
    assert_eq!(value.unwrap(), want);
    assert_eq!(T1.as_bytes()[..3], [1, 2, 3], "uuids are big-endian");
}

/// ConsumerGroupMemberMetadataValue and ConsumerGroupMetadataValue (with its tagged metadata hash).
#[test]
fn member_and_group_bytes_follow_the_schema() {
    let value = MemberMetadataValue {
        instance_id: None,
        rack_id: Some("r1".into()),
        client_id: "c".into(),
        client_host: "/h".into(),
        subscribed_topic_names: vec!["t".into()],
        subscribed_topic_regex: None,
        rebalance_timeout_ms: 1000,
        server_assignor: None,
    };
    let mut want: Vec<u8> = vec![0, 0];
    want.push(0); // InstanceId: null
    want.extend([3, b'r', b'1']); // RackId
    want.extend([2, b'c']); // ClientId
    want.extend([3, b'/', b'h']); // ClientHost
    want.extend([2, 2, b't']); // SubscribedTopicNames: ["t"]
    want.push(0); // SubscribedTopicRegex: null
    want.extend(1000i32.to_be_bytes()); // RebalanceTimeoutMs
    want.push(0); // ServerAssignor: null
    want.push(0); // no tagged fields
    let (_, bytes) = record(RecordBody::Member("m".into(), Some(value))).encode();
    assert_eq!(bytes.unwrap(), want);

    let group = GroupMetadataValue {
        epoch: 9,
        metadata_hash: 0x0102_0304_0506_0708,
    };
    let (_, bytes) = record(RecordBody::Metadata(Some(group))).encode();
    let want = [0, 0, 0, 0, 0, 9, 1, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
    assert_eq!(bytes.unwrap(), want, "one tagged field: tag 0, 8 bytes");
    let (_, bytes) = record(RecordBody::TargetMetadata(Some(9))).encode();
    assert_eq!(bytes.unwrap(), [0, 0, 0, 0, 0, 9, 0]);
}

/// Values as a newer Kafka writes them: tagged fields this coordinator does not keep are skipped.
#[test]
fn unknown_tagged_fields_are_skipped() {
    // Group metadata with CreationTimeMs (tag 1) before MetadataHash (tag 0).
    let mut bytes = vec![0, 0, 0, 0, 0, 3, 2];
    bytes.extend([1, 8]);
    bytes.extend(1234i64.to_be_bytes());
    bytes.extend([0, 8]);
    bytes.extend(99i64.to_be_bytes());
    let (key, _) = record(RecordBody::Metadata(None)).encode();
    let want = GroupMetadataValue {
        epoch: 3,
        metadata_hash: 99,
    };
    assert_eq!(
        decode(&key, Some(&bytes)),
        Ok(Some(record(RecordBody::Metadata(Some(want)))))
    );
    // Target member with AssignmentEpochs (tag 0) inside a topic, and an AssignmentTimestamp-like tag.
    let mut bytes = vec![0, 0, 2];
    bytes.extend(T1.as_bytes());
    bytes.extend([2, 0, 0, 0, 5]);
    bytes.extend([1, 0, 6, 2, 0, 0, 0, 3, 0]); // one tag: 0, 6 bytes: compact array [3] + its tags
    bytes.extend([1, 0, 1, 0xff]); // top level: tag 0, 1 byte
    let (key, _) = record(RecordBody::TargetMember("m".into(), None)).encode();
    assert_eq!(
        decode(&key, Some(&bytes)),
        Ok(Some(record(RecordBody::TargetMember(
            "m".into(),
            Some(assignment(&[(T1, &[5])]))
        ))))
    );
}

#[test]
fn truncated_and_hostile_values_are_errors() {
    for r in all_records() {
        let (key, Some(value)) = r.encode() else {
            continue;
        };
        for cut in 0..value.len() {
            assert!(
                decode(&key, Some(&value[..cut])).is_err(),
                "{r:?} cut at {cut}"
            );
        }
    }
    let (key, _) = record(RecordBody::TargetMember("m".into(), None)).encode();
    assert!(decode(&key, Some(&[0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f])).is_err());
    assert!(decode(&key, Some(&[0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])).is_err());
    assert!(
        decode(&key, Some(&[0, 1, 1, 0])).is_err(),
        "value version 1"
    );
    let (key, _) = record(RecordBody::CurrentAssignment("m".into(), None)).encode();
    let mut bad_state = vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 127, 1, 1, 0];
    assert!(decode(&key, Some(&bad_state)).is_err(), "unknown state");
    bad_state[10] = 2;
    assert!(decode(&key, Some(&bad_state)).is_ok());
}

#[test]
fn an_image_replays_to_itself_and_tombstones_empty_it() {
    let mut image = ConsumerGroupImage::default();
    for body in [
        RecordBody::Metadata(Some(GroupMetadataValue {
            epoch: 3,
            metadata_hash: 5,
        })),
        RecordBody::Member("a".into(), Some(member())),
        RecordBody::Member("b".into(), Some(MemberMetadataValue::default())),
        RecordBody::TargetMember("a".into(), Some(assignment(&[(T1, &[0])]))),
        RecordBody::TargetMember("b".into(), Some(assignment(&[(T1, &[1])]))),
        RecordBody::TargetMetadata(Some(3)),
        RecordBody::CurrentAssignment("a".into(), Some(current())),
        RecordBody::Member("c".into(), Some(member())),
        RecordBody::Member("c".into(), None),
    ] {
        image.apply(body);
    }
    assert_eq!(image.members.len(), 2, "the tombstone removed c");
    let mut copy = ConsumerGroupImage::default();
    for r in image.records("g") {
        let (key, value) = r.encode();
        copy.apply(decode(&key, value.as_deref()).unwrap().unwrap().body);
    }
    assert_eq!(copy, image);
    assert_eq!(image.records("g").len(), 7);
    let tombstones = image.tombstones("g");
    assert_eq!(tombstones.len(), 7);
    assert_eq!(
        tombstones.last().map(|r| &r.body),
        Some(&RecordBody::Metadata(None)),
        "the group record goes last"
    );
    for r in tombstones {
        copy.apply(r.body);
    }
    assert!(copy.is_empty());
}

#[test]
fn the_topics_hash_sees_every_field() {
    let base: TopicMetadata = [("orders".to_string(), (T1, 6))].into();
    let more: TopicMetadata = [("orders".to_string(), (T1, 7))].into();
    let other_id: TopicMetadata = [("orders".to_string(), (T2, 6))].into();
    let renamed: TopicMetadata = [("order".to_string(), (T1, 6))].into();
    let hashes = [&base, &more, &other_id, &renamed, &TopicMetadata::new()].map(topics_hash);
    for (i, a) in hashes.iter().enumerate() {
        assert_ne!(*a, 0);
        for b in &hashes[i + 1..] {
            assert_ne!(a, b);
        }
    }
    assert_eq!(topics_hash(&base), topics_hash(&base.clone()));
}

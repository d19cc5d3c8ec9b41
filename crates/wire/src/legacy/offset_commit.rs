//! OffsetCommit v0-1 requests (sarama 1.22 commits with v1). The responses are v2's (see `same_layout!` in the
//! module root).
//!
//! ```text
//! request v0: group_id string
//!             | topics [name string | partitions [partition_index i32 | committed_offset i64
//!                                                 | committed_metadata nullable string]]
//! request v1: group_id string | generation_id i32 | member_id string
//!             | topics [name string | partitions [partition_index i32 | committed_offset i64
//!                                                 | commit_timestamp i64 | committed_metadata nullable string]]
//! ```
//! v0 has no group membership: it commits as a client outside the group's generations (generation -1, member
//! ""), like a simple consumer. v1's per-partition commit timestamp (-1: the time the broker receives it) is the
//! one field kafka-protocol's struct has no place for, so it is returned beside it.

use super::primitives::{put_array_len, put_nullable_string, put_string, Reader};
use super::LegacyError;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{GroupId, OffsetCommitRequest, TopicName};

/// "Use the time the broker receives the commit" (`OffsetCommitRequest.DEFAULT_TIMESTAMP`).
pub const RECEIVE_TIME: i64 = -1;

/// An OffsetCommit v0-1 request: kafka-protocol's struct, and v1's commit timestamp of each of its partitions in
/// request order (all [`RECEIVE_TIME`] for v0).
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyOffsetCommit {
    pub request: OffsetCommitRequest,
    pub commit_timestamps: Vec<i64>,
}

pub fn decode_request(body: Bytes, version: i16) -> Result<LegacyOffsetCommit, LegacyError> {
    if !(0..=1).contains(&version) {
        return Err(LegacyError::NotLegacy(version));
    }
    let mut r = Reader::new(body);
    let mut request = OffsetCommitRequest::default();
    let mut commit_timestamps = vec![];
    request.group_id = GroupId(r.string("group_id")?);
    if version >= 1 {
        request.generation_id_or_member_epoch = r.i32("generation_id")?;
        request.member_id = r.string("member_id")?;
    } else {
        request.generation_id_or_member_epoch = -1;
    }
    request.topics = r.array("topics", 6, |r| {
        let mut topic = OffsetCommitRequestTopic::default();
        topic.name = TopicName(r.string("topic name")?);
        topic.partitions = r.array("partitions", 14, |r| {
            let mut p = OffsetCommitRequestPartition::default();
            p.partition_index = r.i32("partition_index")?;
            p.committed_offset = r.i64("committed_offset")?;
            commit_timestamps.push(if version >= 1 {
                r.i64("commit_timestamp")?
            } else {
                RECEIVE_TIME
            });
            p.committed_metadata = r.nullable_string("committed_metadata")?;
            Ok(p)
        })?;
        Ok(topic)
    })?;
    r.finish()?;
    Ok(LegacyOffsetCommit {
        request,
        commit_timestamps,
    })
}

/// What an old client sends (for tests).
pub fn encode_request(
    commit: &LegacyOffsetCommit,
    out: &mut BytesMut,
    version: i16,
) -> Result<(), LegacyError> {
    if !(0..=1).contains(&version) {
        return Err(LegacyError::NotLegacy(version));
    }
    let request = &commit.request;
    put_string(out, &request.group_id.0);
    if version >= 1 {
        out.put_i32(request.generation_id_or_member_epoch);
        put_string(out, &request.member_id);
    }
    put_array_len(out, request.topics.len());
    let mut timestamps = commit.commit_timestamps.iter();
    for t in &request.topics {
        put_string(out, &t.name.0);
        put_array_len(out, t.partitions.len());
        for p in &t.partitions {
            out.put_i32(p.partition_index);
            out.put_i64(p.committed_offset);
            if version >= 1 {
                out.put_i64(timestamps.next().copied().unwrap_or(RECEIVE_TIME));
            }
            put_nullable_string(out, p.committed_metadata.as_deref());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::StrBytes;
    use proptest::prelude::*;

    fn sample(version: i16) -> LegacyOffsetCommit {
        let partition = |index: i32, offset: i64, metadata: Option<&'static str>| {
            let mut p = OffsetCommitRequestPartition::default();
            p.partition_index = index;
            p.committed_offset = offset;
            p.committed_metadata = metadata.map(StrBytes::from_static_str);
            p
        };
        let mut a = OffsetCommitRequestTopic::default();
        a.name = TopicName(StrBytes::from_static_str("a"));
        a.partitions = vec![partition(0, 10, Some("m")), partition(1, 11, None)];
        let mut b = OffsetCommitRequestTopic::default();
        b.name = TopicName(StrBytes::from_static_str("b"));
        b.partitions = vec![partition(4, 7, Some(""))];
        let mut request = OffsetCommitRequest::default();
        request.group_id = GroupId(StrBytes::from_static_str("g"));
        request.topics = vec![a, b];
        if version == 1 {
            request.generation_id_or_member_epoch = 3;
            request.member_id = StrBytes::from_static_str("member-1");
        } else {
            request.generation_id_or_member_epoch = -1;
        }
        let commit_timestamps = if version == 1 {
            vec![1_700_000_000_000, RECEIVE_TIME, 5]
        } else {
            vec![RECEIVE_TIME; 3]
        };
        LegacyOffsetCommit {
            request,
            commit_timestamps,
        }
    }

    #[test]
    fn v1_layout() {
        let mut p = OffsetCommitRequestPartition::default();
        p.partition_index = 1;
        p.committed_offset = 2;
        p.committed_metadata = None;
        let mut t = OffsetCommitRequestTopic::default();
        t.name = TopicName(StrBytes::from_static_str("t"));
        t.partitions = vec![p];
        let mut request = OffsetCommitRequest::default();
        request.group_id = GroupId(StrBytes::from_static_str("g"));
        request.generation_id_or_member_epoch = 9;
        request.member_id = StrBytes::from_static_str("m");
        request.topics = vec![t];
        let commit = LegacyOffsetCommit {
            request,
            commit_timestamps: vec![3],
        };
        let mut out = BytesMut::new();
        encode_request(&commit, &mut out, 1).expect("encode");
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 1, b'g',                 // group
            0, 0, 0, 9,                 // generation
            0, 1, b'm',                 // member
            0, 0, 0, 1, 0, 1, b't',     // one topic "t"
            0, 0, 0, 1,                 // one partition
            0, 0, 0, 1,                 // partition 1
            0, 0, 0, 0, 0, 0, 0, 2,     // offset 2
            0, 0, 0, 0, 0, 0, 0, 3,     // commit timestamp 3
            0xff, 0xff,                 // null metadata
        ];
        assert_eq!(&out[..], expected);
    }

    #[test]
    fn round_trips_and_truncations_fail() {
        for version in 0..=1 {
            let commit = sample(version);
            let mut out = BytesMut::new();
            encode_request(&commit, &mut out, version).expect("encode");
            let body = out.freeze();
            assert_eq!(
                decode_request(body.clone(), version).expect("decode"),
                commit
            );
            for cut in 0..body.len() {
                assert!(
                    decode_request(body.slice(..cut), version).is_err(),
                    "v{version} cut {cut}"
                );
            }
        }
        assert_eq!(
            decode_request(Bytes::new(), 2),
            Err(LegacyError::NotLegacy(2))
        );
    }

    proptest! {
        #[test]
        fn hostile_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..96), v in 0i16..=1) {
            let _ = decode_request(Bytes::from(body), v);
        }
    }
}

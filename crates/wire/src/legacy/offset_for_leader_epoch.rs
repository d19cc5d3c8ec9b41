//! OffsetForLeaderEpoch v0-1: no current leader epoch (so no fencing) and no replica id in the request, no throttle
//! time in the response; v0's answer also lacks the leader epoch.
//!
//! ```text
//! request v0-1: topics [topic string | partitions [partition i32 | leader_epoch i32]]
//! response v0:  topics [topic string | partitions [error_code i16 | partition i32 | end_offset i64]]
//! response v1:  topics [topic string | partitions [error_code i16 | partition i32 | leader_epoch i32
//!                                                  | end_offset i64]]
//! ```
//! Decoded requests keep kafka-protocol's defaults for the missing fields: current leader epoch -1 (no check) and
//! replica id -2, which is what Kafka assumes for these versions.

use super::primitives::{put_array_len, put_string, Reader};
use super::{LegacyError, LegacyRequest, LegacyResponse};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, TopicName,
};

fn check(version: i16) -> Result<(), LegacyError> {
    if (0..=1).contains(&version) {
        Ok(())
    } else {
        Err(LegacyError::NotLegacy(version))
    }
}

impl LegacyRequest for OffsetForLeaderEpochRequest {
    fn decode_legacy(body: Bytes, version: i16) -> Result<Self, LegacyError> {
        check(version)?;
        let mut r = Reader::new(body);
        let mut request = OffsetForLeaderEpochRequest::default();
        request.topics = r.array("topics", 6, |r| {
            let mut topic = OffsetForLeaderTopic::default();
            topic.topic = TopicName(r.string("topic")?);
            topic.partitions = r.array("partitions", 8, |r| {
                let mut p = OffsetForLeaderPartition::default();
                p.partition = r.i32("partition")?;
                p.leader_epoch = r.i32("leader_epoch")?;
                Ok(p)
            })?;
            Ok(topic)
        })?;
        r.finish()?;
        Ok(request)
    }

    fn encode_legacy(&self, out: &mut BytesMut, version: i16) -> Result<(), LegacyError> {
        check(version)?;
        put_array_len(out, self.topics.len());
        for t in &self.topics {
            put_string(out, &t.topic.0);
            put_array_len(out, t.partitions.len());
            for p in &t.partitions {
                out.put_i32(p.partition);
                out.put_i32(p.leader_epoch);
            }
        }
        Ok(())
    }
}

impl LegacyResponse for OffsetForLeaderEpochResponse {
    fn encode_legacy(&self, out: &mut BytesMut, version: i16) -> Result<(), LegacyError> {
        check(version)?;
        put_array_len(out, self.topics.len());
        for t in &self.topics {
            put_string(out, &t.topic.0);
            put_array_len(out, t.partitions.len());
            for p in &t.partitions {
                out.put_i16(p.error_code);
                out.put_i32(p.partition);
                if version >= 1 {
                    out.put_i32(p.leader_epoch);
                }
                out.put_i64(p.end_offset);
            }
        }
        Ok(())
    }

    fn decode_legacy(body: Bytes, version: i16) -> Result<Self, LegacyError> {
        check(version)?;
        let mut r = Reader::new(body);
        let mut response = OffsetForLeaderEpochResponse::default();
        response.topics = r.array("topics", 6, |r| {
            let mut topic = OffsetForLeaderTopicResult::default();
            topic.topic = TopicName(r.string("topic")?);
            topic.partitions = r.array("partitions", 14, |r| {
                let mut p = EpochEndOffset::default();
                p.error_code = r.i16("error_code")?;
                p.partition = r.i32("partition")?;
                if version >= 1 {
                    p.leader_epoch = r.i32("leader_epoch")?;
                }
                p.end_offset = r.i64("end_offset")?;
                Ok(p)
            })?;
            Ok(topic)
        })?;
        r.finish()?;
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::StrBytes;
    use proptest::prelude::*;

    #[test]
    fn request_round_trip() {
        let mut p = OffsetForLeaderPartition::default();
        p.partition = 2;
        p.leader_epoch = 5;
        let mut topic = OffsetForLeaderTopic::default();
        topic.topic = TopicName(StrBytes::from_static_str("t"));
        topic.partitions = vec![p];
        let mut request = OffsetForLeaderEpochRequest::default();
        request.topics = vec![topic];
        for version in 0..=1 {
            let mut out = BytesMut::new();
            request.encode_legacy(&mut out, version).expect("encode");
            assert_eq!(
                &out[..],
                &[0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 5]
            );
            let body = out.freeze();
            let decoded =
                OffsetForLeaderEpochRequest::decode_legacy(body.clone(), version).expect("decode");
            assert_eq!(decoded, request);
            assert_eq!(decoded.topics[0].partitions[0].current_leader_epoch, -1);
            for cut in 0..body.len() {
                assert!(
                    OffsetForLeaderEpochRequest::decode_legacy(body.slice(..cut), version).is_err()
                );
            }
        }
    }

    #[test]
    fn responses_v0_without_and_v1_with_the_epoch() {
        let mut p = EpochEndOffset::default();
        p.partition = 2;
        p.leader_epoch = 5;
        p.end_offset = 99;
        let mut topic = OffsetForLeaderTopicResult::default();
        topic.topic = TopicName(StrBytes::from_static_str("t"));
        topic.partitions = vec![p];
        let mut response = OffsetForLeaderEpochResponse::default();
        response.topics = vec![topic];
        let mut v0 = BytesMut::new();
        response.encode_legacy(&mut v0, 0).expect("v0");
        assert_eq!(v0.len(), 4 + 3 + 4 + 2 + 4 + 8);
        let mut v1 = BytesMut::new();
        response.encode_legacy(&mut v1, 1).expect("v1");
        assert_eq!(v1.len(), v0.len() + 4);
        assert_eq!(
            OffsetForLeaderEpochResponse::decode_legacy(v1.freeze(), 1).expect("v1"),
            response
        );
        let decoded = OffsetForLeaderEpochResponse::decode_legacy(v0.freeze(), 0).expect("v0");
        assert_eq!(decoded.topics[0].partitions[0].end_offset, 99);
        assert_eq!(decoded.topics[0].partitions[0].leader_epoch, -1);
    }

    proptest! {
        #[test]
        fn hostile_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..64), v in 0i16..=1) {
            let _ = OffsetForLeaderEpochRequest::decode_legacy(Bytes::from(body), v);
        }
    }
}

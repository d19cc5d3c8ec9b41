//! Fetch v0-3 requests (kafka-go 0.2.1 fetches with v2). Their responses are written by
//! [`crate::fetch_response`], and their records are magic 0 (v0-1) or magic 1 (v2-3) message sets
//! ([`super::message_set::down_convert`]): a v0-3 client cannot read v2 batches.
//!
//! ```text
//! request v0-2: replica_id i32 | max_wait_ms i32 | min_bytes i32
//!               | topics [topic string | partitions [partition i32 | fetch_offset i64 | partition_max_bytes i32]]
//! request v3:   replica_id i32 | max_wait_ms i32 | min_bytes i32 | max_bytes i32 | topics (as v0-2)
//! ```
//! Decoded requests keep kafka-protocol's defaults for what these versions lack: no response size limit before
//! v3 (`max_bytes` 0x7fffffff), read_uncommitted, no session, no leader epoch check.

use super::primitives::{put_array_len, put_string, Reader};
use super::{LegacyError, LegacyRequest};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};

/// The magic of the message sets a Fetch response of `version` carries (Kafka's `FetchRequest` doc: "Starting
/// in Version 2, the requester must be able to handle Kafka Log Message format version 1").
pub fn message_format(version: i16) -> i8 {
    if version >= 2 {
        1
    } else {
        0
    }
}

fn check(version: i16) -> Result<(), LegacyError> {
    if (0..=3).contains(&version) {
        Ok(())
    } else {
        Err(LegacyError::NotLegacy(version))
    }
}

impl LegacyRequest for FetchRequest {
    fn decode_legacy(body: Bytes, version: i16) -> Result<Self, LegacyError> {
        check(version)?;
        let mut r = Reader::new(body);
        let mut request = FetchRequest::default();
        request.replica_id = BrokerId(r.i32("replica_id")?);
        request.max_wait_ms = r.i32("max_wait_ms")?;
        request.min_bytes = r.i32("min_bytes")?;
        if version >= 3 {
            request.max_bytes = r.i32("max_bytes")?;
        }
        request.topics = r.array("topics", 6, |r| {
            let mut topic = FetchTopic::default();
            topic.topic = TopicName(r.string("topic")?);
            topic.partitions = r.array("partitions", 16, |r| {
                let mut p = FetchPartition::default();
                p.partition = r.i32("partition")?;
                p.fetch_offset = r.i64("fetch_offset")?;
                p.partition_max_bytes = r.i32("partition_max_bytes")?;
                Ok(p)
            })?;
            Ok(topic)
        })?;
        r.finish()?;
        Ok(request)
    }

    fn encode_legacy(&self, out: &mut BytesMut, version: i16) -> Result<(), LegacyError> {
        check(version)?;
        out.put_i32(self.replica_id.0);
        out.put_i32(self.max_wait_ms);
        out.put_i32(self.min_bytes);
        if version >= 3 {
            out.put_i32(self.max_bytes);
        }
        put_array_len(out, self.topics.len());
        for t in &self.topics {
            put_string(out, &t.topic.0);
            put_array_len(out, t.partitions.len());
            for p in &t.partitions {
                out.put_i32(p.partition);
                out.put_i64(p.fetch_offset);
                out.put_i32(p.partition_max_bytes);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::StrBytes;
    use proptest::prelude::*;

    fn sample(version: i16) -> FetchRequest {
        let mut p = FetchPartition::default();
        p.partition = 1;
        p.fetch_offset = 42;
        p.partition_max_bytes = 1 << 20;
        let mut topic = FetchTopic::default();
        topic.topic = TopicName(StrBytes::from_static_str("t"));
        topic.partitions = vec![p];
        let mut request = FetchRequest::default();
        request.max_wait_ms = 500;
        request.min_bytes = 1;
        if version >= 3 {
            request.max_bytes = 1000;
        }
        request.topics = vec![topic];
        request
    }

    #[test]
    fn v2_layout_and_round_trips() {
        let mut out = BytesMut::new();
        sample(2).encode_legacy(&mut out, 2).expect("encode");
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0xff, 0xff, 0xff, 0xff,     // replica -1
            0, 0, 1, 0xf4,              // max wait 500
            0, 0, 0, 1,                 // min bytes
            0, 0, 0, 1, 0, 1, b't',     // one topic "t"
            0, 0, 0, 1,                 // one partition
            0, 0, 0, 1,                 // partition 1
            0, 0, 0, 0, 0, 0, 0, 42,    // fetch offset
            0, 16, 0, 0,                // partition max bytes
        ];
        assert_eq!(&out[..], expected);
        for version in 0..=3 {
            let request = sample(version);
            let mut out = BytesMut::new();
            request.encode_legacy(&mut out, version).expect("encode");
            let body = out.freeze();
            let decoded = FetchRequest::decode_legacy(body.clone(), version).expect("decode");
            assert_eq!(decoded, request, "v{version}");
            assert_eq!(decoded.isolation_level, 0);
            for cut in 0..body.len() {
                assert!(FetchRequest::decode_legacy(body.slice(..cut), version).is_err());
            }
        }
        assert_eq!(
            FetchRequest::decode_legacy(Bytes::new(), 4),
            Err(LegacyError::NotLegacy(4))
        );
        assert_eq!(
            (
                message_format(0),
                message_format(1),
                message_format(2),
                message_format(3)
            ),
            (0, 0, 1, 1)
        );
    }

    proptest! {
        #[test]
        fn hostile_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..64), v in 0i16..=3) {
            let _ = FetchRequest::decode_legacy(Bytes::from(body), v);
        }
    }
}

//! CreateTopics v0-1 (kafka-go 0.2.1 creates topics with v0).
//!
//! ```text
//! request v0:  topics [name string | num_partitions i32 | replication_factor i16
//!                      | assignments [partition_index i32 | broker_ids [i32]]
//!                      | configs [name string | value nullable string]]
//!              | timeout_ms i32
//! request v1:  v0 | validate_only bool                           (v2's layout: kafka-protocol decodes it)
//! response v0: topics [name string | error_code i16]
//! response v1: topics [name string | error_code i16 | error_message nullable string]
//! ```
//! (v2 adds the throttle time in front of the response.)

use super::primitives::{put_array_len, put_nullable_string, put_string, Reader};
use super::{crate_error, LegacyError, LegacyRequest, LegacyResponse};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{BrokerId, CreateTopicsRequest, CreateTopicsResponse, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable};

impl LegacyRequest for CreateTopicsRequest {
    fn decode_legacy(body: Bytes, version: i16) -> Result<Self, LegacyError> {
        match version {
            0 => decode_v0(body),
            1 => {
                let mut body = body;
                CreateTopicsRequest::decode(&mut body, 2).map_err(crate_error)
            }
            v => Err(LegacyError::NotLegacy(v)),
        }
    }

    fn encode_legacy(&self, out: &mut BytesMut, version: i16) -> Result<(), LegacyError> {
        match version {
            0 => {
                encode_v0(self, out);
                Ok(())
            }
            1 => self.encode(out, 2).map_err(crate_error),
            v => Err(LegacyError::NotLegacy(v)),
        }
    }
}

fn decode_v0(body: Bytes) -> Result<CreateTopicsRequest, LegacyError> {
    let mut r = Reader::new(body);
    let mut request = CreateTopicsRequest::default();
    request.topics = r.array("topics", 14, |r| {
        let mut topic = CreatableTopic::default();
        topic.name = TopicName(r.string("topic name")?);
        topic.num_partitions = r.i32("num_partitions")?;
        topic.replication_factor = r.i16("replication_factor")?;
        topic.assignments = r.array("assignments", 8, |r| {
            let mut a = CreatableReplicaAssignment::default();
            a.partition_index = r.i32("partition_index")?;
            a.broker_ids = r.array("broker_ids", 4, |r| Ok(BrokerId(r.i32("broker id")?)))?;
            Ok(a)
        })?;
        topic.configs = r.array("configs", 4, |r| {
            let mut c = CreatableTopicConfig::default();
            c.name = r.string("config name")?;
            c.value = r.nullable_string("config value")?;
            Ok(c)
        })?;
        Ok(topic)
    })?;
    request.timeout_ms = r.i32("timeout_ms")?;
    r.finish()?;
    Ok(request)
}

fn encode_v0(request: &CreateTopicsRequest, out: &mut BytesMut) {
    put_array_len(out, request.topics.len());
    for t in &request.topics {
        put_string(out, &t.name.0);
        out.put_i32(t.num_partitions);
        out.put_i16(t.replication_factor);
        put_array_len(out, t.assignments.len());
        for a in &t.assignments {
            out.put_i32(a.partition_index);
            put_array_len(out, a.broker_ids.len());
            for b in &a.broker_ids {
                out.put_i32(b.0);
            }
        }
        put_array_len(out, t.configs.len());
        for c in &t.configs {
            put_string(out, &c.name);
            put_nullable_string(out, c.value.as_deref());
        }
    }
    out.put_i32(request.timeout_ms);
}

impl LegacyResponse for CreateTopicsResponse {
    fn encode_legacy(&self, out: &mut BytesMut, version: i16) -> Result<(), LegacyError> {
        if !(0..=1).contains(&version) {
            return Err(LegacyError::NotLegacy(version));
        }
        put_array_len(out, self.topics.len());
        for t in &self.topics {
            put_string(out, &t.name.0);
            out.put_i16(t.error_code);
            if version >= 1 {
                put_nullable_string(out, t.error_message.as_deref());
            }
        }
        Ok(())
    }

    fn decode_legacy(body: Bytes, version: i16) -> Result<Self, LegacyError> {
        if !(0..=1).contains(&version) {
            return Err(LegacyError::NotLegacy(version));
        }
        let mut r = Reader::new(body);
        let mut response = CreateTopicsResponse::default();
        response.topics = r.array("topics", 4, |r| {
            let mut t = CreatableTopicResult::default();
            t.name = TopicName(r.string("topic name")?);
            t.error_code = r.i16("error_code")?;
            if version >= 1 {
                t.error_message = r.nullable_string("error_message")?;
            }
            Ok(t)
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

    fn sample() -> CreateTopicsRequest {
        let mut topic = CreatableTopic::default();
        topic.name = TopicName(StrBytes::from_static_str("orders"));
        topic.num_partitions = 3;
        topic.replication_factor = 1;
        let mut config = CreatableTopicConfig::default();
        config.name = StrBytes::from_static_str("retention.ms");
        config.value = Some(StrBytes::from_static_str("1000"));
        let mut null = CreatableTopicConfig::default();
        null.name = StrBytes::from_static_str("cleanup.policy");
        topic.configs = vec![config, null];
        let mut manual = CreatableTopic::default();
        manual.name = TopicName(StrBytes::from_static_str("m"));
        manual.num_partitions = -1;
        manual.replication_factor = -1;
        let mut a = CreatableReplicaAssignment::default();
        a.partition_index = 0;
        a.broker_ids = vec![BrokerId(1)];
        manual.assignments = vec![a];
        let mut request = CreateTopicsRequest::default();
        request.topics = vec![topic, manual];
        request.timeout_ms = 5000;
        request
    }

    #[test]
    fn v0_request_layout() {
        let mut single = CreateTopicsRequest::default();
        let mut t = CreatableTopic::default();
        t.name = TopicName(StrBytes::from_static_str("ab"));
        t.num_partitions = 2;
        t.replication_factor = 1;
        single.topics = vec![t];
        single.timeout_ms = 7;
        let mut out = BytesMut::new();
        single.encode_legacy(&mut out, 0).expect("encode");
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0, 0, 1,             // one topic
            0, 2, b'a', b'b',       // name
            0, 0, 0, 2,             // num_partitions
            0, 1,                   // replication_factor
            0, 0, 0, 0,             // no assignments
            0, 0, 0, 0,             // no configs
            0, 0, 0, 7,             // timeout_ms
        ];
        assert_eq!(&out[..], expected);
    }

    #[test]
    fn requests_round_trip_and_truncations_fail() {
        for version in 0..=1 {
            let mut request = sample();
            request.validate_only = version == 1;
            let mut out = BytesMut::new();
            request.encode_legacy(&mut out, version).expect("encode");
            let body = out.freeze();
            let decoded =
                CreateTopicsRequest::decode_legacy(body.clone(), version).expect("decode");
            assert_eq!(decoded, request, "v{version}");
            for cut in 0..body.len() {
                assert!(
                    CreateTopicsRequest::decode_legacy(body.slice(..cut), version).is_err(),
                    "v{version} cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn responses_round_trip() {
        let mut ok = CreatableTopicResult::default();
        ok.name = TopicName(StrBytes::from_static_str("orders"));
        let mut failed = CreatableTopicResult::default();
        failed.name = TopicName(StrBytes::from_static_str("bad"));
        failed.error_code = 36;
        failed.error_message = Some(StrBytes::from_static_str("exists"));
        let mut response = CreateTopicsResponse::default();
        response.topics = vec![ok, failed];
        let mut v0 = BytesMut::new();
        response.encode_legacy(&mut v0, 0).expect("v0");
        assert_eq!(v0.len(), 4 + (2 + 6 + 2) + (2 + 3 + 2));
        let mut v1 = BytesMut::new();
        response.encode_legacy(&mut v1, 1).expect("v1");
        assert_eq!(
            CreateTopicsResponse::decode_legacy(v1.freeze(), 1).expect("decode"),
            response
        );
        let decoded = CreateTopicsResponse::decode_legacy(v0.freeze(), 0).expect("decode");
        assert_eq!(decoded.topics[1].error_code, 36);
        assert_eq!(
            decoded.topics[1].error_message,
            CreatableTopicResult::default().error_message,
            "v0 has no error message"
        );
    }

    proptest! {
        #[test]
        fn hostile_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..96), v in 0i16..=1) {
            let _ = CreateTopicsRequest::decode_legacy(Bytes::from(body), v);
        }
    }
}

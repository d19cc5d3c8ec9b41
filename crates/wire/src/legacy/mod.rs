//! Request and response versions that Kafka 3.9 served and Kafka 4.0 removed (KIP-896), which kafka-protocol
//! 0.18 no longer encodes. Old clients still send them: sarama 1.22 (JoinGroup v1, OffsetCommit v1), kafka-go
//! 0.2.1 (CreateTopics v0, Produce v2, Fetch v2), Burrow 1.2.1 (ListOffsets v0).
//!
//! Each API is one file with its old layouts (from Kafka 3.x's `clients/src/main/resources/common/message/*.json`)
//! in its doc comment. A request is decoded into kafka-protocol's struct of the nearest version, and a response
//! encoded from kafka-protocol's struct, so the handlers' logic is the same for every version. Where an old
//! layout equals a newer one, kafka-protocol's codec runs at the newer version:
//!
//! ```text
//! API                   old    request                       response
//! CreateTopics          0-1    v0 here, v1 = v2               here
//! DeleteTopics          0      = v1                           here
//! DescribeConfigs       0      here                           here
//! DescribeLogDirs       0      = v1                           = v1
//! OffsetFetch           0      = v1                           = v1
//! OffsetCommit          0-1    here (commit timestamps, v1)   = v2
//! OffsetForLeaderEpoch  0-1    here                           here
//! ListOffsets           0      here (own structs: max_num_offsets, old-style offsets)
//! Produce               0-2    here, magic 0/1 message sets up-converted (produce.rs, message_set.rs)
//! Fetch                 0-3    here; responses by crate::fetch_response, records down-converted (message_set.rs)
//! ```
//! JoinGroup v0-1 need no codec: kafka-protocol still has JoinGroup 0-9.

pub mod create_topics;
pub mod delete_topics;
pub mod describe_configs;
pub mod fetch;
pub mod list_offsets;
pub mod message_set;
pub mod offset_commit;
pub mod offset_for_leader_epoch;
mod primitives;
pub mod produce;

use crate::response::{begin_response, finish_response, EncodeError};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, DeleteTopicsRequest, DescribeLogDirsRequest, DescribeLogDirsResponse,
    OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, Message};

/// Why an old-version body could not be decoded (or a response encoded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LegacyError {
    #[error("body ends inside {0}")]
    Truncated(&'static str),
    #[error("invalid {0}")]
    Invalid(&'static str),
    #[error("{0} bytes after the end of the body")]
    Trailing(usize),
    #[error("version {0} is not an old version of this API")]
    NotLegacy(i16),
    #[error("kafka-protocol: {0}")]
    Crate(String),
}

fn crate_error(e: impl std::fmt::Display) -> LegacyError {
    LegacyError::Crate(e.to_string())
}

/// A request type with versions older than kafka-protocol decodes.
pub trait LegacyRequest: Decodable + Encodable + Message {
    /// Decodes the body of old `version` into the struct; fields the old version lacks keep their defaults.
    fn decode_legacy(body: Bytes, version: i16) -> Result<Self, LegacyError>;
    /// Encodes the struct as old `version` would (what an old client sends; for tests).
    fn encode_legacy(&self, out: &mut BytesMut, version: i16) -> Result<(), LegacyError>;
}

/// A response type with versions older than kafka-protocol encodes.
pub trait LegacyResponse: Decodable + Encodable + Message {
    /// Encodes the struct in old `version`'s layout; fields the old version lacks are left out.
    fn encode_legacy(&self, out: &mut BytesMut, version: i16) -> Result<(), LegacyError>;
    /// Decodes an old `version` (what an old client reads; for tests).
    fn decode_legacy(body: Bytes, version: i16) -> Result<Self, LegacyError>;
}

/// The oldest version of each API this crate decodes, where that is older than kafka-protocol's oldest.
pub const OLDEST: &[(ApiKey, i16)] = &[
    (ApiKey::Produce, 0),
    (ApiKey::Fetch, 0),
    (ApiKey::ListOffsets, 0),
    (ApiKey::OffsetCommit, 0),
    (ApiKey::OffsetFetch, 0),
    (ApiKey::CreateTopics, 0),
    (ApiKey::DeleteTopics, 0),
    (ApiKey::OffsetForLeaderEpoch, 0),
    (ApiKey::DescribeConfigs, 0),
    (ApiKey::DescribeLogDirs, 0),
];

/// The oldest version of `key` that can be decoded, here or by kafka-protocol.
pub fn oldest_decodable(key: ApiKey) -> i16 {
    OLDEST
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(key.valid_versions().min, |&(_, v)| v)
}

/// Decodes a request body of any version: kafka-protocol's codec in its range, this module's below it.
pub fn decode_request<T: LegacyRequest>(body: Bytes, version: i16) -> Result<T, LegacyError> {
    if version >= T::VERSIONS.min {
        let mut body = body;
        return T::decode(&mut body, version).map_err(crate_error);
    }
    T::decode_legacy(body, version)
}

/// Encodes a whole response frame of any version (see [`crate::response::encode_response`]).
pub fn encode_response<T: LegacyResponse>(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Result<Bytes, EncodeError> {
    if version >= T::VERSIONS.min {
        return crate::response::encode_response(key, version, correlation_id, body);
    }
    let mut buf = BytesMut::with_capacity(64);
    begin_response(&mut buf, key, version, correlation_id);
    body.encode_legacy(&mut buf, version)
        .map_err(|e| EncodeError {
            key,
            version,
            reason: e.to_string(),
        })?;
    finish_response(&mut buf, 0);
    Ok(buf.freeze())
}

/// Old versions whose layout is a newer version's: kafka-protocol's codec runs at `$as`.
macro_rules! same_layout {
    (request $t:ty, $old:expr => $as:expr) => {
        impl LegacyRequest for $t {
            fn decode_legacy(body: Bytes, version: i16) -> Result<Self, LegacyError> {
                if !($old).contains(&version) {
                    return Err(LegacyError::NotLegacy(version));
                }
                let mut body = body;
                <$t>::decode(&mut body, $as).map_err(crate_error)
            }
            fn encode_legacy(&self, out: &mut BytesMut, version: i16) -> Result<(), LegacyError> {
                if !($old).contains(&version) {
                    return Err(LegacyError::NotLegacy(version));
                }
                self.encode(out, $as).map_err(crate_error)
            }
        }
    };
    (response $t:ty, $old:expr => $as:expr) => {
        impl LegacyResponse for $t {
            fn encode_legacy(&self, out: &mut BytesMut, version: i16) -> Result<(), LegacyError> {
                if !($old).contains(&version) {
                    return Err(LegacyError::NotLegacy(version));
                }
                self.encode(out, $as).map_err(crate_error)
            }
            fn decode_legacy(body: Bytes, version: i16) -> Result<Self, LegacyError> {
                if !($old).contains(&version) {
                    return Err(LegacyError::NotLegacy(version));
                }
                let mut body = body;
                <$t>::decode(&mut body, $as).map_err(crate_error)
            }
        }
    };
}

// OffsetFetch v0 read offsets from ZooKeeper in Kafka; its layout is v1's both ways.
same_layout!(request OffsetFetchRequest, 0..=0 => 1);
same_layout!(response OffsetFetchResponse, 0..=0 => 1);
// DescribeLogDirs v1 only changed throttling behaviour.
same_layout!(request DescribeLogDirsRequest, 0..=0 => 1);
same_layout!(response DescribeLogDirsResponse, 0..=0 => 1);
// "Versions 0, 1, 2, and 3 are the same" (DeleteTopicsRequest.json); the v0 response lacks the throttle time.
same_layout!(request DeleteTopicsRequest, 0..=0 => 1);
// OffsetCommit responses v0-2 are identical (the throttle time arrives in v3).
same_layout!(response OffsetCommitResponse, 0..=1 => 2);

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::offset_fetch_response::{
        OffsetFetchResponsePartition, OffsetFetchResponseTopic,
    };
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::StrBytes;

    #[test]
    fn oldest_versions() {
        assert_eq!(oldest_decodable(ApiKey::CreateTopics), 0);
        assert_eq!(oldest_decodable(ApiKey::JoinGroup), 0);
        assert_eq!(oldest_decodable(ApiKey::Metadata), 0);
        assert_eq!(oldest_decodable(ApiKey::AlterConfigs), 0);
        assert_eq!(oldest_decodable(ApiKey::Fetch), 0);
        assert_eq!(oldest_decodable(ApiKey::Heartbeat), 0);
    }

    #[test]
    fn same_layout_versions_use_the_crate_codec() {
        let mut topic = OffsetFetchResponseTopic::default();
        topic.name = TopicName(StrBytes::from_static_str("t"));
        let mut p = OffsetFetchResponsePartition::default();
        p.partition_index = 3;
        p.committed_offset = 42;
        p.metadata = Some(StrBytes::from_static_str("m"));
        topic.partitions = vec![p];
        let mut response = OffsetFetchResponse::default();
        response.topics = vec![topic];
        let frame = encode_response(ApiKey::OffsetFetch, 0, 7, &response).expect("encode");
        let v1 = crate::response::encode_response(ApiKey::OffsetFetch, 1, 7, &response)
            .expect("encode v1");
        assert_eq!(frame, v1, "OffsetFetch v0 is v1 on the wire");
        let decoded = OffsetFetchResponse::decode_legacy(frame.slice(8..), 0).expect("decode v0");
        assert_eq!(decoded, response);
        assert_eq!(
            OffsetFetchResponse::decode_legacy(frame.slice(8..), 1),
            Err(LegacyError::NotLegacy(1))
        );
        // A request of a version kafka-protocol knows goes to kafka-protocol.
        let mut body = BytesMut::new();
        OffsetFetchRequest::default()
            .encode(&mut body, 3)
            .expect("encode v3");
        decode_request::<OffsetFetchRequest>(body.freeze(), 3).expect("decode v3");
    }
}

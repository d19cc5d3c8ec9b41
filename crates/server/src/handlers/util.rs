//! Helpers shared by handlers: decoding bodies, encoding responses, mapping storage errors to Kafka codes.

use super::Response;
use crate::node::{Node, Partition};
use ferrite_log::{LogError, ValidationError};
use ferrite_replication::{LeaderEpoch, ReplicaError};
use ferrite_wire::error_code;
use ferrite_wire::legacy::{self, LegacyRequest, LegacyResponse};
use ferrite_wire::request::RequestFrame;
use ferrite_wire::response::encode_response;
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use std::sync::Arc;

/// Decodes the body; a malformed body closes the connection, as Kafka does.
pub fn decode<T: Decodable>(frame: &RequestFrame) -> Result<T, Response> {
    T::decode(&mut frame.body.clone(), frame.version()).map_err(|e| {
        Response::Close(format!(
            "malformed {:?} v{} request: {e}",
            frame.api_key,
            frame.version()
        ))
    })
}

pub fn respond<T: Encodable>(frame: &RequestFrame, body: &T) -> Response {
    match encode_response(frame.api_key, frame.version(), frame.correlation_id(), body) {
        Ok(bytes) => Response::Frame(bytes),
        Err(e) => {
            tracing::error!(error = %e, "response encoding failed");
            Response::Close(e.to_string())
        }
    }
}

/// Decode, handle, encode: the whole of a simple handler.
pub fn handle_with<Req: Decodable, Resp: Encodable>(
    frame: &RequestFrame,
    f: impl FnOnce(Req) -> Resp,
) -> Response {
    match decode::<Req>(frame) {
        Ok(request) => respond(frame, &f(request)),
        Err(close) => close,
    }
}

/// [`decode`] for an API that also serves versions older than kafka-protocol decodes: those go through
/// `ferrite_wire::legacy` into the same struct.
pub fn decode_versioned<T: LegacyRequest>(frame: &RequestFrame) -> Result<T, Response> {
    legacy::decode_request(frame.body.clone(), frame.version()).map_err(|e| {
        Response::Close(format!(
            "malformed {:?} v{} request: {e}",
            frame.api_key,
            frame.version()
        ))
    })
}

/// [`respond`] for an API that also serves versions older than kafka-protocol encodes.
pub fn respond_versioned<T: LegacyResponse>(frame: &RequestFrame, body: &T) -> Response {
    match legacy::encode_response(frame.api_key, frame.version(), frame.correlation_id(), body) {
        Ok(bytes) => Response::Frame(bytes),
        Err(e) => {
            tracing::error!(error = %e, "response encoding failed");
            Response::Close(e.to_string())
        }
    }
}

/// [`handle_with`] for an API that also serves versions older than kafka-protocol handles.
pub fn handle_versioned<Req: LegacyRequest, Resp: LegacyResponse>(
    frame: &RequestFrame,
    f: impl FnOnce(Req) -> Resp,
) -> Response {
    match decode_versioned::<Req>(frame) {
        Ok(request) => respond_versioned(frame, &f(request)),
        Err(close) => close,
    }
}

pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

pub fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// The Kafka error a client acts on for a storage failure.
pub fn log_error_code(e: &LogError) -> i16 {
    match e {
        LogError::Validation(v) => validation_error_code(v),
        LogError::Producer(p) => producer_error_code(p),
        LogError::OffsetOutOfRange { .. } => error_code::OFFSET_OUT_OF_RANGE,
        LogError::Closed(_) => error_code::NOT_LEADER_OR_FOLLOWER,
        LogError::Poisoned(_)
        | LogError::TornWrite(_)
        | LogError::Io { .. }
        | LogError::CorruptFile { .. } => error_code::KAFKA_STORAGE_ERROR,
        LogError::InvalidArgument(_) => error_code::UNKNOWN_SERVER_ERROR,
    }
}

pub fn producer_error_code(e: &ferrite_log::ProducerError) -> i16 {
    match e {
        ferrite_log::ProducerError::OutOfOrderSequence { .. } => {
            error_code::OUT_OF_ORDER_SEQUENCE_NUMBER
        }
        ferrite_log::ProducerError::InvalidProducerEpoch { .. } => {
            error_code::INVALID_PRODUCER_EPOCH
        }
        ferrite_log::ProducerError::UnknownProducerId { .. } => error_code::UNKNOWN_PRODUCER_ID,
    }
}

pub fn validation_error_code(e: &ValidationError) -> i16 {
    match e {
        ValidationError::Corrupt { .. } => error_code::CORRUPT_MESSAGE,
        ValidationError::TooLarge { .. } => error_code::MESSAGE_TOO_LARGE,
        ValidationError::InvalidRecord { .. } => error_code::INVALID_RECORD,
        ValidationError::InvalidTimestamp { .. } => error_code::INVALID_TIMESTAMP,
    }
}

/// The client's view of a partition's leader epoch, as a request carries it (-1: the client does not say).
pub fn requested_epoch(epoch: i32) -> Option<LeaderEpoch> {
    (epoch >= 0).then_some(LeaderEpoch(epoch))
}

/// The Kafka error a client acts on for a partition this node cannot serve as asked.
pub fn replica_error_code(e: &ReplicaError) -> i16 {
    match e {
        ReplicaError::UnknownTopicOrPartition { .. } => error_code::UNKNOWN_TOPIC_OR_PARTITION,
        ReplicaError::NotLeader { .. }
        | ReplicaError::StaleRole { .. }
        | ReplicaError::NotFollower { .. } => error_code::NOT_LEADER_OR_FOLLOWER,
        ReplicaError::FencedLeaderEpoch { .. } => error_code::FENCED_LEADER_EPOCH,
        ReplicaError::NotCommitted { .. } => error_code::REQUEST_TIMED_OUT,
        ReplicaError::UnknownLeaderEpoch { .. } => error_code::UNKNOWN_LEADER_EPOCH,
        ReplicaError::Log(e) => log_error_code(e),
    }
}

/// The leader replica of `topic`-`index` at the epoch the client names, or the error code to answer with.
pub fn leader_partition(
    broker: &Node,
    topic: &str,
    index: i32,
    current_leader_epoch: i32,
) -> Result<Arc<Partition>, i16> {
    broker
        .replicas
        .leader_partition(topic, index, requested_epoch(current_leader_epoch))
        .map_err(|e| partition_error_code(broker, topic, index, &e))
}

/// [`replica_error_code`] for a partition asked of this node: one the cluster has on another broker is
/// NOT_LEADER_OR_FOLLOWER (the client refreshes its metadata and goes there), not UNKNOWN_TOPIC_OR_PARTITION.
pub fn partition_error_code(broker: &Node, topic: &str, index: i32, e: &ReplicaError) -> i16 {
    match e {
        ReplicaError::UnknownTopicOrPartition { .. } if broker.cluster_has(topic, index) => {
            error_code::NOT_LEADER_OR_FOLLOWER
        }
        other => replica_error_code(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_epoch_fencing_codes() {
        assert_eq!(requested_epoch(-1), None);
        assert_eq!(requested_epoch(5), Some(LeaderEpoch(5)));
        let fenced = ReplicaError::FencedLeaderEpoch {
            requested: LeaderEpoch(4),
            current: LeaderEpoch(5),
        };
        assert_eq!(replica_error_code(&fenced), error_code::FENCED_LEADER_EPOCH);
        let unknown = ReplicaError::UnknownLeaderEpoch {
            requested: LeaderEpoch(6),
            current: LeaderEpoch(5),
        };
        assert_eq!(
            replica_error_code(&unknown),
            error_code::UNKNOWN_LEADER_EPOCH
        );
    }
}

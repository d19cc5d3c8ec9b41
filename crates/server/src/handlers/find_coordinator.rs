//! FindCoordinator (v0-6; batched keys from v4, KIP-699).
//!
//! Groups: a group's coordinator is the leader of its `__consumer_offsets` partition (Kafka's hash of the
//! group id), whichever broker that is; the topic is created at the first lookup if it does not exist yet.
//! Transactions are not implemented: transactional keys get COORDINATOR_NOT_AVAILABLE, which clients retry (and which
//! keeps a transactional producer from starting rather than misbehaving). Other key types are invalid.

use super::util::{handle_with, str_bytes};
use super::Response;
use crate::groups::OFFSETS_TOPIC;
use crate::node::Node;
use ferrite_coordinator::offsets::partition_for_group;
use ferrite_wire::error_code;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};

const GROUP_KEY: i8 = 0;
const TRANSACTION_KEY: i8 = 1;

/// Where a key's coordinator is, or why there is none.
struct Answer {
    node_id: i32,
    host: String,
    port: i32,
    error_code: i16,
    message: Option<&'static str>,
}

fn locate(broker: &Node, key_type: i8, key: &str) -> Answer {
    let refuse = |error_code, message| Answer {
        node_id: -1,
        host: String::new(),
        port: -1,
        error_code,
        message: Some(message),
    };
    match key_type {
        GROUP_KEY if key.is_empty() => refuse(error_code::INVALID_GROUP_ID, "empty group id"),
        GROUP_KEY => match group_coordinator(broker, key) {
            Ok(a) => a,
            Err(message) => refuse(error_code::COORDINATOR_NOT_AVAILABLE, message),
        },
        TRANSACTION_KEY => refuse(
            error_code::COORDINATOR_NOT_AVAILABLE,
            "transactions are not supported by this broker yet",
        ),
        _ => refuse(error_code::INVALID_REQUEST, "unknown coordinator key type"),
    }
}

/// The live broker leading the group's `__consumer_offsets` partition.
fn group_coordinator(broker: &Node, group_id: &str) -> Result<Answer, &'static str> {
    if let Err(e) = broker.ensure_offsets_topic() {
        tracing::warn!(error = %e, "cannot create {OFFSETS_TOPIC}");
        return Err("the group coordinator's topic cannot be created now");
    }
    let image = broker.image();
    let topic = image
        .topic(OFFSETS_TOPIC)
        .ok_or("the group coordinator's topic does not exist yet")?;
    let index = partition_for_group(group_id, topic.partition_count());
    let leader = topic
        .partitions
        .get(&index)
        .and_then(|p| p.leader)
        .filter(|id| !image.is_fenced(*id))
        .and_then(|id| image.broker(id))
        .ok_or("the group's coordinator partition has no leader now")?;
    Ok(Answer {
        node_id: leader.node_id.0,
        host: leader.host.clone(),
        port: i32::from(leader.port),
        error_code: error_code::NONE,
        message: None,
    })
}

pub fn handle(broker: &Node, frame: &RequestFrame) -> Response {
    let version = frame.version();
    handle_with(frame, |request: FindCoordinatorRequest| {
        let mut response = FindCoordinatorResponse::default();
        if version >= 4 {
            response.coordinators = request
                .coordinator_keys
                .iter()
                .map(|key| {
                    let a = locate(broker, request.key_type, key);
                    let mut c = Coordinator::default();
                    c.key = key.clone();
                    c.node_id = BrokerId(a.node_id);
                    c.host = str_bytes(a.host);
                    c.port = a.port;
                    c.error_code = a.error_code;
                    c.error_message = a.message.map(str_bytes);
                    c
                })
                .collect();
        } else {
            let a = locate(broker, request.key_type, &request.key);
            response.error_code = a.error_code;
            if version >= 1 {
                response.error_message = a.message.map(str_bytes);
            }
            response.node_id = BrokerId(a.node_id);
            response.host = str_bytes(a.host);
            response.port = a.port;
        }
        response
    })
}

//! FindCoordinator (v0-6; batched keys from v4, KIP-699).
//!
//! Groups: this broker leads every `__consumer_offsets` partition, so it coordinates every group. Transactions
//! are not implemented: transactional keys get COORDINATOR_NOT_AVAILABLE, which clients retry (and which
//! keeps a transactional producer from starting rather than misbehaving). Other key types are invalid.

use super::util::{handle_with, str_bytes};
use super::Response;
use crate::node::Node;
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
        GROUP_KEY if broker.groups().is_some() => Answer {
            node_id: broker.node_id(),
            host: broker.config.advertised_host.clone(),
            port: i32::from(broker.config.advertised_port),
            error_code: error_code::NONE,
            message: None,
        },
        GROUP_KEY => refuse(
            error_code::COORDINATOR_NOT_AVAILABLE,
            "the group coordinator is not loaded",
        ),
        TRANSACTION_KEY => refuse(
            error_code::COORDINATOR_NOT_AVAILABLE,
            "transactions are not supported by this broker yet",
        ),
        _ => refuse(error_code::INVALID_REQUEST, "unknown coordinator key type"),
    }
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

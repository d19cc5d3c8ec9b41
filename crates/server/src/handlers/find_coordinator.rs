//! FindCoordinator (v0-6; batched keys from v4, KIP-699).
//!
//! Consumer groups and transactions are not implemented yet, so no coordinator can serve: every key gets
//! COORDINATOR_NOT_AVAILABLE, which is what Kafka answers while its coordinator is not ready, and clients retry.
//! The API is advertised anyway because librdkafka enables LZ4 (and other features) only when FindCoordinator
//! is in the broker's ApiVersions ranges (`rdkafka_feature.c`).

use super::util::{handle_with, str_bytes};
use super::Response;
use crate::broker::Broker;
use ferrite_wire::error_code;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};

const NOT_AVAILABLE: &str = "consumer groups and transactions are not supported by this broker yet";

pub fn handle(_broker: &Broker, frame: &RequestFrame) -> Response {
    let version = frame.version();
    handle_with(frame, |request: FindCoordinatorRequest| {
        let mut response = FindCoordinatorResponse::default();
        if version >= 4 {
            response.coordinators = request
                .coordinator_keys
                .iter()
                .map(|key| {
                    let mut c = Coordinator::default();
                    c.key = key.clone();
                    c.node_id = BrokerId(-1);
                    c.port = -1;
                    c.error_code = error_code::COORDINATOR_NOT_AVAILABLE;
                    c.error_message = Some(str_bytes(NOT_AVAILABLE));
                    c
                })
                .collect();
        } else {
            response.error_code = error_code::COORDINATOR_NOT_AVAILABLE;
            if version >= 1 {
                response.error_message = Some(str_bytes(NOT_AVAILABLE));
            }
            response.node_id = BrokerId(-1);
            response.port = -1;
        }
        response
    })
}

//! Heartbeat (v0-4): keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin.

use super::util::handle_with;
use super::Response;
use crate::node::Node;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

pub fn handle(broker: &Node, frame: &RequestFrame) -> Response {
    handle_with(frame, |request: HeartbeatRequest| {
        let mut response = HeartbeatResponse::default();
        response.error_code = match broker.group_coordinator(&request.group_id.0) {
            Ok(groups) => groups.heartbeat(
                &request.group_id.0,
                &request.member_id,
                request.group_instance_id.as_deref(),
                request.generation_id,
            ),
            Err(code) => code,
        };
        response
    })
}

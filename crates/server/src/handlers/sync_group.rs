//! SyncGroup (v0-5). The leader's call carries every member's assignment; a follower's call waits (second
//! phase) until the leader's arrives, or a rebalance or removal releases it with an error.

use super::util::{decode, respond, str_bytes};
use super::{Dispatched, Response};
use crate::groups::SyncWait;
use crate::node::Node;
use ferrite_wire::error_code;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use std::time::Duration;

/// How long a follower may wait for the leader before it is told to rejoin. The coordinator releases it
/// sooner in every normal case (leader's sync, rebalance, session expiry).
const WAIT_LIMIT: Duration = Duration::from_secs(330);

pub fn handle(broker: &Node, frame: RequestFrame) -> Dispatched {
    let request: SyncGroupRequest = match decode(&frame) {
        Ok(r) => r,
        Err(close) => return Dispatched::Ready(close),
    };
    let groups = match broker.group_coordinator(&request.group_id.0) {
        Ok(groups) => groups,
        Err(code) => return Dispatched::Ready(encode(&frame, code, vec![], &request)),
    };
    let assignments = request
        .assignments
        .iter()
        .map(|a| (a.member_id.to_string(), a.assignment.to_vec()))
        .collect();
    let wait = groups.sync(
        &request.group_id.0,
        &request.member_id,
        request.group_instance_id.as_deref(),
        request.generation_id,
        request.protocol_type.as_deref(),
        request.protocol_name.as_deref(),
        assignments,
    );
    match wait {
        SyncWait::Now(error, assignment) => {
            Dispatched::Ready(encode(&frame, error, assignment, &request))
        }
        SyncWait::Later(rx) => Dispatched::Deferred(Box::pin(async move {
            let (error, assignment) = match tokio::time::timeout(WAIT_LIMIT, rx).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(_)) => (error_code::UNKNOWN_MEMBER_ID, vec![]),
                Err(_) => (error_code::REBALANCE_IN_PROGRESS, vec![]),
            };
            encode(&frame, error, assignment, &request)
        })),
    }
}

fn encode(
    frame: &RequestFrame,
    error: i16,
    assignment: Vec<u8>,
    request: &SyncGroupRequest,
) -> Response {
    let mut response = SyncGroupResponse::default();
    response.error_code = error;
    response.assignment = assignment.into();
    // v5 echoes the protocol (validated against the group's when the request named it).
    if error == error_code::NONE {
        response.protocol_type = request.protocol_type.as_deref().map(str_bytes);
        response.protocol_name = request.protocol_name.as_deref().map(str_bytes);
    }
    respond(frame, &response)
}

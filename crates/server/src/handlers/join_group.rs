//! JoinGroup (v0-9). A join that must wait for the rest of the group (the join phase) is answered in the
//! second phase, when the coordinator releases it; a safety timeout answers UNKNOWN_MEMBER_ID (the client
//! rejoins) if the answer never comes. v0 has no rebalance timeout: the session timeout serves as one, as in
//! Kafka.

use super::util::{decode, respond, str_bytes};
use super::{Dispatched, Response};
use crate::groups::{join_error, JoinWait};
use crate::node::Node;
use ferrite_coordinator::group::{JoinRequest, JoinResponse};
use ferrite_wire::error_code;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use std::time::Duration;

/// Beyond the rebalance timeout (when the coordinator answers at the latest), how long a join may wait.
const WAIT_MARGIN: Duration = Duration::from_secs(30);

pub fn handle(broker: &Node, frame: RequestFrame, client_host: String) -> Dispatched {
    let request: JoinGroupRequest = match decode(&frame) {
        Ok(r) => r,
        Err(close) => return Dispatched::Ready(close),
    };
    let version = frame.version();
    let group_id = request.group_id.0.to_string();
    if group_id.is_empty() {
        return answer(&frame, join_error(error_code::INVALID_GROUP_ID));
    }
    let groups = match broker.group_coordinator(&group_id) {
        Ok(groups) => groups,
        Err(code) => return answer(&frame, join_error(code)),
    };
    let rebalance_timeout_ms = if version == 0 {
        request.session_timeout_ms
    } else {
        request.rebalance_timeout_ms
    };
    let member_id = request.member_id.to_string();
    let join = JoinRequest {
        member_id: member_id.clone(),
        client_id: frame.header.client_id.as_deref().unwrap_or("").to_string(),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms,
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata.to_vec()))
            .collect(),
        require_known_member_id: version >= 4,
        group_instance_id: request.group_instance_id.map(|i| i.to_string()),
        client_host,
    };
    match groups.join(&group_id, join) {
        JoinWait::Now(response) => answer(&frame, response),
        JoinWait::Later(rx) => Dispatched::Deferred(Box::pin(async move {
            let limit = Duration::from_millis(u64::try_from(rebalance_timeout_ms).unwrap_or(0))
                + WAIT_MARGIN;
            let response = match tokio::time::timeout(limit, rx).await {
                Ok(Ok(response)) => response,
                _ => JoinResponse {
                    member_id,
                    ..join_error(error_code::UNKNOWN_MEMBER_ID)
                },
            };
            encode(&frame, response)
        })),
    }
}

fn answer(frame: &RequestFrame, response: JoinResponse) -> Dispatched {
    Dispatched::Ready(encode(frame, response))
}

fn encode(frame: &RequestFrame, r: JoinResponse) -> Response {
    let version = frame.version();
    let mut response = JoinGroupResponse::default();
    response.error_code = r.error_code;
    response.generation_id = r.generation_id;
    // Before v7 the protocol name is not nullable and the type is absent.
    response.protocol_name = match (r.protocol_name, version >= 7) {
        (Some(name), _) => Some(str_bytes(name)),
        (None, true) => None,
        (None, false) => Some(str_bytes("")),
    };
    response.protocol_type = r.protocol_type.map(str_bytes);
    response.leader = str_bytes(r.leader);
    response.skip_assignment = r.skip_assignment && version >= 9;
    response.member_id = str_bytes(r.member_id);
    response.members = r
        .members
        .into_iter()
        .map(|(member_id, group_instance_id, metadata)| {
            let mut m = JoinGroupResponseMember::default();
            m.member_id = str_bytes(member_id);
            m.group_instance_id = group_instance_id.map(str_bytes);
            m.metadata = metadata.into();
            m
        })
        .collect();
    respond(frame, &response)
}

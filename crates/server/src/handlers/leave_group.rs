//! LeaveGroup (v0-5; v3+ carries a batch of members, each with its own answer, KIP-345).

use super::util::{handle_with, str_bytes};
use super::Response;
use crate::node::Node;
use ferrite_wire::error_code;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

pub fn handle(broker: &Node, frame: &RequestFrame) -> Response {
    let version = frame.version();
    handle_with(frame, |request: LeaveGroupRequest| {
        let leaving: Vec<(String, Option<String>)> = if version >= 3 {
            request
                .members
                .iter()
                .map(|m| {
                    (
                        m.member_id.to_string(),
                        m.group_instance_id.as_ref().map(|i| i.to_string()),
                    )
                })
                .collect()
        } else {
            vec![(request.member_id.to_string(), None)]
        };
        let mut response = LeaveGroupResponse::default();
        let results = match broker.group_coordinator(&request.group_id.0) {
            Err(code) => {
                response.error_code = code;
                return response;
            }
            Ok(groups) => groups
                .leave(&request.group_id.0, &leaving)
                .unwrap_or_else(|| vec![error_code::UNKNOWN_MEMBER_ID; leaving.len()]),
        };
        if version >= 3 {
            response.members = leaving
                .into_iter()
                .zip(results)
                .map(|((member_id, instance_id), error)| {
                    let mut m = MemberResponse::default();
                    m.member_id = str_bytes(member_id);
                    m.group_instance_id = instance_id.map(str_bytes);
                    m.error_code = error;
                    m
                })
                .collect();
        } else {
            response.error_code = results.first().copied().unwrap_or(error_code::NONE);
        }
        response
    })
}

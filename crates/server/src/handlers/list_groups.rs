//! ListGroups (v0-5): with a state filter from v4 (KIP-518) and a type filter from v5 (KIP-848).

use super::util::{handle_with, str_bytes};
use super::Response;
use crate::node::Node;
use ferrite_wire::error_code;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

pub fn handle(broker: &Node, frame: &RequestFrame) -> Response {
    handle_with(frame, |request: ListGroupsRequest| {
        let mut response = ListGroupsResponse::default();
        let Some(groups) = broker.groups() else {
            response.error_code = error_code::COORDINATOR_NOT_AVAILABLE;
            return response;
        };
        // Kafka compares states and types case-insensitively.
        let states: Vec<String> = request
            .states_filter
            .iter()
            .map(|s| s.to_lowercase())
            .collect();
        let types: Vec<String> = request
            .types_filter
            .iter()
            .map(|s| s.to_lowercase())
            .collect();
        response.groups = groups
            .list()
            .into_iter()
            .filter(|g| states.is_empty() || states.contains(&g.state.to_lowercase()))
            .filter(|g| types.is_empty() || types.contains(&g.group_type.to_string()))
            .map(|g| {
                let mut out = ListedGroup::default();
                out.group_id = GroupId(str_bytes(g.group_id));
                out.protocol_type = str_bytes(g.protocol_type);
                out.group_state = str_bytes(g.state);
                out.group_type = str_bytes(g.group_type);
                out
            })
            .collect();
        response
    })
}

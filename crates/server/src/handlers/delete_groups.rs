//! DeleteGroups (v0-2): groups without members lose their offsets and their record; others answer
//! NON_EMPTY_GROUP.

use super::util::handle_with;
use super::Response;
use crate::node::Node;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

pub fn handle(broker: &Node, frame: &RequestFrame) -> Response {
    handle_with(frame, |request: DeleteGroupsRequest| {
        let mut response = DeleteGroupsResponse::default();
        response.results = request
            .groups_names
            .into_iter()
            .map(|group_id| {
                let mut result = DeletableGroupResult::default();
                result.error_code = match broker.group_coordinator(&group_id.0) {
                    Ok(groups) => groups.delete_group(&group_id.0),
                    Err(code) => code,
                };
                result.group_id = group_id;
                result
            })
            .collect();
        response
    })
}

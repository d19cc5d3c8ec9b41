//! DescribeGroups (v0-6). An unknown group is described as Dead with no members (v6 adds GROUP_ID_NOT_FOUND,
//! KIP-1043), as Kafka does.

use super::util::{handle_with, str_bytes};
use super::Response;
use crate::authz::{self, ResourceKind};
use crate::node::Node;
use ferrite_wire::error_code;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

pub fn handle(broker: &Node, frame: &RequestFrame) -> Response {
    let version = frame.version();
    handle_with(frame, |request: DescribeGroupsRequest| {
        let with_operations = request.include_authorized_operations;
        let mut response = DescribeGroupsResponse::default();
        response.groups = request
            .groups
            .into_iter()
            .map(|group_id| {
                let mut g = DescribedGroup::default();
                g.authorized_operations =
                    authz::if_requested(with_operations, ResourceKind::Group, &group_id.0);
                let groups = match broker.group_coordinator(&group_id.0) {
                    Ok(groups) => groups,
                    Err(code) => {
                        g.group_id = group_id;
                        g.error_code = code;
                        return g;
                    }
                };
                let is_consumer = groups.is_consumer_group(&group_id.0);
                let description = groups.describe_classic(&group_id.0);
                g.group_id = group_id;
                if is_consumer {
                    // Kafka answers a KIP-848 group here as not found (it is described by ConsumerGroupDescribe).
                    g.group_state = str_bytes("Dead");
                    if version >= 6 {
                        g.error_code = error_code::GROUP_ID_NOT_FOUND;
                        g.error_message = Some(str_bytes(
                            "a consumer-protocol group; use ConsumerGroupDescribe",
                        ));
                    }
                    return g;
                }
                let Some(d) = description else {
                    g.group_state = str_bytes("Dead");
                    if version >= 6 {
                        g.error_code = error_code::GROUP_ID_NOT_FOUND;
                        g.error_message = Some(str_bytes("group not found"));
                    }
                    return g;
                };
                g.group_state = str_bytes(d.state);
                g.protocol_type = str_bytes(d.protocol_type);
                g.protocol_data = str_bytes(d.protocol_name);
                g.members = d
                    .members
                    .into_iter()
                    .map(|m| {
                        let mut out = DescribedGroupMember::default();
                        out.member_id = str_bytes(m.member_id);
                        out.group_instance_id = m.group_instance_id.map(str_bytes);
                        out.client_id = str_bytes(m.client_id);
                        out.client_host = str_bytes(m.client_host);
                        out.member_metadata = m.metadata.into();
                        out.member_assignment = m.assignment.into();
                        out
                    })
                    .collect();
                g
            })
            .collect();
        response
    })
}

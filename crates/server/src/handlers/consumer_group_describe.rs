//! ConsumerGroupDescribe (v0-1, KIP-848): members with their epochs, current and target assignments.

use super::util::{handle_with, str_bytes, topic_name};
use super::Response;
use crate::authz::{self, ResourceKind};
use crate::node::Node;
use ferrite_wire::error_code;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse};
use uuid::Uuid;

pub fn handle(broker: &Node, frame: &RequestFrame) -> Response {
    handle_with(frame, |request: ConsumerGroupDescribeRequest| {
        let with_operations = request.include_authorized_operations;
        let mut response = ConsumerGroupDescribeResponse::default();
        response.groups = request
            .group_ids
            .into_iter()
            .map(|group_id| {
                let mut g = DescribedGroup::default();
                g.authorized_operations =
                    authz::if_requested(with_operations, ResourceKind::Group, &group_id.0);
                let description = match broker.group_coordinator(&group_id.0) {
                    Ok(groups) => groups.describe_consumer(&group_id.0),
                    Err(code) => {
                        g.group_id = group_id;
                        g.error_code = code;
                        return g;
                    }
                };
                g.group_id = group_id;
                let Some(d) = description else {
                    g.error_code = error_code::GROUP_ID_NOT_FOUND;
                    g.error_message = Some(str_bytes("not a consumer-protocol group"));
                    g.group_state = str_bytes("Dead");
                    return g;
                };
                g.group_state = str_bytes(d.state.kafka_name());
                g.group_epoch = d.group_epoch;
                g.assignment_epoch = d.assignment_epoch;
                g.assignor_name = str_bytes(d.assignor_name);
                g.members = d
                    .members
                    .into_iter()
                    .map(|m| {
                        let mut out = Member::default();
                        out.member_id = str_bytes(m.member_id);
                        out.instance_id = m.instance_id.map(str_bytes);
                        out.rack_id = m.rack_id.map(str_bytes);
                        out.member_epoch = m.member_epoch;
                        out.client_id = str_bytes(m.client_id);
                        out.client_host = str_bytes(m.client_host);
                        out.subscribed_topic_names = m
                            .subscribed_topic_names
                            .iter()
                            .map(|t| topic_name(t))
                            .collect();
                        out.subscribed_topic_regex = m.subscribed_topic_regex.map(str_bytes);
                        out.assignment = assignment(broker, m.assignment);
                        out.target_assignment = assignment(broker, m.target_assignment);
                        out.member_type = -1;
                        out
                    })
                    .collect();
                g
            })
            .collect();
        response
    })
}

fn assignment(broker: &Node, topics: Vec<(Uuid, Vec<i32>)>) -> Assignment {
    let mut a = Assignment::default();
    a.topic_partitions = topics
        .into_iter()
        .map(|(id, partitions)| {
            let mut t = TopicPartitions::default();
            t.topic_id = id;
            t.topic_name = topic_name(
                &broker
                    .topic_by_id(id)
                    .map(|t| t.name.clone())
                    .unwrap_or_default(),
            );
            t.partitions = partitions;
            t
        })
        .collect();
    a
}

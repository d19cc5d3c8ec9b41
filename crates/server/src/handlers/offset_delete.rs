//! OffsetDelete (v0, KIP-496): removes a group's committed offsets for topics its live members do not
//! consume (GROUP_SUBSCRIBED_TO_TOPIC otherwise).

use super::util::{handle_with, topic_name};
use super::Response;
use crate::node::Node;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

pub fn handle(broker: &Node, frame: &RequestFrame) -> Response {
    handle_with(frame, |request: OffsetDeleteRequest| {
        let mut response = OffsetDeleteResponse::default();
        let partitions: Vec<(String, i32)> = request
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.0.to_string(), p.partition_index))
            })
            .collect();
        let result = broker
            .group_coordinator(&request.group_id.0)
            .and_then(|groups| groups.delete_offsets(&request.group_id.0, &partitions));
        let errors = match result {
            Ok(errors) => errors,
            Err(group_error) => {
                response.error_code = group_error;
                return response;
            }
        };
        for ((topic, partition), error) in partitions.into_iter().zip(errors) {
            if response
                .topics
                .last()
                .is_none_or(|t: &OffsetDeleteResponseTopic| t.name.0.as_str() != topic)
            {
                let mut t = OffsetDeleteResponseTopic::default();
                t.name = topic_name(&topic);
                response.topics.push(t);
            }
            let mut p = OffsetDeleteResponsePartition::default();
            p.partition_index = partition;
            p.error_code = error;
            if let Some(t) = response.topics.last_mut() {
                t.partitions.push(p);
            }
        }
        response
    })
}

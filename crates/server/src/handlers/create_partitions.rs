//! CreatePartitions (v0-3): grow a topic's partition count.

use super::create_topics::topic_error_code;
use super::util::{handle_with, str_bytes};
use super::Response;
use crate::node::Node;
use ferrite_replication::NodeId;
use ferrite_wire::error_code;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

pub fn handle(broker: &Node, frame: &RequestFrame) -> Response {
    handle_with(frame, |request: CreatePartitionsRequest| {
        let mut response = CreatePartitionsResponse::default();
        response.results = request
            .topics
            .iter()
            .map(|t| {
                let mut r = CreatePartitionsTopicResult::default();
                r.name = t.name.clone();
                let assignments: Vec<Vec<NodeId>> = t
                    .assignments
                    .iter()
                    .flatten()
                    .map(|a| a.broker_ids.iter().map(|b| NodeId(b.0)).collect())
                    .collect();
                if t.name.0.as_str() == crate::groups::offsets_log::TOPIC {
                    // More partitions would move groups to other partitions and lose their state.
                    r.error_code = error_code::INVALID_REQUEST;
                    r.error_message = Some(str_bytes(
                        "the partition count of __consumer_offsets cannot change",
                    ));
                } else if let Err(e) =
                    broker.create_partitions(&t.name.0, t.count, assignments, request.validate_only)
                {
                    r.error_code = topic_error_code(&e);
                    r.error_message = Some(str_bytes(e.to_string()));
                }
                r
            })
            .collect();
        response
    })
}

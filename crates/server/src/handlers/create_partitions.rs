//! CreatePartitions (v0-3): grow a topic's partition count.

use super::create_topics::topic_error_code;
use super::util::{handle_with, str_bytes};
use super::Response;
use crate::node::Node;
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
                let node = broker.node_id();
                let bad_assignment = t.assignments.as_ref().is_some_and(|a| {
                    a.iter()
                        .any(|x| x.broker_ids.len() != 1 || x.broker_ids[0].0 != node)
                });
                if t.name.0.as_str() == crate::groups::offsets_log::TOPIC {
                    // More partitions would move groups to other partitions and lose their state.
                    r.error_code = error_code::INVALID_REQUEST;
                    r.error_message = Some(str_bytes(
                        "the partition count of __consumer_offsets cannot change",
                    ));
                } else if bad_assignment {
                    r.error_code = error_code::INVALID_REPLICA_ASSIGNMENT;
                    r.error_message = Some(str_bytes(format!(
                        "replicas must be [{node}], the only broker"
                    )));
                } else if let Err(e) =
                    broker.create_partitions(&t.name.0, t.count, request.validate_only)
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

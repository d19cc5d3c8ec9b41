//! DeleteTopics (v0-6; v0 through `ferrite_wire::legacy`): by name (all versions) or by topic id (v6); the data is removed.

use super::create_topics::topic_error_code;
use super::util::{handle_versioned, str_bytes, topic_name};
use super::Response;
use crate::node::Node;
use ferrite_wire::error_code;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};

pub fn handle(broker: &Node, frame: &RequestFrame) -> Response {
    let version = frame.version();
    handle_versioned(frame, |request: DeleteTopicsRequest| {
        let targets: Vec<(Option<String>, uuid::Uuid)> = if version >= 6 {
            request
                .topics
                .iter()
                .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id))
                .collect()
        } else {
            request
                .topic_names
                .iter()
                .map(|n| (Some(n.0.to_string()), uuid::Uuid::nil()))
                .collect()
        };
        let mut response = DeleteTopicsResponse::default();
        response.responses = targets
            .into_iter()
            .map(|(name, id)| delete(broker, name, id, version))
            .collect();
        response
    })
}

fn delete(
    broker: &Node,
    name: Option<String>,
    id: uuid::Uuid,
    version: i16,
) -> DeletableTopicResult {
    let mut result = DeletableTopicResult::default();
    let resolved = match &name {
        Some(n) => broker.topic(n).map(|t| (t.name.clone(), t.id)),
        None => broker.topic_by_id(id).map(|t| (t.name.clone(), t.id)),
    };
    result.name = name.as_deref().map(topic_name);
    if version >= 6 {
        result.topic_id = id;
    }
    let Some((resolved_name, resolved_id)) = resolved else {
        result.error_code = if name.is_some() {
            error_code::UNKNOWN_TOPIC_OR_PARTITION
        } else {
            error_code::UNKNOWN_TOPIC_ID
        };
        return result;
    };
    result.name = Some(topic_name(&resolved_name));
    if version >= 6 {
        result.topic_id = resolved_id;
    }
    // The coordinator's state lives in __consumer_offsets; Kafka refuses to delete internal topics too.
    if resolved_name == crate::groups::offsets_log::TOPIC {
        result.error_code = error_code::INVALID_REQUEST;
        if version >= 5 {
            result.error_message = Some(str_bytes("internal topics cannot be deleted"));
        }
        return result;
    }
    if let Err(e) = broker.delete_topic(&resolved_name) {
        result.error_code = topic_error_code(&e);
        if version >= 5 {
            result.error_message = Some(str_bytes(e.to_string()));
        }
    }
    result
}

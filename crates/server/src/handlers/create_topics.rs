//! CreateTopics (v0-7; v0-1 through `ferrite_wire::legacy`): partitions and replication factor (-1 = broker default), per-topic configs validated,
//! `validate_only`; v5+ answers with the created topic's configs.

use super::util::{handle_versioned, str_bytes};
use super::Response;
use crate::config::topic::{describe_topic, TopicOverrides};
use crate::node::{Node, TopicError};
use ferrite_replication::NodeId;
use ferrite_wire::error_code;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};

pub fn handle(broker: &Node, frame: &RequestFrame) -> Response {
    let version = frame.version();
    handle_versioned(frame, |request: CreateTopicsRequest| {
        let mut response = CreateTopicsResponse::default();
        response.topics = request
            .topics
            .iter()
            .map(|t| create(broker, t, request.validate_only, version))
            .collect();
        response
    })
}

pub fn topic_error_code(e: &TopicError) -> i16 {
    match e {
        TopicError::AlreadyExists(_) => error_code::TOPIC_ALREADY_EXISTS,
        TopicError::UnknownTopic(_) => error_code::UNKNOWN_TOPIC_OR_PARTITION,
        TopicError::InvalidName(_) => error_code::INVALID_TOPIC_EXCEPTION,
        TopicError::InvalidPartitions(_) => error_code::INVALID_PARTITIONS,
        TopicError::InvalidReplicationFactor(_) => error_code::INVALID_REPLICATION_FACTOR,
        TopicError::InvalidReplicaAssignment(_) => error_code::INVALID_REPLICA_ASSIGNMENT,
        TopicError::InvalidConfig(_) => error_code::INVALID_CONFIG,
        TopicError::InvalidRequest(_) | TopicError::Stale(_) => error_code::INVALID_REQUEST,
        TopicError::NotController(_) => error_code::NOT_CONTROLLER,
        TopicError::Timeout(_) => error_code::REQUEST_TIMED_OUT,
        TopicError::Storage(_) | TopicError::LogDir(_) => error_code::KAFKA_STORAGE_ERROR,
    }
}

fn create(
    broker: &Node,
    t: &CreatableTopic,
    validate_only: bool,
    version: i16,
) -> CreatableTopicResult {
    let name = t.name.0.to_string();
    let mut result = CreatableTopicResult::default();
    result.name = t.name.clone();
    result.num_partitions = -1;
    result.replication_factor = -1;
    let overrides: TopicOverrides = t
        .configs
        .iter()
        .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
        .collect();
    let assignments: Vec<Vec<NodeId>> = t
        .assignments
        .iter()
        .map(|a| a.broker_ids.iter().map(|b| NodeId(b.0)).collect())
        .collect();
    let (partitions, replication) = match assignments.first() {
        // With assignments the request must leave both at -1 (Kafka's rule).
        Some(_) if t.num_partitions != -1 || t.replication_factor != -1 => {
            result.error_code = error_code::INVALID_REQUEST;
            result.error_message = Some(str_bytes(
                "numPartitions and replicationFactor must be -1 when assignments are given",
            ));
            return result;
        }
        Some(first) => (
            i32::try_from(assignments.len()).unwrap_or(i32::MAX),
            i16::try_from(first.len()).unwrap_or(i16::MAX),
        ),
        None => (
            if t.num_partitions == -1 {
                broker.config.num_partitions
            } else {
                t.num_partitions
            },
            if t.replication_factor == -1 {
                broker.config.default_replication_factor
            } else {
                t.replication_factor
            },
        ),
    };
    let outcome = broker.create_topic_as_requested(
        &name,
        partitions,
        replication,
        overrides.clone(),
        assignments,
        validate_only,
    );
    match outcome {
        Ok(created) => {
            result.num_partitions = partitions;
            result.replication_factor = replication;
            if let Some(topic) = created {
                result.topic_id = topic.id;
            }
            if version >= 5 {
                result.configs = Some(created_configs(broker, &overrides));
            }
        }
        Err(e) => {
            result.error_code = topic_error_code(&e);
            result.error_message = Some(str_bytes(e.to_string()));
        }
    }
    result
}

fn created_configs(broker: &Node, overrides: &TopicOverrides) -> Vec<CreatableTopicConfigs> {
    describe_topic(&broker.live_config().effective.topic_defaults, overrides)
        .into_iter()
        .map(|d| {
            let mut c = CreatableTopicConfigs::default();
            c.name = str_bytes(d.name);
            c.value = d.value.map(str_bytes);
            c.read_only = d.read_only;
            c.config_source = d.source.kafka_code();
            c.is_sensitive = d.is_sensitive;
            c
        })
        .collect()
}

//! CreateTopics (v0-7; v0-1 through `ferrite_wire::legacy`): partitions and replication factor (-1 = broker default), per-topic configs validated,
//! `validate_only`; v5+ answers with the created topic's configs.

use super::util::{handle_versioned, str_bytes};
use super::Response;
use crate::config::topic::{describe_topic, TopicOverrides};
use crate::node::{Node, TopicError};
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
        TopicError::InvalidConfig(_) => error_code::INVALID_CONFIG,
        TopicError::InvalidRequest(_) => error_code::INVALID_REQUEST,
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
    let (mut partitions, mut replication) = (t.num_partitions, t.replication_factor);
    if !t.assignments.is_empty() {
        // Manual assignment: every replica list must be exactly this broker.
        let node = broker.node_id();
        if t.assignments
            .iter()
            .any(|a| a.broker_ids.len() != 1 || a.broker_ids[0].0 != node)
        {
            result.error_code = error_code::INVALID_REPLICA_ASSIGNMENT;
            result.error_message = Some(str_bytes(format!(
                "replicas must be [{node}], the only broker"
            )));
            return result;
        }
        partitions = t.assignments.len() as i32;
        replication = 1;
    }
    let partitions = if partitions == -1 {
        broker.config.num_partitions
    } else {
        partitions
    };
    let replication = if replication == -1 {
        broker.config.default_replication_factor
    } else {
        replication
    };
    let outcome = if validate_only {
        broker
            .validate_new_topic(&name, partitions, replication, &overrides)
            .map(|()| None)
    } else {
        broker
            .create_topic(&name, partitions, replication, overrides.clone())
            .map(Some)
    };
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

//! DescribeConfigs (v0-4) with values, sources and synonyms: a topic's configs; a broker's (its node id: every
//! setting, static and dynamic) or the cluster-wide dynamic defaults (the empty name); a KIP-848 group's. v0
//! goes through `ferrite_wire::legacy`, where a config says whether it is a default instead of its source.

use super::util::{handle_versioned, str_bytes};
use super::Response;
use crate::config::group::describe_group;
use crate::config::topic::{describe_topic, DescribedConfig};
use crate::node::Node;
use ferrite_wire::error_code;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
/// Kafka's ConfigResource.Type GROUP (KIP-848 group configs); not the ACL resource type 3.
pub const RESOURCE_GROUP: i8 = 32;

pub fn handle(broker: &Node, frame: &RequestFrame) -> Response {
    let version = frame.version();
    handle_versioned(frame, |request: DescribeConfigsRequest| {
        let mut response = DescribeConfigsResponse::default();
        response.results = request
            .resources
            .iter()
            .map(|resource| {
                let mut result = DescribeConfigsResult::default();
                result.resource_type = resource.resource_type;
                result.resource_name = resource.resource_name.clone();
                match configs_of(broker, resource.resource_type, &resource.resource_name) {
                    Ok(configs) => {
                        // Null or empty means every config, as in Kafka's ConfigHelper.
                        let keys = resource
                            .configuration_keys
                            .as_ref()
                            .filter(|k| !k.is_empty());
                        result.configs = configs
                            .into_iter()
                            .filter(|c| keys.is_none_or(|k| k.iter().any(|k| k.as_str() == c.name)))
                            .map(|c| {
                                entry(
                                    c,
                                    request.include_synonyms,
                                    request.include_documentation,
                                    version,
                                )
                            })
                            .collect();
                    }
                    Err((code, message)) => {
                        result.error_code = code;
                        result.error_message = Some(str_bytes(message));
                    }
                }
                result
            })
            .collect();
        response
    })
}

fn configs_of(
    broker: &Node,
    resource_type: i8,
    name: &str,
) -> Result<Vec<DescribedConfig>, (i16, String)> {
    match resource_type {
        RESOURCE_TOPIC => match broker.topic(name) {
            Some(topic) => Ok(describe_topic(
                &broker.live_config().effective.topic_defaults,
                &topic.overrides,
            )),
            None => Err((
                error_code::UNKNOWN_TOPIC_OR_PARTITION,
                format!("unknown topic '{name}'"),
            )),
        },
        RESOURCE_BROKER if name.is_empty() => Ok(broker.live_config().describe_cluster_defaults()),
        RESOURCE_BROKER if name == broker.node_id().to_string() => {
            Ok(broker.live_config().describe())
        }
        RESOURCE_BROKER => Err((
            error_code::INVALID_REQUEST,
            format!(
                "unexpected broker id {name:?}: this is broker {}; ask that broker, or give an empty name \
                 for the cluster-wide defaults",
                broker.node_id()
            ),
        )),
        RESOURCE_GROUP if name.is_empty() => Err((
            error_code::INVALID_REQUEST,
            "a group resource needs a group id".to_string(),
        )),
        RESOURCE_GROUP => Ok(describe_group(&broker.config, &broker.group_overrides(name))),
        other => Err((
            error_code::INVALID_REQUEST,
            format!("resource type {other} is not supported"),
        )),
    }
}

fn entry(
    c: DescribedConfig,
    synonyms: bool,
    documentation: bool,
    version: i16,
) -> DescribeConfigsResourceResult {
    let mut r = DescribeConfigsResourceResult::default();
    r.name = str_bytes(c.name);
    r.value = c.value.map(str_bytes);
    r.read_only = c.read_only;
    r.config_source = c.source.kafka_code();
    r.is_sensitive = c.is_sensitive;
    if synonyms {
        r.synonyms = c
            .synonyms
            .into_iter()
            .map(|s| {
                let mut syn = DescribeConfigsSynonym::default();
                syn.name = str_bytes(s.name);
                syn.value = Some(str_bytes(s.value));
                syn.source = s.source.kafka_code();
                syn
            })
            .collect();
    }
    if version >= 3 {
        r.config_type = c.config_type;
        if documentation {
            r.documentation = c.documentation.map(str_bytes);
        }
    }
    r
}

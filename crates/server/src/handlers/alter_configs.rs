//! AlterConfigs (v0-2, replaces a topic's overrides) and IncrementalAlterConfigs (v0-1, SET / DELETE /
//! APPEND / SUBTRACT). Changes are validated, persisted, and applied live to the topic's running partitions.
//! Dynamic broker configs are not supported: the broker's settings are static.

use super::create_topics::topic_error_code;
use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::util::{handle_with, str_bytes};
use super::Response;
use crate::broker::Broker;
use crate::config::topic::{describe_topic, TopicOverrides};
use ferrite_wire::error_code;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

type Outcome = Result<(), (i16, String)>;

pub fn handle_alter(broker: &Broker, frame: &RequestFrame) -> Response {
    handle_with(frame, |request: AlterConfigsRequest| {
        let mut response = AlterConfigsResponse::default();
        response.responses = request
            .resources
            .iter()
            .map(|res| {
                let overrides: TopicOverrides = res
                    .configs
                    .iter()
                    .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                    .collect();
                let outcome = apply(
                    broker,
                    res.resource_type,
                    &res.resource_name,
                    request.validate_only,
                    |_| Ok(overrides),
                );
                let mut r = alter_configs_response::AlterConfigsResourceResponse::default();
                r.resource_type = res.resource_type;
                r.resource_name = res.resource_name.clone();
                if let Err((code, message)) = outcome {
                    r.error_code = code;
                    r.error_message = Some(str_bytes(message));
                }
                r
            })
            .collect();
        response
    })
}

pub fn handle_incremental(broker: &Broker, frame: &RequestFrame) -> Response {
    handle_with(frame, |request: IncrementalAlterConfigsRequest| {
        let mut response = IncrementalAlterConfigsResponse::default();
        response.responses = request
            .resources
            .iter()
            .map(|res| {
                let ops: Vec<(String, i8, Option<String>)> = res
                    .configs
                    .iter()
                    .map(|c| {
                        (
                            c.name.to_string(),
                            c.config_operation,
                            c.value.as_ref().map(|v| v.to_string()),
                        )
                    })
                    .collect();
                let outcome = apply(
                    broker,
                    res.resource_type,
                    &res.resource_name,
                    request.validate_only,
                    |current| incremental(broker, current, &ops),
                );
                let mut r =
                    incremental_alter_configs_response::AlterConfigsResourceResponse::default();
                r.resource_type = res.resource_type;
                r.resource_name = res.resource_name.clone();
                if let Err((code, message)) = outcome {
                    r.error_code = code;
                    r.error_message = Some(str_bytes(message));
                }
                r
            })
            .collect();
        response
    })
}

/// Computes new overrides for a topic from its current ones, then validates, persists and applies them.
fn apply(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    validate_only: bool,
    change: impl FnOnce(&TopicOverrides) -> Result<TopicOverrides, (i16, String)>,
) -> Outcome {
    match resource_type {
        RESOURCE_TOPIC => {}
        RESOURCE_BROKER => {
            return Err((
                error_code::INVALID_REQUEST,
                "dynamic broker configs are not supported; restart with new settings".into(),
            ))
        }
        other => {
            return Err((
                error_code::INVALID_REQUEST,
                format!("resource type {other} is not supported"),
            ))
        }
    }
    let topic = broker.topic(name).ok_or((
        error_code::UNKNOWN_TOPIC_OR_PARTITION,
        format!("unknown topic '{name}'"),
    ))?;
    let overrides = change(&topic.overrides)?;
    broker
        .set_topic_overrides(name, overrides, validate_only)
        .map_err(|e| (topic_error_code(&e), e.to_string()))
}

fn incremental(
    broker: &Broker,
    current: &TopicOverrides,
    ops: &[(String, i8, Option<String>)],
) -> Result<TopicOverrides, (i16, String)> {
    let mut next = current.clone();
    let invalid = |m: String| (error_code::INVALID_CONFIG, m);
    for (name, op, value) in ops {
        match *op {
            OP_SET => {
                let v = value
                    .clone()
                    .ok_or_else(|| invalid(format!("SET {name} needs a value")))?;
                next.insert(name.clone(), v);
            }
            OP_DELETE => {
                next.remove(name);
            }
            OP_APPEND | OP_SUBTRACT => {
                if name != "cleanup.policy" {
                    return Err(invalid(format!(
                        "{name} is not a list config; APPEND and SUBTRACT need one"
                    )));
                }
                let effective = describe_topic(&broker.config.topic_defaults, &next)
                    .into_iter()
                    .find(|d| d.name == *name)
                    .and_then(|d| d.value)
                    .unwrap_or_default();
                let mut items: Vec<String> = effective
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                for item in value
                    .as_deref()
                    .unwrap_or("")
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                {
                    if *op == OP_APPEND && !items.iter().any(|i| i == item) {
                        items.push(item.to_string());
                    } else if *op == OP_SUBTRACT {
                        items.retain(|i| i != item);
                    }
                }
                next.insert(name.clone(), items.join(","));
            }
            other => {
                return Err((
                    error_code::INVALID_REQUEST,
                    format!("unknown config operation {other}"),
                ))
            }
        }
    }
    Ok(next)
}

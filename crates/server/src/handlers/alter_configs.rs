//! AlterConfigs (v0-2, replaces a resource's settings) and IncrementalAlterConfigs (v0-1, SET / DELETE /
//! APPEND / SUBTRACT) on three resources:
//!
//! ```text
//! TOPIC   name = topic       per-topic overrides, applied live to its partitions
//! BROKER  name = node id     dynamic configs of that broker      } applied live to every partition whose topic
//!         name = ""          dynamic configs of every broker     } does not override the setting
//! GROUP   name = group id    KIP-848 group configs, applied live to the group's members
//! ```
//! Each change is computed from the current settings under the broker's metadata lock, validated as a whole,
//! persisted, then applied; `validate_only` stops after validation.

use super::create_topics::topic_error_code;
use super::describe_configs::{RESOURCE_BROKER, RESOURCE_GROUP, RESOURCE_TOPIC};
use super::util::{handle_with, str_bytes};
use super::Response;
use crate::config::dynamic::BrokerEntity;
use crate::config::topic::{describe_topic, DescribedConfig};
use crate::node::{Node, TopicError};
use ferrite_wire::error_code;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use std::collections::BTreeMap;

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;
/// Kafka's ConfigType code for LIST configs, the only ones APPEND and SUBTRACT apply to.
const CONFIG_TYPE_LIST: i8 = 7;

type Settings = BTreeMap<String, String>;
type Outcome = Result<(), (i16, String)>;

/// What a request asks for one resource.
enum Change {
    /// AlterConfigs: these settings and no others.
    Replace(Settings),
    /// IncrementalAlterConfigs: (name, operation, value) in request order.
    Edit(Vec<(String, i8, Option<String>)>),
}

pub fn handle_alter(broker: &Node, frame: &RequestFrame) -> Response {
    handle_with(frame, |request: AlterConfigsRequest| {
        let mut response = AlterConfigsResponse::default();
        response.responses = request
            .resources
            .iter()
            .map(|res| {
                let settings = res
                    .configs
                    .iter()
                    .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                    .collect();
                let outcome = alter(
                    broker,
                    res.resource_type,
                    &res.resource_name,
                    request.validate_only,
                    Change::Replace(settings),
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

pub fn handle_incremental(broker: &Node, frame: &RequestFrame) -> Response {
    handle_with(frame, |request: IncrementalAlterConfigsRequest| {
        let mut response = IncrementalAlterConfigsResponse::default();
        response.responses = request
            .resources
            .iter()
            .map(|res| {
                let ops = res
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
                let outcome = alter(
                    broker,
                    res.resource_type,
                    &res.resource_name,
                    request.validate_only,
                    Change::Edit(ops),
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

/// Validates, persists and applies one resource's change.
fn alter(
    broker: &Node,
    resource_type: i8,
    name: &str,
    validate_only: bool,
    change: Change,
) -> Outcome {
    let result = match resource_type {
        RESOURCE_TOPIC => {
            let topic = broker.topic(name).ok_or((
                error_code::UNKNOWN_TOPIC_OR_PARTITION,
                format!("unknown topic '{name}'"),
            ))?;
            let defaults = broker.live_config().effective.topic_defaults.clone();
            let described = describe_topic(&defaults, &topic.overrides);
            let overrides = change
                .apply(&topic.overrides, |n| list_value(&described, n))
                .map_err(|e| (topic_error_code(&e), e.to_string()))?;
            broker.set_topic_overrides(name, overrides, validate_only)
        }
        RESOURCE_BROKER => {
            let entity = BrokerEntity::parse(name)
                .map_err(|reason| (error_code::INVALID_REQUEST, reason))?;
            broker.alter_broker_configs(entity, validate_only, |current, live| {
                let described = live.describe();
                change.apply(current, |n| list_value(&described, n))
            })
        }
        RESOURCE_GROUP if name.is_empty() => {
            return Err((
                error_code::INVALID_REQUEST,
                "a group resource needs a group id".into(),
            ))
        }
        RESOURCE_GROUP => broker.alter_group_configs(name, validate_only, |current| {
            change.apply(current, |_| None)
        }),
        other => {
            return Err((
                error_code::INVALID_REQUEST,
                format!("resource type {other} is not supported"),
            ))
        }
    };
    result.map_err(|e| (topic_error_code(&e), e.to_string()))
}

/// The effective value of `name` if it is a list config (APPEND and SUBTRACT start from it), else `None`.
fn list_value(described: &[DescribedConfig], name: &str) -> Option<String> {
    described
        .iter()
        .find(|d| d.name == name && d.config_type == CONFIG_TYPE_LIST)
        .map(|d| d.value.clone().unwrap_or_default())
}

impl Change {
    /// The settings this change makes of `current`. `list_value` gives a list config's effective value (the
    /// starting point of APPEND / SUBTRACT when the resource does not set it itself), `None` for other names.
    fn apply(
        &self,
        current: &Settings,
        list_value: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, TopicError> {
        let ops = match self {
            Change::Replace(settings) => return Ok(settings.clone()),
            Change::Edit(ops) => ops,
        };
        let mut next = current.clone();
        for (name, op, value) in ops {
            match *op {
                OP_SET => {
                    let v = value.clone().ok_or_else(|| {
                        TopicError::InvalidConfig(format!("SET {name} needs a value"))
                    })?;
                    next.insert(name.clone(), v);
                }
                OP_DELETE => {
                    next.remove(name);
                }
                OP_APPEND | OP_SUBTRACT => {
                    let effective = list_value(name).ok_or_else(|| {
                        TopicError::InvalidConfig(format!(
                            "{name} is not a list config; APPEND and SUBTRACT need one"
                        ))
                    })?;
                    // An earlier operation of this request on the same name counts.
                    let effective = next.get(name).cloned().unwrap_or(effective);
                    let given = value.as_deref().unwrap_or("");
                    next.insert(name.clone(), edit_list(&effective, given, *op == OP_APPEND));
                }
                other => {
                    return Err(TopicError::InvalidRequest(format!(
                        "unknown config operation {other}"
                    )))
                }
            }
        }
        Ok(next)
    }
}

/// Kafka's list edit: APPEND adds the items not there yet, SUBTRACT removes the items given.
fn edit_list(current: &str, given: &str, append: bool) -> String {
    let items_of = |text: &str| -> Vec<String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    };
    let mut items = items_of(current);
    for item in items_of(given) {
        if append && !items.contains(&item) {
            items.push(item);
        } else if !append {
            items.retain(|i| *i != item);
        }
    }
    items.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn edit(ops: &[(&str, i8, Option<&str>)]) -> Change {
        Change::Edit(
            ops.iter()
                .map(|(n, o, v)| (n.to_string(), *o, v.map(str::to_string)))
                .collect(),
        )
    }

    #[test]
    fn incremental_operations() {
        let current = settings(&[("a", "1"), ("b", "2")]);
        let lists = |name: &str| (name == "policy").then(|| "delete".to_string());
        let next = edit(&[
            ("a", OP_SET, Some("10")),
            ("b", OP_DELETE, None),
            ("policy", OP_APPEND, Some("compact, delete")),
        ])
        .apply(&current, lists)
        .expect("valid");
        assert_eq!(next, settings(&[("a", "10"), ("policy", "delete,compact")]));
        let next = edit(&[("policy", OP_SUBTRACT, Some("delete"))])
            .apply(&next, lists)
            .expect("valid");
        assert_eq!(next["policy"], "compact");
        assert!(matches!(
            edit(&[("a", OP_APPEND, Some("x"))]).apply(&current, lists),
            Err(TopicError::InvalidConfig(_))
        ));
        assert!(matches!(
            edit(&[("a", 9, Some("x"))]).apply(&current, lists),
            Err(TopicError::InvalidRequest(_))
        ));
        assert!(matches!(
            edit(&[("a", OP_SET, None)]).apply(&current, lists),
            Err(TopicError::InvalidConfig(_))
        ));
        let replaced = Change::Replace(settings(&[("c", "3")]))
            .apply(&current, lists)
            .expect("valid");
        assert_eq!(replaced, settings(&[("c", "3")]));
    }
}

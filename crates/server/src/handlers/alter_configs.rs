//! AlterConfigs (v0-2, replaces a resource's settings) and IncrementalAlterConfigs (v0-1, SET / DELETE /
//! APPEND / SUBTRACT) on three resources:
//!
//! ```text
//! TOPIC   name = topic       per-topic overrides, applied live to its partitions
//! BROKER  name = node id     dynamic configs of that broker      } applied live to every partition whose topic
//!         name = ""          dynamic configs of every broker     } does not override the setting
//! GROUP   name = group id    KIP-848 group configs, applied live to the group's members
//! ```
//! The change travels as data to the active controller, which computes the new settings from the ones it
//! holds, validates them as a whole and commits them; `validate_only` stops after validation.

use super::create_topics::topic_error_code;
use super::describe_configs::{RESOURCE_BROKER, RESOURCE_GROUP, RESOURCE_TOPIC};
use super::util::{handle_with, str_bytes};
use super::Response;
use crate::config::change::ConfigChange;
use crate::config::dynamic::BrokerEntity;
use crate::node::Node;
use ferrite_wire::error_code;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};

type Outcome = Result<(), (i16, String)>;

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
                    ConfigChange::Replace(settings),
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
                    ConfigChange::Edit(ops),
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

/// Has the controller validate and commit one resource's change.
fn alter(
    broker: &Node,
    resource_type: i8,
    name: &str,
    validate_only: bool,
    change: ConfigChange,
) -> Outcome {
    let result = match resource_type {
        RESOURCE_TOPIC => broker.alter_topic_configs(name, change, validate_only),
        RESOURCE_BROKER => {
            let entity = BrokerEntity::parse(name)
                .map_err(|reason| (error_code::INVALID_REQUEST, reason))?;
            broker.alter_broker_configs(entity, change, validate_only)
        }
        RESOURCE_GROUP if name.is_empty() => {
            return Err((
                error_code::INVALID_REQUEST,
                "a group resource needs a group id".into(),
            ))
        }
        RESOURCE_GROUP => broker.alter_group_configs(name, change, validate_only),
        other => {
            return Err((
                error_code::INVALID_REQUEST,
                format!("resource type {other} is not supported"),
            ))
        }
    };
    result.map_err(|e| (topic_error_code(&e), e.to_string()))
}

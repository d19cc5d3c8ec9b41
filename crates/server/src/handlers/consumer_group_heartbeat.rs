//! ConsumerGroupHeartbeat (v0-1, KIP-848): joins, leaves, subscription changes and assignment reconciliation
//! in one request. v1 clients name themselves (a UUID they generate); v0 clients may join with an empty id.

use super::util::{handle_with, str_bytes};
use super::Response;
use crate::broker::Broker;
use ferrite_coordinator::group::consumer::{HeartbeatRequest, HeartbeatResponse};
use ferrite_wire::error_code;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};

pub fn handle(broker: &Broker, frame: &RequestFrame, client_host: String) -> Response {
    let version = frame.version();
    let client_id = frame.header.client_id.as_deref().unwrap_or("").to_string();
    handle_with(frame, |r: ConsumerGroupHeartbeatRequest| {
        let refuse = |code: i16, message: &str| HeartbeatResponse {
            error_code: code,
            error_message: Some(message.to_string()),
            member_id: r.member_id.to_string(),
            ..Default::default()
        };
        let answer = match broker.groups() {
            None => refuse(
                error_code::COORDINATOR_NOT_AVAILABLE,
                "the group coordinator is not loaded",
            ),
            Some(_) if r.group_id.0.is_empty() => {
                refuse(error_code::INVALID_REQUEST, "the group id is empty")
            }
            Some(_) if version >= 1 && r.member_id.is_empty() => refuse(
                error_code::INVALID_REQUEST,
                "ConsumerGroupHeartbeat v1 requires a member id",
            ),
            Some(_)
                if r.subscribed_topic_regex
                    .as_ref()
                    .is_some_and(|re| !re.is_empty()) =>
            {
                refuse(
                    error_code::INVALID_REQUEST,
                    "regular-expression subscriptions are not supported by this broker yet",
                )
            }
            Some(groups) => {
                let request = HeartbeatRequest {
                    member_id: r.member_id.to_string(),
                    member_epoch: r.member_epoch,
                    instance_id: r.instance_id.as_ref().map(|s| s.to_string()),
                    rack_id: r.rack_id.as_ref().map(|s| s.to_string()),
                    rebalance_timeout_ms: r.rebalance_timeout_ms,
                    subscribed_topic_names: r
                        .subscribed_topic_names
                        .as_ref()
                        .map(|names| names.iter().map(|n| n.0.to_string()).collect()),
                    server_assignor: r.server_assignor.as_ref().map(|s| s.to_string()),
                    owned_partitions: r.topic_partitions.as_ref().map(|owned| {
                        owned
                            .iter()
                            .map(|t| (t.topic_id, t.partitions.clone()))
                            .collect()
                    }),
                    client_id: client_id.clone(),
                    client_host: client_host.clone(),
                };
                groups.consumer_heartbeat(broker, &r.group_id.0, request)
            }
        };
        if answer.error_code != error_code::NONE {
            tracing::debug!(
                group = %r.group_id.0,
                member = %r.member_id,
                epoch = r.member_epoch,
                error = answer.error_code,
                message = answer.error_message.as_deref().unwrap_or(""),
                "consumer group heartbeat refused"
            );
        }
        encode(answer)
    })
}

fn encode(a: HeartbeatResponse) -> ConsumerGroupHeartbeatResponse {
    let mut response = ConsumerGroupHeartbeatResponse::default();
    response.error_code = a.error_code;
    response.error_message = a.error_message.map(str_bytes);
    response.member_id = (!a.member_id.is_empty()).then(|| str_bytes(a.member_id));
    response.member_epoch = a.member_epoch;
    response.heartbeat_interval_ms = a.heartbeat_interval_ms;
    response.assignment = a.assignment.map(|topics| {
        let mut assignment = Assignment::default();
        assignment.topic_partitions = topics
            .into_iter()
            .map(|(topic_id, partitions)| {
                let mut t = TopicPartitions::default();
                t.topic_id = topic_id;
                t.partitions = partitions;
                t
            })
            .collect();
        assignment
    });
    response
}

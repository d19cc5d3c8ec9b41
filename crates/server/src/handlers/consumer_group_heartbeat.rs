//! ConsumerGroupHeartbeat (v0-1, KIP-848): joins, leaves, subscription changes (topic names and RE2 patterns,
//! which the coordinator resolves) and assignment reconciliation in one request. v1 clients name themselves (a UUID they generate); v0 clients may join with an empty id.
//! A heartbeat that changed the group's state is answered in the second phase, once its records are durable
//! in `__consumer_offsets`, as an OffsetCommit is.

use super::util::{decode, respond, str_bytes};
use super::{Dispatched, Response};
use crate::node::Node;
use ferrite_coordinator::group::consumer::{HeartbeatRequest, HeartbeatResponse};
use ferrite_wire::error_code;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use std::sync::Arc;

pub fn handle(broker: &Arc<Node>, frame: RequestFrame, client_host: String) -> Dispatched {
    let r: ConsumerGroupHeartbeatRequest = match decode(&frame) {
        Ok(r) => r,
        Err(close) => return Dispatched::Ready(close),
    };
    let refuse = |code: i16, message: &str| {
        let answer = HeartbeatResponse {
            error_code: code,
            error_message: Some(message.to_string()),
            member_id: r.member_id.to_string(),
            ..Default::default()
        };
        Dispatched::Ready(answer_with(&frame, &r, answer))
    };
    if r.group_id.0.is_empty() {
        return refuse(error_code::INVALID_REQUEST, "the group id is empty");
    }
    let groups = match broker.group_coordinator(&r.group_id.0) {
        Ok(groups) => groups,
        Err(code) => return refuse(code, "this broker is not the group's coordinator"),
    };
    if frame.version() >= 1 && r.member_id.is_empty() {
        return refuse(
            error_code::INVALID_REQUEST,
            "ConsumerGroupHeartbeat v1 requires a member id",
        );
    }
    let client_id = frame.header.client_id.as_deref().unwrap_or("").to_string();
    let request = heartbeat_request(&r, client_id, client_host);
    let outcome = groups.consumer_heartbeat(&r.group_id.0, request);
    if !outcome.is_waiting() {
        let answer = groups.finish_heartbeat(outcome);
        return Dispatched::Ready(answer_with(&frame, &r, answer));
    }
    let broker = Arc::clone(broker);
    Dispatched::Deferred(Box::pin(async move {
        let finished = tokio::task::spawn_blocking(move || {
            broker
                .groups()
                .map(|groups| groups.finish_heartbeat(outcome))
        })
        .await;
        match finished {
            Ok(Some(answer)) => answer_with(&frame, &r, answer),
            Ok(None) => Response::Close("the group coordinator went away".to_string()),
            Err(e) => Response::Close(format!("consumer group heartbeat wait panicked: {e}")),
        }
    }))
}

fn heartbeat_request(
    r: &ConsumerGroupHeartbeatRequest,
    client_id: String,
    client_host: String,
) -> HeartbeatRequest {
    HeartbeatRequest {
        member_id: r.member_id.to_string(),
        member_epoch: r.member_epoch,
        instance_id: r.instance_id.as_ref().map(|s| s.to_string()),
        rack_id: r.rack_id.as_ref().map(|s| s.to_string()),
        rebalance_timeout_ms: r.rebalance_timeout_ms,
        subscribed_topic_names: r
            .subscribed_topic_names
            .as_ref()
            .map(|names| names.iter().map(|n| n.0.to_string()).collect()),
        subscribed_topic_regex: r.subscribed_topic_regex.as_ref().map(|s| s.to_string()),
        server_assignor: r.server_assignor.as_ref().map(|s| s.to_string()),
        owned_partitions: r.topic_partitions.as_ref().map(|owned| {
            owned
                .iter()
                .map(|t| (t.topic_id, t.partitions.clone()))
                .collect()
        }),
        client_id,
        client_host,
    }
}

/// Logs a refused heartbeat and encodes the answer.
fn answer_with(
    frame: &RequestFrame,
    r: &ConsumerGroupHeartbeatRequest,
    answer: HeartbeatResponse,
) -> Response {
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
    respond(frame, &encode(answer))
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

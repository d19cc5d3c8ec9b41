//! OffsetCommit (v2-9). The records are appended when the request is read (so commits apply in order); the
//! answer waits, in the second phase, until they are durable under `__consumer_offsets`' flush policy.

use super::util::{decode, respond, topic_name};
use super::{Dispatched, Response};
use crate::broker::Broker;
use crate::groups::{Committer, PartitionOffset};
use ferrite_wire::error_code;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use std::sync::Arc;

pub fn handle(broker: &Arc<Broker>, frame: RequestFrame) -> Dispatched {
    let request: OffsetCommitRequest = match decode(&frame) {
        Ok(r) => r,
        Err(close) => return Dispatched::Ready(close),
    };
    let version = frame.version();
    let offsets: Vec<PartitionOffset> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| PartitionOffset {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if version >= 6 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                error_code: error_code::NONE,
            })
        })
        .collect();
    let Some(groups) = broker.groups() else {
        let errors = vec![error_code::COORDINATOR_NOT_AVAILABLE; offsets.len()];
        return Dispatched::Ready(encode(&frame, &offsets, &errors));
    };
    let committer = Committer {
        member_id: &request.member_id,
        group_instance_id: request.group_instance_id.as_deref(),
        generation_id: request.generation_id_or_member_epoch,
    };
    let outcome = groups.commit(broker, &request.group_id.0, committer, &offsets);
    let broker = Arc::clone(broker);
    Dispatched::Deferred(Box::pin(async move {
        let finished = tokio::task::spawn_blocking(move || {
            broker
                .groups()
                .map(|groups| groups.finish_commit(outcome))
                .unwrap_or_default()
        })
        .await;
        match finished {
            Ok(errors) => encode(&frame, &offsets, &errors),
            Err(e) => Response::Close(format!("offset commit wait panicked: {e}")),
        }
    }))
}

/// Per-partition answers, grouped by topic in request order.
fn encode(frame: &RequestFrame, offsets: &[PartitionOffset], errors: &[i16]) -> Response {
    let mut response = OffsetCommitResponse::default();
    for (p, error) in offsets.iter().zip(errors) {
        if response
            .topics
            .last()
            .is_none_or(|t: &OffsetCommitResponseTopic| t.name.0.as_str() != p.topic)
        {
            let mut topic = OffsetCommitResponseTopic::default();
            topic.name = topic_name(&p.topic);
            response.topics.push(topic);
        }
        let mut partition = OffsetCommitResponsePartition::default();
        partition.partition_index = p.partition;
        partition.error_code = *error;
        if let Some(topic) = response.topics.last_mut() {
            topic.partitions.push(partition);
        }
    }
    respond(frame, &response)
}

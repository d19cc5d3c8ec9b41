//! OffsetCommit (v0-9). The records are appended when the request is read (so commits apply in order); the
//! answer waits, in the second phase, until they are durable under `__consumer_offsets`' flush policy.
//!
//! v0-1 come through `ferrite_wire::legacy`. v0 carries no group membership and commits as a client outside the
//! group's generations (Kafka 3.9 wrote v0 commits to ZooKeeper, and refused them without ZooKeeper; here they
//! are ordinary commits, which every OffsetFetch version reads). v1 names a commit timestamp per partition,
//! stored as the commit time (-1: now), as Kafka does.

use super::util::{decode, respond_versioned, topic_name};
use super::{Dispatched, Response};
use crate::groups::{Committer, PartitionOffset};
use crate::node::Node;
use ferrite_wire::error_code;
use ferrite_wire::legacy::offset_commit::{self as legacy, RECEIVE_TIME};
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use std::sync::Arc;

pub fn handle(broker: &Arc<Node>, frame: RequestFrame) -> Dispatched {
    let version = frame.version();
    let decoded = if version <= 1 {
        legacy::decode_request(frame.body.clone(), version)
            .map(|c| (c.request, c.commit_timestamps))
            .map_err(|e| Response::Close(format!("malformed OffsetCommit v{version} request: {e}")))
    } else {
        decode::<OffsetCommitRequest>(&frame).map(|r| (r, vec![]))
    };
    let (request, commit_timestamps) = match decoded {
        Ok(decoded) => decoded,
        Err(close) => return Dispatched::Ready(close),
    };
    let mut commit_timestamps = commit_timestamps.into_iter();
    let mut offsets: Vec<PartitionOffset> = vec![];
    for t in &request.topics {
        for p in &t.partitions {
            offsets.push(PartitionOffset {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if version >= 6 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                commit_timestamp_ms: commit_timestamps.next().unwrap_or(RECEIVE_TIME),
                error_code: error_code::NONE,
            });
        }
    }
    let groups = match broker.group_coordinator(&request.group_id.0) {
        Ok(groups) => groups,
        Err(code) => {
            let errors = vec![code; offsets.len()];
            return Dispatched::Ready(encode(&frame, &offsets, &errors));
        }
    };
    let committer = Committer {
        member_id: &request.member_id,
        group_instance_id: request.group_instance_id.as_deref(),
        generation_id: request.generation_id_or_member_epoch,
    };
    let outcome = groups.commit(&request.group_id.0, committer, &offsets);
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
    respond_versioned(frame, &response)
}

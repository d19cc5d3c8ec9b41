//! OffsetForLeaderEpoch (v0-4; v0-1 through `ferrite_wire::legacy`, without fencing): where a leader epoch ended. librdkafka calls it to validate its position
//! whenever batches carry a leader epoch; a wrong answer makes it report lost records.

use super::util::{handle_versioned, leader_partition, topic_name};
use super::Response;
use crate::node::Node;
use ferrite_replication::LeaderEpoch;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

pub fn handle(broker: &Node, frame: &RequestFrame) -> Response {
    handle_versioned(frame, |request: OffsetForLeaderEpochRequest| {
        let mut response = OffsetForLeaderEpochResponse::default();
        response.topics = request
            .topics
            .iter()
            .map(|t| {
                let mut topic = OffsetForLeaderTopicResult::default();
                topic.topic = topic_name(&t.topic.0);
                topic.partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let mut r = EpochEndOffset::default();
                        r.partition = p.partition;
                        r.leader_epoch = -1;
                        r.end_offset = -1;
                        match leader_partition(
                            broker,
                            &t.topic.0,
                            p.partition,
                            p.current_leader_epoch,
                        ) {
                            Err(code) => r.error_code = code,
                            Ok(partition) => {
                                let end =
                                    partition.end_offset_for_epoch(LeaderEpoch(p.leader_epoch));
                                r.leader_epoch = end.epoch;
                                r.end_offset = end.end_offset;
                            }
                        }
                        r
                    })
                    .collect();
                topic
            })
            .collect();
        response
    })
}

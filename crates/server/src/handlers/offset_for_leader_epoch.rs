//! OffsetForLeaderEpoch (v0-4; v0-1 through `ferrite_wire::legacy`, without fencing): where a leader epoch ended. librdkafka calls it to validate its position
//! whenever batches carry a leader epoch; a wrong answer makes it report lost records.

use super::util::{check_leader_epoch, handle_versioned, topic_name};
use super::Response;
use crate::broker::Broker;
use ferrite_wire::error_code;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

pub fn handle(broker: &Broker, frame: &RequestFrame) -> Response {
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
                        match broker.partition(&t.topic.0, p.partition) {
                            None => r.error_code = error_code::UNKNOWN_TOPIC_OR_PARTITION,
                            Some(partition) => {
                                r.error_code = check_leader_epoch(
                                    p.current_leader_epoch,
                                    partition.leader_epoch,
                                );
                                if r.error_code == error_code::NONE {
                                    let end = partition.log.end_offset_for_epoch(p.leader_epoch);
                                    r.leader_epoch = end.epoch;
                                    r.end_offset = end.end_offset;
                                }
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

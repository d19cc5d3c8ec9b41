//! DeleteRecords (v0-2): move a partition's log start offset forward (-1 means up to the high watermark).

use super::util::{handle_with, leader_partition, log_error_code, topic_name};
use super::Response;
use crate::node::Node;
use ferrite_replication::Offset;
use ferrite_wire::error_code;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

pub fn handle(broker: &Node, frame: &RequestFrame) -> Response {
    handle_with(frame, |request: DeleteRecordsRequest| {
        let mut response = DeleteRecordsResponse::default();
        response.topics = request
            .topics
            .iter()
            .map(|t| {
                let mut topic = DeleteRecordsTopicResult::default();
                topic.name = topic_name(&t.name.0);
                topic.partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let mut r = DeleteRecordsPartitionResult::default();
                        r.partition_index = p.partition_index;
                        r.low_watermark = -1;
                        let partition =
                            match leader_partition(broker, &t.name.0, p.partition_index, -1) {
                                Ok(partition) => partition,
                                Err(code) => {
                                    r.error_code = code;
                                    return r;
                                }
                            };
                        let high_watermark = partition.high_watermark().0;
                        let target = if p.offset == -1 {
                            high_watermark
                        } else {
                            p.offset
                        };
                        if target < 0 || target > high_watermark {
                            r.error_code = error_code::OFFSET_OUT_OF_RANGE;
                            return r;
                        }
                        match partition.advance_log_start_offset(Offset(target)) {
                            Ok(_) => r.low_watermark = partition.log_start_offset().0,
                            Err(e) => r.error_code = log_error_code(&e),
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

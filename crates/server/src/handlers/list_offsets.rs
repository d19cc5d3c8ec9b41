//! ListOffsets (v1-10): earliest (-2), latest (-1), max timestamp (-3), earliest local (-4), latest tiered
//! (-5, no tiered storage: -1), or the first offset whose timestamp is >= T.

use super::util::{check_leader_epoch, handle_with, log_error_code, topic_name};
use super::Response;
use crate::broker::{Broker, Partition};
use ferrite_wire::error_code;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

pub fn handle(broker: &Broker, frame: &RequestFrame) -> Response {
    let version = frame.version();
    handle_with(frame, |request: ListOffsetsRequest| {
        let mut response = ListOffsetsResponse::default();
        response.topics = request
            .topics
            .iter()
            .map(|t| {
                let mut topic = ListOffsetsTopicResponse::default();
                topic.name = topic_name(&t.name.0);
                topic.partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let partition = broker.partition(&t.name.0, p.partition_index);
                        lookup(
                            partition.as_deref(),
                            p.partition_index,
                            p.timestamp,
                            p.current_leader_epoch,
                            version,
                        )
                    })
                    .collect();
                topic
            })
            .collect();
        response
    })
}

fn lookup(
    partition: Option<&Partition>,
    index: i32,
    timestamp: i64,
    leader_epoch: i32,
    version: i16,
) -> ListOffsetsPartitionResponse {
    let mut r = ListOffsetsPartitionResponse::default();
    r.partition_index = index;
    r.timestamp = -1;
    r.offset = -1;
    let Some(p) = partition else {
        r.error_code = error_code::UNKNOWN_TOPIC_OR_PARTITION;
        return r;
    };
    r.error_code = check_leader_epoch(leader_epoch, p.leader_epoch);
    if r.error_code != error_code::NONE {
        return r;
    }
    let found = match timestamp {
        LATEST => Ok(Some((-1, p.high_watermark(), p.leader_epoch))),
        EARLIEST | EARLIEST_LOCAL => Ok(Some((-1, p.log.log_start_offset(), p.leader_epoch))),
        LATEST_TIERED => Ok(None),
        MAX_TIMESTAMP => p
            .log
            .max_timestamp_offset()
            .map(|o| o.map(|o| (o.timestamp, o.offset, o.leader_epoch))),
        t if t >= 0 => p
            .log
            .offset_for_timestamp(t)
            .map(|o| o.map(|o| (o.timestamp, o.offset, o.leader_epoch))),
        _ => {
            r.error_code = error_code::INVALID_REQUEST;
            return r;
        }
    };
    match found {
        // A record at or above the high watermark is not visible yet.
        Ok(Some((ts, offset, epoch))) if timestamp < 0 || offset < p.high_watermark() => {
            r.timestamp = ts;
            r.offset = offset;
            if version >= 4 {
                r.leader_epoch = epoch;
            }
        }
        Ok(_) => {}
        Err(e) => r.error_code = log_error_code(&e),
    }
    r
}

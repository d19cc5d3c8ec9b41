//! ListOffsets (v0-10): earliest (-2), latest (-1), max timestamp (-3), earliest local (-4), latest tiered
//! (-5, no tiered storage: -1), or the first offset whose timestamp is >= T.
//!
//! v0 (through `ferrite_wire::legacy`) answers as Kafka 3.9 did: a list of up to `max_num_offsets` segment base
//! offsets and the log end, newest first, picked by segment modification time (`PartitionLog::
//! legacy_offsets_before`); for a consumer (replica id -1) offsets above the high watermark become the high
//! watermark.

use super::util::{handle_with, leader_partition, log_error_code, topic_name};
use super::Response;
use crate::node::{Node, Partition};
use bytes::BytesMut;
use ferrite_wire::error_code;
use ferrite_wire::legacy::list_offsets::{self as v0, ListOffsetsV0Response};
use ferrite_wire::request::RequestFrame;
use ferrite_wire::response::{begin_response, finish_response};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

const CONSUMER_REPLICA_ID: i32 = -1;

pub fn handle(broker: &Node, frame: &RequestFrame) -> Response {
    let version = frame.version();
    if version == 0 {
        return handle_v0(broker, frame);
    }
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
                        let partition = leader_partition(
                            broker,
                            &t.name.0,
                            p.partition_index,
                            p.current_leader_epoch,
                        );
                        lookup(
                            partition.as_deref(),
                            p.partition_index,
                            p.timestamp,
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
    partition: Result<&Partition, &i16>,
    index: i32,
    timestamp: i64,
    version: i16,
) -> ListOffsetsPartitionResponse {
    let mut r = ListOffsetsPartitionResponse::default();
    r.partition_index = index;
    r.timestamp = -1;
    r.offset = -1;
    let p = match partition {
        Ok(p) => p,
        Err(code) => {
            r.error_code = *code;
            return r;
        }
    };
    let epoch = p.leader_epoch().map_or(-1, |e| e.0);
    let high_watermark = p.high_watermark().0;
    let found = match timestamp {
        LATEST => Ok(Some((-1, high_watermark, epoch))),
        EARLIEST | EARLIEST_LOCAL => Ok(Some((-1, p.log_start_offset().0, epoch))),
        LATEST_TIERED => Ok(None),
        MAX_TIMESTAMP => p
            .max_timestamp_offset()
            .map(|o| o.map(|o| (o.timestamp, o.offset, o.leader_epoch))),
        t if t >= 0 => p
            .offset_for_timestamp(t)
            .map(|o| o.map(|o| (o.timestamp, o.offset, o.leader_epoch))),
        _ => {
            r.error_code = error_code::INVALID_REQUEST;
            return r;
        }
    };
    match found {
        // A record at or above the high watermark is not visible yet.
        Ok(Some((ts, offset, epoch))) if timestamp < 0 || offset < high_watermark => {
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

fn handle_v0(broker: &Node, frame: &RequestFrame) -> Response {
    let request = match v0::decode_request(frame.body.clone()) {
        Ok(r) => r,
        Err(e) => return Response::Close(format!("malformed ListOffsets v0 request: {e}")),
    };
    let from_consumer = request.replica_id == CONSUMER_REPLICA_ID;
    let mut response = ListOffsetsV0Response::default();
    for (name, partitions) in request.topics {
        let answers = partitions
            .iter()
            .map(|p| {
                let mut answer = v0::PartitionResponse {
                    partition_index: p.partition_index,
                    error_code: error_code::NONE,
                    old_style_offsets: vec![],
                };
                match leader_partition(broker, &name, p.partition_index, -1) {
                    Err(code) => answer.error_code = code,
                    Ok(partition) => {
                        let offsets =
                            partition.legacy_offsets_before(p.timestamp, p.max_num_offsets);
                        answer.old_style_offsets = if from_consumer {
                            cap_at_high_watermark(offsets, partition.high_watermark().0)
                        } else {
                            offsets
                        };
                    }
                }
                answer
            })
            .collect();
        response.topics.push((name, answers));
    }
    let mut buf = BytesMut::new();
    begin_response(
        &mut buf,
        frame.api_key,
        frame.version(),
        frame.correlation_id(),
    );
    v0::encode_response(&response, &mut buf);
    finish_response(&mut buf, 0);
    Response::Frame(buf.freeze())
}

/// Kafka's `Partition.legacyFetchOffsetsForTimestamp` for consumers: offsets (newest first) above the high
/// watermark give way to the high watermark itself.
fn cap_at_high_watermark(offsets: Vec<i64>, high_watermark: i64) -> Vec<i64> {
    if !offsets.iter().any(|&o| o > high_watermark) {
        return offsets;
    }
    std::iter::once(high_watermark)
        .chain(offsets.into_iter().skip_while(|&o| o > high_watermark))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::cap_at_high_watermark;

    #[test]
    fn consumers_see_offsets_up_to_the_high_watermark() {
        assert_eq!(cap_at_high_watermark(vec![30, 20, 0], 30), vec![30, 20, 0]);
        assert_eq!(cap_at_high_watermark(vec![30, 20, 0], 25), vec![25, 20, 0]);
        assert_eq!(cap_at_high_watermark(vec![30, 28, 20], 25), vec![25, 20]);
        assert_eq!(cap_at_high_watermark(vec![], 25), Vec::<i64>::new());
    }
}

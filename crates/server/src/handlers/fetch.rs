//! Fetch (v0-17). Reads whole batches as file slices, which the connection sends with `sendfile(2)`.
//!
//! - v0-3 (requests through `ferrite_wire::legacy::fetch`): the client reads only magic 0 (v0-1) or magic 1
//!   (v2-3) message sets, so the batches read are down-converted in memory, at most `partition_max_bytes` per
//!   partition (always one message), and counted in the broker's metrics: no zero-copy there.
//! - Long poll: if fewer than `min_bytes` are ready, wait until a produce lands or `max_wait_ms` passes.
//! - KIP-74: the first partition with data returns at least one whole batch, whatever the byte limits.
//! - Sessions (KIP-227): the broker declines to create sessions (it answers session id 0), which tells
//!   clients to keep sending full fetches; an unknown session id gets FETCH_SESSION_ID_NOT_FOUND.
//! - `read_committed` stops at the last stable offset (the high watermark: there are no transactions yet) and
//!   lists no aborted transactions.
//! - KIP-392: from v11 a consumer may read from a follower, up to the follower's high watermark; with
//!   `replica.selector.class` set to the rack-aware selector, a leader answers a consumer that names a rack
//!   other than its own with the in-sync replica in that rack most caught up (`preferred_read_replica`, no
//!   records), and the client fetches from it.
//! - A follower's fetch (replica id, or from v15 the ReplicaState, of a broker) reads up to the log end, not
//!   the high watermark, and its fetch offset tells the leader how far the follower has the log: it is
//!   recorded before the read, so the high watermark in the answer already counts it. Its long poll waits for
//!   the next append instead of a move of the high watermark.

use super::util::{decode_versioned, replica_error_code, requested_epoch};
use super::Response;
use crate::node::{Node, Topic};
use ferrite_log::LogError;
use ferrite_replication::{NodeId, Offset, ReplicaManager};
use ferrite_wire::error_code;
use ferrite_wire::fetch_response::{
    encode_fetch_response, FetchPartition, FetchResponseBody, FetchTopic, RecordData,
};
use ferrite_wire::legacy::{fetch::message_format, message_set};
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::FetchRequest;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

const READ_COMMITTED: i8 = 1;

pub async fn handle(broker: Arc<Node>, frame: RequestFrame) -> Response {
    broker
        .metrics
        .fetch_requests
        .fetch_add(1, Ordering::Relaxed);
    let request: FetchRequest = match decode_versioned(&frame) {
        Ok(r) => r,
        Err(close) => return close,
    };
    let version = frame.version();
    if version >= 7 && request.session_id != 0 {
        let body = FetchResponseBody {
            error_code: error_code::FETCH_SESSION_ID_NOT_FOUND,
            ..Default::default()
        };
        return Response::Chunks(encode_fetch_response(
            version,
            frame.correlation_id(),
            &body,
        ));
    }
    let deadline =
        Instant::now() + Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0));
    let min_bytes = u64::try_from(request.min_bytes).unwrap_or(0);
    let replica = fetching_replica(&request, version);
    // Register with every requested partition before the first look, so no append can slip between.
    let woken = Arc::new(tokio::sync::Notify::new());
    register_interest(&broker, &request, version, replica, &woken);
    loop {
        let (body, bytes, has_error) = read(&broker, &request, version, replica);
        let now = Instant::now();
        if bytes >= min_bytes.max(1) || has_error || now >= deadline {
            return answer(&broker, &frame, &request, body).await;
        }
        // Not enough yet: sleep until one of these partitions gets data, or the deadline.
        if tokio::time::timeout(deadline - now, woken.notified())
            .await
            .is_err()
        {
            let (body, _, _) = read(&broker, &request, version, replica);
            return answer(&broker, &frame, &request, body).await;
        }
        // A wake-up empties the partition's waiter list: register again before looking again.
        register_interest(&broker, &request, version, replica, &woken);
    }
}

/// The broker a follower's fetch comes from; `None` for a consumer (replica id -1).
fn fetching_replica(request: &FetchRequest, version: i16) -> Option<NodeId> {
    let id = if version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    };
    (id >= 0).then_some(NodeId(id))
}

async fn answer(
    broker: &Arc<Node>,
    frame: &RequestFrame,
    request: &FetchRequest,
    body: FetchResponseBody,
) -> Response {
    let version = frame.version();
    let body = if version < 4 {
        let (broker, request) = (Arc::clone(broker), request.clone());
        match tokio::task::spawn_blocking(move || down_convert(&broker, &request, version, body))
            .await
        {
            Ok(body) => body,
            Err(e) => return Response::Close(format!("fetch down-conversion panicked: {e}")),
        }
    } else {
        body
    };
    Response::Chunks(encode_fetch_response(
        version,
        frame.correlation_id(),
        &body,
    ))
}

/// Fetch v0-3: each partition's batches become one in-memory message set of the version's magic.
fn down_convert(
    broker: &Node,
    request: &FetchRequest,
    version: i16,
    mut body: FetchResponseBody,
) -> FetchResponseBody {
    let magic = message_format(version);
    // The answer lists topics and partitions in request order.
    let wanted = request.topics.iter().flat_map(|t| t.partitions.iter());
    let answers = body.topics.iter_mut().flat_map(|t| t.partitions.iter_mut());
    for (wanted, answer) in wanted.zip(answers) {
        if answer.records.is_empty() {
            continue;
        }
        let mut batches = vec![];
        for r in std::mem::take(&mut answer.records) {
            let read = match r {
                RecordData::File(slice) => slice.read_to_vec(),
                RecordData::Memory(bytes) => Ok(bytes.to_vec()),
            };
            match read {
                Ok(bytes) => batches.extend_from_slice(&bytes),
                Err(e) => {
                    tracing::error!(partition = answer.partition_index, error = %e, "fetch read failed");
                    answer.error_code = error_code::KAFKA_STORAGE_ERROR;
                    batches.clear();
                    break;
                }
            }
        }
        let limit = usize::try_from(wanted.partition_max_bytes).unwrap_or(0);
        let (set, _) = message_set::down_convert(&batches, magic, wanted.fetch_offset, limit);
        let m = &broker.metrics;
        m.fetch_down_conversions.fetch_add(1, Ordering::Relaxed);
        m.fetch_down_converted_bytes
            .fetch_add(set.len() as u64, Ordering::Relaxed);
        answer.records = vec![RecordData::Memory(set.into())];
    }
    body
}

/// KIP-392 with the rack-aware selector: on a leader, for a consumer in another rack, the in-sync replica in
/// the consumer's rack that has the most of the log; `None` to serve the consumer here.
fn preferred_read_replica(
    broker: &Node,
    partition: &ferrite_replication::Partition,
    rack: &str,
) -> Option<NodeId> {
    broker.config.replication.replica_selector_class.as_ref()?;
    if broker.config.broker_rack.as_deref() == Some(rack) || partition.check_leader(None).is_err() {
        return None;
    }
    let image = broker.image();
    let record = image
        .topic(partition.topic())?
        .partitions
        .get(&partition.index())?
        .clone();
    let progress = partition.follower_progress(Instant::now());
    record
        .isr
        .iter()
        .copied()
        .filter(|n| {
            image
                .broker(*n)
                .is_some_and(|b| b.rack.as_deref() == Some(rack) && !image.is_fenced(*n))
        })
        .max_by_key(|n| {
            progress
                .iter()
                .find(|(id, _, _)| id == n)
                .and_then(|(_, end, _)| *end)
                .map_or(-1, |o| o.0)
        })
}

/// Asks every requested partition to wake `woken` when it gets data: when its high watermark moves for a
/// consumer, at its next append for a follower.
fn register_interest(
    broker: &Node,
    request: &FetchRequest,
    version: i16,
    replica: Option<NodeId>,
    woken: &Arc<tokio::sync::Notify>,
) {
    for wanted in &request.topics {
        let topic = if version >= 13 {
            broker.topic_by_id(wanted.topic_id)
        } else {
            broker.topic(&wanted.topic.0)
        };
        for p in wanted
            .partitions
            .iter()
            .filter_map(|p| broker.partition(&topic.as_ref()?.name, p.partition))
        {
            if replica.is_some() {
                p.register_append_waiter(woken);
            } else {
                p.register_waiter(woken);
            }
        }
    }
}

/// One pass over the requested partitions: the response, its record bytes, and whether any partition failed.
fn read(
    broker: &Node,
    request: &FetchRequest,
    version: i16,
    replica: Option<NodeId>,
) -> (FetchResponseBody, u64, bool) {
    let mut remaining = u64::try_from(request.max_bytes).unwrap_or(0);
    let mut total = 0u64;
    let mut has_error = false;
    let mut body = FetchResponseBody::default();
    for wanted in &request.topics {
        let topic = if version >= 13 {
            broker.topic_by_id(wanted.topic_id)
        } else {
            broker.topic(&wanted.topic.0)
        };
        let mut out = FetchTopic {
            name: topic
                .as_ref()
                .map_or_else(|| wanted.topic.0.to_string(), |t| t.name.clone()),
            topic_id: wanted.topic_id.into_bytes(),
            partitions: Vec::with_capacity(wanted.partitions.len()),
        };
        for p in &wanted.partitions {
            let min_one = total == 0;
            let client_rack =
                (version >= 11 && !request.rack_id.is_empty()).then(|| request.rack_id.as_str());
            let part = read_partition(
                broker,
                topic.as_ref(),
                p,
                ReadAs {
                    replica,
                    isolation_level: request.isolation_level,
                    version,
                    client_rack,
                },
                remaining,
                min_one,
            );
            let bytes: u64 = part.records.iter().map(RecordData::len).sum();
            has_error |= part.error_code != error_code::NONE;
            total += bytes;
            remaining = remaining.saturating_sub(bytes);
            out.partitions.push(part);
        }
        body.topics.push(out);
    }
    (body, total, has_error)
}

/// Who reads, and how.
#[derive(Clone, Copy)]
struct ReadAs<'a> {
    /// A follower (`Some`) reads to the log end; a consumer to the high watermark.
    replica: Option<NodeId>,
    isolation_level: i8,
    version: i16,
    /// A consumer's `client.rack` (Fetch v11+), for the preferred read replica.
    client_rack: Option<&'a str>,
}

fn read_partition(
    broker: &Node,
    topic: Option<&Arc<Topic>>,
    wanted: &kafka_protocol::messages::fetch_request::FetchPartition,
    how: ReadAs<'_>,
    response_budget: u64,
    min_one: bool,
) -> FetchPartition {
    let replicas: &ReplicaManager = &broker.replicas;
    let ReadAs {
        replica,
        isolation_level,
        version,
        client_rack,
    } = how;
    let mut out = FetchPartition {
        partition_index: wanted.partition,
        high_watermark: -1,
        last_stable_offset: -1,
        log_start_offset: -1,
        preferred_read_replica: -1,
        ..Default::default()
    };
    let unknown = if version >= 13 {
        error_code::UNKNOWN_TOPIC_ID
    } else {
        error_code::UNKNOWN_TOPIC_OR_PARTITION
    };
    let Some(topic) = topic else {
        out.error_code = unknown;
        return out;
    };
    let Some(partition) = replicas.partition(&topic.name, wanted.partition) else {
        // Another broker's partition: the client refreshes its metadata and goes there.
        out.error_code = if (0..topic.partition_count).contains(&wanted.partition) {
            error_code::NOT_LEADER_OR_FOLLOWER
        } else {
            error_code::UNKNOWN_TOPIC_OR_PARTITION
        };
        return out;
    };
    out.high_watermark = partition.high_watermark().0;
    out.last_stable_offset = out.high_watermark;
    out.log_start_offset = partition.log_start_offset().0;
    let epoch = requested_epoch(wanted.current_leader_epoch);
    let serving = match replica {
        // KIP-392: a consumer from v11 on may read from a follower.
        None if version >= 11 => partition.check_readable(epoch),
        _ => partition.check_leader(epoch).map(|_| ()),
    };
    if let Err(e) = serving {
        out.error_code = replica_error_code(&e);
        return out;
    }
    if let (None, Some(rack)) = (replica, client_rack) {
        if let Some(preferred) = preferred_read_replica(broker, &partition, rack) {
            out.preferred_read_replica = preferred.0;
            return out;
        }
    }
    if isolation_level == READ_COMMITTED {
        out.aborted_transactions = Some(Vec::new());
    }
    let budget = u64::try_from(wanted.partition_max_bytes)
        .unwrap_or(0)
        .min(response_budget);
    let read = match replica {
        None => partition.read(wanted.fetch_offset, budget, min_one),
        Some(node) => {
            let position = Offset(wanted.fetch_offset);
            if let Err(e) = partition.record_follower_fetch(node, position, Instant::now()) {
                out.error_code = replica_error_code(&e);
                return out;
            }
            partition.read_for_follower(wanted.fetch_offset, budget, min_one)
        }
    };
    match read {
        Ok((result, high_watermark)) => {
            out.high_watermark = high_watermark.0;
            out.last_stable_offset = high_watermark.0;
            out.records = result.slices.into_iter().map(RecordData::File).collect();
        }
        Err(LogError::OffsetOutOfRange { .. }) => out.error_code = error_code::OFFSET_OUT_OF_RANGE,
        Err(e) => {
            tracing::error!(topic = %topic.name, partition = wanted.partition, error = %e, "fetch read failed");
            out.error_code = super::util::log_error_code(&e);
        }
    }
    out
}

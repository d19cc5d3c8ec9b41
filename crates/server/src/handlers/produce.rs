//! Produce (v0-12; v0-2 through `ferrite_wire::legacy::produce`, which up-converts their magic 0/1 message
//! sets to v2 batches, counted in the broker's metrics). Two phases: every partition is appended in request
//! order when the request is read; the response then waits (concurrently with later requests) for what the
//! acks ask:
//! - in durable mode, the group-committed fsync;
//! - with acks=all, the high watermark passing the records (every in-sync replica has them), up to the
//!   request's timeout (REQUEST_TIMED_OUT). With fewer in-sync replicas than `min.insync.replicas` the
//!   partition is refused before the append (NOT_ENOUGH_REPLICAS); if the ISR shrank below it while the
//!   produce waited, it is answered NOT_ENOUGH_REPLICAS_AFTER_APPEND; if the leadership moved, the records may
//!   be lost and it is answered NOT_LEADER_OR_FOLLOWER (the client retries at the new leader).
//!
//! acks=1 answers after the leader's append. acks=0 sends no response, and closes the connection on any error
//! so the client notices (as Kafka does).
//!
//! The append runs on the connection's own task: it is validation plus a `pwritev` into the page cache (the
//! log never fsyncs inside an append, also when it rolls), and handing it to a blocking thread cost more than
//! the write (two thread wake-ups per request: a third of the broker's CPU at 1 KiB records, and 30-40% of
//! its produce throughput, measured with ferrite-bench). What does wait for the disk runs on blocking
//! threads: the durable-mode sync, the flush of a rolled segment, and a periodic flush (`flush.messages` /
//! `flush.ms`) an append made due. So does a request that must be recompressed (a topic whose
//! `compression.type` is not `producer`): that is CPU work of milliseconds per large batch.

use super::util::{
    decode, partition_error_code, replica_error_code, respond_versioned, topic_name,
    validation_error_code,
};
use super::{Dispatched, Response};
use crate::config::topic::CompressionType;
use crate::node::{Node, Partition};
use bytes::BytesMut;
use ferrite_log::batch::{self, Compression, ValidationRules};
use ferrite_log::compression::decompressed_limit;
use ferrite_log::{AppendInfo, LogError};
use ferrite_replication::{AckStatus, LeaderEpoch, Offset, ReplicaError};
use ferrite_wire::error_code;
use ferrite_wire::legacy::produce as legacy;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One partition's part of the request, after the append.
struct PartitionOutcome {
    topic: usize,
    index: i32,
    partition: Option<Arc<Partition>>,
    result: Result<AppendInfo, i16>,
    /// The leader epoch the records went in with, and the topic's `min.insync.replicas`.
    epoch: LeaderEpoch,
    min_insync: usize,
}

impl PartitionOutcome {
    /// Whether an acks=all answer must wait for this partition's high watermark.
    fn awaits_replication(&self) -> bool {
        match (&self.result, &self.partition) {
            (Ok(info), Some(p)) => p.high_watermark() <= Offset(info.last_offset),
            _ => false,
        }
    }
}

pub async fn handle(broker: &Arc<Node>, frame: RequestFrame) -> Dispatched {
    broker
        .metrics
        .produce_requests
        .fetch_add(1, Ordering::Relaxed);
    let decoded = if frame.version() <= 2 {
        // Up-conversion may decompress and recompress: CPU work, kept off the connection's task.
        let (broker, frame) = (Arc::clone(broker), frame.clone());
        tokio::task::spawn_blocking(move || decode_legacy(&broker, &frame))
            .await
            .unwrap_or_else(|e| {
                Err(Response::Close(format!(
                    "produce up-conversion panicked: {e}"
                )))
            })
    } else {
        decode(&frame)
    };
    let request: ProduceRequest = match decoded {
        Ok(r) => r,
        Err(close) => return Dispatched::Ready(close),
    };
    let acks = request.acks;
    let timeout_ms = request.timeout_ms;
    let (topics, outcomes) = if needs_recompression(broker, &request) {
        let broker = Arc::clone(broker);
        match tokio::task::spawn_blocking(move || append_all(&broker, request)).await {
            Ok(appended) => appended,
            Err(e) => {
                return Dispatched::Ready(Response::Close(format!("produce append panicked: {e}")))
            }
        }
    } else {
        append_all(broker, request)
    };
    start_due_flushes(&outcomes);
    if acks == 0 {
        let failed = outcomes.iter().find_map(|o| o.result.err());
        return Dispatched::Ready(match failed {
            Some(code) => Response::Close(format!("acks=0 produce failed with error {code}")),
            None => Response::None,
        });
    }
    let needs_sync = outcomes.iter().any(|o| o.result.is_ok() && is_durable(o));
    let needs_replication = acks == -1 && outcomes.iter().any(PartitionOutcome::awaits_replication);
    if !needs_sync && !needs_replication {
        return Dispatched::Ready(respond_versioned(
            &frame,
            &build_response(&topics, &outcomes),
        ));
    }
    let deadline = Instant::now() + Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0));
    let broker = Arc::clone(broker);
    Dispatched::Deferred(Box::pin(async move {
        let outcomes = if needs_sync {
            match tokio::task::spawn_blocking(move || wait_durable(outcomes)).await {
                Ok(outcomes) => outcomes,
                Err(e) => return Response::Close(format!("produce sync panicked: {e}")),
            }
        } else {
            outcomes
        };
        let outcomes = if acks == -1 {
            wait_replicated(&broker, outcomes, deadline).await
        } else {
            outcomes
        };
        respond_versioned(&frame, &build_response(&topics, &outcomes))
    }))
}

/// Waits until every appended partition's records are committed by its ISR (or cannot be), up to `deadline`:
/// partitions still waiting then are answered REQUEST_TIMED_OUT. Woken by moves of the high watermark and
/// changes of role.
async fn wait_replicated(
    broker: &Node,
    mut outcomes: Vec<PartitionOutcome>,
    deadline: Instant,
) -> Vec<PartitionOutcome> {
    let woken = Arc::new(tokio::sync::Notify::new());
    loop {
        let mut waiting = false;
        for o in &mut outcomes {
            let (Ok(info), Some(p)) = (&o.result, &o.partition) else {
                continue;
            };
            // Registered before looking, so a move between the look and the wait is not lost.
            p.register_waiter(&woken);
            match p.ack_status(Offset(info.last_offset + 1), o.epoch, o.min_insync) {
                AckStatus::Committed => {}
                AckStatus::Waiting => waiting = true,
                AckStatus::NotEnoughReplicasAfterAppend => {
                    broker
                        .metrics
                        .produce_not_enough_replicas
                        .fetch_add(1, Ordering::Relaxed);
                    o.result = Err(error_code::NOT_ENOUGH_REPLICAS_AFTER_APPEND);
                }
                AckStatus::NotLeader => o.result = Err(error_code::NOT_LEADER_OR_FOLLOWER),
            }
        }
        if !waiting {
            return outcomes;
        }
        let now = Instant::now();
        if now >= deadline
            || tokio::time::timeout(deadline - now, woken.notified())
                .await
                .is_err()
        {
            for o in &mut outcomes {
                if let (Ok(info), Some(p)) = (&o.result, &o.partition) {
                    if p.ack_status(Offset(info.last_offset + 1), o.epoch, o.min_insync)
                        == AckStatus::Waiting
                    {
                        o.result = Err(error_code::REQUEST_TIMED_OUT);
                    }
                }
            }
            return outcomes;
        }
    }
}

/// Whether any topic of the request rewrites batches in its own codec.
fn needs_recompression(broker: &Node, request: &ProduceRequest) -> bool {
    request.topic_data.iter().any(|t| {
        broker
            .topic(&t.name.0)
            .is_some_and(|topic| topic_codec(topic.effective.compression_type).is_some())
    })
}

/// Runs, in the background, the flushes these appends made due (after a roll, or by the periodic policy); the
/// answer does not wait for them (periodic mode promises no sync before the acknowledgement).
fn start_due_flushes(outcomes: &[PartitionOutcome]) {
    for o in outcomes {
        if let (Ok(info), Some(p)) = (&o.result, &o.partition) {
            if info.flush_due {
                let p = Arc::clone(p);
                tokio::task::spawn_blocking(move || {
                    if let Err(e) = p.run_due_flush() {
                        tracing::error!(topic = %p.topic(), partition = p.index(), error = %e, "background flush failed");
                    }
                });
            }
        }
    }
}

fn is_durable(outcome: &PartitionOutcome) -> bool {
    outcome.partition.as_ref().is_some_and(|p| p.is_durable())
}

/// Appends every partition's records, in request order. Returns topic names and per-partition outcomes.
fn append_all(broker: &Node, request: ProduceRequest) -> (Vec<String>, Vec<PartitionOutcome>) {
    let invalid_acks = !matches!(request.acks, -1..=1);
    let transactional = request.transactional_id.is_some();
    let mut topics = Vec::with_capacity(request.topic_data.len());
    let mut outcomes = Vec::new();
    for (t, topic) in request.topic_data.into_iter().enumerate() {
        let name = topic.name.0.to_string();
        let topic_state = broker.topic(&name);
        let target_codec = topic_state
            .as_ref()
            .and_then(|t| topic_codec(t.effective.compression_type));
        let min_insync = topic_state.as_ref().map_or(1, |t| {
            usize::try_from(t.effective.min_insync_replicas).unwrap_or(1)
        });
        for data in topic.partition_data {
            let leader = broker
                .replicas
                .leader_partition(&name, data.index, None)
                .map_err(|e| partition_error_code(broker, &name, data.index, &e));
            // acks=all needs min.insync.replicas in sync before anything is appended.
            let too_few_replicas = request.acks == -1
                && leader
                    .as_ref()
                    .is_ok_and(|p| p.in_sync_replicas() < min_insync);
            let mut epoch = LeaderEpoch(-1);
            let result = if invalid_acks {
                Err(error_code::INVALID_REQUIRED_ACKS)
            } else if too_few_replicas {
                broker
                    .metrics
                    .produce_not_enough_replicas
                    .fetch_add(1, Ordering::Relaxed);
                Err(error_code::NOT_ENOUGH_REPLICAS)
            } else if transactional {
                // Transactions are not supported yet (no AddPartitionsToTxn is advertised).
                Err(error_code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
            } else {
                match &leader {
                    Err(code) => Err(*code),
                    Ok(p) => append_one(p, data.records, target_codec).map(|(info, e)| {
                        epoch = e;
                        info
                    }),
                }
            };
            let partition = leader.ok();
            outcomes.push(PartitionOutcome {
                topic: t,
                index: data.index,
                partition,
                result,
                epoch,
                min_insync,
            });
        }
        topics.push(name);
    }
    (topics, outcomes)
}

/// The codec a topic's `compression.type` forces, or `None` to keep the producer's.
fn topic_codec(compression: CompressionType) -> Option<Compression> {
    Some(match compression {
        CompressionType::Producer => return None,
        CompressionType::Uncompressed => Compression::None,
        CompressionType::Gzip => Compression::Gzip,
        CompressionType::Snappy => Compression::Snappy,
        CompressionType::Lz4 => Compression::Lz4,
        CompressionType::Zstd => Compression::Zstd,
    })
}

fn append_one(
    partition: &Partition,
    records: Option<bytes::Bytes>,
    target: Option<Compression>,
) -> Result<(AppendInfo, LeaderEpoch), i16> {
    let Some(records) = records.filter(|r| !r.is_empty()) else {
        return Err(error_code::INVALID_RECORD);
    };
    let payload = match target {
        // Written straight from the request buffer: the log patches headers in copies, never the records.
        None => records,
        Some(codec) => recompressed(partition, &records, codec)?.freeze(),
    };
    partition.append_as_leader_in_epoch(payload).map_err(|e| {
        let expected = matches!(
            e,
            ReplicaError::Log(LogError::Validation(_) | LogError::Producer(_))
                | ReplicaError::NotLeader { .. }
        );
        if !expected {
            tracing::error!(topic = %partition.topic(), partition = partition.index(), error = %e, "append failed");
        }
        replica_error_code(&e)
    })
}

/// Validates the producer's batches, then rewrites them in the topic's codec (the append validates again).
fn recompressed(
    partition: &Partition,
    records: &[u8],
    codec: Compression,
) -> Result<BytesMut, i16> {
    let config = partition.config();
    let now = ferrite_log::Clock::now_ms(&ferrite_log::SystemClock);
    batch::validate_payload(records, &ValidationRules::from_config(&config), now)
        .and_then(|_| {
            let limit = decompressed_limit(config.max_message_bytes);
            batch::recompress_payload(records, codec, limit)
        })
        .map_err(|e| validation_error_code(&e))
}

/// Second phase in durable mode: one group-committed sync per partition.
fn wait_durable(mut outcomes: Vec<PartitionOutcome>) -> Vec<PartitionOutcome> {
    for outcome in &mut outcomes {
        if let (Ok(info), Some(p)) = (&outcome.result, &outcome.partition) {
            if p.is_durable() {
                if let Err(e) = p.wait_acknowledged(info) {
                    tracing::error!(topic = %p.topic(), partition = p.index(), error = %e, "durable flush failed");
                    outcome.result = Err(replica_error_code(&e));
                }
            }
        }
    }
    outcomes
}

fn build_response(topics: &[String], outcomes: &[PartitionOutcome]) -> ProduceResponse {
    let mut response = ProduceResponse::default();
    response.responses = topics
        .iter()
        .enumerate()
        .map(|(t, name)| {
            let mut topic = TopicProduceResponse::default();
            topic.name = topic_name(name);
            topic.partition_responses = outcomes
                .iter()
                .filter(|o| o.topic == t)
                .map(partition_response)
                .collect();
            topic
        })
        .collect();
    response
}

fn partition_response(outcome: &PartitionOutcome) -> PartitionProduceResponse {
    let mut r = PartitionProduceResponse::default();
    r.index = outcome.index;
    match outcome.result {
        Ok(info) => {
            r.base_offset = info.first_offset;
            r.log_append_time_ms = info.log_append_time;
            r.log_start_offset = info.log_start_offset;
        }
        Err(code) => {
            r.error_code = code;
            r.base_offset = -1;
            r.log_append_time_ms = -1;
            r.log_start_offset = outcome
                .partition
                .as_ref()
                .map_or(-1, |p| p.log_start_offset().0);
        }
    }
    r
}

/// Produce v0-2: the request with its magic 0/1 message sets up-converted to v2 batches.
fn decode_legacy(broker: &Node, frame: &RequestFrame) -> Result<ProduceRequest, Response> {
    // A topic this broker does not know gets the smallest bound; its append is refused anyway.
    let limit = |topic: &str| {
        decompressed_limit(
            broker
                .topic(topic)
                .map_or(0, |t| t.effective.log.max_message_bytes),
        )
    };
    let produce =
        legacy::decode_request(frame.body.clone(), frame.version(), limit).map_err(|e| {
            Response::Close(format!(
                "malformed Produce v{} request: {e}",
                frame.version()
            ))
        })?;
    let m = &broker.metrics;
    m.produce_up_converted_batches
        .fetch_add(produce.up_converted_batches, Ordering::Relaxed);
    m.produce_up_converted_records
        .fetch_add(produce.up_converted_records, Ordering::Relaxed);
    Ok(produce.request)
}

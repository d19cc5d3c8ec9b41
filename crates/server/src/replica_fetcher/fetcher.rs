//! One fetcher task: a connection to one leader, and the rounds it runs over the partitions it carries. A round
//! either truncates the partitions that start a new leadership (OffsetForLeaderEpoch) or fetches the others
//! (Fetch v16, the follower's broker id in the ReplicaState).

use super::connection::{ConnectionError, LeaderConnection};
use super::truncation::{truncation_offset, LocalLog};
use super::{FetchState, FetcherShared, PartitionFetch};
use crate::config::broker::ReplicationConfig;
use crate::node::Node;
use bytes::Bytes;
use ferrite_replication::{LeaderEpoch, NodeId, Offset, Partition, ReplicaError, TopicPartition};
use ferrite_wire::error_code;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

const FETCH_VERSION: i16 = 16;
const OFFSET_FOR_LEADER_EPOCH_VERSION: i16 = 4;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an answer may take beyond the fetch's own wait.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// The fetcher's loop: runs until it is stopped or the node is gone.
pub(super) async fn run(shared: Arc<FetcherShared>, node: Weak<Node>) {
    let mut connection: Option<LeaderConnection> = None;
    let mut failures = 0u32;
    while !shared.is_stopped() {
        let Some(node) = node.upgrade() else { return };
        let settings = node.config.replication.clone();
        let backoff =
            Duration::from_millis(u64::try_from(settings.fetch_backoff_ms).unwrap_or(1000));
        let due = shared.due(Instant::now());
        if due.is_empty() {
            drop(node);
            let wait = shared.next_retry().map_or(Duration::from_secs(1), |at| {
                at.saturating_duration_since(Instant::now())
            });
            let _ = tokio::time::timeout(wait, shared.changed.notified()).await;
            continue;
        }
        if connection.is_none() {
            match connect(&node, &shared).await {
                Ok(c) => connection = Some(c),
                Err(e) => {
                    failures += 1;
                    // Loud once, then quiet: a dead leader is expected until the controller fences it.
                    if failures == 1 {
                        tracing::warn!(leader = shared.id.source.0, error = %e, "replica fetcher cannot reach its leader");
                    }
                    drop(node);
                    wait_or_stop(&shared, backoff).await;
                    continue;
                }
            }
        }
        let Some(leader) = connection.as_mut() else {
            continue;
        };
        let round = if due.iter().any(|(_, p)| p.state == FetchState::Truncating) {
            truncate(&node, &shared, leader, due, backoff).await
        } else {
            fetch(&node, &shared, leader, due, &settings, backoff).await
        };
        match round {
            Ok(()) => failures = 0,
            Err(e) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(leader = shared.id.source.0, error = %e, "replica fetch failed; reconnecting");
                }
                connection = None;
                drop(node);
                wait_or_stop(&shared, backoff).await;
            }
        }
    }
    tracing::info!(
        leader = shared.id.source.0,
        index = shared.id.index,
        "replica fetcher stopped"
    );
}

async fn wait_or_stop(shared: &FetcherShared, backoff: Duration) {
    let _ = tokio::time::timeout(backoff, shared.changed.notified()).await;
}

async fn connect(node: &Node, shared: &FetcherShared) -> Result<LeaderConnection, ConnectionError> {
    let image = node.image();
    let broker = image
        .broker(shared.id.source)
        .ok_or_else(|| ConnectionError::Connect {
            addr: format!("broker {}", shared.id.source.0),
            reason: "not registered".into(),
        })?;
    let client_id = format!(
        "ferrite-replica-fetcher-{}-{}-{}",
        node.node_id(),
        shared.id.source.0,
        shared.id.index
    );
    LeaderConnection::connect(&broker.host, broker.port, client_id, CONNECT_TIMEOUT).await
}

/// The replica of `tp` if this node still follows it in `epoch`.
fn follower_replica(
    node: &Node,
    tp: &TopicPartition,
    fetch: &PartitionFetch,
) -> Option<Arc<Partition>> {
    let partition = node.replicas.partition(&tp.topic, tp.partition)?;
    (partition.check_follower().ok()? == fetch.epoch).then_some(partition)
}

/// Asks the leader where each new leadership's partitions diverge from it and cuts them there.
async fn truncate(
    node: &Node,
    shared: &FetcherShared,
    leader: &mut LeaderConnection,
    due: Vec<(TopicPartition, PartitionFetch)>,
    backoff: Duration,
) -> Result<(), ConnectionError> {
    let mut asked: BTreeMap<String, Vec<OffsetForLeaderPartition>> = BTreeMap::new();
    let mut replicas = BTreeMap::new();
    for (tp, fetch) in due
        .into_iter()
        .filter(|(_, p)| p.state == FetchState::Truncating)
    {
        let Some(partition) = follower_replica(node, &tp, &fetch) else {
            continue;
        };
        match partition.latest_epoch() {
            Some(latest) => {
                let mut p = OffsetForLeaderPartition::default();
                p.partition = tp.partition;
                p.current_leader_epoch = fetch.epoch.0;
                p.leader_epoch = latest.0;
                asked.entry(tp.topic.clone()).or_default().push(p);
                replicas.insert(tp, (partition, fetch));
            }
            None => {
                // No epochs: an empty log has nothing to cut; one without epochs (written before they
                // existed) keeps only what was committed.
                let cut = partition.high_watermark();
                let empty = partition.log_end_offset() == partition.log_start_offset();
                if !empty {
                    cut_tail(&partition, fetch.epoch, cut).await;
                }
                shared.update(&tp, fetch.epoch, |p| p.state = FetchState::Fetching);
            }
        }
    }
    if asked.is_empty() {
        return Ok(());
    }
    let mut request = OffsetForLeaderEpochRequest::default();
    request.replica_id = BrokerId(node.node_id());
    request.topics = asked
        .into_iter()
        .map(|(topic, partitions)| {
            let mut t = OffsetForLeaderTopic::default();
            t.topic = TopicName(StrBytes::from_string(topic));
            t.partitions = partitions;
            t
        })
        .collect();
    let response: OffsetForLeaderEpochResponse = leader
        .call(
            ApiKey::OffsetForLeaderEpoch,
            OFFSET_FOR_LEADER_EPOCH_VERSION,
            &request,
            ANSWER_TIMEOUT,
        )
        .await?;
    for topic in response.topics {
        for answer in topic.partitions {
            let tp = TopicPartition::new(topic.topic.0.to_string(), answer.partition);
            let Some((partition, fetch)) = replicas.get(&tp) else {
                continue;
            };
            if answer.error_code != error_code::NONE {
                tracing::debug!(topic = %tp.topic, partition = tp.partition, error = answer.error_code, "OffsetForLeaderEpoch refused; retrying");
                shared.update(&tp, fetch.epoch, |p| {
                    p.retry_at = Some(Instant::now() + backoff)
                });
                continue;
            }
            let log = partition.log();
            let local = LocalLog {
                log_start: log.log_start_offset(),
                log_end: log.log_end_offset(),
                high_watermark: partition.high_watermark().0,
            };
            let leader_end = ferrite_log::EpochEndOffset {
                epoch: answer.leader_epoch,
                end_offset: answer.end_offset,
            };
            let cut = truncation_offset(leader_end, |e| log.end_offset_for_epoch(e), local);
            if cut < local.log_end {
                tracing::info!(topic = %tp.topic, partition = tp.partition, from = local.log_end, to = cut, leader_epoch = answer.leader_epoch, leader_end = answer.end_offset, "truncating a divergent tail");
            }
            if cut_tail(partition, fetch.epoch, Offset(cut)).await {
                shared.update(&tp, fetch.epoch, |p| {
                    p.state = FetchState::Fetching;
                    p.retry_at = None;
                });
            } else {
                shared.update(&tp, fetch.epoch, |p| {
                    p.retry_at = Some(Instant::now() + backoff)
                });
            }
        }
    }
    Ok(())
}

/// Truncates on a blocking thread (truncation syncs the log), only while the replica still follows in
/// `epoch` (the leadership the answer came from); returns whether it succeeded. Called even when `offset` is
/// at or past the log end: an epoch this replica began as leader there, without records, must go.
async fn cut_tail(partition: &Arc<Partition>, epoch: LeaderEpoch, offset: Offset) -> bool {
    let p = Arc::clone(partition);
    match tokio::task::spawn_blocking(move || p.truncate_to(epoch, offset)).await {
        Ok(Ok(())) => true,
        Ok(Err(e @ ReplicaError::NotFollower { .. })) => {
            tracing::debug!(topic = %partition.topic(), partition = partition.index(), error = %e, "not truncating: the leadership moved on");
            false
        }
        Ok(Err(e)) => {
            tracing::error!(topic = %partition.topic(), partition = partition.index(), error = %e, "truncation failed");
            false
        }
        Err(e) => {
            tracing::error!(error = %e, "truncation panicked");
            false
        }
    }
}

/// One Fetch for every due partition, and what its answer says for each.
async fn fetch(
    node: &Node,
    shared: &FetcherShared,
    leader: &mut LeaderConnection,
    due: Vec<(TopicPartition, PartitionFetch)>,
    settings: &ReplicationConfig,
    backoff: Duration,
) -> Result<(), ConnectionError> {
    let mut topics: BTreeMap<uuid::Uuid, Vec<FetchPartition>> = BTreeMap::new();
    let mut replicas: BTreeMap<TopicPartition, (Arc<Partition>, PartitionFetch)> = BTreeMap::new();
    for (tp, fetch) in due {
        let Some(partition) = follower_replica(node, &tp, &fetch) else {
            continue;
        };
        let mut p = FetchPartition::default();
        p.partition = tp.partition;
        p.current_leader_epoch = fetch.epoch.0;
        p.fetch_offset = partition.log_end_offset().0;
        p.last_fetched_epoch = partition.latest_epoch().map_or(-1, |e| e.0);
        p.log_start_offset = partition.log_start_offset().0;
        p.partition_max_bytes = settings.fetch_max_bytes;
        topics.entry(fetch.topic_id).or_default().push(p);
        replicas.insert(tp, (partition, fetch));
    }
    if replicas.is_empty() {
        // Nothing this node still follows here: wait for the metadata to catch up.
        wait_or_stop(shared, backoff).await;
        return Ok(());
    }
    let image = node.image();
    let mut request = FetchRequest::default();
    request.replica_state.replica_id = BrokerId(node.node_id());
    request.replica_state.replica_epoch =
        image.broker(NodeId(node.node_id())).map_or(-1, |b| b.epoch);
    request.max_wait_ms = settings.fetch_wait_max_ms;
    request.min_bytes = settings.fetch_min_bytes;
    request.max_bytes = settings.fetch_response_max_bytes;
    request.session_epoch = -1;
    request.topics = topics
        .into_iter()
        .map(|(topic_id, partitions)| {
            let mut t = FetchTopic::default();
            t.topic_id = topic_id;
            t.partitions = partitions;
            t
        })
        .collect();
    let wait = Duration::from_millis(u64::try_from(settings.fetch_wait_max_ms).unwrap_or(0));
    let response: FetchResponse = leader
        .call(
            ApiKey::Fetch,
            FETCH_VERSION,
            &request,
            wait + ANSWER_TIMEOUT,
        )
        .await?;
    if response.error_code != error_code::NONE {
        return Err(ConnectionError::Protocol(format!(
            "fetch answered with error {}",
            response.error_code
        )));
    }
    let mut to_sync = vec![];
    for topic in response.responses {
        let Some(name) = image.topic_by_id(topic.topic_id).map(|t| t.name.clone()) else {
            continue;
        };
        for answer in topic.partitions {
            let tp = TopicPartition::new(name.clone(), answer.partition_index);
            let Some((partition, fetch)) = replicas.get(&tp) else {
                continue;
            };
            let outcome = apply_answer(node, partition, fetch.epoch, &answer).await;
            match outcome {
                Answer::Appended { sync } => {
                    if sync {
                        to_sync.push(Arc::clone(partition));
                    }
                }
                Answer::Diverged => shared.update(&tp, fetch.epoch, |p| {
                    p.state = FetchState::Truncating;
                }),
                Answer::Retry(code) => {
                    tracing::debug!(topic = %tp.topic, partition = tp.partition, error = code, "replica fetch refused; backing off");
                    shared.update(&tp, fetch.epoch, |p| {
                        p.retry_at = Some(Instant::now() + backoff)
                    });
                }
            }
        }
    }
    if !to_sync.is_empty() {
        // Durable topics: the next fetch offset tells the leader these records are synced here.
        let synced = tokio::task::spawn_blocking(move || {
            for p in to_sync {
                if let Err(e) = p.flush_to(p.log_end_offset()) {
                    tracing::error!(topic = %p.topic(), partition = p.index(), error = %e, "follower sync failed");
                }
            }
        })
        .await;
        if let Err(e) = synced {
            tracing::error!(error = %e, "follower sync panicked");
        }
    }
    Ok(())
}

/// What one partition's answer led to.
enum Answer {
    /// Records (if any) appended; `sync` when the topic is durable and something was written.
    Appended { sync: bool },
    /// This replica's log has a tail the leader does not: truncate again.
    Diverged,
    /// Refused for now (a leadership this node does not know yet, a storage error): back off.
    Retry(i16),
}

/// `epoch` is the leadership the fetch was sent in: the partition may have moved to another leader (and its
/// fetcher truncated the log for it) while this answer was on its way, and then nothing of it is applied.
async fn apply_answer(
    node: &Node,
    partition: &Arc<Partition>,
    epoch: LeaderEpoch,
    answer: &kafka_protocol::messages::fetch_response::PartitionData,
) -> Answer {
    match answer.error_code {
        error_code::NONE => {}
        error_code::OFFSET_OUT_OF_RANGE => {
            if partition.log_end_offset().0 < answer.log_start_offset {
                // Behind the leader's log start (retention or DeleteRecords there): start over from it.
                let (p, start) = (Arc::clone(partition), Offset(answer.log_start_offset));
                let restarted = tokio::task::spawn_blocking(move || {
                    p.truncate_fully_and_start_at(epoch, start)
                })
                .await;
                return match restarted {
                    Ok(Ok(())) => Answer::Appended { sync: false },
                    _ => Answer::Retry(error_code::KAFKA_STORAGE_ERROR),
                };
            }
            return Answer::Diverged;
        }
        code => return Answer::Retry(code),
    }
    let mut wrote = false;
    if let Some(records) = answer.records.as_ref().map(|r| complete_batches(r.clone())) {
        if !records.is_empty() {
            let bytes = records.len() as u64;
            match partition.append_as_follower(epoch, records) {
                Ok(info) => {
                    wrote = true;
                    node.metrics
                        .replica_fetched_bytes
                        .fetch_add(bytes, Ordering::Relaxed);
                    if info.flush_due {
                        let p = Arc::clone(partition);
                        tokio::task::spawn_blocking(move || {
                            if let Err(e) = p.run_due_flush() {
                                tracing::error!(topic = %p.topic(), partition = p.index(), error = %e, "follower flush failed");
                            }
                        });
                    }
                }
                Err(ReplicaError::NotFollower { .. }) => {
                    // The leadership moved on while the fetch was out: the answer is dropped.
                    return Answer::Retry(error_code::NOT_LEADER_OR_FOLLOWER);
                }
                Err(e) => {
                    tracing::warn!(topic = %partition.topic(), partition = partition.index(), error = %e, "appending fetched records failed; truncating again");
                    return Answer::Diverged;
                }
            }
        }
    }
    partition.update_follower_high_watermark(Offset(answer.high_watermark));
    if answer.log_start_offset > partition.log_start_offset().0 {
        if let Err(e) = partition.follow_log_start(Offset(answer.log_start_offset)) {
            tracing::warn!(topic = %partition.topic(), partition = partition.index(), error = %e, "following the leader's log start failed");
        }
    }
    Answer::Appended {
        sync: wrote && partition.is_durable(),
    }
}

/// The whole batches at the front of `records`: a leader may end an answer with part of a batch (Kafka's do
/// when the size limit cuts one; Ferrite's send whole batches), which the next fetch asks for again.
fn complete_batches(records: Bytes) -> Bytes {
    const LENGTH_END: usize = 12;
    let mut end = 0usize;
    while records.len() >= end + LENGTH_END {
        let length = i32::from_be_bytes([
            records[end + 8],
            records[end + 9],
            records[end + 10],
            records[end + 11],
        ]);
        let Some(total) = usize::try_from(length)
            .ok()
            .and_then(|l| l.checked_add(LENGTH_END))
        else {
            break;
        };
        if end + total > records.len() {
            break;
        }
        end += total;
    }
    records.slice(..end)
}

#[cfg(test)]
mod tests {
    use super::complete_batches;
    use bytes::{BufMut, Bytes, BytesMut};

    fn batch(body: usize) -> Vec<u8> {
        let mut b = BytesMut::new();
        b.put_i64(0);
        b.put_i32(i32::try_from(body).unwrap_or(0));
        b.put_bytes(7, body);
        b.to_vec()
    }

    #[test]
    fn a_trailing_partial_batch_is_dropped() {
        let mut all = batch(20);
        all.extend(batch(30));
        let whole = all.len();
        all.extend(&batch(40)[..25]);
        assert_eq!(complete_batches(Bytes::from(all)).len(), whole);
        assert!(complete_batches(Bytes::from_static(&[0, 1, 2])).is_empty());
    }
}

//! A full disk: the broker's data directory is a small tmpfs (mounted by the test, which needs root) that the
//! test fills through the broker. Produce must answer a retriable error, reads and groups keep working, and
//! produce succeeds again once space is freed.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::{Bytes, BytesMut};
use common::raw::{incremental_alter_configs, Raw};
use common::{manual_commit_consumer as consumer, topic, Broker};
use ferrite_log::batch_builder::{encode_batch, RecordSpec};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const KAFKA_STORAGE_ERROR: i16 = 56;
const TOPIC_RESOURCE: i8 = 2;
const OP_SET: i8 = 0;

/// A size-limited tmpfs mounted over a directory, unmounted on drop. Fails loudly (panics) when it cannot
/// mount: a test that needs a full disk must not pass without one.
struct TmpfsMount {
    path: Option<PathBuf>,
}

impl TmpfsMount {
    fn new() -> TmpfsMount {
        TmpfsMount { path: None }
    }

    fn mount(&mut self, path: &Path, size: &str) {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .expect("run mount(8)");
        assert!(
            status.success(),
            "mounting a {size} tmpfs on {} failed: these tests need root (they fill a small filesystem)",
            path.display()
        );
        self.path = Some(path.to_path_buf());
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = Command::new("umount").arg("-l").arg(&path).status();
        }
    }
}

/// A broker whose data directory is a fresh tmpfs of `size`. The mount is declared first so it outlives the
/// broker (locals drop in reverse order).
fn broker_on_tmpfs(size: &str, overrides: &[(&str, &str)]) -> (TmpfsMount, Broker) {
    let mut mount = TmpfsMount::new();
    let mut all = vec![("offsets.topic.num.partitions", "4")];
    all.extend_from_slice(overrides);
    let broker = Broker::start_with(&all, |dir| mount.mount(dir, size));
    (mount, broker)
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn create(raw: &mut Raw, topic: &str, configs: &[(&str, &str)]) -> i16 {
    let mut t = CreatableTopic::default();
    t.name = name(topic);
    t.num_partitions = 1;
    t.replication_factor = 1;
    for (k, v) in configs {
        let mut c =
            kafka_protocol::messages::create_topics_request::CreatableTopicConfig::default();
        c.name = StrBytes::from_string(k.to_string());
        c.value = Some(StrBytes::from_string(v.to_string()));
        t.configs.push(c);
    }
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = 5000;
    let resp: CreateTopicsResponse = raw.call(ApiKey::CreateTopics, 7, &req);
    resp.topics[0].error_code
}

fn delete(raw: &mut Raw, topic: &str) -> i16 {
    let mut t = DeleteTopicState::default();
    t.name = Some(name(topic));
    let mut req = DeleteTopicsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = 5000;
    let resp: DeleteTopicsResponse = raw.call(ApiKey::DeleteTopics, 6, &req);
    resp.responses[0].error_code
}

/// One batch of `records` records of `value_bytes` incompressible bytes each.
fn batch(records: usize, value_bytes: usize, seed: u64) -> Bytes {
    let now = ferrite_log::Clock::now_ms(&ferrite_log::SystemClock);
    let mut x = seed | 1;
    let values: Vec<Vec<u8>> = (0..records)
        .map(|_| {
            (0..value_bytes)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        })
        .collect();
    let specs: Vec<RecordSpec> = values
        .iter()
        .map(|v| RecordSpec {
            key: None,
            value: Some(v),
            headers: vec![],
            timestamp: now,
        })
        .collect();
    let mut out = BytesMut::new();
    encode_batch(&mut out, &specs, -1, None);
    out.freeze()
}

fn produce(raw: &mut Raw, topic: &str, records: Bytes) -> (i16, i64) {
    let mut p = PartitionProduceData::default();
    p.index = 0;
    p.records = Some(records);
    let mut t = TopicProduceData::default();
    t.name = name(topic);
    t.partition_data = vec![p];
    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.timeout_ms = 5000;
    req.topic_data = vec![t];
    let response: ProduceResponse = raw.call(ApiKey::Produce, 9, &req);
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// Produces 64 KiB batches until the broker refuses one, then small ones until it refuses those too (the disk
/// is then full to the last few bytes); returns the last refusal's code and the records accepted.
fn fill(raw: &mut Raw, topic: &str) -> (i16, i64) {
    let mut accepted = 0;
    for (records, value_bytes) in [(64, 1024), (1, 100)] {
        let mut refused = false;
        for i in 0..10_000u64 {
            let (code, _) = produce(raw, topic, batch(records, value_bytes, i));
            if code != 0 {
                refused = true;
                if records == 1 {
                    return (code, accepted);
                }
                break;
            }
            accepted += records as i64;
        }
        assert!(refused, "the disk never filled");
    }
    unreachable!()
}

/// Polls until `n` records of `topic` partition 0 from offset 0 have been read.
fn read_records(consumer: &BaseConsumer, topic: &str, n: i64) {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut next = 0;
    while next < n {
        assert!(Instant::now() < deadline, "read only {next} of {n} records");
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.unwrap();
            assert_eq!(message.offset(), next);
            next += 1;
        }
    }
}

/// The whole user story on a 48 MiB disk: fill it through one topic, keep reading and committing, free the
/// space by deleting that topic, and produce again.
#[test]
fn a_full_disk_refuses_produce_retriably_and_recovers_when_a_topic_is_deleted() {
    let (_mount, mut broker) = broker_on_tmpfs("48m", &[]);
    let mut raw = Raw::connect(&broker);
    let (full, other) = (topic("full"), topic("other"));
    assert_eq!(create(&mut raw, &full, &[]), 0);
    assert_eq!(create(&mut raw, &other, &[]), 0);
    assert_eq!(produce(&mut raw, &other, batch(1, 10, 7)), (0, 0));

    let (code, accepted) = fill(&mut raw, &full);
    assert_eq!(
        code, KAFKA_STORAGE_ERROR,
        "a full disk answers a retriable storage error"
    );
    assert!(accepted > 10_000, "only {accepted} records fit");
    // Still full, still the same answer, on every topic; the broker is alive and answers at once.
    assert_eq!(
        produce(&mut raw, &full, batch(64, 1024, 99)).0,
        KAFKA_STORAGE_ERROR
    );
    assert_eq!(
        produce(&mut raw, &other, batch(64, 1024, 98)).0,
        KAFKA_STORAGE_ERROR
    );

    // Metadata changes keep working: each is a record in the metadata log, on the same full disk. Enough of
    // them to use up any room left in the metadata log's last page, so the space reserve is what they use.
    for i in 0..64 {
        let retention = (3_600_000 + i).to_string();
        let edit = [("retention.ms", OP_SET, Some(retention.as_str()))];
        let (code, message) = incremental_alter_configs(&mut raw, TOPIC_RESOURCE, &other, &edit);
        assert_eq!(code, 0, "config change {i} on a full disk: {message}");
    }

    // Reads keep working, and so do consumer groups: a commit may be refused with a retriable code while the
    // disk is full, but it answers.
    let group = topic("group");
    let consumer = consumer(&broker, &group);
    read_records(&consumer, &full, 1_000);
    let mut commit = TopicPartitionList::new();
    commit
        .add_partition_offset(&other, 0, Offset::Offset(1))
        .unwrap();
    let commit_while_full = consumer.commit(&commit, CommitMode::Sync);
    eprintln!("commit while the disk is full: {commit_while_full:?}");

    // A librdkafka producer started now retries through the full disk and succeeds once space is back.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("message.timeout.ms", "30000")
        .set("acks", "all")
        .create()
        .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let other_topic = other.clone();
    let delivery = runtime.spawn(async move {
        producer
            .send(
                FutureRecord::to(&other_topic)
                    .partition(0)
                    .key("k")
                    .payload(&vec![7u8; 64 * 1024]),
                Duration::from_secs(30),
            )
            .await
            .map(|d| d.offset)
            .map_err(|(e, _)| e.to_string())
    });
    std::thread::sleep(Duration::from_secs(1));

    // The usual remedy: delete the topic that filled the disk. That needs a metadata record on the same disk.
    assert_eq!(delete(&mut raw, &full), 0, "DeleteTopics on a full disk");
    let freed = Instant::now();
    let recovered = loop {
        let (code, _) = produce(&mut raw, &other, batch(1, 10, 5));
        if code == 0 {
            break freed.elapsed();
        }
        assert_eq!(code, KAFKA_STORAGE_ERROR);
        assert!(
            freed.elapsed() < Duration::from_secs(20),
            "produce never recovered"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    eprintln!("disk-full recovery time (DeleteTopics answered -> first successful produce): {recovered:?}");
    let offset = runtime
        .block_on(delivery)
        .unwrap()
        .expect("the retried delivery succeeds");
    assert!(offset >= 1);

    // Group commits work again, and what was committed reads back.
    commit
        .add_partition_offset(&other, 0, Offset::Offset(2))
        .unwrap();
    consumer.commit(&commit, CommitMode::Sync).unwrap();
    let committed = consumer
        .committed_offsets(commit.clone(), Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        committed.find_partition(&other, 0).unwrap().offset(),
        Offset::Offset(2)
    );
    // A topic created now works: no loop re-opening it.
    let after = topic("after");
    assert_eq!(create(&mut raw, &after, &[]), 0);
    assert_eq!(produce(&mut raw, &after, batch(1, 10, 3)), (0, 0));

    // A clean shutdown says so, and a restart finds every acknowledged record.
    let other_end = produce(&mut raw, &other, batch(1, 10, 4)).1 + 1;
    drop(consumer);
    assert_eq!(broker.terminate(), Some(0));
    let log = broker.log();
    assert!(!log.contains("closing log failed"), "{log}");
    assert!(log.contains("logs closed cleanly"));
    broker.restart();
    let consumer = self::consumer(&broker, &topic("g2"));
    read_records(&consumer, &other, other_end);
}

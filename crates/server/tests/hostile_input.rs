//! Hostile clients against the real broker: compression bombs on many connections at once, and a client
//! that pipelines fetches and never reads its socket. The broker must answer or push back, stay up, serve
//! others, and keep its memory (VmHWM, the peak resident set) bounded.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::{Bytes, BytesMut};
use common::raw::Raw;
use common::{topic, Broker};
use ferrite_log::batch::{self, Compression};
use ferrite_log::batch_builder::simple_batch;
use ferrite_log::compression::{compress, decompressed_limit};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, FetchRequest, FetchResponse, ProduceRequest,
    ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use std::time::{Duration, Instant};

const MIB: u64 = 1024 * 1024;
const CORRUPT_MESSAGE: i16 = 2;
const INVALID_RECORD: i16 = 87;

/// (VmRSS, VmHWM) of a process in bytes, from /proc/<pid>/status.
fn memory(pid: i32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .unwrap()
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn create(raw: &mut Raw, name: &str) {
    let mut t = CreatableTopic::default();
    t.name = TopicName(StrBytes::from_string(name.to_string()));
    t.num_partitions = 1;
    t.replication_factor = 1;
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = 5000;
    let response: CreateTopicsResponse = raw.call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(response.topics[0].error_code, 0, "{response:?}");
}

fn produce_request(topic: &str, records: Bytes) -> ProduceRequest {
    let mut p = PartitionProduceData::default();
    p.records = Some(records);
    let mut t = TopicProduceData::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.partition_data = vec![p];
    let mut req = ProduceRequest::default();
    req.acks = 1;
    req.timeout_ms = 5000;
    req.topic_data = vec![t];
    req
}

fn produce(raw: &mut Raw, topic: &str, records: Bytes) -> i16 {
    let response: ProduceResponse = raw.call(ApiKey::Produce, 9, &produce_request(topic, records));
    response.responses[0].partition_responses[0].error_code
}

fn now() -> i64 {
    ferrite_log::Clock::now_ms(&ferrite_log::SystemClock)
}

/// A v2 batch (well-formed header, correct CRC) whose compressed body is `body`.
fn batch_around(body: &[u8], codec: Compression) -> Bytes {
    let mut b = BytesMut::from(&simple_batch(1, 1, now())[..batch::BATCH_HEADER_LEN]);
    b.extend_from_slice(body);
    let length = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&length.to_be_bytes());
    b[batch::ATTRIBUTES_POS..batch::ATTRIBUTES_POS + 2]
        .copy_from_slice(&(codec as i16).to_be_bytes());
    let crc = batch::compute_crc(&b);
    b[batch::CRC_POS..batch::CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}

fn varint_u32(mut n: u32, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Compression bombs that each claim `claimed` bytes or more, all under the default max.message.bytes:
/// gzip, lz4 and zstd streams of zeros; a raw snappy block (librdkafka's framing) and a xerial-framed one
/// (the Java client's) whose headers claim far more than their bytes hold; a xerial stream of real blocks
/// that truly decompresses past the limit.
fn bombs(claimed: usize) -> Vec<(&'static str, Bytes)> {
    let zeros = vec![0u8; claimed];
    let mut out = vec![];
    for (name, codec) in [
        ("gzip", Compression::Gzip),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ] {
        let packed = compress(codec, &zeros).unwrap();
        assert!(
            packed.len() < 1_000_000,
            "{name} bomb of {} bytes",
            packed.len()
        );
        out.push((name, batch_around(&packed, codec)));
    }
    let mut raw = vec![];
    varint_u32(u32::MAX, &mut raw);
    raw.extend_from_slice(&[0x00, b'x']);
    out.push(("snappy raw", batch_around(&raw, Compression::Snappy)));
    let mut xerial = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
    for _ in 0..64 {
        let mut block = vec![];
        varint_u32(200 << 20, &mut block);
        block.extend_from_slice(&[0x00, b'x']);
        xerial.extend_from_slice(&(block.len() as u32).to_be_bytes());
        xerial.extend_from_slice(&block);
    }
    out.push((
        "snappy xerial (lying)",
        batch_around(&xerial, Compression::Snappy),
    ));
    // Real snappy: 17 blocks of 1 MiB of zeros, past the 16 MiB limit of the default max.message.bytes.
    let mut real = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
    let block = snap::raw::Encoder::new()
        .compress_vec(&zeros[..MIB as usize])
        .unwrap();
    for _ in 0..17 {
        real.extend_from_slice(&(block.len() as u32).to_be_bytes());
        real.extend_from_slice(&block);
    }
    assert!(real.len() < 1_000_000);
    out.push((
        "snappy xerial (real)",
        batch_around(&real, Compression::Snappy),
    ));
    out
}

/// 32 connections at once each send every bomb; each is refused with CORRUPT_MESSAGE or INVALID_RECORD
/// and the broker's peak RSS grows by no more than what the limit allows: decompressions run on the
/// runtime's worker threads (one per CPU) and each may hold up to the limit (twice over while its buffer
/// doubles). Without the limit each zero bomb is materialised whole (200 MiB) and the bound is blown.
#[test]
fn compression_bombs_on_many_connections_stay_bounded() {
    const CONNECTIONS: usize = 32;
    let broker = Broker::start(&[]);
    let name = topic("bombs");
    let mut admin = Raw::connect(&broker);
    create(&mut admin, &name);
    assert_eq!(
        produce(&mut admin, &name, simple_batch(2, 10, now()).freeze()),
        0
    );
    let bombs = bombs(200 << 20);
    let (_, hwm_before) = memory(broker.pid());
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..CONNECTIONS {
            s.spawn(|| {
                let mut raw = Raw::connect(&broker);
                for (kind, bomb) in &bombs {
                    let code = produce(&mut raw, &name, bomb.clone());
                    assert!(
                        code == CORRUPT_MESSAGE || code == INVALID_RECORD,
                        "{kind} bomb answered {code}"
                    );
                }
            });
        }
    });
    let (rss_after, hwm_after) = memory(broker.pid());
    let workers = std::thread::available_parallelism().map_or(4, |n| n.get()) as u64;
    let limit = decompressed_limit(1_048_588) as u64;
    let allowed = (workers + 2) * 2 * limit + 64 * MIB;
    eprintln!(
        "bombs: {} x {CONNECTIONS} connections in {:?}; VmHWM {} MiB before, {} MiB after (growth allowed \
         {} MiB: {workers} workers); VmRSS after {} MiB",
        bombs.len(),
        started.elapsed(),
        hwm_before / MIB,
        hwm_after / MIB,
        allowed / MIB,
        rss_after / MIB
    );
    assert!(
        hwm_after <= hwm_before + allowed,
        "peak RSS grew from {} MiB to {} MiB",
        hwm_before / MIB,
        hwm_after / MIB
    );
    // Still up and serving.
    let mut raw = Raw::connect(&broker);
    assert_eq!(
        produce(&mut raw, &name, simple_batch(3, 10, now()).freeze()),
        0
    );
}

fn fetch_request(topic: &str, max_bytes: i32) -> FetchRequest {
    let mut p = FetchPartition::default();
    p.partition_max_bytes = max_bytes;
    let mut t = FetchTopic::default();
    t.topic = TopicName(StrBytes::from_string(topic.to_string()));
    t.partitions = vec![p];
    let mut req = FetchRequest::default();
    req.replica_id = kafka_protocol::messages::BrokerId(-1);
    req.max_bytes = max_bytes;
    req.max_wait_ms = 0;
    req.topics = vec![t];
    req
}

/// A client pipelines Fetch v2 (down-converted in memory) of a 4 MiB topic and never reads; the broker stops
/// reading it once its in-flight bytes pass queued.max.request.bytes.per.connection, so its RSS stays
/// bounded, while a second client produces and fetches normally.
#[test]
fn a_client_that_never_reads_cannot_grow_the_broker() {
    const PER_CONNECTION: u64 = 8 * MIB;
    let per_connection = PER_CONNECTION.to_string();
    let broker = Broker::start(&[("queued.max.request.bytes.per.connection", &per_connection)]);
    let name = topic("slow-reader");
    let mut admin = Raw::connect(&broker);
    create(&mut admin, &name);
    for _ in 0..4 {
        let batch = simple_batch(1000, 1000, now()).freeze();
        assert_eq!(produce(&mut admin, &name, batch), 0);
    }
    let (_, hwm_before) = memory(broker.pid());
    // Fetch v2 is down-converted into memory (magic 1 message sets), unlike v4+ (sendfile): each response
    // holds ~4 MiB, so without a bound the 500 queued.max.requests would hold ~2 GiB. 100,000 requests (~10 MB)
    // are more than the kernel buffers, so the hog blocks once the broker stops reading.
    let mut legacy = BytesMut::new();
    ferrite_wire::legacy::LegacyRequest::encode_legacy(
        &fetch_request(&name, 4 << 20),
        &mut legacy,
        2,
    )
    .unwrap();
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut hog = Raw::connect(&broker);
    // Never joined: once the broker stops reading, the hog's sends block (then fail when the broker exits).
    std::thread::spawn({
        let sent = std::sync::Arc::clone(&sent);
        move || {
            for _ in 0..100_000 {
                hog.send_body(ApiKey::Fetch, 2, &legacy);
                sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    std::thread::sleep(Duration::from_secs(2));
    // Meanwhile another client works normally.
    let mut other = Raw::connect(&broker);
    for _ in 0..20 {
        assert_eq!(
            produce(&mut other, &name, simple_batch(1, 10, now()).freeze()),
            0
        );
        let response: FetchResponse = other.call(ApiKey::Fetch, 12, &fetch_request(&name, 1 << 16));
        assert_eq!(response.responses[0].partitions[0].error_code, 0);
    }
    std::thread::sleep(Duration::from_secs(2));
    let (rss, hwm_after) = memory(broker.pid());
    let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        sent < 100_000,
        "the broker kept reading the hog's {sent} fetches"
    );
    let allowed = 2 * PER_CONNECTION + 64 * MIB;
    eprintln!(
        "slow reader: {sent} fetches sent before the broker stopped reading; VmHWM {} MiB before, {} MiB after (growth allowed {} MiB), VmRSS {} MiB",
        hwm_before / MIB,
        hwm_after / MIB,
        allowed / MIB,
        rss / MIB
    );
    assert!(
        hwm_after <= hwm_before + allowed,
        "peak RSS grew from {} MiB to {} MiB",
        hwm_before / MIB,
        hwm_after / MIB
    );
}

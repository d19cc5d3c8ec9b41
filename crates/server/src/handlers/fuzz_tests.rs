//! Random and mutated frames through the request decoder and dispatch, against a real broker state in a temp
//! directory: nothing may panic, and every answer is a well-formed frame or a connection close.
#![allow(clippy::unwrap_used)]

use super::{dispatch, Dispatched, Response};
use crate::config::broker::BrokerConfig;
use crate::node::metadata_store::FileMetadataStore;
use crate::node::Node;
use bytes::{BufMut, Bytes, BytesMut};
use ferrite_wire::api_table::SUPPORTED_APIS;
use ferrite_wire::legacy::{self, LegacyRequest};
use ferrite_wire::request::parse_request;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{encode_request_header_into_buffer, Encodable, StrBytes};
use proptest::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// A default-valued body of each request type: structurally valid at every version (versions older than
/// kafka-protocol encodes through `ferrite_wire::legacy`).
fn default_body(key: ApiKey, version: i16) -> Option<BytesMut> {
    macro_rules! encode {
        ($t:ty) => {{
            let mut b = BytesMut::new();
            <$t>::default().encode(&mut b, version).ok()?;
            Some(b)
        }};
    }
    // Also the old versions: the type has a `LegacyRequest` codec.
    macro_rules! encode_any {
        ($t:ty) => {{
            let mut b = BytesMut::new();
            if version < <$t as kafka_protocol::protocol::Message>::VERSIONS.min {
                LegacyRequest::encode_legacy(&<$t>::default(), &mut b, version).ok()?;
            } else {
                <$t>::default().encode(&mut b, version).ok()?;
            }
            Some(b)
        }};
    }
    match key {
        ApiKey::Produce if version <= 2 => {
            let mut b = BytesMut::new();
            legacy::produce::encode_request(&ProduceRequest::default(), &mut b, version).ok()?;
            Some(b)
        }
        ApiKey::Produce => encode!(ProduceRequest),
        ApiKey::Fetch => encode_any!(FetchRequest),
        ApiKey::ListOffsets if version == 0 => {
            let mut b = BytesMut::new();
            let request = legacy::list_offsets::ListOffsetsV0Request {
                replica_id: -1,
                topics: vec![],
            };
            legacy::list_offsets::encode_request(&request, &mut b);
            Some(b)
        }
        ApiKey::ListOffsets => encode!(ListOffsetsRequest),
        ApiKey::Metadata => encode!(MetadataRequest),
        ApiKey::ApiVersions => encode!(ApiVersionsRequest),
        ApiKey::CreateTopics => encode_any!(CreateTopicsRequest),
        ApiKey::DeleteTopics => encode_any!(DeleteTopicsRequest),
        ApiKey::InitProducerId => encode!(InitProducerIdRequest),
        ApiKey::OffsetForLeaderEpoch => encode_any!(OffsetForLeaderEpochRequest),
        ApiKey::DescribeConfigs => encode_any!(DescribeConfigsRequest),
        ApiKey::AlterConfigs => encode!(AlterConfigsRequest),
        ApiKey::IncrementalAlterConfigs => encode!(IncrementalAlterConfigsRequest),
        ApiKey::CreatePartitions => encode!(CreatePartitionsRequest),
        ApiKey::DeleteRecords => encode!(DeleteRecordsRequest),
        ApiKey::DescribeCluster => encode!(DescribeClusterRequest),
        ApiKey::DescribeLogDirs => encode_any!(DescribeLogDirsRequest),
        ApiKey::FindCoordinator => encode!(FindCoordinatorRequest),
        ApiKey::OffsetFetch => encode_any!(OffsetFetchRequest),
        ApiKey::JoinGroup => encode!(JoinGroupRequest),
        ApiKey::OffsetCommit if version <= 1 => {
            let mut b = BytesMut::new();
            let commit = legacy::offset_commit::LegacyOffsetCommit {
                request: OffsetCommitRequest::default(),
                commit_timestamps: vec![],
            };
            legacy::offset_commit::encode_request(&commit, &mut b, version).ok()?;
            Some(b)
        }
        ApiKey::OffsetCommit => encode!(OffsetCommitRequest),
        _ => None,
    }
}

fn frame(key: ApiKey, version: i16, body: &[u8]) -> Bytes {
    let mut header = RequestHeader::default();
    header.request_api_key = key as i16;
    header.request_api_version = version;
    header.correlation_id = 5;
    header.client_id = Some(StrBytes::from_static_str("fuzz"));
    let mut buf = BytesMut::new();
    encode_request_header_into_buffer(&mut buf, &header).unwrap();
    buf.put_slice(body);
    buf.freeze()
}

/// Frames worth mutating: defaults of every API and version, and a few that reach deep into handlers.
fn seeds() -> &'static Vec<Bytes> {
    static SEEDS: OnceLock<Vec<Bytes>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut seeds = vec![];
        for api in SUPPORTED_APIS {
            for version in api.min..=api.max {
                if let Some(body) = default_body(api.key, version) {
                    seeds.push(frame(api.key, version, &body));
                }
            }
        }
        let now = ferrite_log::Clock::now_ms(&ferrite_log::SystemClock);
        let mut produce = ProduceRequest::default();
        produce.acks = -1;
        let mut p = produce_request::PartitionProduceData::default();
        p.records = Some(ferrite_log::batch_builder::simple_batch(3, 20, now).freeze());
        let mut t = produce_request::TopicProduceData::default();
        t.name = TopicName(StrBytes::from_static_str("fuzz"));
        t.partition_data = vec![p];
        produce.topic_data = vec![t];
        let mut body = BytesMut::new();
        produce.encode(&mut body, 9).unwrap();
        seeds.push(frame(ApiKey::Produce, 9, &body));
        // Produce v2 with a magic 1 message set, and Fetch v2, which down-converts.
        let set =
            legacy::message_set::encode(1, 0, &[(Some(b"k"), Some(b"v"), now), (None, None, now)]);
        let mut old = produce_request::PartitionProduceData::default();
        old.records = Some(Bytes::from(set));
        let mut t = produce_request::TopicProduceData::default();
        t.name = TopicName(StrBytes::from_static_str("fuzz"));
        t.partition_data = vec![old];
        let mut v2 = ProduceRequest::default();
        v2.acks = 1;
        v2.topic_data = vec![t];
        let mut body = BytesMut::new();
        legacy::produce::encode_request(&v2, &mut body, 2).unwrap();
        seeds.push(frame(ApiKey::Produce, 2, &body));
        let mut fetch = FetchRequest::default();
        let mut ft = fetch_request::FetchTopic::default();
        ft.topic = TopicName(StrBytes::from_static_str("fuzz"));
        ft.partitions = vec![fetch_request::FetchPartition::default()];
        fetch.topics = vec![ft];
        fetch.max_bytes = 1 << 20;
        let mut body = BytesMut::new();
        fetch.encode(&mut body, 12).unwrap();
        seeds.push(frame(ApiKey::Fetch, 12, &body));
        let mut body = BytesMut::new();
        LegacyRequest::encode_legacy(&fetch, &mut body, 2).unwrap();
        seeds.push(frame(ApiKey::Fetch, 2, &body));
        seeds
    })
}

struct Harness {
    runtime: tokio::runtime::Runtime,
    broker: Arc<Node>,
    _dir: tempfile::TempDir,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let config = BrokerConfig {
            log_dirs: vec![dir.path().to_path_buf()],
            auto_create_topics_enable: false,
            ..BrokerConfig::default()
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let broker = {
            let _context = runtime.enter();
            Node::open(config, Box::new(FileMetadataStore::new(dir.path()))).unwrap()
        };
        broker
            .create_topic("fuzz", 2, 1, Default::default())
            .unwrap();
        Harness {
            runtime,
            broker,
            _dir: dir,
        }
    })
}

static CASES: AtomicU64 = AtomicU64::new(0);
static ANSWERED: AtomicU64 = AtomicU64::new(0);
static DISPATCHED: AtomicU64 = AtomicU64::new(0);

/// Runs one frame through decode and dispatch; fails on a panic or a malformed answer.
fn exercise(frame: Bytes) -> Result<(), TestCaseError> {
    CASES.fetch_add(1, Ordering::Relaxed);
    let Ok(parsed) = parse_request(frame) else {
        return Ok(());
    };
    DISPATCHED.fetch_add(1, Ordering::Relaxed);
    let h = harness();
    let response = h.runtime.block_on(async {
        match dispatch(&h.broker, parsed, super::Client { peer: None }).await {
            Dispatched::Ready(r) => Some(r),
            Dispatched::Deferred(f) => tokio::time::timeout(Duration::from_millis(20), f)
                .await
                .ok(),
        }
    });
    match response {
        Some(Response::Close(reason)) => {
            prop_assert!(!reason.contains("panicked"), "handler panicked: {reason}")
        }
        Some(Response::Frame(bytes)) => {
            ANSWERED.fetch_add(1, Ordering::Relaxed);
            prop_assert_eq!(
                i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize,
                bytes.len() - 4
            );
        }
        Some(Response::Chunks(chunks)) => {
            ANSWERED.fetch_add(1, Ordering::Relaxed);
            let total = ferrite_wire::fetch_response::chunks_len(&chunks);
            let Some(ferrite_wire::fetch_response::Chunk::Memory(first)) = chunks.first() else {
                return Err(TestCaseError::fail(
                    "fetch response must start with framing",
                ));
            };
            prop_assert_eq!(
                i32::from_be_bytes([first[0], first[1], first[2], first[3]]) as u64,
                total - 4
            );
        }
        Some(Response::None) | None => {}
    }
    Ok(())
}

/// Cases per run; `FERRITE_FUZZ_CASES` raises it for a longer local soak.
fn cases(default: u32) -> u32 {
    std::env::var("FERRITE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run<S: Strategy>(name: &str, cases: u32, strategy: S, to_frame: impl Fn(S::Value) -> Bytes) {
    let config = ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let (before, answered_before) = (
        CASES.load(Ordering::Relaxed),
        ANSWERED.load(Ordering::Relaxed),
    );
    let dispatched_before = DISPATCHED.load(Ordering::Relaxed);
    let result = runner.run(&strategy, |value| exercise(to_frame(value)));
    let ran = CASES.load(Ordering::Relaxed) - before;
    let dispatched = DISPATCHED.load(Ordering::Relaxed) - dispatched_before;
    let answered = ANSWERED.load(Ordering::Relaxed) - answered_before;
    eprintln!(
        "{name}: {ran} frames, {dispatched} reached dispatch, {answered} answered with a response"
    );
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    assert!(
        dispatched * 4 >= ran,
        "{name}: too few frames got past the header ({dispatched} of {ran})"
    );
}

#[test]
fn mutated_valid_frames() {
    let strategy = (
        any::<prop::sample::Index>(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        any::<prop::sample::Index>(),
        prop::bool::weighted(0.3),
    );
    run(
        "mutated valid frames",
        cases(6000),
        strategy,
        |(seed, edits, cut, truncate)| {
            let seeds = seeds();
            let mut bytes = seeds[seed.index(seeds.len())].to_vec();
            // Mutate the body, not the 4-byte key/version prefix most of the time, so dispatch is reached.
            for (at, value) in edits {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            if truncate {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            Bytes::from(bytes)
        },
    );
}

#[test]
fn random_bodies_for_every_api() {
    let strategy = (
        any::<prop::sample::Index>(),
        prop::collection::vec(any::<u8>(), 0..200),
    );
    run("random bodies", cases(4000), strategy, |(api, body)| {
        let api = SUPPORTED_APIS[api.index(SUPPORTED_APIS.len())];
        let version = api.min + (body.len() as i16 % (api.max - api.min + 1));
        frame(api.key, version, &body)
    });
}

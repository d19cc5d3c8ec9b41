//! Protocol-level behaviour through a raw client (kafka-protocol encoding over a TCP socket), for what client
//! libraries cannot easily provoke: retried idempotent batches, acks=0, pipelining, hostile frames.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use common::raw::Raw;
use common::{topic, Broker};
use ferrite_log::batch_builder::{encode_batch, ProducerIdentity, RecordSpec};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, InitProducerIdRequest,
    InitProducerIdResponse, MetadataRequest, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use std::time::Duration;

fn create(raw: &mut Raw, name: &str) {
    let mut t = CreatableTopic::default();
    t.name = TopicName(StrBytes::from_string(name.to_string()));
    t.num_partitions = 1;
    t.replication_factor = 1;
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = 5000;
    let _: kafka_protocol::messages::CreateTopicsResponse = raw.call(ApiKey::CreateTopics, 7, &req);
}

fn produce_request(topic: &str, acks: i16, records: Bytes) -> ProduceRequest {
    let mut p = PartitionProduceData::default();
    p.index = 0;
    p.records = Some(records);
    let mut t = TopicProduceData::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.partition_data = vec![p];
    let mut req = ProduceRequest::default();
    req.acks = acks;
    req.timeout_ms = 5000;
    req.topic_data = vec![t];
    req
}

fn batch(producer: Option<ProducerIdentity>, value: &str) -> Bytes {
    let now = ferrite_log::Clock::now_ms(&ferrite_log::SystemClock);
    let records = [RecordSpec {
        key: Some(b"k"),
        value: Some(value.as_bytes()),
        headers: vec![],
        timestamp: now,
    }];
    let mut out = BytesMut::new();
    encode_batch(&mut out, &records, -1, producer);
    out.freeze()
}

fn produce(raw: &mut Raw, topic: &str, records: Bytes) -> (i16, i64) {
    let response: ProduceResponse =
        raw.call(ApiKey::Produce, 9, &produce_request(topic, -1, records));
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

#[test]
fn idempotent_retries_are_deduplicated_across_kill9() {
    let mut broker = Broker::start(&[]);
    let t = topic("idem");
    let mut raw = Raw::connect(&broker);
    create(&mut raw, &t);
    let mut init_request = InitProducerIdRequest::default();
    init_request.transactional_id = None; // an idempotent, non-transactional producer
    init_request.producer_id = kafka_protocol::messages::ProducerId(-1);
    init_request.producer_epoch = -1;
    let init: InitProducerIdResponse = raw.call(ApiKey::InitProducerId, 4, &init_request);
    assert_eq!(init.error_code, 0);
    let identity = |seq| {
        Some(ProducerIdentity {
            producer_id: init.producer_id.0,
            producer_epoch: init.producer_epoch,
            base_sequence: seq,
        })
    };
    assert_eq!(produce(&mut raw, &t, batch(identity(0), "a")), (0, 0));
    assert_eq!(produce(&mut raw, &t, batch(identity(1), "b")), (0, 1));
    assert_eq!(
        produce(&mut raw, &t, batch(identity(0), "a")),
        (0, 0),
        "retry answers the original offset"
    );
    assert_eq!(
        produce(&mut raw, &t, batch(identity(5), "x")).0,
        45,
        "OUT_OF_ORDER_SEQUENCE_NUMBER"
    );
    broker.kill9();
    broker.restart();
    let mut raw = Raw::connect(&broker);
    assert_eq!(
        produce(&mut raw, &t, batch(identity(1), "b")),
        (0, 1),
        "still a duplicate after kill -9"
    );
    assert_eq!(produce(&mut raw, &t, batch(identity(2), "c")), (0, 2));
    let stale = Some(ProducerIdentity {
        producer_id: init.producer_id.0,
        producer_epoch: init.producer_epoch - 1,
        base_sequence: 3,
    });
    assert_eq!(
        produce(&mut raw, &t, batch(stale, "d")).0,
        47,
        "INVALID_PRODUCER_EPOCH"
    );
}

#[test]
fn acks_zero_gets_no_response_and_pipelined_responses_keep_order() {
    let broker = Broker::start(&[]);
    let t = topic("pipeline");
    let mut raw = Raw::connect(&broker);
    create(&mut raw, &t);
    // Many requests written back to back before reading anything.
    let mut expected = vec![];
    for i in 0..30 {
        if i % 3 == 0 {
            raw.send(
                ApiKey::Produce,
                9,
                &produce_request(&t, 0, batch(None, "fire and forget")),
            );
        } else if i % 3 == 1 {
            expected.push(raw.send(
                ApiKey::Produce,
                9,
                &produce_request(&t, 1, batch(None, "acked")),
            ));
        } else {
            expected.push(raw.send(ApiKey::Metadata, 12, &MetadataRequest::default()));
        }
    }
    let got: Vec<i32> = expected.iter().map(|_| raw.receive().unwrap().0).collect();
    assert_eq!(
        got, expected,
        "only acked requests answer, in request order"
    );
}

#[test]
fn api_versions_fallback_and_v0_header() {
    let broker = Broker::start(&[]);
    let mut raw = Raw::connect(&broker);
    // v3 response: header v0 (no tagged-field byte), body decodes at v3.
    let id = raw.send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    let (got, mut body) = raw.receive().unwrap();
    assert_eq!(got, id);
    let response = ApiVersionsResponse::decode(&mut body, 3).unwrap();
    assert_eq!(response.error_code, 0);
    // Fetch 0-17: v0-3 serve old clients with converted message sets.
    assert!(response
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::Fetch as i16 && k.min_version == 0 && k.max_version == 17));
    assert!(
        !body.has_remaining(),
        "no stray bytes: default tagged fields are omitted"
    );
    // An unknown future version: a v0 body with UNSUPPORTED_VERSION and the ranges.
    // Written by hand: a future version no library can encode. Header v2: key, version, id, client id, tags.
    let mut frame = BytesMut::new();
    frame.put_i16(ApiKey::ApiVersions as i16);
    frame.put_i16(42);
    frame.put_i32(777);
    frame.put_i16(3);
    frame.put_slice(b"raw");
    frame.put_u8(0);
    frame.put_slice(&[9, 9, 9]); // a body in a format from the future
    let mut sized = BytesMut::new();
    sized.put_i32(frame.len() as i32);
    sized.extend_from_slice(&frame);
    raw.send_raw(&sized);
    let (got, mut body) = raw.receive().unwrap();
    assert_eq!(got, 777);
    let response = ApiVersionsResponse::decode(&mut body, 0).unwrap();
    assert_eq!(response.error_code, 35);
    assert!(!response.api_keys.is_empty());
}

#[test]
fn hostile_frames_close_only_their_connection() {
    let broker = Broker::start(&[("socket.request.max.bytes", "1048576")]);
    let mut healthy = Raw::connect(&broker);
    let check = |raw: &mut Raw| {
        let r: ApiVersionsResponse =
            raw.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
        assert_eq!(r.error_code, 0);
    };
    check(&mut healthy);
    let hostile: Vec<Vec<u8>> = vec![
        vec![0x7f, 0xff, 0xff, 0xff],                          // 2 GiB frame
        vec![0xff, 0xff, 0xff, 0xfe],                          // negative size
        vec![0, 0, 0, 8, 0x7f, 0x7f, 0, 0, 0, 0, 0, 1],        // unknown API key
        vec![0, 0, 0, 8, 0, 3, 0, 99, 0, 0, 0, 1],             // Metadata v99
        vec![0, 0, 0, 10, 0, 3, 0, 1, 0, 0, 0, 1, 0x7f, 0xff], // client id longer than the frame
        [
            vec![0, 0, 0, 20, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0],
            vec![0xff; 12],
        ]
        .concat(), // garbage produce body
        vec![0, 0, 0, 1, 9],                                   // frame too short for a header
    ];
    for bytes in &hostile {
        let mut raw = Raw::connect(&broker);
        raw.send_raw(bytes);
        let outcome = raw.receive();
        assert!(
            outcome.is_err(),
            "{bytes:?} should close the connection, got {outcome:?}"
        );
        check(&mut healthy);
    }
    assert!(
        broker.log().contains("closing connection"),
        "each closed connection is logged"
    );
}

#[test]
fn bad_settings_stop_the_broker_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    for (args, named) in [
        (vec!["--override", "no.such.setting=1"], "no.such.setting"),
        (vec!["--override", "num.partitions=-3"], "num.partitions"),
        (
            vec!["--override", "log.retention.hours=soon"],
            "log.retention.hours",
        ),
        (vec!["--listeners", "SSL://127.0.0.1:0"], "listeners"),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_ferrite"))
            .args(&args)
            .arg("--log-dirs")
            .arg(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(named),
            "{args:?} should name {named}: {stderr}"
        );
    }
    // An unknown FERRITE_* variable is an unknown setting too.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ferrite"))
        .env("FERRITE_LOG_RETENTION_HOUR", "1")
        .arg("--log-dirs")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("FERRITE_LOG_RETENTION_HOUR"));
}

/// Runs `ferrite` with `args` and returns (exit code, stderr) once it exits; a broker still running after 20 s
/// is killed and reported as having started.
fn run_to_exit(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ferrite"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            let output = child.wait_with_output().unwrap();
            panic!(
                "ferrite {args:?} started and kept running; stderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Two brokers on one log directory would overwrite each other's acknowledged records: the second one must
/// refuse to start, naming the directory and the process that holds it, and the first goes on unharmed.
#[test]
fn a_second_broker_on_the_same_log_dirs_refuses_to_start() {
    let mut broker = Broker::start(&[]);
    let mut raw = Raw::connect(&broker);
    let name = topic("locked");
    create(&mut raw, &name);
    assert_eq!(produce(&mut raw, &name, batch(None, "first")), (0, 0));

    let data_dir = broker.data_dir().as_os_str().to_owned();
    let args = [
        std::ffi::OsStr::new("--listeners"),
        std::ffi::OsStr::new("127.0.0.1:0"),
        std::ffi::OsStr::new("--log-dirs"),
        &data_dir,
    ];
    let (code, stderr) = run_to_exit(&args);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&*broker.data_dir().to_string_lossy()) && stderr.contains("in use"),
        "names the directory: {stderr}"
    );
    assert!(
        stderr.contains(&format!("process {}", broker.pid())),
        "names the holder: {stderr}"
    );

    assert_eq!(produce(&mut raw, &name, batch(None, "second")), (0, 1));
    broker.kill9();
    broker.restart();
    let mut raw = Raw::connect(&broker);
    assert_eq!(
        produce(&mut raw, &name, batch(None, "third")),
        (0, 2),
        "the first broker's records are all there after a restart"
    );
}

#[test]
fn log_dirs_naming_a_file_says_it_is_not_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let args = [
        std::ffi::OsStr::new("--listeners"),
        std::ffi::OsStr::new("127.0.0.1:0"),
        std::ffi::OsStr::new("--log-dirs"),
        file.as_os_str(),
    ];
    let (code, stderr) = run_to_exit(&args);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("is not a directory") && stderr.contains(&*file.to_string_lossy()),
        "{stderr}"
    );
}

#[test]
fn acks_all_needs_min_insync_replicas() {
    use kafka_protocol::messages::create_topics_request::CreatableTopicConfig;
    let broker = Broker::start(&[]);
    let mut raw = Raw::connect(&broker);
    let t = topic("min-isr");
    let mut topic = CreatableTopic::default();
    topic.name = TopicName(StrBytes::from_string(t.clone()));
    topic.num_partitions = 1;
    topic.replication_factor = 1;
    let mut config = CreatableTopicConfig::default();
    config.name = StrBytes::from_static_str("min.insync.replicas");
    config.value = Some(StrBytes::from_static_str("2"));
    topic.configs = vec![config];
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![topic];
    let _: kafka_protocol::messages::CreateTopicsResponse = raw.call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(
        produce(&mut raw, &t, batch(None, "x")).0,
        19,
        "NOT_ENOUGH_REPLICAS for acks=all"
    );
    let response: ProduceResponse = raw.call(
        ApiKey::Produce,
        9,
        &produce_request(&t, 1, batch(None, "y")),
    );
    assert_eq!(
        response.responses[0].partition_responses[0].error_code, 0,
        "acks=1 does not need the ISR"
    );
}

fn new_topic(name: &str, partitions: i32, configs: &[(&str, &str)]) -> CreatableTopic {
    use kafka_protocol::messages::create_topics_request::CreatableTopicConfig;
    let mut topic = CreatableTopic::default();
    topic.name = TopicName(StrBytes::from_string(name.to_string()));
    topic.num_partitions = partitions;
    topic.replication_factor = 1;
    topic.configs = configs
        .iter()
        .map(|(k, v)| {
            let mut c = CreatableTopicConfig::default();
            c.name = StrBytes::from_string(k.to_string());
            c.value = Some(StrBytes::from_string(v.to_string()));
            c
        })
        .collect();
    topic
}

fn metadata_topics(raw: &mut Raw) -> Vec<String> {
    let mut req = MetadataRequest::default();
    req.topics = None;
    let r: kafka_protocol::messages::MetadataResponse = raw.call(ApiKey::Metadata, 12, &req);
    r.topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
        .collect()
}

#[test]
fn admin_apis_validate_only_delete_by_id_incremental_alter_cluster_and_log_dirs() {
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    use kafka_protocol::messages::*;
    let broker = Broker::start(&[("auto.create.topics.enable", "false")]);
    let mut raw = Raw::connect(&broker);
    let t = topic("admin-raw");

    // validate_only checks everything and creates nothing.
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![new_topic(&t, 3, &[("retention.ms", "1000")])];
    req.validate_only = true;
    let r: CreateTopicsResponse = raw.call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(r.topics[0].error_code, 0);
    assert!(
        !metadata_topics(&mut raw).contains(&t),
        "validate_only must not create"
    );
    req.topics = vec![new_topic(&t, 3, &[("retention.ms", "not a number")])];
    let r: CreateTopicsResponse = raw.call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(r.topics[0].error_code, 40, "INVALID_CONFIG");
    req.validate_only = false;
    req.topics = vec![new_topic(&t, 3, &[("retention.ms", "1000")])];
    let r: CreateTopicsResponse = raw.call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(r.topics[0].error_code, 0);
    let topic_id = r.topics[0].topic_id;
    assert!(!topic_id.is_nil());

    // IncrementalAlterConfigs: SET and DELETE, visible in DescribeConfigs with the right sources.
    let mut set = AlterableConfig::default();
    set.name = StrBytes::from_static_str("segment.bytes");
    set.config_operation = 0;
    set.value = Some(StrBytes::from_static_str("2048"));
    let mut delete = AlterableConfig::default();
    delete.name = StrBytes::from_static_str("retention.ms");
    delete.config_operation = 1;
    let mut resource = AlterConfigsResource::default();
    resource.resource_type = 2;
    resource.resource_name = StrBytes::from_string(t.clone());
    resource.configs = vec![set, delete];
    let mut alter = IncrementalAlterConfigsRequest::default();
    alter.resources = vec![resource];
    let r: IncrementalAlterConfigsResponse = raw.call(ApiKey::IncrementalAlterConfigs, 1, &alter);
    assert_eq!(
        r.responses[0].error_code, 0,
        "{:?}",
        r.responses[0].error_message
    );
    let mut describe = DescribeConfigsRequest::default();
    let mut res = describe_configs_request::DescribeConfigsResource::default();
    res.resource_type = 2;
    res.resource_name = StrBytes::from_string(t.clone());
    describe.resources = vec![res];
    describe.include_synonyms = true;
    let r: DescribeConfigsResponse = raw.call(ApiKey::DescribeConfigs, 4, &describe);
    let find = |name: &str| {
        r.results[0]
            .configs
            .iter()
            .find(|c| c.name.as_str() == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        (
            find("segment.bytes").value.unwrap().as_str(),
            find("segment.bytes").config_source
        ),
        ("2048", 1)
    );
    assert_eq!(
        (
            find("retention.ms").value.unwrap().as_str(),
            find("retention.ms").config_source
        ),
        ("604800000", 5)
    );
    // Applied live: small segments now roll.
    for i in 0..40 {
        assert_eq!(
            produce(
                &mut raw,
                &t,
                batch(None, &format!("record {i} {}", "x".repeat(100)))
            )
            .0,
            0
        );
    }
    let segments = std::fs::read_dir(broker.data_dir().join(format!("{t}-0")))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".log")
        })
        .count();
    assert!(
        segments > 1,
        "segment.bytes=2048 applied to the running partition ({segments} segments)"
    );

    // DescribeCluster and DescribeLogDirs.
    let r: DescribeClusterResponse = raw.call(
        ApiKey::DescribeCluster,
        1,
        &DescribeClusterRequest::default(),
    );
    assert_eq!(
        (r.error_code, r.brokers.len(), r.controller_id.0),
        (0, 1, 1)
    );
    assert_eq!(
        format!("{}:{}", r.brokers[0].host.as_str(), r.brokers[0].port),
        broker.addr
    );
    let mut dirs = DescribeLogDirsRequest::default();
    dirs.topics = None;
    let r: DescribeLogDirsResponse = raw.call(ApiKey::DescribeLogDirs, 4, &dirs);
    let dir = &r.results[0];
    assert!(dir.total_bytes > 0 && dir.usable_bytes > 0);
    let described = dir.topics.iter().find(|x| x.name.0.as_str() == t).unwrap();
    assert_eq!(described.partitions.len(), 3);
    assert!(described.partitions.iter().any(|p| p.partition_size > 4000));

    // DeleteTopics by topic id (v6): the data goes too.
    let mut del = DeleteTopicsRequest::default();
    let mut state = DeleteTopicState::default();
    state.name = None;
    state.topic_id = topic_id;
    del.topics = vec![state];
    let r: DeleteTopicsResponse = raw.call(ApiKey::DeleteTopics, 6, &del);
    assert_eq!(r.responses[0].error_code, 0);
    assert_eq!(
        r.responses[0].name.as_ref().map(|n| n.0.to_string()),
        Some(t.clone())
    );
    assert!(!metadata_topics(&mut raw).contains(&t));
    assert!(!broker.data_dir().join(format!("{t}-0")).exists());
    let r: DeleteTopicsResponse = raw.call(ApiKey::DeleteTopics, 6, &del);
    assert_eq!(r.responses[0].error_code, 100, "UNKNOWN_TOPIC_ID");
}

#[test]
fn a_long_poll_on_one_connection_does_not_delay_others() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::FetchRequest;
    let broker = Broker::start(&[]);
    let t = topic("longpoll");
    let mut admin = Raw::connect(&broker);
    create(&mut admin, &t);
    let mut poller = Raw::connect(&broker);
    let mut fetch = FetchRequest::default();
    fetch.max_wait_ms = 5000;
    fetch.min_bytes = 1;
    fetch.max_bytes = 1 << 20;
    fetch.session_epoch = -1;
    let mut ft = FetchTopic::default();
    ft.topic = TopicName(StrBytes::from_string(t.clone()));
    let mut fp = FetchPartition::default();
    fp.partition_max_bytes = 1 << 20;
    ft.partitions = vec![fp];
    fetch.topics = vec![ft];
    // A produce to another topic does not answer this poll early: it waits out its max_wait_ms.
    let other = topic("longpoll-other");
    create(&mut admin, &other);
    fetch.max_wait_ms = 1000;
    let started = std::time::Instant::now();
    let quiet_id = poller.send(ApiKey::Fetch, 12, &fetch);
    assert_eq!(produce(&mut admin, &other, batch(None, "elsewhere")).0, 0);
    assert_eq!(poller.receive().unwrap().0, quiet_id);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "woken by an unrelated partition"
    );
    fetch.max_wait_ms = 5000;
    let started = std::time::Instant::now();
    let poll_id = poller.send(ApiKey::Fetch, 12, &fetch);
    // Meanwhile another connection is served at once, and its produce wakes the poll.
    let _: kafka_protocol::messages::MetadataResponse =
        admin.call(ApiKey::Metadata, 12, &MetadataRequest::default());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "other connections are not blocked by the long poll"
    );
    assert_eq!(produce(&mut admin, &t, batch(None, "wake up")).0, 0);
    let (id, _) = poller.receive().unwrap();
    assert_eq!(id, poll_id);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the produce woke the long poll before max_wait_ms"
    );
}

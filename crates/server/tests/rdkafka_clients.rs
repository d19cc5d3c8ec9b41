//! The rdkafka crate (librdkafka) against the real `ferrite` binary.
#![allow(clippy::unwrap_used)]

mod common;

use common::{topic, Broker};
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(20);

fn producer(broker: &Broker, extra: &[(&str, &str)]) -> FutureProducer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &broker.addr)
        .set("message.timeout.ms", "20000")
        .set("acks", "all");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    config.create().unwrap()
}

fn consumer(broker: &Broker, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &broker.addr)
        .set("group.id", "unused-assign-only")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    config.create().unwrap()
}

fn admin(broker: &Broker) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .create()
        .unwrap()
}

async fn create_topic(broker: &Broker, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let mut new = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        new = new.set(k, v);
    }
    let results = admin(broker)
        .create_topics(&[new], &AdminOptions::new())
        .await
        .unwrap();
    for r in results {
        r.unwrap_or_else(|e| panic!("create {name}: {e:?}\n{}", broker.log()));
    }
}

type HeaderList = Vec<(String, Vec<u8>)>;

fn owned_headers(headers: &HeaderList) -> OwnedHeaders {
    headers.iter().fold(OwnedHeaders::new(), |h, (k, v)| {
        h.insert(Header {
            key: k,
            value: Some(v),
        })
    })
}

/// (key, value, headers) of a test record.
fn record_parts(i: usize) -> (String, Vec<u8>, HeaderList) {
    let value: Vec<u8> = (0..(i * 37) % 500).map(|j| (i + j) as u8).collect();
    (
        format!("key-{i}"),
        value,
        vec![
            ("n".to_string(), i.to_string().into_bytes()),
            ("empty".to_string(), vec![]),
        ],
    )
}

async fn produce_n(producer: &FutureProducer, topic: &str, partition: i32, n: usize) -> Vec<i64> {
    let mut offsets = vec![];
    for i in 0..n {
        let (key, value, headers) = record_parts(i);
        let h = owned_headers(&headers);
        let record = FutureRecord::to(topic)
            .partition(partition)
            .key(&key)
            .payload(&value)
            .headers(h);
        let delivery = producer
            .send(record, TIMEOUT)
            .await
            .map_err(|(e, _)| e)
            .unwrap();
        assert_eq!(delivery.partition, partition);
        offsets.push(delivery.offset);
    }
    offsets
}

/// Reads `n` messages from `partition` starting at `offset`, checking each against `record_parts`.
fn consume_and_check(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    offset: Offset,
    first_index: usize,
    n: usize,
) {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, offset).unwrap();
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let mut seen = 0;
    while seen < n {
        assert!(
            Instant::now() < deadline,
            "only {seen} of {n} messages arrived"
        );
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.unwrap();
        let i = first_index + seen;
        let (key, value, headers) = record_parts(i);
        assert_eq!(message.offset(), i as i64, "offsets in order");
        assert_eq!(message.key(), Some(key.as_bytes()));
        assert_eq!(
            message.payload().unwrap_or(&[]),
            &value[..],
            "value of record {i}"
        );
        let got: HeaderList = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_string(), h.value.unwrap_or(&[]).to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(got, headers);
        seen += 1;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn acks_all_produce_then_assign_and_seek() {
    let broker = Broker::start(&[]);
    let t = topic("roundtrip");
    create_topic(&broker, &t, 3, &[]).await;
    let offsets = produce_n(&producer(&broker, &[]), &t, 1, 100).await;
    assert_eq!(offsets, (0..100).collect::<Vec<i64>>());
    let consumer = consumer(&broker, &[]);
    consume_and_check(&consumer, &t, 1, Offset::Beginning, 0, 100);
    // Seek: a fresh assignment at offset 57 starts exactly there.
    consume_and_check(&consumer, &t, 1, Offset::Offset(57), 57, 43);
    let (low, high) = consumer.fetch_watermarks(&t, 1, TIMEOUT).unwrap();
    assert_eq!((low, high), (0, 100));
    assert_eq!(consumer.fetch_watermarks(&t, 0, TIMEOUT).unwrap(), (0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotent_producer_round_trip() {
    let broker = Broker::start(&[]);
    let t = topic("idempotent");
    create_topic(&broker, &t, 1, &[]).await;
    let producer = producer(
        &broker,
        &[("enable.idempotence", "true"), ("linger.ms", "5")],
    );
    let offsets = produce_n(&producer, &t, 0, 200).await;
    assert_eq!(offsets, (0..200).collect::<Vec<i64>>());
    consume_and_check(&consumer(&broker, &[]), &t, 0, Offset::Beginning, 0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_compression_codec_round_trips() {
    let broker = Broker::start(&[]);
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let t = topic(codec);
        create_topic(&broker, &t, 1, &[]).await;
        let producer = producer(
            &broker,
            &[
                ("compression.codec", codec),
                ("linger.ms", "20"),
                ("batch.num.messages", "50"),
            ],
        );
        // Enqueue every record before waiting, so they share (compressible) batches.
        let mut deliveries = Vec::new();
        for i in 0..150 {
            let (key, value, headers) = record_parts(i);
            let h = owned_headers(&headers);
            let record = FutureRecord::to(&t)
                .partition(0)
                .key(&key)
                .payload(&value)
                .headers(h);
            deliveries.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
        }
        let mut results = Vec::new();
        for d in deliveries {
            results.push(d.await.unwrap().map_err(|(e, _)| e));
        }
        let mut offsets: Vec<i64> = results.into_iter().map(|r| r.unwrap().offset).collect();
        offsets.sort_unstable();
        assert_eq!(offsets, (0..150).collect::<Vec<i64>>(), "{codec}");
        consume_and_check(&consumer(&broker, &[]), &t, 0, Offset::Beginning, 0, 150);
        // The client really compressed (librdkafka silently falls back to none if it thinks the broker
        // cannot take a codec).
        let segment = std::fs::read(
            broker
                .data_dir()
                .join(format!("{t}-0"))
                .join("00000000000000000000.log"),
        )
        .unwrap();
        let bits = i16::from_be_bytes([segment[21], segment[22]]) & 7;
        let expected = match codec {
            "gzip" => 1,
            "snappy" => 2,
            "lz4" => 3,
            _ => 4,
        };
        assert_eq!(bits, expected, "{codec}: stored codec");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn offsets_for_times() {
    let broker = Broker::start(&[]);
    let t = topic("times");
    create_topic(&broker, &t, 1, &[]).await;
    let producer = producer(&broker, &[]);
    let base = rdkafka::util::millis_to_epoch(std::time::SystemTime::now()) - 100_000;
    for i in 0..50i64 {
        let value = format!("v{i}");
        let record = FutureRecord::<str, _>::to(&t)
            .partition(0)
            .payload(&value)
            .timestamp(base + i * 1000);
        producer
            .send(record, TIMEOUT)
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
    let consumer = consumer(&broker, &[]);
    for (ts, expected) in [
        (base - 1, Offset::Offset(0)),
        (base + 20_500, Offset::Offset(21)),
        (base + 49_000, Offset::Offset(49)),
        (base + 60_000, Offset::End),
    ] {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&t, 0, Offset::Offset(ts)).unwrap();
        let found = consumer.offsets_for_times(tpl, TIMEOUT).unwrap();
        let got = found.find_partition(&t, 0).unwrap().offset();
        assert_eq!(got, expected, "timestamp {ts}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_create_describe_alter_partitions_delete_records_delete() {
    let broker = Broker::start(&[]);
    let admin = admin(&broker);
    let t = topic("admin");
    create_topic(
        &broker,
        &t,
        2,
        &[("retention.ms", "3600000"), ("cleanup.policy", "delete")],
    )
    .await;
    // Invalid config and duplicate topic are refused with their errors.
    let bad =
        NewTopic::new("bad-config", 1, TopicReplication::Fixed(1)).set("retention.ms", "soon");
    let r = admin
        .create_topics(&[bad], &AdminOptions::new())
        .await
        .unwrap();
    assert!(
        matches!(
            r[0],
            Err((_, rdkafka::types::RDKafkaErrorCode::InvalidConfig))
        ),
        "{r:?}"
    );
    let dup = NewTopic::new(&t, 1, TopicReplication::Fixed(1));
    let r = admin
        .create_topics(&[dup], &AdminOptions::new())
        .await
        .unwrap();
    assert!(
        matches!(
            r[0],
            Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists))
        ),
        "{r:?}"
    );

    let described = admin
        .describe_configs(&[ResourceSpecifier::Topic(&t)], &AdminOptions::new())
        .await
        .unwrap();
    let resource = described[0].as_ref().unwrap();
    let retention = resource.get("retention.ms").unwrap();
    assert_eq!(retention.value.as_deref(), Some("3600000"));
    assert_eq!(retention.source, rdkafka::admin::ConfigSource::DynamicTopic);
    let segment = resource.get("segment.bytes").unwrap();
    assert_eq!(segment.value.as_deref(), Some("1073741824"));
    assert_eq!(segment.source, rdkafka::admin::ConfigSource::Default);

    let alter = AlterConfig::new(ResourceSpecifier::Topic(&t)).set("retention.ms", "7200000");
    admin
        .alter_configs(&[alter], &AdminOptions::new())
        .await
        .unwrap()[0]
        .as_ref()
        .unwrap();
    let described = admin
        .describe_configs(&[ResourceSpecifier::Topic(&t)], &AdminOptions::new())
        .await
        .unwrap();
    assert_eq!(
        described[0]
            .as_ref()
            .unwrap()
            .get("retention.ms")
            .unwrap()
            .value
            .as_deref(),
        Some("7200000")
    );

    admin
        .create_partitions(&[NewPartitions::new(&t, 4)], &AdminOptions::new())
        .await
        .unwrap()[0]
        .as_ref()
        .unwrap();
    let consumer = consumer(&broker, &[]);
    let metadata = consumer.fetch_metadata(Some(&t), TIMEOUT).unwrap();
    assert_eq!(metadata.topics()[0].partitions().len(), 4);

    produce_n(&producer(&broker, &[]), &t, 3, 30).await;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&t, 3, Offset::Offset(12)).unwrap();
    admin
        .delete_records(&tpl, &AdminOptions::new())
        .await
        .unwrap();
    assert_eq!(consumer.fetch_watermarks(&t, 3, TIMEOUT).unwrap(), (12, 30));

    admin
        .delete_topics(&[&t], &AdminOptions::new())
        .await
        .unwrap()[0]
        .as_ref()
        .unwrap();
    let metadata = consumer.fetch_metadata(None, TIMEOUT).unwrap();
    assert!(metadata.topics().iter().all(|m| m.name() != t));
    assert!(
        !broker.data_dir().join(format!("{t}-0")).exists(),
        "partition data removed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_records_survive_kill9_in_durable_mode() {
    let mut broker = Broker::start(&[("log.flush.interval.messages", "1")]);
    let t = topic("durable");
    create_topic(&broker, &t, 1, &[]).await;
    {
        let producer = producer(&broker, &[("linger.ms", "1")]);
        let offsets = produce_n(&producer, &t, 0, 300).await;
        assert_eq!(offsets.len(), 300);
    }
    broker.kill9();
    broker.restart();
    let consumer = consumer(&broker, &[]);
    consume_and_check(&consumer, &t, 0, Offset::Beginning, 0, 300);
    assert!(
        broker.log().contains("recovered partition log"),
        "an unclean restart recovers"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn graceful_shutdown_keeps_topics_configs_and_records() {
    let mut broker = Broker::start(&[]);
    let t = topic("graceful");
    create_topic(&broker, &t, 2, &[("retention.bytes", "123456789")]).await;
    produce_n(&producer(&broker, &[]), &t, 1, 40).await;
    assert_eq!(
        broker.terminate(),
        Some(0),
        "SIGTERM exits 0; log:\n{}",
        broker.log()
    );
    let log_before = broker.log().len();
    broker.restart();
    consume_and_check(&consumer(&broker, &[]), &t, 1, Offset::Beginning, 0, 40);
    let described = admin(&broker)
        .describe_configs(&[ResourceSpecifier::Topic(&t)], &AdminOptions::new())
        .await
        .unwrap();
    assert_eq!(
        described[0]
            .as_ref()
            .unwrap()
            .get("retention.bytes")
            .unwrap()
            .value
            .as_deref(),
        Some("123456789")
    );
    assert!(
        !broker.log()[log_before..].contains("recovered partition log"),
        "a clean restart does not recover"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_deletes_old_segments_and_consumers_reset() {
    let broker = Broker::start(&[
        ("log.retention.check.interval.ms", "200"),
        ("log.segment.delete.delay.ms", "0"),
    ]);
    let t = topic("retention");
    create_topic(
        &broker,
        &t,
        1,
        &[("segment.bytes", "2048"), ("retention.ms", "1500")],
    )
    .await;
    produce_n(&producer(&broker, &[]), &t, 0, 60).await;
    let consumer = consumer(&broker, &[]);
    let deadline = Instant::now() + TIMEOUT;
    let low = loop {
        let (low, high) = consumer.fetch_watermarks(&t, 0, TIMEOUT).unwrap();
        assert_eq!(high, 60);
        if low > 0 {
            break low;
        }
        assert!(
            Instant::now() < deadline,
            "retention never moved the log start offset"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // A consumer positioned at an expired offset gets OFFSET_OUT_OF_RANGE and resets to the earliest.
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&t, 0, Offset::Offset(0)).unwrap();
    consumer.assign(&tpl).unwrap();
    let message = loop {
        assert!(Instant::now() < deadline, "no message after reset");
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            break m.unwrap();
        }
    };
    assert!(
        message.offset() >= low,
        "reset to {} (log start {low})",
        message.offset()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fetched_record_bytes_take_the_sendfile_path() {
    let mut broker = Broker::start(&[]);
    let t = topic("sendfile");
    create_topic(&broker, &t, 1, &[]).await;
    produce_n(&producer(&broker, &[]), &t, 0, 100).await;
    consume_and_check(&consumer(&broker, &[]), &t, 0, Offset::Beginning, 0, 100);
    assert_eq!(broker.terminate(), Some(0));
    let log = broker.log();
    let line = log
        .lines()
        .find(|l| l.contains("fetch path totals"))
        .unwrap_or_else(|| panic!("no totals line:\n{log}"));
    let field = |name: &str| -> u64 {
        let at = line.find(&format!("{name}=")).unwrap() + name.len() + 1;
        line[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(field("sendfile_bytes") > 100 * 40, "{line}");
    assert_eq!(field("copied_bytes"), 0, "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn topic_compression_type_recompresses_stored_batches() {
    let broker = Broker::start(&[]);
    for (codec, attribute_bits) in [
        ("zstd", 4),
        ("lz4", 3),
        ("gzip", 1),
        ("snappy", 2),
        ("uncompressed", 0),
    ] {
        let t = topic(&format!("recompress-{codec}"));
        create_topic(&broker, &t, 1, &[("compression.type", codec)]).await;
        // The producer uses a different codec from the topic's.
        let sent_with = if codec == "uncompressed" {
            "lz4"
        } else {
            "none"
        };
        let producer = producer(
            &broker,
            &[("compression.codec", sent_with), ("linger.ms", "5")],
        );
        produce_n(&producer, &t, 0, 60).await;
        consume_and_check(&consumer(&broker, &[]), &t, 0, Offset::Beginning, 0, 60);
        let segment = std::fs::read(
            broker
                .data_dir()
                .join(format!("{t}-0"))
                .join("00000000000000000000.log"),
        )
        .unwrap();
        let attributes = i16::from_be_bytes([segment[21], segment[22]]);
        assert_eq!(
            attributes & 7,
            attribute_bits,
            "{codec}: stored batch codec"
        );
    }
}

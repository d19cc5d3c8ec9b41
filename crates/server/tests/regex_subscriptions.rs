//! KIP-848 pattern subscriptions against the real `ferrite` binary: a librdkafka consumer with
//! `group.protocol=consumer` subscribes with a regular expression; the broker resolves it, assigns the matching
//! topics (and only those), and follows topics being created and deleted. A pattern that does not compile is
//! answered INVALID_REGULAR_EXPRESSION (through the raw protocol: librdkafka checks patterns itself).
#![allow(clippy::unwrap_used)]

mod common;

use common::raw::Raw;
use common::{topic, Broker};
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, GroupId,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(20);
/// A new or deleted topic reaches the group within the broker's 10 s refresh interval plus heartbeats.
const FOLLOW_BOUND: Duration = Duration::from_secs(60);

const BROKER: [(&str, &str); 4] = [
    ("group.consumer.heartbeat.interval.ms", "500"),
    ("group.consumer.min.heartbeat.interval.ms", "500"),
    ("offsets.topic.num.partitions", "2"),
    ("auto.create.topics.enable", "false"),
];

fn admin(broker: &Broker) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .create()
        .unwrap()
}

async fn create(broker: &Broker, name: &str) {
    let new = NewTopic::new(name, 2, TopicReplication::Fixed(1));
    for r in admin(broker)
        .create_topics(&[new], &AdminOptions::new())
        .await
        .unwrap()
    {
        r.unwrap();
    }
}

async fn delete(broker: &Broker, name: &str) {
    for r in admin(broker)
        .delete_topics(&[name], &AdminOptions::new())
        .await
        .unwrap()
    {
        r.unwrap();
    }
}

/// (topic, partition) pairs the consumer owns.
fn owned(consumer: &BaseConsumer) -> BTreeSet<(String, i32)> {
    consumer
        .assignment()
        .map(|tpl| {
            tpl.elements()
                .iter()
                .map(|e| (e.topic().to_string(), e.partition()))
                .collect()
        })
        .unwrap_or_default()
}

fn both_partitions(topics: &[&str]) -> BTreeSet<(String, i32)> {
    topics
        .iter()
        .flat_map(|t| [(t.to_string(), 0), (t.to_string(), 1)])
        .collect()
}

/// Polls until the consumer owns exactly `expected`; returns the values it read meanwhile.
fn poll_until_owned(
    broker: &Broker,
    consumer: &BaseConsumer,
    expected: &BTreeSet<(String, i32)>,
    what: &str,
) -> Vec<String> {
    let deadline = Instant::now() + FOLLOW_BOUND;
    let mut values = vec![];
    loop {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            if let Some(Ok(v)) = m.payload_view::<str>() {
                values.push(v.to_string());
            }
        }
        if owned(consumer) == *expected {
            return values;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: owns {:?}, expected {expected:?}\n{}",
            owned(consumer),
            broker.log()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kip848_pattern_subscription_follows_matching_topics() {
    let broker = Broker::start(&BROKER);
    let prefix = topic("rx").replace('-', "_");
    let (first, second, other) = (
        format!("{prefix}_orders"),
        format!("{prefix}_payments"),
        format!("{prefix}x_audit"),
    );
    create(&broker, &first).await;
    create(&broker, &other).await;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .create()
        .unwrap();
    for (topic, value) in [(&first, "first"), (&other, "not matched")] {
        producer
            .send(
                FutureRecord::<(), _>::to(topic).partition(0).payload(value),
                TIMEOUT,
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("group.id", format!("{prefix}-group"))
        .set("group.protocol", "consumer")
        .set("auto.offset.reset", "earliest")
        .set("topic.metadata.refresh.interval.ms", "1000")
        .create()
        .unwrap();
    consumer.subscribe(&[&format!("^{prefix}_.*")]).unwrap();
    let mut read = poll_until_owned(
        &broker,
        &consumer,
        &both_partitions(&[&first]),
        "the matching topic",
    );
    let deadline = Instant::now() + TIMEOUT;
    while !read.iter().any(|v| v == "first") && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            read.push(m.payload_view::<str>().unwrap().unwrap().to_string());
        }
    }
    assert_eq!(
        read,
        vec!["first".to_string()],
        "only the matching topic is read"
    );

    create(&broker, &second).await;
    poll_until_owned(
        &broker,
        &consumer,
        &both_partitions(&[&first, &second]),
        "a matching topic created later",
    );
    delete(&broker, &first).await;
    poll_until_owned(
        &broker,
        &consumer,
        &both_partitions(&[&second]),
        "a matching topic deleted",
    );
}

#[test]
fn a_pattern_that_does_not_compile_is_an_invalid_regular_expression() {
    let broker = Broker::start(&BROKER);
    let mut raw = Raw::connect(&broker);
    let mut request = ConsumerGroupHeartbeatRequest::default();
    request.group_id = GroupId(StrBytes::from_static_str("bad-pattern"));
    request.member_id = StrBytes::from_string(uuid::Uuid::new_v4().to_string());
    request.member_epoch = 0;
    request.rebalance_timeout_ms = 30_000;
    request.subscribed_topic_regex = Some(StrBytes::from_static_str("orders_(unclosed"));
    request.topic_partitions = Some(vec![]);
    let response: ConsumerGroupHeartbeatResponse =
        raw.call(ApiKey::ConsumerGroupHeartbeat, 1, &request);
    assert_eq!(response.error_code, 128, "{response:?}");
    let message = response.error_message.map(|m| m.to_string());
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains("orders_(unclosed")),
        "{message:?}"
    );
}

//! What SREs and admin tools do besides topics and groups, against the real `ferrite` binary: dynamic broker
//! configs (per broker and cluster-wide, applied to running partitions, kept across a restart), per-group
//! configs of KIP-848 groups, `max.connections` changed live, and authorized operations. confluent-kafka's
//! AdminClient (tests/clients/admin_clients.py) and the rdkafka crate drive most of it; the cluster-wide
//! default entity (an empty broker name, `kafka-configs --entity-default`) goes through the raw protocol
//! because librdkafka refuses an empty resource name.
#![allow(clippy::unwrap_used)]

mod common;

use common::raw::{incremental_alter_configs, Raw, OP_DELETE, OP_SET, RESOURCE_BROKER};
use common::script::{clients_dir, run_client, venv_python};
use common::{topic, Broker};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::io::Read;
use std::process::Command;
use std::time::{Duration, Instant};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);
const TIMEOUT: Duration = Duration::from_secs(20);

fn admin_script(broker: &Broker, args: &[&str]) {
    let output = run_client(
        Command::new(venv_python())
            .arg(clients_dir().join("admin_clients.py"))
            .args(args),
        broker,
        SCRIPT_TIMEOUT,
    );
    println!("{output}");
}

#[test]
fn confluent_kafka_sees_every_supported_operation_without_an_authorizer() {
    let broker = Broker::start(&[
        ("group.initial.rebalance.delay.ms", "0"),
        ("offsets.topic.num.partitions", "2"),
    ]);
    let t = topic("authz");
    let group = format!("{t}-group");
    admin_script(
        &broker,
        &["authorized-operations", &broker.addr, &t, &group],
    );
}

#[test]
fn confluent_kafka_changes_broker_configs_live_and_they_survive_a_restart() {
    let mut broker = Broker::start(&[]);
    let t = topic("dynamic");
    admin_script(&broker, &["broker-configs", &broker.addr, &t]);
    assert_eq!(broker.terminate(), Some(0));
    broker.restart();
    admin_script(&broker, &["broker-configs-kept", &broker.addr, &t]);
}

#[test]
fn confluent_kafka_sets_kip848_group_configs_within_the_brokers_bounds() {
    let broker = Broker::start(&[]);
    let group = format!("{}-group", topic("group-configs"));
    admin_script(&broker, &["group-configs", &broker.addr, &group]);
}

// ----------------------------------------------------------------------------------------------------------------
// Raw DescribeConfigs / IncrementalAlterConfigs on broker resources.

fn describe(raw: &mut Raw, resource_type: i8, name: &str) -> DescribeConfigsResult {
    let mut resource = DescribeConfigsResource::default();
    resource.resource_type = resource_type;
    resource.resource_name = StrBytes::from_string(name.to_string());
    resource.configuration_keys = None;
    let mut request = DescribeConfigsRequest::default();
    request.resources = vec![resource];
    request.include_synonyms = true;
    let mut response: DescribeConfigsResponse = raw.call(ApiKey::DescribeConfigs, 4, &request);
    response.results.remove(0)
}

/// (value, source, synonym sources) of one entry, or `None` if the resource does not list it.
fn entry(result: &DescribeConfigsResult, name: &str) -> Option<(String, i8, Vec<i8>)> {
    let e = result.configs.iter().find(|c| c.name.as_str() == name)?;
    let value = e.value.as_ref().map(|v| v.to_string()).unwrap_or_default();
    Some((
        value,
        e.config_source,
        e.synonyms.iter().map(|s| s.source).collect(),
    ))
}

fn alter(raw: &mut Raw, name: &str, ops: &[(&str, i8, Option<&str>)]) -> (i16, String) {
    incremental_alter_configs(raw, RESOURCE_BROKER, name, ops)
}

/// The cluster-wide default entity (empty name): set with `kafka-configs --entity-default`, described on its
/// own with source DYNAMIC_DEFAULT_BROKER_CONFIG (3), beaten by the broker's own dynamic value (2), kept across
/// a restart; a broker id that is not a number is an invalid request.
#[test]
fn cluster_wide_defaults_sit_between_the_brokers_own_configs_and_static_ones() {
    let mut broker = Broker::start(&[("log.retention.hours", "100")]);
    let node = "1";
    let mut raw = Raw::connect(&broker);
    assert_eq!(
        alter(
            &mut raw,
            "",
            &[("log.retention.ms", OP_SET, Some("5000000"))]
        )
        .0,
        0
    );
    let defaults = describe(&mut raw, RESOURCE_BROKER, "");
    assert_eq!(defaults.error_code, 0);
    let names: Vec<&str> = defaults.configs.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["log.retention.ms"],
        "only what is set for every broker"
    );
    assert_eq!(entry(&defaults, "log.retention.ms").unwrap().1, 3);

    let own = describe(&mut raw, RESOURCE_BROKER, node);
    let (value, source, synonyms) = entry(&own, "log.retention.ms").unwrap();
    assert_eq!((value.as_str(), source), ("5000000", 3));
    assert_eq!(
        synonyms,
        vec![3, 4, 5],
        "default level, static hours, default hours"
    );

    assert_eq!(
        alter(
            &mut raw,
            node,
            &[("log.retention.ms", OP_SET, Some("6000000"))]
        )
        .0,
        0
    );
    let own = describe(&mut raw, RESOURCE_BROKER, node);
    let (value, source, synonyms) = entry(&own, "log.retention.ms").unwrap();
    assert_eq!((value.as_str(), source), ("6000000", 2));
    assert_eq!(synonyms, vec![2, 3, 4, 5]);

    let (code, message) = alter(
        &mut raw,
        "broker-1",
        &[("log.retention.ms", OP_SET, Some("1"))],
    );
    assert_eq!(code, 42, "INVALID_REQUEST: {message}");
    assert_eq!(describe(&mut raw, RESOURCE_BROKER, "7").error_code, 42);

    drop(raw);
    assert_eq!(broker.terminate(), Some(0));
    broker.restart();
    let mut raw = Raw::connect(&broker);
    let own = describe(&mut raw, RESOURCE_BROKER, node);
    assert_eq!(
        entry(&own, "log.retention.ms").map(|e| (e.0, e.1)),
        Some(("6000000".to_string(), 2))
    );
    assert_eq!(
        alter(&mut raw, node, &[("log.retention.ms", OP_DELETE, None)]).0,
        0
    );
    let own = describe(&mut raw, RESOURCE_BROKER, node);
    assert_eq!(
        entry(&own, "log.retention.ms").map(|e| (e.0, e.1)),
        Some(("5000000".to_string(), 3)),
        "with the broker's own value gone, the cluster-wide one is in force"
    );
}

/// `max.connections` lowered live refuses new connections at once (the broker closes them); raised again,
/// they are served.
#[test]
fn max_connections_changes_live() {
    let broker = Broker::start(&[]);
    let mut raw = Raw::connect(&broker);
    assert_eq!(
        alter(&mut raw, "1", &[("max.connections", OP_SET, Some("1"))]).0,
        0
    );
    let mut refused = std::net::TcpStream::connect(&broker.addr).unwrap();
    refused
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert_eq!(
        refused.read(&mut byte).unwrap(),
        0,
        "a connection past max.connections is closed by the broker"
    );
    assert_eq!(
        alter(&mut raw, "1", &[("max.connections", OP_DELETE, None)]).0,
        0
    );
    let mut second = Raw::connect(&broker);
    assert_eq!(describe(&mut second, RESOURCE_BROKER, "1").error_code, 0);
}

// ----------------------------------------------------------------------------------------------------------------
// A topic default changed live reaches running partitions.

fn rdkafka_admin(broker: &Broker) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .create()
        .unwrap()
}

async fn fill(broker: &Broker, topic: &str, records: usize) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("linger.ms", "0")
        .create()
        .unwrap();
    let value = vec![b'x'; 300];
    for _ in 0..records {
        producer
            .send(FutureRecord::<(), _>::to(topic).payload(&value), TIMEOUT)
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
}

fn low_watermark(consumer: &BaseConsumer, topic: &str) -> i64 {
    consumer.fetch_watermarks(topic, 0, TIMEOUT).unwrap().0
}

/// Two topics roll small segments; one overrides retention.ms. Lowering the broker's log.retention.ms with
/// AlterConfigs (rdkafka) deletes old segments of the topic without an override, on the running broker, and
/// leaves the other alone.
#[tokio::test(flavor = "multi_thread")]
async fn a_broker_retention_change_reaches_running_partitions_without_an_override() {
    let broker = Broker::start(&[("log.retention.check.interval.ms", "200")]);
    let admin = rdkafka_admin(&broker);
    let (inherits, overrides) = (topic("inherits"), topic("overrides"));
    let topics = [
        NewTopic::new(&inherits, 1, TopicReplication::Fixed(1))
            .set("segment.bytes", "1024")
            .set("file.delete.delay.ms", "0"),
        NewTopic::new(&overrides, 1, TopicReplication::Fixed(1))
            .set("segment.bytes", "1024")
            .set("file.delete.delay.ms", "0")
            .set("retention.ms", "604800000"),
    ];
    for r in admin
        .create_topics(&topics, &AdminOptions::new())
        .await
        .unwrap()
    {
        r.unwrap();
    }
    fill(&broker, &inherits, 30).await;
    fill(&broker, &overrides, 30).await;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .create()
        .unwrap();
    assert_eq!(low_watermark(&consumer, &inherits), 0);

    let change = AlterConfig::new(ResourceSpecifier::Broker(1)).set("log.retention.ms", "1");
    for r in admin
        .alter_configs(&[change], &AdminOptions::new())
        .await
        .unwrap()
    {
        r.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while low_watermark(&consumer, &inherits) == 0 {
        assert!(
            Instant::now() < deadline,
            "retention never deleted a segment of {inherits}\n{}",
            broker.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Retention runs every 200 ms: a few more rounds, and the override still holds.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        low_watermark(&consumer, &overrides),
        0,
        "{overrides} overrides retention.ms"
    );
    let described = admin
        .describe_configs(&[ResourceSpecifier::Topic(&inherits)], &AdminOptions::new())
        .await
        .unwrap();
    let resource = described[0].as_ref().unwrap();
    let retention = resource.get("retention.ms").unwrap();
    assert_eq!(retention.value.as_deref(), Some("1"));
    assert_eq!(
        retention.source,
        rdkafka::admin::ConfigSource::DynamicBroker
    );
}

// ----------------------------------------------------------------------------------------------------------------
// Group configs reach the group's members.

fn heartbeat(raw: &mut Raw, group: &str, member: &str, epoch: i32, topic: &str) -> (i16, i32, i32) {
    use kafka_protocol::messages::{
        ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, GroupId, TopicName,
    };
    let mut request = ConsumerGroupHeartbeatRequest::default();
    request.group_id = GroupId(StrBytes::from_string(group.to_string()));
    request.member_id = StrBytes::from_string(member.to_string());
    request.member_epoch = epoch;
    request.rebalance_timeout_ms = if epoch == 0 { 30_000 } else { -1 };
    request.subscribed_topic_names =
        (epoch == 0).then(|| vec![TopicName(StrBytes::from_string(topic.to_string()))]);
    request.topic_partitions = (epoch == 0).then(Vec::new);
    let response: ConsumerGroupHeartbeatResponse =
        raw.call(ApiKey::ConsumerGroupHeartbeat, 1, &request);
    (
        response.error_code,
        response.member_epoch,
        response.heartbeat_interval_ms,
    )
}

/// A group's consumer.heartbeat.interval.ms is what its members are told to use, and a change reaches a
/// member that is already in the group at its next heartbeat.
#[test]
fn a_groups_heartbeat_interval_reaches_its_members() {
    use common::raw::RESOURCE_GROUP;
    let broker = Broker::start(&[("offsets.topic.num.partitions", "2")]);
    let mut raw = Raw::connect(&broker);
    let t = topic("interval");
    let group = format!("{t}-group");
    let set = |raw: &mut Raw, value: &str| {
        let ops = [("consumer.heartbeat.interval.ms", OP_SET, Some(value))];
        let (code, message) = incremental_alter_configs(raw, RESOURCE_GROUP, &group, &ops);
        assert_eq!(code, 0, "{message}");
    };
    set(&mut raw, "7000");
    let member = uuid::Uuid::new_v4().to_string();
    let (code, epoch, interval) = heartbeat(&mut raw, &group, &member, 0, &t);
    assert_eq!(
        (code, interval),
        (0, 7000),
        "the joining member is told the group's interval"
    );
    set(&mut raw, "9000");
    let (code, _, interval) = heartbeat(&mut raw, &group, &member, epoch, &t);
    assert_eq!(
        (code, interval),
        (0, 9000),
        "a member already in the group gets the new one"
    );
}

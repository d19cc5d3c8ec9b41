//! Upgrade: a data directory written by the single-node broker of earlier versions (its metadata in
//! `ferrite-metadata.json`, its records in partition logs, committed offsets in `__consumer_offsets`) starts
//! under the metadata quorum with every topic, topic id, config, committed offset, record, producer-id mark
//! and the cluster id intact: the file is imported into the metadata log once and set aside, and a second
//! restart comes up from the metadata log alone.
#![allow(clippy::unwrap_used)]

mod common;

use common::raw::Raw;
use common::Broker;
use ferrite_coordinator::offsets::{
    encode_key, encode_value, partition_for_group, CommittedOffset, OffsetKey,
};
use ferrite_log::batch_builder::{encode_batch, RecordSpec};
use ferrite_log::{AppendOrigin, LogConfig, LogOptions, PartitionLog};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, DescribeClusterRequest, DescribeClusterResponse, InitProducerIdRequest,
    InitProducerIdResponse, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, ConfigSource, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::path::Path;
use std::time::{Duration, Instant};

const CLUSTER_ID: &str = "UpgradedClusterIdAAAAA";
const TOPIC_ID: u128 = 0x1234_5678_9abc_def0_1234_5678_9abc_def0;
const OFFSETS_PARTITIONS: i32 = 4;
const GROUP: &str = "old-group";

/// The metadata file as the single-node broker wrote it.
fn metadata_file() -> String {
    let topic_id = uuid::Uuid::from_u128(TOPIC_ID);
    let offsets_id = uuid::Uuid::from_u128(7);
    format!(
        r#"{{
  "cluster_id": "{CLUSTER_ID}",
  "next_producer_id": 5000,
  "topics": {{
    "__consumer_offsets": {{
      "name": "__consumer_offsets", "id": "{offsets_id}", "partitions": {OFFSETS_PARTITIONS},
      "configs": {{ "cleanup.policy": "compact", "segment.bytes": "104857600" }}
    }},
    "legacy": {{
      "name": "legacy", "id": "{topic_id}", "partitions": 2,
      "configs": {{ "retention.ms": "86400000" }}
    }}
  }},
  "broker_configs": {{ "default": {{ "log.retention.hours": "48" }}, "brokers": {{}} }},
  "group_configs": {{ "g": {{ "consumer.session.timeout.ms": "50000" }} }}
}}"#
    )
}

fn append(dir: &Path, records: &[(Option<Vec<u8>>, Vec<u8>)]) {
    let log = PartitionLog::open(dir, LogConfig::default(), LogOptions::default()).unwrap();
    let specs: Vec<RecordSpec<'_>> = records
        .iter()
        .map(|(key, value)| RecordSpec {
            key: key.as_deref(),
            value: Some(value),
            headers: vec![],
            timestamp: 1_700_000_000_000,
        })
        .collect();
    let mut batch = bytes::BytesMut::new();
    encode_batch(&mut batch, &specs, 0, None);
    log.append(batch.freeze(), AppendOrigin::Client { leader_epoch: 0 })
        .unwrap();
    log.close().unwrap();
}

/// What an older version left on disk: the metadata file, five records in each partition of `legacy`, and
/// the group's committed offset for `legacy`-0.
fn old_data_dir(dir: &Path) {
    std::fs::write(dir.join("ferrite-metadata.json"), metadata_file()).unwrap();
    for partition in 0..2 {
        let records: Vec<_> = (0..5)
            .map(|i| (None, format!("p{partition}-r{i}").into_bytes()))
            .collect();
        append(&dir.join(format!("legacy-{partition}")), &records);
    }
    for p in 0..OFFSETS_PARTITIONS {
        std::fs::create_dir_all(dir.join(format!("__consumer_offsets-{p}"))).unwrap();
    }
    let key = OffsetKey {
        group: GROUP.into(),
        topic: "legacy".into(),
        partition: 0,
    };
    let value = CommittedOffset {
        offset: 3,
        leader_epoch: 0,
        metadata: "kept".into(),
        commit_timestamp_ms: 1_700_000_000_000,
    };
    let partition = partition_for_group(GROUP, OFFSETS_PARTITIONS);
    append(
        &dir.join(format!("__consumer_offsets-{partition}")),
        &[(Some(encode_key(&key)), encode_value(&value))],
    );
}

async fn check_everything(broker: &Broker) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .create()
        .unwrap();
    let described = admin
        .describe_configs(
            &[
                ResourceSpecifier::Topic("legacy"),
                ResourceSpecifier::Broker(1),
            ],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    let topic_configs = described[0].as_ref().unwrap();
    assert_eq!(
        topic_configs.get("retention.ms").unwrap().value.as_deref(),
        Some("86400000"),
        "topic configs are kept"
    );
    let broker_configs = described[1].as_ref().unwrap();
    let hours = broker_configs.get("log.retention.hours").unwrap();
    assert_eq!(
        (hours.value.as_deref(), &hours.source),
        (Some("48"), &ConfigSource::DynamicDefaultBroker),
        "dynamic broker configs are kept"
    );

    let mut raw = Raw::connect(broker);
    let mut request = MetadataRequest::default();
    let mut wanted = MetadataRequestTopic::default();
    wanted.name = Some(TopicName(StrBytes::from_static_str("legacy")));
    request.topics = Some(vec![wanted]);
    let metadata: MetadataResponse = raw.call(ApiKey::Metadata, 12, &request);
    let topic = &metadata.topics[0];
    assert_eq!(topic.error_code, 0, "{metadata:?}");
    assert_eq!(
        topic.topic_id,
        uuid::Uuid::from_u128(TOPIC_ID),
        "the topic id is kept"
    );
    assert_eq!(topic.partitions.len(), 2);

    let cluster: DescribeClusterResponse = raw.call(
        ApiKey::DescribeCluster,
        0,
        &DescribeClusterRequest::default(),
    );
    assert_eq!(cluster.cluster_id.as_str(), CLUSTER_ID);

    let mut init = InitProducerIdRequest::default();
    init.transaction_timeout_ms = 60_000;
    init.transactional_id = None;
    let producer: InitProducerIdResponse = raw.call(ApiKey::InitProducerId, 4, &init);
    assert!(
        producer.producer_id.0 >= 5000,
        "producer ids continue past the old mark: {producer:?}"
    );

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("legacy", 0);
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(20))
        .unwrap();
    assert_eq!(
        committed.elements()[0].offset(),
        Offset::Offset(3),
        "the committed offset is kept"
    );
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset("legacy", 0, Offset::Beginning)
        .unwrap();
    assignment
        .add_partition_offset("legacy", 1, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let mut values = vec![];
    let deadline = Instant::now() + Duration::from_secs(30);
    while values.len() < 10 && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            values.push(m.payload_view::<str>().unwrap().unwrap().to_string());
        }
    }
    values.sort();
    let mut expected: Vec<String> = (0..2)
        .flat_map(|p| (0..5).map(move |i| format!("p{p}-r{i}")))
        .collect();
    expected.sort();
    assert_eq!(values, expected, "every record is kept\n{}", broker.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_single_node_data_directory_is_imported_into_the_metadata_log() {
    let mut broker = Broker::start_with(
        &[(
            "offsets.topic.num.partitions",
            &OFFSETS_PARTITIONS.to_string(),
        )],
        old_data_dir,
    );
    check_everything(&broker).await;
    assert!(
        broker
            .log()
            .contains("importing the single-node metadata file"),
        "{}",
        broker.log()
    );
    let data_dir = broker.data_dir().to_path_buf();
    assert!(!data_dir.join("ferrite-metadata.json").exists());
    assert!(data_dir.join("ferrite-metadata.json.imported").exists());

    assert_eq!(broker.terminate(), Some(0));
    broker.restart();
    check_everything(&broker).await;
}

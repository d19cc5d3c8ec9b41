#![allow(clippy::unwrap_used)]

use super::*;
use ferrite_replication::{LeaderEpoch, NodeId};
use uuid::Uuid;

const T1: Uuid = Uuid::from_u128(1);
const T2: Uuid = Uuid::from_u128(2);

fn partition(topic_id: Uuid, partition: i32) -> MetadataRecord {
    MetadataRecord::Partition(PartitionRecord {
        topic_id,
        partition,
        replicas: vec![NodeId(1)],
        isr: vec![NodeId(1)],
        leader: Some(NodeId(1)),
        leader_epoch: LeaderEpoch(0),
        partition_epoch: 0,
        reassignment: None,
    })
}

fn topic(name: &str, id: Uuid, partitions: i32) -> Vec<MetadataRecord> {
    let mut records = vec![MetadataRecord::Topic {
        name: name.into(),
        topic_id: id,
    }];
    records.extend((0..partitions).map(|p| partition(id, p)));
    records
}

fn config(resource: ConfigResource, name: &str, value: Option<&str>) -> MetadataRecord {
    MetadataRecord::Config {
        resource,
        name: name.into(),
        value: value.map(str::to_string),
    }
}

fn sample() -> Vec<MetadataRecord> {
    let mut records = vec![MetadataRecord::Cluster {
        cluster_id: "c1".into(),
    }];
    records.push(MetadataRecord::RegisterBroker(BrokerRegistration {
        node_id: NodeId(1),
        incarnation_id: Uuid::from_u128(9),
        host: "127.0.0.1".into(),
        port: 9092,
        rack: None,
        epoch: 1,
    }));
    records.extend(topic("orders", T1, 3));
    records.extend(topic("payments", T2, 1));
    records.push(config(
        ConfigResource::Topic("orders".into()),
        "retention.ms",
        Some("1000"),
    ));
    records.push(config(
        ConfigResource::Broker(None),
        "log.retention.hours",
        Some("5"),
    ));
    records.push(config(
        ConfigResource::Group("g".into()),
        "consumer.session.timeout.ms",
        Some("50000"),
    ));
    records.push(MetadataRecord::ProducerIds {
        node_id: NodeId(1),
        next_producer_id: 2000,
    });
    records
}

#[test]
fn applying_records_builds_the_image() {
    let image = MetadataImage::from_records(&sample()).unwrap();
    assert_eq!(image.cluster_id(), Some("c1"));
    assert_eq!(image.topic("orders").unwrap().partition_count(), 3);
    assert_eq!(image.topic_by_id(T2).unwrap().name, "payments");
    let names: Vec<&str> = image.topics().map(|t| t.name.as_str()).collect();
    assert_eq!(names, vec!["orders", "payments"]);
    assert_eq!(
        image.configs(&ConfigResource::Topic("orders".into()))["retention.ms"],
        "1000"
    );
    assert!(image
        .configs(&ConfigResource::Topic("payments".into()))
        .is_empty());
    assert_eq!(image.next_producer_id(), 2000);
    assert_eq!(image.broker(NodeId(1)).unwrap().port, 9092);
    assert_eq!(image.records_applied(), sample().len() as u64);
}

#[test]
fn snapshot_round_trip_through_records_and_json() {
    let image = MetadataImage::from_records(&sample()).unwrap();
    let snapshot = image.to_records();
    let json = serde_json::to_string(&snapshot).unwrap();
    let back: Vec<MetadataRecord> = serde_json::from_str(&json).unwrap();
    let rebuilt = MetadataImage::from_records(&back).unwrap();
    assert_eq!(rebuilt.to_records(), snapshot);
    assert_eq!(rebuilt.topic("orders"), image.topic("orders"));
    assert_eq!(
        rebuilt.configs(&ConfigResource::Group("g".into())),
        image.configs(&ConfigResource::Group("g".into()))
    );
}

#[test]
fn deltas_say_what_a_batch_changed() {
    let image = MetadataImage::from_records(&sample()).unwrap();
    let mut batch = topic("refunds", Uuid::from_u128(3), 2);
    batch.push(MetadataRecord::RemoveTopic { topic_id: T2 });
    batch.push(config(
        ConfigResource::Topic("orders".into()),
        "retention.ms",
        None,
    ));
    let (next, delta) = image.apply_all(&batch).unwrap();
    assert_eq!(
        delta.created_topics.iter().copied().collect::<Vec<_>>(),
        vec![Uuid::from_u128(3)]
    );
    assert_eq!(delta.deleted_topics[&T2].name, "payments");
    assert_eq!(delta.changed_partitions.len(), 2);
    assert!(delta.topic_names_changed());
    assert!(!delta.broker_configs_changed());
    assert!(next.topic("payments").is_none());
    assert!(next
        .configs(&ConfigResource::Topic("orders".into()))
        .is_empty());
    assert!(
        image.topic("payments").is_some(),
        "the old image is unchanged"
    );

    // A topic created and deleted in one batch is neither created nor changed.
    let id = Uuid::from_u128(4);
    let mut batch = topic("brief", id, 1);
    batch.push(MetadataRecord::RemoveTopic { topic_id: id });
    let (_, delta) = image.apply_all(&batch).unwrap();
    assert!(delta.created_topics.is_empty() && delta.changed_partitions.is_empty());
}

#[test]
fn records_that_cannot_apply_leave_the_image_unchanged() {
    let image = MetadataImage::from_records(&sample()).unwrap();
    let bad = [
        MetadataRecord::Topic {
            name: "orders".into(),
            topic_id: Uuid::from_u128(7),
        },
        partition(Uuid::from_u128(8), 0),
        MetadataRecord::RemoveTopic {
            topic_id: Uuid::from_u128(8),
        },
    ];
    for record in bad {
        let error = image.apply_all(std::slice::from_ref(&record)).unwrap_err();
        assert!(!error.to_string().is_empty());
    }
    assert_eq!(image, MetadataImage::from_records(&sample()).unwrap());
}

#[test]
fn the_delta_between_two_images_is_what_applying_the_records_says() {
    let image = MetadataImage::from_records(&sample()).unwrap();
    let mut batch = topic("refunds", Uuid::from_u128(3), 2);
    batch.push(MetadataRecord::RemoveTopic { topic_id: T2 });
    batch.push(partition(T1, 3));
    batch.push(config(
        ConfigResource::Topic("orders".into()),
        "retention.ms",
        None,
    ));
    let (next, applied) = image.apply_all(&batch).unwrap();
    let between = MetadataDelta::between(&image, &next);
    assert_eq!(between.created_topics, applied.created_topics);
    assert_eq!(between.deleted_topics, applied.deleted_topics);
    assert_eq!(between.changed_partitions, applied.changed_partitions);
    assert_eq!(between.changed_configs, applied.changed_configs);
    let everything = MetadataDelta::between(&MetadataImage::default(), &image);
    assert_eq!(everything.created_topics.len(), 2);
    assert_eq!(everything.changed_partitions.len(), 4);
    assert!(everything.brokers_changed && everything.broker_configs_changed());
}

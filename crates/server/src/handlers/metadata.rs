//! Metadata (v0-13): brokers, topics, partitions, leaders; auto-creates requested topics when allowed.

use super::util::{decode, respond, str_bytes, topic_name};
use super::Response;
use crate::authz::{self, ResourceKind};
use crate::node::{topic_name::validate_topic_name, Node, Topic};
use ferrite_metadata::BrokerRegistration;
use ferrite_replication::NodeId;
use ferrite_wire::error_code;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use std::sync::Arc;

pub fn handle(broker: &Node, frame: &RequestFrame) -> Response {
    let request: MetadataRequest = match decode(frame) {
        Ok(r) => r,
        Err(close) => return close,
    };
    let version = frame.version();
    // v0: an empty list means all topics; v1+: null means all, empty means none.
    let wanted = match &request.topics {
        None => None,
        Some(list) if list.is_empty() && version == 0 => None,
        Some(list) => Some(list),
    };
    let auto_create = version < 4 || request.allow_auto_topic_creation;
    let topics = match wanted {
        None => broker
            .topics()
            .iter()
            .map(|t| topic_entry(broker, t, version))
            .collect(),
        Some(list) => list
            .iter()
            .map(|t| requested_topic(broker, t, auto_create, version))
            .collect(),
    };
    let mut response = MetadataResponse::default();
    let image = broker.image();
    response.brokers = image.live_brokers().map(broker_entry).collect();
    if version >= 2 {
        response.cluster_id = Some(str_bytes(broker.cluster_id()));
    }
    if version >= 1 {
        // As KRaft-mode Kafka: clients cannot reach the controllers, so the "controller" named is a live
        // broker (this one when it is a broker), which forwards what a client sends it.
        let here = NodeId(broker.node_id());
        let controller = if image.broker(here).is_some() && !image.is_fenced(here) {
            here.0
        } else {
            image.live_brokers().next().map_or(-1, |b| b.node_id.0)
        };
        response.controller_id = BrokerId(controller);
    }
    if (8..=10).contains(&version) {
        response.cluster_authorized_operations = authz::if_requested(
            request.include_cluster_authorized_operations,
            ResourceKind::Cluster,
            "kafka-cluster",
        );
    }
    response.topics = topics;
    if version >= 8 {
        for t in &mut response.topics {
            let name = t.name.as_ref().map_or("", |n| n.0.as_str());
            t.topic_authorized_operations = authz::if_requested(
                request.include_topic_authorized_operations,
                ResourceKind::Topic,
                name,
            );
        }
    }
    respond(frame, &response)
}

fn broker_entry(registration: &BrokerRegistration) -> MetadataResponseBroker {
    let mut b = MetadataResponseBroker::default();
    b.node_id = BrokerId(registration.node_id.0);
    b.host = str_bytes(registration.host.clone());
    b.port = i32::from(registration.port);
    b.rack = registration.rack.clone().map(str_bytes);
    b
}

fn requested_topic(
    broker: &Node,
    requested: &kafka_protocol::messages::metadata_request::MetadataRequestTopic,
    auto_create: bool,
    version: i16,
) -> MetadataResponseTopic {
    let Some(name) = requested.name.as_ref().map(|n| n.0.to_string()) else {
        // By topic id (v10+).
        return match broker.topic_by_id(requested.topic_id) {
            Some(t) => topic_entry(broker, &t, version),
            None => error_entry(None, requested.topic_id, error_code::UNKNOWN_TOPIC_ID),
        };
    };
    if validate_topic_name(&name).is_err() {
        return error_entry(
            Some(&name),
            uuid::Uuid::nil(),
            error_code::INVALID_TOPIC_EXCEPTION,
        );
    }
    let topic = broker.topic(&name).or_else(|| {
        if auto_create {
            broker.auto_create_topic(&name)
        } else {
            None
        }
    });
    match topic {
        Some(t) => topic_entry(broker, &t, version),
        None => error_entry(
            Some(&name),
            uuid::Uuid::nil(),
            error_code::UNKNOWN_TOPIC_OR_PARTITION,
        ),
    }
}

fn error_entry(name: Option<&str>, id: uuid::Uuid, error: i16) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default();
    t.error_code = error;
    t.name = name.map(topic_name);
    t.topic_id = id;
    t
}

/// A topic's entry, with each partition's leader, replicas and ISR as the metadata image has them.
fn topic_entry(broker: &Node, topic: &Arc<Topic>, version: i16) -> MetadataResponseTopic {
    let image = broker.image();
    let mut t = MetadataResponseTopic::default();
    t.name = Some(topic_name(&topic.name));
    if version >= 10 {
        t.topic_id = topic.id;
    }
    if version >= 1 {
        t.is_internal = topic.is_internal();
    }
    let ids = |nodes: &[NodeId]| nodes.iter().map(|n| BrokerId(n.0)).collect::<Vec<_>>();
    t.partitions = image
        .topic(&topic.name)
        .into_iter()
        .flat_map(|t| t.partitions.values())
        .map(|p| {
            let mut mp = MetadataResponsePartition::default();
            mp.partition_index = p.partition;
            mp.leader_id = BrokerId(p.leader.map_or(-1, |n| n.0));
            if p.leader.is_none() {
                mp.error_code = error_code::LEADER_NOT_AVAILABLE;
            }
            if version >= 7 {
                mp.leader_epoch = p.leader_epoch.0;
            }
            mp.replica_nodes = ids(&p.replicas);
            mp.isr_nodes = ids(&p.isr);
            if version >= 5 {
                let offline: Vec<NodeId> = p
                    .replicas
                    .iter()
                    .copied()
                    .filter(|n| image.broker(*n).is_none() || image.is_fenced(*n))
                    .collect();
                mp.offline_replicas = ids(&offline);
            }
            mp
        })
        .collect();
    t
}

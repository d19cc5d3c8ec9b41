//! AlterPartitionReassignments (v0-1) and ListPartitionReassignments (v0): moving partitions between brokers
//! (see `node::reassignment`). An accepted reassignment answers NONE once the controller recorded it; the
//! replicas then catch up and the switch happens by itself, which ListPartitionReassignments follows.

use super::create_topics::topic_error_code;
use super::util::{handle_with, str_bytes, topic_name};
use super::Response;
use crate::node::reassignment::{target, ReassignError, ReassignmentRequest};
use crate::node::Node;
use ferrite_replication::NodeId;
use ferrite_wire::error_code;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};

fn reassign_error_code(e: &ReassignError) -> i16 {
    match e {
        ReassignError::UnknownTopicOrPartition => error_code::UNKNOWN_TOPIC_OR_PARTITION,
        ReassignError::InvalidReplicaAssignment(_) => error_code::INVALID_REPLICA_ASSIGNMENT,
        ReassignError::ReplicationFactorChange => error_code::INVALID_REPLICATION_FACTOR,
        ReassignError::NoReassignmentInProgress => error_code::NO_REASSIGNMENT_IN_PROGRESS,
    }
}

pub fn handle_alter(broker: &Node, frame: &RequestFrame) -> Response {
    let version = frame.version();
    handle_with(frame, |request: AlterPartitionReassignmentsRequest| {
        let mut response = AlterPartitionReassignmentsResponse::default();
        // v0 always allowed a change of the replication factor (KIP-860 made it a choice in v1).
        let allow_change = version == 0 || request.allow_replication_factor_change;
        response.allow_replication_factor_change = request.allow_replication_factor_change;
        let requests: Vec<ReassignmentRequest> = request
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| ReassignmentRequest {
                    topic: t.name.0.to_string(),
                    partition: p.partition_index,
                    target: p
                        .replicas
                        .as_ref()
                        .map(|r| r.iter().map(|b| NodeId(b.0)).collect()),
                })
            })
            .collect();
        let outcomes = match broker.reassign_partitions(requests.clone(), allow_change) {
            Ok(outcomes) => outcomes,
            Err(e) => {
                response.error_code = topic_error_code(&e);
                response.error_message = Some(str_bytes(e.to_string()));
                return response;
            }
        };
        let mut topics: Vec<ReassignableTopicResponse> = vec![];
        for (r, outcome) in requests.iter().zip(outcomes) {
            let mut p = ReassignablePartitionResponse::default();
            p.partition_index = r.partition;
            if let Err(e) = outcome {
                p.error_code = reassign_error_code(&e);
                p.error_message = Some(str_bytes(e.to_string()));
            }
            match topics.iter_mut().find(|t| t.name.0.as_str() == r.topic) {
                Some(t) => t.partitions.push(p),
                None => {
                    let mut t = ReassignableTopicResponse::default();
                    t.name = topic_name(&r.topic);
                    t.partitions = vec![p];
                    topics.push(t);
                }
            }
        }
        response.responses = topics;
        response
    })
}

pub fn handle_list(broker: &Node, frame: &RequestFrame) -> Response {
    handle_with(frame, |request: ListPartitionReassignmentsRequest| {
        let mut response = ListPartitionReassignmentsResponse::default();
        let image = broker.image();
        let ids = |nodes: &[NodeId]| nodes.iter().map(|n| BrokerId(n.0)).collect::<Vec<_>>();
        for topic in image.topics() {
            let wanted: Option<&Vec<i32>> = match &request.topics {
                None => None,
                Some(topics) => match topics.iter().find(|t| t.name.0.as_str() == topic.name) {
                    Some(t) => Some(&t.partition_indexes),
                    None => continue,
                },
            };
            let partitions: Vec<OngoingPartitionReassignment> = topic
                .partitions
                .values()
                .filter(|p| wanted.is_none_or(|w| w.contains(&p.partition)))
                .filter_map(|p| {
                    let r = p.reassignment.as_ref()?;
                    let mut o = OngoingPartitionReassignment::default();
                    o.partition_index = p.partition;
                    o.replicas = ids(&p.replicas);
                    o.adding_replicas = ids(&r.adding);
                    o.removing_replicas = ids(&r.removing);
                    debug_assert!(target(p).len() + r.removing.len() == p.replicas.len());
                    Some(o)
                })
                .collect();
            if !partitions.is_empty() {
                let mut t = OngoingTopicReassignment::default();
                t.name = topic_name(&topic.name);
                t.partitions = partitions;
                response.topics.push(t);
            }
        }
        response
    })
}

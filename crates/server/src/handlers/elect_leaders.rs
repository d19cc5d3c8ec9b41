//! ElectLeaders (v0-2): preferred (election type 0, the only one in v0) or unclean (1) leader elections,
//! run by the active controller. A null partition list means every partition (Kafka's "all"); each partition
//! answers NONE, ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE, ELIGIBLE_LEADERS_NOT_AVAILABLE or
//! UNKNOWN_TOPIC_OR_PARTITION. An answer of NONE means the election was committed; with a null list, only the
//! partitions that changed are listed, as Kafka does.

use super::create_topics::topic_error_code;
use super::util::{handle_with, str_bytes, topic_name};
use super::Response;
use crate::node::leader_election::{ElectionKind, ElectionOutcome};
use crate::node::Node;
use ferrite_wire::error_code;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};
use std::collections::BTreeMap;

pub fn handle(broker: &Node, frame: &RequestFrame) -> Response {
    handle_with(frame, |request: ElectLeadersRequest| {
        let mut response = ElectLeadersResponse::default();
        let kind = match request.election_type {
            0 => ElectionKind::Preferred,
            1 => ElectionKind::Unclean,
            other => {
                response.error_code = error_code::INVALID_REQUEST;
                tracing::debug!(election_type = other, "unknown election type");
                return response;
            }
        };
        let every_partition = request.topic_partitions.is_none();
        let wanted: Vec<(String, i32)> = match &request.topic_partitions {
            Some(topics) => topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p)))
                .collect(),
            None => broker
                .image()
                .topics()
                .flat_map(|t| t.partitions.keys().map(|p| (t.name.clone(), *p)))
                .collect(),
        };
        let outcomes = match broker.elect_leaders(kind, &wanted) {
            Ok(outcomes) => outcomes,
            Err(e) => {
                // The controller could not be reached or refused: the whole request failed (v1+ says so
                // at the top; v0 clients see the partitions' codes).
                let code = topic_error_code(&e);
                response.error_code = code;
                response.replica_election_results = wanted
                    .iter()
                    .map(|(topic, index)| {
                        let mut r = PartitionResult::default();
                        r.partition_id = *index;
                        r.error_code = code;
                        r.error_message = Some(str_bytes(e.to_string()));
                        let mut t = ReplicaElectionResult::default();
                        t.topic = topic_name(topic);
                        t.partition_result = vec![r];
                        t
                    })
                    .collect();
                if frame.version() == 0 {
                    response.error_code = error_code::NONE;
                }
                return response;
            }
        };
        let mut by_topic: BTreeMap<&str, Vec<PartitionResult>> = BTreeMap::new();
        for ((topic, index), outcome) in wanted.iter().zip(outcomes) {
            let code = match outcome {
                None => error_code::UNKNOWN_TOPIC_OR_PARTITION,
                Some(ElectionOutcome::Elected(_)) => error_code::NONE,
                Some(ElectionOutcome::NotNeeded) => error_code::ELECTION_NOT_NEEDED,
                Some(ElectionOutcome::PreferredNotAvailable) => {
                    error_code::PREFERRED_LEADER_NOT_AVAILABLE
                }
                Some(ElectionOutcome::EligibleNotAvailable) => {
                    error_code::ELIGIBLE_LEADERS_NOT_AVAILABLE
                }
            };
            if every_partition && code != error_code::NONE {
                continue;
            }
            let mut r = PartitionResult::default();
            r.partition_id = *index;
            r.error_code = code;
            if code != error_code::NONE {
                r.error_message = Some(str_bytes(match code {
                    error_code::ELECTION_NOT_NEEDED => "the partition already has that leader",
                    error_code::PREFERRED_LEADER_NOT_AVAILABLE => {
                        "the preferred replica is not live or not in sync"
                    }
                    error_code::ELIGIBLE_LEADERS_NOT_AVAILABLE => "no live replica can lead",
                    _ => "unknown topic or partition",
                }));
            }
            by_topic.entry(topic).or_default().push(r);
        }
        response.replica_election_results = by_topic
            .into_iter()
            .map(|(topic, partition_result)| {
                let mut t = ReplicaElectionResult::default();
                t.topic = topic_name(topic);
                t.partition_result = partition_result;
                t
            })
            .collect();
        response
    })
}

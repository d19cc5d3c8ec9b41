//! DescribeQuorum (v0-2): the metadata quorum as its leader sees it, for `kafka-metadata-quorum.sh describe`
//! style tools: the leader and its epoch, the high watermark, each voter's and observer's log end and last
//! fetch. Any node answers: a broker asks the active controller, as Kafka's brokers forward this request.

use super::util::{handle_with, str_bytes};
use super::Response;
use crate::node::{Node, QuorumDescription, ReplicaProgress, TopicError};
use ferrite_wire::error_code;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node as QuorumNode, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse};

/// The metadata log's topic, Kafka's name: the only partition DescribeQuorum describes.
const METADATA_TOPIC: &str = "__cluster_metadata";

pub fn handle(broker: &Node, frame: &RequestFrame) -> Response {
    let version = frame.version();
    handle_with(frame, |request: DescribeQuorumRequest| {
        let mut response = DescribeQuorumResponse::default();
        let asks_for_quorum = request.topics.iter().any(|t| {
            t.topic_name.0.as_str() == METADATA_TOPIC
                && t.partitions.iter().any(|p| p.partition_index == 0)
        });
        // Asked only when a partition needs it: a request for nothing else costs no round trip.
        let described = asks_for_quorum.then(|| broker.describe_quorum());
        response.topics = request
            .topics
            .iter()
            .map(|t| {
                let mut topic = TopicData::default();
                topic.topic_name = t.topic_name.clone();
                topic.partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let is_metadata =
                            t.topic_name.0.as_str() == METADATA_TOPIC && p.partition_index == 0;
                        let mut data = PartitionData::default()
                            .with_partition_index(p.partition_index)
                            .with_leader_id(BrokerId(-1))
                            .with_leader_epoch(-1)
                            .with_high_watermark(-1);
                        match (&described, is_metadata) {
                            (Some(Ok(quorum)), true) => fill(&mut data, quorum, version),
                            (Some(Err(e)), true) => {
                                data.error_code = match e {
                                    TopicError::NotController(_) => {
                                        error_code::NOT_LEADER_OR_FOLLOWER
                                    }
                                    _ => error_code::REQUEST_TIMED_OUT,
                                };
                                if version >= 2 {
                                    data.error_message = Some(str_bytes(e.to_string()));
                                }
                            }
                            _ => data.error_code = error_code::UNKNOWN_TOPIC_OR_PARTITION,
                        }
                        data
                    })
                    .collect();
                topic
            })
            .collect();
        if version >= 2 && matches!(described, Some(Ok(_))) {
            response.nodes = voter_nodes(broker);
        }
        response
    })
}

fn fill(data: &mut PartitionData, quorum: &QuorumDescription, version: i16) {
    data.leader_id = BrokerId(quorum.leader_id);
    data.leader_epoch = quorum.leader_epoch;
    data.high_watermark = quorum.high_watermark;
    let state = |r: &ReplicaProgress| {
        let mut s = ReplicaState::default()
            .with_replica_id(BrokerId(r.node_id))
            .with_log_end_offset(r.log_end_offset);
        if version >= 1 {
            s.last_fetch_timestamp = r.last_fetch_timestamp;
            // A replica whose log reaches the high watermark was caught up when it last fetched.
            s.last_caught_up_timestamp = if r.log_end_offset >= quorum.high_watermark {
                r.last_fetch_timestamp
            } else {
                -1
            };
        }
        s
    };
    data.current_voters = quorum.voters.iter().map(state).collect();
    data.observers = quorum.observers.iter().map(state).collect();
}

/// The voters and their controller listeners (v2).
fn voter_nodes(broker: &Node) -> Vec<QuorumNode> {
    let quorum = &broker.config.quorum;
    if quorum.voters.is_empty() {
        // A single node is its own quorum; it has no controller listener, so it names its client one.
        let listener = Listener::default()
            .with_name(str_bytes("PLAINTEXT"))
            .with_host(str_bytes(broker.config.advertised_host.clone()))
            .with_port(broker.config.advertised_port);
        return vec![QuorumNode::default()
            .with_node_id(BrokerId(broker.node_id()))
            .with_listeners(vec![listener])];
    }
    quorum
        .voters
        .iter()
        .map(|v| {
            let listener = Listener::default()
                .with_name(str_bytes(quorum.controller_listener_name.clone()))
                .with_host(str_bytes(v.host.clone()))
                .with_port(v.port);
            QuorumNode::default()
                .with_node_id(BrokerId(v.id))
                .with_listeners(vec![listener])
        })
        .collect()
}

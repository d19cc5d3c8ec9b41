//! DescribeCluster (v0-2): this one broker, the cluster id, and the operations the client may perform on the
//! cluster when it asks.

use super::util::{handle_with, str_bytes};
use super::Response;
use crate::authz::{self, ResourceKind};
use crate::node::Node;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

pub fn handle(broker: &Node, frame: &RequestFrame) -> Response {
    handle_with(frame, |request: DescribeClusterRequest| {
        let mut response = DescribeClusterResponse::default();
        response.endpoint_type = request.endpoint_type;
        response.cluster_id = str_bytes(broker.cluster_id());
        response.controller_id = BrokerId(broker.node_id());
        let mut b = DescribeClusterBroker::default();
        b.broker_id = BrokerId(broker.node_id());
        b.host = str_bytes(broker.config.advertised_host.clone());
        b.port = i32::from(broker.config.advertised_port);
        response.brokers = vec![b];
        response.cluster_authorized_operations = authz::if_requested(
            request.include_cluster_authorized_operations,
            ResourceKind::Cluster,
            "kafka-cluster",
        );
        response
    })
}

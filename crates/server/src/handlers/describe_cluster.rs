//! DescribeCluster (v0-2): the cluster id, and either its live brokers (endpoint type 1, the default) with a
//! live broker as the "controller" clients send admin requests to, as KRaft-mode Kafka answers; or its
//! controllers (endpoint type 2, KIP-919) with the active one as the controller id. The operations the
//! client may perform on the cluster come back when it asks.

use super::util::{handle_with, str_bytes};
use super::Response;
use crate::authz::{self, ResourceKind};
use crate::node::Node;
use ferrite_replication::NodeId;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

/// KIP-919's endpoint type for controllers (1 is brokers).
const CONTROLLER_ENDPOINTS: i8 = 2;

pub fn handle(broker: &Node, frame: &RequestFrame) -> Response {
    handle_with(frame, |request: DescribeClusterRequest| {
        let mut response = DescribeClusterResponse::default();
        response.endpoint_type = request.endpoint_type;
        response.cluster_id = str_bytes(broker.cluster_id());
        let image = broker.image();
        if request.endpoint_type == CONTROLLER_ENDPOINTS {
            response.controller_id = BrokerId(broker.active_controller().unwrap_or(-1));
            response.brokers = broker
                .controller_endpoints()
                .into_iter()
                .map(|(id, host, port)| {
                    let mut b = DescribeClusterBroker::default();
                    b.broker_id = BrokerId(id);
                    b.host = str_bytes(host);
                    b.port = i32::from(port);
                    b
                })
                .collect();
        } else {
            let here = NodeId(broker.node_id());
            let live_here = image.broker(here).is_some() && !image.is_fenced(here);
            response.controller_id = BrokerId(if live_here {
                here.0
            } else {
                image.live_brokers().next().map_or(-1, |b| b.node_id.0)
            });
            response.brokers = image
                .live_brokers()
                .map(|r| {
                    let mut b = DescribeClusterBroker::default();
                    b.broker_id = BrokerId(r.node_id.0);
                    b.host = str_bytes(r.host.clone());
                    b.port = i32::from(r.port);
                    b.rack = r.rack.clone().map(str_bytes);
                    b
                })
                .collect();
        }
        response.cluster_authorized_operations = authz::if_requested(
            request.include_cluster_authorized_operations,
            ResourceKind::Cluster,
            "kafka-cluster",
        );
        response
    })
}

//! One module per Kafka API. [`dispatch`] routes by the API table in `ferrite-wire`, so what the broker
//! advertises in ApiVersions and what it handles are the same list (a test checks every entry has a handler).
//!
//! Every request runs its first phase when the connection reads it, in arrival order: that is where side
//! effects happen (appends, topic changes), so pipelined requests on one connection apply in order. A handler
//! may return a second phase (a durability wait, a fetch long poll) that runs concurrently; the connection
//! still writes responses in request order.

pub mod alter_configs;
pub mod api_versions;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
mod describe_quorum;
pub mod elect_leaders;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod partition_reassignments;
pub mod produce;
pub mod sync_group;
mod util;

#[cfg(test)]
mod fuzz_tests;

use crate::node::Node;
use bytes::Bytes;
use ferrite_wire::fetch_response::Chunk;
use ferrite_wire::request::{ParsedFrame, RequestFrame};
use kafka_protocol::messages::ApiKey;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tracing::Instrument;

/// What goes back on the connection for one request.
#[derive(Debug)]
pub enum Response {
    /// Nothing (acks=0 produce).
    None,
    Frame(Bytes),
    /// A fetch response: framing in memory, records as file slices.
    Chunks(Vec<Chunk>),
    /// The request cannot be answered (malformed body, acks=0 failure): close the connection.
    Close(String),
}

pub type Phase2 = Pin<Box<dyn Future<Output = Response> + Send + 'static>>;

pub enum Dispatched {
    Ready(Response),
    Deferred(Phase2),
}

type BlockingHandler = fn(&Node, &RequestFrame) -> Response;

/// Handlers whose whole work happens in the first phase, on a blocking thread (they may touch files).
fn blocking_handler(key: ApiKey) -> Option<BlockingHandler> {
    Some(match key {
        ApiKey::ApiVersions => api_versions::handle,
        ApiKey::Metadata => metadata::handle,
        ApiKey::ListOffsets => list_offsets::handle,
        ApiKey::OffsetForLeaderEpoch => offset_for_leader_epoch::handle,
        ApiKey::CreateTopics => create_topics::handle,
        ApiKey::DeleteTopics => delete_topics::handle,
        ApiKey::CreatePartitions => create_partitions::handle,
        ApiKey::ElectLeaders => elect_leaders::handle,
        ApiKey::AlterPartitionReassignments => partition_reassignments::handle_alter,
        ApiKey::ListPartitionReassignments => partition_reassignments::handle_list,
        ApiKey::DescribeConfigs => describe_configs::handle,
        ApiKey::AlterConfigs => alter_configs::handle_alter,
        ApiKey::IncrementalAlterConfigs => alter_configs::handle_incremental,
        ApiKey::DeleteRecords => delete_records::handle,
        ApiKey::DescribeCluster => describe_cluster::handle,
        ApiKey::DescribeQuorum => describe_quorum::handle,
        ApiKey::DescribeLogDirs => describe_log_dirs::handle,
        ApiKey::InitProducerId => init_producer_id::handle,
        ApiKey::FindCoordinator => find_coordinator::handle,
        ApiKey::Heartbeat => heartbeat::handle,
        ApiKey::LeaveGroup => leave_group::handle,
        ApiKey::OffsetFetch => offset_fetch::handle,
        ApiKey::DescribeGroups => describe_groups::handle,
        ApiKey::ListGroups => list_groups::handle,
        ApiKey::DeleteGroups => delete_groups::handle,
        ApiKey::OffsetDelete => offset_delete::handle,
        ApiKey::ConsumerGroupDescribe => consumer_group_describe::handle,
        _ => return None,
    })
}

/// Group requests that may wait for other members or for durability: a blocking first phase that returns
/// the (possibly deferred) answer.
fn is_group_waiting(key: ApiKey) -> bool {
    matches!(
        key,
        ApiKey::JoinGroup
            | ApiKey::SyncGroup
            | ApiKey::OffsetCommit
            | ApiKey::ConsumerGroupHeartbeat
    )
}

/// Whether dispatch has a handler for `key`.
pub fn is_handled(key: ApiKey) -> bool {
    matches!(key, ApiKey::Produce | ApiKey::Fetch)
        || is_group_waiting(key)
        || blocking_handler(key).is_some()
}

/// Who sent a request, for the APIs that record it (JoinGroup's client host).
#[derive(Debug, Clone, Copy)]
pub struct Client {
    pub peer: Option<std::net::SocketAddr>,
}

impl Client {
    /// Kafka's form of a member's host: "/" and the address.
    fn host(self) -> String {
        self.peer
            .map_or_else(String::new, |p| format!("/{}", p.ip()))
    }
}

fn group_waiting(broker: &Arc<Node>, frame: RequestFrame, client: Client) -> Dispatched {
    match frame.api_key {
        ApiKey::JoinGroup => join_group::handle(broker, frame, client.host()),
        ApiKey::SyncGroup => sync_group::handle(broker, frame),
        ApiKey::OffsetCommit => offset_commit::handle(broker, frame),
        ApiKey::ConsumerGroupHeartbeat => {
            consumer_group_heartbeat::handle(broker, frame, client.host())
        }
        key => Dispatched::Ready(Response::Close(format!("no handler for {key:?}"))),
    }
}

pub async fn dispatch(broker: &Arc<Node>, parsed: ParsedFrame, client: Client) -> Dispatched {
    let frame = match parsed {
        ParsedFrame::ApiVersionsFallback { correlation_id } => {
            return Dispatched::Ready(api_versions::unsupported_version_fallback(correlation_id))
        }
        ParsedFrame::Request(frame) => frame,
    };
    let span = tracing::debug_span!(
        "request",
        api = ?frame.api_key,
        version = frame.version(),
        correlation_id = frame.correlation_id(),
        client_id = frame.header.client_id.as_deref().unwrap_or(""),
    );
    match frame.api_key {
        ApiKey::Produce => produce::handle(broker, frame).instrument(span).await,
        ApiKey::Fetch => Dispatched::Deferred(Box::pin(
            fetch::handle(Arc::clone(broker), frame).instrument(span),
        )),
        key if is_group_waiting(key) => {
            let broker = Arc::clone(broker);
            let work = tokio::task::spawn_blocking(move || {
                span.in_scope(|| match group_waiting(&broker, frame, client) {
                    Dispatched::Deferred(rest) => {
                        Dispatched::Deferred(Box::pin(rest.instrument(span.clone())))
                    }
                    ready => ready,
                })
            });
            work.await.unwrap_or_else(|e| {
                Dispatched::Ready(Response::Close(format!("{key:?} handler panicked: {e}")))
            })
        }
        key => {
            let Some(handler) = blocking_handler(key) else {
                return Dispatched::Ready(Response::Close(format!("no handler for {key:?}")));
            };
            let broker = Arc::clone(broker);
            let work =
                tokio::task::spawn_blocking(move || span.in_scope(|| handler(&broker, &frame)));
            Dispatched::Ready(
                work.await
                    .unwrap_or_else(|e| Response::Close(format!("{key:?} handler panicked: {e}"))),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_advertised_api_has_a_handler() {
        for api in ferrite_wire::api_table::SUPPORTED_APIS {
            assert!(
                is_handled(api.key),
                "{:?} is advertised but not handled",
                api.key
            );
        }
    }
}

#[cfg(test)]
mod readme_tests {
    /// README.md's API table is generated from the registry; regenerate it if this fails.
    #[test]
    fn readme_api_table_matches_the_registry() {
        let readme = include_str!("../../../../README.md");
        let start = readme
            .find("<!-- api-table:start -->\n")
            .expect("start marker")
            + "<!-- api-table:start -->\n".len();
        let end = readme.find("<!-- api-table:end -->").expect("end marker");
        assert_eq!(
            &readme[start..end],
            ferrite_wire::api_table::markdown_table()
        );
    }
}

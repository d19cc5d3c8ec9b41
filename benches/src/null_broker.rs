//! The "null broker": the client-side ceiling. It speaks just enough Kafka to satisfy librdkafka's producer
//! (ApiVersions with the same ranges as Ferrite, Metadata naming itself leader of every partition, Produce
//! acknowledged without storing anything) so the same load generator can be pointed at it. What it costs per
//! request (reading the frame, decoding the produce request, encoding the answer) is a floor that any broker
//! pays; everything above that in Ferrite is storage and bookkeeping.

use bytes::{Buf, BytesMut};
use ferrite_wire::frame::frame_length;
use ferrite_wire::request::{parse_request, ParsedFrame, RequestFrame};
use ferrite_wire::response::encode_response;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, BrokerId, MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MAX_FRAME_BYTES: usize = 100 * 1024 * 1024;
const NODE: BrokerId = BrokerId(1);

/// Shared state: partitions per topic (set by the bench before producing) and what was acknowledged.
#[derive(Default)]
pub struct NullState {
    partitions: Mutex<HashMap<String, i32>>,
    pub acked_bytes: AtomicU64,
}

pub struct NullBroker {
    pub addr: String,
    pub state: Arc<NullState>,
    _runtime: tokio::runtime::Runtime,
}

impl NullBroker {
    /// Starts on 127.0.0.1:0 in its own multi-threaded runtime (as Ferrite's).
    pub fn start() -> std::io::Result<NullBroker> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("null-broker")
            .build()?;
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0"))?;
        let local = listener.local_addr()?;
        let state = Arc::new(NullState::default());
        let accept_state = Arc::clone(&state);
        runtime.spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let _ = socket.set_nodelay(true);
                let state = Arc::clone(&accept_state);
                tokio::spawn(async move {
                    let _ = serve(socket, local.port(), state).await;
                });
            }
        });
        Ok(NullBroker {
            addr: local.to_string(),
            state,
            _runtime: runtime,
        })
    }

    /// Makes Metadata answer `partitions` partitions for `topic` (1 if never set).
    pub fn set_partitions(&self, topic: &str, partitions: i32) {
        let mut map = self
            .state
            .partitions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.insert(topic.to_string(), partitions);
    }
}

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn serve(mut socket: TcpStream, port: u16, state: Arc<NullState>) -> Result<(), Error> {
    let mut buf = BytesMut::with_capacity(1 << 20);
    let mut out = Vec::with_capacity(1 << 16);
    loop {
        while let Some(len) = frame_length(&buf, MAX_FRAME_BYTES)? {
            let frame = buf.split_to(len).freeze().slice(4..);
            match parse_request(frame)? {
                ParsedFrame::ApiVersionsFallback { correlation_id } => {
                    let body = ferrite_wire::api_table::api_versions_response(35);
                    out.extend_from_slice(&encode_response(
                        ApiKey::ApiVersions,
                        0,
                        correlation_id,
                        &body,
                    )?);
                }
                ParsedFrame::Request(req) => {
                    if let Some(resp) = answer(&req, port, &state)? {
                        out.extend_from_slice(&resp);
                    }
                }
            }
        }
        if !out.is_empty() {
            socket.write_all(&out).await?;
            out.clear();
        }
        buf.reserve(1 << 16);
        if socket.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}

fn answer(req: &RequestFrame, port: u16, state: &NullState) -> Result<Option<bytes::Bytes>, Error> {
    let (key, version, id) = (req.api_key, req.version(), req.correlation_id());
    let mut body = req.body.clone();
    Ok(Some(match key {
        ApiKey::ApiVersions => encode_response(
            key,
            version,
            id,
            &ferrite_wire::api_table::api_versions_response(0),
        )?,
        ApiKey::Metadata => {
            let request = MetadataRequest::decode(&mut body, version)?;
            encode_response(key, version, id, &metadata(&request, port, state))?
        }
        ApiKey::Produce => {
            let request = ProduceRequest::decode(&mut body, version)?;
            let response = produce(&request, state);
            if request.acks == 0 {
                return Ok(None);
            }
            encode_response(key, version, id, &response)?
        }
        other => return Err(format!("null broker does not handle {other:?}").into()),
    }))
}

fn metadata(request: &MetadataRequest, port: u16, state: &NullState) -> MetadataResponse {
    let map = state.partitions.lock().unwrap_or_else(|p| p.into_inner());
    let names: Vec<String> = match &request.topics {
        Some(list) if !list.is_empty() => list
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
            .collect(),
        _ => map.keys().cloned().collect(),
    };
    let mut response = MetadataResponse::default();
    let mut b = MetadataResponseBroker::default();
    b.node_id = NODE;
    b.host = StrBytes::from_static_str("127.0.0.1");
    b.port = i32::from(port);
    response.brokers = vec![b];
    response.controller_id = NODE;
    response.cluster_id = Some(StrBytes::from_static_str("null-broker"));
    response.topics = names
        .into_iter()
        .map(|name| {
            let count = map.get(&name).copied().unwrap_or(1);
            let mut t = MetadataResponseTopic::default();
            t.name = Some(TopicName(StrBytes::from_string(name)));
            t.partitions = (0..count)
                .map(|i| {
                    let mut p = MetadataResponsePartition::default();
                    p.partition_index = i;
                    p.leader_id = NODE;
                    p.replica_nodes = vec![NODE];
                    p.isr_nodes = vec![NODE];
                    p
                })
                .collect();
            t
        })
        .collect();
    response
}

fn produce(request: &ProduceRequest, state: &NullState) -> ProduceResponse {
    let mut response = ProduceResponse::default();
    let mut bytes = 0u64;
    response.responses = request
        .topic_data
        .iter()
        .map(|t| {
            let mut tr = TopicProduceResponse::default();
            tr.name = t.name.clone();
            tr.topic_id = t.topic_id;
            tr.partition_responses = t
                .partition_data
                .iter()
                .map(|p| {
                    bytes += p
                        .records
                        .as_ref()
                        .map(|r| r.remaining() as u64)
                        .unwrap_or(0);
                    let mut pr = PartitionProduceResponse::default();
                    pr.index = p.index;
                    pr.base_offset = 0;
                    pr.log_append_time_ms = -1;
                    pr
                })
                .collect();
            tr
        })
        .collect();
    state.acked_bytes.fetch_add(bytes, Ordering::Relaxed);
    response
}

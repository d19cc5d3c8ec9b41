//! What the nodes say, one fallible request at a time: Metadata, DescribeCluster, DescribeQuorum and
//! CreateTopics over raw connections, decoded into small views.
#![allow(dead_code, clippy::unwrap_used)]

use super::*;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::{
    describe_quorum_request, ApiKey, CreateTopicsRequest, CreateTopicsResponse,
    DescribeClusterRequest, DescribeClusterResponse, DescribeQuorumRequest, DescribeQuorumResponse,
    MetadataRequest, MetadataResponse, RequestHeader, TopicName,
};
use kafka_protocol::protocol::{encode_request_header_into_buffer, Decodable, Encodable, StrBytes};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;
/// Sends one request on a new connection and decodes the answer; any failure (refused, closed, timed out,
/// undecodable) is an error rather than a panic.
pub fn request<Req: Encodable, Resp: Decodable>(
    addr: &str,
    key: ApiKey,
    version: i16,
    body: &Req,
    timeout: Duration,
) -> io::Result<Resp> {
    const CORRELATION_ID: i32 = 7;
    let socket: SocketAddr = addr.parse().map_err(io::Error::other)?;
    let mut stream = TcpStream::connect_timeout(&socket, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut header = RequestHeader::default();
    header.request_api_key = key as i16;
    header.request_api_version = version;
    header.correlation_id = CORRELATION_ID;
    header.client_id = Some(StrBytes::from_static_str("cluster-test"));
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    encode_request_header_into_buffer(&mut buf, &header)
        .map_err(|e| io::Error::other(e.to_string()))?;
    body.encode(&mut buf, version)
        .map_err(|e| io::Error::other(e.to_string()))?;
    let size = i32::try_from(buf.len() - 4).unwrap();
    buf[..4].copy_from_slice(&size.to_be_bytes());
    stream.write_all(&buf)?;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size)?;
    let size = usize::try_from(i32::from_be_bytes(size)).map_err(io::Error::other)?;
    let mut frame = vec![0u8; size];
    stream.read_exact(&mut frame)?;
    let mut frame = Bytes::from(frame);
    if frame.remaining() < 4 || frame.get_i32() != CORRELATION_ID {
        return Err(io::Error::other("response with another correlation id"));
    }
    if key.response_header_version(version) >= 1 {
        frame.advance(1);
    }
    Resp::decode(&mut frame, version).map_err(|e| io::Error::other(e.to_string()))
}

/// One partition as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionView {
    pub partition: i32,
    pub error_code: i16,
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

/// A Metadata (v12, all topics) answer.
#[derive(Debug, Clone)]
pub struct MetadataView {
    /// The node that answered.
    pub asked: i32,
    pub controller_id: i32,
    /// Broker id to advertised `host:port`.
    pub brokers: BTreeMap<i32, String>,
    /// Topic name to (error code, partitions by index).
    pub topics: BTreeMap<String, (i16, Vec<PartitionView>)>,
}

impl MetadataView {
    pub fn broker_ids(&self) -> BTreeSet<i32> {
        self.brokers.keys().copied().collect()
    }

    /// The partitions of a topic listed without a topic-level error.
    pub fn partitions(&self, topic: &str) -> Option<&[PartitionView]> {
        match self.topics.get(topic) {
            Some((NONE, partitions)) => Some(partitions),
            _ => None,
        }
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionView> {
        self.partitions(topic)?
            .iter()
            .find(|p| p.partition == partition)
    }

    /// Partition index to leader id.
    pub fn leaders(&self, topic: &str) -> BTreeMap<i32, i32> {
        self.partitions(topic)
            .unwrap_or_default()
            .iter()
            .map(|p| (p.partition, p.leader))
            .collect()
    }

    /// The topic has `count` partitions, each with a leader and no error.
    pub fn has_led_topic(&self, topic: &str, count: usize) -> bool {
        self.partitions(topic).is_some_and(|ps| {
            ps.len() == count && ps.iter().all(|p| p.error_code == NONE && p.leader >= 0)
        })
    }
}

/// A DescribeQuorum answer for `__cluster_metadata-0`.
#[derive(Debug, Clone)]
pub struct QuorumView {
    pub error_code: i16,
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub high_watermark: i64,
    /// Voter id to log end offset.
    pub voters: BTreeMap<i32, i64>,
    /// Observer (broker-only node) id to log end offset.
    pub observers: BTreeMap<i32, i64>,
}

/// A DescribeCluster answer.
#[derive(Debug, Clone)]
pub struct ClusterView {
    pub error_code: i16,
    pub controller_id: i32,
    pub brokers: BTreeMap<i32, String>,
}

impl Cluster {
    fn client_addr(&self, id: i32) -> &str {
        let node = self.node(id);
        assert!(!node.paused, "node {id} is paused: it would not answer");
        node.addr()
    }

    /// Metadata (v12) of every topic, asked of broker `id`.
    pub fn metadata(&self, id: i32) -> io::Result<MetadataView> {
        let mut req = MetadataRequest::default();
        req.topics = None;
        req.allow_auto_topic_creation = false;
        let r: MetadataResponse = request(
            self.client_addr(id),
            ApiKey::Metadata,
            12,
            &req,
            REQUEST_TIMEOUT,
        )?;
        let brokers = r
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port)))
            .collect();
        let topics = r
            .topics
            .iter()
            .map(|t| {
                let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
                let mut partitions: Vec<PartitionView> = t
                    .partitions
                    .iter()
                    .map(|p| PartitionView {
                        partition: p.partition_index,
                        error_code: p.error_code,
                        leader: p.leader_id.0,
                        leader_epoch: p.leader_epoch,
                        replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                        isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                    })
                    .collect();
                partitions.sort_by_key(|p| p.partition);
                (name, (t.error_code, partitions))
            })
            .collect();
        Ok(MetadataView {
            asked: id,
            controller_id: r.controller_id.0,
            brokers,
            topics,
        })
    }

    /// DescribeCluster (v1), asked of broker `id`.
    pub fn describe_cluster(&self, id: i32) -> io::Result<ClusterView> {
        let req = DescribeClusterRequest::default();
        let r: DescribeClusterResponse = request(
            self.client_addr(id),
            ApiKey::DescribeCluster,
            1,
            &req,
            REQUEST_TIMEOUT,
        )?;
        Ok(ClusterView {
            error_code: r.error_code,
            controller_id: r.controller_id.0,
            brokers: r
                .brokers
                .iter()
                .map(|b| (b.broker_id.0, format!("{}:{}", b.host, b.port)))
                .collect(),
        })
    }

    /// DescribeQuorum (v1) of `__cluster_metadata-0`, asked of broker `id`.
    pub fn quorum(&self, id: i32) -> io::Result<QuorumView> {
        let mut partition = describe_quorum_request::PartitionData::default();
        partition.partition_index = 0;
        let mut topic = describe_quorum_request::TopicData::default();
        topic.topic_name = TopicName(StrBytes::from_static_str("__cluster_metadata"));
        topic.partitions = vec![partition];
        let mut req = DescribeQuorumRequest::default();
        req.topics = vec![topic];
        let r: DescribeQuorumResponse = request(
            self.client_addr(id),
            ApiKey::DescribeQuorum,
            1,
            &req,
            REQUEST_TIMEOUT,
        )?;
        if r.error_code != NONE {
            return Err(io::Error::other(format!(
                "DescribeQuorum error {}",
                r.error_code
            )));
        }
        let p = r.topics.first().and_then(|t| t.partitions.first());
        let p = p.ok_or_else(|| io::Error::other("DescribeQuorum answered no partition"))?;
        let progress =
            |replicas: &[kafka_protocol::messages::describe_quorum_response::ReplicaState]| {
                replicas
                    .iter()
                    .map(|r| (r.replica_id.0, r.log_end_offset))
                    .collect()
            };
        Ok(QuorumView {
            error_code: p.error_code,
            leader_id: p.leader_id.0,
            leader_epoch: p.leader_epoch,
            high_watermark: p.high_watermark,
            voters: progress(&p.current_voters),
            observers: progress(&p.observers),
        })
    }

    /// CreateTopics (v7) of one topic through broker `id`; the topic's (error code, message). The socket waits
    /// [`CREATE_TOPIC_TIMEOUT`], longer than the server takes to give up on a quorum without a majority.
    pub fn create_topic(
        &self,
        id: i32,
        name: &str,
        partitions: i32,
        replication_factor: i16,
    ) -> io::Result<(i16, String)> {
        let mut topic = CreatableTopic::default();
        topic.name = TopicName(StrBytes::from_string(name.to_string()));
        topic.num_partitions = partitions;
        topic.replication_factor = replication_factor;
        let mut req = CreateTopicsRequest::default();
        req.topics = vec![topic];
        req.timeout_ms = 30_000;
        let r: CreateTopicsResponse = request(
            self.client_addr(id),
            ApiKey::CreateTopics,
            7,
            &req,
            CREATE_TOPIC_TIMEOUT,
        )?;
        let t = r
            .topics
            .first()
            .ok_or_else(|| io::Error::other("CreateTopics answered no topic"))?;
        let message = t
            .error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default();
        Ok((t.error_code, message))
    }

    /// Produce (v9) of one record to `topic`-`partition` through broker `id` with `acks`: the partition's
    /// error code. Unlike a client library, it does not go to the leader by itself, nor retry.
    pub fn produce_raw(&self, id: i32, topic: &str, partition: i32, acks: i16) -> io::Result<i16> {
        use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
        use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let record = ferrite_log::batch_builder::RecordSpec {
            key: Some(b"raw"),
            value: Some(b"raw produce"),
            headers: vec![],
            timestamp: now_ms,
        };
        let mut records = bytes::BytesMut::new();
        ferrite_log::batch_builder::encode_batch(&mut records, &[record], -1, None);
        let mut data = PartitionProduceData::default();
        data.index = partition;
        data.records = Some(records.freeze());
        let mut t = TopicProduceData::default();
        t.name = TopicName(StrBytes::from_string(topic.to_string()));
        t.partition_data = vec![data];
        let mut req = ProduceRequest::default();
        req.acks = acks;
        req.timeout_ms = 5000;
        req.topic_data = vec![t];
        let r: ProduceResponse = request(
            self.client_addr(id),
            ApiKey::Produce,
            9,
            &req,
            REQUEST_TIMEOUT,
        )?;
        r.responses
            .first()
            .and_then(|t| t.partition_responses.first())
            .map(|p| p.error_code)
            .ok_or_else(|| io::Error::other("Produce answered no partition"))
    }

    /// Fetch (v12) of `topic`-`partition` from offset 0 through broker `id`, as a consumer, without waiting:
    /// the partition's (error code, high watermark).
    pub fn fetch_raw(&self, id: i32, topic: &str, partition: i32) -> io::Result<(i16, i64)> {
        use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
        use kafka_protocol::messages::{FetchRequest, FetchResponse};
        let mut p = FetchPartition::default();
        p.partition = partition;
        p.partition_max_bytes = 1 << 20;
        let mut t = FetchTopic::default();
        t.topic = TopicName(StrBytes::from_string(topic.to_string()));
        t.partitions = vec![p];
        let mut req = FetchRequest::default();
        req.max_bytes = 1 << 20;
        req.topics = vec![t];
        let r: FetchResponse = request(
            self.client_addr(id),
            ApiKey::Fetch,
            12,
            &req,
            REQUEST_TIMEOUT,
        )?;
        r.responses
            .first()
            .and_then(|t| t.partitions.first())
            .map(|p| (p.error_code, p.high_watermark))
            .ok_or_else(|| io::Error::other("Fetch answered no partition"))
    }

    /// [`Cluster::produce_raw`] again (every 50 ms) until it answers `want` or `timeout` passes; the last
    /// answer. For an expectation that holds once the leader has applied metadata other nodes already show (a
    /// broker applies a change to its replicas just after its Metadata answers show it).
    pub fn produce_raw_until(
        &self,
        id: i32,
        topic: &str,
        partition: i32,
        acks: i16,
        want: i16,
        timeout: Duration,
    ) -> i16 {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let code = self.produce_raw(id, topic, partition, acks).unwrap();
            if code == want || std::time::Instant::now() >= deadline {
                return code;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// CreateTopics (v7) of one topic with topic configs through broker `id`; panics unless it succeeds.
    pub fn create_topic_with(
        &self,
        id: i32,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &[(&str, &str)],
    ) {
        use kafka_protocol::messages::create_topics_request::CreatableTopicConfig;
        let mut topic = CreatableTopic::default();
        topic.name = TopicName(StrBytes::from_string(name.to_string()));
        topic.num_partitions = partitions;
        topic.replication_factor = replication_factor;
        topic.configs = configs
            .iter()
            .map(|(k, v)| {
                let mut c = CreatableTopicConfig::default();
                c.name = StrBytes::from_string(k.to_string());
                c.value = Some(StrBytes::from_string(v.to_string()));
                c
            })
            .collect();
        let mut req = CreateTopicsRequest::default();
        req.topics = vec![topic];
        req.timeout_ms = 30_000;
        let r: CreateTopicsResponse = request(
            self.client_addr(id),
            ApiKey::CreateTopics,
            7,
            &req,
            CREATE_TOPIC_TIMEOUT,
        )
        .unwrap();
        let t = &r.topics[0];
        assert_eq!(t.error_code, NONE, "create {name}: {:?}", t.error_message);
    }

    /// Waits until every partition of `topic` has `isr` in-sync replicas and a leader, as broker `id` and every
    /// other live broker say; returns how long that took.
    pub fn wait_for_isr(
        &self,
        id: i32,
        topic: &str,
        partitions: usize,
        isr: usize,
        timeout: Duration,
    ) -> Duration {
        let holds = |node: i32| {
            self.metadata(node).is_ok_and(|view| {
                view.partitions(topic).is_some_and(|ps| {
                    ps.len() == partitions && ps.iter().all(|p| p.leader >= 0 && p.isr.len() == isr)
                })
            })
        };
        self.wait_until(
            timeout,
            &format!("{topic}: {partitions} partitions with {isr} in sync"),
            || holds(id) && self.live_brokers().into_iter().all(holds),
        )
    }

    /// Creates a topic through broker `id` and panics unless it succeeds.
    pub fn create_topic_ok(&self, id: i32, name: &str, partitions: i32) {
        let result = self.create_topic(id, name, partitions, 1);
        assert!(
            matches!(result, Ok((NONE, _))),
            "create {name} through node {id}: {result:?}"
        );
    }

    /// Waits until the quorum (asked of any live broker) names a leader that is running; returns its id.
    pub fn active_controller(&self) -> i32 {
        let mut leader = -1;
        self.wait_until(Duration::from_secs(30), "a running quorum leader", || {
            leader = self
                .live_brokers()
                .into_iter()
                .filter_map(|id| self.quorum(id).ok())
                .map(|q| q.leader_id)
                .find(|l| self.nodes.iter().any(|n| n.id == *l && n.is_live()))
                .unwrap_or(-1);
            leader >= 0
        });
        leader
    }

    /// Waits until every live broker's Metadata lists exactly `n` brokers; returns how long that took.
    pub fn wait_for_brokers(&self, n: usize) -> Duration {
        let what = format!("every live broker lists {n} brokers");
        self.wait_until(Duration::from_secs(30), &what, || {
            self.live_brokers()
                .into_iter()
                .all(|id| self.metadata(id).is_ok_and(|m| m.brokers.len() == n))
        })
    }

    /// Waits until every live broker's Metadata lists `topic` with `partitions` led partitions.
    pub fn wait_for_topic(&self, topic: &str, partitions: usize, timeout: Duration) -> Duration {
        let what = format!("every live broker lists {topic} with {partitions} led partitions");
        self.wait_until(timeout, &what, || {
            self.live_brokers().into_iter().all(|id| {
                self.metadata(id)
                    .is_ok_and(|m| m.has_led_topic(topic, partitions))
            })
        })
    }
}

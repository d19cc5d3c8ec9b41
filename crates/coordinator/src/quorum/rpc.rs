//! The quorum's wire, on the controller listener: length-prefixed JSON frames over TCP.
//!
//! ```text
//!   frame:   size u32 (big-endian) | JSON of QuorumRequest or QuorumResponse
//!   voters:  AppendEntries, Vote, InstallSnapshot            (openraft's RPCs, TcpNetwork below)
//!   brokers: Fetch { from }   committed metadata from an index on (a broker that is not a voter follows the
//!                             metadata log this way, as Kafka's brokers fetch __cluster_metadata)
//!            Controller(..)   a metadata change or a broker's registration and heartbeats, for the active
//!                             controller; its shape is the server's, this layer carries it as JSON
//! ```
//! One request at a time per connection; a connection that fails is dropped and made again on the next call.

use super::types::{MetadataRaftConfig, NodeId, Raft};
use ferrite_metadata::MetadataRecord;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The largest frame either side accepts (a snapshot of a large cluster's metadata fits).
const MAX_FRAME_BYTES: u32 = 256 << 20;
/// How long making a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize, Deserialize)]
pub enum QuorumRequest {
    AppendEntries(AppendEntriesRequest<MetadataRaftConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<MetadataRaftConfig>),
    /// Committed metadata from index `from` on (0: everything, as a snapshot), waiting up to `max_wait_ms` for
    /// some if there is none yet. `node_id` is the follower's, so the leader can report it as an observer.
    Fetch {
        node_id: NodeId,
        from: u64,
        max_wait_ms: u64,
    },
    /// For the active controller.
    Controller(serde_json::Value),
}

#[derive(Debug, Serialize, Deserialize)]
pub enum QuorumResponse {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    Fetch(MetadataBatch),
    Controller(serde_json::Value),
    /// This node cannot answer that (it is not a voter, or is stopping); ask another.
    Unavailable(String),
}

/// Committed metadata for a follower of the log.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MetadataBatch {
    /// The whole state as of the index, when the follower is behind what the log still holds (a snapshot
    /// covers it) or has nothing yet.
    pub snapshot: Option<(u64, Vec<MetadataRecord>)>,
    /// Committed entries after that, in order: (index, records).
    pub entries: Vec<(u64, Vec<MetadataRecord>)>,
    /// The active controller as the answering node knows it.
    pub leader: Option<NodeId>,
}

async fn write_frame<T: Serialize>(stream: &mut TcpStream, value: &T) -> io::Result<()> {
    let body = serde_json::to_vec(value).map_err(io::Error::other)?;
    let size = u32::try_from(body.len())
        .ok()
        .filter(|s| *s <= MAX_FRAME_BYTES)
        .ok_or_else(|| io::Error::other("frame too large"))?;
    stream.write_all(&size.to_be_bytes()).await?;
    stream.write_all(&body).await?;
    stream.flush().await
}

async fn read_frame<T: DeserializeOwned>(stream: &mut TcpStream) -> io::Result<T> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).await?;
    let size = u32::from_be_bytes(size);
    if size > MAX_FRAME_BYTES {
        return Err(io::Error::other(format!(
            "frame of {size} bytes is too large"
        )));
    }
    let mut body = vec![0u8; size as usize];
    stream.read_exact(&mut body).await?;
    serde_json::from_slice(&body).map_err(io::Error::other)
}

/// A connection to one node of the quorum, made again when it breaks.
#[derive(Debug)]
pub struct Peer {
    address: String,
    stream: Option<TcpStream>,
}

impl Peer {
    pub fn new(address: impl Into<String>) -> Peer {
        Peer {
            address: address.into(),
            stream: None,
        }
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// Sends one request and reads its answer within `timeout`; on any failure the connection is dropped.
    pub async fn call(
        &mut self,
        request: &QuorumRequest,
        timeout: Duration,
    ) -> io::Result<QuorumResponse> {
        let answer = tokio::time::timeout(timeout, self.exchange(request)).await;
        match answer {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => {
                self.stream = None;
                Err(e)
            }
            Err(_) => {
                self.stream = None;
                Err(io::Error::new(io::ErrorKind::TimedOut, "no answer in time"))
            }
        }
    }

    async fn exchange(&mut self, request: &QuorumRequest) -> io::Result<QuorumResponse> {
        if self.stream.is_none() {
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.address))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
        }
        let stream = self
            .stream
            .as_mut()
            .ok_or_else(|| io::Error::other("not connected"))?;
        write_frame(stream, request).await?;
        read_frame(stream).await
    }
}

/// openraft's network over [`Peer`] connections, to the addresses the membership gives the voters.
#[derive(Debug, Clone, Default)]
pub struct TcpNetwork;

/// The client for one target node.
#[derive(Debug)]
pub struct TcpClient {
    target: NodeId,
    peer: Peer,
}

impl RaftNetworkFactory<MetadataRaftConfig> for TcpNetwork {
    type Network = TcpClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> TcpClient {
        TcpClient {
            target,
            peer: Peer::new(node.addr.clone()),
        }
    }
}

fn unreachable<E: std::error::Error>(e: io::Error) -> RPCError<NodeId, BasicNode, E> {
    RPCError::Unreachable(Unreachable::new(&e))
}

fn unexpected<E: std::error::Error>(target: NodeId, what: &str) -> RPCError<NodeId, BasicNode, E> {
    let e = io::Error::other(format!("node {target} answered {what}"));
    RPCError::Network(NetworkError::new(&e))
}

impl TcpClient {
    async fn send(
        &mut self,
        request: QuorumRequest,
        option: &RPCOption,
    ) -> io::Result<QuorumResponse> {
        self.peer.call(&request, option.hard_ttl()).await
    }
}

impl RaftNetwork<MetadataRaftConfig> for TcpClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<MetadataRaftConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        match self.send(QuorumRequest::AppendEntries(rpc), &option).await {
            Ok(QuorumResponse::AppendEntries(Ok(r))) => Ok(r),
            Ok(QuorumResponse::AppendEntries(Err(e))) => Err(RPCError::RemoteError(
                openraft::error::RemoteError::new(self.target, e),
            )),
            Ok(_) => Err(unexpected(self.target, "something else")),
            Err(e) => Err(unreachable(e)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<MetadataRaftConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        match self
            .send(QuorumRequest::InstallSnapshot(rpc), &option)
            .await
        {
            Ok(QuorumResponse::InstallSnapshot(Ok(r))) => Ok(r),
            Ok(QuorumResponse::InstallSnapshot(Err(e))) => Err(RPCError::RemoteError(
                openraft::error::RemoteError::new(self.target, e),
            )),
            Ok(_) => Err(unexpected(self.target, "something else")),
            Err(e) => Err(unreachable(e)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        match self.send(QuorumRequest::Vote(rpc), &option).await {
            Ok(QuorumResponse::Vote(Ok(r))) => Ok(r),
            Ok(QuorumResponse::Vote(Err(e))) => Err(RPCError::RemoteError(
                openraft::error::RemoteError::new(self.target, e),
            )),
            Ok(_) => Err(unexpected(self.target, "something else")),
            Err(e) => Err(unreachable(e)),
        }
    }
}

/// A boxed future, for the service's calls.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What a node's controller listener answers with, besides Raft's own RPCs.
pub trait QuorumService: Send + Sync + 'static {
    /// The Raft instance, on a voter.
    fn raft(&self) -> Option<Raft>;
    /// Committed metadata from `from` on (waiting up to `max_wait` for some), for follower `node_id`.
    fn fetch(&self, node_id: NodeId, from: u64, max_wait: Duration) -> BoxFuture<QuorumResponse>;
    /// A request for the active controller.
    fn controller(&self, request: serde_json::Value) -> BoxFuture<QuorumResponse>;
}

/// Serves the controller listener until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    service: Arc<dyn QuorumService>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        match accepted {
            Ok((stream, _)) => {
                let service = Arc::clone(&service);
                tokio::spawn(connection(stream, service));
            }
            Err(e) => {
                tracing::warn!(error = %e, "controller listener accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One peer's connection: requests answered in order until it closes or sends something unreadable.
async fn connection(mut stream: TcpStream, service: Arc<dyn QuorumService>) {
    let _ = stream.set_nodelay(true);
    loop {
        let request: QuorumRequest = match read_frame(&mut stream).await {
            Ok(request) => request,
            Err(e) => {
                if e.kind() != io::ErrorKind::UnexpectedEof {
                    tracing::debug!(error = %e, "closing a quorum connection");
                }
                return;
            }
        };
        let response = answer(service.as_ref(), request).await;
        if write_frame(&mut stream, &response).await.is_err() {
            return;
        }
    }
}

async fn answer(service: &dyn QuorumService, request: QuorumRequest) -> QuorumResponse {
    let not_a_voter = || QuorumResponse::Unavailable("not a voter of the metadata quorum".into());
    match request {
        QuorumRequest::AppendEntries(rpc) => match service.raft() {
            Some(raft) => QuorumResponse::AppendEntries(raft.append_entries(rpc).await),
            None => not_a_voter(),
        },
        QuorumRequest::Vote(rpc) => match service.raft() {
            Some(raft) => QuorumResponse::Vote(raft.vote(rpc).await),
            None => not_a_voter(),
        },
        QuorumRequest::InstallSnapshot(rpc) => match service.raft() {
            Some(raft) => QuorumResponse::InstallSnapshot(raft.install_snapshot(rpc).await),
            None => not_a_voter(),
        },
        QuorumRequest::Fetch {
            node_id,
            from,
            max_wait_ms,
        } => {
            let max_wait = Duration::from_millis(max_wait_ms.min(10_000));
            service.fetch(node_id, from, max_wait).await
        }
        QuorumRequest::Controller(request) => service.controller(request).await,
    }
}

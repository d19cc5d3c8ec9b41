//! This node's part in the metadata quorum: the Raft instance over the metadata log, the thread that applies
//! what the quorum commits to this node, and the write path every metadata change takes.
//!
//! ```text
//!   controller.rs ─▶ commit(records) ─▶ raft.client_write ─▶ committed by the quorum
//!                                                              │ state machine applies, in log order
//!                  waits until this node applied it ◀── applier thread: image, delta ─▶ publish.rs
//! ```
//! With no quorum settings the quorum is this node alone: it elects itself at start and its network has no
//! peers.

use super::{Node, TopicError};
use ferrite_coordinator::quorum::{
    Applied, LogStore, MetadataCommand, MetadataRaftConfig, NodeId, Raft, StateMachine,
};
use ferrite_metadata::{MetadataDelta, MetadataImage, MetadataRecord};
use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How long a metadata change may wait for the quorum to commit and apply it.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The quorum as this node runs it.
pub(super) struct QuorumRuntime {
    pub raft: Raft,
    /// The runtime Raft runs on; blocking callers wait on it.
    handle: tokio::runtime::Handle,
    /// The metadata log, to close at shutdown.
    log: LogStore,
    /// The log index this node's image includes (what the applier thread has applied).
    applied: watch::Receiver<u64>,
}

impl std::fmt::Debug for QuorumRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuorumRuntime")
            .field("applied", &*self.applied.borrow())
            .finish()
    }
}

/// Where the metadata log and snapshots live.
pub(super) fn metadata_dir(node: &Node) -> PathBuf {
    node.config
        .quorum
        .metadata_log_dir
        .clone()
        .unwrap_or_else(|| node.data_dir.clone())
}

/// Opens the log and state machine, starts the thread that applies what the state machine applied to
/// `node`, and starts Raft on the current tokio runtime. Blocking: call from a thread of the runtime's
/// context that may block (a blocking task, or a thread that entered it), never from an async task.
pub(super) fn start(
    node: &Arc<Node>,
    applied_tx: watch::Sender<u64>,
) -> Result<QuorumRuntime, TopicError> {
    let dir = metadata_dir(node);
    std::fs::create_dir_all(&dir).map_err(|e| storage(&dir, e))?;
    let log = LogStore::open(&dir).map_err(|e| storage(&dir, e))?;
    let (sender, receiver) = mpsc::unbounded_channel();
    let (machine, image, index) =
        StateMachine::open(&dir, sender.clone()).map_err(|e| storage(&dir, e))?;
    // The image the state machine starts from (its last snapshot) reaches the node first, as a snapshot.
    let _ = sender.send(Applied::Snapshot { index, image });
    spawn_applier(Arc::downgrade(node), receiver, applied_tx.clone());
    let config = openraft::Config {
        cluster_name: "ferrite".into(),
        election_timeout_min: u64::try_from(node.config.quorum.election_timeout_ms).unwrap_or(1000),
        election_timeout_max: u64::try_from(node.config.quorum.election_timeout_ms)
            .unwrap_or(1000)
            .saturating_mul(2),
        heartbeat_interval: 100,
        ..Default::default()
    }
    .validate()
    .map_err(|e| TopicError::Storage(format!("metadata quorum config: {e}")))?;
    let handle = tokio::runtime::Handle::current();
    let id = local_id(node);
    let raft = handle
        .block_on(Raft::new(
            id,
            Arc::new(config),
            NoPeers,
            log.clone(),
            machine,
        ))
        .map_err(|e| TopicError::Storage(format!("starting the metadata quorum: {e}")))?;
    let runtime = QuorumRuntime {
        raft,
        handle: handle.clone(),
        log,
        applied: applied_tx.subscribe(),
    };
    handle.block_on(runtime.become_single_voter(id, node))?;
    Ok(runtime)
}

fn local_id(node: &Node) -> NodeId {
    u64::try_from(node.config.node_id).unwrap_or(0)
}

fn storage(dir: &Path, e: impl std::fmt::Display) -> TopicError {
    TopicError::Storage(format!("metadata log in {}: {e}", dir.display()))
}

impl QuorumRuntime {
    /// A quorum of one: initialized with this node as its voter on first start, then made leader at once
    /// (waiting for an election timeout would only delay the start), and caught up with its own log.
    async fn become_single_voter(&self, id: NodeId, node: &Node) -> Result<(), TopicError> {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            TopicError::Storage(format!("metadata quorum: {what}: {e}"))
        };
        let initialized = self
            .raft
            .is_initialized()
            .await
            .map_err(|e| fail("reading its state", &e))?;
        if !initialized {
            let address = format!(
                "{}:{}",
                node.config.advertised_host, node.config.advertised_port
            );
            let voters = BTreeMap::from([(id, BasicNode::new(address))]);
            self.raft
                .initialize(voters)
                .await
                .map_err(|e| fail("initializing", &e))?;
        }
        let _ = self.raft.trigger().elect().await;
        let mut metrics = self.raft.metrics();
        let became_leader = tokio::time::timeout(COMMIT_TIMEOUT, async {
            loop {
                if metrics.borrow().current_leader == Some(id) {
                    return;
                }
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        if became_leader.is_err() {
            return Err(fail("election", &"this node did not become its own leader"));
        }
        // Leading means the log's entries are committed; wait until the node has applied all of them.
        let last = self
            .raft
            .metrics()
            .borrow()
            .last_applied
            .map_or(0, |id| id.index);
        self.wait_applied(last).await
    }

    /// Waits until this node's image includes log index `index`.
    async fn wait_applied(&self, index: u64) -> Result<(), TopicError> {
        let mut applied = self.applied.clone();
        let reached = tokio::time::timeout(COMMIT_TIMEOUT, async {
            applied.wait_for(|at| *at >= index).await.is_ok()
        })
        .await;
        match reached {
            Ok(true) => Ok(()),
            Ok(false) => Err(TopicError::Storage("the metadata applier stopped".into())),
            Err(_) => Err(TopicError::Timeout(format!(
                "metadata not applied up to {index} in time"
            ))),
        }
    }

    /// Stops Raft and closes the metadata log cleanly. Blocking.
    pub(super) fn shutdown(&self) {
        if let Err(e) = self.handle.block_on(self.raft.shutdown()) {
            tracing::warn!(error = %e, "stopping the metadata quorum");
        }
        if let Err(e) = self.log.close() {
            tracing::error!(error = %e, "closing the metadata log failed");
        }
    }

    /// Commits `records` as one change and waits until this node has applied it. Blocking (from any thread
    /// but the runtime's async workers).
    pub(super) fn commit(&self, records: Vec<MetadataRecord>) -> Result<(), TopicError> {
        self.handle.block_on(async {
            let written = tokio::time::timeout(
                COMMIT_TIMEOUT,
                self.raft.client_write(MetadataCommand { records }),
            )
            .await
            .map_err(|_| TopicError::Timeout("the metadata quorum did not commit in time".into()))?
            .map_err(|e| match e {
                RaftError::APIError(e) => TopicError::NotController(e.to_string()),
                RaftError::Fatal(e) => TopicError::Storage(format!("metadata quorum: {e}")),
            })?;
            self.wait_applied(written.log_id.index).await
        })
    }
}

/// Applies what the state machine applied to the node, in order, on its own thread (applying may open
/// partition logs). Ends when the state machine goes away or the node does.
fn spawn_applier(
    node: Weak<Node>,
    mut applied: mpsc::UnboundedReceiver<Applied>,
    applied_tx: watch::Sender<u64>,
) {
    let spawned = std::thread::Builder::new()
        .name("metadata-applier".into())
        .spawn(move || {
            while let Some(next) = applied.blocking_recv() {
                let Some(node) = node.upgrade() else { break };
                let index = node.apply_committed(next);
                applied_tx.send_replace(index);
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the metadata applier thread");
    }
}

impl Node {
    /// Brings this node's image to what the quorum applied, and the node with it; returns the index applied.
    fn apply_committed(&self, applied: Applied) -> u64 {
        match applied {
            Applied::Records { index, records } => {
                if !records.is_empty() {
                    match self.image().apply_all(&records) {
                        Ok((next, delta)) => self.publish_image(next, &delta),
                        Err(e) => {
                            tracing::error!(index, error = %e, "a committed metadata entry does not apply here")
                        }
                    }
                }
                index
            }
            Applied::Snapshot { index, image } => {
                let delta = MetadataDelta::between(&self.image(), &image);
                self.publish_image(image, &delta);
                index
            }
        }
    }

    fn publish_image(&self, image: MetadataImage, delta: &MetadataDelta) {
        self.metadata.publish(image);
        if let Err(e) = self.apply_delta(delta) {
            tracing::error!(error = %e, "applying a metadata change to this node failed");
        }
    }
}

/// The network of a quorum of one: there is nobody to send anything to.
struct NoPeers;

struct Nobody;

fn nobody<E: std::error::Error>() -> RPCError<NodeId, BasicNode, E> {
    let error = std::io::Error::other("this quorum has a single voter");
    RPCError::Unreachable(Unreachable::new(&error))
}

impl RaftNetworkFactory<MetadataRaftConfig> for NoPeers {
    type Network = Nobody;

    async fn new_client(&mut self, _target: NodeId, _node: &BasicNode) -> Nobody {
        Nobody
    }
}

impl RaftNetwork<MetadataRaftConfig> for Nobody {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<MetadataRaftConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        Err(nobody())
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<MetadataRaftConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        Err(nobody())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        Err(nobody())
    }
}

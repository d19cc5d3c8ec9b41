//! This node's part in the metadata quorum: the Raft instance over the metadata log (on a voter), the fetch
//! loop that follows the log (on a broker that is not a voter), the thread that applies what was committed to
//! this node, and the write path every metadata change takes.
//!
//! ```text
//!   controller.rs ─▶ commit(records) ─▶ raft.client_write ─▶ committed by the quorum
//!                                                              │ state machine applies, in log order
//!                  waits until this node applied it ◀── applier thread: image, delta ─▶ publish.rs
//!   broker-only node: observer.rs fetches committed entries from a voter ─▶ the same applier thread
//! ```
//! With no quorum settings the quorum is this node alone: it elects itself at start and its network has no
//! peers. With `controller.quorum.voters` the voters talk over their controller listeners (`service.rs`).

use super::{observer, service, Node, TopicError};
use ferrite_coordinator::quorum::rpc::{self, Peer, TcpNetwork};
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
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// How long a metadata change may wait for the quorum to commit and apply it.
pub(super) const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The quorum as this node runs it.
pub(super) struct QuorumRuntime {
    local: i32,
    /// Voter id -> its controller listener address (empty for the single-node quorum).
    voters: BTreeMap<i32, String>,
    /// Raft, on a voter; `None` on a broker that follows the log by fetching.
    raft: Option<Raft>,
    /// The runtime Raft runs on; blocking callers wait on it.
    handle: tokio::runtime::Handle,
    /// The metadata log, to close at shutdown (voters only).
    log: Option<LogStore>,
    /// The log index this node's image includes (what the applier thread has applied).
    applied: watch::Receiver<u64>,
    /// The active controller as last heard of, for a node that is not a voter (voters ask Raft).
    known_leader: Mutex<Option<i32>>,
    /// Idle connections to each voter, for forwarded requests (one per request in flight, so a slow change
    /// never holds up a heartbeat).
    peers: Mutex<HashMap<i32, Vec<Peer>>>,
    /// Brokers following the log from this node: node id -> (next index it asked for, when).
    observers: Mutex<BTreeMap<i32, (u64, Instant)>>,
    /// Stops the controller listener and the fetch loop.
    stop: watch::Sender<bool>,
    election_timeout: Duration,
}

impl std::fmt::Debug for QuorumRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuorumRuntime")
            .field("local", &self.local)
            .field("voters", &self.voters)
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

/// Starts this node's part of the quorum on the current tokio runtime and the thread that applies what was
/// committed to `node`. A voter opens the log and state machine and starts Raft (serving its controller
/// listener when there are other voters); a broker-only node starts fetching the log. Blocking: call from a
/// thread of the runtime's context that may block, never from an async task.
pub(super) fn start(
    node: &Arc<Node>,
    applied_tx: watch::Sender<u64>,
) -> Result<QuorumRuntime, TopicError> {
    let quorum = &node.config.quorum;
    let voters: BTreeMap<i32, String> = quorum.voters.iter().map(|v| (v.id, v.address())).collect();
    let election_timeout =
        Duration::from_millis(u64::try_from(quorum.election_timeout_ms).unwrap_or(1000));
    let (stop, _) = watch::channel(false);
    let handle = tokio::runtime::Handle::current();
    let (sender, receiver) = mpsc::unbounded_channel();
    let mut runtime = QuorumRuntime {
        local: node.config.node_id,
        voters,
        raft: None,
        handle: handle.clone(),
        log: None,
        applied: applied_tx.subscribe(),
        known_leader: Mutex::new(None),
        peers: Mutex::new(HashMap::new()),
        observers: Mutex::new(BTreeMap::new()),
        stop,
        election_timeout,
    };
    if !quorum.controller {
        spawn_applier(Arc::downgrade(node), receiver, applied_tx);
        observer::spawn(node, sender, runtime.stop.subscribe());
        return Ok(runtime);
    }
    let dir = metadata_dir(node);
    std::fs::create_dir_all(&dir).map_err(|e| storage(&dir, e))?;
    let log = LogStore::open(&dir).map_err(|e| storage(&dir, e))?;
    let (machine, image, index) =
        StateMachine::open(&dir, sender.clone()).map_err(|e| storage(&dir, e))?;
    // The image the state machine starts from (its last snapshot) reaches the node first, as a snapshot.
    let _ = sender.send(Applied::Snapshot { index, image });
    spawn_applier(Arc::downgrade(node), receiver, applied_tx);
    let timeout_ms = u64::try_from(election_timeout.as_millis()).unwrap_or(1000);
    let config = openraft::Config {
        cluster_name: "ferrite".into(),
        election_timeout_min: timeout_ms,
        // Kafka's randomised election timeout: between the setting and half as much again.
        election_timeout_max: timeout_ms.saturating_mul(3) / 2,
        heartbeat_interval: (timeout_ms / 5).max(20),
        ..Default::default()
    }
    .validate()
    .map_err(|e| TopicError::Storage(format!("metadata quorum config: {e}")))?;
    let id = raft_id(runtime.local);
    runtime.log = Some(log.clone());
    let raft = if runtime.voters.is_empty() {
        handle.block_on(Raft::new(id, Arc::new(config), NoPeers, log, machine))
    } else {
        handle.block_on(Raft::new(id, Arc::new(config), TcpNetwork, log, machine))
    }
    .map_err(|e| TopicError::Storage(format!("starting the metadata quorum: {e}")))?;
    runtime.raft = Some(raft.clone());
    if runtime.voters.is_empty() {
        handle.block_on(runtime.become_single_voter(node))?;
    } else {
        let address = quorum
            .controller_listener
            .ok_or_else(|| TopicError::Storage("a voter needs a controller listener".into()))?;
        let listener = handle
            .block_on(tokio::net::TcpListener::bind(address))
            .map_err(|e| {
                TopicError::Storage(format!("cannot listen on {address} (controller): {e}"))
            })?;
        let service = service::NodeService::new(Arc::downgrade(node), Some(raft));
        handle.spawn(rpc::serve(
            listener,
            Arc::new(service),
            runtime.stop.subscribe(),
        ));
        handle.block_on(runtime.join_voters())?;
    }
    Ok(runtime)
}

/// Raft's id for a node (node ids are not negative; the config checks it).
pub(super) fn raft_id(node_id: i32) -> NodeId {
    u64::try_from(node_id).unwrap_or(0)
}

fn storage(dir: &Path, e: impl std::fmt::Display) -> TopicError {
    TopicError::Storage(format!("metadata log in {}: {e}", dir.display()))
}

fn quorum_failure(what: &str, e: &dyn std::fmt::Display) -> TopicError {
    TopicError::Storage(format!("metadata quorum: {what}: {e}"))
}

impl QuorumRuntime {
    /// A quorum of one: initialized with this node as its voter on first start, then made leader at once
    /// (waiting for an election timeout would only delay the start), and caught up with its own log.
    async fn become_single_voter(&self, node: &Node) -> Result<(), TopicError> {
        let raft = self.voter()?;
        let id = raft_id(self.local);
        if !raft
            .is_initialized()
            .await
            .map_err(|e| quorum_failure("reading its state", &e))?
        {
            let address = format!(
                "{}:{}",
                node.config.advertised_host, node.config.advertised_port
            );
            let voters = BTreeMap::from([(id, BasicNode::new(address))]);
            raft.initialize(voters)
                .await
                .map_err(|e| quorum_failure("initializing", &e))?;
        }
        let _ = raft.trigger().elect().await;
        let mut metrics = raft.metrics();
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
            return Err(quorum_failure(
                "election",
                &"this node did not become its own leader",
            ));
        }
        // Leading means the log's entries are committed; wait until the node has applied all of them.
        let last = raft
            .metrics()
            .borrow()
            .last_applied
            .map_or(0, |id| id.index);
        self.wait_applied(last, COMMIT_TIMEOUT).await
    }

    /// A voter of several: on first start every voter initializes the same membership (the voters the
    /// config names), which openraft allows; elections then run on their own.
    async fn join_voters(&self) -> Result<(), TopicError> {
        let raft = self.voter()?;
        if raft
            .is_initialized()
            .await
            .map_err(|e| quorum_failure("reading its state", &e))?
        {
            return Ok(());
        }
        let members: BTreeMap<NodeId, BasicNode> = self
            .voters
            .iter()
            .map(|(id, address)| (raft_id(*id), BasicNode::new(address.clone())))
            .collect();
        if let Err(e) = raft.initialize(members).await {
            // Another voter's membership reached this one first: it is initialized, which is the point.
            tracing::debug!(error = %e, "metadata quorum already initialized");
        }
        Ok(())
    }

    fn voter(&self) -> Result<&Raft, TopicError> {
        self.raft
            .as_ref()
            .ok_or_else(|| TopicError::NotController("this node is not a voter".into()))
    }

    pub(super) fn local(&self) -> i32 {
        self.local
    }

    pub(super) fn is_voter(&self) -> bool {
        self.raft.is_some()
    }

    /// Voter id -> controller address (empty for a single-node quorum).
    pub(super) fn voters(&self) -> &BTreeMap<i32, String> {
        &self.voters
    }

    pub(super) fn raft(&self) -> Option<&Raft> {
        self.raft.as_ref()
    }

    /// The active controller as this node knows it.
    pub(super) fn leader(&self) -> Option<i32> {
        match &self.raft {
            Some(raft) => raft
                .metrics()
                .borrow()
                .current_leader
                .and_then(|id| i32::try_from(id).ok()),
            None => *lock(&self.known_leader),
        }
    }

    /// What a follower of the log heard about the active controller.
    pub(super) fn set_known_leader(&self, leader: Option<i32>) {
        if self.raft.is_none() && leader.is_some() {
            *lock(&self.known_leader) = leader;
        }
    }

    /// A follower of the log could not reach `voter`: stop sending there until someone names a leader.
    pub(super) fn forget_leader(&self, voter: i32) {
        let mut known = lock(&self.known_leader);
        if *known == Some(voter) {
            *known = None;
        }
    }

    /// The Raft term this node leads in, if it leads.
    pub(super) fn leader_term(&self) -> Option<u64> {
        let raft = self.raft.as_ref()?;
        let metrics = raft.metrics().borrow().clone();
        (metrics.current_leader == Some(u64::try_from(self.local).ok()?))
            .then_some(metrics.current_term)
    }

    pub(super) fn is_leader(&self) -> bool {
        self.raft.is_some() && self.leader() == Some(self.local)
    }

    pub(super) fn applied_index(&self) -> u64 {
        *self.applied.borrow()
    }

    pub(super) fn applied_watch(&self) -> watch::Receiver<u64> {
        self.applied.clone()
    }

    pub(super) fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    /// A connection to a voter's controller listener (an idle one if there is one); give it back with
    /// [`Self::return_peer`].
    pub(super) fn take_peer(&self, voter: i32) -> Option<Peer> {
        let address = self.voters.get(&voter)?;
        let idle = lock(&self.peers).get_mut(&voter).and_then(Vec::pop);
        Some(idle.unwrap_or_else(|| Peer::new(address.clone())))
    }

    pub(super) fn return_peer(&self, voter: i32, peer: Peer) {
        lock(&self.peers).entry(voter).or_default().push(peer);
    }

    /// A broker fetched the log from here, asking for `from` next.
    pub(super) fn observer_fetched(&self, node_id: i32, from: u64) {
        if !self.voters.contains_key(&node_id) {
            lock(&self.observers).insert(node_id, (from, Instant::now()));
        }
    }

    /// Brokers following the log from this node, with the next index each asked for and when.
    pub(super) fn observers(&self) -> BTreeMap<i32, (u64, Instant)> {
        lock(&self.observers).clone()
    }

    /// Waits until this node's image includes log index `index`.
    pub(super) async fn wait_applied(
        &self,
        index: u64,
        timeout: Duration,
    ) -> Result<(), TopicError> {
        let mut applied = self.applied.clone();
        let reached = tokio::time::timeout(timeout, async {
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

    /// [`Self::wait_applied`], blocking.
    pub(super) fn wait_applied_blocking(&self, index: u64) -> Result<(), TopicError> {
        if self.applied_index() >= index {
            return Ok(());
        }
        self.handle
            .block_on(self.wait_applied(index, COMMIT_TIMEOUT))
    }

    /// As the active controller: confirms the leadership with a majority and waits until this node's image
    /// includes everything committed, so a change is checked against the latest state. A leader that cannot
    /// reach a majority within a few election timeouts has most likely lost it: it refuses at once
    /// (retriable) rather than let the request wait out its timeout. Blocking.
    pub(super) fn catch_up(&self) -> Result<(), TopicError> {
        let raft = self.voter()?;
        let majority_wait = (self.election_timeout * 3).max(Duration::from_secs(2));
        self.handle.block_on(async {
            let read = tokio::time::timeout(majority_wait, raft.ensure_linearizable())
                .await
                .map_err(|_| no_majority())?
                .map_err(|e| match e {
                    RaftError::APIError(e) => TopicError::NotController(e.to_string()),
                    RaftError::Fatal(e) => quorum_failure("checking leadership", &e),
                })?;
            self.wait_applied(read.map_or(0, |id| id.index), COMMIT_TIMEOUT)
                .await
        })
    }

    /// Stops Raft, the listener and the fetch loop, and closes the metadata log cleanly. Blocking.
    /// Stops Raft and closes the metadata log; false if the log could not be closed cleanly.
    pub(super) fn shutdown(&self) -> bool {
        let _ = self.stop.send(true);
        if let Some(raft) = &self.raft {
            if let Err(e) = self.handle.block_on(raft.shutdown()) {
                tracing::warn!(error = %e, "stopping the metadata quorum");
            }
        }
        if let Some(log) = &self.log {
            if let Err(e) = log.close() {
                tracing::error!(error = %e, "closing the metadata log failed");
                return false;
            }
        }
        true
    }

    /// Commits `records` as one change, waits until this node has applied it, and returns its log index.
    /// Blocking (from any thread but the runtime's async workers).
    pub(super) fn commit(&self, records: Vec<MetadataRecord>) -> Result<u64, TopicError> {
        let raft = self.voter()?;
        self.handle.block_on(async {
            let written = tokio::time::timeout(
                COMMIT_TIMEOUT,
                raft.client_write(MetadataCommand { records }),
            )
            .await
            .map_err(|_| no_majority())?
            .map_err(|e| match e {
                RaftError::APIError(e) => TopicError::NotController(e.to_string()),
                RaftError::Fatal(e) => quorum_failure("writing", &e),
            })?;
            let index = written.log_id.index;
            self.wait_applied(index, COMMIT_TIMEOUT).await?;
            Ok(index)
        })
    }
}

fn no_majority() -> TopicError {
    TopicError::Timeout(
        "the metadata quorum has no majority of its voters reachable; retry later".into(),
    )
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
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
                self.applied_log().record(index, records, self.image());
                index
            }
            Applied::Snapshot { index, image } => {
                let delta = MetadataDelta::between(&self.image(), &image);
                self.publish_image(image, &delta);
                self.applied_log().reset(index, self.image());
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

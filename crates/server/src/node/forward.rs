//! Getting a request to the active controller, wherever it is: this node when it leads the quorum, else the
//! leader over its controller listener. Any broker accepts admin requests and forwards them, as Kafka's
//! brokers do; the caller sees NOT_CONTROLLER only if no controller answers in time.
//!
//! ```text
//!   execute(op) ─▶ leader known? ── this node ──▶ answer_here ─▶ execute_here (controller.rs)
//!                      │             another   ──▶ Controller(call) over its listener ─▶ its answer_here
//!                      └─ no: a voter in turn (a broker-only node), or wait for the election (a voter)
//!   "not the controller, try N" ─▶ again with N, until COMMIT_TIMEOUT
//!   answer with index i ─▶ wait until this node applied i, so its next read sees the change
//! ```

use super::controller::{ControllerAnswer, ControllerFailure, ControllerOp};
use super::quorum::{QuorumRuntime, COMMIT_TIMEOUT};
use super::{Node, TopicError};
use ferrite_coordinator::quorum::rpc::{QuorumRequest, QuorumResponse};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// How long to wait before asking again when no controller answered.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// How long one forwarded request may take on the wire (the controller's own wait is bounded by
/// COMMIT_TIMEOUT).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(35);
/// The least a forwarded request is given, however little patience its caller has left.
const MIN_FORWARD_TIMEOUT: Duration = Duration::from_millis(200);

/// What one node asks the active controller.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControllerCall {
    Op(ControllerOp),
    /// The quorum's state, for DescribeQuorum.
    DescribeQuorum,
}

/// The active controller's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControllerReply {
    Op(Result<ControllerAnswer, ControllerFailure>),
    Quorum(Result<QuorumDescription, ControllerFailure>),
}

impl ControllerReply {
    /// `Some(leader hint)` if the node asked was not the active controller.
    fn not_controller(&self) -> Option<Option<i32>> {
        match self {
            ControllerReply::Op(Err(ControllerFailure::NotController { leader, .. }))
            | ControllerReply::Quorum(Err(ControllerFailure::NotController { leader, .. })) => {
                Some(*leader)
            }
            _ => None,
        }
    }
}

/// The quorum as its leader sees it (DescribeQuorum).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct QuorumDescription {
    pub leader_id: i32,
    /// The Raft term: KRaft's leader epoch.
    pub leader_epoch: i32,
    /// The end of what is committed (an offset: the next index).
    pub high_watermark: i64,
    pub voters: Vec<ReplicaProgress>,
    pub observers: Vec<ReplicaProgress>,
}

/// One replica of the metadata log.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReplicaProgress {
    pub node_id: i32,
    /// The next index it will have (-1: unknown).
    pub log_end_offset: i64,
    /// When it last fetched or acknowledged, in ms since the epoch (-1: unknown).
    pub last_fetch_timestamp: i64,
}

impl Node {
    pub(super) fn quorum(&self) -> Result<&QuorumRuntime, TopicError> {
        self.quorum
            .get()
            .ok_or_else(|| TopicError::Storage("the metadata quorum is not started".into()))
    }

    /// Runs a metadata operation on the active controller and waits until this node's image includes its
    /// result. Blocking.
    pub(super) fn execute(&self, op: ControllerOp) -> Result<ControllerAnswer, TopicError> {
        self.execute_within(op, COMMIT_TIMEOUT)
    }

    /// [`Self::execute`], retrying for up to `patience` while no controller is reachable.
    pub(super) fn execute_within(
        &self,
        op: ControllerOp,
        patience: Duration,
    ) -> Result<ControllerAnswer, TopicError> {
        let reply = self.call_controller(ControllerCall::Op(op), patience)?;
        let answer = match reply {
            ControllerReply::Op(answer) => answer.map_err(TopicError::from)?,
            ControllerReply::Quorum(_) => {
                return Err(TopicError::Storage(
                    "the controller answered another question".into(),
                ))
            }
        };
        self.quorum()?.wait_applied_blocking(answer.index)?;
        Ok(answer)
    }

    /// The quorum's state, from its leader.
    pub fn describe_quorum(&self) -> Result<QuorumDescription, TopicError> {
        match self.call_controller(ControllerCall::DescribeQuorum, COMMIT_TIMEOUT)? {
            ControllerReply::Quorum(answer) => answer.map_err(TopicError::from),
            ControllerReply::Op(_) => Err(TopicError::Storage(
                "the controller answered another question".into(),
            )),
        }
    }

    /// Sends `call` to the active controller, following "not the controller" hints and retrying while none
    /// answers, for up to `patience`.
    fn call_controller(
        &self,
        call: ControllerCall,
        patience: Duration,
    ) -> Result<ControllerReply, TopicError> {
        let quorum = self.quorum()?;
        let deadline = Instant::now() + patience;
        let mut hint: Option<i32> = None;
        let mut turn = 0usize;
        loop {
            let target = hint.take().or_else(|| quorum.leader()).or_else(|| {
                // A broker that is not a voter and knows no leader asks the voters in turn.
                (!quorum.is_voter())
                    .then(|| {
                        turn += 1;
                        quorum
                            .voters()
                            .keys()
                            .nth(turn % quorum.voters().len().max(1))
                    })
                    .flatten()
                    .copied()
            });
            let outcome = match target {
                Some(id) if id == quorum.local() && quorum.is_voter() => {
                    Ok(self.answer_here(call.clone()))
                }
                Some(id) => {
                    // A controller that stopped answering (isolated, paused) holds this call no longer than
                    // the caller's patience: a heartbeat must move on to the next controller in time.
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    let timeout = FORWARD_TIMEOUT.min(remaining.max(MIN_FORWARD_TIMEOUT));
                    self.forward(quorum, id, &call, timeout)
                }
                None => Err(TopicError::NotController(
                    "no active controller has been elected yet".into(),
                )),
            };
            let retry = match &outcome {
                Ok(reply) => match reply.not_controller() {
                    Some(leader) => {
                        hint = leader.filter(|l| Some(*l) != target);
                        true
                    }
                    None => false,
                },
                Err(TopicError::NotController(_)) => true,
                Err(_) => false,
            };
            if !retry {
                return outcome;
            }
            if Instant::now() >= deadline {
                // The client asked a broker, not a controller: "no controller in time" is a timeout to it.
                return Err(TopicError::Timeout(format!(
                    "no active controller answered within {} ms; retry later",
                    patience.as_millis()
                )));
            }
            if hint.is_none() {
                std::thread::sleep(RETRY_BACKOFF);
            }
        }
    }

    /// Answers a call as this node: the active controller runs it, any other node says who it thinks is.
    pub(super) fn answer_here(&self, call: ControllerCall) -> ControllerReply {
        let not_controller = |quorum: Option<&QuorumRuntime>| ControllerFailure::NotController {
            leader: quorum.and_then(|q| q.leader()),
            reason: "this node is not the active controller".into(),
        };
        let quorum = self.quorum().ok();
        let leads = quorum.is_some_and(|q| q.is_leader());
        match call {
            ControllerCall::Op(op) => {
                if !leads {
                    return ControllerReply::Op(Err(not_controller(quorum)));
                }
                ControllerReply::Op(self.execute_here(op).map_err(|e| match e {
                    TopicError::NotController(_) => not_controller(quorum),
                    other => ControllerFailure::from(&other),
                }))
            }
            ControllerCall::DescribeQuorum => match quorum.filter(|_| leads) {
                Some(q) => ControllerReply::Quorum(Ok(super::describe_quorum::describe(q))),
                None => ControllerReply::Quorum(Err(not_controller(quorum))),
            },
        }
    }

    /// Sends `call` to voter `voter`; a voter that cannot be reached counts as "not the controller" (the
    /// caller tries again).
    fn forward(
        &self,
        quorum: &QuorumRuntime,
        voter: i32,
        call: &ControllerCall,
        timeout: Duration,
    ) -> Result<ControllerReply, TopicError> {
        let mut peer = quorum.take_peer(voter).ok_or_else(|| {
            TopicError::NotController(format!("node {voter} is not a voter of the quorum"))
        })?;
        let request = serde_json::to_value(call)
            .map(QuorumRequest::Controller)
            .map_err(|e| TopicError::Storage(format!("encoding a controller request: {e}")))?;
        let answer = quorum.handle().block_on(peer.call(&request, timeout));
        quorum.return_peer(voter, peer);
        match answer {
            Ok(QuorumResponse::Controller(value)) => serde_json::from_value(value).map_err(|e| {
                TopicError::Storage(format!("node {voter} answered something unreadable: {e}"))
            }),
            Ok(QuorumResponse::Unavailable(reason)) => Err(TopicError::NotController(reason)),
            Ok(_) => Err(TopicError::Storage(format!(
                "node {voter} answered another question"
            ))),
            Err(e) => {
                tracing::debug!(voter, error = %e, "controller unreachable");
                quorum.forget_leader(voter);
                Err(TopicError::NotController(format!(
                    "controller {voter} is unreachable: {e}"
                )))
            }
        }
    }
}

//! The model's world: three brokers, the controller, the network between them, the producer, a simulated
//! clock, and the checker that looks at the real logs after every event.
//!
//! ```text
//!   Scheduler ──Event──▶ World::run ──▶ node / controller / client / network
//!                                   ──▶ client.poll (acks=all answers)
//!                                   ──▶ Checker::after_step (properties 1-4)
//! ```
//! Simulated time starts an hour away from the real clock, after it or before it (each seed picks).
//! `Partition::set_role` stamps a new leadership's followers with the real clock (it is not injectable), so
//! to the model those stamps lie far in the past or far in the future: a follower that has not yet fetched
//! at the log end in a new leadership counts as lagging at once, or never (until the controller fences it).
//! Both are legitimate timings for the ISR logic (an impatient leader, a patient one), and either keeps
//! every run a pure function of its seed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use ferrite_replication::NodeId;

use super::client::Client;
use super::controller::Controller;
use super::delivery::Parked;
use super::network::{Address, Envelope, Message, Network};
use super::properties::Checker;
use super::replica::ModelNode;
use super::rng::Rng;
use super::scheduler::{Event, Situation};
use super::stats::Stats;
use super::trace::Trace;

/// `replica.lag.time.max.ms`, simulated.
const MAX_LAG: Duration = Duration::from_secs(1);
/// `broker.session.timeout.ms`, simulated.
pub(super) const SESSION: Duration = Duration::from_secs(3);
/// Whether AlterPartition requests and answers suffer the faults other messages do (lost, retried, timed
/// out): yes, unless `MODEL_SPARE_ALTER` is set. A leader whose proposal goes unconfirmed keeps counting the
/// members it adds until the metadata shows the partition's next state (`IsrProposalFailure::Unknown`); before
/// that rule, these faults lost acknowledged records (`scenarios::an_isr_expansion_whose_answer_is_lost_...`).
fn alter_faults() -> bool {
    std::env::var_os("MODEL_SPARE_ALTER").is_none()
}

fn is_alter(e: &Envelope) -> bool {
    matches!(
        e.message,
        Message::AlterPartition { .. } | Message::AlterPartitionAnswer { .. }
    )
}

pub struct World {
    pub(super) nodes: Vec<ModelNode>,
    pub(super) controller: Controller,
    pub(super) network: Network,
    pub(super) client: Client,
    pub(super) checker: Checker,
    pub(super) stats: Stats,
    pub(super) rng: Rng,
    pub(super) now: Instant,
    pub(super) step: u64,
    pub(super) trace: Trace,
    /// Whether AlterPartition suffers faults too (see `alter_faults`).
    alter_faults: bool,
    /// Stalled nodes, and when each resumes.
    pub(super) stalled: BTreeMap<NodeId, Instant>,
    /// Slow links (sender, receiver), and when each is fast again: nothing on them arrives until then.
    pub(super) slow_links: BTreeMap<(Address, Address), Instant>,
    /// Fetches the leaders hold (long polls).
    pub(super) parked: Vec<Parked>,
}

impl World {
    /// Three brokers with empty logs under `dir`, all in sync, the first leading.
    pub fn new(dir: &Path, seed: u64) -> World {
        let mut rng = Rng::new(seed);
        let patient = rng.chance(50);
        World::with_rng(dir, rng, patient)
    }

    /// [`World::new`] with the clock chosen: `patient` puts simulated time before the real clock (a new
    /// leadership's followers never count as lagging before they catch up once), otherwise after it (they
    /// count as lagging until they fetch at the log end). See the module doc.
    pub fn with_clock(dir: &Path, seed: u64, patient: bool) -> World {
        World::with_rng(dir, Rng::new(seed), patient)
    }

    fn with_rng(dir: &Path, rng: Rng, patient: bool) -> World {
        let hour = Duration::from_secs(3600);
        let real = Instant::now();
        let now = match real.checked_sub(hour) {
            Some(before) if patient => before,
            _ => real + hour,
        };
        let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
        let controller = Controller::new(&ids, now);
        let metadata = (controller.offset(), controller.record().clone());
        let nodes = ids
            .iter()
            .map(|id| ModelNode::start(*id, dir.join(format!("node-{}", id.0)), metadata.clone()))
            .collect();
        let mut client = Client::default();
        client.learn_leader(ids.first().copied());
        World {
            nodes,
            controller,
            network: Network::default(),
            client,
            checker: Checker::default(),
            stats: Stats {
                seeds: 1,
                ..Stats::default()
            },
            rng,
            now,
            step: 0,
            trace: Trace::from_env(),
            alter_faults: alter_faults(),
            stalled: BTreeMap::new(),
            slow_links: BTreeMap::new(),
            parked: vec![],
        }
    }

    pub fn situation(&self) -> Situation {
        let stalled: BTreeSet<NodeId> = self.stalled.keys().copied().collect();
        let mut s = Situation {
            leader: self.controller.record().leader,
            in_flight: self.network.len(),
            to_controller: self.network.to_controller(),
            deliverable: self.network.deliverable(
                &stalled,
                &self.slow_links.keys().copied().collect(),
                self.now,
            ),
            ..Situation::default()
        };
        for node in &self.nodes {
            match &node.running {
                None => s.crashed.push(node.id),
                Some(r) => {
                    s.running.push(node.id);
                    if !stalled.contains(&node.id) {
                        s.responsive.push(node.id);
                        s.fetchers
                            .extend(r.fetchers.sources().into_iter().map(|src| (node.id, src)));
                    }
                }
            }
        }
        s
    }

    pub(super) fn index(&self, id: NodeId) -> usize {
        self.nodes
            .iter()
            .position(|n| n.id == id)
            .expect("a node of the model")
    }

    /// Runs one event, then the producer's acknowledgements and the property checks.
    pub fn run(&mut self, event: Event) -> Result<(), String> {
        self.step += 1;
        self.stats.steps += 1;
        self.note(format!("{}: {event:?}", self.step));
        self.apply(event);
        self.wake_long_polls();
        if self.trace.states {
            let state = self.state_line();
            self.note(state);
        }
        let stalled = self.unreachable();
        let acked = self
            .client
            .poll(&self.nodes, &stalled, self.now, &mut self.stats);
        self.checker
            .after_step(&self.nodes, self.controller.record(), &acked, self.step)
            .map_err(|e| self.failure(&e))
    }

    /// Brokers a client cannot get an answer from now: stalled, or restarted and not serving yet.
    fn unreachable(&self) -> BTreeSet<NodeId> {
        let mut out: BTreeSet<NodeId> = self.stalled.keys().copied().collect();
        out.extend(
            self.nodes
                .iter()
                .filter(|n| n.running.as_ref().is_some_and(|r| !r.serving))
                .map(|n| n.id),
        );
        out
    }

    fn apply(&mut self, event: Event) {
        match event {
            Event::Produce => self.produce(),
            Event::RefreshMetadata { from } => {
                let node = &self.nodes[self.index(from)];
                if node.running.is_some() {
                    self.client.learn_leader(node.metadata.1.leader);
                }
            }
            Event::FollowerStep { node, source } => self.follower_step(node, source),
            Event::Deliver { index } => {
                if let Some(envelope) = self.network.take(index) {
                    if self.trace.states {
                        self.note(format!("      {}", envelope.describe()));
                    }
                    self.deliver(envelope);
                }
            }
            Event::IsrCheck { node } => self.isr_check(node),
            Event::Heartbeat { node } => self.heartbeat(node),
            Event::MetadataPull { node } => self.network.send(
                Address::Controller,
                Address::Node(node),
                Message::Metadata {
                    offset: self.controller.offset(),
                    record: self.controller.record().clone(),
                },
            ),
            Event::SessionCheck => {
                if self
                    .controller
                    .check_sessions(self.now, SESSION, &mut self.stats)
                {
                    self.publish();
                }
            }
            Event::Restart { node } => {
                let i = self.index(node);
                if self.nodes[i].running.is_none() {
                    self.nodes[i].restart();
                    self.network.node_up(node);
                }
            }
            Event::Tick { ms } => self.tick(ms),
            fault => self.fault(fault),
        }
    }

    /// The client produces; one without a leader asks some broker first.
    fn produce(&mut self) {
        let unreachable = self.unreachable();
        if !self.client.knows_leader() {
            let answering: Vec<&ModelNode> = self
                .nodes
                .iter()
                .filter(|n| n.running.is_some() && !unreachable.contains(&n.id))
                .collect();
            if !answering.is_empty() {
                let n = answering[self.rng.below(answering.len())];
                self.client.learn_leader(n.metadata.1.leader);
            }
        }
        self.client.produce(
            &self.nodes,
            &unreachable,
            &mut self.rng,
            self.now,
            &mut self.stats,
        );
    }

    fn follower_step(&mut self, node: NodeId, source: NodeId) {
        let i = self.index(node);
        let (id, incarnation) = (self.nodes[i].id, self.nodes[i].incarnation);
        if let Some(r) = self.nodes[i].running.as_mut() {
            let sent = r.fetchers.step(
                source,
                &r.partition,
                (id, incarnation),
                self.now,
                &mut self.stats,
            );
            if let Some(message) = sent {
                self.network
                    .send(Address::Node(node), Address::Node(source), message);
            }
        }
    }

    fn isr_check(&mut self, node: NodeId) {
        let i = self.index(node);
        let incarnation = self.nodes[i].incarnation;
        let timeout = self.alter_faults;
        let Some((id, request)) = self.nodes[i].check_isr(self.now, MAX_LAG, timeout) else {
            return;
        };
        self.note(format!(
            "      node {node} asks for ISR {:?} (leader epoch {}, partition epoch {})",
            request.isr, request.leader_epoch, request.partition_epoch
        ));
        let message = Message::AlterPartition {
            incarnation,
            id,
            request,
        };
        self.network
            .send(Address::Node(node), Address::Controller, message);
    }

    /// A heartbeat, or a registration if this incarnation is not registered yet.
    fn heartbeat(&mut self, node: NodeId) {
        let n = &self.nodes[self.index(node)];
        let Some(r) = &n.running else {
            return;
        };
        let incarnation = n.incarnation;
        let message = if r.registered {
            Message::Heartbeat { node, incarnation }
        } else {
            Message::Register { node, incarnation }
        };
        self.network
            .send(Address::Node(node), Address::Controller, message);
    }

    /// Time passes: stalls and slow links may end, fetch rounds may time out.
    fn tick(&mut self, ms: u64) {
        self.now += Duration::from_millis(ms);
        let now = self.now;
        self.stalled.retain(|_, until| *until > now);
        self.slow_links.retain(|_, until| *until > now);
        for n in &mut self.nodes {
            if let Some(r) = n.running.as_mut() {
                r.fetchers.expire(now);
            }
        }
    }

    fn fault(&mut self, event: Event) {
        match event {
            Event::Drop { index } => {
                let spared = !self.alter_faults && self.network.get(index).is_some_and(is_alter);
                if !spared && self.network.take(index).is_some() {
                    self.stats.messages_dropped += 1;
                }
            }
            Event::Duplicate { index, after_ms } => {
                let at = self.now + Duration::from_millis(after_ms);
                let spared = !self.alter_faults && self.network.get(index).is_some_and(is_alter);
                if !spared && self.network.duplicate(index, at) {
                    self.stats.messages_duplicated += 1;
                }
            }
            Event::Fence { node } if self.controller.fence(node, &mut self.stats) => self.publish(),
            Event::SlowLink { from, to, ms } => {
                self.slow_links
                    .insert((from, to), self.now + Duration::from_millis(ms));
                self.stats.slow_links += 1;
            }
            Event::Stall { node, ms } if self.nodes[self.index(node)].running.is_some() => {
                self.stalled
                    .insert(node, self.now + Duration::from_millis(ms));
                self.stats.stalls += 1;
            }
            Event::Crash { node } => {
                let i = self.index(node);
                if self.nodes[i].running.is_some() {
                    self.nodes[i].crash();
                    self.network.node_down(node);
                    self.stalled.remove(&node);
                    self.stats.crashes += 1;
                }
            }
            _ => {}
        }
    }

    /// The controller changed the partition: every broker is sent the record (its metadata fetch).
    pub(super) fn publish(&mut self) {
        let offset = self.controller.offset();
        let record = self.controller.record().clone();
        self.note(format!(
            "      controller offset {offset}: leader {:?} epoch {} isr {:?} partition epoch {}",
            record.leader, record.leader_epoch, record.isr, record.partition_epoch
        ));
        for n in &self.nodes {
            self.network.send(
                Address::Controller,
                Address::Node(n.id),
                Message::Metadata {
                    offset,
                    record: record.clone(),
                },
            );
        }
    }
}

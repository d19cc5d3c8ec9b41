//! The model's world: three brokers, the controller, the network between them, the producer, a simulated
//! clock, and the checker that looks at the real logs after every event.
//!
//! ```text
//!   Scheduler ──Event──▶ World::run ──▶ node / controller / client / network
//!                                   ──▶ client.poll (acks=all answers)
//!                                   ──▶ Checker::after_step (properties 1-4)
//! ```
//! Simulated time starts an hour after the real clock. `Partition::set_role` stamps a new leadership's
//! followers with the real clock (it is not injectable), so to the model those stamps always lie far in the
//! past: a follower that has not fetched in a new leadership counts as lagging at once. That is a legitimate
//! (if impatient) timing for the ISR logic, and it keeps every run a pure function of its seed.

use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

use ferrite_replication::{NodeId, Role};

use super::client::Client;
use super::controller::Controller;
use super::network::{Address, Envelope, Message, Network};
use super::properties::Checker;
use super::replica::ModelNode;
use super::rng::Rng;
use super::scheduler::{Event, Situation};
use super::stats::Stats;

/// `replica.lag.time.max.ms`, simulated.
const MAX_LAG: Duration = Duration::from_secs(1);
/// `broker.session.timeout.ms`, simulated.
const SESSION: Duration = Duration::from_secs(3);
/// Healing gives up (and the run fails) after this many rounds.
const HEAL_ROUNDS_MAX: u64 = 200;
/// Deliveries in one "deliver everything" (answers beget requests, but not forever).
const DELIVERIES_MAX: usize = 1000;
/// Events kept for the failure report (`MODEL_TRACE` overrides).
const TRACE_LEN: usize = 60;

pub struct World {
    pub nodes: Vec<ModelNode>,
    pub controller: Controller,
    network: Network,
    client: Client,
    checker: Checker,
    pub stats: Stats,
    pub rng: Rng,
    now: Instant,
    step: u64,
    trace: VecDeque<String>,
    trace_len: usize,
    /// `MODEL_TRACE_STATES`: note every replica's role, log end and high watermark after each event.
    trace_states: bool,
}

impl World {
    /// Three brokers with empty logs under `dir`, all in sync, the first leading.
    pub fn new(dir: &Path, seed: u64) -> World {
        let now = Instant::now() + Duration::from_secs(3600);
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
            rng: Rng::new(seed),
            now,
            step: 0,
            trace: VecDeque::new(),
            trace_len: std::env::var("MODEL_TRACE")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(TRACE_LEN),
            trace_states: std::env::var_os("MODEL_TRACE_STATES").is_some(),
        }
    }

    pub fn situation(&self) -> Situation {
        let mut s = Situation {
            in_flight: self.network.len(),
            ..Situation::default()
        };
        for node in &self.nodes {
            match &node.running {
                None => s.crashed.push(node.id),
                Some(r) => {
                    s.running.push(node.id);
                    s.fetchers
                        .extend(r.fetchers.sources().into_iter().map(|src| (node.id, src)));
                }
            }
        }
        s
    }

    fn index(&self, id: NodeId) -> usize {
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
        if self.trace_states {
            let state = self.state_line();
            self.note(state);
        }
        let acked = self.client.poll(&self.nodes, self.now, &mut self.stats);
        self.checker
            .after_step(&self.nodes, self.controller.record(), &acked, self.step)
            .map_err(|e| self.failure(&e))
    }

    /// Each replica as `node role epoch log-end/high-watermark`, for traces.
    fn state_line(&self) -> String {
        let mut line = String::from("     ");
        for n in &self.nodes {
            match n.partition() {
                Some(p) => {
                    let role = match p.role() {
                        Role::Leader(l) => format!(
                            "L{} isr{:?}",
                            l.epoch,
                            l.isr.iter().map(|n| n.0).collect::<Vec<_>>()
                        ),
                        Role::Follower(f) => format!("F{}", f.epoch),
                        Role::Offline => "O".into(),
                    };
                    line.push_str(&format!(
                        " | n{} {role} {}/{}",
                        n.id,
                        p.log_end_offset(),
                        p.high_watermark()
                    ));
                }
                None => line.push_str(&format!(" | n{} down", n.id)),
            }
        }
        line
    }

    fn note(&mut self, line: String) {
        if self.trace.len() >= self.trace_len {
            self.trace.pop_front();
        }
        self.trace.push_back(line);
    }

    /// A failure report: the step, the message, the state of each node and the last events.
    pub fn failure(&self, message: &str) -> String {
        let mut out = format!("step {}: {message}\n", self.step);
        out.push_str(&format!(
            "  controller: offset {} {:?}\n",
            self.controller.offset(),
            self.controller.record()
        ));
        for n in &self.nodes {
            match n.partition() {
                Some(p) => out.push_str(&format!(
                    "  node {} (incarnation {}): {:?} log end {} high watermark {} epochs {:?} metadata offset {}\n",
                    n.id,
                    n.incarnation,
                    p.role(),
                    p.log_end_offset(),
                    p.high_watermark(),
                    p.log().epoch_entries(),
                    n.metadata.0
                )),
                None => out.push_str(&format!("  node {}: down\n", n.id)),
            }
        }
        out.push_str("  last events:\n");
        for line in &self.trace {
            out.push_str(&format!("    {line}\n"));
        }
        out
    }

    fn apply(&mut self, event: Event) {
        match event {
            Event::Produce => {
                self.client
                    .produce(&self.nodes, &mut self.rng, self.now, &mut self.stats);
            }
            Event::RefreshMetadata { from } => {
                let node = &self.nodes[self.index(from)];
                if node.running.is_some() {
                    self.client.learn_leader(node.metadata.1.leader);
                }
            }
            Event::FollowerStep { node, source } => {
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
                        self.network.send(Address::Node(source), message);
                    }
                }
            }
            Event::Deliver { index } => {
                if let Some(envelope) = self.network.take(index) {
                    self.deliver(envelope);
                }
            }
            Event::Drop { index } => {
                if self.network.take(index).is_some() {
                    self.stats.messages_dropped += 1;
                }
            }
            Event::IsrCheck { node } => {
                let i = self.index(node);
                let incarnation = self.nodes[i].incarnation;
                if let Some((id, request)) = self.nodes[i].check_isr(self.now, MAX_LAG) {
                    self.network.send(
                        Address::Controller,
                        Message::AlterPartition {
                            incarnation,
                            id,
                            request,
                        },
                    );
                }
            }
            Event::Heartbeat { node } => {
                let n = &self.nodes[self.index(node)];
                if let Some(r) = &n.running {
                    let message = if r.registered {
                        Message::Heartbeat {
                            node,
                            incarnation: n.incarnation,
                        }
                    } else {
                        Message::Register {
                            node,
                            incarnation: n.incarnation,
                        }
                    };
                    self.network.send(Address::Controller, message);
                }
            }
            Event::MetadataPull { node } => self.network.send(
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
            Event::Pause { node } => {
                if self.controller.fence(node, &mut self.stats) {
                    self.publish();
                }
            }
            Event::Crash { node } => {
                let i = self.index(node);
                if self.nodes[i].running.is_some() {
                    self.nodes[i].crash();
                    self.network.forget_node(node);
                    self.stats.crashes += 1;
                }
            }
            Event::Restart { node } => {
                let i = self.index(node);
                if self.nodes[i].running.is_none() {
                    self.nodes[i].restart();
                }
            }
            Event::Tick { ms } => {
                self.now += Duration::from_millis(ms);
                for n in &mut self.nodes {
                    if let Some(r) = n.running.as_mut() {
                        r.fetchers.expire(self.now);
                    }
                }
            }
        }
    }

    /// The controller changed the partition: every broker is sent the record (its metadata fetch).
    fn publish(&mut self) {
        let offset = self.controller.offset();
        let record = self.controller.record().clone();
        self.note(format!(
            "      controller offset {offset}: leader {:?} epoch {} isr {:?} partition epoch {}",
            record.leader, record.leader_epoch, record.isr, record.partition_epoch
        ));
        for n in &self.nodes {
            self.network.send(
                Address::Node(n.id),
                Message::Metadata {
                    offset,
                    record: record.clone(),
                },
            );
        }
    }

    fn deliver(&mut self, envelope: Envelope) {
        let node = match envelope.to {
            Address::Controller => return self.deliver_to_controller(envelope.message),
            Address::Node(node) => node,
        };
        let i = self.index(node);
        let now = self.now;
        let n = &mut self.nodes[i];
        if n.running.is_none() {
            return; // nobody listens
        }
        let current = n.incarnation;
        match envelope.message {
            Message::Fetch {
                from,
                incarnation,
                round,
                current_epoch,
                fetch_offset,
            } => {
                if let Some(answer) = n.answer_fetch(from, current_epoch, fetch_offset, now) {
                    self.network.send(
                        Address::Node(from),
                        Message::FetchAnswer {
                            incarnation,
                            round,
                            answer,
                        },
                    );
                }
            }
            Message::EpochQuery {
                from,
                incarnation,
                round,
                current_epoch,
                latest_epoch,
            } => {
                if let Some(answer) = n.answer_epoch_query(current_epoch, latest_epoch) {
                    self.network.send(
                        Address::Node(from),
                        Message::EpochAnswer {
                            incarnation,
                            round,
                            answer,
                        },
                    );
                }
            }
            Message::FetchAnswer {
                incarnation,
                round,
                answer,
            } if incarnation == current => {
                if let Some(r) = n.running.as_mut() {
                    r.fetchers
                        .on_fetch_answer(round, answer, &r.partition, now, &mut self.stats);
                }
            }
            Message::EpochAnswer {
                incarnation,
                round,
                answer,
            } if incarnation == current => {
                if let Some(r) = n.running.as_mut() {
                    r.fetchers
                        .on_epoch_answer(round, answer, &r.partition, now, &mut self.stats);
                }
            }
            Message::AlterPartitionAnswer {
                incarnation,
                id,
                accepted,
            } if incarnation == current => n.on_alter_answer(id, accepted),
            Message::Registered { incarnation } if incarnation == current => {
                if let Some(r) = n.running.as_mut() {
                    r.registered = true;
                }
            }
            Message::HeartbeatRefused { incarnation } if incarnation == current => {
                if let Some(r) = n.running.as_mut() {
                    r.registered = false;
                }
            }
            Message::Metadata { offset, record } => {
                n.apply_metadata(offset, record, &mut self.stats);
            }
            _ => {} // an answer to an earlier incarnation, or a request for the controller
        }
    }

    fn deliver_to_controller(&mut self, message: Message) {
        let now = self.now;
        match message {
            Message::AlterPartition {
                incarnation,
                id,
                request,
            } => {
                let leader = request.leader;
                let result = self.controller.alter_partition(&request, &mut self.stats);
                if result == Ok(true) {
                    self.publish();
                }
                self.network.send(
                    Address::Node(leader),
                    Message::AlterPartitionAnswer {
                        incarnation,
                        id,
                        accepted: result.is_ok(),
                    },
                );
            }
            Message::Register { node, incarnation } => {
                if self
                    .controller
                    .register(node, incarnation, now, &mut self.stats)
                {
                    self.publish();
                }
                self.network
                    .send(Address::Node(node), Message::Registered { incarnation });
            }
            Message::Heartbeat { node, incarnation } => {
                match self
                    .controller
                    .heartbeat(node, incarnation, now, &mut self.stats)
                {
                    Ok(true) => self.publish(),
                    Ok(false) => {}
                    Err(()) => self.network.send(
                        Address::Node(node),
                        Message::HeartbeatRefused { incarnation },
                    ),
                }
            }
            _ => {}
        }
    }

    /// Ends the faults: every node restarts, and rounds of delivering everything, heartbeats, metadata,
    /// fetches and ISR checks run until the cluster is healed. Fails if it does not heal.
    pub fn heal(&mut self) -> Result<(), String> {
        let ids: Vec<NodeId> = self.nodes.iter().map(|n| n.id).collect();
        for id in &ids {
            self.run(Event::Restart { node: *id })?;
        }
        for _ in 0..HEAL_ROUNDS_MAX {
            if self.unhealed().is_none() {
                return Ok(());
            }
            self.stats.heal_rounds += 1;
            self.deliver_all()?;
            for id in &ids {
                self.run(Event::Heartbeat { node: *id })?;
                self.run(Event::MetadataPull { node: *id })?;
            }
            self.deliver_all()?;
            for (node, source) in self.situation().fetchers {
                self.run(Event::FollowerStep { node, source })?;
            }
            self.deliver_all()?;
            self.run(Event::SessionCheck)?;
            for id in &ids {
                self.run(Event::IsrCheck { node: *id })?;
            }
            self.deliver_all()?;
            if let Some(leader) = self.controller.record().leader {
                self.run(Event::RefreshMetadata { from: leader })?;
            }
            self.run(Event::Tick { ms: 200 })?;
        }
        let why = self.unhealed().unwrap_or_default();
        Err(self.failure(&format!("the cluster did not heal: {why}")))
    }

    fn deliver_all(&mut self) -> Result<(), String> {
        for _ in 0..DELIVERIES_MAX {
            if self.network.is_empty() {
                return Ok(());
            }
            self.run(Event::Deliver { index: 0 })?;
        }
        Err(self.failure("messages keep coming"))
    }

    /// What still keeps the cluster from being healed, if anything: healed is all up, registered and
    /// unfenced, with the latest metadata; the leader leading with all three in sync; every replica holding
    /// the whole log with the high watermark at its end; nothing in flight.
    fn unhealed(&self) -> Option<String> {
        let record = self.controller.record();
        let Some(leader) = record.leader else {
            return Some("no leader".into());
        };
        let leader_node = &self.nodes[self.index(leader)];
        let Some(end) = leader_node.partition().map(|p| p.log_end_offset()) else {
            return Some("the leader is down".into());
        };
        if !self.network.is_empty() {
            return Some("messages in flight".into());
        }
        if !self.client.is_idle() {
            return Some("produces waiting".into());
        }
        if record.isr.len() != self.nodes.len() {
            return Some(format!("ISR {:?}", record.isr));
        }
        if !leader_node.leads_in(record.leader_epoch) {
            return Some("the leader does not know it leads".into());
        }
        for n in &self.nodes {
            let Some(r) = &n.running else {
                return Some(format!("node {} down", n.id));
            };
            let problem = if !r.registered {
                "not registered"
            } else if !r.fetchers.idle() {
                "a fetch round out"
            } else if r.alter_out.is_some() {
                "an AlterPartition out"
            } else if self.controller.is_fenced(n.id) {
                "fenced"
            } else if n.metadata.0 != self.controller.offset() {
                "stale metadata"
            } else if r.partition.log_end_offset() != end || r.partition.high_watermark() != end {
                "behind"
            } else {
                continue;
            };
            return Some(format!("node {}: {problem}", n.id));
        }
        None
    }

    /// The properties over whole logs, once healed.
    pub fn check_healed(&self) -> Result<(), String> {
        self.checker
            .after_healing(&self.nodes, self.controller.record(), &self.client.acked)
            .map_err(|e| self.failure(&e))
    }
}

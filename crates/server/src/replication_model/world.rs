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

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;
use std::time::{Duration, Instant};

use ferrite_replication::{LeaderEpoch, NodeId, Offset, Role};

use super::client::Client;
use super::controller::Controller;
use super::network::{Address, Envelope, FetchAnswer, Message, Network};
use super::properties::Checker;
use super::replica::ModelNode;
use super::rng::Rng;
use super::scheduler::{Event, Situation};
use super::stats::Stats;

/// `replica.lag.time.max.ms`, simulated.
const MAX_LAG: Duration = Duration::from_secs(1);
/// `broker.session.timeout.ms`, simulated.
const SESSION: Duration = Duration::from_secs(3);
/// `replica.fetch.wait.max.ms`, simulated: how long a leader holds a follower's Fetch that found nothing.
const FETCH_WAIT: Duration = Duration::from_millis(500);
/// Healing gives up (and the run fails) after this many rounds.
const HEAL_ROUNDS_MAX: u64 = 200;
/// Deliveries in one "deliver everything" (answers beget requests, but not forever).
const DELIVERIES_MAX: usize = 1000;
/// Events kept for the failure report (`MODEL_TRACE` overrides).
const TRACE_LEN: usize = 60;

/// A follower's Fetch that found nothing new, held by the leader until it has records, its role changes, or
/// `FETCH_WAIT` passes (the fetch handler's long poll: each pass records the fetch and reads again).
#[derive(Debug, Clone)]
struct Parked {
    leader: NodeId,
    leader_incarnation: u64,
    from: NodeId,
    incarnation: u64,
    round: u64,
    current_epoch: LeaderEpoch,
    fetch_offset: Offset,
    deadline: Instant,
}

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
    /// Stalled nodes, and when each resumes.
    stalled: BTreeMap<NodeId, Instant>,
    /// Slow links (sender, receiver), and when each is fast again: nothing on them arrives until then.
    slow_links: BTreeMap<(Address, Address), Instant>,
    parked: Vec<Parked>,
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
            trace: VecDeque::new(),
            trace_len: std::env::var("MODEL_TRACE")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(TRACE_LEN),
            trace_states: std::env::var_os("MODEL_TRACE_STATES").is_some(),
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
            deliverable: self
                .network
                .deliverable(&stalled, &self.slow_links.keys().copied().collect()),
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
        self.wake_long_polls();
        if self.trace_states {
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

    /// Answers the held fetches whose leader appended, changed role, or waited long enough; drops those
    /// whose leader crashed.
    fn wake_long_polls(&mut self) {
        for p in std::mem::take(&mut self.parked) {
            let n = &self.nodes[self.index(p.leader)];
            let Some(partition) = n
                .partition()
                .filter(|_| n.incarnation == p.leader_incarnation)
            else {
                continue;
            };
            let woken = partition.log_end_offset() > p.fetch_offset
                || self.now >= p.deadline
                || partition.check_leader(Some(p.current_epoch)).is_err();
            if self.stalled.contains_key(&p.leader) || !woken {
                self.parked.push(p);
                continue;
            }
            match n.answer_fetch(p.from, p.current_epoch, p.fetch_offset, self.now) {
                Some(FetchAnswer::Records { bytes, .. })
                    if bytes.is_empty() && self.now < p.deadline =>
                {
                    self.parked.push(p);
                }
                Some(answer) => self.network.send(
                    Address::Node(p.leader),
                    Address::Node(p.from),
                    Message::FetchAnswer {
                        incarnation: p.incarnation,
                        round: p.round,
                        answer,
                    },
                ),
                None => {}
            }
        }
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
        out.push_str("  in flight:\n");
        for line in self.network.describe() {
            out.push_str(&format!("    {line}\n"));
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
                let stalled = self.unreachable();
                if !self.client.knows_leader() {
                    // A client without a leader asks some broker first.
                    let answering: Vec<&ModelNode> = self
                        .nodes
                        .iter()
                        .filter(|n| n.running.is_some() && !stalled.contains(&n.id))
                        .collect();
                    if !answering.is_empty() {
                        let n = answering[self.rng.below(answering.len())];
                        self.client.learn_leader(n.metadata.1.leader);
                    }
                }
                self.client.produce(
                    &self.nodes,
                    &stalled,
                    &mut self.rng,
                    self.now,
                    &mut self.stats,
                );
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
                        self.network
                            .send(Address::Node(node), Address::Node(source), message);
                    }
                }
            }
            Event::Deliver { index } => {
                if let Some(envelope) = self.network.take(index) {
                    if self.trace_states {
                        self.note(format!("      {}", envelope.describe()));
                    }
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
                    self.note(format!(
                        "      node {node} asks for ISR {:?} (leader epoch {}, partition epoch {})",
                        request.isr, request.leader_epoch, request.partition_epoch
                    ));
                    self.network.send(
                        Address::Node(node),
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
                    self.network
                        .send(Address::Node(node), Address::Controller, message);
                }
            }
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
            Event::Fence { node } => {
                if self.controller.fence(node, &mut self.stats) {
                    self.publish();
                }
            }
            Event::SlowLink { from, to, ms } => {
                self.slow_links
                    .insert((from, to), self.now + Duration::from_millis(ms));
                self.stats.slow_links += 1;
            }
            Event::Stall { node, ms } => {
                if self.nodes[self.index(node)].running.is_some() {
                    self.stalled
                        .insert(node, self.now + Duration::from_millis(ms));
                    self.stats.stalls += 1;
                }
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
            Event::Restart { node } => {
                let i = self.index(node);
                if self.nodes[i].running.is_none() {
                    self.nodes[i].restart();
                    self.network.node_up(node);
                }
            }
            Event::Tick { ms } => {
                self.now += Duration::from_millis(ms);
                let now = self.now;
                self.stalled.retain(|_, until| *until > now);
                self.slow_links.retain(|_, until| *until > now);
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
                Address::Controller,
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
            } => match n.answer_fetch(from, current_epoch, fetch_offset, now) {
                Some(FetchAnswer::Records { bytes, .. }) if bytes.is_empty() => {
                    self.parked.push(Parked {
                        leader: node,
                        leader_incarnation: current,
                        from,
                        incarnation,
                        round,
                        current_epoch,
                        fetch_offset,
                        deadline: now + FETCH_WAIT,
                    });
                }
                Some(answer) => self.network.send(
                    Address::Node(node),
                    Address::Node(from),
                    Message::FetchAnswer {
                        incarnation,
                        round,
                        answer,
                    },
                ),
                None => {}
            },
            Message::EpochQuery {
                from,
                incarnation,
                round,
                current_epoch,
                latest_epoch,
            } => {
                if let Some(answer) = n.answer_epoch_query(current_epoch, latest_epoch) {
                    self.network.send(
                        Address::Node(node),
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
            } if incarnation == current => {
                let ok = accepted.is_some();
                if let Some((offset, record)) = accepted {
                    n.apply_metadata(offset, record, &mut self.stats);
                }
                n.on_alter_answer(id, ok);
            }
            Message::Registered {
                incarnation,
                offset,
                record,
            } if incarnation == current => {
                n.apply_metadata(offset, record, &mut self.stats);
                if let Some(r) = n.running.as_mut() {
                    r.registered = true;
                    r.serving = true;
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
                self.note(format!(
                    "      controller: ISR {:?} from node {leader} (partition epoch {}): {}",
                    request.isr,
                    request.partition_epoch,
                    if result.is_ok() {
                        "accepted"
                    } else {
                        "refused"
                    }
                ));
                if result == Ok(true) {
                    self.publish();
                }
                self.network.send(
                    Address::Controller,
                    Address::Node(leader),
                    Message::AlterPartitionAnswer {
                        incarnation,
                        id,
                        accepted: result
                            .is_ok()
                            .then(|| (self.controller.offset(), self.controller.record().clone())),
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
                self.network.send(
                    Address::Controller,
                    Address::Node(node),
                    Message::Registered {
                        incarnation,
                        offset: self.controller.offset(),
                        record: self.controller.record().clone(),
                    },
                );
            }
            Message::Heartbeat { node, incarnation } => {
                match self
                    .controller
                    .heartbeat(node, incarnation, now, &mut self.stats)
                {
                    Ok(true) => self.publish(),
                    Ok(false) => {}
                    Err(()) => self.network.send(
                        Address::Controller,
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
        self.stalled.clear();
        self.slow_links.clear();
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

    /// Delivers the oldest message `matches` picks; returns whether there was one.
    pub fn deliver_first(&mut self, matches: impl Fn(&Envelope) -> bool) -> Result<bool, String> {
        match self.network.position(matches) {
            Some(index) => self.run(Event::Deliver { index }).map(|_| true),
            None => Ok(false),
        }
    }

    /// The round of the newest Fetch or OffsetForLeaderEpoch `matches` picks.
    pub fn newest_round(&self, matches: impl Fn(&Envelope) -> bool) -> Option<u64> {
        let envelope = self.network.get(self.network.position_last(matches)?)?;
        match envelope.message {
            Message::Fetch { round, .. } | Message::EpochQuery { round, .. } => Some(round),
            _ => None,
        }
    }

    /// Delivers the newest message `matches` picks; returns whether there was one.
    pub fn deliver_last(&mut self, matches: impl Fn(&Envelope) -> bool) -> Result<bool, String> {
        match self.network.position_last(matches) {
            Some(index) => self.run(Event::Deliver { index }).map(|_| true),
            None => Ok(false),
        }
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
    /// the whole log with the high watermark at its end; no produce waiting. (Fetches go on: followers
    /// long-poll their leader for ever.)
    fn unhealed(&self) -> Option<String> {
        let record = self.controller.record();
        let Some(leader) = record.leader else {
            return Some("no leader".into());
        };
        let leader_node = &self.nodes[self.index(leader)];
        let Some(end) = leader_node.partition().map(|p| p.log_end_offset()) else {
            return Some("the leader is down".into());
        };
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

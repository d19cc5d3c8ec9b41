//! A cluster of real `ferrite` processes on loopback, for tests of the metadata quorum and of brokers that
//! share it.
//!
//! ```text
//! ClusterSpec ── roles (node ids 1..=n in order) + overrides for every node
//!      │ Cluster::start: pick every port, spawn every process, then wait for every start line (a node of a
//!      ▼                 multi-node quorum prints it only once the quorum has a leader)
//! Cluster ── nodes: [ClusterNode { id, role, client_addr?, controller_addr?, data dir, stderr log, child }]
//!   faults  kill9 (SIGKILL) / stop (SIGTERM) / pause (SIGSTOP) / resume (SIGCONT) / restart (same ports, data)
//!   views   metadata / describe_cluster / quorum / create_topic: one fallible raw request each, so a test
//!           can poll a node that is dying or not yet elected without panicking
//!   waits   wait_until / wait_for_brokers / wait_for_topic / active_controller
//! ```
//! Clients (rdkafka) come from [`produce`] and [`consume_group`]. Every child is killed on drop; a test that
//! panics prints the tail of every node's log first and keeps the nodes' directories (as does any test run
//! with CLUSTER_TEST_KEEP set).
#![allow(dead_code, clippy::unwrap_used)]

mod clients;
mod netns;
mod views;

#[allow(unused_imports)]
pub use clients::*;
#[allow(unused_imports)]
pub use views::*;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a node may take to print its start line (the quorum electing a leader included).
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// One raw request's answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A CreateTopics that may wait for a quorum that has lost its majority (the server gives up after ~30 s).
pub const CREATE_TOPIC_TIMEOUT: Duration = Duration::from_secs(45);

pub const NONE: i16 = 0;
pub const LEADER_NOT_AVAILABLE: i16 = 5;
pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
pub const REQUEST_TIMED_OUT: i16 = 7;
pub const TOPIC_ALREADY_EXISTS: i16 = 36;
pub const INVALID_REPLICATION_FACTOR: i16 = 38;
pub const NOT_CONTROLLER: i16 = 41;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Combined,
    Controller,
    Broker,
}

impl Role {
    fn process_roles(self) -> &'static str {
        match self {
            Role::Combined => "broker,controller",
            Role::Controller => "controller",
            Role::Broker => "broker",
        }
    }

    pub fn is_broker(self) -> bool {
        self != Role::Controller
    }

    pub fn is_controller(self) -> bool {
        self != Role::Broker
    }
}

/// What to start: node `i + 1` has `roles[i]`; `overrides` go to every node after the cluster's own settings.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub roles: Vec<Role>,
    pub overrides: Vec<(String, String)>,
    /// Each node in its own network namespace with its own address (see `netns.rs`), so that the test can
    /// partition the network between nodes; otherwise every node is on loopback.
    pub namespaces: bool,
}

impl ClusterSpec {
    /// `n` nodes that are each broker and controller.
    pub fn combined(n: usize) -> ClusterSpec {
        ClusterSpec {
            roles: vec![Role::Combined; n],
            overrides: vec![],
            namespaces: false,
        }
    }

    /// Controller-only nodes 1..=controllers, then broker-only nodes.
    pub fn split(controllers: usize, brokers: usize) -> ClusterSpec {
        let mut roles = vec![Role::Controller; controllers];
        roles.extend(vec![Role::Broker; brokers]);
        ClusterSpec {
            roles,
            overrides: vec![],
            namespaces: false,
        }
    }

    /// Every node in its own network namespace (needs root and iproute2).
    pub fn in_namespaces(mut self) -> ClusterSpec {
        self.namespaces = true;
        self
    }

    /// A setting (Kafka name) for every node.
    pub fn with(mut self, name: &str, value: &str) -> ClusterSpec {
        self.overrides.push((name.to_string(), value.to_string()));
        self
    }

    /// A setting for node `id` alone (after the ones for every node), such as its `broker.rack`.
    pub fn with_for(mut self, id: i32, name: &str, value: &str) -> ClusterSpec {
        self.overrides
            .push((format!("@{id}:{name}"), value.to_string()));
        self
    }
}

/// One `ferrite` process; its ports and data directory stay the same across restarts.
pub struct ClusterNode {
    pub id: i32,
    pub role: Role,
    /// The PLAINTEXT listener (`127.0.0.1:port`) of a node with the broker role.
    pub client_addr: Option<String>,
    /// The CONTROLLER listener of a node with the controller role.
    pub controller_addr: Option<String>,
    pub data_dir: PathBuf,
    /// The last start line the node printed.
    pub start_line: String,
    log_path: PathBuf,
    child: Option<Child>,
    /// The first stdout line of the process last spawned, from its reader thread.
    first_line: Option<mpsc::Receiver<String>>,
    paused: bool,
    /// The network namespace the node runs in, if the cluster has its own network.
    namespace: Option<String>,
}

impl ClusterNode {
    /// The client address; panics for a controller-only node.
    pub fn addr(&self) -> &str {
        self.client_addr
            .as_deref()
            .unwrap_or_else(|| panic!("node {} has no client listener", self.id))
    }

    /// Running and not paused: it can answer.
    pub fn is_live(&self) -> bool {
        self.child.is_some() && !self.paused
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(-1, |c| c.id() as i32)
    }

    fn listeners(&self) -> String {
        let mut listeners = vec![];
        if let Some(addr) = &self.client_addr {
            listeners.push(format!("PLAINTEXT://{addr}"));
        }
        if let Some(addr) = &self.controller_addr {
            listeners.push(format!("CONTROLLER://{addr}"));
        }
        listeners.join(",")
    }

    fn spawn(&mut self, voters: &str, overrides: &[(String, String)]) {
        assert!(self.child.is_none(), "node {} is running", self.id);
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .unwrap();
        writeln!(
            log,
            "===== cluster test kit: spawning node {} =====",
            self.id
        )
        .unwrap();
        // `ip netns exec` execs the broker in place: the child's pid is the broker's, for signals.
        let mut cmd = match &self.namespace {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_ferrite")]);
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_ferrite")),
        };
        cmd.arg("--listeners")
            .arg(self.listeners())
            .arg("--log-dirs")
            .arg(&self.data_dir);
        let own = [
            ("node.id", self.id.to_string()),
            ("process.roles", self.role.process_roles().to_string()),
            ("controller.quorum.voters", voters.to_string()),
        ];
        let own = own.iter().map(|(k, v)| (k.to_string(), v.clone()));
        // Settings for one node are stored as `@<id>:<name>`.
        let mine = format!("@{}:", self.id);
        let overrides = overrides
            .iter()
            .filter_map(|(k, v)| match k.strip_prefix('@') {
                None => Some((k.clone(), v.clone())),
                Some(_) => k
                    .strip_prefix(mine.as_str())
                    .map(|name| (name.to_string(), v.clone())),
            });
        for (k, v) in own.chain(overrides) {
            cmd.arg("--override").arg(format!("{k}={v}"));
        }
        let mut child = cmd
            .env("FERRITE_LOG", "info,openraft=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Reads to the end so the node never writes into a closed pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        self.first_line = Some(rx);
        self.child = Some(child);
        self.paused = false;
    }

    /// Waits for the start line of the process last spawned.
    fn await_start(&mut self, deadline: Instant) -> Result<(), String> {
        let rx = self.first_line.take().expect("spawned");
        let wait = deadline.saturating_duration_since(Instant::now());
        let line = match rx.recv_timeout(wait) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(format!(
                    "node {} printed no start line within {START_TIMEOUT:?}",
                    self.id
                ))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = self.child.as_mut().and_then(|c| c.wait().ok());
                self.child = None;
                return Err(format!(
                    "node {} exited before starting: {status:?}",
                    self.id
                ));
            }
        };
        let listening = line.starts_with("ferrite ") && line.contains(" listening on ");
        let on_its_port = self
            .client_addr
            .as_ref()
            .is_none_or(|a| line.contains(a.as_str()));
        if !listening || !on_its_port {
            return Err(format!("node {}: unexpected start line {line:?}", self.id));
        }
        self.start_line = line;
        Ok(())
    }

    fn signal(&self, signal: &str) {
        let pid = self.pid();
        assert!(pid > 0, "node {} is not running", self.id);
        // kill(1) keeps this test crate free of unsafe code.
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {pid}");
    }

    /// The node's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

pub struct Cluster {
    pub nodes: Vec<ClusterNode>,
    voters: String,
    overrides: Vec<(String, String)>,
    /// The cluster's own network, when its nodes run in namespaces (removed after the nodes are killed).
    network: Option<netns::Network>,
    /// Kept (not deleted) when a test fails.
    tmp: Option<tempfile::TempDir>,
}

/// A free loopback port. The listener is dropped by the caller only once every port is picked, so no two
/// nodes get the same one.
fn free_port() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

impl Cluster {
    /// Spawns every node, then waits for each one's start line.
    pub fn start(spec: ClusterSpec) -> Cluster {
        let tmp = tempfile::tempdir().unwrap();
        let network = spec.namespaces.then(|| {
            netns::Network::create(spec.roles.len()).unwrap_or_else(|e| {
                panic!("cannot make the test's network namespaces (root and iproute2 needed): {e}")
            })
        });
        let mut held = vec![];
        let mut port = || {
            let listener = free_port();
            let addr = listener.local_addr().unwrap().to_string();
            held.push(listener);
            addr
        };
        let mut nodes = vec![];
        for (i, role) in spec.roles.iter().enumerate() {
            let id = i as i32 + 1;
            let dir = tmp.path().join(format!("node-{id}"));
            std::fs::create_dir_all(dir.join("data")).unwrap();
            // In its own namespace a node has its own address and the same ports as every other node.
            let (client_addr, controller_addr) = match &network {
                Some(net) => (
                    role.is_broker()
                        .then(|| format!("{}:9092", net.node_ip(id))),
                    role.is_controller()
                        .then(|| format!("{}:9093", net.node_ip(id))),
                ),
                None => (
                    role.is_broker().then(&mut port),
                    role.is_controller().then(&mut port),
                ),
            };
            nodes.push(ClusterNode {
                id,
                role: *role,
                client_addr,
                controller_addr,
                data_dir: dir.join("data"),
                start_line: String::new(),
                log_path: dir.join("node.log"),
                child: None,
                first_line: None,
                paused: false,
                namespace: network.as_ref().map(|n| n.namespace(id).to_string()),
            });
        }
        drop(held);
        let voters: Vec<String> = nodes
            .iter()
            .filter_map(|n| Some(format!("{}@{}", n.id, n.controller_addr.as_ref()?)))
            .collect();
        let mut cluster = Cluster {
            nodes,
            voters: voters.join(","),
            overrides: spec.overrides,
            network,
            tmp: Some(tmp),
        };
        let started = Instant::now();
        for node in &mut cluster.nodes {
            node.spawn(&cluster.voters, &cluster.overrides);
        }
        let deadline = started + START_TIMEOUT;
        for i in 0..cluster.nodes.len() {
            if let Err(e) = cluster.nodes[i].await_start(deadline) {
                panic!("{e}");
            }
        }
        eprintln!(
            "cluster of {} nodes ({}) started in {:?}",
            cluster.nodes.len(),
            cluster.voters,
            started.elapsed()
        );
        cluster
    }

    pub fn node(&self, id: i32) -> &ClusterNode {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    fn node_mut(&mut self, id: i32) -> &mut ClusterNode {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// Ids of the nodes with the broker role that can answer (running, not paused).
    pub fn live_brokers(&self) -> Vec<i32> {
        self.nodes
            .iter()
            .filter(|n| n.role.is_broker() && n.is_live())
            .map(|n| n.id)
            .collect()
    }

    /// Ids of every node with the broker role.
    pub fn broker_ids(&self) -> BTreeSet<i32> {
        self.nodes
            .iter()
            .filter(|n| n.role.is_broker())
            .map(|n| n.id)
            .collect()
    }

    /// Ids of every voter.
    pub fn controller_ids(&self) -> BTreeSet<i32> {
        self.nodes
            .iter()
            .filter(|n| n.role.is_controller())
            .map(|n| n.id)
            .collect()
    }

    /// The PLAINTEXT addresses of the live brokers, comma-separated.
    pub fn bootstrap_servers(&self) -> String {
        let addrs: Vec<&str> = self
            .live_brokers()
            .into_iter()
            .map(|id| self.node(id).addr())
            .collect();
        addrs.join(",")
    }

    /// Cuts the network between the nodes of `a` and those of `b` (clients still reach both sides). Needs
    /// a cluster started [`ClusterSpec::in_namespaces`].
    pub fn partition(&mut self, a: &[i32], b: &[i32]) {
        let network = self
            .network
            .as_mut()
            .expect("a cluster with its own network");
        network.partition(a, b).unwrap();
    }

    /// Removes every network partition.
    pub fn heal(&mut self) {
        if let Some(network) = self.network.as_mut() {
            network.heal().unwrap();
        }
    }

    /// SIGKILL, as a crash (also ends a paused node).
    pub fn kill9(&mut self, id: i32) {
        let node = self.node_mut(id);
        if let Some(mut child) = node.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
        node.paused = false;
    }

    /// SIGTERM, then waits up to 30 s for the exit; returns the exit code.
    pub fn stop(&mut self, id: i32) -> Option<i32> {
        self.node(id).signal("TERM");
        let node = self.node_mut(id);
        let mut child = node.child.take()?;
        for _ in 0..300 {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        child.kill().unwrap();
        let _ = child.wait();
        panic!("node {id} did not exit within 30 s of SIGTERM");
    }

    /// SIGSTOP: the process keeps its sockets but does nothing (no heartbeats, no answers).
    pub fn pause(&mut self, id: i32) {
        self.node(id).signal("STOP");
        self.node_mut(id).paused = true;
    }

    /// SIGCONT after [`Cluster::pause`].
    pub fn resume(&mut self, id: i32) {
        self.node(id).signal("CONT");
        self.node_mut(id).paused = false;
    }

    /// Starts a stopped or killed node again on its ports and data directory; waits for its start line.
    pub fn restart(&mut self, id: i32) {
        let (voters, overrides) = (self.voters.clone(), self.overrides.clone());
        let node = self.node_mut(id);
        node.spawn(&voters, &overrides);
        if let Err(e) = node.await_start(Instant::now() + START_TIMEOUT) {
            panic!("{e}");
        }
    }

    /// Node `id`'s stderr so far.
    pub fn log(&self, id: i32) -> String {
        self.node(id).log()
    }

    /// The last `lines` distinct lines of every node's log, for failure messages: a line that says again what
    /// an earlier one said (timestamp aside, such as openraft retrying an unreachable voter) is left out.
    pub fn logs_tail(&self, lines: usize) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            let log = node.log();
            let mut seen = BTreeSet::new();
            let distinct: Vec<&str> = log
                .lines()
                .filter(|line| {
                    let text = match line.split_once(' ') {
                        Some((time, rest)) if time.starts_with(|c: char| c.is_ascii_digit()) => {
                            rest
                        }
                        _ => line,
                    };
                    text.starts_with("=====") || seen.insert(text)
                })
                .collect();
            let omitted = log.lines().count() - distinct.len();
            let tail = &distinct[distinct.len().saturating_sub(lines)..];
            out.push_str(&format!(
                "----- node {} ({:?}, pid {}, paused {}): last {} distinct lines ({omitted} repeats left out) -----\n{}\n",
                node.id,
                node.role,
                node.pid(),
                node.paused,
                tail.len(),
                tail.join("\n")
            ));
        }
        out
    }

    /// Polls `done` every 50 ms until it holds; returns how long that took. Panics after `timeout` with
    /// `what` and every node's log tail.
    pub fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        mut done: impl FnMut() -> bool,
    ) -> Duration {
        let started = Instant::now();
        loop {
            if done() {
                return started.elapsed();
            }
            if started.elapsed() > timeout {
                panic!("not within {timeout:?}: {what}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        if failed {
            eprintln!("cluster test failed; node logs:\n{}", self.logs_tail(80));
        }
        if failed || std::env::var_os("CLUSTER_TEST_KEEP").is_some() {
            if let Some(dir) = self.tmp.take() {
                eprintln!(
                    "data directories and full logs kept in {}",
                    dir.keep().display()
                );
            }
        }
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

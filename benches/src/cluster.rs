//! Cluster figures (`--cluster`): three `ferrite` processes (broker and controller each) on loopback, with
//! Kafka's defaults (broker.session.timeout.ms 9000, replica.lag.time.max.ms 30000) unless a figure says.
//!
//! ```text
//! throughput: the same librdkafka producers (1 KiB, no compression, 64 KiB batches) for the same time:
//!             acks=1 to a replication-factor-1 topic, then acks=all to a replication-factor-3 topic with
//!             min.insync.replicas 2; and end-to-end latency (produce -> a consumer has it) at a fixed rate
//! failover:   an idempotent acks=all producer sending every 10 ms to one partition; kill -9 of its leader
//!             -> the first acknowledgement after the kill (repeated, the killed broker restarted between)
//! ISR:        SIGSTOP of a follower -> the ISR without it (Metadata); SIGCONT -> the ISR whole again
//! ```

use crate::load::{self, ProducerSpec, Throughput};
use crate::report::Error;
use crate::sys;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};
use serde::Serialize;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Default, Serialize)]
pub struct ClusterFigures {
    pub seconds_per_run: f64,
    pub rf1_acks1: Option<Figures>,
    pub rf3_acks_all: Option<Figures>,
    /// acks=all throughput with replication factor 3 as a share of acks=1 with replication factor 1.
    pub throughput_ratio: f64,
    pub latency_rate: f64,
    pub session_timeout_ms: u64,
    /// Seconds from kill -9 of a leader to the first acks=all acknowledgement, per repetition.
    pub failover_seconds: Vec<f64>,
    pub lag_time_max_ms: u64,
    /// Seconds from SIGSTOP of a follower to the ISR without it.
    pub isr_shrink_seconds: f64,
    /// Seconds from SIGCONT to the ISR whole again.
    pub isr_expand_seconds: f64,
}

#[derive(Debug, Default, Serialize, Clone, Copy)]
pub struct Figures {
    pub mb_per_s: f64,
    pub msgs_per_s: f64,
    pub errors: u64,
    pub p50_us: u64,
    pub p99_us: u64,
}

struct Node {
    id: i32,
    client: String,
    controller: String,
    data: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

struct Cluster {
    bin: PathBuf,
    nodes: Vec<Node>,
    voters: String,
    overrides: Vec<String>,
}

fn free_addr() -> Result<String, Error> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.to_string())
}

impl Cluster {
    fn start(bin: &Path, scratch: &Path, overrides: &[&str]) -> Result<Cluster, Error> {
        let mut nodes = vec![];
        for id in 1..=3 {
            let dir = scratch.join(format!("node-{id}"));
            std::fs::create_dir_all(&dir)?;
            nodes.push(Node {
                id,
                client: free_addr()?,
                controller: free_addr()?,
                data: dir.join("data"),
                log: dir.join("node.log"),
                child: None,
            });
        }
        let voters: Vec<String> = nodes
            .iter()
            .map(|n| format!("{}@{}", n.id, n.controller))
            .collect();
        let mut cluster = Cluster {
            bin: bin.to_path_buf(),
            nodes,
            voters: voters.join(","),
            overrides: overrides.iter().map(|s| s.to_string()).collect(),
        };
        for id in 1..=3 {
            cluster.spawn(id)?;
        }
        for id in 1..=3 {
            cluster.await_start(id)?;
        }
        Ok(cluster)
    }

    fn node(&mut self, id: i32) -> &mut Node {
        &mut self.nodes[(id - 1) as usize]
    }

    fn spawn(&mut self, id: i32) -> Result<(), Error> {
        let (bin, voters, overrides) = (
            self.bin.clone(),
            self.voters.clone(),
            self.overrides.clone(),
        );
        let node = self.node(id);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)?;
        let mut cmd = Command::new(bin);
        cmd.arg("--listeners")
            .arg(format!(
                "PLAINTEXT://{},CONTROLLER://{}",
                node.client, node.controller
            ))
            .arg("--log-dirs")
            .arg(&node.data)
            .args(["--override", &format!("node.id={id}")])
            .args(["--override", "process.roles=broker,controller"])
            .args(["--override", &format!("controller.quorum.voters={voters}")]);
        for o in overrides {
            cmd.arg("--override").arg(o);
        }
        let child = cmd
            .env(
                "FERRITE_LOG",
                std::env::var("FERRITE_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()?;
        node.child = Some(child);
        Ok(())
    }

    /// Waits for the start line (a multi-node quorum prints it once it has a leader).
    fn await_start(&mut self, id: i32) -> Result<(), Error> {
        let node = self.node(id);
        let child = node.child.as_mut().ok_or("not spawned")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        if !line.contains("listening on") {
            return Err(format!("node {id}: no start line; see {}", node.log.display()).into());
        }
        Ok(())
    }

    fn kill9(&mut self, id: i32) -> Result<(), Error> {
        if let Some(mut child) = self.node(id).child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    fn signal(&mut self, id: i32, signal: &str) -> Result<(), Error> {
        let pid = self
            .node(id)
            .child
            .as_ref()
            .map(Child::id)
            .ok_or("not running")?;
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()?
            .success();
        if ok {
            Ok(())
        } else {
            Err(format!("kill -{signal} {pid} failed").into())
        }
    }

    fn restart(&mut self, id: i32) -> Result<(), Error> {
        self.spawn(id)?;
        self.await_start(id)
    }

    fn bootstrap(&self) -> String {
        let live: Vec<&str> = self
            .nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.client.as_str())
            .collect();
        live.join(",")
    }

    fn stop_all(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = sys::terminate(child.id());
                let _ = child.wait();
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// (leader, ISR) of `topic`-`partition` as the cluster's Metadata says.
fn partition_state(bootstrap: &str, topic: &str, partition: i32) -> Option<(i32, Vec<i32>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .ok()?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .ok()?;
    let p = metadata
        .topics()
        .first()?
        .partitions()
        .iter()
        .find(|p| p.id() == partition)?;
    Some((p.leader(), p.isr().to_vec()))
}

fn wait_for(
    what: &str,
    timeout: Duration,
    mut done: impl FnMut() -> bool,
) -> Result<Duration, Error> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if done() {
            return Ok(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!("not within {timeout:?}: {what}").into())
}

fn measure(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    spec: &ProducerSpec,
    producers: usize,
    secs: Duration,
    rate: f64,
) -> Result<Figures, Error> {
    let t: Throughput = load::produce(bootstrap, topic, partitions, spec, producers, secs)?;
    let latencies = load::latency(bootstrap, topic, spec, rate, secs)?;
    Ok(Figures {
        mb_per_s: t.mb_per_s(),
        msgs_per_s: t.msgs_per_s(),
        errors: t.errors,
        p50_us: load::quantile(&latencies, 0.5),
        p99_us: load::quantile(&latencies, 0.99),
    })
}

/// Acknowledgement times of an acks=all producer.
struct AckTimes(Arc<Mutex<Vec<Instant>>>);

impl ClientContext for AckTimes {}

impl ProducerContext for AckTimes {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &rdkafka::message::DeliveryResult<'_>, _: ()) {
        if result.is_ok() {
            if let Ok(mut times) = self.0.lock() {
                times.push(Instant::now());
            }
        }
    }
}

/// Kill -9 of the leader of `topic`-0 while an acks=all producer sends every 10 ms; seconds until its first
/// acknowledgement after the kill. The killed broker is restarted and back in the ISR afterwards.
fn failover_once(cluster: &mut Cluster, topic: &str) -> Result<f64, Error> {
    let bootstrap = cluster.bootstrap();
    let (leader, _) = partition_state(&bootstrap, topic, 0).ok_or("no metadata")?;
    let times = Arc::new(Mutex::new(vec![]));
    let producer: ThreadedProducer<AckTimes> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "0")
        .set("message.timeout.ms", "60000")
        .create_with_context(AckTimes(Arc::clone(&times)))?;
    let send_for = |d: Duration| -> Result<(), Error> {
        let until = Instant::now() + d;
        while Instant::now() < until {
            producer
                .send(
                    BaseRecord::<(), [u8]>::to(topic)
                        .payload(&b"failover"[..])
                        .partition(0),
                )
                .map_err(|(e, _)| e)?;
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    };
    send_for(Duration::from_secs(2))?;
    let killed = Instant::now();
    cluster.kill9(leader)?;
    let first_after = |times: &Mutex<Vec<Instant>>| -> Option<Instant> {
        times.lock().ok()?.iter().copied().find(|t| *t > killed)
    };
    let deadline = killed + Duration::from_secs(120);
    while first_after(&times).is_none() && Instant::now() < deadline {
        send_for(Duration::from_millis(100))?;
    }
    let first = first_after(&times).ok_or("no acknowledgement within 120 s of the kill")?;
    producer.flush(Duration::from_secs(60))?;
    cluster.restart(leader)?;
    let bootstrap = cluster.bootstrap();
    wait_for("the ISR whole again", Duration::from_secs(120), || {
        partition_state(&bootstrap, topic, 0).is_some_and(|(_, isr)| isr.len() == 3)
    })?;
    Ok(first.duration_since(killed).as_secs_f64())
}

pub fn run(
    bin: &Path,
    scratch: &Path,
    quick: bool,
    producers: usize,
) -> Result<ClusterFigures, Error> {
    let session_ms = 9000;
    let lag_ms = 30_000;
    let mut cluster = Cluster::start(bin, scratch, &["group.initial.rebalance.delay.ms=0"])?;
    let bootstrap = cluster.bootstrap();
    let secs = Duration::from_secs(if quick { 3 } else { 10 });
    let partitions = 6;
    let mut figures = ClusterFigures {
        seconds_per_run: secs.as_secs_f64(),
        session_timeout_ms: session_ms,
        lag_time_max_ms: lag_ms,
        ..ClusterFigures::default()
    };
    let spec = |acks| ProducerSpec {
        message_bytes: 1024,
        acks,
        compression: "none",
        linger_ms: 5,
        batch_bytes: 64 * 1024,
    };
    load::create_topic_replicated(&bootstrap, "rf1", partitions, 1, &[])?;
    load::create_topic_replicated(
        &bootstrap,
        "rf3",
        partitions,
        3,
        &[("min.insync.replicas", "2")],
    )?;
    wait_for("rf3 in sync", Duration::from_secs(60), || {
        (0..partitions)
            .all(|p| partition_state(&bootstrap, "rf3", p).is_some_and(|(_, isr)| isr.len() == 3))
    })?;
    // Latency at a rate both configurations sustain: a quarter of the replicated throughput, measured first.
    let rf3 = load::produce(&bootstrap, "rf3", partitions, &spec("all"), producers, secs)?;
    figures.latency_rate = (rf3.msgs_per_s() / 4.0).max(1000.0);
    eprintln!("cluster: rf3 acks=all warm-up {:.1} MB/s", rf3.mb_per_s());
    let rf1 = measure(
        &bootstrap,
        "rf1",
        partitions,
        &spec("1"),
        producers,
        secs,
        figures.latency_rate,
    )?;
    let rf3 = measure(
        &bootstrap,
        "rf3",
        partitions,
        &spec("all"),
        producers,
        secs,
        figures.latency_rate,
    )?;
    figures.throughput_ratio = rf3.mb_per_s / rf1.mb_per_s.max(1e-9);
    eprintln!("cluster: rf1 acks=1 {rf1:?}; rf3 acks=all {rf3:?}");
    figures.rf1_acks1 = Some(rf1);
    figures.rf3_acks_all = Some(rf3);

    load::create_topic_replicated(
        &bootstrap,
        "failover",
        1,
        3,
        &[("min.insync.replicas", "2")],
    )?;
    wait_for("failover in sync", Duration::from_secs(60), || {
        partition_state(&bootstrap, "failover", 0).is_some_and(|(_, isr)| isr.len() == 3)
    })?;
    for _ in 0..if quick { 1 } else { 3 } {
        let s = failover_once(&mut cluster, "failover")?;
        eprintln!("cluster: first acks=all acknowledgement {s:.2} s after kill -9 of the leader");
        figures.failover_seconds.push(s);
    }

    let bootstrap = cluster.bootstrap();
    let (leader, isr) = partition_state(&bootstrap, "failover", 0).ok_or("no metadata")?;
    let follower = *isr.iter().find(|id| **id != leader).ok_or("no follower")?;
    cluster.signal(follower, "STOP")?;
    let paused = Instant::now();
    let shrunk = wait_for(
        "the ISR without the paused follower",
        Duration::from_secs(120),
        || {
            partition_state(&bootstrap, "failover", 0)
                .is_some_and(|(_, isr)| !isr.contains(&follower))
        },
    );
    figures.isr_shrink_seconds = paused.elapsed().as_secs_f64();
    cluster.signal(follower, "CONT")?;
    shrunk?;
    let resumed = Instant::now();
    wait_for("the ISR whole again", Duration::from_secs(120), || {
        partition_state(&bootstrap, "failover", 0).is_some_and(|(_, isr)| isr.len() == 3)
    })?;
    figures.isr_expand_seconds = resumed.elapsed().as_secs_f64();
    eprintln!(
        "cluster: ISR without the paused follower after {:.2} s, whole again {:.2} s after SIGCONT",
        figures.isr_shrink_seconds, figures.isr_expand_seconds
    );
    cluster.stop_all();
    Ok(figures)
}

impl ClusterFigures {
    pub fn markdown(&self) -> String {
        let mut s = String::from("| figure | value |\n|---|---|\n");
        for (name, f) in [
            ("acks=1, replication factor 1", self.rf1_acks1),
            (
                "acks=all, replication factor 3, min.insync.replicas 2",
                self.rf3_acks_all,
            ),
        ] {
            if let Some(f) = f {
                s += &format!(
                    "| {name}: produce throughput (1 KiB records, {:.0} s) | {:.1} MB/s ({:.0} records/s, {} errors) |\n",
                    self.seconds_per_run, f.mb_per_s, f.msgs_per_s, f.errors
                );
                s += &format!(
                    "| {name}: end-to-end latency at {:.0} records/s, p50 / p99 | {:.2} / {:.2} ms |\n",
                    self.latency_rate,
                    f.p50_us as f64 / 1000.0,
                    f.p99_us as f64 / 1000.0
                );
            }
        }
        s += &format!(
            "| acks=all RF 3 throughput / acks=1 RF 1 throughput | {:.2} |\n",
            self.throughput_ratio
        );
        let runs: Vec<String> = self
            .failover_seconds
            .iter()
            .map(|v| format!("{v:.2}"))
            .collect();
        s += &format!(
            "| kill -9 of a leader -> first acks=all acknowledgement on its partition (broker.session.timeout.ms {}) | {} s |\n",
            self.session_timeout_ms,
            runs.join(", ")
        );
        s += &format!(
            "| SIGSTOP of a follower -> ISR without it (session {} ms, replica.lag.time.max.ms {}) | {:.2} s |\n",
            self.session_timeout_ms, self.lag_time_max_ms, self.isr_shrink_seconds
        );
        s += &format!(
            "| SIGCONT -> ISR whole again | {:.2} s |\n",
            self.isr_expand_seconds
        );
        s
    }
}

//! Clients and tools older than Kafka 4.0's protocol floor (KIP-896), against the real `ferrite` binary: Debian
//! bookworm's sarama 1.22 (configured for Kafka 2.1), kafka-go 0.2.1 and Burrow 1.2.1. Each uses request
//! versions Kafka 3.9 still served and 4.0 removed (JoinGroup v1, OffsetCommit v1, CreateTopics v0,
//! ListOffsets v0), and kafka-go also the magic 1 message format (Produce v2, Fetch v2).
//!
//! The Go programs in `tests/clients/go/` are built here, offline in GOPATH mode against Debian's packaged
//! sources in `/usr/share/gocode`, into `target/tmp/go-clients` (Go's build cache makes rebuilds quick).
//! Burrow 1.2.1 needs ZooKeeper for its own coordination, so its test also runs Debian's ZooKeeper on a loopback
//! port. `./scripts/test` installs all of it; a missing piece fails its test with a message saying what to
//! install. Every process a test starts listens on or talks to loopback only, has a deadline, and is killed
//! when the test ends.
#![allow(clippy::unwrap_used)]

mod common;

use common::{topic, Broker};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const GO_HINT: &str = "install Go and Debian's Go Kafka clients: apt-get install golang-go \
     golang-github-shopify-sarama-dev golang-github-segmentio-kafka-go-dev (./scripts/test installs them)";
const BURROW_HINT: &str =
    "install Burrow and ZooKeeper: apt-get install burrow zookeeper (./scripts/test installs them)";
const GOCODE: &str = "/usr/share/gocode/src";
const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);
/// One request from the test itself (metadata, commit, watermarks).
const TIMEOUT: Duration = Duration::from_secs(20);

/// Broker settings: a classic group's first generation starts 200 ms after its first member joins.
const BROKER: [(&str, &str); 2] = [
    ("group.initial.rebalance.delay.ms", "200"),
    ("offsets.topic.num.partitions", "4"),
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

// ----------------------------------------------------------------------------------------------------------------
// Processes

/// What one run of a program printed.
struct Run {
    what: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
    timed_out: bool,
}

impl Run {
    fn ok(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }

    fn report(&self, broker: &Broker) -> String {
        format!(
            "{}: {}\n--- stdout\n{}\n--- stderr (last 80 lines)\n{}\n--- broker log (last 80 lines)\n{}",
            self.what,
            if self.timed_out {
                "TIMED OUT".to_string()
            } else {
                format!("exit code {:?}", self.code)
            },
            self.stdout,
            tail(&self.stderr, 80),
            tail(&broker.log(), 80),
        )
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs `cmd` to completion, killing it after `timeout`; a program that is not installed fails with `hint`.
fn run(cmd: &mut Command, timeout: Duration, hint: &str) -> Run {
    let what = format!("{cmd:?}");
    let mut child = match cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("{what}: program not found: {hint}")
        }
        Err(e) => panic!("{what}: {e}"),
    };
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let stdout = reader(Box::new(child.stdout.take().unwrap()));
    let stderr = reader(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > timeout {
            timed_out = true;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        what,
        code: status.code(),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
        timed_out,
    }
}

/// A background process, its stdout and stderr in `output`, killed (and reaped) when the test ends, however it
/// ends.
struct Background {
    name: &'static str,
    child: Child,
    output: PathBuf,
    /// A log file the program writes itself, shown with its output.
    log: Option<PathBuf>,
}

impl Background {
    fn spawn(name: &'static str, cmd: &mut Command, output: PathBuf, hint: &str) -> Background {
        let file = std::fs::File::create(&output).unwrap();
        let spawned = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn();
        match spawned {
            Ok(child) => Background {
                name,
                child,
                output,
                log: None,
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                panic!("{name}: program not found: {hint}")
            }
            Err(e) => panic!("{name}: {e}"),
        }
    }

    fn with_log(mut self, log: PathBuf) -> Background {
        self.log = Some(log);
        self
    }

    fn output(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        match &self.log {
            None => read(&self.output),
            Some(log) => format!(
                "{}\n--- {}\n{}",
                read(&self.output),
                log.display(),
                tail(&read(log), 60)
            ),
        }
    }

    /// Fails if the process has already exited.
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "{} exited early with {status}; its output:\n{}",
                self.name,
                self.output()
            );
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ----------------------------------------------------------------------------------------------------------------
// Go clients

/// Builds `tests/clients/go/<name>` offline in GOPATH mode (GO111MODULE=off, Debian's sources in
/// /usr/share/gocode, no module proxy) and returns the binary, under `target/tmp/go-clients`.
fn go_client(name: &str, libraries: &[&str]) -> PathBuf {
    for library in libraries {
        let dir = Path::new(GOCODE).join(library);
        assert!(dir.is_dir(), "{} is missing: {GO_HINT}", dir.display());
    }
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-clients");
    std::fs::create_dir_all(&out_dir).unwrap();
    let binary = out_dir.join(name);
    // Tests may build the same client at once: build to a private name, then rename over the binary.
    let building = out_dir.join(format!("{name}.{}", std::process::id()));
    let build = run(
        Command::new("go")
            .current_dir(repo_root().join("tests/clients/go").join(name))
            .args(["build", "-o"])
            .arg(&building)
            .arg(".")
            .env("GO111MODULE", "off")
            .env("GOPATH", "/usr/share/gocode")
            .env("GOPROXY", "off")
            .env("GOFLAGS", "")
            .env("GOCACHE", out_dir.join("go-cache")),
        Duration::from_secs(300),
        GO_HINT,
    );
    assert!(
        build.ok(),
        "building {name} failed ({GO_HINT}):\n{}\n{}",
        build.stdout,
        build.stderr
    );
    std::fs::rename(&building, &binary).unwrap();
    binary
}

/// The "<word> <partition> <offset>" lines a Go client printed.
fn partition_lines(stdout: &str, word: &str) -> BTreeMap<i32, i64> {
    stdout
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            (f.next()? == word).then_some(())?;
            Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
        })
        .collect()
}

// ----------------------------------------------------------------------------------------------------------------
// A current client (librdkafka through the rdkafka crate) to check what the old ones did

fn observer(broker: &Broker, group: Option<&str>) -> BaseConsumer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &broker.addr)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    if let Some(group) = group {
        config.set("group.id", group);
    }
    config.create().unwrap()
}

/// High watermark of every partition of `topic`.
fn high_watermarks(broker: &Broker, topic: &str) -> BTreeMap<i32, i64> {
    let consumer = observer(broker, None);
    let metadata = consumer.fetch_metadata(Some(topic), TIMEOUT).unwrap();
    let partitions = metadata.topics()[0].partitions().len() as i32;
    (0..partitions)
        .map(|p| {
            let (_, high) = consumer.fetch_watermarks(topic, p, TIMEOUT).unwrap();
            (p, high)
        })
        .collect()
}

/// The group's committed offsets of `topic` (-1: none), read with OffsetFetch v9 by librdkafka.
fn committed(broker: &Broker, group: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let consumer = observer(broker, Some(group));
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let found = consumer.committed_offsets(tpl, TIMEOUT).unwrap();
    found
        .elements_for_topic(topic)
        .iter()
        .map(|e| {
            let offset = match e.offset() {
                Offset::Offset(o) => o,
                _ => -1,
            };
            (e.partition(), offset)
        })
        .collect()
}

/// Every record of `topic` as (partition, offset, key, value), read by librdkafka.
fn read_all(broker: &Broker, topic: &str, expected: usize) -> Vec<(i32, i64, Vec<u8>, Vec<u8>)> {
    // librdkafka wants a group id even to assign partitions; nothing is committed.
    let consumer = observer(broker, Some(&format!("{topic}-reader")));
    let highs = high_watermarks(broker, topic);
    let mut tpl = TopicPartitionList::new();
    for &p in highs.keys() {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = vec![];
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.len() < expected && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.unwrap();
            out.push((
                m.partition(),
                m.offset(),
                m.key().unwrap_or_default().to_vec(),
                m.payload().unwrap_or_default().to_vec(),
            ));
        }
    }
    out
}

// ----------------------------------------------------------------------------------------------------------------
// The tests

/// sarama 1.22 with `Version = V2_1_0_0` (Debian's golang-github-shopify-sarama-dev): ClusterAdmin creates the
/// topic, a SyncProducer writes 60 keyed records with binary values and headers, a ConsumerGroup (JoinGroup v1,
/// OffsetCommit v1, OffsetFetch v1) reads them back byte-exact and commits, and ClusterAdmin reads the committed
/// offsets back. librdkafka then sees the same committed offsets: the high watermark of every partition.
#[test]
fn sarama_1_22_configured_for_kafka_2_1() {
    let client = go_client("sarama_client", &["github.com/Shopify/sarama"]);
    let broker = Broker::start(&BROKER);
    let t = topic("sarama");
    let group = format!("{t}-group");
    let out = run(
        Command::new(&client).args([&broker.addr, &t, &group, "60"]),
        CLIENT_TIMEOUT,
        GO_HINT,
    );
    assert!(out.ok(), "{}", out.report(&broker));
    println!("{}", out.stdout);
    let reported = partition_lines(&out.stdout, "committed");
    let highs = high_watermarks(&broker, &t);
    assert_eq!(highs.values().sum::<i64>(), 60, "records stored");
    assert_eq!(reported, highs, "sarama's committed offsets");
    assert_eq!(
        committed(&broker, &group, &t, 3),
        highs,
        "committed offsets as librdkafka reads them"
    );
}

/// kafka-go 0.2.1 (Debian's golang-github-segmentio-kafka-go-dev): creates the topic with CreateTopics v0,
/// writes 40 keyed records with Produce v2 (magic 1 message sets, which the broker stores as v2 batches) and
/// reads them back with a group Reader (JoinGroup v1, Fetch v2 with magic 1 message sets converted from the
/// stored batches), committing each. librdkafka then reads the same records and sees the committed offsets.
/// The broker's shutdown line counts the conversions.
#[test]
fn kafka_go_0_2_1() {
    let client = go_client("kafkago_client", &["github.com/segmentio/kafka-go"]);
    let mut broker = Broker::start(&BROKER);
    let t = topic("kafkago");
    let group = format!("{t}-group");
    let out = run(
        Command::new(&client).args([&broker.addr, &t, &group, "40"]),
        CLIENT_TIMEOUT,
        GO_HINT,
    );
    assert!(out.ok(), "{}", out.report(&broker));
    println!("{}", out.stdout);
    let highs = high_watermarks(&broker, &t);
    assert_eq!(highs.len(), 2, "partitions created");
    assert_eq!(highs.values().sum::<i64>(), 40, "records stored");
    // kafka-go committed offset+1 of each record it read: the last one of each partition is the high watermark.
    let consumed = partition_lines(&out.stdout, "consumed");
    let expected: BTreeMap<i32, i64> = consumed.iter().map(|(&p, &o)| (p, o + 1)).collect();
    let stored: BTreeMap<i32, i64> = highs.clone().into_iter().filter(|&(_, h)| h > 0).collect();
    assert_eq!(expected, stored, "last offsets kafka-go read");
    assert_eq!(
        committed(&broker, &group, &t, 2),
        highs,
        "committed offsets"
    );
    // What kafka-go wrote reads back through the current format: record i has key k{i%5} and a value starting
    // with "kafka-go-{i}-".
    let records = read_all(&broker, &t, 40);
    let mut seen = [false; 40];
    for (p, o, key, value) in &records {
        let text = String::from_utf8_lossy(value);
        let i: usize = text
            .strip_prefix("kafka-go-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{p}/{o}: unexpected value {value:?}"));
        assert_eq!(key, format!("k{}", i % 5).as_bytes(), "{p}/{o}: key");
        assert!(!seen[i], "record {i} stored twice");
        seen[i] = true;
    }
    assert!(
        seen.iter().all(|&s| s),
        "records read back: {}",
        records.len()
    );
    assert_eq!(broker.terminate(), Some(0));
    let log = broker.log();
    let totals = log
        .lines()
        .find(|l| l.contains("fetch path totals"))
        .unwrap_or_else(|| panic!("no totals line in the broker log:\n{log}"));
    for counter in [
        "produce_up_converted_batches",
        "fetch_down_converted_bytes",
        "copied_bytes",
    ] {
        let value: u64 = totals
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{counter}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {counter} in {totals}"));
        assert!(value > 0, "{counter} is 0: {totals}");
    }
}

/// Burrow 1.2.1 (Debian's consumer-lag monitor, built on sarama 1.22) with `kafka-version = "2.1.0"`: its
/// cluster module lists topics and reads each partition's end with ListOffsets v0; its consumer module reads
/// committed offsets from `__consumer_offsets` (Fetch v4). A group commits offsets leaving a known lag per
/// partition; Burrow's HTTP API must list the topic, report its end offsets, and report that lag exactly.
#[test]
fn burrow_1_2_1_reports_lag() {
    let burrow = Path::new("/usr/bin/Burrow");
    let zookeeper_jar = Path::new("/usr/share/java/zookeeper.jar");
    for needed in [burrow, zookeeper_jar] {
        assert!(
            needed.exists(),
            "{} is missing: {BURROW_HINT}",
            needed.display()
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut zookeeper = start_zookeeper(tmp.path(), zookeeper_jar);
    let broker = Broker::start(&BROKER);
    let t = topic("burrow");
    let group = format!("{t}-group");
    create_topic(&broker, &t, 3);
    let produced = produce(&broker, &t, &[7, 5, 3]);
    // Committed offsets leave a lag of 4, 0 and 2.
    let commits = BTreeMap::from([(0, 3), (1, 5), (2, 1)]);

    let http = format!("127.0.0.1:{}", free_port());
    let config = burrow_config(tmp.path(), &zookeeper.addr, &broker.addr, &http);
    std::fs::write(tmp.path().join("burrow.toml"), config).unwrap();
    let burrow_log = tmp.path().join("burrow.log");
    let mut burrow = Background::spawn(
        "Burrow",
        Command::new(burrow)
            .arg("--config-dir")
            .arg(tmp.path())
            .current_dir(tmp.path()),
        tmp.path().join("burrow.out"),
        BURROW_HINT,
    )
    .with_log(burrow_log.clone());
    let report = |what: &str, last: &str| {
        format!(
            "{what}; last answer: {last}\n--- Burrow log (last 60 lines)\n{}\n--- broker log (last 60 lines)\n{}",
            tail(&std::fs::read_to_string(&burrow_log).unwrap_or_default(), 60),
            tail(&broker.log(), 60)
        )
    };

    // Burrow lists the topic and knows where each partition ends (from ListOffsets v0).
    let ends: Vec<i64> = produced.values().copied().collect();
    let path = format!("/v3/kafka/local/topic/{t}");
    let last = poll(Duration::from_secs(60), || {
        zookeeper.process.assert_running();
        burrow.assert_running();
        let answer = http_get(&http, &path)?;
        let offsets: Vec<i64> = answer["offsets"]
            .as_array()
            .map(|list| list.iter().filter_map(|o| o.as_i64()).collect())
            .unwrap_or_default();
        if offsets == ends {
            Ok(answer)
        } else {
            Err(answer.to_string())
        }
    })
    .unwrap_or_else(|last| {
        panic!(
            "{}",
            report("Burrow never reported the topic's end offsets", &last)
        )
    });
    println!("topic detail: {last}");
    let topics = http_get(&http, "/v3/kafka/local/topic")
        .unwrap_or_else(|e| panic!("{}", report("no topic list", &e)));
    assert!(
        topics["topics"]
            .as_array()
            .is_some_and(|list| list.iter().any(|n| n.as_str() == Some(t.as_str()))),
        "{}",
        report("topic list without the topic", &topics.to_string())
    );

    // The group commits now that Burrow knows the partitions (it drops commits for partitions it has not seen).
    commit(&broker, &group, &t, &commits);
    let path = format!("/v3/kafka/local/consumer/{group}/lag");
    let want: BTreeMap<i64, u64> = produced
        .iter()
        .map(|(&p, &end)| (i64::from(p), (end - commits[&p]) as u64))
        .collect();
    let last = poll(Duration::from_secs(60), || {
        burrow.assert_running();
        let answer = http_get(&http, &path)?;
        let lags: BTreeMap<i64, u64> = answer["status"]["partitions"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter(|p| p["topic"].as_str() == Some(t.as_str()))
                    .filter_map(|p| Some((p["partition"].as_i64()?, p["current_lag"].as_u64()?)))
                    .collect()
            })
            .unwrap_or_default();
        if lags == want && answer["status"]["totallag"].as_u64() == Some(6) {
            Ok(answer)
        } else {
            Err(answer.to_string())
        }
    })
    .unwrap_or_else(|last| {
        panic!(
            "{}",
            report(&format!("Burrow never reported the lag {want:?}"), &last)
        )
    });
    println!("consumer lag: {last}");
}

/// Calls `attempt` every 250 ms until it succeeds or `limit` passes; the error is the last answer seen.
fn poll(
    limit: Duration,
    mut attempt: impl FnMut() -> Result<serde_json::Value, String>,
) -> Result<serde_json::Value, String> {
    let deadline = Instant::now() + limit;
    loop {
        match attempt() {
            Ok(answer) => return Ok(answer),
            Err(last) if Instant::now() > deadline => return Err(last),
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

/// GET `path` from an HTTP server on loopback: the JSON body.
fn http_get(addr: &str, path: &str) -> Result<serde_json::Value, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| format!("GET {path}: {e}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map_or(response.as_str(), |(_, body)| body);
    serde_json::from_str(body).map_err(|_| format!("GET {path}: {response}"))
}

struct ZooKeeper {
    process: Background,
    addr: String,
}

/// Debian's ZooKeeper on a free loopback port, with its data in `dir`; returns it once it accepts connections.
fn start_zookeeper(dir: &Path, jar: &Path) -> ZooKeeper {
    let data = dir.join("zookeeper");
    std::fs::create_dir_all(&data).unwrap();
    let port = free_port();
    let config = dir.join("zoo.cfg");
    std::fs::write(
        &config,
        format!(
            "dataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n\
             tickTime=2000\n",
            data.display()
        ),
    )
    .unwrap();
    let mut zookeeper = Background::spawn(
        "ZooKeeper",
        Command::new("java")
            .arg("-Dzookeeper.admin.enableServer=false")
            .arg("-cp")
            .arg(jar)
            .arg("org.apache.zookeeper.server.ZooKeeperServerMain")
            .arg(&config),
        dir.join("zookeeper.out"),
        BURROW_HINT,
    );
    // ZooKeeper listens before it serves: wait until its `srvr` command reports a mode.
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !four_letter_word(&addr, "srvr").contains("Mode:") {
        zookeeper.assert_running();
        assert!(
            Instant::now() < deadline,
            "ZooKeeper did not start serving within 60 s; its output:\n{}",
            zookeeper.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    ZooKeeper {
        process: zookeeper,
        addr,
    }
}

/// ZooKeeper's answer to a four-letter command ("" if there is none).
fn four_letter_word(addr: &str, word: &str) -> String {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut answer = String::new();
    if stream.write_all(word.as_bytes()).is_ok() {
        let _ = stream.read_to_string(&mut answer);
    }
    answer
}

/// Burrow 1.2.1's configuration: one cluster and its `__consumer_offsets` consumer, both talking sarama with
/// `kafka-version = "2.1.0"`, offsets refreshed every second, the HTTP API on `http`.
fn burrow_config(dir: &Path, zookeeper: &str, broker: &str, http: &str) -> String {
    format!(
        r#"[general]
pidfile="{dir}/burrow.pid"

[logging]
filename="{dir}/burrow.log"
level="info"

[zookeeper]
servers=["{zookeeper}"]
timeout=6
root-path="/burrow"

[client-profile.old]
client-id="burrow-ferrite-test"
kafka-version="2.1.0"

[cluster.local]
class-name="kafka"
servers=["{broker}"]
client-profile="old"
topic-refresh=2
offset-refresh=1

[consumer.local]
class-name="kafka"
cluster="local"
servers=["{broker}"]
client-profile="old"
offsets-topic="__consumer_offsets"
start-latest=false

[httpserver.default]
address="{http}"

[storage.default]
class-name="inmemory"
workers=2
intervals=10
expire-group=604800
min-distance=1

[evaluator.default]
class-name="caching"
expire-cache=1
"#,
        dir = dir.display()
    )
}

fn create_topic(broker: &Broker, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .create()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let new = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for r in runtime
        .block_on(admin.create_topics(&[new], &AdminOptions::new()))
        .unwrap()
    {
        r.unwrap_or_else(|e| panic!("create {name}: {e:?}\n{}", broker.log()));
    }
}

/// Produces `counts[p]` keyed records to each partition `p`; returns each partition's end offset.
fn produce(broker: &Broker, topic: &str, counts: &[i64]) -> BTreeMap<i32, i64> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("acks", "all")
        .create()
        .unwrap();
    for (p, &n) in counts.iter().enumerate() {
        for i in 0..n {
            let (key, value) = (format!("k{i}"), format!("p{p}-r{i}"));
            producer
                .send(
                    BaseRecord::to(topic)
                        .partition(p as i32)
                        .key(&key)
                        .payload(&value),
                )
                .unwrap_or_else(|(e, _)| panic!("produce: {e}"));
        }
    }
    producer.flush(TIMEOUT).unwrap();
    let highs = high_watermarks(broker, topic);
    let want: BTreeMap<i32, i64> = counts
        .iter()
        .enumerate()
        .map(|(p, &n)| (p as i32, n))
        .collect();
    assert_eq!(highs, want, "records stored per partition");
    highs
}

/// Commits `offsets` (partition -> offset) for `group`, as a client outside the group's membership.
fn commit(broker: &Broker, group: &str, topic: &str, offsets: &BTreeMap<i32, i64>) {
    let consumer = observer(broker, Some(group));
    let mut tpl = TopicPartitionList::new();
    for (&p, &o) in offsets {
        tpl.add_partition_offset(topic, p, Offset::Offset(o))
            .unwrap();
    }
    consumer.commit(&tpl, CommitMode::Sync).unwrap();
    assert_eq!(&committed(broker, group, topic, 3), offsets, "committed");
}

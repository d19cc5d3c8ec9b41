//! Consumer groups through clients other than the rdkafka crate, against the real `ferrite` binary: Debian's kcat
//! (librdkafka 2.0.2) as a balanced consumer (`-G`), and confluent-kafka (classic and KIP-848), kafka-python,
//! aiokafka and kafkajs driven by `tests/clients/group_clients.py` and `tests/clients/kafkajs_group.js`.
//! `./scripts/test` installs them all; a missing one fails its test with a message saying so.
//!
//! For each client, two consumers of one group share a 4-partition topic: together they read every record
//! exactly once, each only from its own partitions, and commit; the scripts check that, describe the group with
//! the client's admin API, and check that a later consumer of the group resumes at the committed offsets. Then
//! this file checks independently, with the rdkafka crate, that every partition is committed at its log end
//! offset and that the group is empty.
#![allow(clippy::unwrap_used)]

mod common;

use common::{topic, Broker};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::groups::GroupInfo;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(420);
/// A group reaching an expected shape.
const GROUP_TIMEOUT: Duration = Duration::from_secs(90);
/// One request.
const TIMEOUT: Duration = Duration::from_secs(20);
const SETUP_HINT: &str = "run ./scripts/test once (it installs kcat with apt, the Python clients \
     into .venv and kafkajs into tests/clients/node_modules), or just its set-up part";

/// Broker settings for quick classic groups (the clients ask for 6-10 s sessions).
const CLASSIC: [(&str, &str); 3] = [
    ("group.initial.rebalance.delay.ms", "200"),
    ("group.min.session.timeout.ms", "1000"),
    ("offsets.topic.num.partitions", "4"),
];

/// Broker settings for KIP-848 groups.
const KIP848: [(&str, &str); 4] = [
    ("group.consumer.heartbeat.interval.ms", "500"),
    ("group.consumer.min.heartbeat.interval.ms", "500"),
    ("group.consumer.min.session.timeout.ms", "1000"),
    ("offsets.topic.num.partitions", "4"),
];

/// Partitions of the scripts' topics, and the records they produce: 200, then 100 more, round robin.
const PARTITIONS: i32 = 4;
const RECORDS_END: i64 = 300 / PARTITIONS as i64;

type Parts = BTreeSet<i32>;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn clients_dir() -> PathBuf {
    repo_root().join("tests/clients")
}

fn venv_python() -> PathBuf {
    let python = repo_root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing, so the Python Kafka clients are not installed: {SETUP_HINT}",
        python.display()
    );
    python
}

fn log_tail(broker: &Broker, lines: usize) -> String {
    let log = broker.log();
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A client process whose output is collected as it runs; dropping it kills the process.
struct Spawned {
    what: String,
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
    started: Instant,
}

impl Spawned {
    fn start(cmd: &mut Command, missing_hint: &str) -> Spawned {
        let what = format!("{cmd:?}");
        let mut child = match cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                panic!("{what}: program not found: {missing_hint}")
            }
            Err(e) => panic!("{what}: {e}"),
        };
        let stdout = Arc::new(Mutex::new(vec![]));
        let sink = Arc::clone(&stdout);
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let mut err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Spawned {
            what,
            child,
            stdout,
            stderr,
            started: Instant::now(),
        }
    }

    fn lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Waits for the process to exit, killing it after `timeout`; returns its exit code (None if killed).
    fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                // Let the reader threads take the last output.
                std::thread::sleep(Duration::from_millis(100));
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                self.child.wait().unwrap();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM (through the `kill` command, keeping this crate free of unsafe code), then wait.
    fn terminate(&mut self, timeout: Duration) -> Option<i32> {
        if self.exited().is_none() {
            Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .status()
                .unwrap();
        }
        self.wait(timeout)
    }

    fn report(&self, broker: &Broker) -> String {
        format!(
            "{} ({:.1} s)\n--- stdout\n{}\n--- stderr\n{}\n--- broker log (last 150 lines)\n{}",
            self.what,
            self.started.elapsed().as_secs_f64(),
            self.lines().join("\n"),
            self.stderr.lock().unwrap(),
            log_tail(broker, 150)
        )
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a client script to its end and fails the test, with its output and the broker log, unless it exits 0.
fn run_script(cmd: &mut Command, broker: &Broker, missing_hint: &str) {
    let mut run = Spawned::start(cmd, missing_hint);
    let code = run.wait(SCRIPT_TIMEOUT);
    match code {
        Some(0) => println!("{}", run.lines().join("\n")),
        Some(code) => panic!("exit code {code}: {}", run.report(broker)),
        None => panic!("TIMED OUT after {SCRIPT_TIMEOUT:?}: {}", run.report(broker)),
    }
}

// ----------------------------------------------------------------------------------------------------------------
// Independent checks with the rdkafka crate.

fn observer(broker: &Broker, group: Option<&str>) -> BaseConsumer {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &broker.addr);
    if let Some(group) = group {
        config.set("group.id", group);
    }
    config.create().unwrap()
}

async fn create_topic(broker: &Broker, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .create()
        .unwrap();
    let new = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for r in admin
        .create_topics(&[new], &AdminOptions::new())
        .await
        .unwrap()
    {
        r.unwrap_or_else(|e| panic!("create {name}: {e:?}\n{}", broker.log()));
    }
}

/// Every partition of `topic` has high watermark `end` and is committed for `group` at `end` (OffsetFetch from
/// a consumer instance that does not join the group).
fn assert_committed_at_end(broker: &Broker, topic: &str, group: &str, end: i64) {
    let consumer = observer(broker, Some(group));
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_range(topic, 0, PARTITIONS - 1);
    let committed = consumer.committed_offsets(tpl, TIMEOUT).unwrap();
    let got: BTreeMap<i32, (Offset, i64)> = committed
        .elements_for_topic(topic)
        .iter()
        .map(|e| {
            let (_, high) = consumer
                .fetch_watermarks(topic, e.partition(), TIMEOUT)
                .unwrap();
            (e.partition(), (e.offset(), high))
        })
        .collect();
    let want: BTreeMap<i32, (Offset, i64)> = (0..PARTITIONS)
        .map(|p| (p, (Offset::Offset(end), end)))
        .collect();
    assert_eq!(
        got, want,
        "(committed offset, high watermark) per partition of {topic} for group {group}"
    );
}

/// Members as DescribeGroups shows them: client id -> (member id, partitions of the test's topic).
type Members = BTreeMap<String, (String, Parts)>;

/// The group as ListGroups + DescribeGroups show it, once `accept` takes it; `wait_on` is checked meanwhile
/// (a client that exited fails the test at once).
fn wait_for_group(
    broker: &Broker,
    group: &str,
    topic: &str,
    what: &str,
    mut wait_on: impl FnMut() -> Result<(), String>,
    accept: impl Fn(&GroupInfo) -> Result<(), String>,
) -> Members {
    let observer = observer(broker, None);
    let deadline = Instant::now() + GROUP_TIMEOUT;
    loop {
        if let Err(e) = wait_on() {
            panic!("{what}: {e}");
        }
        let last = match observer.fetch_group_list(Some(group), TIMEOUT) {
            Ok(list) => match list.groups().iter().find(|g| g.name() == group) {
                Some(info) => match accept(info) {
                    Ok(()) => return members(info, topic),
                    Err(e) => e,
                },
                None => "not listed".to_string(),
            },
            Err(e) => format!("error {e}"),
        };
        assert!(
            Instant::now() < deadline,
            "{what}: group {group} not as expected within {GROUP_TIMEOUT:?}; last seen: {last}\n\
             broker log:\n{}",
            log_tail(broker, 100)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The members of a described group; one without an assignment yet (mid-rebalance) owns nothing.
fn members(info: &GroupInfo, topic: &str) -> Members {
    info.members()
        .iter()
        .map(|m| {
            let bytes = m.assignment().unwrap_or(&[]);
            let parts = if bytes.is_empty() {
                Parts::new()
            } else {
                parse_assignment(bytes, topic)
                    .unwrap_or_else(|| panic!("member {} has an unreadable assignment", m.id()))
            };
            (m.client_id().to_string(), (m.id().to_string(), parts))
        })
        .collect()
}

fn assert_group_empty(broker: &Broker, group: &str) {
    wait_for_group(
        broker,
        group,
        "",
        "after every member left",
        || Ok(()),
        |g| {
            if g.state() == "Empty" && g.members().is_empty() {
                Ok(())
            } else {
                Err(format!("{} with {} members", g.state(), g.members().len()))
            }
        },
    );
}

/// The partitions of `topic` in a ConsumerProtocolAssignment (v0-v3: version, [topic, [partition]], user data).
fn parse_assignment(bytes: &[u8], topic: &str) -> Option<Parts> {
    let mut at = 2usize; // version
    let mut take = |n: usize| -> Option<&[u8]> {
        let s = bytes.get(at..at + n)?;
        at += n;
        Some(s)
    };
    let topics = i32::from_be_bytes(take(4)?.try_into().ok()?);
    let mut parts = Parts::new();
    for _ in 0..topics {
        let len = i16::from_be_bytes(take(2)?.try_into().ok()?);
        let name = take(usize::try_from(len).ok()?)?.to_vec();
        let n = i32::from_be_bytes(take(4)?.try_into().ok()?);
        for _ in 0..n {
            let p = i32::from_be_bytes(take(4)?.try_into().ok()?);
            if name == topic.as_bytes() {
                parts.insert(p);
            }
        }
    }
    Some(parts)
}

// ----------------------------------------------------------------------------------------------------------------
// Python clients and kafkajs

fn python_share(client: &str, settings: &[(&str, &str)], classic: bool) {
    let python = venv_python();
    let broker = Broker::start(settings);
    let t = topic(&format!("share-{client}"));
    let group = format!("{t}-group");
    run_script(
        Command::new(&python)
            .arg(clients_dir().join("group_clients.py"))
            .args(["share", client, &broker.addr, &t, &group]),
        &broker,
        SETUP_HINT,
    );
    assert_committed_at_end(&broker, &t, &group, RECORDS_END);
    if classic {
        assert_group_empty(&broker, &group);
    }
}

/// confluent-kafka (librdkafka 2.x, classic protocol, range assignor); the group seen with its AdminClient
/// (describe_consumer_groups, list_consumer_groups, list_consumer_group_offsets).
#[test]
fn confluent_kafka_group() {
    python_share("confluent_kafka", &CLASSIC, true);
}

/// confluent-kafka with `group.protocol=consumer` (KIP-848: ConsumerGroupHeartbeat, assignments from the
/// broker); the group seen through ConsumerGroupDescribe (describe_consumer_groups: type CONSUMER).
#[test]
fn confluent_kafka_kip848_group() {
    python_share("confluent_kafka_kip848", &KIP848, false);
}

/// kafka-python 3.x; its KafkaAdminClient describes and lists the group and its offsets, and on a second group
/// commits offsets (alter_group_offsets), deletes one (OffsetDelete) and deletes the group (DeleteGroups).
#[test]
fn kafka_python_group() {
    python_share("kafka_python", &CLASSIC, true);
}

/// aiokafka; its AIOKafkaAdminClient describes and lists the group and its offsets.
#[test]
fn aiokafka_group() {
    python_share("aiokafka", &CLASSIC, true);
}

/// kafkajs (its consumer only works through groups), with commitOffsets per message; admin.describeGroups,
/// listGroups, fetchOffsets.
#[test]
fn kafkajs_group() {
    let dir = clients_dir();
    assert!(
        dir.join("node_modules/kafkajs").is_dir(),
        "{} is missing: {SETUP_HINT}",
        dir.join("node_modules/kafkajs").display()
    );
    let broker = Broker::start(&CLASSIC);
    let t = topic("share-kafkajs");
    let group = format!("{t}-group");
    run_script(
        Command::new("node")
            .current_dir(&dir)
            .arg(dir.join("kafkajs_group.js"))
            .args([&broker.addr, &t, &group]),
        &broker,
        &format!("node is not installed: {SETUP_HINT}"),
    );
    assert_committed_at_end(&broker, &t, &group, RECORDS_END);
    assert_group_empty(&broker, &group);
}

/// confluent-kafka's AdminClient on a classic group: listing, describing (state, type, assignor, members,
/// coordinator), committed offsets with metadata and the lag against the watermarks, DeleteGroups refused while
/// members are up, then alter_consumer_group_offsets and delete_consumer_groups once the group is empty.
#[test]
fn confluent_kafka_admin_lag_describe_delete() {
    let python = venv_python();
    let broker = Broker::start(&CLASSIC);
    let t = topic("admin");
    let group = format!("{t}-group");
    run_script(
        Command::new(&python)
            .arg(clients_dir().join("group_clients.py"))
            .args(["admin", &broker.addr, &t, &group]),
        &broker,
        SETUP_HINT,
    );
    let list = observer(&broker, None)
        .fetch_group_list(None, TIMEOUT)
        .unwrap();
    assert!(
        list.groups().iter().all(|g| g.name() != group),
        "the script deleted {group}, yet it is listed"
    );
}

// ----------------------------------------------------------------------------------------------------------------
// kcat

fn kcat_consumer(broker: &Broker, group: &str, topic: &str, name: &str) -> Spawned {
    Spawned::start(
        Command::new("kcat").args([
            "-b",
            &broker.addr,
            "-G",
            group,
            topic,
            // Unbuffered: stdout is a pipe, and the test reads it while kcat runs.
            "-u",
            "-f",
            "%p %o %s\\n",
            "-X",
            &format!("client.id={name}"),
            "-X",
            "auto.offset.reset=earliest",
            "-X",
            "auto.commit.interval.ms=200",
            "-X",
            "session.timeout.ms=6000",
            "-X",
            "heartbeat.interval.ms=500",
        ]),
        &format!("kcat is not installed: {SETUP_HINT}"),
    )
}

/// (partition, offset, record index) of each `%p %o rec-<i>` line.
fn kcat_records(lines: &[String]) -> Vec<(i32, i64, i64)> {
    lines
        .iter()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let p = f.next()?.parse().ok()?;
            let o = f.next()?.parse().ok()?;
            let i = f.next()?.strip_prefix("rec-")?.parse().ok()?;
            Some((p, o, i))
        })
        .collect()
}

/// The group's members once it is Stable with two members whose assignments are disjoint and cover the topic.
fn kcat_split(broker: &Broker, group: &str, topic: &str, kcats: &mut [Spawned]) -> Members {
    wait_for_group(
        broker,
        group,
        topic,
        "two kcat consumers sharing the topic",
        || match kcats.iter_mut().find_map(|k| k.exited()) {
            Some(status) => Err(format!(
                "a kcat exited ({status}):\n{}\n{}",
                kcats[0].report(broker),
                kcats[1].report(broker)
            )),
            None => Ok(()),
        },
        |g| {
            let sets: Vec<Parts> = members(g, topic).into_values().map(|m| m.1).collect();
            let union: Parts = sets.iter().flatten().copied().collect();
            let total: usize = sets.iter().map(|s| s.len()).sum();
            if g.state() == "Stable"
                && sets.len() == 2
                && sets.iter().all(|s| !s.is_empty())
                && total == union.len()
                && union == (0..PARTITIONS).collect::<Parts>()
            {
                Ok(())
            } else {
                Err(format!("{} with assignments {sets:?}", g.state()))
            }
        },
    )
}

/// Produces `rec-<i>` for i in 0..n, record i to partition i % 4 (so at offset i / 4).
async fn produce_round_robin(broker: &Broker, topic: &str, n: i64) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("acks", "all")
        .create()
        .unwrap();
    for i in 0..n {
        let value = format!("rec-{i}");
        let record = FutureRecord::<str, _>::to(topic)
            .partition((i % PARTITIONS as i64) as i32)
            .payload(&value);
        let delivery = producer
            .send(record, TIMEOUT)
            .await
            .map_err(|(e, _)| e)
            .unwrap();
        assert_eq!(
            delivery.offset,
            i / PARTITIONS as i64,
            "offset of record {i}"
        );
    }
}

/// Waits until the kcats have printed `n` records between them.
fn wait_for_kcat_records(broker: &Broker, kcats: &[Spawned], n: usize) {
    let deadline = Instant::now() + GROUP_TIMEOUT;
    loop {
        let read: usize = kcats.iter().map(|k| kcat_records(&k.lines()).len()).sum();
        if read >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "kcat read {read} of {n} records\n{}\n{}",
            kcats[0].report(broker),
            kcats[1].report(broker)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until every partition is committed at `end` (kcat auto-commits every 200 ms).
fn wait_for_commits(broker: &Broker, group: &str, topic: &str, end: i64) {
    let consumer = observer(broker, Some(group));
    let deadline = Instant::now() + GROUP_TIMEOUT;
    loop {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_range(topic, 0, PARTITIONS - 1);
        let committed: Vec<Offset> = consumer
            .committed_offsets(tpl, TIMEOUT)
            .map(|c| c.elements().iter().map(|e| e.offset()).collect())
            .unwrap_or_default();
        if committed == vec![Offset::Offset(end); PARTITIONS as usize] {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "kcat's auto-commits: committed {committed:?}, want {end} everywhere\n{}",
            log_tail(broker, 100)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Two Debian kcat processes (librdkafka 2.0.2) in balanced-consumer mode (-G) with auto-commit: the group
/// settles with both members owning disjoint partitions that cover the topic (DescribeGroups); 200 records
/// produced then are read exactly once between them, each from its own partitions; the committed offsets reach
/// the log end offsets without a rebalance; after SIGTERM both leave and the group is empty.
#[tokio::test(flavor = "multi_thread")]
async fn kcat_balanced_consumers_share_a_group() {
    let broker = Broker::start(&CLASSIC);
    let t = topic("kcat-group");
    create_topic(&broker, &t, PARTITIONS).await;
    let group = format!("{t}-group");
    let names = ["kcat-a", "kcat-b"];
    let mut kcats = names.map(|name| kcat_consumer(&broker, &group, &t, name));
    let split = kcat_split(&broker, &group, &t, &mut kcats);
    println!("kcat assignments: {split:?}");

    const RECORDS: i64 = 200;
    produce_round_robin(&broker, &t, RECORDS).await;
    wait_for_kcat_records(&broker, &kcats, RECORDS as usize);
    wait_for_commits(&broker, &group, &t, RECORDS / PARTITIONS as i64);
    let again = kcat_split(&broker, &group, &t, &mut kcats);
    assert_eq!(again, split, "the group rebalanced while nothing changed");

    for k in kcats.iter_mut() {
        let code = k.terminate(Duration::from_secs(30));
        println!("kcat exit code after SIGTERM: {code:?}");
    }
    let mut everyone = vec![];
    for (k, name) in kcats.iter().zip(names) {
        let records = kcat_records(&k.lines());
        let own = &split[name].1;
        assert!(
            !records.is_empty(),
            "{name} read nothing\n{}",
            k.report(&broker)
        );
        let outside: Parts = records
            .iter()
            .map(|r| r.0)
            .filter(|p| !own.contains(p))
            .collect();
        assert!(
            outside.is_empty(),
            "{name} read partitions {outside:?}, it owns {own:?}"
        );
        everyone.extend(records);
    }
    everyone.sort_unstable_by_key(|r| r.2);
    let want: Vec<(i32, i64, i64)> = (0..RECORDS)
        .map(|i| ((i % PARTITIONS as i64) as i32, i / PARTITIONS as i64, i))
        .collect();
    assert_eq!(
        everyone, want,
        "the records the two kcats read, by index: each exactly once, where it was written"
    );
    assert_group_empty(&broker, &group);
}

//! A consumer that dies without leaving must not block its group: a librdkafka member in a child process owns
//! every partition, is killed with SIGKILL (no LeaveGroup, no clean close), and a new consumer subscribes to the
//! same group right away. Against Kafka the newcomer gets the partitions once the dead member's session times
//! out (6 s here); it must not wait for the dead member's rebalance timeout (`max.poll.interval.ms`, set to
//! 120 s here so that waiting for it fails the test's 60 s bound). Checked for a classic member, a static
//! classic member (removed at session timeout too), a KIP-848 member, a static KIP-848 member, and a KIP-848
//! member whose group has its own session timeout (a group config).
#![allow(clippy::unwrap_used)]

mod common;

use common::{topic, Broker};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 4;
/// The dead member's session; the newcomer's assignment is expected soon after it.
const SESSION_TIMEOUT_MS: &str = "6000";
/// The dead member's rebalance timeout: far beyond the bound below, so that a join phase waiting for the dead
/// member until its rebalance deadline fails the test.
const MAX_POLL_INTERVAL_MS: &str = "120000";
/// How long the newcomer may take to own every partition: the session timeout plus generous slack, and half
/// the rebalance timeout.
const NEWCOMER_BOUND: Duration = Duration::from_secs(60);

type Parts = BTreeSet<i32>;

fn member_config(addr: &str, group: &str, extra: &[(String, String)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", addr)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    for (k, v) in extra {
        config.set(k, v);
    }
    config
}

fn member(addr: &str, group: &str, topic: &str, extra: &[(String, String)]) -> BaseConsumer {
    let consumer: BaseConsumer = member_config(addr, group, extra).create().unwrap();
    consumer.subscribe(&[topic]).unwrap();
    consumer
}

fn owned(consumer: &BaseConsumer, topic: &str) -> Parts {
    consumer
        .assignment()
        .map(|tpl| {
            tpl.elements_for_topic(topic)
                .iter()
                .map(|e| e.partition())
                .collect()
        })
        .unwrap_or_default()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

// ----------------------------------------------------------------------------------------------------------------
// The member that dies: a child process running this test binary, killed with SIGKILL.

const CHILD_ENV: &str = "FERRITE_DEAD_MEMBER_CHILD";

/// Not a test on its own: the body of the child process. It joins the group described in
/// `FERRITE_DEAD_MEMBER_CHILD` (address, group, topic, then `key=value` client settings, tab-separated) and
/// prints `assignment p,p,...` whenever its assignment changes, until killed (or for at most 5 minutes).
#[test]
fn child_process_member() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let fields: Vec<&str> = spec.split('\t').collect();
    let [addr, group, topic, settings @ ..] = fields.as_slice() else {
        panic!("{CHILD_ENV}={spec:?}: expected address, group, topic and settings");
    };
    let extra: Vec<(String, String)> = settings
        .iter()
        .filter_map(|s| s.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let consumer = member(addr, group, topic, &extra);
    let mut last: Option<Parts> = None;
    let deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < deadline {
        let _ = consumer.poll(Duration::from_millis(100));
        let now = owned(&consumer, topic);
        if last.as_ref() != Some(&now) {
            let list: Vec<String> = now.iter().map(|p| p.to_string()).collect();
            println!("assignment {}", list.join(","));
            last = Some(now);
        }
    }
}

struct ChildMember {
    child: Child,
    latest: Arc<Mutex<Option<Parts>>>,
}

impl ChildMember {
    fn spawn(addr: &str, group: &str, topic: &str, extra: &[(String, String)]) -> ChildMember {
        let mut spec = format!("{addr}\t{group}\t{topic}");
        for (k, v) in extra {
            spec.push_str(&format!("\t{k}={v}"));
        }
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "child_process_member",
                "--exact",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_ENV, spec)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let latest = Arc::new(Mutex::new(None));
        let sink = Arc::clone(&latest);
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The first line follows libtest's "test child_process_member ... " on the same line.
                if let Some((_, list)) = line.split_once("assignment ") {
                    let parts: Parts = list.split(',').filter_map(|p| p.parse().ok()).collect();
                    *sink.lock().unwrap() = Some(parts);
                }
            }
        });
        ChildMember { child, latest }
    }

    /// Waits until the child reports owning `expected`.
    fn wait_for(&mut self, expected: &Parts, broker: &Broker) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the child member exited: {status}\n{}", broker.log());
            }
            if self.latest.lock().unwrap().as_ref() == Some(expected) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the child member never owned {expected:?} (last: {:?})\n{}",
                self.latest.lock().unwrap(),
                broker.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn kill9(&mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }
}

impl Drop for ChildMember {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ----------------------------------------------------------------------------------------------------------------

async fn create_topic(broker: &Broker, name: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .create()
        .unwrap();
    let new = NewTopic::new(name, PARTITIONS, TopicReplication::Fixed(1));
    for r in admin
        .create_topics(&[new], &AdminOptions::new())
        .await
        .unwrap()
    {
        r.unwrap_or_else(|e| panic!("create {name}: {e:?}\n{}", broker.log()));
    }
}

/// The scenario: `dead` (settings of the member that dies) owns everything, is killed, and a newcomer with
/// `newcomer` settings must own every partition within [`NEWCOMER_BOUND`].
async fn newcomer_takes_over_from_a_dead_member(
    broker_settings: &[(&str, &str)],
    dead: Vec<(String, String)>,
    newcomer: Vec<(String, String)>,
) {
    newcomer_takes_over_with(broker_settings, |_, _| {}, dead, newcomer).await;
}

/// [`newcomer_takes_over_from_a_dead_member`] with `configure` run on the group before anyone joins.
async fn newcomer_takes_over_with(
    broker_settings: &[(&str, &str)],
    configure: impl FnOnce(&Broker, &str),
    dead: Vec<(String, String)>,
    newcomer: Vec<(String, String)>,
) {
    let broker = Broker::start(broker_settings);
    let t = topic("dead-member");
    create_topic(&broker, &t).await;
    let group = format!("{t}-group");
    configure(&broker, &group);
    let all: Parts = (0..PARTITIONS).collect();

    let mut child = ChildMember::spawn(&broker.addr, &group, &t, &dead);
    child.wait_for(&all, &broker);
    child.kill9();
    let killed = Instant::now();

    let consumer = member(&broker.addr, &group, &t, &newcomer);
    loop {
        let _ = consumer.poll(Duration::from_millis(100));
        if owned(&consumer, &t) == all {
            break;
        }
        assert!(
            killed.elapsed() < NEWCOMER_BOUND,
            "the newcomer owns {:?}, not every partition, {:?} after the old member died\n{}",
            owned(&consumer, &t),
            killed.elapsed(),
            broker.log()
        );
    }
    println!(
        "the newcomer owned every partition {:.1} s after the old member was killed",
        killed.elapsed().as_secs_f64()
    );
}

fn classic_settings(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut settings = pairs(&[
        ("session.timeout.ms", SESSION_TIMEOUT_MS),
        ("heartbeat.interval.ms", "500"),
        ("max.poll.interval.ms", MAX_POLL_INTERVAL_MS),
    ]);
    settings.extend(pairs(extra));
    settings
}

const CLASSIC_BROKER: [(&str, &str); 2] = [
    ("group.initial.rebalance.delay.ms", "0"),
    ("offsets.topic.num.partitions", "2"),
];

#[tokio::test(flavor = "multi_thread")]
async fn a_classic_member_that_died_without_leaving_is_removed_at_its_session_timeout() {
    newcomer_takes_over_from_a_dead_member(
        &CLASSIC_BROKER,
        classic_settings(&[("client.id", "dies")]),
        classic_settings(&[("client.id", "newcomer")]),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_static_member_that_died_without_leaving_is_removed_at_its_session_timeout() {
    newcomer_takes_over_from_a_dead_member(
        &CLASSIC_BROKER,
        classic_settings(&[("client.id", "dies"), ("group.instance.id", "dies-1")]),
        classic_settings(&[("client.id", "newcomer"), ("group.instance.id", "new-1")]),
    )
    .await;
}

const KIP848_BROKER: [(&str, &str); 5] = [
    ("group.consumer.session.timeout.ms", SESSION_TIMEOUT_MS),
    ("group.consumer.min.session.timeout.ms", SESSION_TIMEOUT_MS),
    ("group.consumer.heartbeat.interval.ms", "500"),
    ("group.consumer.min.heartbeat.interval.ms", "500"),
    ("offsets.topic.num.partitions", "2"),
];

fn kip848_settings(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut settings = pairs(&[
        ("group.protocol", "consumer"),
        ("max.poll.interval.ms", MAX_POLL_INTERVAL_MS),
    ]);
    settings.extend(pairs(extra));
    settings
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kip848_member_that_died_without_leaving_is_removed_at_its_session_timeout() {
    newcomer_takes_over_from_a_dead_member(
        &KIP848_BROKER,
        kip848_settings(&[("client.id", "dies")]),
        kip848_settings(&[("client.id", "newcomer")]),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kip848_static_member_that_died_without_leaving_is_removed_at_its_session_timeout() {
    newcomer_takes_over_from_a_dead_member(
        &KIP848_BROKER,
        kip848_settings(&[("client.id", "dies"), ("group.instance.id", "dies-1")]),
        kip848_settings(&[("client.id", "newcomer"), ("group.instance.id", "new-1")]),
    )
    .await;
}

/// The same with the session timeout set for this group only (KIP-848 group config
/// `consumer.session.timeout.ms`), while the broker's default session (120 s) is far beyond the bound: the dead
/// member is removed at the group's session timeout.
#[tokio::test(flavor = "multi_thread")]
async fn a_kip848_member_is_removed_at_its_groups_own_session_timeout() {
    use common::raw::{incremental_alter_configs, Raw, OP_SET, RESOURCE_GROUP};
    let configure = |broker: &Broker, group: &str| {
        let ops = [(
            "consumer.session.timeout.ms",
            OP_SET,
            Some(SESSION_TIMEOUT_MS),
        )];
        let mut raw = Raw::connect(broker);
        let (code, message) = incremental_alter_configs(&mut raw, RESOURCE_GROUP, group, &ops);
        assert_eq!(code, 0, "{message}");
    };
    newcomer_takes_over_with(
        &[
            ("group.consumer.session.timeout.ms", "120000"),
            ("group.consumer.max.session.timeout.ms", "120000"),
            ("group.consumer.min.session.timeout.ms", SESSION_TIMEOUT_MS),
            ("group.consumer.heartbeat.interval.ms", "500"),
            ("group.consumer.min.heartbeat.interval.ms", "500"),
            ("offsets.topic.num.partitions", "2"),
        ],
        configure,
        kip848_settings(&[("client.id", "dies")]),
        kip848_settings(&[("client.id", "newcomer")]),
    )
    .await;
}

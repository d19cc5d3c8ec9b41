//! Consumer groups through the rdkafka crate (librdkafka 2.12) against the real `ferrite` binary: the classic
//! protocol with eager (range) and cooperative-sticky assignors, the KIP-848 consumer protocol (including its
//! group state across a kill -9 of the broker), committed offsets across a kill -9 of the broker, lag from
//! committed offsets and watermarks, and ListGroups/DescribeGroups/DeleteGroups.
//!
//! Every consumer's assignment is read right after that consumer's own poll (rebalance callbacks run only inside
//! poll), so two in-process consumers seen owning one partition at once really did own it at once: the group
//! handed it out twice. That is checked on every round, not only at the end.
#![allow(clippy::unwrap_used)]

mod common;

use common::{topic, Broker};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, DefaultConsumerContext, Rebalance,
    RebalanceProtocol,
};
use rdkafka::groups::GroupInfo;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request (produce, commit, committed, metadata).
const TIMEOUT: Duration = Duration::from_secs(20);
/// A group reaching an expected shape: joins, rebalances, a session timeout, a coordinator loading its state.
const GROUP_TIMEOUT: Duration = Duration::from_secs(90);

/// Broker settings for quick classic groups: a short first-generation delay, session timeouts from 1 s, and a
/// small `__consumer_offsets`.
const CLASSIC: [(&str, &str); 3] = [
    ("group.initial.rebalance.delay.ms", "200"),
    ("group.min.session.timeout.ms", "1000"),
    ("offsets.topic.num.partitions", "4"),
];

/// Broker settings for KIP-848 groups: members heartbeat every 500 ms, so assignments move quickly.
const KIP848: [(&str, &str); 4] = [
    ("group.consumer.heartbeat.interval.ms", "500"),
    ("group.consumer.min.heartbeat.interval.ms", "500"),
    ("group.consumer.min.session.timeout.ms", "1000"),
    ("offsets.topic.num.partitions", "4"),
];

type Parts = BTreeSet<i32>;

fn all(partitions: i32) -> Parts {
    (0..partitions).collect()
}

fn admin(broker: &Broker) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .create()
        .unwrap()
}

async fn create_topic(broker: &Broker, name: &str, partitions: i32) {
    let new = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for r in admin(broker)
        .create_topics(&[new], &AdminOptions::new())
        .await
        .unwrap()
    {
        r.unwrap_or_else(|e| panic!("create {name}: {e:?}\n{}", broker.log()));
    }
}

/// The value of record `i` of `partition`, so that any record read back says where it was written.
fn value(partition: i32, i: i64) -> String {
    format!("p{partition}-r{i}")
}

/// Produces records `value(partition, 0..n)` and checks they got offsets 0..n.
async fn produce(broker: &Broker, topic: &str, partition: i32, n: i64) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("message.timeout.ms", "20000")
        .set("acks", "all")
        .create()
        .unwrap();
    for i in 0..n {
        let v = value(partition, i);
        let record = FutureRecord::<str, _>::to(topic)
            .partition(partition)
            .payload(&v);
        let delivery = producer
            .send(record, TIMEOUT)
            .await
            .map_err(|(e, _)| e)
            .unwrap_or_else(|e| panic!("produce to {topic}/{partition}: {e}"));
        assert_eq!(
            delivery.offset, i,
            "offset of record {i} of partition {partition}"
        );
    }
}

/// A classic-protocol member's settings: manual commits, from the earliest offset when nothing is committed,
/// a 6 s session (the broker's default minimum, so the test also works without the lowered minimum).
fn classic_config(addr: &str, group: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", addr)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    config
}

/// A KIP-848 member's settings: no session timeout, heartbeat interval or assignor (the broker decides those;
/// librdkafka refuses them with `group.protocol=consumer`).
fn kip848_config(addr: &str, group: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", addr)
        .set("group.id", group)
        .set("group.protocol", "consumer")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    config
}

fn subscribed<C: ConsumerContext + 'static>(
    config: &ClientConfig,
    topic: &str,
    context: C,
) -> BaseConsumer<C> {
    let consumer: BaseConsumer<C> = config.create_with_context(context).unwrap();
    consumer.subscribe(&[topic]).unwrap();
    consumer
}

fn classic_member(addr: &str, group: &str, topic: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    subscribed(
        &classic_config(addr, group, extra),
        topic,
        DefaultConsumerContext,
    )
}

/// A consumer outside any group: for metadata, watermarks and group listings.
fn observer(broker: &Broker) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .create()
        .unwrap()
}

fn partitions_of<C: ConsumerContext>(consumer: &BaseConsumer<C>, topic: &str) -> Parts {
    tpl_partitions(&consumer.assignment().unwrap(), topic)
}

fn tpl_partitions(tpl: &TopicPartitionList, topic: &str) -> Parts {
    tpl.elements_for_topic(topic)
        .iter()
        .map(|e| e.partition())
        .collect()
}

fn log_tail(broker: &Broker) -> String {
    let log = broker.log();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(80)..].join("\n")
}

/// Ok when `sets` are non-empty, pairwise disjoint and together exactly `0..partitions`.
fn disjoint_cover(sets: &[Parts], partitions: i32) -> Result<(), String> {
    let mut seen = Parts::new();
    for (i, s) in sets.iter().enumerate() {
        if s.is_empty() {
            return Err(format!("member {i} owns nothing: {sets:?}"));
        }
        if let Some(p) = s.iter().find(|p| !seen.insert(**p)) {
            return Err(format!("partition {p} is owned twice: {sets:?}"));
        }
    }
    if seen != all(partitions) {
        return Err(format!("{sets:?} do not cover 0..{partitions}"));
    }
    Ok(())
}

/// Ok when no member owns more than one partition more than another.
fn balanced(sets: &[Parts]) -> Result<(), String> {
    let sizes: Vec<usize> = sets.iter().map(|s| s.len()).collect();
    let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
    if max - min > 1 {
        return Err(format!("unbalanced assignment {sets:?}"));
    }
    Ok(())
}

/// Polls every consumer in turn until `done` accepts their assignments (in the order of `consumers`). Panics if
/// two of them own a partition at the same time, or when `GROUP_TIMEOUT` passes, with `done`'s last complaint,
/// the last poll errors and the broker log.
fn poll_until<C: ConsumerContext>(
    broker: &Broker,
    what: &str,
    consumers: &[&BaseConsumer<C>],
    topic: &str,
    mut done: impl FnMut(&[Parts]) -> Result<(), String>,
) -> Vec<Parts> {
    let deadline = Instant::now() + GROUP_TIMEOUT;
    let mut errors: Vec<String> = vec![];
    loop {
        let mut sets = vec![];
        for consumer in consumers {
            // Messages are not the point here; errors are kept for the failure message.
            if let Some(Err(e)) = consumer.poll(Duration::from_millis(100)) {
                errors.push(e.to_string());
            }
            sets.push(partitions_of(consumer, topic));
        }
        for (i, a) in sets.iter().enumerate() {
            for (j, b) in sets.iter().enumerate().skip(i + 1) {
                let both: Parts = a.intersection(b).copied().collect();
                assert!(
                    both.is_empty(),
                    "{what}: partitions {both:?} owned by consumers {i} and {j} at once: {sets:?}\n\
                     broker log:\n{}",
                    log_tail(broker)
                );
            }
        }
        let complaint = match done(&sets) {
            Ok(()) => return sets,
            Err(complaint) => complaint,
        };
        if Instant::now() > deadline {
            let recent = &errors[errors.len().saturating_sub(10)..];
            panic!(
                "{what}: not reached within {GROUP_TIMEOUT:?}: {complaint}\nlast poll errors: {recent:?}\n\
                 broker log:\n{}",
                log_tail(broker)
            );
        }
    }
}

/// The group as ListGroups + DescribeGroups show it (librdkafka's rd_kafka_list_groups), once `accept` takes
/// it; `consumers` are polled meanwhile so the group can settle.
fn wait_for_group<C: ConsumerContext>(
    broker: &Broker,
    observer: &BaseConsumer,
    group: &str,
    consumers: &[&BaseConsumer<C>],
    accept: impl Fn(&GroupInfo) -> bool,
) -> String {
    let deadline = Instant::now() + GROUP_TIMEOUT;
    loop {
        for consumer in consumers {
            let _ = consumer.poll(Duration::from_millis(100));
        }
        let last = match observer.fetch_group_list(Some(group), TIMEOUT) {
            Ok(list) => match list.groups().iter().find(|g| g.name() == group) {
                Some(info) if accept(info) => return describe_group(info),
                Some(info) => describe_group(info),
                None => "not listed".to_string(),
            },
            Err(e) => format!("error {e}"),
        };
        assert!(
            Instant::now() < deadline,
            "group {group} not as expected within {GROUP_TIMEOUT:?}; last seen: {last}\nbroker log:\n{}",
            log_tail(broker)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn describe_group(info: &GroupInfo) -> String {
    let members: Vec<String> = info
        .members()
        .iter()
        .map(|m| format!("{}({})", m.client_id(), m.id()))
        .collect();
    format!(
        "state {:?}, protocol type {:?}, protocol {:?}, members {members:?}",
        info.state(),
        info.protocol_type(),
        info.protocol()
    )
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
// A group member in a child process, so that it can be killed with SIGKILL (no LeaveGroup, no clean close).

const CHILD_ENV: &str = "FERRITE_GROUP_CHILD";

/// Not a test on its own: the body of the child process of `three_members_then_a_clean_leave_then_a_kill9`.
/// It joins the group named in `FERRITE_GROUP_CHILD` and prints `assignment p,p,...` whenever its assignment
/// changes, until killed (or for at most 5 minutes). Ignored, so no run reports it as passing; the parent runs
/// it with `--ignored`.
#[test]
#[ignore = "the body of a group test's child process, run by that test"]
fn child_process_group_member() {
    let spec = std::env::var(CHILD_ENV).unwrap_or_else(|_| {
        panic!("child_process_group_member runs as the child of a group test, with {CHILD_ENV} set")
    });
    let fields: Vec<&str> = spec.split('\t').collect();
    let &[addr, group, topic] = fields.as_slice() else {
        panic!("{CHILD_ENV}={spec:?}: expected address, group and topic separated by tabs");
    };
    let consumer = classic_member(addr, group, topic, &[("client.id", "ferrite-child")]);
    let mut last: Option<Parts> = None;
    let deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < deadline {
        let _ = consumer.poll(Duration::from_millis(100));
        let now = partitions_of(&consumer, topic);
        if last.as_ref() != Some(&now) {
            let list: Vec<String> = now.iter().map(|p| p.to_string()).collect();
            println!("assignment {}", list.join(","));
            last = Some(now);
        }
    }
}

/// The parent's handle on the child member: its latest reported assignment. Dropping it kills the child.
struct ChildMember {
    child: Child,
    latest: Arc<Mutex<Option<Parts>>>,
}

impl ChildMember {
    fn spawn(addr: &str, group: &str, topic: &str) -> ChildMember {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "child_process_group_member",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_ENV, format!("{addr}\t{group}\t{topic}"))
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
                if let Some(list) = line.strip_prefix("assignment ") {
                    let parts: Parts = list.split(',').filter_map(|p| p.parse().ok()).collect();
                    *sink.lock().unwrap() = Some(parts);
                }
            }
        });
        ChildMember { child, latest }
    }

    /// The child's last reported assignment; an error if it has reported none or has exited.
    fn assignment(&mut self) -> Result<Parts, String> {
        if let Some(status) = self.child.try_wait().unwrap() {
            return Err(format!("the child member exited: {status}"));
        }
        self.latest
            .lock()
            .unwrap()
            .clone()
            .ok_or_else(|| "the child member has reported no assignment yet".to_string())
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

/// Three range-assignor members split 6 partitions (2 each, disjoint, all covered); one closes cleanly
/// (LeaveGroup) and the other two take over its partitions; then one is killed with SIGKILL (no LeaveGroup) and,
/// once its session expires, the survivor owns all 6 and is the group's only member.
#[tokio::test(flavor = "multi_thread")]
async fn three_members_then_a_clean_leave_then_a_kill9() {
    let broker = Broker::start(&CLASSIC);
    let t = topic("split");
    create_topic(&broker, &t, 6).await;
    let group = format!("{t}-group");
    let a = classic_member(&broker.addr, &group, &t, &[("client.id", "ferrite-a")]);
    let b = classic_member(&broker.addr, &group, &t, &[("client.id", "ferrite-b")]);
    let mut c = ChildMember::spawn(&broker.addr, &group, &t);

    poll_until(&broker, "three members", &[&a, &b], &t, |sets| {
        let three = [sets[0].clone(), sets[1].clone(), c.assignment()?];
        disjoint_cover(&three, 6)?;
        balanced(&three)
    });
    let observer = observer(&broker);
    let three = wait_for_group(&broker, &observer, &group, &[&a, &b], |g| {
        g.state() == "Stable" && g.members().len() == 3
    });
    println!("three members: {three}");

    drop(a); // closes: LeaveGroup
    poll_until(
        &broker,
        "two members after a clean leave",
        &[&b],
        &t,
        |sets| {
            let two = [sets[0].clone(), c.assignment()?];
            disjoint_cover(&two, 6)?;
            balanced(&two)
        },
    );

    c.kill9();
    poll_until(
        &broker,
        "the survivor after the other member was killed",
        &[&b],
        &t,
        |sets| {
            if sets[0] == all(6) {
                Ok(())
            } else {
                Err(format!("the survivor owns {:?}", sets[0]))
            }
        },
    );
    let one = wait_for_group(&broker, &observer, &group, &[&b], |g| {
        g.state() == "Stable" && g.members().len() == 1
    });
    assert!(
        one.contains("ferrite-b"),
        "the survivor is the member: {one}"
    );
}

// ----------------------------------------------------------------------------------------------------------------
// Rebalance histories, for the incremental protocols.

#[derive(Debug, Clone)]
enum Event {
    /// Partitions added, and whether librdkafka said the protocol was cooperative.
    Assign(Parts, bool),
    /// Partitions taken away, and whether the protocol was cooperative.
    Revoke(Parts, bool),
    Error(String),
}

/// A consumer context that records every rebalance callback for one topic.
struct History {
    topic: String,
    events: Mutex<Vec<Event>>,
}

impl History {
    fn new(topic: &str) -> History {
        History {
            topic: topic.to_string(),
            events: Mutex::new(vec![]),
        }
    }

    fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }
}

impl ClientContext for History {}

impl ConsumerContext for History {
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let event = match rebalance {
            Rebalance::Assign(tpl) => Event::Assign(tpl_partitions(tpl, &self.topic), cooperative),
            Rebalance::Revoke(tpl) => Event::Revoke(tpl_partitions(tpl, &self.topic), cooperative),
            Rebalance::Error(e) => Event::Error(e.to_string()),
        };
        self.events.lock().unwrap().push(event);
    }
}

/// Replays one member's rebalance callbacks under an incremental protocol and checks them: every callback says
/// the protocol is cooperative; a member is never given a partition it owns, nor one it gave up before; only
/// owned partitions are revoked, never all of them at once. Returns (owned at the end, every partition revoked).
fn replay_incremental(name: &str, events: &[Event]) -> (Parts, Parts) {
    let mut owned = Parts::new();
    let mut revoked = Parts::new();
    for event in events {
        match event {
            Event::Assign(parts, cooperative) => {
                assert!(*cooperative, "{name}: an eager assignment: {events:?}");
                assert!(
                    owned.is_disjoint(parts),
                    "{name}: given {parts:?} while owning {owned:?}: {events:?}"
                );
                assert!(
                    revoked.is_disjoint(parts),
                    "{name}: given back {parts:?} after they were revoked: {events:?}"
                );
                owned.extend(parts);
            }
            Event::Revoke(parts, cooperative) => {
                assert!(*cooperative, "{name}: an eager revocation: {events:?}");
                assert!(
                    parts.is_subset(&owned),
                    "{name}: revoked {parts:?} while owning {owned:?}: {events:?}"
                );
                assert!(
                    parts.is_empty() || parts.len() < owned.len(),
                    "{name}: its whole assignment {owned:?} was revoked: {events:?}"
                );
                owned.retain(|p| !parts.contains(p));
                revoked.extend(parts);
            }
            Event::Error(e) => panic!("{name}: rebalance error {e}: {events:?}"),
        }
    }
    (owned, revoked)
}

/// cooperative-sticky: the first member owns all 6 partitions; when a second joins, the first gives up exactly
/// the partitions that move to the second (incrementally, keeping the rest the whole time), and the two end
/// with 3 each, disjoint and complete.
#[tokio::test(flavor = "multi_thread")]
async fn cooperative_sticky_moves_only_what_changes_owner() {
    let broker = Broker::start(&CLASSIC);
    let t = topic("coop");
    create_topic(&broker, &t, 6).await;
    let group = format!("{t}-group");
    let config = classic_config(
        &broker.addr,
        &group,
        &[("partition.assignment.strategy", "cooperative-sticky")],
    );
    let first = subscribed(&config, &t, History::new(&t));
    poll_until(&broker, "the first member alone", &[&first], &t, |sets| {
        if sets[0] == all(6) {
            Ok(())
        } else {
            Err(format!("the first member owns {:?}", sets[0]))
        }
    });
    let second = subscribed(&config, &t, History::new(&t));
    let sets = poll_until(&broker, "two members", &[&first, &second], &t, |sets| {
        disjoint_cover(sets, 6)?;
        balanced(sets)
    });

    let first_events = first.context().events();
    let second_events = second.context().events();
    println!("first: {first_events:?}\nsecond: {second_events:?}");
    let (first_owned, first_revoked) = replay_incremental("first", &first_events);
    let (second_owned, second_revoked) = replay_incremental("second", &second_events);
    assert_eq!(first_owned, sets[0], "first: callbacks {first_events:?}");
    assert_eq!(second_owned, sets[1], "second: callbacks {second_events:?}");
    assert_eq!(
        first_revoked, sets[1],
        "the first member gave up exactly what the second got: {first_events:?}"
    );
    assert!(
        second_revoked.is_empty(),
        "the second member lost {second_revoked:?}: {second_events:?}"
    );
}

/// KIP-848 (`group.protocol=consumer`, ConsumerGroupHeartbeat): two members split 6 partitions; a third joins
/// and gets partitions the other two gave up, incrementally (they keep the rest); all three end disjoint,
/// complete and balanced.
#[tokio::test(flavor = "multi_thread")]
async fn kip848_members_share_and_rebalance_incrementally() {
    let broker = Broker::start(&KIP848);
    let t = topic("kip848");
    create_topic(&broker, &t, 6).await;
    let group = format!("{t}-group");
    let config = kip848_config(&broker.addr, &group);
    let c1 = subscribed(&config, &t, History::new(&t));
    let c2 = subscribed(&config, &t, History::new(&t));
    poll_until(&broker, "two KIP-848 members", &[&c1, &c2], &t, |sets| {
        disjoint_cover(sets, 6)?;
        balanced(sets)
    });
    let before = [c1.context().events().len(), c2.context().events().len()];

    let c3 = subscribed(&config, &t, History::new(&t));
    let sets = poll_until(
        &broker,
        "three KIP-848 members",
        &[&c1, &c2, &c3],
        &t,
        |sets| {
            disjoint_cover(sets, 6)?;
            balanced(sets)
        },
    );

    let mut given_up = Parts::new();
    for (i, (consumer, before)) in [(&c1, before[0]), (&c2, before[1])].into_iter().enumerate() {
        let name = format!("member {}", i + 1);
        let events = consumer.context().events();
        println!("{name}: {events:?}");
        let (owned, revoked) = replay_incremental(&name, &events);
        assert_eq!(owned, sets[i], "{name}: callbacks {events:?}");
        let (_, revoked_before) = replay_incremental(&name, &events[..before]);
        given_up.extend(revoked.difference(&revoked_before));
    }
    let events = c3.context().events();
    println!("member 3: {events:?}");
    let (owned, revoked) = replay_incremental("member 3", &events);
    assert_eq!(owned, sets[2], "member 3: callbacks {events:?}");
    assert!(revoked.is_empty(), "member 3 lost {revoked:?}: {events:?}");
    assert!(
        sets[2].is_subset(&given_up),
        "the third member got {:?}, but the others gave up only {given_up:?}",
        sets[2]
    );
}

/// Members as ConsumerGroupDescribe shows them: client id -> (member id, member epoch, assigned partitions).
type Described = BTreeMap<String, (String, i32, Parts)>;

fn described(broker: &Broker, group: &str) -> (String, Described) {
    let g = common::raw::describe_consumer_group(broker, group);
    let members = g
        .members
        .iter()
        .map(|m| {
            let parts = m.assignment.topic_partitions.iter();
            let parts: Parts = parts.flat_map(|t| t.partitions.iter().copied()).collect();
            let member = (m.member_id.to_string(), m.member_epoch, parts);
            (m.client_id.to_string(), member)
        })
        .collect();
    (g.group_state.to_string(), members)
}

/// Polls `consumers` until `done` accepts the group as ConsumerGroupDescribe shows it (state, members), and
/// asserts on every round that consumer i still owns exactly `owned[i]` and has had no rebalance callback
/// beyond its first `seen[i]`. Returns the accepted members.
fn hold_until(
    broker: &Broker,
    what: &str,
    consumers: &[&BaseConsumer<History>],
    (group, topic): (&str, &str),
    (owned, seen): (&[Parts], &[usize]),
    mut done: impl FnMut(&str, &Described) -> Result<(), String>,
) -> Described {
    let deadline = Instant::now() + GROUP_TIMEOUT;
    loop {
        for (i, consumer) in consumers.iter().enumerate() {
            let _ = consumer.poll(Duration::from_millis(100));
            let events = consumer.context().events();
            assert_eq!(
                events.len(),
                seen[i],
                "{what}: consumer {i} had a rebalance: {:?}\nbroker log:\n{}",
                &events[seen[i].min(events.len())..],
                log_tail(broker)
            );
            assert_eq!(
                partitions_of(consumer, topic),
                owned[i],
                "{what}: consumer {i}"
            );
        }
        let (state, members) = described(broker, group);
        let complaint = match done(&state, &members) {
            Ok(()) => return members,
            Err(complaint) => complaint,
        };
        assert!(
            Instant::now() < deadline,
            "{what}: not reached within {GROUP_TIMEOUT:?}: {complaint}; group {state} {members:?}\n\
             broker log:\n{}",
            log_tail(broker)
        );
    }
}

/// Ok when the coordinator shows each client (by client id, in `clients` order) owning what it owns itself.
fn described_as_owned(
    members: &Described,
    clients: &[&str],
    owned: &[Parts],
) -> Result<(), String> {
    for (client_id, parts) in clients.iter().zip(owned) {
        match members.get(*client_id) {
            Some((_, _, p)) if p == parts => {}
            other => {
                return Err(format!(
                    "{client_id} is {other:?}, the client owns {parts:?}"
                ))
            }
        }
    }
    Ok(())
}

/// Commits offset 0 of its own partitions for each consumer not yet `committed`, synchronously; an OffsetCommit
/// from a KIP-848 member carries its member id and epoch, which the coordinator checks.
fn commit_owned(
    consumers: &[&BaseConsumer<History>],
    (topic, owned): (&str, &[Parts]),
    committed: &mut [bool],
    errors: &mut Vec<String>,
) {
    for (i, consumer) in consumers.iter().enumerate() {
        if committed[i] {
            continue;
        }
        let mut tpl = TopicPartitionList::new();
        for p in &owned[i] {
            tpl.add_partition_offset(topic, *p, Offset::Offset(0))
                .unwrap();
        }
        match consumer.commit(&tpl, CommitMode::Sync) {
            Ok(()) => committed[i] = true,
            Err(e) => errors.push(format!("consumer {i}: {e}")),
        }
    }
}

/// KIP-848 group state is durable: two members split 6 partitions; the broker is killed with SIGKILL and
/// restarted on the same port and data directory. For longer than a session timeout afterwards, the same two
/// members (same member ids and member epochs, through ConsumerGroupDescribe) own the same partitions, no
/// client sees a partition revoked or assigned, and each member's commit, which the coordinator checks
/// against the member's epoch, is accepted.
async fn kip848_group_survives_kill9(extra: &[(&str, &str)]) {
    const SESSION: Duration = Duration::from_secs(6);
    let session_ms = SESSION.as_millis().to_string();
    let mut settings = KIP848.to_vec();
    settings.push(("group.consumer.session.timeout.ms", &session_ms));
    settings.extend_from_slice(extra);
    let mut broker = Broker::start(&settings);
    let t = topic("kip848-kill9");
    create_topic(&broker, &t, 6).await;
    let group = format!("{t}-group");
    let clients = ["kill9-a", "kill9-b"];
    let consumers: Vec<BaseConsumer<History>> = clients
        .iter()
        .map(|client_id| {
            let mut config = kip848_config(&broker.addr, &group);
            config.set("client.id", *client_id);
            subscribed(&config, &t, History::new(&t))
        })
        .collect();
    let consumers: Vec<&BaseConsumer<History>> = consumers.iter().collect();
    let owned = poll_until(&broker, "two KIP-848 members", &consumers, &t, |sets| {
        disjoint_cover(sets, 6)?;
        balanced(sets)
    });
    let seen: Vec<usize> = consumers
        .iter()
        .map(|c| c.context().events().len())
        .collect();
    let before = hold_until(
        &broker,
        "the coordinator agrees before the kill",
        &consumers,
        (&group, &t),
        (&owned, &seen),
        |state, members| {
            described_as_owned(members, &clients, &owned)?;
            (state == "Stable" && members.len() == 2)
                .then_some(())
                .ok_or_else(|| format!("state {state}"))
        },
    );
    println!("before the kill: {before:?}");

    broker.kill9();
    broker.restart();
    let restarted = Instant::now();
    let (mut committed, mut errors) = ([false, false], vec![]);
    hold_until(
        &broker,
        "the same members after the restart",
        &consumers,
        (&group, &t),
        (&owned, &seen),
        |state, members| {
            if members != &before || state != "Stable" {
                return Err(format!("the group is {state} {members:?}, was {before:?}"));
            }
            commit_owned(&consumers, (&t, &owned), &mut committed, &mut errors);
            if committed != [true, true] {
                return Err(format!("commits not accepted yet: {errors:?}"));
            }
            let waited = restarted.elapsed();
            (waited > SESSION + Duration::from_secs(2))
                .then_some(())
                .ok_or_else(|| format!("only {waited:?} since the restart"))
        },
    );
    println!("commit errors on the way: {errors:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kip848_members_keep_their_partitions_across_a_broker_kill9() {
    kip848_group_survives_kill9(&[]).await;
}

/// The same with every `__consumer_offsets` append synced before it is answered.
#[tokio::test(flavor = "multi_thread")]
async fn kip848_members_keep_their_partitions_across_a_broker_kill9_in_durable_mode() {
    kip848_group_survives_kill9(&[("log.flush.interval.messages", "1")]).await;
}

// ----------------------------------------------------------------------------------------------------------------
// Committed offsets.

/// Polls `consumer` until it has at least `want[p]` records of every partition p; returns (offset, value) per
/// partition in arrival order.
fn consume_counts<C: ConsumerContext>(
    broker: &Broker,
    consumer: &BaseConsumer<C>,
    want: &BTreeMap<i32, usize>,
) -> BTreeMap<i32, Vec<(i64, String)>> {
    let mut got: BTreeMap<i32, Vec<(i64, String)>> = want.keys().map(|p| (*p, vec![])).collect();
    let deadline = Instant::now() + GROUP_TIMEOUT;
    let mut errors = vec![];
    while want.iter().any(|(p, n)| got[p].len() < *n) {
        let counts: BTreeMap<i32, usize> = got.iter().map(|(p, v)| (*p, v.len())).collect();
        assert!(
            Instant::now() < deadline,
            "consumed {counts:?}, want {want:?}; poll errors {errors:?}\nbroker log:\n{}",
            log_tail(broker)
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let v = String::from_utf8_lossy(m.payload().unwrap_or(&[])).into_owned();
                got.entry(m.partition()).or_default().push((m.offset(), v));
            }
            Some(Err(e)) => errors.push(e.to_string()),
            None => {}
        }
    }
    got
}

fn offsets_of(tpl: &TopicPartitionList, topic: &str) -> BTreeMap<i32, Offset> {
    tpl.elements_for_topic(topic)
        .iter()
        .map(|e| (e.partition(), e.offset()))
        .collect()
}

fn all_partitions(topic: &str, partitions: i32) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_range(topic, 0, partitions - 1);
    tpl
}

/// A member commits chosen offsets (with metadata) synchronously; the broker is killed with SIGKILL and
/// restarted; a new member of the group starts every partition exactly at its committed offset, reads the rest
/// in order, and sees the committed offsets and metadata.
async fn commit_kill9_resume(extra: &[(&str, &str)]) {
    let mut settings = CLASSIC.to_vec();
    settings.extend_from_slice(extra);
    let mut broker = Broker::start(&settings);
    let t = topic("resume");
    create_topic(&broker, &t, 3).await;
    const RECORDS: i64 = 40;
    for p in 0..3 {
        produce(&broker, &t, p, RECORDS).await;
    }
    let group = format!("{t}-group");
    let commit: BTreeMap<i32, i64> = [(0, 7), (1, 20), (2, 33)].into();
    {
        let first = classic_member(&broker.addr, &group, &t, &[]);
        let want = commit.iter().map(|(p, o)| (*p, *o as usize)).collect();
        consume_counts(&broker, &first, &want);
        let mut tpl = TopicPartitionList::new();
        for (p, o) in &commit {
            let mut e = tpl.add_partition(&t, *p);
            e.set_offset(Offset::Offset(*o)).unwrap();
            e.set_metadata(format!("resume-{p}"));
        }
        first
            .commit(&tpl, CommitMode::Sync)
            .unwrap_or_else(|e| panic!("commit: {e}\nbroker log:\n{}", log_tail(&broker)));
        let seen = offsets_of(&first.committed(TIMEOUT).unwrap(), &t);
        let want: BTreeMap<i32, Offset> = commit
            .iter()
            .map(|(p, o)| (*p, Offset::Offset(*o)))
            .collect();
        assert_eq!(seen, want, "committed() right after the commit");
    } // closes: LeaveGroup, the group is empty

    broker.kill9();
    broker.restart();

    let second = classic_member(&broker.addr, &group, &t, &[]);
    let want = commit
        .iter()
        .map(|(p, o)| (*p, (RECORDS - o) as usize))
        .collect();
    let got = consume_counts(&broker, &second, &want);
    for (p, o) in &commit {
        let expected: Vec<(i64, String)> = (*o..RECORDS).map(|i| (i, value(*p, i))).collect();
        assert_eq!(
            got[p], expected,
            "partition {p}: a new member after the restart starts at the committed offset {o}"
        );
    }
    let committed = second.committed(TIMEOUT).unwrap();
    let want: BTreeMap<i32, Offset> = commit
        .iter()
        .map(|(p, o)| (*p, Offset::Offset(*o)))
        .collect();
    assert_eq!(
        offsets_of(&committed, &t),
        want,
        "committed() after the restart"
    );
    for e in committed.elements_for_topic(&t) {
        assert_eq!(
            e.metadata(),
            format!("resume-{}", e.partition()),
            "commit metadata of partition {}",
            e.partition()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn committed_offsets_survive_kill9() {
    commit_kill9_resume(&[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn committed_offsets_survive_kill9_in_durable_mode() {
    commit_kill9_resume(&[("log.flush.interval.messages", "1")]).await;
}

/// Lag per partition: high watermark minus committed offset, or minus the log start when nothing is committed.
fn lags(consumer: &BaseConsumer, topic: &str, committed: &BTreeMap<i32, Offset>) -> Vec<i64> {
    committed
        .iter()
        .map(|(p, o)| {
            let (low, high) = consumer.fetch_watermarks(topic, *p, TIMEOUT).unwrap();
            match o {
                Offset::Offset(o) => high - o,
                _ => high - low,
            }
        })
        .collect()
}

/// A member commits offsets for three of four partitions; another consumer instance of the group (not a member)
/// reads them back (OffsetFetch), and with the watermarks they give the expected lag. Once the group is empty,
/// that instance commits the fourth partition without joining (a "simple" commit), and a third instance sees all
/// four.
#[tokio::test(flavor = "multi_thread")]
async fn lag_from_committed_offsets_and_watermarks() {
    let broker = Broker::start(&CLASSIC);
    let t = topic("lag");
    create_topic(&broker, &t, 4).await;
    for (p, n) in [(0, 10), (1, 20), (2, 30), (3, 40)] {
        produce(&broker, &t, p, n).await;
    }
    let group = format!("{t}-group");
    let outsider = |broker: &Broker| -> BaseConsumer {
        classic_config(&broker.addr, &group, &[]).create().unwrap()
    };
    {
        let member = classic_member(&broker.addr, &group, &t, &[]);
        poll_until(&broker, "one member", &[&member], &t, |sets| {
            disjoint_cover(sets, 4)
        });
        let mut tpl = TopicPartitionList::new();
        for (p, o) in [(0, 3), (1, 20), (2, 7)] {
            tpl.add_partition_offset(&t, p, Offset::Offset(o)).unwrap();
        }
        member
            .commit(&tpl, CommitMode::Sync)
            .unwrap_or_else(|e| panic!("commit: {e}\nbroker log:\n{}", log_tail(&broker)));

        let other = outsider(&broker);
        let committed = offsets_of(
            &other
                .committed_offsets(all_partitions(&t, 4), TIMEOUT)
                .unwrap(),
            &t,
        );
        let expected: BTreeMap<i32, Offset> = [
            (0, Offset::Offset(3)),
            (1, Offset::Offset(20)),
            (2, Offset::Offset(7)),
            (3, Offset::Invalid),
        ]
        .into();
        assert_eq!(
            committed, expected,
            "committed offsets seen by another instance"
        );
        assert_eq!(lags(&other, &t, &committed), [7, 0, 23, 40]);
    } // the member leaves

    let other = outsider(&broker);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&t, 3, Offset::Offset(12)).unwrap();
    other.commit(&tpl, CommitMode::Sync).unwrap_or_else(|e| {
        panic!(
            "commit without joining: {e}\nbroker log:\n{}",
            log_tail(&broker)
        )
    });
    let third = outsider(&broker);
    let committed = offsets_of(
        &third
            .committed_offsets(all_partitions(&t, 4), TIMEOUT)
            .unwrap(),
        &t,
    );
    let expected: BTreeMap<i32, Offset> = [(0, 3), (1, 20), (2, 7), (3, 12)]
        .into_iter()
        .map(|(p, o)| (p, Offset::Offset(o)))
        .collect();
    assert_eq!(committed, expected, "after a commit from outside the group");
    assert_eq!(lags(&third, &t, &committed), [7, 0, 23, 28]);
}

// ----------------------------------------------------------------------------------------------------------------
// Group administration.

/// ListGroups and DescribeGroups (librdkafka's list_groups): while two members are up the group is "Stable",
/// protocol type "consumer", protocol "range", with both members and the assignments they hold; DeleteGroups
/// refuses a group with members (NON_EMPTY_GROUP). After both leave it is "Empty" with no members; then
/// DeleteGroups removes it from the list, and deleting it again answers GROUP_ID_NOT_FOUND.
#[tokio::test(flavor = "multi_thread")]
async fn list_describe_and_delete_groups() {
    let broker = Broker::start(&CLASSIC);
    let t = topic("listed");
    create_topic(&broker, &t, 4).await;
    let group = format!("{t}-group");
    let a = classic_member(&broker.addr, &group, &t, &[("client.id", "ferrite-list-a")]);
    let b = classic_member(&broker.addr, &group, &t, &[("client.id", "ferrite-list-b")]);
    let sets = poll_until(&broker, "two members", &[&a, &b], &t, |sets| {
        disjoint_cover(sets, 4)
    });
    let observer = observer(&broker);
    let stable = wait_for_group(&broker, &observer, &group, &[&a, &b], |g| {
        g.state() == "Stable" && g.members().len() == 2
    });
    let list = observer.fetch_group_list(Some(&group), TIMEOUT).unwrap();
    let info = list.groups().iter().find(|g| g.name() == group).unwrap();
    assert_eq!(info.protocol_type(), "consumer", "{stable}");
    assert_eq!(info.protocol(), "range", "{stable}");
    let mut described = BTreeMap::new();
    for m in info.members() {
        let parts = parse_assignment(m.assignment().unwrap_or(&[]), &t)
            .unwrap_or_else(|| panic!("member {} has an unreadable assignment", m.id()));
        described.insert(m.client_id().to_string(), parts);
    }
    let own: BTreeMap<String, Parts> = [
        ("ferrite-list-a".to_string(), sets[0].clone()),
        ("ferrite-list-b".to_string(), sets[1].clone()),
    ]
    .into();
    assert_eq!(
        described, own,
        "DescribeGroups shows what each member holds"
    );

    let admin = admin(&broker);
    let r = admin
        .delete_groups(&[&group], &AdminOptions::new())
        .await
        .unwrap();
    assert!(
        matches!(r[0], Err((_, RDKafkaErrorCode::NonEmptyGroup))),
        "deleting a group with members: {r:?}"
    );

    drop(a);
    drop(b);
    let empty = wait_for_group(&broker, &observer, &group, &[] as &[&BaseConsumer], |g| {
        g.state() == "Empty" && g.members().is_empty()
    });
    assert!(empty.contains("\"consumer\""), "{empty}");
    let everything = observer.fetch_group_list(None, TIMEOUT).unwrap();
    assert!(
        everything.groups().iter().any(|g| g.name() == group),
        "an empty group is still listed"
    );

    let r = admin
        .delete_groups(&[&group], &AdminOptions::new())
        .await
        .unwrap();
    assert!(matches!(&r[0], Ok(g) if *g == group), "delete: {r:?}");
    let everything = observer.fetch_group_list(None, TIMEOUT).unwrap();
    assert!(
        everything.groups().iter().all(|g| g.name() != group),
        "a deleted group is not listed"
    );
    let r = admin
        .delete_groups(&[&group], &AdminOptions::new())
        .await
        .unwrap();
    assert!(
        matches!(r[0], Err((_, RDKafkaErrorCode::GroupIdNotFound))),
        "deleting it again: {r:?}"
    );
}

//! Partitions replicated over three real `ferrite` processes, driven by rdkafka and raw requests:
//! - records acknowledged with acks=all (replication factor 3, min.insync.replicas 2) survive kill -9 of
//!   their leader, are read back exactly once and in order, and the killed broker catches up and rejoins
//!   the ISR when it returns (and can then lead without losing anything);
//! - a paused follower leaves the ISR after `replica.lag.time.max.ms` and rejoins once resumed; while it is
//!   out, a topic that needs three in-sync replicas refuses acks=all (NOT_ENOUGH_REPLICAS) but takes acks=1;
//! - acks=all is not answered, and consumers do not see a record, before every in-sync follower has it;
//! - a leader that comes back after a failover cuts the tail only it had (acks=1 records nobody else got)
//!   before it follows, and can lead again with the new leader's log;
//! - a rolling restart with controlled shutdown (SIGTERM) moves leaderships before each broker exits and
//!   costs an idempotent producer no error and no record.
#![allow(clippy::unwrap_used)]

mod common;

use common::cluster::{
    consume_group, produce_with, record_key, record_value, Cluster, ClusterSpec, Consumed, NONE,
};
use common::topic;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NOT_ENOUGH_REPLICAS: i16 = 19;
const REQUEST_TIMED_OUT: i16 = 7;
const CONSUME_TIMEOUT: Duration = Duration::from_secs(60);
const ISR_TIMEOUT: Duration = Duration::from_secs(30);

/// Three combined nodes, replication factor 3 and min.insync.replicas 2 by default, a broker session of 3 s.
fn replicated(spec: ClusterSpec) -> ClusterSpec {
    spec.with("group.initial.rebalance.delay.ms", "0")
        .with("offsets.topic.num.partitions", "3")
        .with("broker.session.timeout.ms", "3000")
        .with("broker.heartbeat.interval.ms", "500")
        .with("default.replication.factor", "3")
        .with("min.insync.replicas", "2")
        .with("replica.fetch.backoff.ms", "200")
}

/// An idempotent acks=all producer's settings.
const SAFE_PRODUCER: &[(&str, &str)] = &[
    ("acks", "all"),
    ("enable.idempotence", "true"),
    ("message.timeout.ms", "60000"),
];

/// Every acknowledged record (key index -> (partition, offset)) was read once, at its offset, with its value;
/// nothing was read that was not produced; each partition's records come in offset order.
fn assert_exactly_once(acked: &BTreeMap<usize, (i32, i64)>, read: &[Consumed]) {
    let mut by_key: BTreeMap<&str, Vec<&Consumed>> = BTreeMap::new();
    for r in read {
        by_key.entry(r.key.as_str()).or_default().push(r);
    }
    for (i, (partition, offset)) in acked {
        let key = record_key(*i);
        let copies = by_key.get(key.as_str()).map_or(0, Vec::len);
        assert!(
            copies >= 1,
            "acknowledged record {key} at {partition}/{offset} was lost"
        );
        let distinct_offsets: BTreeSet<(i32, i64)> = by_key[key.as_str()]
            .iter()
            .map(|r| (r.partition, r.offset))
            .collect();
        assert_eq!(
            distinct_offsets,
            BTreeSet::from([(*partition, *offset)]),
            "record {key} is in the log more than once or elsewhere than acknowledged"
        );
        assert_eq!(
            by_key[key.as_str()][0].value,
            record_value(*i),
            "record {key} changed"
        );
    }
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    for r in read {
        let previous = last.insert(r.partition, r.offset);
        assert!(
            previous.is_none_or(|p| p < r.offset),
            "partition {} read out of order: {previous:?} then {}",
            r.partition,
            r.offset
        );
    }
}

fn acked(results: Vec<Result<(i32, i64), String>>, first: usize) -> BTreeMap<usize, (i32, i64)> {
    results
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            (
                first + i,
                r.unwrap_or_else(|e| panic!("record {} not acknowledged: {e}", first + i)),
            )
        })
        .collect()
}

#[test]
fn acknowledged_writes_survive_killing_their_leader() {
    let mut cluster = Cluster::start(replicated(ClusterSpec::combined(3)));
    cluster.wait_for_brokers(3);
    let t = topic("survive");
    let (code, message) = cluster.create_topic(1, &t, 3, 3).unwrap();
    assert_eq!(code, NONE, "{message}");
    let formed = cluster.wait_for_isr(1, &t, 3, 3, ISR_TIMEOUT);
    eprintln!("3 partitions with 3 in-sync replicas {formed:?} after creation");

    let mut all = acked(
        produce_with(
            &cluster.bootstrap_servers(),
            SAFE_PRODUCER,
            &t,
            None,
            0..300,
        ),
        0,
    );
    let view = cluster.metadata(1).unwrap();
    let victim = view.partition(&t, 0).unwrap().leader;
    let killed = Instant::now();
    cluster.kill9(victim);
    eprintln!("killed node {victim}, leader of {t}-0");

    // acks=all to the killed leader's partition succeeds again once the controller moved the leadership.
    let survivors = cluster.bootstrap_servers();
    let first = produce_with(&survivors, SAFE_PRODUCER, &t, Some(0), 300..301);
    eprintln!(
        "first acks=all produce to {t}-0 acknowledged {:?} after the kill",
        killed.elapsed()
    );
    all.extend(acked(first, 300));
    all.extend(acked(
        produce_with(&survivors, SAFE_PRODUCER, &t, None, 301..600),
        301,
    ));
    let view = cluster.metadata(cluster.live_brokers()[0]).unwrap();
    for p in view.partitions(&t).unwrap() {
        assert_ne!(p.leader, victim, "{p:?}");
        assert!(
            !p.isr.contains(&victim),
            "the dead broker left the ISR: {p:?}"
        );
    }
    let read = consume_group(
        &survivors,
        &t,
        &format!("{t}-a"),
        all.len(),
        CONSUME_TIMEOUT,
    );
    assert_exactly_once(&all, &read);
    assert_eq!(
        read.len(),
        all.len(),
        "nothing but the acknowledged records"
    );

    // The killed broker comes back, catches up and rejoins every ISR.
    cluster.restart(victim);
    let rejoined = cluster.wait_for_isr(victim, &t, 3, 3, ISR_TIMEOUT);
    eprintln!("node {victim} back in every ISR {rejoined:?} after its restart");

    // Kill the leaders that are not the returned node until it leads something, then read everything
    // through it: its log is the same.
    let view = cluster.metadata(victim).unwrap();
    let leader0 = view.partition(&t, 0).unwrap().leader;
    assert_ne!(leader0, victim);
    cluster.kill9(leader0);
    all.extend(acked(
        produce_with(
            &cluster.bootstrap_servers(),
            SAFE_PRODUCER,
            &t,
            None,
            600..700,
        ),
        600,
    ));
    let read = consume_group(
        &cluster.bootstrap_servers(),
        &t,
        &format!("{t}-b"),
        all.len(),
        CONSUME_TIMEOUT,
    );
    assert_exactly_once(&all, &read);
    assert_eq!(read.len(), all.len());
}

#[test]
fn a_paused_follower_leaves_the_isr_and_rejoins() {
    // A long broker session, so the pause is seen by the ISR check (2 s lag), not by fencing.
    let spec = replicated(ClusterSpec::combined(3))
        .with("broker.session.timeout.ms", "60000")
        .with("replica.lag.time.max.ms", "2000");
    let mut cluster = Cluster::start(spec);
    cluster.wait_for_brokers(3);
    let controller = cluster.active_controller();
    let t = topic("lag");
    let strict = topic("strict");
    cluster.create_topic_with(controller, &t, 1, 3, &[]);
    cluster.create_topic_with(controller, &strict, 1, 3, &[("min.insync.replicas", "3")]);
    cluster.wait_for_isr(controller, &t, 1, 3, ISR_TIMEOUT);
    cluster.wait_for_isr(controller, &strict, 1, 3, ISR_TIMEOUT);
    let leader = cluster
        .metadata(controller)
        .unwrap()
        .partition(&t, 0)
        .unwrap()
        .leader;
    let strict_leader = cluster
        .metadata(controller)
        .unwrap()
        .partition(&strict, 0)
        .unwrap()
        .leader;
    let follower = (1..=3)
        .find(|id| *id != controller && *id != leader && *id != strict_leader)
        .or_else(|| (1..=3).find(|id| *id != controller && *id != leader))
        .unwrap();
    assert_eq!(
        cluster.produce_raw_until(strict_leader, &strict, 0, -1, NONE, ISR_TIMEOUT),
        NONE
    );

    let paused = Instant::now();
    cluster.pause(follower);
    let shrunk = cluster.wait_for_isr(controller, &t, 1, 2, ISR_TIMEOUT);
    eprintln!("ISR shrank to 2 {shrunk:?} after pausing follower {follower} (replica.lag.time.max.ms 2000)");
    assert!(
        paused.elapsed() >= Duration::from_secs(2),
        "not before the lag time"
    );
    // min.insync.replicas 2 still holds: acks=all goes on.
    let results = produce_with(
        &cluster.bootstrap_servers(),
        SAFE_PRODUCER,
        &t,
        Some(0),
        0..50,
    );
    acked(results, 0);
    // The strict topic needs all three: refused before the append, while acks=1 is taken.
    if strict_leader != follower {
        cluster.wait_for_isr(controller, &strict, 1, 2, ISR_TIMEOUT);
        assert_eq!(
            cluster.produce_raw_until(
                strict_leader,
                &strict,
                0,
                -1,
                NOT_ENOUGH_REPLICAS,
                ISR_TIMEOUT
            ),
            NOT_ENOUGH_REPLICAS
        );
        assert_eq!(
            cluster.produce_raw_until(strict_leader, &strict, 0, 1, NONE, ISR_TIMEOUT),
            NONE
        );
    }

    let resumed = Instant::now();
    cluster.resume(follower);
    let back = cluster.wait_for_isr(controller, &t, 1, 3, ISR_TIMEOUT);
    eprintln!("ISR back to 3 {back:?} after resuming follower {follower}");
    cluster.wait_for_isr(controller, &strict, 1, 3, ISR_TIMEOUT);
    assert!(resumed.elapsed() < ISR_TIMEOUT);
    assert_eq!(
        cluster.produce_raw_until(strict_leader, &strict, 0, -1, NONE, ISR_TIMEOUT),
        NONE
    );
}

#[test]
fn acks_all_and_consumers_wait_for_every_in_sync_follower() {
    // Followers stay in the ISR while paused (long lag time and session): the leader must wait for them.
    let spec = replicated(ClusterSpec::combined(3))
        .with("broker.session.timeout.ms", "60000")
        .with("replica.lag.time.max.ms", "60000");
    let mut cluster = Cluster::start(spec);
    cluster.wait_for_brokers(3);
    let t = topic("waits");
    cluster.create_topic_with(1, &t, 1, 3, &[]);
    cluster.wait_for_isr(1, &t, 1, 3, ISR_TIMEOUT);
    let leader = cluster
        .metadata(1)
        .unwrap()
        .partition(&t, 0)
        .unwrap()
        .leader;
    assert_eq!(
        cluster.produce_raw_until(leader, &t, 0, -1, NONE, ISR_TIMEOUT),
        NONE
    );
    // One record, or more if a try timed out before one went through: all of them committed now.
    let (_, committed) = cluster.fetch_raw(leader, &t, 0).unwrap();
    assert!(committed >= 1);
    let followers: Vec<i32> = (1..=3).filter(|id| *id != leader).collect();
    for f in &followers {
        cluster.pause(*f);
    }
    assert_eq!(
        cluster.produce_raw(leader, &t, 0, -1).unwrap(),
        REQUEST_TIMED_OUT,
        "acks=all answered before the followers had the record"
    );
    let (code, high_watermark) = cluster.fetch_raw(leader, &t, 0).unwrap();
    assert_eq!(
        (code, high_watermark),
        (NONE, committed),
        "a consumer may not see it yet"
    );
    for f in &followers {
        cluster.resume(*f);
    }
    cluster.wait_until(ISR_TIMEOUT, "the high watermark to pass the record", || {
        cluster
            .fetch_raw(leader, &t, 0)
            .is_ok_and(|(_, hw)| hw == committed + 1)
    });
    assert_eq!(
        cluster.produce_raw_until(leader, &t, 0, -1, NONE, ISR_TIMEOUT),
        NONE
    );
}

#[test]
fn a_returning_leader_cuts_the_tail_only_it_had() {
    // A lag time longer than the test, so only fencing (6 s session) changes the ISR.
    let spec = replicated(ClusterSpec::combined(3))
        .with("broker.session.timeout.ms", "6000")
        .with("replica.lag.time.max.ms", "120000")
        .with("min.insync.replicas", "1");
    let mut cluster = Cluster::start(spec);
    cluster.wait_for_brokers(3);
    let t = topic("diverge");
    let controller = cluster.active_controller();
    cluster.create_topic_with(controller, &t, 1, 2, &[]);
    cluster.wait_for_isr(controller, &t, 1, 2, ISR_TIMEOUT);
    let p = cluster
        .metadata(controller)
        .unwrap()
        .partition(&t, 0)
        .unwrap()
        .clone();
    let old_leader = p.leader;
    let follower = *p.replicas.iter().find(|r| **r != old_leader).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    let mut all = acked(
        produce_with(&bootstrap, SAFE_PRODUCER, &t, Some(0), 0..100),
        0,
    );

    // The follower stops; the leader takes acks=1 records only it will ever have, then dies.
    cluster.pause(follower);
    // The paused follower's last fetch may still be waiting at the leader: the first record after the pause
    // answers it (and reaches the follower's socket), the tail after that reaches nobody.
    let absorbed = produce_with(&bootstrap, &[("acks", "1")], &t, Some(0), 999..1000);
    assert!(absorbed[0].is_ok(), "{absorbed:?}");
    std::thread::sleep(Duration::from_secs(1));
    let tail = produce_with(&bootstrap, &[("acks", "1")], &t, Some(0), 1000..1050);
    assert!(
        tail.iter().all(Result::is_ok),
        "acks=1 to the leader alone: {tail:?}"
    );
    cluster.kill9(old_leader);
    cluster.resume(follower);
    cluster.wait_until(ISR_TIMEOUT, "the follower to lead", || {
        cluster
            .metadata(follower)
            .is_ok_and(|v| v.partition(&t, 0).is_some_and(|p| p.leader == follower))
    });
    // The new leader takes new records at the offsets the old leader's tail used.
    all.extend(acked(
        produce_with(
            &cluster.bootstrap_servers(),
            SAFE_PRODUCER,
            &t,
            Some(0),
            100..200,
        ),
        100,
    ));
    cluster.restart(old_leader);
    let rejoined = cluster.wait_for_isr(follower, &t, 1, 2, ISR_TIMEOUT);
    eprintln!(
        "the old leader truncated, caught up and rejoined the ISR {rejoined:?} after its restart"
    );
    assert!(
        cluster
            .log(old_leader)
            .contains("truncating a divergent tail"),
        "the old leader did not truncate"
    );
    // Now it leads again: what it serves is the new leader's log, without the lost tail.
    cluster.kill9(follower);
    cluster.wait_until(ISR_TIMEOUT, "the old leader to lead again", || {
        cluster
            .metadata(old_leader)
            .is_ok_and(|v| v.partition(&t, 0).is_some_and(|p| p.leader == old_leader))
    });
    let read = consume_group(
        &cluster.bootstrap_servers(),
        &t,
        &format!("{t}-g"),
        all.len(),
        CONSUME_TIMEOUT,
    );
    let read: Vec<Consumed> = read
        .into_iter()
        .filter(|r| r.key != record_key(999))
        .collect();
    assert_exactly_once(&all, &read);
    assert_eq!(read.len(), all.len(), "the acks=1 tail is gone");
}

/// One producer writing records `0..` as fast as it is acknowledged, up to 200 in flight, until `stop`:
/// each record's outcome, in order.
fn produce_until(
    bootstrap: String,
    topic: String,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<Result<(i32, i64), String>>> {
    std::thread::spawn(move || {
        use rdkafka::producer::{FutureProducer, FutureRecord};
        let mut config = rdkafka::ClientConfig::new();
        config
            .set("bootstrap.servers", &bootstrap)
            .set("linger.ms", "2");
        for (k, v) in SAFE_PRODUCER {
            config.set(*k, *v);
        }
        let producer: FutureProducer = config.create().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut results = vec![];
            let mut in_flight = std::collections::VecDeque::new();
            let mut i = 0;
            while !stop.load(Ordering::Acquire) {
                let (key, value) = (record_key(i), record_value(i));
                let record = FutureRecord::to(&topic).key(&key).payload(&value);
                match producer.send_result(record) {
                    Ok(delivery) => in_flight.push_back(delivery),
                    Err((e, _)) => panic!("record {i} not queued: {e}"),
                }
                i += 1;
                if in_flight.len() >= 200 {
                    let delivery = in_flight.pop_front().unwrap();
                    results.push(outcome(delivery).await);
                } else {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
            for delivery in in_flight {
                results.push(outcome(delivery).await);
            }
            results
        })
    })
}

async fn outcome(delivery: rdkafka::producer::DeliveryFuture) -> Result<(i32, i64), String> {
    match delivery.await {
        Ok(Ok(d)) => Ok((d.partition, d.offset)),
        Ok(Err((e, _))) => Err(e.to_string()),
        Err(_) => Err("delivery canceled".to_string()),
    }
}

#[test]
fn a_rolling_restart_with_controlled_shutdown_costs_producers_nothing() {
    let mut cluster = Cluster::start(replicated(ClusterSpec::combined(3)));
    cluster.wait_for_brokers(3);
    let t = topic("rolling");
    let (code, message) = cluster.create_topic(1, &t, 3, 3).unwrap();
    assert_eq!(code, NONE, "{message}");
    cluster.wait_for_isr(1, &t, 3, 3, ISR_TIMEOUT);

    // A producer that keeps writing through the whole restart.
    let bootstrap = cluster.bootstrap_servers();
    let stop = Arc::new(AtomicBool::new(false));
    let producer = produce_until(bootstrap.clone(), t.clone(), Arc::clone(&stop));
    std::thread::sleep(Duration::from_secs(1));
    for id in [1, 2, 3] {
        let asked = Instant::now();
        assert_eq!(cluster.stop(id), Some(0), "exit status of node {id}");
        eprintln!("node {id} stopped {:?} after SIGTERM", asked.elapsed());
        // Controlled shutdown: the leaderships had moved before the process exited.
        let other = if id == 1 { 2 } else { 1 };
        let view = cluster.metadata(other).unwrap();
        for p in view.partitions(&t).unwrap() {
            assert_ne!(p.leader, id, "node {id} exited still leading: {p:?}");
        }
        cluster.restart(id);
        let rejoined = cluster.wait_for_isr(id, &t, 3, 3, ISR_TIMEOUT);
        eprintln!("node {id} back in every ISR {rejoined:?} after its restart");
    }
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Release);
    let results = producer.join().unwrap();
    let errors: Vec<_> = results.iter().filter(|r| r.is_err()).collect();
    assert!(
        errors.is_empty(),
        "{} of {} produces failed: {:?}",
        errors.len(),
        results.len(),
        &errors[..errors.len().min(5)]
    );
    let all = acked(results, 0);
    eprintln!(
        "{} records acknowledged during the rolling restart",
        all.len()
    );
    let read = consume_group(
        &bootstrap,
        &t,
        &format!("{t}-g"),
        all.len(),
        CONSUME_TIMEOUT,
    );
    assert_exactly_once(&all, &read);
    assert_eq!(read.len(), all.len());
}

#[test]
fn a_groups_committed_offsets_survive_the_death_of_its_coordinator() {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    use rdkafka::Message;
    let mut cluster = Cluster::start(replicated(ClusterSpec::combined(3)));
    cluster.wait_for_brokers(3);
    let t = topic("commits");
    let (code, message) = cluster.create_topic(1, &t, 1, 3).unwrap();
    assert_eq!(code, NONE, "{message}");
    cluster.wait_for_isr(1, &t, 1, 3, ISR_TIMEOUT);
    acked(
        produce_with(
            &cluster.bootstrap_servers(),
            SAFE_PRODUCER,
            &t,
            Some(0),
            0..100,
        ),
        0,
    );
    let group = format!("{t}-group");
    let consumer = |bootstrap: &str| -> BaseConsumer {
        rdkafka::ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", &group)
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("session.timeout.ms", "6000")
            .create()
            .unwrap()
    };
    let first = consumer(&cluster.bootstrap_servers());
    first.subscribe(&[&t]).unwrap();
    let mut read = 0;
    let deadline = Instant::now() + CONSUME_TIMEOUT;
    while read < 60 && Instant::now() < deadline {
        if let Some(Ok(m)) = first.poll(Duration::from_millis(100)) {
            read += 1;
            if read == 60 {
                let mut position = rdkafka::TopicPartitionList::new();
                position
                    .add_partition_offset(&t, 0, rdkafka::Offset::Offset(m.offset() + 1))
                    .unwrap();
                first.commit(&position, CommitMode::Sync).unwrap();
            }
        }
    }
    assert_eq!(read, 60);
    drop(first);

    // The coordinator is the leader of the group's __consumer_offsets partition (3 partitions, 3 replicas).
    let view = cluster.metadata(1).unwrap();
    let offsets = view
        .partition(
            "__consumer_offsets",
            ferrite_coordinator::offsets::partition_for_group(&group, 3),
        )
        .unwrap()
        .clone();
    assert_eq!(offsets.replicas.len(), 3, "{offsets:?}");
    let coordinator = offsets.leader;
    cluster.kill9(coordinator);
    eprintln!("killed node {coordinator}, the group's coordinator");

    let second = consumer(&cluster.bootstrap_servers());
    second.subscribe(&[&t]).unwrap();
    let mut offsets_read = vec![];
    let deadline = Instant::now() + CONSUME_TIMEOUT;
    while offsets_read.len() < 40 && Instant::now() < deadline {
        if let Some(Ok(m)) = second.poll(Duration::from_millis(100)) {
            offsets_read.push(m.offset());
        }
    }
    assert_eq!(
        offsets_read,
        (60..100).collect::<Vec<i64>>(),
        "the new coordinator resumed the group from its committed offset"
    );
}

/// Kills and restarts the preferred leader of partition 0; returns it once it is back in every ISR (and
/// no longer leads what it preferred).
fn move_leadership_away(cluster: &mut Cluster, t: &str, partitions: usize) -> i32 {
    let view = cluster.metadata(1).unwrap();
    let preferred = view.partition(t, 0).unwrap().replicas[0];
    cluster.kill9(preferred);
    let other = (1..=3).find(|id| *id != preferred).unwrap();
    cluster.wait_until(ISR_TIMEOUT, "partition 0 led by another broker", || {
        cluster.metadata(other).is_ok_and(|v| {
            v.partition(t, 0)
                .is_some_and(|p| p.leader >= 0 && p.leader != preferred)
        })
    });
    cluster.restart(preferred);
    cluster.wait_for_isr(preferred, t, partitions, 3, ISR_TIMEOUT);
    preferred
}

fn led_by_preferred(cluster: &Cluster, id: i32, t: &str) -> bool {
    cluster.metadata(id).is_ok_and(|v| {
        v.partitions(t)
            .is_some_and(|ps| ps.iter().all(|p| p.leader == p.replicas[0]))
    })
}

#[test]
fn elect_leaders_gives_partitions_back_to_their_preferred_replicas() {
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
    use kafka_protocol::messages::{ApiKey, ElectLeadersRequest, ElectLeadersResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let spec = replicated(ClusterSpec::combined(3)).with("auto.leader.rebalance.enable", "false");
    let mut cluster = Cluster::start(spec);
    cluster.wait_for_brokers(3);
    let t = topic("preferred");
    let (code, message) = cluster.create_topic(1, &t, 3, 3).unwrap();
    assert_eq!(code, NONE, "{message}");
    cluster.wait_for_isr(1, &t, 3, 3, ISR_TIMEOUT);
    let returned = move_leadership_away(&mut cluster, &t, 3);
    assert!(
        !led_by_preferred(&cluster, returned, &t),
        "the leadership moved"
    );

    let mut tp = TopicPartitions::default();
    tp.topic = TopicName(StrBytes::from_string(t.clone()));
    tp.partitions = vec![0, 1, 2, 7];
    let mut req = ElectLeadersRequest::default();
    req.election_type = 0;
    req.topic_partitions = Some(vec![tp]);
    req.timeout_ms = 30_000;
    let r: ElectLeadersResponse = common::cluster::request(
        cluster.node(returned).addr(),
        ApiKey::ElectLeaders,
        2,
        &req,
        Duration::from_secs(30),
    )
    .unwrap();
    assert_eq!(r.error_code, NONE);
    let codes: BTreeMap<i32, i16> = r.replica_election_results[0]
        .partition_result
        .iter()
        .map(|p| (p.partition_id, p.error_code))
        .collect();
    assert_eq!(codes[&7], 3, "UNKNOWN_TOPIC_OR_PARTITION: {codes:?}");
    assert!(
        codes.values().any(|c| *c == NONE),
        "an election ran: {codes:?}"
    );
    assert!(
        codes.iter().all(|(p, c)| *p == 7 || *c == NONE || *c == 84),
        "NONE or ELECTION_NOT_NEEDED: {codes:?}"
    );
    cluster.wait_until(
        ISR_TIMEOUT,
        "every partition led by its preferred replica",
        || led_by_preferred(&cluster, returned, &t),
    );
}

#[test]
fn the_controller_rebalances_leadership_by_itself() {
    let spec =
        replicated(ClusterSpec::combined(3)).with("leader.imbalance.check.interval.seconds", "2");
    let mut cluster = Cluster::start(spec);
    cluster.wait_for_brokers(3);
    let t = topic("rebalance");
    let (code, message) = cluster.create_topic(1, &t, 3, 3).unwrap();
    assert_eq!(code, NONE, "{message}");
    cluster.wait_for_isr(1, &t, 3, 3, ISR_TIMEOUT);
    let returned = move_leadership_away(&mut cluster, &t, 3);
    let balanced = cluster.wait_until(
        ISR_TIMEOUT,
        "every partition led by its preferred replica",
        || led_by_preferred(&cluster, returned, &t),
    );
    eprintln!(
        "leadership back on the preferred replicas {balanced:?} after node {returned} rejoined"
    );
}

/// AlterPartitionReassignments (v0) of `topic`-0 to `replicas` through broker `id`: the partition's error.
fn reassign(cluster: &Cluster, id: i32, t: &str, replicas: &[i32]) -> i16 {
    use kafka_protocol::messages::alter_partition_reassignments_request::{
        ReassignablePartition, ReassignableTopic,
    };
    use kafka_protocol::messages::{
        AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ApiKey, BrokerId,
        TopicName,
    };
    use kafka_protocol::protocol::StrBytes;
    let mut p = ReassignablePartition::default();
    p.partition_index = 0;
    p.replicas = Some(replicas.iter().map(|r| BrokerId(*r)).collect());
    let mut topic = ReassignableTopic::default();
    topic.name = TopicName(StrBytes::from_string(t.to_string()));
    topic.partitions = vec![p];
    let mut req = AlterPartitionReassignmentsRequest::default();
    req.timeout_ms = 30_000;
    req.topics = vec![topic];
    let r: AlterPartitionReassignmentsResponse = common::cluster::request(
        cluster.node(id).addr(),
        ApiKey::AlterPartitionReassignments,
        0,
        &req,
        Duration::from_secs(30),
    )
    .unwrap();
    assert_eq!(r.error_code, NONE);
    r.responses[0].partitions[0].error_code
}

#[test]
fn a_partition_moves_to_other_brokers_and_grows_without_losing_records() {
    let mut cluster =
        Cluster::start(replicated(ClusterSpec::combined(3)).with("min.insync.replicas", "1"));
    cluster.wait_for_brokers(3);
    let t = topic("moving");
    let (code, message) = cluster.create_topic(1, &t, 1, 1).unwrap();
    assert_eq!(code, NONE, "{message}");
    cluster.wait_for_isr(1, &t, 1, 1, ISR_TIMEOUT);
    let from = cluster
        .metadata(1)
        .unwrap()
        .partition(&t, 0)
        .unwrap()
        .leader;
    let to = (1..=3).find(|id| *id != from).unwrap();
    let mut all = acked(
        produce_with(
            &cluster.bootstrap_servers(),
            SAFE_PRODUCER,
            &t,
            Some(0),
            0..200,
        ),
        0,
    );

    let asked = Instant::now();
    assert_eq!(reassign(&cluster, to, &t, &[to]), NONE);
    let moved = cluster.wait_until(ISR_TIMEOUT, "the partition on its new broker alone", || {
        cluster.metadata(from).is_ok_and(|v| {
            v.partition(&t, 0)
                .is_some_and(|p| p.replicas == vec![to] && p.isr == vec![to] && p.leader == to)
        })
    });
    eprintln!(
        "{t}-0 moved from node {from} to node {to} {moved:?} after the request ({:?} in all)",
        asked.elapsed()
    );
    let old_dir = cluster.node(from).data_dir.join(format!("{t}-0"));
    cluster.wait_until(ISR_TIMEOUT, "the old replica's data removed", || {
        !old_dir.exists()
    });

    // Grow it to three replicas, the old broker among them again.
    let third = (1..=3).find(|id| *id != from && *id != to).unwrap();
    assert_eq!(reassign(&cluster, from, &t, &[to, third, from]), NONE);
    cluster.wait_for_isr(from, &t, 1, 3, ISR_TIMEOUT);
    all.extend(acked(
        produce_with(
            &cluster.bootstrap_servers(),
            SAFE_PRODUCER,
            &t,
            Some(0),
            200..300,
        ),
        200,
    ));
    // The replicas that joined have everything: read it all through one of them as the leader.
    cluster.kill9(to);
    let read = consume_group(
        &cluster.bootstrap_servers(),
        &t,
        &format!("{t}-g"),
        all.len(),
        CONSUME_TIMEOUT,
    );
    assert_exactly_once(&all, &read);
    assert_eq!(read.len(), all.len());
}

#[test]
fn a_consumer_reads_from_the_in_sync_replica_in_its_rack() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::Message;
    let spec = replicated(ClusterSpec::combined(3))
        .with(
            "replica.selector.class",
            "org.apache.kafka.common.replica.RackAwareReplicaSelector",
        )
        .with("offsets.topic.replication.factor", "1")
        .with_for(1, "broker.rack", "rack-1")
        .with_for(2, "broker.rack", "rack-2")
        .with_for(3, "broker.rack", "rack-3");
    let mut cluster = Cluster::start(spec);
    cluster.wait_for_brokers(3);
    let t = topic("closest");
    let (code, message) = cluster.create_topic(1, &t, 1, 3).unwrap();
    assert_eq!(code, NONE, "{message}");
    cluster.wait_for_isr(1, &t, 1, 3, ISR_TIMEOUT);
    let leader = cluster
        .metadata(1)
        .unwrap()
        .partition(&t, 0)
        .unwrap()
        .leader;
    let near = (1..=3).find(|id| *id != leader).unwrap();
    let all = acked(
        produce_with(
            &cluster.bootstrap_servers(),
            SAFE_PRODUCER,
            &t,
            Some(0),
            0..200,
        ),
        0,
    );
    // __consumer_offsets has one replica per partition (nobody fetches it) and the topic's leader is
    // elsewhere: nothing but this consumer's fetches can make node `near` send records.
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .set("group.id", format!("{t}-reader"))
        .set("enable.auto.commit", "false")
        .set("client.rack", format!("rack-{near}"))
        .create()
        .unwrap();
    let mut list = rdkafka::TopicPartitionList::new();
    list.add_partition_offset(&t, 0, rdkafka::Offset::Beginning)
        .unwrap();
    consumer.assign(&list).unwrap();
    let mut read = vec![];
    let deadline = Instant::now() + CONSUME_TIMEOUT;
    while read.len() < all.len() && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            read.push(Consumed {
                partition: m.partition(),
                offset: m.offset(),
                key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                value: String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
            });
        }
    }
    drop(consumer);
    assert_exactly_once(&all, &read);
    // The follower in the consumer's rack served the records: its totals at shutdown say so.
    assert_eq!(cluster.stop(near), Some(0));
    let totals = cluster
        .log(near)
        .lines()
        .rev()
        .find(|l| l.contains("fetch path totals"))
        .unwrap_or_default()
        .to_string();
    let sendfile_bytes: u64 = totals
        .split_whitespace()
        .find_map(|w| w.strip_prefix("sendfile_bytes="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        sendfile_bytes > 0,
        "node {near} (rack-{near}, a follower) sent no records to the consumer: {totals}"
    );
}

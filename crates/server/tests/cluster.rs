//! Several `ferrite` processes sharing one metadata quorum, healthy: combined nodes (broker and controller)
//! and split roles (controller-only voters, broker-only observers). Topics created through any broker are
//! forwarded to the active controller and appear on every broker; replication-factor-1 partitions are striped
//! over the brokers (a factor above the broker count is refused), and a broker that does not lead a
//! partition refuses its produce and fetch; rdkafka producers and consumer groups find the leaders and the
//! group coordinator by themselves; every node exits cleanly on SIGTERM. Faults (kill -9, SIGSTOP, quorum
//! loss) are in cluster_faults.rs.
#![allow(clippy::unwrap_used)]

mod common;

use common::cluster::{
    consume_group, produce, record_key, record_value, request, Cluster, ClusterSpec, MetadataView,
    INVALID_REPLICATION_FACTOR, NONE, NOT_LEADER_OR_FOLLOWER, REQUEST_TIMEOUT,
};
use common::topic;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::StrBytes;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::time::{Duration, Instant};

/// Time for a consumer group to form and read everything back.
const CONSUME_TIMEOUT: Duration = Duration::from_secs(40);
/// Time for a committed topic to reach every broker.
const PROPAGATION_TIMEOUT: Duration = Duration::from_secs(10);

/// Groups that form at once, and a small `__consumer_offsets` (still striped over the brokers).
fn quick_groups(spec: ClusterSpec) -> ClusterSpec {
    spec.with("group.initial.rebalance.delay.ms", "0")
        .with("offsets.topic.num.partitions", "6")
}

/// Every broker in `ids` lists exactly the brokers `ids`, each at its own client address.
fn assert_brokers_listed(cluster: &Cluster, ids: &[i32]) {
    let expected: BTreeMap<i32, String> = ids
        .iter()
        .map(|id| (*id, cluster.node(*id).addr().to_string()))
        .collect();
    for id in ids {
        let view = cluster.metadata(*id).unwrap();
        assert_eq!(view.brokers, expected, "Metadata of node {id}");
        let described = cluster.describe_cluster(*id).unwrap();
        assert_eq!(described.error_code, NONE);
        assert_eq!(described.brokers, expected, "DescribeCluster of node {id}");
        assert!(
            cluster
                .nodes
                .iter()
                .any(|n| n.id == described.controller_id),
            "DescribeCluster of node {id} names controller {}, not a node",
            described.controller_id
        );
    }
}

/// Records 0..n produced by key (acks=all) are all delivered, over every partition of the topic; returns
/// each key index's (partition, offset).
fn produce_all(cluster: &Cluster, t: &str, n: usize, partitions: i32) -> Vec<(i32, i64)> {
    let started = Instant::now();
    let results = produce(&cluster.bootstrap_servers(), "all", t, None, 0..n);
    let delivered: Vec<(i32, i64)> = results
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.unwrap_or_else(|e| panic!("record {i}: {e}")))
        .collect();
    eprintln!("{n} records produced (acks=all) in {:?}", started.elapsed());
    let used: BTreeSet<i32> = delivered.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        used,
        (0..partitions).collect(),
        "keys spread over every partition"
    );
    // Offsets within each partition are dense from 0: no record lost or written twice.
    let mut by_partition: BTreeMap<i32, BTreeSet<i64>> = BTreeMap::new();
    for (p, o) in &delivered {
        assert!(
            by_partition.entry(*p).or_default().insert(*o),
            "offset {o} of partition {p} twice"
        );
    }
    for (p, offsets) in by_partition {
        assert_eq!(
            offsets,
            (0..offsets.len() as i64).collect(),
            "offsets of partition {p}"
        );
    }
    delivered
}

/// A consumer group reads back exactly what was delivered, each record where it was written.
fn consume_all(cluster: &Cluster, t: &str, group: &str, delivered: &[(i32, i64)]) {
    let started = Instant::now();
    let read = consume_group(
        &cluster.bootstrap_servers(),
        t,
        group,
        delivered.len(),
        CONSUME_TIMEOUT,
    );
    eprintln!(
        "group {group} read {} records in {:?}",
        read.len(),
        started.elapsed()
    );
    let mut seen = BTreeSet::new();
    for r in &read {
        let i: usize = r
            .key
            .strip_prefix("key-")
            .and_then(|i| i.parse().ok())
            .unwrap();
        assert_eq!(r.key, record_key(i));
        assert_eq!(r.value, record_value(i), "value of {}", r.key);
        assert_eq!(
            (r.partition, r.offset),
            delivered[i],
            "where {} was written",
            r.key
        );
        assert!(seen.insert(i), "{} read twice", r.key);
    }
    assert_eq!(read.len(), delivered.len(), "records read back");
}

/// Every broker names the same coordinator for `group`: the leader of the group's `__consumer_offsets`
/// partition, at its own address.
fn assert_coordinator(cluster: &Cluster, group: &str, offsets_partitions: i32) {
    let partition = ferrite_coordinator::offsets::partition_for_group(group, offsets_partitions);
    let view = cluster.metadata(cluster.live_brokers()[0]).unwrap();
    let leader = view
        .partition("__consumer_offsets", partition)
        .unwrap_or_else(|| panic!("__consumer_offsets-{partition} not in {view:?}"))
        .leader;
    for id in cluster.live_brokers() {
        let (code, coordinator, addr) = find_coordinator(cluster, id, group).unwrap();
        assert_eq!(code, NONE, "FindCoordinator through node {id}");
        assert_eq!(coordinator, leader, "coordinator named by node {id}");
        assert_eq!(addr, cluster.node(leader).addr());
    }
    eprintln!("group {group}: coordinator node {leader} (__consumer_offsets-{partition})");
}

/// Produce and Fetch sent to a broker that does not lead the partition are refused with
/// NOT_LEADER_OR_FOLLOWER (clients then refresh their metadata); the leader takes them.
fn assert_only_leaders_serve(cluster: &Cluster, t: &str, view: &MetadataView) {
    for (partition, leader) in view.leaders(t) {
        for id in cluster.live_brokers() {
            let expected = if id == leader {
                NONE
            } else {
                NOT_LEADER_OR_FOLLOWER
            };
            let produced = produce_one(cluster, id, t, partition).unwrap();
            assert_eq!(
                produced, expected,
                "Produce to {t}-{partition} (leader {leader}) through node {id}"
            );
            let fetched = fetch_error(cluster, id, t, partition).unwrap();
            assert_eq!(
                fetched, expected,
                "Fetch of {t}-{partition} (leader {leader}) through node {id}"
            );
        }
    }
}

fn produce_one(cluster: &Cluster, id: i32, topic: &str, partition: i32) -> io::Result<i16> {
    cluster.produce_raw(id, topic, partition, 1)
}

/// Fetch (v12) of `topic`-`partition` from offset 0 through broker `id`, without waiting: the partition's
/// error code.
fn fetch_error(cluster: &Cluster, id: i32, topic: &str, partition: i32) -> io::Result<i16> {
    cluster
        .fetch_raw(id, topic, partition)
        .map(|(code, _)| code)
}

/// FindCoordinator (v3) of a group through broker `id`: (error code, coordinator id, its `host:port`).
fn find_coordinator(cluster: &Cluster, id: i32, group: &str) -> io::Result<(i16, i32, String)> {
    use kafka_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};
    let mut req = FindCoordinatorRequest::default();
    req.key = StrBytes::from_string(group.to_string());
    req.key_type = 0;
    let r: FindCoordinatorResponse = request(
        cluster.node(id).addr(),
        ApiKey::FindCoordinator,
        3,
        &req,
        REQUEST_TIMEOUT,
    )?;
    Ok((r.error_code, r.node_id.0, format!("{}:{}", r.host, r.port)))
}

/// A topic created through a broker that is not the active controller reaches every broker with its six
/// partitions led by all three brokers, and rdkafka writes and reads it through whichever broker leads.
#[test]
fn three_combined_nodes_share_topics_and_serve_clients() {
    let mut cluster = Cluster::start(quick_groups(ClusterSpec::combined(3)));
    let listed = cluster.wait_for_brokers(3);
    eprintln!("every broker listed all 3 brokers {listed:?} after the start lines");
    assert_brokers_listed(&cluster, &[1, 2, 3]);

    let controller = cluster.active_controller();
    let through = *cluster
        .live_brokers()
        .iter()
        .find(|id| **id != controller)
        .unwrap();
    let t = topic("striped");
    let asked = Instant::now();
    cluster.create_topic_ok(through, &t, 6);
    eprintln!(
        "CreateTopics through node {through} (active controller {controller}) answered in {:?}",
        asked.elapsed()
    );
    let visible = cluster.wait_for_topic(&t, 6, PROPAGATION_TIMEOUT);
    eprintln!("{t} visible with led partitions on all 3 brokers {visible:?} after the CreateTopics answer");

    let views: Vec<MetadataView> = [1, 2, 3]
        .iter()
        .map(|id| cluster.metadata(*id).unwrap())
        .collect();
    let leaders = views[0].leaders(&t);
    for view in &views {
        assert_eq!(
            view.leaders(&t),
            leaders,
            "node {} sees other leaders",
            view.asked
        );
    }
    let leading: BTreeSet<i32> = leaders.values().copied().collect();
    assert_eq!(
        leading,
        BTreeSet::from([1, 2, 3]),
        "6 partitions striped over 3 brokers: {leaders:?}"
    );
    for p in views[0].partitions(&t).unwrap() {
        assert_eq!(p.replicas, vec![p.leader], "replication factor 1: {p:?}");
        assert_eq!(p.isr, vec![p.leader], "{p:?}");
        assert!(p.leader_epoch >= 0, "{p:?}");
    }
    assert_only_leaders_serve(&cluster, &t, &views[0]);

    // A replication factor up to the broker count is accepted, one above it refused.
    let (code, message) = cluster.create_topic(through, &topic("rf4"), 1, 4).unwrap();
    assert_eq!(code, INVALID_REPLICATION_FACTOR, "{message}");
    let rf3 = topic("rf3");
    let (code, message) = cluster.create_topic(through, &rf3, 2, 3).unwrap();
    assert_eq!(code, NONE, "{message}");
    cluster.wait_for_topic(&rf3, 2, PROPAGATION_TIMEOUT);
    for p in cluster.metadata(through).unwrap().partitions(&rf3).unwrap() {
        let mut replicas = p.replicas.clone();
        replicas.sort();
        assert_eq!(replicas, vec![1, 2, 3], "{p:?}");
        assert_eq!(p.replicas[0], p.leader, "the first replica leads: {p:?}");
    }

    // A fresh topic for the clients, so that what they read is only what they wrote.
    let t2 = topic("clients");
    cluster.create_topic_ok(through, &t2, 6);
    cluster.wait_for_topic(&t2, 6, PROPAGATION_TIMEOUT);
    let delivered = produce_all(&cluster, &t2, 600, 6);
    let group = format!("{t2}-group");
    consume_all(&cluster, &t2, &group, &delivered);
    assert_coordinator(&cluster, &group, 6);

    // Every node exits cleanly on SIGTERM, the last two after the quorum has lost its majority.
    let mut order: Vec<i32> = cluster
        .live_brokers()
        .into_iter()
        .filter(|id| *id != controller)
        .collect();
    order.push(controller);
    for id in order {
        let started = Instant::now();
        assert_eq!(cluster.stop(id), Some(0), "exit status of node {id}");
        eprintln!(
            "node {id} exited cleanly {:?} after SIGTERM",
            started.elapsed()
        );
    }
}

/// Three controller-only voters and two broker-only observers: clients see only the two brokers, and the
/// quorum lists the controllers as voters and the brokers as observers.
#[test]
fn split_roles_three_controllers_two_brokers() {
    let cluster = Cluster::start(quick_groups(ClusterSpec::split(3, 2)));
    assert_eq!(cluster.live_brokers(), vec![4, 5]);
    let listed = cluster.wait_for_brokers(2);
    eprintln!("both brokers listed everywhere {listed:?} after the start lines");
    assert_brokers_listed(&cluster, &[4, 5]);
    for id in [1, 2, 3] {
        // No client listener: it names its controller listener (not the default client port 9092).
        let node = cluster.node(id);
        assert!(node.client_addr.is_none());
        let controller_addr = node.controller_addr.as_deref().unwrap();
        assert!(
            node.start_line.contains(controller_addr),
            "{}",
            node.start_line
        );
        eprintln!("controller-only node {id}: {}", node.start_line);
    }

    let mut quorum = None;
    cluster.wait_until(
        Duration::from_secs(15),
        "DescribeQuorum lists both brokers as observers",
        || {
            quorum = cluster.quorum(4).ok();
            quorum.as_ref().is_some_and(|q| q.observers.len() == 2)
        },
    );
    let quorum = quorum.unwrap();
    eprintln!("quorum as node 4 reports it: {quorum:?}");
    assert_eq!(quorum.error_code, NONE);
    assert!(
        cluster.controller_ids().contains(&quorum.leader_id),
        "{quorum:?}"
    );
    assert!(quorum.leader_epoch >= 1, "{quorum:?}");
    let voters: BTreeSet<i32> = quorum.voters.keys().copied().collect();
    let observers: BTreeSet<i32> = quorum.observers.keys().copied().collect();
    assert_eq!(voters, BTreeSet::from([1, 2, 3]));
    assert_eq!(observers, BTreeSet::from([4, 5]));
    assert!(
        quorum.high_watermark > 0,
        "the brokers' registrations are committed: {quorum:?}"
    );
    let leader_end = quorum.voters[&quorum.leader_id];
    assert!(
        leader_end >= quorum.high_watermark,
        "leader's log end below the high watermark: {quorum:?}"
    );
    assert_eq!(
        cluster.quorum(5).unwrap().leader_id,
        quorum.leader_id,
        "both brokers follow one leader"
    );

    let t = topic("split");
    cluster.create_topic_ok(5, &t, 4);
    let visible = cluster.wait_for_topic(&t, 4, PROPAGATION_TIMEOUT);
    eprintln!("{t} visible on both brokers {visible:?} after the CreateTopics answer");
    let leaders = cluster.metadata(4).unwrap().leaders(&t);
    let leading: BTreeSet<i32> = leaders.values().copied().collect();
    assert_eq!(
        leading,
        BTreeSet::from([4, 5]),
        "partitions led by brokers only: {leaders:?}"
    );

    let delivered = produce_all(&cluster, &t, 200, 4);
    let group = format!("{t}-group");
    consume_all(&cluster, &t, &group, &delivered);
    assert_coordinator(&cluster, &group, 6);
}

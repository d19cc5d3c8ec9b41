//! Faults in a cluster of three combined `ferrite` nodes: the active controller killed (another is elected,
//! committed metadata survives, the old one rejoins), a broker that stops heartbeating (fenced, its leaders
//! gone, then back with a higher leader epoch), and two of three voters gone (admin requests fail with a
//! retriable error while partitions with a live leader keep taking writes).
#![allow(clippy::unwrap_used)]

mod common;

use common::cluster::{
    produce, Cluster, ClusterSpec, LEADER_NOT_AVAILABLE, NONE, NOT_CONTROLLER, REQUEST_TIMED_OUT,
    TOPIC_ALREADY_EXISTS,
};
use common::topic;
use std::time::{Duration, Instant};

/// Time for a committed topic to reach every broker.
const PROPAGATION_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for the survivors to elect a controller and answer a CreateTopics.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);

/// A cluster of three combined nodes with a 3-partition topic whose partitions are led by all three.
fn three_nodes_with_topic(spec: ClusterSpec, t: &str) -> Cluster {
    let cluster = Cluster::start(spec);
    cluster.wait_for_brokers(3);
    cluster.create_topic_ok(1, t, 3);
    cluster.wait_for_topic(t, 3, PROPAGATION_TIMEOUT);
    let leaders = cluster.metadata(1).unwrap().leaders(t);
    let mut leading: Vec<i32> = leaders.values().copied().collect();
    leading.sort();
    assert_eq!(
        leading,
        vec![1, 2, 3],
        "3 partitions striped over 3 brokers: {leaders:?}"
    );
    cluster
}

/// The partition of `t` that broker `id` leads.
fn led_by(cluster: &Cluster, t: &str, id: i32) -> i32 {
    let leaders = cluster.metadata(id).unwrap().leaders(t);
    let led = leaders.iter().find(|(_, l)| **l == id).map(|(p, _)| *p);
    led.unwrap_or_else(|| panic!("node {id} leads no partition of {t}: {leaders:?}"))
}

#[test]
fn killing_the_active_controller_elects_another_and_keeps_committed_metadata() {
    let a = topic("before-failover");
    let mut cluster = three_nodes_with_topic(ClusterSpec::combined(3), &a);
    let old = cluster.active_controller();
    let before = cluster.quorum(old).unwrap();
    eprintln!("quorum before the kill: {before:?}");

    cluster.kill9(old);
    let killed_at = Instant::now();
    let survivors = cluster.live_brokers();
    let b = topic("after-failover");
    let mut attempts: Vec<String> = vec![];
    let took = cluster.wait_until(
        FAILOVER_TIMEOUT,
        "a CreateTopics through a survivor succeeds",
        || {
            let id = survivors[attempts.len() % survivors.len()];
            let result = cluster.create_topic(id, &b, 3, 1);
            let done = match &result {
                Ok((NONE, _)) => true,
                // An earlier attempt that timed out on our side may have been committed after all.
                Ok((TOPIC_ALREADY_EXISTS, _)) if !attempts.is_empty() => true,
                Ok((REQUEST_TIMED_OUT | NOT_CONTROLLER, _)) | Err(_) => false,
                Ok(other) => panic!("CreateTopics through node {id} during failover: {other:?}"),
            };
            attempts.push(format!("{:?} node {id}: {result:?}", killed_at.elapsed()));
            done
        },
    );
    eprintln!(
        "controller {old} killed; CreateTopics succeeded {took:?} later, after {} attempts:\n  {}",
        attempts.len(),
        attempts.join("\n  ")
    );

    let new = cluster.active_controller();
    let after = cluster.quorum(survivors[0]).unwrap();
    eprintln!("quorum after the failover: {after:?}");
    assert_ne!(new, old, "a killed node is no leader");
    assert!(
        after.leader_epoch > before.leader_epoch,
        "a new election: {before:?} -> {after:?}"
    );
    assert!(
        after.high_watermark > before.high_watermark,
        "{before:?} -> {after:?}"
    );
    for id in &survivors {
        cluster.wait_until(
            PROPAGATION_TIMEOUT,
            &format!("node {id} lists {a} and {b}"),
            || {
                cluster.metadata(*id).is_ok_and(|m| {
                    m.partitions(&a).is_some_and(|p| p.len() == 3)
                        && m.partitions(&b).is_some_and(|p| p.len() == 3)
                })
            },
        );
    }

    let restarted_at = Instant::now();
    cluster.restart(old);
    eprintln!(
        "node {old} printed its start line {:?} after the restart",
        restarted_at.elapsed()
    );
    let mut quorum = None;
    let what = format!("DescribeQuorum shows voter {old} caught up with the high watermark");
    cluster.wait_until(FAILOVER_TIMEOUT, &what, || {
        quorum = cluster.quorum(survivors[0]).ok();
        quorum.as_ref().is_some_and(|q| {
            q.high_watermark >= after.high_watermark
                && q.voters
                    .get(&old)
                    .is_some_and(|end| *end >= q.high_watermark)
        })
    });
    eprintln!(
        "node {old} caught up {:?} after the restart: {quorum:?}",
        restarted_at.elapsed()
    );
    let what = format!("restarted node {old} lists {a} and {b}");
    cluster.wait_until(PROPAGATION_TIMEOUT, &what, || {
        cluster
            .metadata(old)
            .is_ok_and(|m| m.partitions(&a).is_some() && m.partitions(&b).is_some())
    });
    let listed = cluster.wait_for_brokers(3);
    eprintln!("all 3 brokers listed everywhere {listed:?} later");
}

#[test]
fn a_broker_that_stops_heartbeating_is_fenced_and_comes_back() {
    let spec = ClusterSpec::combined(3)
        .with("broker.session.timeout.ms", "3000")
        .with("broker.heartbeat.interval.ms", "500");
    let t = topic("fencing");
    let mut cluster = three_nodes_with_topic(spec, &t);
    let controller = cluster.active_controller();
    let victim = *cluster
        .live_brokers()
        .iter()
        .find(|id| **id != controller)
        .unwrap();
    let partition = led_by(&cluster, &t, victim);
    let before = cluster.metadata(controller).unwrap();
    let old_epoch = before.partition(&t, partition).unwrap().leader_epoch;
    let others: Vec<i32> = cluster
        .live_brokers()
        .into_iter()
        .filter(|id| *id != victim)
        .collect();

    cluster.pause(victim);
    let what = format!("node {victim} fenced: unlisted, {t}-{partition} without a leader");
    let fenced = cluster.wait_until(Duration::from_secs(15), &what, || {
        others.iter().all(|id| {
            cluster.metadata(*id).is_ok_and(|m| {
                !m.brokers.contains_key(&victim)
                    && m.partition(&t, partition)
                        .is_some_and(|p| p.leader == -1 || p.error_code == LEADER_NOT_AVAILABLE)
            })
        })
    });
    eprintln!("node {victim} (paused) fenced {fenced:?} after SIGSTOP (session timeout 3 s)");
    // It heartbeat at most 500 ms before the pause, so it is fenced no sooner than ~2.5 s after it.
    assert!(
        fenced >= Duration::from_secs(2),
        "fenced before its session timed out: {fenced:?}"
    );
    for id in &others {
        let view = cluster.metadata(*id).unwrap();
        for (p, leader) in before.leaders(&t) {
            if p != partition {
                assert_eq!(
                    view.leaders(&t)[&p],
                    leader,
                    "{t}-{p} keeps its live leader, as node {id} sees it"
                );
            }
        }
        assert_eq!(view.brokers.len(), 2, "node {id}: {:?}", view.brokers);
    }

    cluster.resume(victim);
    let what = format!("node {victim} listed again and leading {t}-{partition} with a newer epoch");
    let back = cluster.wait_until(Duration::from_secs(15), &what, || {
        cluster.live_brokers().iter().all(|id| {
            cluster.metadata(*id).is_ok_and(|m| {
                m.brokers.contains_key(&victim)
                    && m.partition(&t, partition).is_some_and(|p| {
                        p.error_code == NONE && p.leader == victim && p.leader_epoch > old_epoch
                    })
            })
        })
    });
    let epoch = cluster
        .metadata(victim)
        .unwrap()
        .partition(&t, partition)
        .unwrap()
        .leader_epoch;
    eprintln!("node {victim} back {back:?} after SIGCONT; {t}-{partition} leader epoch {old_epoch} -> {epoch}");
    let produced = produce(
        &cluster.bootstrap_servers(),
        "all",
        &t,
        Some(partition),
        0..10,
    );
    assert!(
        produced.iter().all(|r| r.is_ok()),
        "produce to the unfenced leader: {produced:?}"
    );
}

/// Kills two of three voters, leaving `survivor`: a CreateTopics through it fails with a retriable error
/// within the server's timeout and creates nothing, while its own partition keeps taking acks=1 writes; with
/// one voter back, topics can be created again.
fn quorum_loss(survivor_is_leader: bool) {
    let t = topic("quorum-loss");
    let mut cluster = three_nodes_with_topic(ClusterSpec::combined(3), &t);
    let controller = cluster.active_controller();
    let survivor = if survivor_is_leader {
        controller
    } else {
        *cluster
            .live_brokers()
            .iter()
            .find(|id| **id != controller)
            .unwrap()
    };
    let partition = led_by(&cluster, &t, survivor);
    let bootstrap = cluster.node(survivor).addr().to_string();
    let produce_ok = |keys: std::ops::Range<usize>| {
        let results = produce(&bootstrap, "1", &t, Some(partition), keys);
        assert!(
            results
                .iter()
                .all(|r| r.as_ref().is_ok_and(|(p, _)| *p == partition)),
            "{results:?}"
        );
    };
    produce_ok(0..10);
    let dead: Vec<i32> = cluster
        .live_brokers()
        .into_iter()
        .filter(|id| *id != survivor)
        .collect();
    for id in &dead {
        cluster.kill9(*id);
    }
    eprintln!(
        "killed nodes {dead:?}; node {survivor} (leader before: {survivor_is_leader}) is alone"
    );

    let lost = topic("no-majority");
    let asked = Instant::now();
    let result = cluster.create_topic(survivor, &lost, 1, 1);
    let took = asked.elapsed();
    eprintln!("CreateTopics without a majority answered {result:?} after {took:?}");
    match result {
        Ok((REQUEST_TIMED_OUT | NOT_CONTROLLER, _)) => {}
        Ok((NONE, _)) => panic!("a topic was created without a majority of voters"),
        Ok(other) => panic!("not a retriable error: {other:?}"),
        Err(e) => panic!(
            "no answer within {:?}: {e}",
            common::cluster::CREATE_TOPIC_TIMEOUT
        ),
    }
    assert!(took < Duration::from_secs(40), "the error took {took:?}");
    let view = cluster.metadata(survivor).unwrap();
    assert!(
        !view.topics.contains_key(&lost),
        "{lost} listed without a majority: {view:?}"
    );
    let started = Instant::now();
    produce_ok(10..20);
    eprintln!(
        "acks=1 produce to {t}-{partition} on node {survivor} still works: {:?}",
        started.elapsed()
    );

    cluster.restart(dead[0]);
    let back = topic("majority-again");
    let took = cluster.wait_until(
        FAILOVER_TIMEOUT,
        "a CreateTopics succeeds with a majority again",
        || {
            matches!(
                cluster.create_topic(survivor, &back, 1, 1),
                Ok((NONE | TOPIC_ALREADY_EXISTS, _))
            )
        },
    );
    eprintln!(
        "node {} restarted: topics can be created again after {took:?}",
        dead[0]
    );
}

#[test]
fn quorum_loss_fails_admin_requests_but_not_produce() {
    quorum_loss(true);
}

#[test]
fn quorum_loss_seen_from_a_follower_fails_admin_requests_but_not_produce() {
    quorum_loss(false);
}

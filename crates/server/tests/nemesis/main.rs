//! The fault campaign: three brokers, each in its own network namespace with its own address, under an
//! idempotent acks=all producer (replication factor 3, min.insync.replicas 2, 3 partitions, unique values)
//! and two consumers (one in a group, one assigned every partition), while a seeded random schedule kills
//! leaders and other brokers (kill -9), pauses them (SIGSTOP), cuts a leader or the active controller off
//! from the other nodes but not from the clients, and restarts every broker in turn (SIGTERM). The checker
//! (checker.rs) then holds the run to Kafka's promise, per partition: every acknowledged record present
//! exactly once, in order; nothing a consumer read later disappeared or changed.
//!
//! CI runs a short schedule; a longer one: `NEMESIS_SECS=600 cargo nextest run -p ferrite-server --test
//! nemesis --no-capture` (add `NEMESIS_SEED=<n>` to replay a schedule). Needs root (network namespaces).
#![allow(clippy::unwrap_used)]

mod checker;
#[path = "../common/mod.rs"]
mod common;
mod faults;
mod workload;

use common::cluster::{Cluster, ClusterSpec, NONE};
use common::topic;
use std::time::{Duration, Instant};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn acknowledged_records_survive_a_random_schedule_of_faults() {
    let secs = env_u64("NEMESIS_SECS").unwrap_or(100);
    let seed = env_u64("NEMESIS_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    eprintln!("nemesis: seed {seed}, {secs} s of faults (replay with NEMESIS_SEED={seed})");
    let spec = ClusterSpec::combined(3)
        .in_namespaces()
        .with("broker.session.timeout.ms", "3000")
        .with("broker.heartbeat.interval.ms", "500")
        .with("replica.lag.time.max.ms", "4000")
        .with("replica.fetch.backoff.ms", "200")
        .with("default.replication.factor", "3")
        .with("min.insync.replicas", "2")
        .with("group.initial.rebalance.delay.ms", "0")
        .with("offsets.topic.num.partitions", "3");
    let mut cluster = Cluster::start(spec);
    cluster.wait_for_brokers(3);
    let t = topic("nemesis");
    let partitions = 3;
    let (code, message) = cluster.create_topic(1, &t, partitions, 3).unwrap();
    assert_eq!(code, NONE, "{message}");
    cluster.wait_for_isr(1, &t, partitions as usize, 3, Duration::from_secs(30));

    let bootstrap = cluster.bootstrap_servers();
    let load = workload::Workload::start(&bootstrap, &t, partitions);
    std::thread::sleep(Duration::from_secs(3));
    let mut rng = faults::Rng::new(seed);
    let began = Instant::now();
    let schedule = faults::run(
        &mut cluster,
        &mut rng,
        Duration::from_secs(secs),
        &t,
        partitions,
    );
    std::thread::sleep(Duration::from_secs(3));
    let outcome = load.stop();
    eprintln!("faults over after {:?}; workload stopped", began.elapsed());

    let log = workload::read_log(&cluster.bootstrap_servers(), &t, partitions);
    let verdict = checker::check(&outcome.acks, &outcome.reads, &log);
    let ack_times: Vec<Instant> = outcome.acks.iter().map(|a| a.at).collect();
    let unavailable = faults::unavailability(&schedule, &ack_times);

    eprintln!("===== nemesis report (seed {seed}) =====");
    eprintln!(
        "records sent {}, acknowledged {}, not acknowledged {} (client gave up), in the final log {}",
        outcome.sent,
        verdict.acknowledged,
        outcome.failed.len(),
        log.len()
    );
    for (name, reads) in &outcome.reads {
        eprintln!("{name}: {} records read", reads.len());
    }
    for f in &schedule {
        eprintln!(
            "  {:?} on node {}: at {:?}, held {:?}, recovered {:?} after healing",
            f.kind,
            f.target,
            f.started - began,
            f.healed - f.started,
            f.recovered - f.healed
        );
    }
    for (kind, (count, longest)) in &unavailable {
        eprintln!(
            "{kind:?}: {count} injected, longest time without an acknowledgement {longest:?}"
        );
    }
    eprintln!(
        "lost {}, moved {}, duplicates {}, reordered {}, reads that later changed {} (of {} checked)",
        verdict.lost.len(),
        verdict.moved.len(),
        verdict.duplicates.len(),
        verdict.reordered.len(),
        verdict.unstable_reads.len(),
        verdict.reads_checked
    );
    assert!(!schedule.is_empty(), "no fault was injected");
    assert!(verdict.acknowledged > 0, "nothing was acknowledged");
    assert!(
        verdict.holds(),
        "promises broken (seed {seed}): lost {:?}\nmoved {:?}\nduplicates {:?}\nreordered {:?}\nunstable reads {:?}",
        &verdict.lost[..verdict.lost.len().min(10)],
        &verdict.moved[..verdict.moved.len().min(10)],
        &verdict.duplicates[..verdict.duplicates.len().min(10)],
        &verdict.reordered[..verdict.reordered.len().min(10)],
        &verdict.unstable_reads[..verdict.unstable_reads.len().min(10)],
    );
}

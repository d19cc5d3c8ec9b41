//! The nemesis: a seeded random schedule of faults on the cluster's real processes and network, each held
//! for a while, healed, and followed by a wait until the cluster has recovered (every partition led, every
//! ISR whole again).

use super::common::cluster::Cluster;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    /// kill -9 of a partition's leader, restarted after a while.
    KillLeader,
    /// kill -9 of any broker.
    KillAny,
    /// SIGSTOP of any broker, SIGCONT after a while.
    Pause,
    /// A partition's leader cut off from the other brokers (not from the clients).
    IsolateLeader,
    /// The active controller cut off from the other nodes (not from the clients).
    IsolateController,
    /// SIGTERM (controlled shutdown) and restart of every broker in turn.
    RollingRestart,
}

const KINDS: [FaultKind; 6] = [
    FaultKind::KillLeader,
    FaultKind::KillAny,
    FaultKind::Pause,
    FaultKind::IsolateLeader,
    FaultKind::IsolateController,
    FaultKind::RollingRestart,
];

/// One fault as it happened.
#[derive(Debug, Clone)]
pub struct Fault {
    pub kind: FaultKind,
    pub target: i32,
    pub started: Instant,
    pub healed: Instant,
    pub recovered: Instant,
}

/// splitmix64: a seeded generator, so a failing schedule can be run again with its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from + 1))
    }
}

/// The leader of `topic`-`partition` as some live broker sees it.
fn leader_of(cluster: &Cluster, topic: &str, partition: i32) -> Option<i32> {
    cluster.live_brokers().into_iter().find_map(|id| {
        let view = cluster.metadata(id).ok()?;
        let leader = view.partition(topic, partition)?.leader;
        (leader >= 0).then_some(leader)
    })
}

/// Runs faults until `duration` has passed; returns them in order.
pub fn run(
    cluster: &mut Cluster,
    rng: &mut Rng,
    duration: Duration,
    topic: &str,
    partitions: i32,
) -> Vec<Fault> {
    let began = Instant::now();
    let mut faults = vec![];
    while began.elapsed() < duration {
        let kind = KINDS[rng.below(KINDS.len() as u64) as usize];
        let any = 1 + rng.below(3) as i32;
        let partition = rng.below(partitions as u64) as i32;
        let started = Instant::now();
        let target = match kind {
            FaultKind::KillLeader | FaultKind::KillAny => {
                let id = if kind == FaultKind::KillLeader {
                    leader_of(cluster, topic, partition).unwrap_or(any)
                } else {
                    any
                };
                cluster.kill9(id);
                std::thread::sleep(rng.millis(1000, 6000));
                cluster.restart(id);
                id
            }
            FaultKind::Pause => {
                cluster.pause(any);
                std::thread::sleep(rng.millis(1000, 6000));
                cluster.resume(any);
                any
            }
            FaultKind::IsolateLeader | FaultKind::IsolateController => {
                let id = if kind == FaultKind::IsolateLeader {
                    leader_of(cluster, topic, partition).unwrap_or(any)
                } else {
                    cluster.active_controller()
                };
                let others: Vec<i32> = (1..=3).filter(|o| *o != id).collect();
                cluster.partition(&[id], &others);
                std::thread::sleep(rng.millis(2000, 8000));
                cluster.heal();
                id
            }
            FaultKind::RollingRestart => {
                for id in 1..=3 {
                    let status = cluster.stop(id);
                    assert_eq!(status, Some(0), "node {id} exit status after SIGTERM");
                    cluster.restart(id);
                    cluster.wait_for_isr(
                        id,
                        topic,
                        partitions as usize,
                        3,
                        Duration::from_secs(60),
                    );
                }
                0
            }
        };
        let healed = Instant::now();
        let any_live = cluster.live_brokers()[0];
        cluster.wait_for_isr(
            any_live,
            topic,
            partitions as usize,
            3,
            Duration::from_secs(90),
        );
        let recovered = Instant::now();
        eprintln!(
            "fault {kind:?} on node {target}: held {:?}, recovered {:?} after healing",
            healed - started,
            recovered - healed
        );
        faults.push(Fault {
            kind,
            target,
            started,
            healed,
            recovered,
        });
        std::thread::sleep(rng.millis(500, 2000));
    }
    faults
}

/// Per fault kind: how many, and the longest time without any acknowledgement while one was on (from its
/// start until its recovery).
pub fn unavailability(
    faults: &[Fault],
    ack_times: &[Instant],
) -> BTreeMap<FaultKind, (usize, Duration)> {
    let mut sorted = ack_times.to_vec();
    sorted.sort();
    let mut out: BTreeMap<FaultKind, (usize, Duration)> = BTreeMap::new();
    for f in faults {
        let mut longest = Duration::ZERO;
        let mut last = f.started;
        for t in sorted.iter().filter(|t| **t > f.started) {
            longest = longest.max(t.saturating_duration_since(last));
            last = *t;
            if *t > f.recovered {
                break;
            }
        }
        let entry = out.entry(f.kind).or_default();
        entry.0 += 1;
        entry.1 = entry.1.max(longest);
    }
    out
}

//! A seeded simulation of one partition replicated on three brokers, driving the real replication code
//! (`ferrite_replication::Partition` over real logs, the fetcher's truncation rule, the controller's ISR and
//! election decisions) through crashes, pauses, fencing, lost and reordered messages, and checking the
//! safety properties of `properties.rs` after every event.
//!
//! ```text
//!   mod.rs        the test: many seeds, the summary line, the check that the runs exercised failover
//!   scheduler.rs  the seeded choice of the next event (storm and calm windows)
//!   world.rs      brokers + controller + network + producer + clock; runs events, heals, checks
//!   replica.rs    one broker: its Partition, the Fetch / OffsetForLeaderEpoch handlers, crash and restart
//!   fetcher.rs    the follower's replica fetchers, as replica_fetcher/fetcher.rs runs them
//!   controller.rs the metadata image and the real controller decisions
//!   client.rs     the acks=all producer
//!   network.rs    the messages and the queue they wait in
//!   properties.rs the four properties
//!   records.rs    encoding the producer's records, decoding a real log
//!   rng.rs, stats.rs
//! ```
//! A failing seed replays alone: `MODEL_SEED=<seed> cargo nextest run -p ferrite-server --lib replication_model`.
//! `MODEL_SEEDS` sets how many seeds a run covers.

#![allow(clippy::unwrap_used)]

mod client;
mod controller;
mod fetcher;
mod network;
mod properties;
mod records;
mod replica;
mod rng;
mod scheduler;
mod stats;
mod world;

use scheduler::Scheduler;
use stats::Stats;
use world::World;

/// Seeds a run covers by default.
const SEEDS: u64 = 300;
/// Steps of faults (storm and calm windows) before healing.
const FAULT_STEPS: u64 = 400;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// One seeded run: the faults, the healing, the final checks. Returns what it did, or why it failed.
fn run_seed(seed: u64) -> Result<Stats, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut world = World::new(dir.path(), seed);
    let mut scheduler = Scheduler::new();
    let fail = |e: String| format!("seed {seed}, {e}");
    for step in 0..FAULT_STEPS {
        let situation = world.situation();
        let event = scheduler.next(step, &mut world.rng, &situation);
        world.run(event).map_err(fail)?;
    }
    world.heal().map_err(fail)?;
    world.check_healed().map_err(fail)?;
    Ok(world.stats)
}

#[test]
fn replication_keeps_its_safety_properties_over_seeded_runs() {
    let started = std::time::Instant::now();
    let seeds: Vec<u64> = match env_u64("MODEL_SEED") {
        Some(seed) => vec![seed],
        None => (0..env_u64("MODEL_SEEDS").unwrap_or(SEEDS)).collect(),
    };
    let mut total = Stats::default();
    for seed in &seeds {
        match run_seed(*seed) {
            Ok(stats) => total += stats,
            Err(e) => panic!("{e}"),
        }
    }
    eprintln!(
        "replication model: {total} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if seeds.len() >= 100 {
        // A safety check over runs that never fail over or cut a tail proves nothing.
        assert!(
            total.acknowledged > 0,
            "no record was acknowledged: {total}"
        );
        assert!(total.leader_changes > 0, "no leader changed: {total}");
        assert!(
            total.truncated_records > 0,
            "no truncation removed records: {total}"
        );
        assert!(
            total.crashes > 0 && total.fencings > 0,
            "no crash or fencing: {total}"
        );
        assert!(
            total.isr_shrinks > 0 && total.isr_expands > 0,
            "the ISR never moved: {total}"
        );
        assert!(total.messages_dropped > 0, "no message was lost: {total}");
    }
}

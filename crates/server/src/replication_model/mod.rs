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
//! `MODEL_SEEDS` sets how many seeds a run covers; `MODEL_KEEP_GOING` runs every seed even after a failure
//! and tallies the failures by what they broke (for checking that a planted bug is caught, and how often).

#![allow(clippy::unwrap_used)]

mod client;
mod controller;
mod fetcher;
mod network;
mod properties;
mod records;
mod replica;
mod rng;
#[cfg(test)]
mod scenarios;
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

/// A directory for one run's logs: in memory (`/dev/shm`) where there is one. Syncs cost nothing there, and
/// the model needs none: a crash is a kill -9, and the page cache keeps what was written.
fn log_dir() -> std::io::Result<tempfile::TempDir> {
    let builder = tempfile::Builder::new()
        .prefix("replication-model-")
        .clone();
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = builder.tempdir_in(shm) {
            return Ok(dir);
        }
    }
    builder.tempdir()
}

/// One seeded run: the faults, the healing, the final checks. Returns what it did, or why it failed.
fn run_seed(seed: u64) -> Result<Stats, String> {
    let dir = log_dir().map_err(|e| e.to_string())?;
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

/// What a failure broke: "property N", or the first words of its message.
fn failure_kind(failure: &str) -> String {
    let first_line = failure.lines().next().unwrap_or_default();
    let message = first_line
        .split(": ")
        .skip(1)
        .collect::<Vec<_>>()
        .join(": ");
    match message.find("property ") {
        Some(at) => message[at..].chars().take("property N".len()).collect(),
        None => message
            .split_whitespace()
            .take(6)
            .collect::<Vec<_>>()
            .join(" "),
    }
}

#[test]
fn replication_keeps_its_safety_properties_over_seeded_runs() {
    let started = std::time::Instant::now();
    let seeds: Vec<u64> = match env_u64("MODEL_SEED") {
        Some(seed) => vec![seed],
        None => (0..env_u64("MODEL_SEEDS").unwrap_or(SEEDS)).collect(),
    };
    let keep_going = std::env::var_os("MODEL_KEEP_GOING").is_some();
    let mut total = Stats::default();
    let mut failures: Vec<String> = vec![];
    for seed in &seeds {
        match run_seed(*seed) {
            Ok(stats) => total += stats,
            Err(e) if keep_going => failures.push(e),
            Err(e) => panic!("{e}"),
        }
    }
    if let Some(first) = failures.first() {
        let mut tally: std::collections::BTreeMap<String, usize> = Default::default();
        for f in &failures {
            *tally.entry(failure_kind(f)).or_default() += 1;
        }
        let lines: Vec<&str> = failures.iter().filter_map(|f| f.lines().next()).collect();
        panic!(
            "{} of {} seeds failed: {tally:?}\n{}\nfirst failure: {first}",
            failures.len(),
            seeds.len(),
            lines.join("\n")
        );
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

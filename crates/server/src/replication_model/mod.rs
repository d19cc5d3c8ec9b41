//! A seeded simulation of one partition replicated on three brokers, driving the real replication code
//! (`ferrite_replication::Partition` over real logs, the fetcher's truncation rule, the controller's ISR and
//! election decisions) through crashes, pauses, fencing, lost and reordered messages, and checking the
//! safety properties of `properties.rs` after every event.
//!
//! ```text
//!   mod.rs        the test: many seeds, the summary line, the check that the runs exercised failover
//!   scheduler.rs  the seeded choice of the next event (storm and calm windows)
//!   world.rs      brokers + controller + network + producer + clock; runs events and checks after each
//!   delivery.rs   what each message does where it arrives (handlers, fetchers, metadata, controller)
//!   heal.rs       the end of a run: faults stop, the cluster heals, the final checks
//!   trace.rs      failure reports
//!   replica.rs    one broker: its Partition, the Fetch / OffsetForLeaderEpoch handlers, crash and restart
//!   fetcher.rs    the follower's replica fetchers, as replica_fetcher/fetcher.rs runs them
//!   controller.rs the metadata image and the real controller decisions
//!   client.rs     the acks=all producer
//!   network.rs    the messages and the queue they wait in
//!   properties.rs the four properties
//!   records.rs    encoding the producer's records, decoding a real log
//!   rng.rs, stats.rs
//! ```
//! Every run is a pure function of its seed. Knobs, all environment variables:
//!
//! ```text
//!   MODEL_SEED=n          replay seed n alone (a failure names its seed and step)
//!   MODEL_SEEDS, MODEL_STEPS   how many seeds (default 2000) and fault steps per seed (default 400)
//!   MODEL_KEEP_GOING      run every seed, then tally the failures by the property they broke (for checking
//!                         that a planted bug is caught, and how often)
//!   MODEL_TRACE=n, MODEL_TRACE_STATES    keep the last n events in a failure report (default 60); note every
//!                         replica's role, log end and high watermark, and every delivery, after each event
//!   MODEL_TRACE_SCENARIO  print the end state of each scripted scenario
//!   MODEL_SPARE_ALTER     deliver every AlterPartition and its answer exactly once (by default they are lost,
//!                         retried and timed out like other messages; see world.rs)
//!   MODEL_TMPDIR          put the logs there instead of /dev/shm
//! ```

#![allow(clippy::unwrap_used)]

mod client;
mod controller;
mod delivery;
mod fetcher;
mod heal;
mod network;
mod properties;
mod records;
mod replica;
mod rng;
mod scenarios;
mod scheduler;
mod stats;
mod trace;
mod world;

use scheduler::Scheduler;
use stats::Stats;
use world::World;

/// Seeds a run covers by default.
const SEEDS: u64 = 2000;
/// Steps of faults (storm and calm windows) before healing.
const FAULT_STEPS: u64 = 400;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// A directory for one run's logs: under `MODEL_TMPDIR` if set, else in memory (`/dev/shm`) where there is
/// one. Syncs cost nothing there, and the model needs none: a crash is a kill -9, and the page cache keeps
/// what was written.
fn log_dir() -> std::io::Result<tempfile::TempDir> {
    let mut builder = tempfile::Builder::new();
    builder.prefix("replication-model-");
    if let Some(dir) = std::env::var_os("MODEL_TMPDIR") {
        return builder.tempdir_in(dir);
    }
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
    let steps = env_u64("MODEL_STEPS").unwrap_or(FAULT_STEPS);
    for step in 0..steps {
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
        assert!(
            total.messages_dropped > 0 && total.messages_duplicated > 0,
            "no message was lost or retried: {total}"
        );
        assert!(
            total.stalls > 0 && total.slow_links > 0,
            "no stall or slow link: {total}"
        );
    }
}

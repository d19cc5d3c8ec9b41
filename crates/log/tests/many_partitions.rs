//! Opening many partitions, as a broker does at start-up. Reports the time; asserts only correctness.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ferrite_log::file_names::partition_dir;
use ferrite_log::{LogConfig, LogOptions, PartitionLog};
use std::time::Instant;

const PARTITIONS: i32 = 2000;

#[test]
fn open_two_thousand_partitions() {
    let data = tempfile::tempdir().unwrap();
    let now = ferrite_log::Clock::now_ms(&ferrite_log::SystemClock);
    let created = Instant::now();
    // Creation is fsync-bound (directory, segment, checkpoints); overlap those waits on several threads.
    std::thread::scope(|scope| {
        for worker in 0..8 {
            let dir = data.path();
            scope.spawn(move || {
                for p in (worker..PARTITIONS).step_by(8) {
                    let log = PartitionLog::open(
                        &partition_dir(dir, "many", p),
                        LogConfig::default(),
                        LogOptions::default(),
                    )
                    .unwrap();
                    log.append(tagged_batch(0, 3, now, 100), CLIENT).unwrap();
                    log.close().unwrap();
                }
            });
        }
    });
    let create_time = created.elapsed();

    let started = Instant::now();
    let logs: Vec<PartitionLog> = (0..PARTITIONS)
        .map(|p| {
            PartitionLog::open(
                &partition_dir(data.path(), "many", p),
                LogConfig::default(),
                LogOptions::default(),
            )
            .unwrap()
        })
        .collect();
    let open_time = started.elapsed();
    for log in &logs {
        assert!(log.recovery_report().clean_shutdown);
        assert_eq!(log.recovery_report().segments_recovered, 0);
        assert_eq!(log.log_end_offset(), 3);
    }
    println!(
        "opened {PARTITIONS} cleanly closed partitions in {:?} ({:.0} µs each); creating them took {:?}",
        open_time,
        open_time.as_micros() as f64 / f64::from(PARTITIONS),
        create_time
    );
}

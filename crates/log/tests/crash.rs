//! Durability under `kill -9`, with real processes.
//!
//! The test binary runs itself as the child (the ignored `crash_child` test, run with `--ignored` and
//! `FERRITE_CRASH_DIR` set): it opens the log in durable mode and appends from several threads, printing one line per
//! acknowledged batch. The parent SIGKILLs it at a random moment, reopens the log, and checks that every
//! acknowledged batch is present at its offsets with its exact records and a valid CRC, that the log is
//! contiguous, and that nothing lies past the recovered end. Then the next child continues the same log.
//!
//! SIGKILL kills the process, not the machine: the page cache survives, so this proves the recovery path and
//! that acknowledgements follow durability in the code's ordering, not the disk's behaviour on power loss.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::BytesMut;
use common::*;
use ferrite_log::batch::BATCH_HEADER_LEN;
use ferrite_log::batch_builder::{encode_batch, RecordSpec};
use ferrite_log::{FlushPolicy, LogConfig, LogOptions, PartitionLog};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "FERRITE_CRASH_DIR";
const THREADS: usize = 4;
const KILLS: usize = 40;

fn config() -> LogConfig {
    LogConfig {
        flush: FlushPolicy::Durable,
        segment_bytes: 256 * 1024,
        index_interval_bytes: 1024,
        ..LogConfig::default()
    }
}

fn record_value(run: u64, thread: usize, seq: u64, i: usize) -> Vec<u8> {
    let mut v = format!("run{run}-t{thread}-s{seq}-r{i}-").into_bytes();
    v.resize(v.len() + (seq as usize * 37 + i * 11) % 400, b'x');
    v
}

fn batch_for(run: u64, thread: usize, seq: u64) -> BytesMut {
    let count = 1 + (seq as usize % 5);
    let values: Vec<Vec<u8>> = (0..count)
        .map(|i| record_value(run, thread, seq, i))
        .collect();
    let now = ferrite_log::Clock::now_ms(&ferrite_log::SystemClock);
    let records: Vec<RecordSpec<'_>> = values
        .iter()
        .map(|v| RecordSpec {
            key: Some(b"k"),
            value: Some(v),
            headers: vec![],
            timestamp: now,
        })
        .collect();
    let mut out = BytesMut::new();
    encode_batch(&mut out, &records, -1, None);
    out
}

/// The child: append forever, acknowledging on stdout after each durable append. Not a test on its own: it is
/// ignored (so no run reports it as passing) and its parent runs it with `--ignored`.
#[test]
#[ignore = "the body of the crash test's child process, run by that test"]
fn crash_child() {
    let dir = std::env::var(CHILD_ENV).unwrap_or_else(|_| {
        panic!("crash_child runs as the child of a crash test, with {CHILD_ENV} set")
    });
    let run: u64 = std::env::var("FERRITE_CRASH_RUN").unwrap().parse().unwrap();
    let log =
        Arc::new(PartitionLog::open(Path::new(&dir), config(), LogOptions::default()).unwrap());
    let stdout = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let (log, stdout) = (Arc::clone(&log), Arc::clone(&stdout));
            std::thread::spawn(move || {
                for seq in 0.. {
                    let info = log.append(batch_for(run, thread, seq), CLIENT).unwrap();
                    let mut out = stdout.lock().unwrap();
                    writeln!(
                        out,
                        "ack {} {} {run} {thread} {seq}",
                        info.first_offset, info.last_offset
                    )
                    .unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[derive(Debug, Clone, Copy)]
struct Ack {
    first: i64,
    last: i64,
    run: u64,
    thread: usize,
    seq: u64,
}

fn parse_ack(line: &str) -> Option<Ack> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() != 6 || f[0] != "ack" {
        return None;
    }
    Some(Ack {
        first: f[1].parse().ok()?,
        last: f[2].parse().ok()?,
        run: f[3].parse().ok()?,
        thread: f[4].parse().ok()?,
        seq: f[5].parse().ok()?,
    })
}

fn run_child_until_killed(dir: &Path, run: u64, lifetime: Duration) -> Vec<Ack> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, dir)
        .env("FERRITE_CRASH_RUN", run.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        // Only whole lines count: a line cut by the kill is an acknowledgement the parent never received.
        let mut acks = vec![];
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(ack) = parse_ack(&line) {
                acks.push(ack);
            }
        }
        acks
    });
    std::thread::sleep(lifetime);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap()
}

/// Checks every acknowledged batch and the shape of the whole log.
fn verify(dir: &Path, acks: &HashMap<i64, Ack>) -> (i64, u64) {
    let log = PartitionLog::open(dir, config(), LogOptions::default()).unwrap();
    let end = log.log_end_offset();
    let headers = read_all(&log, 0); // CRC-checked
    let mut expected_base = 0;
    for h in &headers {
        assert_eq!(h.base_offset, expected_base, "log is contiguous");
        expected_base = h.next_offset();
    }
    assert_eq!(expected_base, end, "nothing past the recovered end");
    assert!(log
        .read(end, 1 << 20, i64::MAX, true)
        .unwrap()
        .slices
        .is_empty());
    for ack in acks.values() {
        assert!(
            ack.last < end,
            "acknowledged offset {} lost (log end {end})",
            ack.last
        );
        let result = log.read(ack.first, 1, i64::MAX, true).unwrap();
        let bytes = result.slices[0].read_to_vec().unwrap();
        let header = parse_batches(&bytes)[0];
        assert_eq!(
            (header.base_offset, header.last_offset()),
            (ack.first, ack.last)
        );
        // Everything after the header is exactly what the child sent (the broker never re-encodes records).
        let sent = batch_for(ack.run, ack.thread, ack.seq);
        assert_eq!(
            &bytes[BATCH_HEADER_LEN..header.total_size()],
            &sent[BATCH_HEADER_LEN..],
            "records at {}",
            ack.first
        );
    }
    let recovered = log.recovery_report().bytes_truncated;
    (end, recovered)
}

#[test]
fn acknowledged_appends_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("crash test seed {seed}");
    let mut acks: HashMap<i64, Ack> = HashMap::new();
    let started = Instant::now();
    let (mut total_truncated, mut total_acks) = (0u64, 0usize);
    for run in 0..KILLS as u64 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let lifetime = Duration::from_millis(20 + (seed >> 33) % 250);
        let new_acks = run_child_until_killed(dir.path(), run, lifetime);
        total_acks += new_acks.len();
        for ack in new_acks {
            assert!(
                acks.insert(ack.first, ack).is_none(),
                "offset {} acknowledged twice",
                ack.first
            );
        }
        let (end, truncated) = verify(dir.path(), &acks);
        total_truncated += truncated;
        assert!(end >= acks.values().map(|a| a.last + 1).max().unwrap_or(0));
    }
    assert!(total_acks > 0, "the child acknowledged nothing");
    println!(
        "{KILLS} kills, {total_acks} acknowledged batches verified, {total_truncated} torn bytes truncated, {:?}",
        started.elapsed()
    );
}

//! Kafka clients other than the rdkafka crate, against the real `ferrite` binary: Debian's kcat (linking
//! Debian's librdkafka 2.0.2), and confluent-kafka, kafka-python, aiokafka and kafkajs driven by the scripts in
//! `tests/clients/`. `./scripts/test` installs them all (kcat with apt, the Python clients into `.venv`, kafkajs
//! into `tests/clients/node_modules`); a missing one fails its test with a message saying so.
//!
//! Each client produces keyed records with headers, uncompressed and with every codec it supports, and reads
//! them back byte-exact and in order. Besides what the clients check, each test reads the broker's segment files
//! to check that every batch was stored with the codec the client was asked for: a client that silently falls
//! back to uncompressed batches would otherwise pass without testing that codec.
#![allow(clippy::unwrap_used)]

mod common;

use common::{topic, Broker};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);
const KCAT_TIMEOUT: Duration = Duration::from_secs(60);
const SETUP_HINT: &str = "run ./scripts/test once (it installs kcat with apt, the Python clients \
     into .venv and kafkajs into tests/clients/node_modules), or just its set-up part";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn clients_dir() -> PathBuf {
    repo_root().join("tests/clients")
}

/// The project's virtual-environment Python, which has the Python clients.
fn venv_python() -> PathBuf {
    let python = repo_root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing, so the Python Kafka clients are not installed: {SETUP_HINT}",
        python.display()
    );
    python
}

/// What one run of a client printed.
struct Run {
    what: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
    timed_out: bool,
}

impl Run {
    fn ok(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }

    fn report(&self, broker: &Broker) -> String {
        let log = broker.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(150)..].join("\n");
        format!(
            "{}: {} after {:.1} s\n--- stdout\n{}\n--- stderr\n{}\n--- broker log (last 150 lines)\n{tail}",
            self.what,
            if self.timed_out {
                "TIMED OUT".to_string()
            } else {
                format!("exit code {:?}", self.code)
            },
            self.took.as_secs_f64(),
            self.stdout,
            self.stderr,
        )
    }

    /// Fails the test with both outputs and the broker log unless the run succeeded.
    fn assert_ok(&self, broker: &Broker) -> &Self {
        assert!(self.ok(), "{}", self.report(broker));
        self
    }
}

/// Runs `cmd` with `stdin` as its input, killing it after `timeout`. A program that is not installed fails the
/// test with `missing_hint`.
fn run(cmd: &mut Command, stdin: &[u8], timeout: Duration, missing_hint: &str) -> Run {
    let what = format!("{cmd:?}");
    let start = Instant::now();
    let mut child = match cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("{what}: program not found: {missing_hint}")
        }
        Err(e) => panic!("{what}: {e}"),
    };
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let stdout = reader(Box::new(child.stdout.take().unwrap()));
    let stderr = reader(Box::new(child.stderr.take().unwrap()));
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > timeout {
            timed_out = true;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    writer.join().unwrap();
    Run {
        what,
        code: status.code(),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
        took: start.elapsed(),
        timed_out,
    }
}

/// The compression codec (attributes & 7) of every batch stored for `topic`, in offset order per partition,
/// read straight from the segment files.
fn stored_codecs(broker: &Broker, topic: &str) -> BTreeMap<i32, Vec<u16>> {
    let mut result = BTreeMap::new();
    for partition in 0.. {
        let dir = broker.data_dir().join(format!("{topic}-{partition}"));
        if !dir.is_dir() {
            break;
        }
        let mut logs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        logs.sort();
        let mut codecs = vec![];
        for log in logs {
            let bytes = std::fs::read(&log).unwrap();
            let mut pos = 0usize;
            // Batch header: base offset (8), length (4), leader epoch (4), magic (1), CRC (4), attributes (2).
            while pos + 23 <= bytes.len() {
                let len = i32::from_be_bytes(bytes[pos + 8..pos + 12].try_into().unwrap());
                if len <= 0 || pos + 12 + len as usize > bytes.len() {
                    break;
                }
                let attributes = u16::from_be_bytes(bytes[pos + 21..pos + 23].try_into().unwrap());
                codecs.push(attributes & 7);
                pos += 12 + len as usize;
            }
        }
        result.insert(partition, codecs);
    }
    result
}

fn codec_id(codec: &str) -> u16 {
    CODECS.iter().position(|c| *c == codec).unwrap() as u16
}

/// Every batch of `topic` is stored with `codec`. A batch stored uncompressed when a codec was asked for means
/// the client fell back to no compression, so that codec was not tested.
fn stored_with(broker: &Broker, topic: &str, codec: &str, client: &str) -> Result<(), String> {
    let want = codec_id(codec);
    let stored = stored_codecs(broker, topic);
    let all: Vec<u16> = stored.values().flatten().copied().collect();
    if all.is_empty() {
        return Err(format!(
            "{client} {codec}: no batches on disk for topic {topic} (partition directories {:?})",
            stored.keys().collect::<Vec<_>>()
        ));
    }
    if all.iter().all(|&c| c == want) {
        return Ok(());
    }
    let mut hint = "";
    if codec == "lz4" && all.iter().all(|&c| c == 0) && client.contains("librdkafka") {
        hint = "\n    librdkafka enables LZ4 only when the broker's ApiVersions response lists FindCoordinator \
                (rdkafka_feature.c: RD_KAFKA_FEATURE_LZ4 depends on FindCoordinator v0); without it, it \
                sends compression.codec=lz4 batches uncompressed (`kcat -d feature -L` logs \
                \"Feature LZ4: FindCoordinator (0..0) NOT supported by broker\")";
    }
    Err(format!(
        "{client} {codec}: batches of {topic} stored with codecs {stored:?} per partition \
         (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd), expected all {want}{hint}"
    ))
}

/// Fails with every problem found: failed runs (with their output and the broker log) and batches stored with
/// the wrong codec.
fn assert_no_problems(
    runs: &[&Run],
    broker: &Broker,
    topic_of: impl Fn(&str) -> String,
    client: &str,
) {
    let mut problems = vec![];
    for run in runs {
        if run.ok() {
            println!("{}\n{}", run.stdout, run.stderr);
        } else {
            problems.push(run.report(broker));
        }
    }
    for codec in CODECS {
        if let Err(e) = stored_with(broker, &topic_of(codec), codec, client) {
            problems.push(e);
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// Runs one client of `python_clients.py` with every codec, then checks the stored batches.
fn python_client(client: &str, library: &str) {
    let python = venv_python();
    let broker = Broker::start(&[]);
    let prefix = topic("py");
    let out = run(
        Command::new(&python)
            .arg(clients_dir().join("python_clients.py"))
            .arg(client)
            .arg(&broker.addr)
            .arg(&prefix),
        b"",
        SCRIPT_TIMEOUT,
        SETUP_HINT,
    );
    assert_no_problems(
        &[&out],
        &broker,
        |codec| format!("{prefix}-{client}-{codec}"),
        library,
    );
}

/// confluent-kafka (bundled librdkafka 2.x): AdminClient.create_topics, Producer with every codec, an assign()
/// consumer with no commits, watermarks, offsets_for_times.
#[test]
fn confluent_kafka() {
    python_client("confluent_kafka", "confluent-kafka (librdkafka)");
}

/// kafka-python 3.x (ApiVersions v4, idempotent producer by default): KafkaAdminClient.create_topics,
/// KafkaProducer with every codec, KafkaConsumer(group_id=None) with assign/seek_to_beginning, end_offsets,
/// offsets_for_times.
#[test]
fn kafka_python() {
    python_client("kafka_python", "kafka-python");
}

/// aiokafka: AIOKafkaAdminClient.create_topics, AIOKafkaProducer with every codec, AIOKafkaConsumer
/// (group_id=None) with assign/seek_to_beginning, end_offsets, offsets_for_times.
#[test]
fn aiokafka() {
    python_client("aiokafka", "aiokafka");
}

/// kafkajs: admin createTopics, producer with every codec, fetchTopicOffsets, fetchTopicOffsetsByTimestamp,
/// and a read-back through kafkajs's own Fetch (its consumer needs consumer groups); then confluent-kafka reads
/// the same topics back too.
#[test]
fn kafkajs() {
    let dir = clients_dir();
    assert!(
        dir.join("node_modules/kafkajs").is_dir(),
        "{} is missing: {SETUP_HINT}",
        dir.join("node_modules/kafkajs").display()
    );
    let python = venv_python();
    let broker = Broker::start(&[]);
    let prefix = topic("js");
    let tmp = tempfile::tempdir().unwrap();
    let expected = tmp.path().join("kafkajs-records.jsonl");
    let out = run(
        Command::new("node")
            .current_dir(&dir)
            .arg(dir.join("kafkajs_client.js"))
            .arg(&broker.addr)
            .arg(&prefix)
            .arg("--expect-out")
            .arg(&expected),
        b"",
        SCRIPT_TIMEOUT,
        &format!("node is not installed: {SETUP_HINT}"),
    );
    // confluent-kafka reads the same topics back.
    let verify = run(
        Command::new(&python)
            .arg(dir.join("python_clients.py"))
            .arg("verify")
            .arg(&broker.addr)
            .arg(&expected),
        b"",
        SCRIPT_TIMEOUT,
        SETUP_HINT,
    );
    assert_no_problems(
        &[&out, &verify],
        &broker,
        |codec| format!("{prefix}-kafkajs-{codec}"),
        "kafkajs",
    );
}

// ----------------------------------------------------------------------------------------------------------------
// kcat

fn run_kcat(args: &[&str], stdin: &[u8]) -> Run {
    run(
        Command::new("kcat").args(args),
        stdin,
        KCAT_TIMEOUT,
        &format!("kcat is not installed: {SETUP_HINT}"),
    )
}

/// One record as kcat -P reads it with `-K:`: no delimiter means no key (null), `:v` an empty key.
struct KcatRecord {
    key: Option<String>,
    value: String,
}

fn kcat_records(range: std::ops::Range<usize>) -> Vec<KcatRecord> {
    range
        .map(|i| {
            let key = match i % 10 {
                3 => None,
                5 => Some(String::new()),
                _ => Some(format!("key-{i}-\u{e9}")),
            };
            // (An empty line is skipped by kcat, so a record without a key has a value.)
            let value = if i % 7 == 0 && key.is_some() {
                String::new()
            } else {
                let size = [1, 30, 300, 3000, 20_000][i % 5];
                let text = format!("ferrite kcat {i} ").repeat(size / 10 + 1);
                format!("{}|\u{fc}", &text[..size])
            };
            KcatRecord { key, value }
        })
        .collect()
}

fn kcat_input(records: &[KcatRecord]) -> Vec<u8> {
    let mut input = String::new();
    for r in records {
        match &r.key {
            Some(k) => input.push_str(&format!("{k}:{}\n", r.value)),
            None => input.push_str(&format!("{}\n", r.value)),
        }
    }
    input.into_bytes()
}

const KCAT_HEADERS: [&str; 6] = [
    "h1=x",
    "empty=",
    "dup=1",
    "dup=2",
    "\u{fc}n\u{ef}=\u{e7}",
    "nullh",
];
const KCAT_FORMAT: &str = "%p|%o|%K|%k|%S|%s|%h\\n";

/// What `kcat -C -f KCAT_FORMAT` prints for `records` starting at `first_offset`.
fn kcat_expected(records: &[KcatRecord], first_offset: usize) -> String {
    let headers = "h1=x,empty=,dup=1,dup=2,\u{fc}n\u{ef}=\u{e7},nullh=NULL";
    let mut out = String::new();
    for (j, r) in records.iter().enumerate() {
        let (klen, key) = match &r.key {
            Some(k) => (k.len() as i64, k.as_str()),
            None => (-1, ""),
        };
        out.push_str(&format!(
            "0|{}|{klen}|{key}|{}|{}|{headers}\n",
            first_offset + j,
            r.value.len(),
            r.value
        ));
    }
    out
}

fn shorten(line: &str) -> String {
    if line.chars().count() <= 160 {
        return line.to_string();
    }
    let head: String = line.chars().take(120).collect();
    let tail: String = line.chars().skip(line.chars().count() - 30).collect();
    format!("{head}...{tail} ({} bytes)", line.len())
}

/// Fails with the first differing line (shortened) unless `run` printed exactly `expected`.
fn assert_same_lines(expected: &str, run: &Run, what: &str, broker: &Broker) {
    if run.stdout == expected {
        return;
    }
    let want: Vec<&str> = expected.lines().collect();
    let got: Vec<&str> = run.stdout.lines().collect();
    let at = want
        .iter()
        .zip(&got)
        .position(|(w, g)| w != g)
        .unwrap_or(want.len().min(got.len()));
    let short = |s: Option<&&str>| s.map_or("(no line)".to_string(), |s| shorten(s));
    let log = broker.log();
    let lines: Vec<&str> = log.lines().collect();
    panic!(
        "{what}: output differs at line {} of {} expected ({} printed)\n  expected: {}\n  got:      {}\n\
         stderr:\n{}\nbroker log (last 100 lines):\n{}",
        at + 1,
        want.len(),
        got.len(),
        short(want.get(at)),
        short(got.get(at)),
        run.stderr,
        lines[lines.len().saturating_sub(100)..].join("\n")
    );
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Debian's kcat 1.7.1 with its librdkafka 2.0.2 (an old client: a broker whose ApiVersions v3 response writes
/// default-valued tagged fields breaks it with "Protocol read buffer underflow"): -L metadata, -P keyed records
/// with headers with every codec (auto-creating the topic), -C from the beginning and from an offset inside a
/// batch, byte-exact and in order, and -Q offset lookups by timestamp, earliest and latest.
#[test]
fn kcat() {
    let version = run_kcat(&["-V"], b"");
    assert!(
        version.ok(),
        "kcat -V failed: {SETUP_HINT}\n{}",
        version.stdout
    );
    println!("{}", version.stdout.trim());
    let broker = Broker::start(&[]);
    let b = broker.addr.as_str();

    let meta = run_kcat(&["-L", "-b", b], b"");
    meta.assert_ok(&broker);
    assert!(
        meta.stdout.contains(" 1 brokers:") && meta.stdout.contains(&format!(" at {b}")),
        "kcat -L: no broker at {b}:\n{}",
        meta.report(&broker)
    );

    let mut failed = vec![];
    for codec in CODECS {
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| kcat_codec(&broker, codec)));
        if let Err(panic) = result {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed.push(format!("{codec}: {}", message.lines().next().unwrap_or("")));
        }
    }
    assert!(
        failed.is_empty(),
        "kcat failed with {} of {} codecs (details above):\n{}",
        failed.len(),
        CODECS.len(),
        failed.join("\n")
    );
}

/// -P, -C, -Q and -L -t for one codec.
fn kcat_codec(broker: &Broker, codec: &str) {
    let b = broker.addr.as_str();
    let t = topic(&format!("kcat-{codec}"));
    let mut produce_args = vec!["-P", "-b", b, "-t", &t, "-p", "0", "-K:", "-z", codec];
    for h in KCAT_HEADERS {
        produce_args.extend(["-H", h]);
    }
    // Two runs, so that a timestamp between them has a known answer.
    let first = kcat_records(0..60);
    let second = kcat_records(60..100);
    run_kcat(&produce_args, &kcat_input(&first)).assert_ok(broker);
    std::thread::sleep(Duration::from_millis(50));
    let between = now_ms();
    std::thread::sleep(Duration::from_millis(50));
    run_kcat(&produce_args, &kcat_input(&second)).assert_ok(broker);
    let all: Vec<KcatRecord> = first.into_iter().chain(second).collect();

    let consume = run_kcat(
        &[
            "-C",
            "-b",
            b,
            "-t",
            &t,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            KCAT_FORMAT,
        ],
        b"",
    );
    consume.assert_ok(broker);
    assert_same_lines(
        &kcat_expected(&all, 0),
        &consume,
        &format!("kcat -C {codec}"),
        broker,
    );

    // From an offset inside a batch: the broker may serve the whole batch, the client skips to offset 37.
    let partial = run_kcat(
        &[
            "-C",
            "-b",
            b,
            "-t",
            &t,
            "-o",
            "37",
            "-c",
            "5",
            "-e",
            "-q",
            "-f",
            KCAT_FORMAT,
        ],
        b"",
    );
    partial.assert_ok(broker);
    assert_same_lines(
        &kcat_expected(&all[37..42], 37),
        &partial,
        &format!("kcat -C -o 37 -c 5 {codec}"),
        broker,
    );

    for (ts, want) in [
        (between, 60),
        (-2, 0),
        (-1, 100),
        (now_ms() + 3_600_000, -1),
    ] {
        let query = format!("{t}:0:{ts}");
        let q = run_kcat(&["-Q", "-b", b, "-t", &query], b"");
        q.assert_ok(broker);
        assert_eq!(
            q.stdout.trim(),
            format!("{t} [0] offset {want}"),
            "kcat -Q -t {query}\n{}",
            q.report(broker)
        );
    }

    let topic_meta = run_kcat(&["-L", "-b", b, "-t", &t], b"");
    topic_meta.assert_ok(broker);
    assert!(
        topic_meta
            .stdout
            .contains(&format!("topic \"{t}\" with 1 partitions:")),
        "kcat -L -t {t}\n{}",
        topic_meta.report(broker)
    );
    stored_with(broker, &t, codec, "kcat (librdkafka)").unwrap_or_else(|e| panic!("{e}"));
    println!("ok   kcat {codec}: 100 records produced, read back, offsets looked up");
}

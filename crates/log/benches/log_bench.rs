//! Throughput and open-time benchmarks for `ferrite-log`. Each Ferrite figure comes with a baseline measured in
//! the same run on the same disk: the plain system call that the log builds on. The ratio of the two shows the
//! log's overhead, separate from how fast this machine happens to be.
//!
//! What is measured and why:
//!
//! * `append_no_fsync`: appends of 1 KiB records in 16 KiB and 1 MiB batches with the default flush policy
//!   (no fsync, the OS decides when to write back), against a sequential `write(2)` of the same bytes to a plain
//!   file. Both end in the page cache, so this measures the log's CPU cost (validation, CRC, offset assignment,
//!   indexes) against a bare memory copy into the cache. Each iteration writes 64 MiB to a new log or file.
//! * `append_durable`: `FlushPolicy::Durable` (each append returns after `fdatasync`) with 1, 8 and 64
//!   concurrent appenders sharing one log, against one thread doing `write` + `fdatasync` per batch. With many
//!   appenders, group commit lets one sync cover many batches.
//! * `read_sendfile`: a log of about 256 MiB of 16 KiB batches, read in full with `PartitionLog::read` in
//!   1 MiB fetches, each slice sent with `FileSlice::send_all_blocking` to a loopback TCP socket, against
//!   `sendfile(2)` of a plain file of the same size in 1 MiB calls to the same kind of socket. Both files are
//!   read once before measuring, so the page cache is warm. Timing stops when the receiver has read every byte.
//! * `open`: 2,000 and 10,000 cleanly closed partitions (three small batches each), opened one after another;
//!   only the `open` calls are timed. A log holds three file descriptors, so logs are opened in chunks of
//!   [`OPEN_CHUNK`] that stay open together and are then closed (not timed) before the next chunk. This one is
//!   timed by hand (5 passes at 2,000, 3 at 10,000, median reported): Criterion's 10-sample minimum would
//!   mean closing 10,000 logs, five fsyncs each, eleven times.
//!
//! The throughput benchmarks use `iter_custom`, so per-iteration setup (new log, cloned payloads) and teardown
//! are not timed. Every timed iteration is also recorded. At the end a summary table prints the median of
//! each figure, its baseline and the ratio, next to the targets from the issue.
//!
//! Run: `cargo bench -p ferrite-log --bench log_bench`. Temporary files go under `<workspace>/target/bench-tmp`,
//! or `$FERRITE_BENCH_DIR` if set. It should be a real disk, not tmpfs (a warning is printed otherwise). Without
//! `--bench` (e.g. `cargo test --benches`), Criterion runs every routine once, and the sizes shrink to a
//! quick smoke test.
#![allow(unsafe_code)] // sendfile(2) and statfs(2) for the baselines; see the SAFETY comments.

use bytes::BytesMut;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput};
use ferrite_log::batch_builder::simple_batch;
use ferrite_log::{AppendOrigin, FlushPolicy, LogConfig, LogOptions, PartitionLog};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tempfile::TempDir;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
const RECORD_VALUE_BYTES: usize = KIB;
const CLIENT: AppendOrigin = AppendOrigin::Client { leader_epoch: -1 };
/// Bytes per fetch in the read benchmark (a consumer's `max.partition.fetch.bytes`).
const FETCH_BYTES: u64 = MIB as u64;
/// Logs held open at once by the open benchmark: 3 descriptors each, well under this machine's 20,000 limit.
const OPEN_CHUNK: usize = 2_000;
/// Threads that close partitions between passes of the open benchmark (fsync-bound, so more than the cores).
const CLOSE_THREADS: usize = 8;

// ---------------------------------------------------------------------------------------------------------
// Sizes: full under `cargo bench`, tiny when Criterion runs in test mode.
// ---------------------------------------------------------------------------------------------------------

/// How much work each benchmark does.
#[derive(Debug, Clone, Copy)]
struct Scale {
    /// Whether this is a real measurement (`cargo bench`), not Criterion's test mode.
    full: bool,
    /// Bytes appended per iteration without fsync.
    no_fsync_bytes: usize,
    /// Bytes appended per iteration in durable mode (at least `DURABLE_MIN_PER_THREAD` batches per thread).
    durable_bytes_16k: usize,
    durable_bytes_1m: usize,
    /// Size of the log (and plain file) read by the read benchmark.
    read_log_bytes: usize,
    /// Partition counts for the open benchmark.
    open_partitions: [usize; 2],
}

fn scale() -> Scale {
    static SCALE: OnceLock<Scale> = OnceLock::new();
    *SCALE.get_or_init(|| {
        // Mirrors Criterion: `cargo bench` passes --bench; without it, or with --test/--list, routines run once.
        let args: Vec<String> = std::env::args().collect();
        let has = |flag: &str| args.iter().any(|a| a == flag);
        let full = has("--bench") && !has("--test") && !has("--list");
        if full {
            Scale {
                full,
                no_fsync_bytes: 64 * MIB,
                durable_bytes_16k: 8 * MIB,
                durable_bytes_1m: 64 * MIB,
                read_log_bytes: 256 * MIB,
                open_partitions: [2_000, 10_000],
            }
        } else {
            Scale {
                full,
                no_fsync_bytes: 2 * MIB,
                durable_bytes_16k: 256 * KIB,
                durable_bytes_1m: 2 * MIB,
                read_log_bytes: 4 * MIB,
                open_partitions: [10, 30],
            }
        }
    })
}

// ---------------------------------------------------------------------------------------------------------
// Results for the summary table.
// ---------------------------------------------------------------------------------------------------------

/// Rates (units per second) of every timed iteration, by benchmark id.
static SAMPLES: Mutex<BTreeMap<String, Vec<f64>>> = Mutex::new(BTreeMap::new());

fn record(id: &str, units: u64, elapsed: Duration) {
    let rate = units as f64 / elapsed.as_secs_f64().max(1e-9);
    let mut samples = SAMPLES.lock().unwrap_or_else(|p| p.into_inner());
    samples.entry(id.to_owned()).or_default().push(rate);
}

fn median_rate(id: &str) -> Option<f64> {
    let samples = SAMPLES.lock().unwrap_or_else(|p| p.into_inner());
    let mut rates = samples.get(id)?.clone();
    rates.sort_by(f64::total_cmp);
    let mid = rates.len() / 2;
    Some(if rates.len() % 2 == 0 {
        (rates[mid - 1] + rates[mid]) / 2.0
    } else {
        rates[mid]
    })
}

/// Runs `iters` iterations of `one` (which returns its own timed part), recording each under `id`.
fn run_iterations(id: &str, units: u64, iters: u64, mut one: impl FnMut() -> Duration) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let elapsed = one();
        record(id, units, elapsed);
        total += elapsed;
    }
    total
}

// ---------------------------------------------------------------------------------------------------------
// Shared helpers: batches, temp dirs, logs.
// ---------------------------------------------------------------------------------------------------------

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A batch of 1 KiB records, as many as fit in `max_bytes`, the way a producer with `batch.size = max_bytes`
/// fills its batches (16 KiB holds 15 such records).
#[derive(Debug, Clone)]
struct Shape {
    label: &'static str,
    batch: BytesMut,
}

impl Shape {
    fn new(label: &'static str, max_bytes: usize) -> Self {
        let ts = now_ms();
        let mut count = max_bytes / (RECORD_VALUE_BYTES + 8);
        let batch = loop {
            let batch = simple_batch(count, RECORD_VALUE_BYTES, ts);
            if batch.len() <= max_bytes || count == 1 {
                break batch;
            }
            count -= 1;
        };
        Shape { label, batch }
    }

    fn len(&self) -> usize {
        self.batch.len()
    }

    /// How many batches make up about `bytes` (at least one).
    fn batches_for(&self, bytes: usize) -> usize {
        (bytes / self.len()).max(1)
    }

    /// `n` private copies: append rewrites offsets in place and takes its payload by value.
    fn payloads(&self, n: usize) -> Vec<BytesMut> {
        (0..n).map(|_| self.batch.clone()).collect()
    }
}

fn shapes() -> [Shape; 2] {
    [Shape::new("16KiB", 16 * KIB), Shape::new("1MiB", MIB)]
}

/// Root for all temporary files of this run.
fn bench_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = std::env::var_os("FERRITE_BENCH_DIR").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-tmp"),
            PathBuf::from,
        );
        std::fs::create_dir_all(&root).expect("create bench temp root");
        if is_tmpfs(&root) {
            eprintln!(
                "warning: {} is on tmpfs; disk figures will be meaningless",
                root.display()
            );
        }
        root
    })
}

fn is_tmpfs(path: &Path) -> bool {
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    let mut stat = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `c_path` is a valid NUL-terminated string and `stat` is a writable buffer of the right type.
    let rc = unsafe { libc::statfs(c_path.as_ptr(), stat.as_mut_ptr()) };
    // SAFETY: statfs filled the struct when it returned 0.
    rc == 0 && unsafe { stat.assume_init() }.f_type == libc::TMPFS_MAGIC
}

fn temp_dir(prefix: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(bench_root())
        .expect("create temp dir")
}

fn bench_config(flush: FlushPolicy) -> LogConfig {
    LogConfig {
        segment_bytes: 1 << 30, // Kafka's default; no benchmark here rolls a segment
        flush,
        ..LogConfig::default()
    }
}

/// A new, empty log in its own temp dir. One small append has already happened, so the one-time rewrite of
/// the recovery checkpoint that the first append after open does is not part of what is measured.
struct FreshLog {
    log: PartitionLog,
    _dir: TempDir, // declared after `log`, so the log closes its files before the directory goes
}

impl FreshLog {
    fn new(flush: FlushPolicy) -> Self {
        let dir = temp_dir("append-");
        let log = PartitionLog::open(dir.path(), bench_config(flush), LogOptions::default())
            .expect("open log");
        log.append(simple_batch(1, 16, now_ms()), CLIENT)
            .expect("priming append");
        FreshLog { log, _dir: dir }
    }
}

/// A plain file in its own temp dir, for the baselines.
struct PlainFile {
    file: File,
    _dir: TempDir,
}

impl PlainFile {
    fn new() -> Self {
        let dir = temp_dir("raw-");
        let path = dir.path().join("plain.bin");
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .expect("create plain file");
        PlainFile { file, _dir: dir }
    }
}

/// Flushes every dirty page on the machine (`sync(2)`), so that a timed fsync does not wait for writeback left
/// over from earlier benchmarks. Called, untimed, before each iteration that measures fsync.
fn quiesce_disk() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

fn configure_group(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    // Iterations take 10 ms to 0.5 s; flat sampling keeps the iteration count near sample_size.
    group.sampling_mode(SamplingMode::Flat);
}

// ---------------------------------------------------------------------------------------------------------
// 1a. Append without fsync vs raw write.
// ---------------------------------------------------------------------------------------------------------

fn time_log_appends(shape: &Shape, batches: usize, flush: FlushPolicy) -> Duration {
    let fresh = FreshLog::new(flush);
    let payloads = shape.payloads(batches);
    let start = Instant::now();
    for payload in payloads {
        fresh.log.append(payload, CLIENT).expect("append");
    }
    start.elapsed()
}

/// The baseline: the same buffers written with `write(2)`, optionally each followed by `fdatasync`. Buffers are
/// dropped one by one after use, as `append` drops its payload.
fn time_raw_writes(shape: &Shape, batches: usize, sync_each: bool) -> Duration {
    let mut plain = PlainFile::new();
    let payloads = shape.payloads(batches);
    if sync_each {
        quiesce_disk();
    }
    let start = Instant::now();
    for payload in payloads {
        plain.file.write_all(&payload).expect("raw write");
        if sync_each {
            plain.file.sync_data().expect("raw fdatasync");
        }
    }
    start.elapsed()
}

fn bench_append_no_fsync(c: &mut Criterion) {
    let mut group = c.benchmark_group("append_no_fsync");
    configure_group(&mut group);
    for shape in shapes() {
        let batches = shape.batches_for(scale().no_fsync_bytes);
        let bytes = (batches * shape.len()) as u64;
        group.throughput(Throughput::Bytes(bytes));
        let id = format!("ferrite/{}", shape.label);
        let key = format!("append_no_fsync/{id}");
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                run_iterations(&key, bytes, iters, || {
                    time_log_appends(&shape, batches, FlushPolicy::default())
                })
            });
        });
        let id = format!("raw_write/{}", shape.label);
        let key = format!("append_no_fsync/{id}");
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                run_iterations(&key, bytes, iters, || {
                    time_raw_writes(&shape, batches, false)
                })
            });
        });
    }
    group.finish();
}

// ---------------------------------------------------------------------------------------------------------
// 1b. Durable appends from 1, 8 and 64 threads vs single-threaded write + fdatasync.
// ---------------------------------------------------------------------------------------------------------

const APPENDER_THREADS: [usize; 3] = [1, 8, 64];
/// Each appender thread appends at least this many batches per iteration, so that start-up and the last
/// straggler do not dominate.
const DURABLE_MIN_PER_THREAD: usize = 2;

fn durable_bytes(shape: &Shape) -> usize {
    if shape.len() > 64 * KIB {
        scale().durable_bytes_1m
    } else {
        scale().durable_bytes_16k
    }
}

/// `threads` appenders, each appending `per_thread` batches to one durable log; timed from the moment all
/// threads are released until the last append has returned (i.e. is on disk).
fn time_concurrent_durable_appends(shape: &Shape, threads: usize, per_thread: usize) -> Duration {
    let fresh = FreshLog::new(FlushPolicy::Durable);
    let end_before = fresh.log.log_end_offset();
    let pools: Vec<Vec<BytesMut>> = (0..threads).map(|_| shape.payloads(per_thread)).collect();
    let barrier = Barrier::new(threads + 1);
    quiesce_disk();
    let elapsed = std::thread::scope(|s| {
        let handles: Vec<_> = pools
            .into_iter()
            .map(|pool| {
                let (log, barrier) = (&fresh.log, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    for payload in pool {
                        log.append(payload, CLIENT).expect("durable append");
                    }
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        for handle in handles {
            handle.join().expect("appender thread panicked");
        }
        start.elapsed()
    });
    let records_per_batch = ferrite_log::batch::BatchHeader::parse(&shape.batch)
        .map_or(0, |h| i64::from(h.records_count));
    assert_eq!(
        fresh.log.log_end_offset() - end_before,
        (threads * per_thread) as i64 * records_per_batch,
        "every durable append must have landed"
    );
    assert!(fresh.log.recovery_point() >= fresh.log.log_end_offset());
    elapsed
}

fn bench_append_durable(c: &mut Criterion) {
    for shape in shapes() {
        let mut group = c.benchmark_group(format!("append_durable/{}", shape.label));
        configure_group(&mut group);
        let total = durable_bytes(&shape);
        for threads in APPENDER_THREADS {
            let per_thread = shape
                .batches_for(total / threads)
                .max(DURABLE_MIN_PER_THREAD);
            let bytes = (threads * per_thread * shape.len()) as u64;
            group.throughput(Throughput::Bytes(bytes));
            let id = format!("ferrite_{threads}_threads");
            let key = format!("append_durable/{}/{id}", shape.label);
            group.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    run_iterations(&key, bytes, iters, || {
                        time_concurrent_durable_appends(&shape, threads, per_thread)
                    })
                });
            });
        }
        let batches = shape.batches_for(total);
        let bytes = (batches * shape.len()) as u64;
        group.throughput(Throughput::Bytes(bytes));
        let key = format!("append_durable/{}/raw_write_fdatasync", shape.label);
        group.bench_function("raw_write_fdatasync", |b| {
            b.iter_custom(|iters| {
                run_iterations(&key, bytes, iters, || {
                    time_raw_writes(&shape, batches, true)
                })
            });
        });
        group.finish();
    }
}

// ---------------------------------------------------------------------------------------------------------
// 2. Read with sendfile to a loopback socket vs raw sendfile.
// ---------------------------------------------------------------------------------------------------------

/// A connected loopback TCP socket whose far end is drained (read and discarded) by a thread.
struct LoopbackSink {
    stream: TcpStream,
    received: Arc<AtomicU64>,
    sent: u64,
    drain: Option<JoinHandle<()>>,
}

impl LoopbackSink {
    fn connect() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback listener");
        let stream =
            TcpStream::connect(listener.local_addr().expect("listener address")).expect("connect");
        let (peer, _) = listener.accept().expect("accept");
        let received = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&received);
        let drain = std::thread::spawn(move || drain(peer, &counter));
        LoopbackSink {
            stream,
            received,
            sent: 0,
            drain: Some(drain),
        }
    }

    fn fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    /// Notes that `bytes` more were sent and waits until the receiver has read all of them.
    fn wait_received(&mut self, bytes: u64) {
        self.sent += bytes;
        while self.received.load(Ordering::Acquire) < self.sent {
            std::thread::yield_now();
        }
    }
}

fn drain(mut peer: TcpStream, received: &AtomicU64) {
    let mut buf = vec![0u8; 256 * KIB];
    loop {
        match peer.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                received.fetch_add(n as u64, Ordering::Release);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("loopback drain failed: {e}"),
        }
    }
}

impl Drop for LoopbackSink {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
        if let Some(drain) = self.drain.take() {
            let _ = drain.join();
        }
    }
}

fn read_shape() -> Shape {
    Shape::new("16KiB", 16 * KIB)
}

/// A log of whole 16 KiB batches and a plain file of the same size, both flushed and in the page cache, and
/// the socket both are sent to.
struct ReadFixture {
    log: PartitionLog,
    plain: PlainFile,
    bytes: u64,
    sink: LoopbackSink,
    _dir: TempDir,
}

impl ReadFixture {
    fn create(target_bytes: usize) -> Self {
        let dir = temp_dir("read-");
        let log = PartitionLog::open(
            dir.path(),
            bench_config(FlushPolicy::default()),
            LogOptions::default(),
        )
        .expect("open read log");
        let shape = read_shape();
        for payload in shape.payloads(shape.batches_for(target_bytes)) {
            log.append(payload, CLIENT).expect("fill read log");
        }
        log.flush().expect("flush read log");
        let bytes = log.size_bytes();
        // Written in the same batch-sized chunks as the log, so both files sit in the page cache alike.
        let mut plain = PlainFile::new();
        write_plain(&mut plain.file, &shape.batch, bytes);
        let mut fixture = ReadFixture {
            log,
            plain,
            bytes,
            sink: LoopbackSink::connect(),
            _dir: dir,
        };
        // Read both once, so that measurements start with a warm page cache.
        fixture.time_log_fetches();
        fixture.time_raw_sendfile();
        fixture
    }

    /// The whole log through `PartitionLog::read` and `FileSlice::send_all_blocking`.
    fn time_log_fetches(&mut self) -> Duration {
        let start = Instant::now();
        let sent = fetch_all(&self.log, self.sink.fd());
        self.sink.wait_received(sent);
        let elapsed = start.elapsed();
        assert_eq!(sent, self.bytes, "the fetches must return the whole log");
        elapsed
    }

    /// The plain file through `sendfile(2)`.
    fn time_raw_sendfile(&mut self) -> Duration {
        let start = Instant::now();
        let sent = sendfile_all(&self.plain.file, self.bytes, self.sink.fd());
        self.sink.wait_received(sent);
        start.elapsed()
    }
}

fn write_plain(file: &mut File, chunk: &[u8], bytes: u64) {
    let mut written = 0u64;
    while written < bytes {
        let n = chunk.len().min((bytes - written) as usize);
        file.write_all(&chunk[..n]).expect("write plain file");
        written += n as u64;
    }
    file.sync_data().expect("sync plain file");
}

/// Consumes the whole log as a consumer would: 1 MiB fetches, each slice sent with sendfile. Returns bytes sent.
fn fetch_all(log: &PartitionLog, out_fd: RawFd) -> u64 {
    let end = log.log_end_offset();
    let mut offset = log.log_start_offset();
    let mut sent = 0;
    while offset < end {
        let result = log.read(offset, FETCH_BYTES, end, true).expect("read");
        assert!(
            result.next_offset > offset,
            "read made no progress at {offset}"
        );
        for slice in &result.slices {
            slice.send_all_blocking(out_fd).expect("sendfile slice");
        }
        sent += result.bytes;
        offset = result.next_offset;
    }
    sent
}

/// The baseline: `sendfile(2)` of the whole plain file in calls of at most 1 MiB.
fn sendfile_all(file: &File, len: u64, out_fd: RawFd) -> u64 {
    let mut offset: libc::off_t = 0;
    while (offset as u64) < len {
        let count = (len - offset as u64).min(FETCH_BYTES) as usize;
        // SAFETY: both descriptors are open for the whole call (we borrow the file; the caller owns out_fd),
        // and `offset` is a valid pointer to a local that sendfile advances.
        let n = unsafe { libc::sendfile(out_fd, file.as_raw_fd(), &mut offset, count) };
        if n < 0 {
            let err = io::Error::last_os_error();
            assert_eq!(err.kind(), io::ErrorKind::Interrupted, "sendfile: {err}");
        } else {
            assert!(n > 0, "sendfile sent nothing at {offset}");
        }
    }
    len
}

fn bench_read(c: &mut Criterion) {
    let mut group = c.benchmark_group("read_sendfile");
    configure_group(&mut group);
    let shape = read_shape();
    let bytes = (shape.batches_for(scale().read_log_bytes) * shape.len()) as u64;
    group.throughput(Throughput::Bytes(bytes));
    // Built on first use, so that filtering this group out skips filling 256 MiB.
    let mut fixture: Option<ReadFixture> = None;
    group.bench_function("ferrite", |b| {
        let f = fixture.get_or_insert_with(|| ReadFixture::create(scale().read_log_bytes));
        b.iter_custom(|iters| {
            run_iterations("read_sendfile/ferrite", bytes, iters, || {
                f.time_log_fetches()
            })
        });
    });
    group.bench_function("raw_sendfile", |b| {
        let f = fixture.get_or_insert_with(|| ReadFixture::create(scale().read_log_bytes));
        b.iter_custom(|iters| {
            run_iterations("read_sendfile/raw_sendfile", bytes, iters, || {
                f.time_raw_sendfile()
            })
        });
    });
    group.finish();
}

// ---------------------------------------------------------------------------------------------------------
// 3. Open time of many cleanly closed partitions.
// ---------------------------------------------------------------------------------------------------------

/// `n` partition directories, each holding a few batches and closed cleanly.
///
/// One partition is written through the API (open, three appends, close); the others are file copies of it.
/// Their files are byte for byte what the API would write. Creating 10,000 through the API costs ~9 fsyncs
/// each, over a minute here, for no difference in what `open` sees.
struct PartitionSet {
    dirs: Vec<PathBuf>,
    _root: TempDir,
}

impl PartitionSet {
    fn create(n: usize) -> Self {
        let root = temp_dir(&format!("open-{n}-"));
        let dirs: Vec<PathBuf> = (0..n)
            .map(|i| root.path().join(format!("topic-{i}")))
            .collect();
        create_partition(&dirs[0]);
        let copies = &dirs[1..];
        let per_thread = copies.len().div_ceil(2).max(1);
        std::thread::scope(|s| {
            for chunk in copies.chunks(per_thread) {
                let template = &dirs[0];
                s.spawn(move || chunk.iter().for_each(|dir| copy_dir(template, dir)));
            }
        });
        PartitionSet { dirs, _root: root }
    }

    /// Opens every partition, one after another, and returns the time spent in `open` alone.
    fn time_open_all(&self) -> Duration {
        let mut total = Duration::ZERO;
        for chunk in self.dirs.chunks(OPEN_CHUNK) {
            let start = Instant::now();
            let logs: Vec<PartitionLog> = chunk.iter().map(|dir| open_log(dir)).collect();
            total += start.elapsed();
            for log in &logs {
                let report = log.recovery_report();
                assert!(
                    report.clean_shutdown && report.segments_recovered == 0,
                    "{}: expected a clean open, got {report:?}",
                    log.dir().display()
                );
            }
            close_all(&logs);
        }
        total
    }
}

fn open_log(dir: &Path) -> PartitionLog {
    PartitionLog::open(
        dir,
        bench_config(FlushPolicy::default()),
        LogOptions::default(),
    )
    .expect("open partition")
}

fn create_partition(dir: &Path) {
    let log = open_log(dir);
    for _ in 0..3 {
        log.append(simple_batch(4, RECORD_VALUE_BYTES, now_ms()), CLIENT)
            .expect("append to partition");
    }
    log.close().expect("close partition");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir(to).expect("create partition dir");
    for entry in std::fs::read_dir(from).expect("list template partition") {
        let entry = entry.expect("template dir entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy partition file");
    }
}

/// Closes the logs on several threads (not timed: close syncs, and the next pass needs clean shutdowns).
fn close_all(logs: &[PartitionLog]) {
    let per_thread = logs.len().div_ceil(CLOSE_THREADS).max(1);
    std::thread::scope(|s| {
        for chunk in logs.chunks(per_thread) {
            s.spawn(move || {
                chunk
                    .iter()
                    .for_each(|log| log.close().expect("close partition"))
            });
        }
    });
}

/// Timed by hand rather than by Criterion, whose minimum of 10 samples would mean 11 passes (and 11 rounds
/// of closing 10,000 logs) per size. Honours a Criterion-style name filter given as a plain substring.
fn bench_open() {
    for n in scale().open_partitions {
        let id = format!("open/{n}_partitions");
        if !selected(&id) {
            continue;
        }
        let passes = if n >= 10_000 { 3 } else { 5 };
        println!("Benchmarking {id}: creating partitions, then {passes} passes");
        let set = PartitionSet::create(n);
        let mut times: Vec<Duration> = (0..passes).map(|_| set.time_open_all()).collect();
        for &t in &times {
            record(&id, n as u64, t);
        }
        times.sort();
        let per_partition = |t: Duration| t.as_secs_f64() * 1e6 / n as f64;
        println!(
            "{id:<24} time:   [min {:.1} ms, median {:.1} ms, max {:.1} ms] = {:.1} µs per partition (median)",
            times[0].as_secs_f64() * 1e3,
            times[times.len() / 2].as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3,
            per_partition(times[times.len() / 2]),
        );
    }
}

/// Whether `id` passes the name filter on the command line (the first positional argument, as a substring).
fn selected(id: &str) -> bool {
    const TAKES_VALUE: [&str; 19] = [
        "-c",
        "--color",
        "-s",
        "--save-baseline",
        "-b",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--sample-size",
        "--warm-up-time",
        "--measurement-time",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--profile-time",
        "--plotting-backend",
        "--format",
        "--output-format",
    ];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if TAKES_VALUE.contains(&arg.as_str()) {
            args.next();
        } else if !arg.starts_with('-') {
            return id.contains(&arg);
        }
    }
    true
}

// ---------------------------------------------------------------------------------------------------------
// Summary table.
// ---------------------------------------------------------------------------------------------------------

/// One line of the table: a Ferrite figure, its baseline, and the target for their ratio.
struct Comparison {
    what: String,
    ferrite: String,
    baseline_name: &'static str,
    baseline: String,
    target: Option<f64>,
}

fn comparisons() -> Vec<Comparison> {
    let mut rows = Vec::new();
    for shape in shapes() {
        let size = shape.label;
        rows.push(Comparison {
            what: format!("append {size} batches, no fsync"),
            ferrite: format!("append_no_fsync/ferrite/{size}"),
            baseline_name: "raw write",
            baseline: format!("append_no_fsync/raw_write/{size}"),
            target: Some(0.80),
        });
    }
    for shape in shapes() {
        let size = shape.label;
        for threads in APPENDER_THREADS {
            let plural = if threads == 1 { "" } else { "s" };
            rows.push(Comparison {
                what: format!("append {size} batches, durable, {threads} appender{plural}"),
                ferrite: format!("append_durable/{size}/ferrite_{threads}_threads"),
                baseline_name: "raw write+fdatasync (1 thread)",
                baseline: format!("append_durable/{size}/raw_write_fdatasync"),
                target: (threads == 64).then_some(0.50),
            });
        }
    }
    rows.push(Comparison {
        what: format!(
            "read {} batches, 1MiB fetches, sendfile",
            read_shape().label
        ),
        ferrite: "read_sendfile/ferrite".into(),
        baseline_name: "raw sendfile",
        baseline: "read_sendfile/raw_sendfile".into(),
        target: Some(0.90),
    });
    rows
}

fn print_summary() {
    let mib = MIB as f64;
    println!();
    println!("==== ferrite-log summary: median of all timed iterations; MiB/s = 2^20 bytes/s ====");
    let sizes: Vec<String> = shapes()
        .iter()
        .map(|s| format!("{} = {} B", s.label, s.len()))
        .collect();
    println!("batches of 1 KiB records: {}", sizes.join(", "));
    for row in comparisons() {
        let (Some(ours), Some(base)) = (median_rate(&row.ferrite), median_rate(&row.baseline))
        else {
            continue;
        };
        let ratio = ours / base;
        let verdict = row.target.map_or(String::new(), |t| {
            let met = if ratio >= t { "met" } else { "MISSED" };
            format!("  [target >= {:.0}%: {met}]", t * 100.0)
        });
        println!(
            "{:<45} {:>6.0} MiB/s vs {:<30} {:>6.0} MiB/s = {:>4.0}%{verdict}",
            row.what,
            ours / mib,
            row.baseline_name,
            base / mib,
            ratio * 100.0,
        );
    }
    for n in scale().open_partitions {
        if let Some(per_sec) = median_rate(&format!("open/{n}_partitions")) {
            println!(
                "{:<45} {:>6.0} ms total, {:.1} µs per partition",
                format!("open {n} cleanly closed partitions"),
                n as f64 / per_sec * 1e3,
                1e6 / per_sec,
            );
        }
    }
}

fn main() {
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .without_plots()
        .configure_from_args();
    let started = Instant::now();
    bench_append_no_fsync(&mut criterion);
    bench_append_durable(&mut criterion);
    bench_read(&mut criterion);
    criterion.final_summary();
    bench_open();
    if scale().full {
        print_summary();
        println!("total bench time: {:.0} s", started.elapsed().as_secs_f64());
    }
}

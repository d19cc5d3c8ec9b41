//! `ferrite-bench`: how close the `ferrite` broker gets to the limits of this machine, measured in one run.
//!
//! ```text
//! cargo build --release ferrite ──> ferrite on 127.0.0.1:0, data under target/bench-tmp (a real disk)
//!                                   null broker on 127.0.0.1:0 (acks produce, stores nothing)
//! librdkafka producers/consumers ──> both; raw write/fdatasync/sendfile baselines on the same disk
//!                                ──> markdown table (stdout), <out>/results.json, <out>/throughput.png
//! ```
//! Run: `cargo run --release -p ferrite-bench -- --out target/bench` (add `--quick` for a short run).

mod baseline;
mod broker;
mod chart;
mod cluster;
mod fetch_client;
mod groups;
mod load;
mod null_broker;
mod report;
mod sys;

use broker::{Broker, Error};
use clap::Parser;
use load::{ProducerSpec, Throughput};
use report::{Report, Row};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "End-to-end benchmark of ferrite against limits measured in the same run")]
struct Args {
    /// Directory for results.json and the chart.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// A short run (about a minute): shorter scenarios, partition scaling up to 1,000.
    #[arg(long)]
    quick: bool,
    /// Use the existing target/release/ferrite instead of building it.
    #[arg(long)]
    skip_build: bool,
    /// Producer instances per throughput scenario.
    #[arg(long, default_value_t = 2)]
    producers: usize,
    /// Consumer instances in the consume scenario.
    #[arg(long, default_value_t = 1)]
    consumers: usize,
    /// Run only the scenario groups named (comma-separated: produce, durable, consume, latency, partitions);
    /// all of them by default. For profiling one scenario.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Messages per second for the latency scenario (default: half the maximum measured in this run).
    #[arg(long)]
    latency_rate: Option<f64>,
    /// Run only the consumer-group figures (rebalance time, commits/s, memory per idle group) and write
    /// `<out>/groups.md` and `<out>/groups.json`.
    #[arg(long)]
    groups: bool,
    /// Run only the cluster figures (3 nodes on loopback: acks=all RF 3 against acks=1 RF 1, failover after
    /// kill -9 of a leader, ISR shrink and expansion) and write `<out>/cluster.md` and `<out>/cluster.json`.
    #[arg(long)]
    cluster: bool,
}

struct Ctx {
    args: Args,
    secs: Duration,
    ferrite: Broker,
    null: null_broker::NullBroker,
    scratch: PathBuf,
    report: Report,
    topic_seq: u32,
    /// The open-file limit the broker inherits.
    nofile: u64,
    /// Partitions created on the broker so far (one descriptor each, for the active segment's `.log`).
    partitions_held: u64,
}

fn spec(
    message_bytes: usize,
    acks: &'static str,
    compression: &'static str,
    batch_bytes: usize,
) -> ProducerSpec {
    ProducerSpec {
        message_bytes,
        acks,
        compression,
        linger_ms: 5,
        batch_bytes,
    }
}

const KIB: usize = 1024;

fn main() {
    let args = Args::parse();
    if let Err(e) = run(args) {
        eprintln!("ferrite-bench: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), Error> {
    let wall = Instant::now();
    let bin = broker::build_release(args.skip_build)?;
    let nofile = sys::raise_nofile(65_536)?;
    let tmp_root = broker::workspace_root().join("target").join("bench-tmp");
    std::fs::create_dir_all(&tmp_root)?;
    let tmp = tempfile::Builder::new()
        .prefix("ferrite-bench-")
        .tempdir_in(&tmp_root)?;
    if args.groups {
        let figures = groups::run(&bin, tmp.path(), args.quick)?;
        std::fs::create_dir_all(&args.out)?;
        let table = figures.markdown();
        println!("{table}");
        std::fs::write(args.out.join("groups.md"), &table)?;
        std::fs::write(
            args.out.join("groups.json"),
            serde_json::to_string_pretty(&figures)?,
        )?;
        return Ok(());
    }
    if args.cluster {
        let figures = cluster::run(&bin, tmp.path(), args.quick, args.producers)?;
        std::fs::create_dir_all(&args.out)?;
        let table = figures.markdown();
        println!("{table}");
        std::fs::write(args.out.join("cluster.md"), &table)?;
        std::fs::write(
            args.out.join("cluster.json"),
            serde_json::to_string_pretty(&figures)?,
        )?;
        return Ok(());
    }
    let ferrite = Broker::start(&bin, &tmp.path().join("data"), &[])?;
    let null = null_broker::NullBroker::start()?;
    eprintln!(
        "ferrite {} (pid {}), null broker {}, data in {}, open-file limit {nofile}",
        ferrite.addr,
        ferrite.pid(),
        null.addr,
        ferrite.data_dir.display()
    );
    let secs = Duration::from_secs(if args.quick { 2 } else { 8 });
    let mut ctx = Ctx {
        args,
        secs,
        ferrite,
        null,
        scratch: tmp.path().to_path_buf(),
        report: Report::default(),
        topic_seq: 0,
        nofile,
        partitions_held: 0,
    };
    warm_up(&mut ctx)?;
    produce_scenarios(&mut ctx)?;
    if ctx.runs("latency") {
        latency_scenario(&mut ctx)?;
    }
    if ctx.runs("partitions") {
        partition_scaling(&mut ctx)?;
    }
    ctx.ferrite.stop()?;
    ctx.report.total_seconds = wall.elapsed().as_secs_f64();
    ctx.report.quick = ctx.args.quick;
    ctx.report.write(&ctx.args.out)?;
    Ok(())
}

impl Ctx {
    /// Whether the scenario group `name` runs (see `--only`).
    fn runs(&self, name: &str) -> bool {
        self.args.only.is_empty() || self.args.only.iter().any(|o| o == name)
    }

    fn topic(&mut self, prefix: &str) -> String {
        self.topic_seq += 1;
        format!("{prefix}-{}", self.topic_seq)
    }

    fn create_topic(
        &mut self,
        topic: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> Result<(), Error> {
        load::create_topic(&self.ferrite.addr, topic, partitions, configs)?;
        self.partitions_held += partitions as u64;
        Ok(())
    }

    fn delete_topic(&mut self, topic: &str, partitions: i32) -> Result<(), Error> {
        load::delete_topic(&self.ferrite.addr, topic)?;
        self.partitions_held -= partitions as u64;
        Ok(())
    }

    /// Produces to Ferrite; returns the throughput and broker CPU seconds per GB.
    fn produce_ferrite(
        &mut self,
        topic: &str,
        partitions: i32,
        s: &ProducerSpec,
    ) -> Result<(Throughput, f64), Error> {
        let cpu0 = self.ferrite.cpu_seconds();
        let t = load::produce(
            &self.ferrite.addr,
            topic,
            partitions,
            s,
            self.args.producers,
            self.secs,
        )?;
        let cpu = self.ferrite.cpu_seconds() - cpu0;
        if t.errors > 0 {
            eprintln!("  {} delivery errors on {topic}", t.errors);
        }
        Ok((t, cpu / (t.bytes as f64 / 1e9).max(1e-9)))
    }

    fn produce_null(
        &mut self,
        topic: &str,
        partitions: i32,
        s: &ProducerSpec,
    ) -> Result<Throughput, Error> {
        self.null.set_partitions(topic, partitions);
        load::produce(
            &self.null.addr,
            topic,
            partitions,
            s,
            self.args.producers,
            self.secs,
        )
    }
}

fn label(s: &ProducerSpec) -> String {
    let size = if s.message_bytes >= KIB {
        format!("{} KiB", s.message_bytes / KIB)
    } else {
        format!("{} B", s.message_bytes)
    };
    format!(
        "produce {size}, acks={}, {}, batch {} KiB",
        s.acks,
        s.compression,
        s.batch_bytes / KIB
    )
}

/// Produce throughput of each setting against the null broker; the consume scenario reads the first one's topic
/// back right after it is written. Each topic is deleted once measured, so that every scenario runs with the
/// same page cache: this machine's page cache holds a few GB, and data left from earlier scenarios would make
/// later writes reclaim memory first (and evict the topic the consume scenario reads).
fn produce_scenarios(ctx: &mut Ctx) -> Result<(), Error> {
    let mut matrix = vec![
        spec(KIB, "1", "none", 64 * KIB),
        spec(100, "1", "none", 64 * KIB),
        spec(16 * KIB, "1", "none", 1024 * KIB),
        spec(KIB, "all", "none", 64 * KIB),
        spec(KIB, "1", "lz4", 64 * KIB),
    ];
    if !ctx.args.quick {
        matrix.push(spec(KIB, "1", "none", 1024 * KIB));
    }
    let mut default_all = None;
    for (i, s) in matrix.iter().enumerate() {
        // The first scenario always runs: consume reads its topic back and latency runs at half its rate;
        // durable compares with the acks=all one.
        let needed = i == 0 || (s.acks == "all" && ctx.runs("durable"));
        if !needed && !ctx.runs("produce") {
            continue;
        }
        let name = label(s);
        eprintln!("{name} ...");
        let topic = ctx.topic("produce");
        ctx.create_topic(&topic, 1, &[])?;
        let ceiling = ctx.produce_null(&topic, 1, s)?;
        let (t, cpu_per_gb) = ctx.produce_ferrite(&topic, 1, s)?;
        let target = (i == 0).then_some(0.70);
        ctx.report.push(
            Row::throughput(&name, &t, "null broker", ceiling.mb_per_s(), target)
                .with_cpu(cpu_per_gb, ctx.ferrite.rss_bytes()),
        );
        if i == 0 {
            let raw = baseline::raw_write(&ctx.scratch, t.bytes, s.batch_bytes, false)?;
            ctx.report.push(Row::throughput(
                "same volume, default flush (page cache)",
                &t,
                "raw write(2), 64 KiB",
                raw,
                None,
            ));
            if ctx.runs("consume") {
                consume_scenario(ctx, &topic, t.bytes)?;
            }
        }
        ctx.delete_topic(&topic, 1)?;
        if s.acks == "all" && s.compression == "none" && s.message_bytes == KIB {
            default_all = Some((s.clone(), t));
        }
    }
    if let Some((s, default)) = default_all.filter(|_| ctx.runs("durable")) {
        let name = format!("{} durable", label(&s));
        eprintln!("{name} ...");
        let topic = ctx.topic("durable");
        ctx.create_topic(&topic, 1, &[("flush.messages", "1")])?;
        let (t, cpu_per_gb) = ctx.produce_ferrite(&topic, 1, &s)?;
        ctx.report.push(
            Row::throughput(
                &name,
                &t,
                "same, default flush",
                default.mb_per_s(),
                Some(0.50),
            )
            .with_cpu(cpu_per_gb, ctx.ferrite.rss_bytes()),
        );
        ctx.delete_topic(&topic, 1)?;
        let raw = baseline::raw_write(&ctx.scratch, t.bytes, s.batch_bytes, true)?;
        ctx.report.push(Row::throughput(
            "same volume, durable",
            &t,
            "raw write+fdatasync, 64 KiB",
            raw,
            None,
        ));
    }
    Ok(())
}

/// One short discarded run against each broker, so connection set-up, page-cache growth and CPU frequency
/// ramp-up do not land in the first measured scenario.
fn warm_up(ctx: &mut Ctx) -> Result<(), Error> {
    let s = spec(KIB, "1", "none", 64 * KIB);
    let topic = ctx.topic("warmup");
    ctx.create_topic(&topic, 1, &[])?;
    ctx.null.set_partitions(&topic, 1);
    let warm = Duration::from_secs(1);
    load::produce(&ctx.null.addr, &topic, 1, &s, ctx.args.producers, warm)?;
    load::produce(&ctx.ferrite.addr, &topic, 1, &s, ctx.args.producers, warm)?;
    ctx.delete_topic(&topic, 1)?;
    Ok(())
}

fn consume_scenario(ctx: &mut Ctx, topic: &str, payload: u64) -> Result<(), Error> {
    let bytes = std::fs::read_dir(ctx.ferrite.data_dir.join(format!("{topic}-0")))?
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum::<u64>();
    eprintln!("consume {topic} ({} MB on disk) ...", bytes / 1_000_000);
    let cpu0 = ctx.ferrite.cpu_seconds();
    let t = load::consume(&ctx.ferrite.addr, topic, 1, ctx.args.consumers, payload)?;
    let cpu = ctx.ferrite.cpu_seconds() - cpu0;
    // Compare bytes on the wire: scale payload throughput to the log bytes that were actually sent.
    let wire = Throughput { bytes, ..t };
    let raw = baseline::raw_sendfile(&ctx.scratch, bytes, ctx.secs)?;
    ctx.report.push(
        Row::throughput(
            "consume 1 KiB from page cache, librdkafka consumer (log bytes)",
            &wire,
            "raw sendfile to loopback",
            raw,
            None,
        )
        .with_cpu(
            cpu / (bytes as f64 / 1e9).max(1e-9),
            ctx.ferrite.rss_bytes(),
        ),
    );
    // The broker's own limit: a client that only reads, as the raw sendfile receiver does.
    let end = load::high_watermark(&ctx.ferrite.addr, topic, 0)?;
    let cpu0 = ctx.ferrite.cpu_seconds();
    let f = fetch_client::fetch_all(&ctx.ferrite.addr, topic, 0, end, ctx.secs)?;
    let cpu = ctx.ferrite.cpu_seconds() - cpu0;
    eprintln!(
        "  raw fetch: {} MB in {} fetches",
        f.record_bytes / 1_000_000,
        f.fetches
    );
    let passes = f.record_bytes / bytes.max(1);
    let fetched = Throughput {
        messages: u64::try_from(end).unwrap_or(0) * passes,
        bytes: f.record_bytes,
        seconds: f.seconds,
        errors: 0,
    };
    ctx.report.push(
        Row::throughput(
            "consume 1 KiB from page cache, raw Fetch client (log bytes)",
            &fetched,
            "raw sendfile to loopback",
            raw,
            Some(0.70),
        )
        .with_cpu(
            cpu / (f.record_bytes as f64 / 1e9).max(1e-9),
            ctx.ferrite.rss_bytes(),
        ),
    );
    Ok(())
}

fn latency_scenario(ctx: &mut Ctx) -> Result<(), Error> {
    let max_rate = ctx.report.first_msgs_per_s();
    let rate = ctx.args.latency_rate.unwrap_or((max_rate / 2.0).max(100.0));
    let s = spec(KIB, "1", "none", 64 * KIB);
    let topic = ctx.topic("latency");
    ctx.create_topic(&topic, 1, &[])?;
    eprintln!("latency at {rate:.0} msg/s ...");
    let duration = Duration::from_secs(if ctx.args.quick { 4 } else { 12 });
    let (total0, stolen0, idle0) = sys::cpu_jiffies()?;
    let lat = load::latency(&ctx.ferrite.addr, &topic, &s, rate, duration)?;
    let (total1, stolen1, idle1) = sys::cpu_jiffies()?;
    let share = |a: u64, b: u64| 100.0 * (b - a) as f64 / (total1 - total0).max(1) as f64;
    ctx.report
        .latency(rate, &lat, share(stolen0, stolen1), share(idle0, idle1));
    ctx.delete_topic(&topic, 1)?;
    Ok(())
}

fn partition_scaling(ctx: &mut Ctx) -> Result<(), Error> {
    let counts: &[i32] = if ctx.args.quick {
        &[1, 100]
    } else {
        &[1, 100, 1_000, 10_000]
    };
    let s = spec(KIB, "1", "none", 64 * KIB);
    let mut one = 0.0;
    let mut largest = 1;
    for &n in counts {
        let fds_needed = ctx.partitions_held + n as u64 + 1024;
        if fds_needed > ctx.nofile {
            let note = format!(
                "Skipped: {n} partitions need about {fds_needed} open files with the topics already created; \
                 the open-file hard limit here is {} (raise it with `ulimit -Hn` as root).",
                ctx.nofile
            );
            eprintln!("{note}");
            ctx.report.notes.push(note);
            continue;
        }
        largest = n;
        let topic = ctx.topic(&format!("parts{n}"));
        let created = Instant::now();
        ctx.create_topic(&topic, n, &[])?;
        let create_s = created.elapsed().as_secs_f64();
        eprintln!("{n} partitions (created in {create_s:.1} s) ...");
        let (t, cpu_per_gb) = ctx.produce_ferrite(&topic, n, &s)?;
        if n == 1 {
            one = t.mb_per_s();
        }
        let target = (n == 10_000).then_some(0.50);
        ctx.report.push(
            Row::throughput(
                &format!("produce 1 KiB, {n} partitions (round-robin)"),
                &t,
                "1 partition",
                one,
                target,
            )
            .with_cpu(cpu_per_gb, ctx.ferrite.rss_bytes()),
        );
        // With many partitions librdkafka's own cost per partition batch grows too: its ceiling at the same
        // partition count tells the broker's share of the slowdown from the client's.
        let ceiling = ctx.produce_null(&topic, n, &s)?;
        ctx.report.push(Row::throughput(
            "same, against the null broker ceiling",
            &t,
            &format!("null broker, {n} partitions"),
            ceiling.mb_per_s(),
            None,
        ));
    }
    let rss_before = ctx.ferrite.rss_bytes();
    ctx.ferrite.restart()?;
    std::thread::sleep(Duration::from_millis(500));
    ctx.report.restart(
        largest,
        ctx.partitions_held,
        ctx.ferrite.start_time.as_secs_f64(),
        ctx.ferrite.rss_bytes(),
        rss_before,
    );
    Ok(())
}

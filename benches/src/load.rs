//! The load generator: librdkafka (the rdkafka crate) producers and consumers, as most users run them.
//!
//! * [`produce`]: `instances` producers, each on its own thread, send fixed-size messages round-robin over
//!   the topic's partitions for a fixed time, then flush; throughput counts only acknowledged messages and
//!   the clock stops when the last acknowledgement arrives.
//! * [`consume`]: consumers `assign()` disjoint partitions from the beginning and read until every byte
//!   expected has arrived.
//! * [`latency`]: one producer sends at a fixed rate with a send timestamp in each payload; one consumer
//!   records receipt minus send time.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Producer settings of one scenario.
#[derive(Debug, Clone)]
pub struct ProducerSpec {
    pub message_bytes: usize,
    pub acks: &'static str,
    pub compression: &'static str,
    pub linger_ms: u32,
    pub batch_bytes: usize,
}

/// What a produce run achieved.
#[derive(Debug, Clone, Copy, Default)]
pub struct Throughput {
    pub messages: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub errors: u64,
}

impl Throughput {
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / self.seconds.max(1e-9) / 1e6
    }
    pub fn msgs_per_s(&self) -> f64 {
        self.messages as f64 / self.seconds.max(1e-9)
    }
}

#[derive(Default)]
struct Counts {
    acked: AtomicU64,
    failed: AtomicU64,
}

struct CountingContext(Arc<Counts>);

impl ClientContext for CountingContext {}

impl ProducerContext for CountingContext {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.0.acked.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.0.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

fn producer_config(addr: &str, spec: &ProducerSpec) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", addr)
        .set("acks", spec.acks)
        .set("compression.type", spec.compression)
        .set("linger.ms", spec.linger_ms.to_string())
        .set("batch.size", spec.batch_bytes.to_string())
        .set(
            "message.max.bytes",
            (spec.batch_bytes + 64 * 1024).to_string(),
        )
        .set("queue.buffering.max.kbytes", "262144")
        .set("queue.buffering.max.messages", "1000000")
        .set("message.timeout.ms", "60000")
        .set("enable.idempotence", "false");
    c
}

/// Payload bytes that compress like text (about 2-3x with LZ4), not like zeros or noise.
pub fn payload_pool(bytes: usize) -> Vec<u8> {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let words: Vec<[u8; 8]> = (0..512).map(|_| next().to_le_bytes()).collect();
    let mut pool = Vec::with_capacity(bytes + 8);
    while pool.len() < bytes {
        let r = next();
        if r % 4 == 0 {
            pool.extend_from_slice(&r.to_le_bytes());
        } else {
            pool.extend_from_slice(&words[(r >> 8) as usize % words.len()]);
        }
    }
    pool.truncate(bytes);
    pool
}

/// Produces for `duration` from `instances` producers, then flushes. Partitions are used round-robin.
pub fn produce(
    addr: &str,
    topic: &str,
    partitions: i32,
    spec: &ProducerSpec,
    instances: usize,
    duration: Duration,
) -> Result<Throughput, Error> {
    let pool = Arc::new(payload_pool(1 << 20));
    let started = Instant::now();
    let threads: Vec<_> = (0..instances)
        .map(|i| {
            let (addr, topic, spec, pool) = (
                addr.to_string(),
                topic.to_string(),
                spec.clone(),
                Arc::clone(&pool),
            );
            std::thread::spawn(move || {
                produce_one(
                    &addr,
                    &topic,
                    partitions,
                    &spec,
                    &pool,
                    i,
                    started + duration,
                )
            })
        })
        .collect();
    let mut total = Throughput::default();
    for t in threads {
        let (acked, failed) = t.join().map_err(|_| "producer thread panicked")??;
        total.messages += acked;
        total.errors += failed;
    }
    total.seconds = started.elapsed().as_secs_f64();
    total.bytes = total.messages * spec.message_bytes as u64;
    Ok(total)
}

fn produce_one(
    addr: &str,
    topic: &str,
    partitions: i32,
    spec: &ProducerSpec,
    pool: &[u8],
    instance: usize,
    deadline: Instant,
) -> Result<(u64, u64), Error> {
    let counts = Arc::new(Counts::default());
    let producer: BaseProducer<CountingContext> =
        producer_config(addr, spec).create_with_context(CountingContext(Arc::clone(&counts)))?;
    let size = spec.message_bytes;
    let mut n: u64 = instance as u64 * 7919;
    let mut partition = instance as i32 % partitions.max(1);
    while Instant::now() < deadline {
        for _ in 0..64 {
            let start = (n as usize * 61) % (pool.len() - size);
            let record = BaseRecord::<(), [u8]>::to(topic)
                .payload(&pool[start..start + size])
                .partition(partition);
            match producer.send(record) {
                Ok(()) => {
                    n += 1;
                    partition = (partition + 1) % partitions.max(1);
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(120))?;
    Ok((
        counts.acked.load(Ordering::Relaxed),
        counts.failed.load(Ordering::Relaxed),
    ))
}

/// Creates `topic` with `partitions` partitions and the given topic configs through the admin API.
pub fn create_topic(
    addr: &str,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> Result<(), Error> {
    create_topic_replicated(addr, topic, partitions, 1, configs)
}

/// [`create_topic`] with `replication` replicas per partition.
pub fn create_topic_replicated(
    addr: &str,
    topic: &str,
    partitions: i32,
    replication: i32,
    configs: &[(&str, &str)],
) -> Result<(), Error> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .create()?;
    let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
    for (k, v) in configs {
        new = new.set(k, v);
    }
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(300)));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let results = runtime.block_on(admin.create_topics(&[new], &options))?;
    for r in results {
        r.map_err(|(t, e)| format!("create topic {t}: {e}"))?;
    }
    Ok(())
}

/// Deletes `topic` through the admin API (its files, and their page cache, go with it).
pub fn delete_topic(addr: &str, topic: &str) -> Result<(), Error> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .create()?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(60)));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for r in runtime.block_on(admin.delete_topics(&[topic], &options))? {
        r.map_err(|(t, e)| format!("delete topic {t}: {e}"))?;
    }
    Ok(())
}

fn consumer(addr: &str) -> Result<BaseConsumer, Error> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", "ferrite-bench-assign-only")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "4194304")
        .set("fetch.wait.max.ms", "100")
        .set("queued.max.messages.kbytes", "262144")
        .create()?)
}

/// Reads `expected_bytes` of payload from partitions `0..partitions` of `topic` with `instances` consumers.
pub fn consume(
    addr: &str,
    topic: &str,
    partitions: i32,
    instances: usize,
    expected_bytes: u64,
) -> Result<Throughput, Error> {
    let started = Instant::now();
    let got = Arc::new(AtomicU64::new(0));
    let msgs = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..instances)
        .map(|i| {
            let (addr, topic, got, msgs) = (
                addr.to_string(),
                topic.to_string(),
                Arc::clone(&got),
                Arc::clone(&msgs),
            );
            std::thread::spawn(move || -> Result<(), Error> {
                let c = consumer(&addr)?;
                let mut tpl = TopicPartitionList::new();
                for p in (0..partitions).filter(|p| *p as usize % instances == i) {
                    tpl.add_partition_offset(&topic, p, Offset::Beginning)?;
                }
                c.assign(&tpl)?;
                let deadline = Instant::now() + Duration::from_secs(300);
                while got.load(Ordering::Relaxed) < expected_bytes && Instant::now() < deadline {
                    if let Some(m) = c.poll(Duration::from_millis(100)) {
                        let len = m?.payload_len() as u64;
                        got.fetch_add(len, Ordering::Relaxed);
                        msgs.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| "consumer thread panicked")??;
    }
    Ok(Throughput {
        messages: msgs.load(Ordering::Relaxed),
        bytes: got.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
        errors: 0,
    })
}

/// The high watermark of one partition (ListOffsets through librdkafka).
pub fn high_watermark(addr: &str, topic: &str, partition: i32) -> Result<i64, Error> {
    let (_, high) = consumer(addr)?.fetch_watermarks(topic, partition, Duration::from_secs(10))?;
    Ok(high)
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Latencies (µs, sorted) of messages sent at `rate` per second for `duration`; the first second is skipped.
pub fn latency(
    addr: &str,
    topic: &str,
    spec: &ProducerSpec,
    rate: f64,
    duration: Duration,
) -> Result<Vec<u64>, Error> {
    let c = consumer(addr)?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::End)?;
    c.assign(&tpl)?;
    // Let the consumer reach the end before sending.
    let warm = Instant::now() + Duration::from_secs(1);
    while Instant::now() < warm {
        let _ = c.poll(Duration::from_millis(50));
    }
    let (addr_p, topic_p, spec_p) = (addr.to_string(), topic.to_string(), spec.clone());
    let sender = std::thread::spawn(move || -> Result<u64, Error> {
        let producer: BaseProducer = producer_config(&addr_p, &spec_p).create()?;
        let mut payload = payload_pool(spec_p.message_bytes.max(8));
        let started = Instant::now();
        let mut sent: u64 = 0;
        while started.elapsed() < duration {
            let due = (started.elapsed().as_secs_f64() * rate) as u64;
            while sent < due {
                payload[..8].copy_from_slice(&now_micros().to_le_bytes());
                match producer.send(
                    BaseRecord::<(), [u8]>::to(&topic_p)
                        .payload(&payload[..])
                        .partition(0),
                ) {
                    Ok(()) => sent += 1,
                    // The broker fell behind by the whole queue: wait for acknowledgements and go on (the
                    // delay shows up in the latencies).
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        producer.poll(Duration::from_millis(1));
                    }
                    Err((e, _)) => return Err(e.into()),
                }
            }
            // librdkafka's poll timeout is whole milliseconds (200 µs would be 0, a busy loop that took a
            // core from the broker and the consumer): serve callbacks, then sleep until more is due.
            producer.poll(Duration::ZERO);
            std::thread::sleep(Duration::from_micros(500));
        }
        producer.flush(Duration::from_secs(30))?;
        Ok(sent)
    });
    let skip_until = now_micros() + 1_000_000;
    let mut latencies = Vec::new();
    let mut received: u64 = 0;
    let end = Instant::now() + duration + Duration::from_secs(10);
    while Instant::now() < end {
        if sender.is_finished() && received >= (rate * duration.as_secs_f64()) as u64 {
            break;
        }
        if let Some(m) = c.poll(Duration::from_millis(10)) {
            let now = now_micros();
            let m = m?;
            received += 1;
            if let Some(p) = m.payload().and_then(|p| p.get(..8)) {
                let mut ts = [0u8; 8];
                ts.copy_from_slice(p);
                let sent_at = u64::from_le_bytes(ts);
                if sent_at >= skip_until {
                    latencies.push(now.saturating_sub(sent_at));
                }
            }
        }
    }
    sender.join().map_err(|_| "latency producer panicked")??;
    latencies.sort_unstable();
    Ok(latencies)
}

/// The `q` quantile (0..=1) of sorted values.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

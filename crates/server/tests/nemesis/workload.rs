//! The workload under faults: one idempotent acks=all producer writing unique values, and two consumers
//! reading all the time, one in a group and one assigned every partition; everything each of them was told
//! is recorded with the time it was told.

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The value of record `seq`: unique, so where it lands says which one it is.
pub fn value_of(seq: u64) -> String {
    format!("v{seq:08}")
}

/// An acknowledgement: record `seq` is at `offset` of `partition`.
#[derive(Debug, Clone)]
pub struct Ack {
    pub seq: u64,
    pub partition: i32,
    pub offset: i64,
    pub at: Instant,
}

/// A record a consumer was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    pub partition: i32,
    pub offset: i64,
    pub value: String,
}

/// What the workload saw, once stopped.
#[derive(Debug, Default)]
pub struct Outcome {
    pub acks: Vec<Ack>,
    /// Records the producer gave up on (never acknowledged, so they may or may not be in the log).
    pub failed: Vec<(u64, String)>,
    pub sent: u64,
    /// Per consumer: what it read.
    pub reads: Vec<(&'static str, Vec<Read>)>,
}

/// What the producer thread returns: acknowledgements, records given up on, records sent.
type Produced = (Vec<Ack>, Vec<(u64, String)>, u64);

pub struct Workload {
    stop: Arc<AtomicBool>,
    producer: JoinHandle<Produced>,
    consumers: Vec<(&'static str, JoinHandle<Vec<Read>>)>,
}

impl Workload {
    pub fn start(bootstrap: &str, topic: &str, partitions: i32) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let producer = {
            let (stop, bootstrap, topic) =
                (Arc::clone(&stop), bootstrap.to_string(), topic.to_string());
            std::thread::spawn(move || produce(&bootstrap, &topic, &stop))
        };
        let group = {
            let (stop, bootstrap, topic) =
                (Arc::clone(&stop), bootstrap.to_string(), topic.to_string());
            std::thread::spawn(move || {
                let consumer = consumer(&bootstrap, Some(&format!("{topic}-nemesis")));
                consumer.subscribe(&[&topic]).unwrap();
                read_until(&consumer, &stop)
            })
        };
        let assigned = {
            let (stop, bootstrap, topic) =
                (Arc::clone(&stop), bootstrap.to_string(), topic.to_string());
            std::thread::spawn(move || {
                let consumer = consumer(&bootstrap, None);
                let mut list = TopicPartitionList::new();
                for p in 0..partitions {
                    list.add_partition_offset(&topic, p, Offset::Beginning)
                        .unwrap();
                }
                consumer.assign(&list).unwrap();
                read_until(&consumer, &stop)
            })
        };
        Workload {
            stop,
            producer,
            consumers: vec![("group consumer", group), ("assigned consumer", assigned)],
        }
    }

    /// Stops producing (waiting for every record in flight) and reading.
    pub fn stop(self) -> Outcome {
        self.stop.store(true, Ordering::Release);
        let (acks, failed, sent) = self.producer.join().unwrap();
        let reads = self
            .consumers
            .into_iter()
            .map(|(name, h)| (name, h.join().unwrap()))
            .collect();
        Outcome {
            acks,
            failed,
            sent,
            reads,
        }
    }
}

/// Sends a record every 4 ms (at most 200 in flight) until `stop`, then waits for the rest.
fn produce(bootstrap: &str, topic: &str, stop: &AtomicBool) -> Produced {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "180000")
        .set("linger.ms", "2")
        .create()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let acks = Arc::new(Mutex::new(vec![]));
    let failed = Arc::new(Mutex::new(vec![]));
    let sent = runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        let mut seq = 0u64;
        while !stop.load(Ordering::Acquire) {
            while tasks.len() >= 200 {
                tasks.join_next().await;
            }
            let (key, value) = (seq.to_string(), value_of(seq));
            let record = FutureRecord::to(topic).key(&key).payload(&value);
            match producer.send_result(record) {
                Ok(delivery) => {
                    let (acks, failed) = (Arc::clone(&acks), Arc::clone(&failed));
                    tasks.spawn(async move {
                        match delivery.await {
                            Ok(Ok(d)) => acks.lock().unwrap().push(Ack {
                                seq,
                                partition: d.partition,
                                offset: d.offset,
                                at: Instant::now(),
                            }),
                            Ok(Err((e, _))) => failed.lock().unwrap().push((seq, e.to_string())),
                            Err(_) => failed.lock().unwrap().push((seq, "canceled".into())),
                        }
                    });
                }
                Err((e, _)) => failed.lock().unwrap().push((seq, e.to_string())),
            }
            seq += 1;
            tokio::time::sleep(Duration::from_millis(4)).await;
        }
        while tasks.join_next().await.is_some() {}
        seq
    });
    let acks = std::mem::take(&mut *acks.lock().unwrap());
    let failed = std::mem::take(&mut *failed.lock().unwrap());
    (acks, failed, sent)
}

fn consumer(bootstrap: &str, group: Option<&str>) -> BaseConsumer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "500")
        .set("session.timeout.ms", "10000");
    config.set("group.id", group.unwrap_or("nemesis-assigned"));
    config.create().unwrap()
}

fn read_until(consumer: &BaseConsumer, stop: &AtomicBool) -> Vec<Read> {
    let mut reads = vec![];
    // After the producer stops, go on reading for a while: the end of the log is read too.
    let mut stopped_at: Option<Instant> = None;
    while stopped_at.is_none_or(|t| t.elapsed() < Duration::from_secs(5)) {
        if stopped_at.is_none() && stop.load(Ordering::Acquire) {
            stopped_at = Some(Instant::now());
        }
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            reads.push(Read {
                partition: m.partition(),
                offset: m.offset(),
                value: String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
            });
        }
    }
    reads
}

/// Every record of every partition, from the log start to the high watermark, read by a fresh consumer.
pub fn read_log(bootstrap: &str, topic: &str, partitions: i32) -> Vec<Read> {
    let consumer = consumer(bootstrap, None);
    let mut list = TopicPartitionList::new();
    let mut remaining = std::collections::BTreeMap::new();
    for p in 0..partitions {
        let (_, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(30))
            .unwrap();
        remaining.insert(p, high);
        list.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&list).unwrap();
    let mut reads = vec![];
    let deadline = Instant::now() + Duration::from_secs(120);
    while remaining.values().any(|high| *high > 0) && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            if let Some(high) = remaining.get_mut(&m.partition()) {
                if m.offset() + 1 >= *high {
                    *high = 0;
                }
            }
            reads.push(Read {
                partition: m.partition(),
                offset: m.offset(),
                value: String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
            });
        }
    }
    assert!(
        remaining.values().all(|h| *h == 0),
        "the final read did not reach every high watermark: {remaining:?}"
    );
    reads
}

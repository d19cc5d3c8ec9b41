#![allow(dead_code, clippy::unwrap_used)]

use super::*;

pub fn record_key(i: usize) -> String {
    format!("key-{i}")
}

/// The value of record `i`, so that a record read back says which one it is.
pub fn record_value(i: usize) -> String {
    format!("value-{i}-{}", "x".repeat(i % 50))
}

/// Produces records `keys` (key [`record_key`], value [`record_value`]) to `topic`, to `partition` or by key,
/// all in flight at once; each record's (partition, offset) or error, in order.
pub fn produce(
    bootstrap: &str,
    acks: &str,
    topic: &str,
    partition: Option<i32>,
    keys: std::ops::Range<usize>,
) -> Vec<Result<(i32, i64), String>> {
    produce_with(bootstrap, &[("acks", acks)], topic, partition, keys)
}

/// [`produce`] with these producer settings over the defaults (20 s message timeout, 5 ms linger).
pub fn produce_with(
    bootstrap: &str,
    settings: &[(&str, &str)],
    topic: &str,
    partition: Option<i32>,
    keys: std::ops::Range<usize>,
) -> Vec<Result<(i32, i64), String>> {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let mut config = rdkafka::ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("message.timeout.ms", "20000")
        .set("linger.ms", "5");
    for (k, v) in settings {
        config.set(*k, *v);
    }
    let producer: FutureProducer = config.create().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut pending = vec![];
        for i in keys {
            let (key, value) = (record_key(i), record_value(i));
            let mut record = FutureRecord::to(topic).key(&key).payload(&value);
            record.partition = partition;
            pending.push(producer.send_result(record).map_err(|(e, _)| e.to_string()));
        }
        let mut results = vec![];
        for p in pending {
            results.push(match p {
                Ok(delivery) => match delivery.await {
                    Ok(Ok(d)) => Ok((d.partition, d.offset)),
                    Ok(Err((e, _))) => Err(e.to_string()),
                    Err(_) => Err("delivery canceled".to_string()),
                },
                Err(e) => Err(e),
            });
        }
        results
    })
}

/// One record a consumer read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    pub value: String,
}

/// Subscribes a consumer of `group` to `topic` and reads until `n` records arrived (then one more second, to
/// see any extra) or `timeout` passed; returns what it read.
pub fn consume_group(
    bootstrap: &str,
    topic: &str,
    group: &str,
    n: usize,
    timeout: Duration,
) -> Vec<Consumed> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::Message;
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("session.timeout.ms", "10000")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let started = Instant::now();
    let mut done_at = None;
    let mut read = vec![];
    while started.elapsed() < timeout
        && done_at.is_none_or(|d: Instant| d.elapsed() < Duration::from_secs(1))
    {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => read.push(Consumed {
                partition: m.partition(),
                offset: m.offset(),
                key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                value: String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
            }),
            Some(Err(e)) => eprintln!("consumer {group}: {e}"),
            None => {}
        }
        if read.len() >= n && done_at.is_none() {
            done_at = Some(Instant::now());
        }
    }
    read
}

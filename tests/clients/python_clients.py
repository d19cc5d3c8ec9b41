#!/usr/bin/env python3
"""Round-trips records through a Kafka-protocol broker with one Python client library.

Usage: python_clients.py CLIENT BOOTSTRAP TOPIC_PREFIX [--count N] [--codecs none,gzip,...]
       python_clients.py verify BOOTSTRAP EXPECTED.jsonl
CLIENT is confluent_kafka, kafka_python, aiokafka or all.

For each codec the client supports (none, gzip, snappy, lz4, zstd) it creates a topic with the client's admin
API, produces N keyed records with headers and explicit timestamps (binary keys, a null key, empty, null, small
and large values, duplicate and empty headers) to explicit partitions, checks the offsets the broker returns,
then reads everything back WITHOUT a consumer group (assign + seek to beginning, no commits) and checks that
every record comes back byte-exact and in order, that the high watermarks are right, and that an offset lookup
by timestamp (ListOffsets) finds the right record. Prints one line per client and codec; exits 1 on any failure.

verify reads back with confluent-kafka the topics another client's script wrote (kafkajs_client.js --expect-out)
and checks them record by record.
"""

import argparse
import asyncio
import random
import sys
import time
import traceback
from dataclasses import dataclass
from typing import List, Optional, Tuple

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
PARTITIONS = 3
TIMEOUT_S = 30.0


@dataclass
class Rec:
    partition: int
    offset: int  # expected offset in its partition
    key: Optional[bytes]
    value: Optional[bytes]
    headers: List[Tuple[str, bytes]]
    ts: int


def make_records(n: int, seed: str) -> List[Rec]:
    rng = random.Random(seed)
    base_ts = int(time.time() * 1000) - 60_000
    per_partition = [0] * PARTITIONS
    records = []
    for i in range(n):
        key: Optional[bytes] = b"key-%d-" % i + bytes(rng.randrange(256) for _ in range(i % 6))
        if i % 10 == 3:
            key = None
        if i % 7 == 0:
            value: Optional[bytes] = b""
        elif i % 50 == 11:
            value = None
        elif i == 42:
            value = rng.randbytes(1000) * 150  # 150 kB, compressible
        else:
            # Mostly compressible, so that every codec shrinks the batch (librdkafka sends a batch uncompressed
            # when compression does not make it smaller), with some random bytes.
            size = [1, 17, 100, 1000, 4000][i % 5]
            text = (b"ferrite %d " % i) * (size // 10 + 1)
            value = text[: size - size // 8] + rng.randbytes(size // 8)
        if i % 5 == 4:
            headers: List[Tuple[str, bytes]] = []
        else:
            headers = [
                ("i", str(i).encode()),
                ("bin", bytes(rng.randrange(256) for _ in range(i % 9))),
                ("empty", b""),
                ("dup", b"first"),
                ("dup", b"second"),
                ("cl\u00e9-\u00fc", "\u00e9t\u00e9".encode()),
            ]
        p = i % PARTITIONS
        records.append(Rec(p, per_partition[p], key, value, headers, base_ts + 10 * i))
        per_partition[p] += 1
    return records


def norm_headers(headers) -> List[Tuple[str, bytes]]:
    if not headers:
        return []
    return [(k if isinstance(k, str) else k.decode(), b"" if v is None else bytes(v)) for k, v in headers]


def describe(x) -> str:
    if isinstance(x, (bytes, bytearray)) and len(x) > 40:
        return "%r...(%d bytes)" % (bytes(x[:40]), len(x))
    return repr(x)


class Checker:
    """Collects mismatches for one client and codec."""

    def __init__(self, records: List[Rec]):
        self.records = records
        self.errors: List[str] = []

    def fail(self, msg: str):
        if len(self.errors) < 20:
            self.errors.append(msg)

    def check_produced(self, i: int, partition: int, offset: int):
        r = self.records[i]
        if (partition, offset) != (r.partition, r.offset):
            self.fail(f"produce of record {i}: broker gave partition {partition} offset {offset}, "
                      f"expected {r.partition}/{r.offset}")

    def check_consumed(self, got):
        """got: list of (partition, offset, key, value, headers, ts) in the order the client delivered them."""
        by_partition = {p: [] for p in range(PARTITIONS)}
        for g in got:
            if g[0] not in by_partition:
                self.fail(f"record from unexpected partition {g[0]}")
                continue
            by_partition[g[0]].append(g)
        for p in range(PARTITIONS):
            expected = [r for r in self.records if r.partition == p]
            actual = by_partition[p]
            if len(actual) != len(expected):
                self.fail(f"partition {p}: consumed {len(actual)} records, expected {len(expected)}")
            for e, a in zip(expected, actual):
                _, offset, key, value, headers, ts = a
                where = f"partition {p} offset {e.offset}"
                if offset != e.offset:
                    self.fail(f"{where}: got offset {offset} (out of order or missing records)")
                if key != e.key:
                    self.fail(f"{where}: key {describe(key)} != {describe(e.key)}")
                if value != e.value:
                    self.fail(f"{where}: value {describe(value)} != {describe(e.value)}")
                if norm_headers(headers) != e.headers:
                    self.fail(f"{where}: headers {norm_headers(headers)!r} != {e.headers!r}")
                if ts != e.ts:
                    self.fail(f"{where}: timestamp {ts} != {e.ts}")

    def check_watermark(self, p: int, high: int):
        expected = sum(1 for r in self.records if r.partition == p)
        if high != expected:
            self.fail(f"partition {p}: high watermark {high}, expected {expected}")

    def lookup_target(self) -> Tuple[int, int, int]:
        """A (partition, timestamp, expected offset) for an offset-by-timestamp lookup: a timestamp 5 ms before
        a record in the middle, which no record carries, so the answer is that record's offset (Kafka looks
        inside compressed batches for it)."""
        r = self.records[min(len(self.records) - 1, len(self.records) // 2 + 7)]
        return r.partition, r.ts - 5, r.offset

    def future_ts(self) -> int:
        return self.records[-1].ts + 3_600_000


def consumed_enough(got, records) -> bool:
    return len(got) >= len(records)


# ----------------------------------------------------------------------------------------------------------------
# confluent-kafka (librdkafka, bundled in the wheel)


def run_confluent_kafka(bootstrap: str, topic: str, codec: str, chk: Checker):
    from confluent_kafka import Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)],
                                  request_timeout=TIMEOUT_S)
    for f in futures.values():
        f.result(timeout=TIMEOUT_S)

    producer = Producer({
        "bootstrap.servers": bootstrap,
        "compression.codec": codec,
        "acks": "all",
        "linger.ms": 20,
        "batch.num.messages": 20,  # several batches per partition
        "message.timeout.ms": int(TIMEOUT_S * 1000),
    })
    delivered = {}

    def on_delivery(i):
        def cb(err, msg):
            delivered[i] = (err, msg.partition(), msg.offset())
        return cb

    for i, r in enumerate(chk.records):
        while True:
            try:
                producer.produce(topic, value=r.value, key=r.key, partition=r.partition, timestamp=r.ts,
                                 headers=r.headers or None, on_delivery=on_delivery(i))
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    left = producer.flush(TIMEOUT_S)
    if left:
        chk.fail(f"{left} records still undelivered after {TIMEOUT_S} s")
    for i in range(len(chk.records)):
        if i not in delivered:
            chk.fail(f"no delivery report for record {i}")
            continue
        err, p, o = delivered[i]
        if err is not None:
            chk.fail(f"record {i}: delivery error {err}")
        else:
            chk.check_produced(i, p, o)

    consumer = confluent_consumer(bootstrap)
    try:
        got = confluent_consume(consumer, topic, chk)
        chk.check_consumed(got)
        for p in range(PARTITIONS):
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=TIMEOUT_S)
            chk.check_watermark(p, high)
        p, ts, want = chk.lookup_target()
        [tp] = consumer.offsets_for_times([TopicPartition(topic, p, ts)], timeout=TIMEOUT_S)
        if tp.offset != want:
            chk.fail(f"offsets_for_times(partition {p}, {ts}) = {tp.offset}, expected {want}")
        [tp] = consumer.offsets_for_times([TopicPartition(topic, 0, chk.future_ts())], timeout=TIMEOUT_S)
        if tp.offset != -1:
            chk.fail(f"offsets_for_times(future timestamp) = {tp.offset}, expected -1 (no such record)")
    finally:
        consumer.close()


def confluent_consumer(bootstrap: str):
    from confluent_kafka import Consumer

    # confluent-kafka insists on a group.id, but a consumer that only uses assign() and never commits does not
    # need the group coordinator: librdkafka looks it up in the background and goes on fetching without it.
    return Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "ferrite-assign-only",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "error",
        "check.crcs": True,
    })


def confluent_consume(consumer, topic: str, chk: Checker):
    from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicPartition

    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    got = []
    deadline = time.monotonic() + TIMEOUT_S
    while not consumed_enough(got, chk.records) and time.monotonic() < deadline:
        for m in consumer.consume(num_messages=500, timeout=0.5):
            if m.error():
                raise KafkaException(m.error())
            got.append((m.partition(), m.offset(), m.key(), m.value(), m.headers(), m.timestamp()[1]))
    return got


def verify_expected(bootstrap: str, path: str) -> int:
    """Reads back, with confluent-kafka, topics another client wrote, described record by record in a JSON-lines
    file (topic, partition, offset, key/value base64 or null, headers [[key, base64]], ts)."""
    import base64
    import json

    def b64(x):
        return None if x is None else base64.b64decode(x)

    by_topic = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                by_topic.setdefault(d["topic"], []).append(
                    Rec(d["partition"], d["offset"], b64(d["key"]), b64(d["value"]),
                        [(k, b64(v)) for k, v in d["headers"]], d["ts"]))
    failed = 0
    for topic, records in by_topic.items():
        chk = Checker(records)
        consumer = confluent_consumer(bootstrap)
        try:
            chk.check_consumed(confluent_consume(consumer, topic, chk))
        except Exception:  # noqa: BLE001 - report and go on with the next topic
            chk.fail("exception:\n" + traceback.format_exc())
        finally:
            consumer.close()
        if chk.errors:
            failed += 1
            print(f"FAIL verify {topic} with confluent-kafka", flush=True)
            for e in chk.errors:
                print("    " + e.replace("\n", "\n    "), flush=True)
        else:
            print(f"ok   verify {topic}: {len(records)} records read back byte-exact and in order with "
                  f"confluent-kafka", flush=True)
    if not by_topic:
        print(f"FAIL verify: no records in {path}", flush=True)
        failed += 1
    print(f"{'FAILED' if failed else 'PASSED'}: {failed} topics failed verification", flush=True)
    return 1 if failed else 0


# ----------------------------------------------------------------------------------------------------------------
# kafka-python


def run_kafka_python(bootstrap: str, topic: str, codec: str, chk: Checker):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(TIMEOUT_S * 1000))
    try:
        admin.create_topics({topic: {"num_partitions": PARTITIONS, "replication_factor": 1}},
                            wait_for_metadata=True)
    finally:
        admin.close()

    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        compression_type=None if codec == "none" else codec,
        acks="all",
        linger_ms=20,
    )
    try:
        futures = [
            producer.send(topic, value=r.value, key=r.key, headers=r.headers, partition=r.partition,
                          timestamp_ms=r.ts)
            for r in chk.records
        ]
        producer.flush(timeout=TIMEOUT_S)
        for i, f in enumerate(futures):
            try:
                md = f.get(timeout=TIMEOUT_S)
            except Exception as e:  # noqa: BLE001 - report every failed record
                chk.fail(f"record {i}: {e!r}")
                continue
            chk.check_produced(i, md.partition, md.offset)
    finally:
        producer.close(timeout=TIMEOUT_S)

    # group_id=None: no coordinator, no commits.
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="none",
    )
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        consumer.seek_to_beginning()
        got = []
        deadline = time.monotonic() + TIMEOUT_S
        while not consumed_enough(got, chk.records) and time.monotonic() < deadline:
            for tp, msgs in consumer.poll(timeout_ms=500).items():
                for m in msgs:
                    got.append((tp.partition, m.offset, m.key, m.value, m.headers, m.timestamp))
        chk.check_consumed(got)
        for tp, high in consumer.end_offsets(tps).items():
            chk.check_watermark(tp.partition, high)
        p, ts, want = chk.lookup_target()
        res = consumer.offsets_for_times({TopicPartition(topic, p): ts})
        got_off = res[TopicPartition(topic, p)]
        if got_off is None or got_off.offset != want:
            chk.fail(f"offsets_for_times(partition {p}, {ts}) = {got_off}, expected offset {want}")
        res = consumer.offsets_for_times({TopicPartition(topic, 0): chk.future_ts()})
        if res[TopicPartition(topic, 0)] is not None:
            chk.fail(f"offsets_for_times(future timestamp) = {res}, expected None (no such record)")
    finally:
        consumer.close()


# ----------------------------------------------------------------------------------------------------------------
# aiokafka


async def run_aiokafka_async(bootstrap: str, topic: str, codec: str, chk: Checker):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        resp = await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
        for t in resp.topic_errors:
            if t[1] != 0:
                raise RuntimeError(f"CreateTopics {t[0]}: error code {t[1]}")
    finally:
        await admin.close()

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        compression_type=None if codec == "none" else codec,
        acks="all",
        linger_ms=20,
    )
    await producer.start()
    try:
        futures = []
        for r in chk.records:
            futures.append(await producer.send(topic, value=r.value, key=r.key, partition=r.partition,
                                               timestamp_ms=r.ts, headers=r.headers))
        await producer.flush()
        for i, f in enumerate(futures):
            try:
                md = await asyncio.wait_for(f, TIMEOUT_S)
            except Exception as e:  # noqa: BLE001 - report every failed record
                chk.fail(f"record {i}: {e!r}")
                continue
            chk.check_produced(i, md.partition, md.offset)
    finally:
        await producer.stop()

    # group_id=None: no coordinator, no commits.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="none",
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        got = []
        deadline = time.monotonic() + TIMEOUT_S
        while not consumed_enough(got, chk.records) and time.monotonic() < deadline:
            for tp, msgs in (await consumer.getmany(timeout_ms=500)).items():
                for m in msgs:
                    got.append((tp.partition, m.offset, m.key, m.value, m.headers, m.timestamp))
        chk.check_consumed(got)
        for tp, high in (await consumer.end_offsets(tps)).items():
            chk.check_watermark(tp.partition, high)
        p, ts, want = chk.lookup_target()
        res = await consumer.offsets_for_times({TopicPartition(topic, p): ts})
        got_off = res[TopicPartition(topic, p)]
        if got_off is None or got_off.offset != want:
            chk.fail(f"offsets_for_times(partition {p}, {ts}) = {got_off}, expected offset {want}")
        res = await consumer.offsets_for_times({TopicPartition(topic, 0): chk.future_ts()})
        if res[TopicPartition(topic, 0)] is not None:
            chk.fail(f"offsets_for_times(future timestamp) = {res}, expected None (no such record)")
    finally:
        await consumer.stop()


def run_aiokafka(bootstrap: str, topic: str, codec: str, chk: Checker):
    asyncio.run(asyncio.wait_for(run_aiokafka_async(bootstrap, topic, codec, chk), 4 * TIMEOUT_S))


# ----------------------------------------------------------------------------------------------------------------

CLIENTS = {
    "confluent_kafka": run_confluent_kafka,
    "kafka_python": run_kafka_python,
    "aiokafka": run_aiokafka,
}


def client_version(client: str) -> str:
    if client == "confluent_kafka":
        import confluent_kafka
        return f"confluent-kafka {confluent_kafka.__version__}, librdkafka {confluent_kafka.libversion()[0]}"
    if client == "kafka_python":
        import kafka
        return f"kafka-python {kafka.__version__}"
    import aiokafka
    return f"aiokafka {aiokafka.__version__}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("client", choices=[*CLIENTS, "all", "verify"])
    ap.add_argument("bootstrap")
    ap.add_argument("topic_prefix", help="topic name prefix (verify: the JSON-lines file of expected records)")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--codecs", default=",".join(CODECS), help="comma-separated subset of " + ",".join(CODECS))
    args = ap.parse_args()
    if args.client == "verify":
        return verify_expected(args.bootstrap, args.topic_prefix)
    clients = list(CLIENTS) if args.client == "all" else [args.client]
    failed = 0
    for client in clients:
        print(f"{client}: {client_version(client)}", flush=True)
        for codec in args.codecs.split(","):
            topic = f"{args.topic_prefix}-{client}-{codec}"
            chk = Checker(make_records(args.count, topic))
            start = time.monotonic()
            try:
                CLIENTS[client](args.bootstrap, topic, codec, chk)
            except Exception:  # noqa: BLE001 - report and go on with the next codec
                chk.fail("exception:\n" + traceback.format_exc())
            took = time.monotonic() - start
            if chk.errors:
                failed += 1
                print(f"FAIL {client} {codec}: topic {topic} ({took:.1f} s)", flush=True)
                for e in chk.errors:
                    print("    " + e.replace("\n", "\n    "), flush=True)
            else:
                print(f"ok   {client} {codec}: {len(chk.records)} records on {PARTITIONS} partitions "
                      f"produced, read back byte-exact and in order, watermarks and time lookup right "
                      f"({took:.1f} s)", flush=True)
    print(f"{'FAILED' if failed else 'PASSED'}: {failed} client/codec combinations failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

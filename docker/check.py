"""Client side of scripts/docker-test, with confluent_kafka (librdkafka), talking only to 127.0.0.1.

    check.py free PORT...                      no listener on these loopback ports
    check.py wait PORT... --brokers N          every port answers Metadata naming N live brokers
    check.py create TOPIC --partitions P --replication-factor R --min-insync-replicas M
    check.py isr TOPIC --size N                every partition has a leader and an ISR of N brokers
    check.py leader TOPIC PARTITION            prints the partition's leader id
    check.py produce TOPIC --count N --tag T --acked FILE
                                               acks=all, idempotent; appends each acknowledged value to FILE,
                                               fails unless all N are acknowledged
    check.py consume TOPIC --acked FILE        reads every partition from the start to its high watermark and
                                               fails if an acknowledged value is missing or read twice

Exit status 0 on success, 1 on a failed check (with the reason on stderr).
"""

import argparse
import socket
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

HOST = "127.0.0.1"
CLIENT_PORTS = (19092, 19093, 19094)


def bootstrap(ports=CLIENT_PORTS):
    return ",".join(f"{HOST}:{p}" for p in ports)


def fail(message):
    print(f"check.py: {message}", file=sys.stderr)
    sys.exit(1)


def admin(ports=CLIENT_PORTS):
    return AdminClient({"bootstrap.servers": bootstrap(ports), "log_level": 3})


def cmd_free(args):
    busy = []
    for port in args.ports:
        with socket.socket() as s:
            s.settimeout(1)
            if s.connect_ex((HOST, port)) == 0:
                busy.append(port)
    if busy:
        fail(f"something already listens on {HOST} port(s) {busy}: stop it first")


def cmd_wait(args):
    deadline = time.monotonic() + args.timeout
    pending = list(args.ports)
    last = {}
    while pending and time.monotonic() < deadline:
        for port in list(pending):
            try:
                md = admin([port]).list_topics(timeout=2)
                brokers = sorted(md.brokers)
                last[port] = f"brokers {brokers}"
                if len(brokers) == args.brokers:
                    pending.remove(port)
            except KafkaException as e:
                last[port] = str(e)
        if pending:
            time.sleep(0.5)
    if pending:
        fail(f"after {args.timeout}s these ports do not answer with {args.brokers} brokers: "
             + "; ".join(f"{p}: {last.get(p, 'no answer')}" for p in pending))
    print(f"all of {args.ports} answer with {args.brokers} brokers")


def cmd_create(args):
    topic = NewTopic(args.topic, num_partitions=args.partitions,
                     replication_factor=args.replication_factor,
                     config={"min.insync.replicas": str(args.min_insync_replicas)})
    client = admin()  # kept alive until the answer: a destroyed client fails its futures with _DESTROY
    futures = client.create_topics([topic], operation_timeout=30, request_timeout=30)
    try:
        futures[args.topic].result(timeout=60)
    except Exception as e:  # noqa: BLE001 - any failure is the check's failure
        fail(f"create {args.topic}: {e}")
    print(f"created {args.topic}: {args.partitions} partitions, replication factor "
          f"{args.replication_factor}, min.insync.replicas {args.min_insync_replicas}")


def partitions(topic):
    md = admin().list_topics(topic=topic, timeout=10)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        raise KafkaException(f"topic {topic}: {None if t is None else t.error}")
    return md, t.partitions


def cmd_isr(args):
    deadline = time.monotonic() + args.timeout
    state = "no answer"
    while time.monotonic() < deadline:
        try:
            _, parts = partitions(args.topic)
            state = "; ".join(f"p{p.id} leader {p.leader} isr {sorted(p.isrs)}"
                              for p in sorted(parts.values(), key=lambda p: p.id))
            if parts and all(p.leader >= 0 and len(p.isrs) == args.size for p in parts.values()):
                print(f"{args.topic}: {state}")
                return
        except KafkaException as e:
            state = str(e)
        time.sleep(0.5)
    fail(f"after {args.timeout}s {args.topic} has not every partition led with an ISR of {args.size}: {state}")


def cmd_leader(args):
    _, parts = partitions(args.topic)
    p = parts.get(args.partition)
    if p is None or p.leader < 0:
        fail(f"{args.topic}-{args.partition} has no leader")
    print(p.leader)


def cmd_produce(args):
    producer = Producer({
        "bootstrap.servers": bootstrap(),
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "message.timeout.ms": 60000,
        "log_level": 3,
    })
    acked, errors = [], []

    def on_delivery(err, msg):
        if err is None:
            acked.append(msg.value().decode())
        else:
            errors.append(f"{msg.value().decode()}: {err}")

    started = time.monotonic()
    for i in range(args.count):
        value = f"{args.tag}-{i:06d}"
        while True:
            try:
                producer.produce(args.topic, key=value.encode(), value=value.encode(), on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    left = producer.flush(90)
    took = time.monotonic() - started
    with open(args.acked, "a", encoding="utf-8") as f:
        for value in acked:
            f.write(value + "\n")
    print(f"produced {args.count} ({args.tag}) with acks=all: {len(acked)} acknowledged, "
          f"{len(errors)} failed, {left} unanswered, in {took:.1f}s")
    if errors or left or len(acked) != args.count:
        fail("not every record was acknowledged: " + "; ".join(errors[:5]))


def cmd_consume(args):
    with open(args.acked, encoding="utf-8") as f:
        expected = [line.strip() for line in f if line.strip()]
    consumer = Consumer({
        "bootstrap.servers": bootstrap(),
        "group.id": "docker-test-reader",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "log_level": 3,
    })
    _, parts = partitions(args.topic)
    ends = {}
    for pid in parts:
        _, high = consumer.get_watermark_offsets(TopicPartition(args.topic, pid), timeout=10)
        ends[pid] = high
    consumer.assign([TopicPartition(args.topic, pid, 0) for pid in parts])
    positions = {pid: 0 for pid in parts}
    seen = {}
    deadline = time.monotonic() + args.timeout
    while any(positions[p] < ends[p] for p in parts) and time.monotonic() < deadline:
        for msg in consumer.consume(num_messages=1000, timeout=1):
            if msg.error():
                print(f"consume: {msg.error()}", file=sys.stderr)
                continue
            positions[msg.partition()] = msg.offset() + 1
            value = msg.value().decode()
            seen[value] = seen.get(value, 0) + 1
    consumer.close()
    short = {p: (positions[p], ends[p]) for p in parts if positions[p] < ends[p]}
    missing = [v for v in expected if v not in seen]
    twice = sorted(v for v, n in seen.items() if n > 1)
    print(f"consumed {sum(seen.values())} records ({len(seen)} distinct) up to the high watermarks "
          f"{dict(sorted(ends.items()))}; {len(expected)} acknowledged, {len(missing)} missing, "
          f"{len(twice)} read more than once")
    if short:
        fail(f"partitions not read to their high watermark in {args.timeout}s (position, end): {short}")
    if missing:
        fail(f"acknowledged records lost: {missing[:10]}{' ...' if len(missing) > 10 else ''}")
    if twice:
        fail(f"records read more than once (idempotent producer): {twice[:10]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("free")
    p.add_argument("ports", type=int, nargs="+")
    p = sub.add_parser("wait")
    p.add_argument("ports", type=int, nargs="+")
    p.add_argument("--brokers", type=int, required=True)
    p.add_argument("--timeout", type=float, default=90)
    p = sub.add_parser("create")
    p.add_argument("topic")
    p.add_argument("--partitions", type=int, required=True)
    p.add_argument("--replication-factor", type=int, required=True)
    p.add_argument("--min-insync-replicas", type=int, required=True)
    p = sub.add_parser("isr")
    p.add_argument("topic")
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--timeout", type=float, default=60)
    p = sub.add_parser("leader")
    p.add_argument("topic")
    p.add_argument("partition", type=int)
    p = sub.add_parser("produce")
    p.add_argument("topic")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--tag", required=True)
    p.add_argument("--acked", required=True)
    p = sub.add_parser("consume")
    p.add_argument("topic")
    p.add_argument("--acked", required=True)
    p.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    {"free": cmd_free, "wait": cmd_wait, "create": cmd_create, "isr": cmd_isr, "leader": cmd_leader,
     "produce": cmd_produce, "consume": cmd_consume}[args.command](args)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Consumer groups through Python Kafka clients against a Kafka-protocol broker.

Usage: group_clients.py share CLIENT BOOTSTRAP TOPIC GROUP
       group_clients.py admin BOOTSTRAP TOPIC GROUP
CLIENT is confluent_kafka, confluent_kafka_kip848 (librdkafka with group.protocol=consumer, KIP-848),
kafka_python or aiokafka.

share: creates TOPIC (4 partitions) and starts two consumers of GROUP (subscribe, manual commits, earliest
reset), each in its own thread, and waits until they own disjoint partitions that cover the topic. Then it
produces 200 records (record i to partition i % 4, so at offset i // 4) and checks that together the two read
every record exactly once, each only from partitions it owns, with no rebalance on the way, committing after
every batch; both then see every partition committed at its log end offset. While both are up, the client's
admin API must describe the group as they see it. Both leave; 100 more records are produced, and a third
consumer of the group must read exactly those (it starts at the committed offsets, not at the earliest), commit,
and see committed offsets equal to the log end offsets; the admin API must show the same and the group empty.

admin: confluent-kafka's AdminClient on a classic group of two confluent-kafka consumers that commit chosen
offsets (with metadata) for their own partitions: list_consumer_groups and describe_consumer_groups (state,
type, assignor, members and their assignments, coordinator), list_consumer_group_offsets and the lag against
the watermarks, delete_consumer_groups refused while the group has members; after they leave: the group is
empty, alter_consumer_group_offsets, delete_consumer_groups, and deleting it again fails.

Prints one line per check group; exits 1 on any failure.
"""

import argparse
import asyncio
import concurrent.futures
import inspect
import queue
import struct
import sys
import threading
import time
import traceback
from typing import Callable, Dict, List, Optional, Set, Tuple

PARTITIONS = 4
FIRST = 200
SECOND = 100
TIMEOUT_S = 60.0  # one group reaching a shape, or one request
POLL_S = 0.2

Parts = Set[int]
Record = Tuple[int, int, bytes]  # partition, offset, value


def value_of(i: int) -> bytes:
    return b"rec-%d" % i


def index_of(value: bytes) -> int:
    return int(value.split(b"-")[1])


class Failures:
    def __init__(self):
        self.errors: List[str] = []

    def fail(self, msg: str):
        if len(self.errors) < 30:
            self.errors.append(msg)

    def check(self, ok: bool, msg: str) -> bool:
        if not ok:
            self.fail(msg)
        return ok


def parse_assignment(data: bytes, topic: str) -> Parts:
    """The partitions of `topic` in a ConsumerProtocolAssignment (version, [topic, [partition]], user data)."""
    pos = 2
    (topics,) = struct.unpack_from(">i", data, pos)
    pos += 4
    parts: Parts = set()
    for _ in range(topics):
        (length,) = struct.unpack_from(">h", data, pos)
        name = data[pos + 2: pos + 2 + length].decode()
        pos += 2 + length
        (n,) = struct.unpack_from(">i", data, pos)
        pos += 4
        found = struct.unpack_from(">%di" % n, data, pos)
        pos += 4 * n
        if name == topic:
            parts.update(found)
    return parts


def disjoint_cover(sets: List[Parts]) -> Optional[str]:
    """None when the sets are non-empty, disjoint and cover every partition; else what is wrong."""
    seen: Parts = set()
    for i, s in enumerate(sets):
        if not s:
            return f"consumer {i} owns nothing: {sets}"
        if seen & s:
            return f"partitions {sorted(seen & s)} owned twice: {sets}"
        seen |= s
    if seen != set(range(PARTITIONS)):
        return f"{sets} do not cover 0..{PARTITIONS - 1}"
    return None


def wait_for(what: str, f: Failures, probe: Callable[[], Optional[str]], timeout: float = TIMEOUT_S) -> bool:
    """Calls probe() until it returns None (done); fails with its last complaint after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            complaint = probe()
        except Exception as e:  # noqa: BLE001 - a transient error is a complaint like any other
            complaint = f"{type(e).__name__}: {e}"
        if complaint is None:
            return True
        if time.monotonic() > deadline:
            f.fail(f"{what}: not within {timeout:.0f} s: {complaint}")
            return False
        time.sleep(POLL_S)


# ----------------------------------------------------------------------------------------------------------------
# A group member in its own thread. Only that thread touches the client's consumer; the main thread reads what
# it publishes and asks it to run calls (commit, committed) through a queue.


class Member:
    def __init__(self, name: str):
        self.name = name
        self.lock = threading.Lock()
        self.assignment: frozenset = frozenset()
        self.history: List[frozenset] = []
        self.records: List[Record] = []
        self.errors: List[str] = []
        self.calls: "queue.Queue" = queue.Queue()
        self.stop = threading.Event()
        self.commit_batches = True
        self.thread: Optional[threading.Thread] = None

    def saw(self, assignment: Parts):
        with self.lock:
            a = frozenset(assignment)
            if a != self.assignment:
                self.assignment = a
                self.history.append(a)

    def add(self, batch: List[Record]):
        with self.lock:
            self.records.extend(batch)

    def error(self, msg: str):
        with self.lock:
            if len(self.errors) < 10:
                self.errors.append(msg)

    def snapshot(self) -> Tuple[frozenset, List[Record], List[str]]:
        with self.lock:
            return self.assignment, list(self.records), list(self.errors)

    def call(self, fn):
        """Runs fn(consumer) on the member's thread and returns its result (or raises its exception)."""
        done: concurrent.futures.Future = concurrent.futures.Future()
        self.calls.put((fn, done))
        return done.result(timeout=TIMEOUT_S)

    def leave(self):
        self.stop.set()
        if self.thread is not None:
            self.thread.join(TIMEOUT_S)
            if self.thread.is_alive():
                self.error("did not close within the timeout")


def member_loop(member: Member, open_consumer):
    """Polls until stopped: publishes the assignment, keeps the records, commits after each batch, runs calls."""
    try:
        consumer = open_consumer()
    except Exception:  # noqa: BLE001
        member.error("opening the consumer:\n" + traceback.format_exc())
        return
    deadline = time.monotonic() + 6 * TIMEOUT_S
    try:
        while not member.stop.is_set() and time.monotonic() < deadline:
            while not member.calls.empty():
                fn, done = member.calls.get()
                try:
                    done.set_result(fn(consumer))
                except Exception as e:  # noqa: BLE001 - handed to the caller
                    done.set_exception(e)
            try:
                batch = consumer.poll()
            except Exception as e:  # noqa: BLE001
                member.error(f"poll: {type(e).__name__}: {e}")
                batch = []
            member.saw(consumer.assignment())
            if batch:
                member.add(batch)
                if member.commit_batches:
                    try:
                        consumer.commit()
                    except Exception as e:  # noqa: BLE001
                        member.error(f"commit after a batch: {type(e).__name__}: {e}")
    finally:
        try:
            consumer.close()
        except Exception as e:  # noqa: BLE001
            member.error(f"close: {type(e).__name__}: {e}")


async def async_member_loop(member: Member, open_consumer):
    """member_loop for an asyncio client: the same steps, awaiting the consumer's coroutines."""
    try:
        consumer = await open_consumer()
    except Exception:  # noqa: BLE001
        member.error("opening the consumer:\n" + traceback.format_exc())
        return
    deadline = time.monotonic() + 6 * TIMEOUT_S
    try:
        while not member.stop.is_set() and time.monotonic() < deadline:
            while not member.calls.empty():
                fn, done = member.calls.get()
                try:
                    result = fn(consumer)
                    if inspect.isawaitable(result):
                        result = await result
                    done.set_result(result)
                except Exception as e:  # noqa: BLE001
                    done.set_exception(e)
            try:
                batch = await consumer.poll()
            except Exception as e:  # noqa: BLE001
                member.error(f"poll: {type(e).__name__}: {e}")
                batch = []
            member.saw(consumer.assignment())
            if batch:
                member.add(batch)
                if member.commit_batches:
                    try:
                        await consumer.commit()
                    except Exception as e:  # noqa: BLE001
                        member.error(f"commit after a batch: {type(e).__name__}: {e}")
    finally:
        try:
            await consumer.close()
        except Exception as e:  # noqa: BLE001
            member.error(f"close: {type(e).__name__}: {e}")


# ----------------------------------------------------------------------------------------------------------------
# confluent-kafka (librdkafka)


class ConfluentConsumer:
    def __init__(self, bootstrap: str, group: str, topic: str, client_id: str, kip848: bool, reset: str):
        from confluent_kafka import Consumer

        conf = {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": client_id,
            "enable.auto.commit": False,
            "auto.offset.reset": reset,
        }
        if kip848:
            conf["group.protocol"] = "consumer"
        else:
            conf.update({"session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
        self.topic = topic
        self.c = Consumer(conf)
        self.c.subscribe([topic])

    def poll(self) -> List[Record]:
        from confluent_kafka import KafkaException

        out = []
        for m in self.c.consume(num_messages=100, timeout=POLL_S):
            if m.error():
                raise KafkaException(m.error())
            out.append((m.partition(), m.offset(), m.value()))
        return out

    def assignment(self) -> Parts:
        return {tp.partition for tp in self.c.assignment() if tp.topic == self.topic}

    def commit(self):
        for tp in self.c.commit(asynchronous=False) or []:
            if tp.error is not None:
                raise RuntimeError(f"commit of partition {tp.partition}: {tp.error}")

    def commit_offsets(self, offsets: Dict[int, Tuple[int, str]]):
        from confluent_kafka import TopicPartition

        tps = [TopicPartition(self.topic, p, o, metadata=m) for p, (o, m) in offsets.items()]
        for tp in self.c.commit(offsets=tps, asynchronous=False) or []:
            if tp.error is not None:
                raise RuntimeError(f"commit of partition {tp.partition}: {tp.error}")

    def committed(self) -> Dict[int, Optional[int]]:
        from confluent_kafka import TopicPartition

        tps = self.c.committed([TopicPartition(self.topic, p) for p in range(PARTITIONS)], timeout=TIMEOUT_S)
        return {tp.partition: (tp.offset if tp.offset >= 0 else None) for tp in tps}

    def close(self):
        self.c.close()


class Confluent:
    """confluent-kafka: producer, consumers and the AdminClient checks of the share scenario."""

    def __init__(self, bootstrap: str, kip848: bool = False):
        from confluent_kafka.admin import AdminClient

        self.bootstrap = bootstrap
        self.kip848 = kip848
        self.admin = AdminClient({"bootstrap.servers": bootstrap})

    def version(self) -> str:
        import confluent_kafka

        protocol = "consumer (KIP-848)" if self.kip848 else "classic"
        return (f"confluent-kafka {confluent_kafka.__version__}, librdkafka {confluent_kafka.libversion()[0]}, "
                f"group protocol {protocol}")

    def create_topic(self, topic: str):
        from confluent_kafka.admin import NewTopic

        for fut in self.admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)],
                                            request_timeout=TIMEOUT_S).values():
            fut.result(timeout=TIMEOUT_S)

    def produce(self, topic: str, indexes: range, f: Failures):
        """Produces value_of(i) to partition i % 4 and checks that it lands at offset i // 4."""
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": self.bootstrap, "acks": "all", "linger.ms": 5,
                             "message.timeout.ms": int(TIMEOUT_S * 1000)})
        delivered = {}

        def cb(i):
            return lambda err, msg: delivered.__setitem__(i, (err, msg.partition(), msg.offset()))

        for i in indexes:
            producer.produce(topic, value=value_of(i), key=b"k%d" % i, partition=i % PARTITIONS,
                             on_delivery=cb(i))
            producer.poll(0)
        producer.flush(TIMEOUT_S)
        for i in indexes:
            got = delivered.get(i)
            f.check(got is not None and got[0] is None and got[1:] == (i % PARTITIONS, i // PARTITIONS),
                    f"produce of record {i}: delivery {got}, expected partition {i % PARTITIONS} "
                    f"offset {i // PARTITIONS}")

    def end_offsets(self, topic: str) -> Dict[int, int]:
        from confluent_kafka import Consumer, TopicPartition

        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "ferrite-watermarks"})
        try:
            return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=TIMEOUT_S)[1]
                    for p in range(PARTITIONS)}
        finally:
            c.close()

    def open_consumer(self, group: str, topic: str, client_id: str, reset: str = "earliest"):
        return lambda: ConfluentConsumer(self.bootstrap, group, topic, client_id, self.kip848, reset)

    def run_member(self, member: Member, open_consumer):
        member_loop(member, open_consumer)

    def describe(self, group: str, topic: str):
        """(state name, type name, {client id: partitions}) from describe_consumer_groups."""
        d = self.admin.describe_consumer_groups([group], request_timeout=TIMEOUT_S)[group].result(timeout=TIMEOUT_S)
        members = {m.client_id: {tp.partition for tp in m.assignment.topic_partitions if tp.topic == topic}
                   for m in d.members}
        return d.state.name, d.type.name, members

    def check_while_up(self, group: str, topic: str, members: Dict[str, Parts], f: Failures):
        want_type = "CONSUMER" if self.kip848 else "CLASSIC"

        def probe():
            state, kind, described = self.describe(group, topic)
            if (state, kind, described) != ("STABLE", want_type, members):
                return f"described as {state}, type {kind}, members {described}; want STABLE, {want_type}, {members}"
            return None

        wait_for("describe_consumer_groups while both are up", f, probe)
        listing = self.admin.list_consumer_groups(request_timeout=TIMEOUT_S).result(timeout=TIMEOUT_S)
        mine = [g for g in listing.valid if g.group_id == group]
        f.check(len(mine) == 1 and mine[0].state.name == "STABLE" and mine[0].type.name == want_type
                and not mine[0].is_simple_consumer_group,
                f"list_consumer_groups: {[(g.group_id, g.state, g.type) for g in mine]}, "
                f"want one STABLE {want_type} group; errors {listing.errors}")

    def check_after(self, group: str, topic: str, end: Dict[int, int], f: Failures):
        offsets = list_offsets_confluent(self.admin, group, topic)
        f.check(offsets == end, f"list_consumer_group_offsets: {offsets}, want the log end offsets {end}")

        def probe():
            state, _, described = self.describe(group, topic)
            return None if (state, described) == ("EMPTY", {}) else f"{state} with members {described}"

        wait_for("describe_consumer_groups after every member left", f, probe)


def list_offsets_confluent(admin, group: str, topic: str, with_metadata: bool = False) -> Dict[int, object]:
    """The group's committed offset (None when there is none) per partition, with metadata if asked."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

    request = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(PARTITIONS)])]
    result = admin.list_consumer_group_offsets(request, request_timeout=TIMEOUT_S)[group].result(timeout=TIMEOUT_S)
    offsets = {tp.partition: (tp.offset if tp.offset >= 0 else None, tp.metadata) for tp in result.topic_partitions}
    return offsets if with_metadata else {p: o for p, (o, _) in offsets.items()}


# ----------------------------------------------------------------------------------------------------------------
# kafka-python


class KafkaPythonConsumer:
    def __init__(self, bootstrap: str, group: str, topic: str, client_id: str, reset: str):
        from kafka import KafkaConsumer

        self.topic = topic
        self.c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, client_id=client_id,
                               enable_auto_commit=False, auto_offset_reset=reset,
                               session_timeout_ms=6000, heartbeat_interval_ms=500)
        self.c.subscribe([topic])

    def poll(self) -> List[Record]:
        batches = self.c.poll(timeout_ms=int(POLL_S * 1000))
        return [(tp.partition, m.offset, m.value) for tp, msgs in batches.items() for m in msgs]

    def assignment(self) -> Parts:
        return {tp.partition for tp in self.c.assignment() if tp.topic == self.topic}

    def commit(self):
        self.c.commit()

    def committed(self) -> Dict[int, Optional[int]]:
        from kafka import TopicPartition

        return {p: self.c.committed(TopicPartition(self.topic, p)) for p in range(PARTITIONS)}

    def close(self):
        self.c.close(autocommit=False)


class KafkaPython:
    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap

    def version(self) -> str:
        import kafka

        return f"kafka-python {kafka.__version__}"

    def admin(self):
        from kafka.admin import KafkaAdminClient

        return KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=int(TIMEOUT_S * 1000))

    def create_topic(self, topic: str):
        admin = self.admin()
        try:
            admin.create_topics({topic: {"num_partitions": PARTITIONS, "replication_factor": 1}},
                                wait_for_metadata=True)
        finally:
            admin.close()

    def produce(self, topic: str, indexes: range, f: Failures):
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5)
        try:
            futures = [(i, producer.send(topic, value=value_of(i), key=b"k%d" % i, partition=i % PARTITIONS))
                       for i in indexes]
            producer.flush(timeout=TIMEOUT_S)
            for i, fut in futures:
                try:
                    md = fut.get(timeout=TIMEOUT_S)
                    got = (md.partition, md.offset)
                except Exception as e:  # noqa: BLE001
                    got = repr(e)
                f.check(got == (i % PARTITIONS, i // PARTITIONS),
                        f"produce of record {i}: {got}, expected partition {i % PARTITIONS} offset {i // PARTITIONS}")
        finally:
            producer.close(timeout=TIMEOUT_S)

    def open_consumer(self, group: str, topic: str, client_id: str, reset: str = "earliest"):
        return lambda: KafkaPythonConsumer(self.bootstrap, group, topic, client_id, reset)

    def run_member(self, member: Member, open_consumer):
        member_loop(member, open_consumer)

    def describe(self, admin, group: str, topic: str):
        d = admin.describe_groups([group])[group]
        members = {}
        for m in d.get("members", []):
            a = m.get("member_assignment")
            if isinstance(a, (bytes, bytearray)):
                parts = parse_assignment(bytes(a), topic)
            else:
                parts = {p for tp in (a or {}).get("assigned_partitions", []) if tp["topic"] == topic
                         for p in tp["partitions"]}
            members[m["client_id"]] = parts
        return d.get("error"), d.get("group_state"), d.get("protocol_type"), members

    def check_while_up(self, group: str, topic: str, members: Dict[str, Parts], f: Failures):
        admin = self.admin()
        try:
            def probe():
                got = self.describe(admin, group, topic)
                want = (None, "Stable", "consumer", members)
                return None if got == want else f"described as {got}, want {want}"

            wait_for("describe_groups while both are up", f, probe)
            mine = [g for g in admin.list_groups() if g.get("group_id") == group]
            f.check(len(mine) == 1 and mine[0].get("protocol_type") == "consumer"
                    and mine[0].get("group_state") in (None, "", "Stable"),
                    f"list_groups: {mine}, want one Stable consumer group")
        finally:
            admin.close()

    def check_after(self, group: str, topic: str, end: Dict[int, int], f: Failures):
        from kafka import TopicPartition
        from kafka.structs import OffsetAndMetadata

        admin = self.admin()
        try:
            offsets = {tp.partition: om.offset for tp, om in admin.list_group_offsets({group: None})[group].items()
                       if tp.topic == topic}
            f.check(offsets == end, f"list_group_offsets: {offsets}, want the log end offsets {end}")

            def probe():
                got = self.describe(admin, group, topic)
                return None if got == (None, "Empty", "consumer", {}) else f"described as {got}"

            wait_for("describe_groups after every member left", f, probe)

            # OffsetCommit from the admin client, OffsetDelete and DeleteGroups, on a group of their own.
            other = group + "-admin"
            tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
            errors = admin.alter_group_offsets(other, {tp: OffsetAndMetadata(10 + tp.partition, "", -1)
                                                       for tp in tps})
            f.check(all(e.__name__ == "NoError" for e in errors.values()), f"alter_group_offsets: {errors}")
            got = {tp.partition: om.offset for tp, om in admin.list_group_offsets({other: tps})[other].items()}
            f.check(got == {p: 10 + p for p in range(PARTITIONS)}, f"offsets after alter_group_offsets: {got}")
            errors = admin.delete_group_offsets(other, [tps[0]])
            f.check([e.__name__ for e in errors.values()] == ["NoError"], f"delete_group_offsets: {errors}")
            got = {tp.partition: om.offset for tp, om in admin.list_group_offsets({other: tps})[other].items()
                   if om.offset >= 0}
            f.check(got == {p: 10 + p for p in range(1, PARTITIONS)},
                    f"offsets after delete_group_offsets of partition 0: {got}")
            deleted = admin.delete_groups([other])
            deleted = dict(deleted)  # {group: "OK" or the error's name} (a list of pairs in some versions)
            f.check(deleted == {other: "OK"}, f"delete_groups: {deleted}")
            left = [g.get("group_id") for g in admin.list_groups()]
            f.check(other not in left and group in left, f"list_groups after delete_groups: {left}")
        finally:
            admin.close()


# ----------------------------------------------------------------------------------------------------------------
# aiokafka


class AioConsumer:
    def __init__(self, consumer, topic: str):
        self.c = consumer
        self.topic = topic

    @staticmethod
    async def open(bootstrap: str, group: str, topic: str, client_id: str, reset: str) -> "AioConsumer":
        from aiokafka import AIOKafkaConsumer

        c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, client_id=client_id,
                             enable_auto_commit=False, auto_offset_reset=reset,
                             session_timeout_ms=6000, heartbeat_interval_ms=500)
        await c.start()
        c.subscribe([topic])
        return AioConsumer(c, topic)

    async def poll(self) -> List[Record]:
        batches = await self.c.getmany(timeout_ms=int(POLL_S * 1000))
        return [(tp.partition, m.offset, m.value) for tp, msgs in batches.items() for m in msgs]

    def assignment(self) -> Parts:
        return {tp.partition for tp in self.c.assignment() if tp.topic == self.topic}

    async def commit(self):
        await self.c.commit()

    async def committed(self) -> Dict[int, Optional[int]]:
        from aiokafka import TopicPartition

        return {p: await self.c.committed(TopicPartition(self.topic, p)) for p in range(PARTITIONS)}

    async def close(self):
        await self.c.stop()


class Aiokafka:
    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap

    def version(self) -> str:
        import aiokafka

        return f"aiokafka {aiokafka.__version__}"

    async def _admin(self, fn):
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=int(TIMEOUT_S * 1000))
        await admin.start()
        try:
            return await fn(admin)
        finally:
            await admin.close()

    def admin(self, fn):
        return asyncio.run(asyncio.wait_for(self._admin(fn), TIMEOUT_S))

    def create_topic(self, topic: str):
        from aiokafka.admin import NewTopic

        async def create(admin):
            resp = await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
            for t in resp.topic_errors:
                if t[1] != 0:
                    raise RuntimeError(f"CreateTopics {t[0]}: error code {t[1]}")

        self.admin(create)

    def produce(self, topic: str, indexes: range, f: Failures):
        from aiokafka import AIOKafkaProducer

        async def run():
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5)
            await producer.start()
            try:
                futures = [(i, await producer.send(topic, value=value_of(i), key=b"k%d" % i,
                                                   partition=i % PARTITIONS)) for i in indexes]
                for i, fut in futures:
                    try:
                        md = await asyncio.wait_for(fut, TIMEOUT_S)
                        got = (md.partition, md.offset)
                    except Exception as e:  # noqa: BLE001
                        got = repr(e)
                    f.check(got == (i % PARTITIONS, i // PARTITIONS),
                            f"produce of record {i}: {got}, expected partition {i % PARTITIONS} "
                            f"offset {i // PARTITIONS}")
            finally:
                await producer.stop()

        asyncio.run(asyncio.wait_for(run(), 2 * TIMEOUT_S))

    def open_consumer(self, group: str, topic: str, client_id: str, reset: str = "earliest"):
        return lambda: AioConsumer.open(self.bootstrap, group, topic, client_id, reset)

    def run_member(self, member: Member, open_consumer):
        asyncio.run(async_member_loop(member, open_consumer))

    async def _describe(self, admin, group: str, topic: str):
        [resp] = await admin.describe_consumer_groups([group])
        [g] = resp.to_object()["groups"]
        members = {m["client_id"]: parse_assignment(m["member_assignment"], topic) if m["member_assignment"]
                   else set() for m in g["members"]}
        return g["error_code"], g["state"], g["protocol_type"], members

    def check_while_up(self, group: str, topic: str, members: Dict[str, Parts], f: Failures):
        def probe():
            got = self.admin(lambda admin: self._describe(admin, group, topic))
            want = (0, "Stable", "consumer", members)
            return None if got == want else f"described as {got}, want {want}"

        wait_for("describe_consumer_groups while both are up", f, probe)
        groups = self.admin(lambda admin: admin.list_consumer_groups())
        mine = [g for g in groups if g[0] == group]
        f.check([tuple(g[:2]) for g in mine] == [(group, "consumer")], f"list_consumer_groups: {mine}")

    def check_after(self, group: str, topic: str, end: Dict[int, int], f: Failures):
        got = self.admin(lambda admin: admin.list_consumer_group_offsets(group))
        offsets = {tp.partition: om.offset for tp, om in got.items() if tp.topic == topic}
        f.check(offsets == end, f"list_consumer_group_offsets: {offsets}, want the log end offsets {end}")

        def probe():
            got = self.admin(lambda admin: self._describe(admin, group, topic))
            return None if got == (0, "Empty", "consumer", {}) else f"described as {got}"

        wait_for("describe_consumer_groups after every member left", f, probe)


# ----------------------------------------------------------------------------------------------------------------
# The share scenario


def start_member(client, name: str, open_consumer) -> Member:
    member = Member(name)
    member.thread = threading.Thread(target=client.run_member, args=(member, open_consumer), daemon=True)
    member.thread.start()
    return member


def member_problems(members: List[Member]) -> Optional[str]:
    for m in members:
        _, _, errors = m.snapshot()
        if errors:
            return f"{m.name}: {errors}"
        if m.thread is not None and not m.thread.is_alive():
            return f"{m.name}: its thread ended"
    return None


def wait_committed(member: Member, want: Dict[int, int], f: Failures):
    """Waits until the member's consumer sees `want` as the group's committed offsets (OffsetFetch)."""

    def probe():
        problem = member_problems([member])
        if problem:
            return problem
        committed = member.call(lambda consumer: consumer.committed())
        return None if committed == want else f"committed {committed}"

    wait_for(f"{member.name} seeing every partition committed at its end", f, probe)


def wait_for_split(members: List[Member], f: Failures) -> bool:
    def probe():
        problem = member_problems(members)
        if problem:
            return problem
        return disjoint_cover([set(m.snapshot()[0]) for m in members])

    return wait_for(f"{len(members)} consumers sharing the topic", f, probe, 2 * TIMEOUT_S)


def check_records(label: str, got: List[Record], indexes: range, f: Failures):
    """got holds exactly the records `indexes`, each once, each at partition i % 4 offset i // 4."""
    seen = [index_of(v) for _, _, v in got]
    dups = sorted({i for i in seen if seen.count(i) > 1})
    f.check(not dups, f"{label}: records read more than once: {dups[:20]}")
    missing = sorted(set(indexes) - set(seen))
    extra = sorted(set(seen) - set(indexes))
    f.check(not missing, f"{label}: {len(missing)} records never read, e.g. {missing[:20]}")
    f.check(not extra, f"{label}: records not expected here: {extra[:20]}")
    for p, o, v in got:
        i = index_of(v)
        f.check((p, o) == (i % PARTITIONS, i // PARTITIONS), f"{label}: record {i} read at {p}/{o}")


def run_share(client, bootstrap: str, topic: str, group: str, f: Failures):
    client.create_topic(topic)
    members = [start_member(client, f"consumer {n}", client.open_consumer(group, topic, f"{group}-{n}"))
               for n in ("a", "b")]
    try:
        if not wait_for_split(members, f):
            return
        split = {f"{group}-{n}": set(m.snapshot()[0]) for n, m in zip(("a", "b"), members)}
        history_at_split = [len(m.history) for m in members]
        print(f"     assignments {split}", flush=True)
        client.produce(topic, range(FIRST), f)

        def all_read():
            problem = member_problems(members)
            total = sum(len(m.snapshot()[1]) for m in members)
            return problem or (None if total >= FIRST else f"{total} of {FIRST} records read")

        wait_for("reading the first records", f, all_read)
        everyone: List[Record] = []
        for m, at_split in zip(members, history_at_split):
            assignment, records, errors = m.snapshot()
            f.check(not errors, f"{m.name}: {errors}")
            f.check(len(m.history) == at_split,
                    f"{m.name}: its assignment changed after the group settled: {m.history}")
            f.check(bool(records), f"{m.name} read nothing")
            outside = sorted({p for p, _, _ in records} - set(assignment))
            f.check(not outside, f"{m.name} read partitions {outside} it does not own ({sorted(assignment)})")
            everyone += records
        check_records("the two consumers", everyone, range(FIRST), f)
        first_end = {p: FIRST // PARTITIONS for p in range(PARTITIONS)}
        for m in members:
            # The last commit follows the last batch on the member's thread: wait for it rather than race it.
            wait_committed(m, first_end, f)
        client.check_while_up(group, topic, split, f)
    finally:
        for m in members:
            m.leave()
    for m in members:
        f.check(not m.snapshot()[2], f"{m.name}: {m.snapshot()[2]}")

    # A later member starts at the committed offsets: it reads exactly the records produced since.
    client.produce(topic, range(FIRST, FIRST + SECOND), f)
    # Every record was checked to land at offset i // 4, so these are the log end offsets.
    final_end = {p: (FIRST + SECOND) // PARTITIONS for p in range(PARTITIONS)}
    later = start_member(client, "a later consumer", client.open_consumer(group, topic, f"{group}-c"))
    try:
        def read_second():
            problem = member_problems([later])
            n = len(later.snapshot()[1])
            return problem or (None if n >= SECOND else f"{n} of {SECOND} records read")

        wait_for("the later consumer reading the new records", f, read_second, 2 * TIMEOUT_S)
        check_records("the later consumer", later.snapshot()[1], range(FIRST, FIRST + SECOND), f)
        wait_committed(later, final_end, f)
    finally:
        later.leave()
    f.check(not later.snapshot()[2], f"{later.name}: {later.snapshot()[2]}")
    client.check_after(group, topic, final_end, f)


# ----------------------------------------------------------------------------------------------------------------
# The admin scenario (confluent-kafka AdminClient, classic group)


ADMIN_COUNTS = {0: 10, 1: 20, 2: 30, 3: 40}  # records per partition
ADMIN_COMMIT = {0: 3, 1: 20, 2: 7, 3: 31}  # committed offset per partition
ADMIN_LAG = {0: 7, 1: 0, 2: 23, 3: 9}


def run_admin(bootstrap: str, topic: str, group: str, f: Failures):
    from confluent_kafka import Producer

    client = Confluent(bootstrap)
    client.create_topic(topic)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for p, n in ADMIN_COUNTS.items():
        for i in range(n):
            producer.produce(topic, value=value_of(1000 * p + i), partition=p)
    f.check(producer.flush(TIMEOUT_S) == 0, "records left undelivered")
    ends = client.end_offsets(topic)
    f.check(ends == ADMIN_COUNTS, f"watermarks {ends}, want {ADMIN_COUNTS}")

    # The members start at the latest offsets and commit nothing themselves: the only commits are the chosen ones.
    members = []
    for n in ("a", "b"):
        m = Member(f"consumer {n}")
        m.commit_batches = False
        m.thread = threading.Thread(target=member_loop,
                                    args=(m, client.open_consumer(group, topic, f"{group}-{n}", "latest")),
                                    daemon=True)
        m.thread.start()
        members.append(m)
    try:
        if wait_for_split(members, f):
            admin_with_members(client.admin, topic, group, members, ends, f)
    finally:
        for m in members:
            m.leave()
    for m in members:
        f.check(not m.snapshot()[2], f"{m.name}: {m.snapshot()[2]}")
    admin_without_members(client.admin, topic, group, f)


def admin_with_members(admin, topic: str, group: str, members: List[Member], ends: Dict[int, int], f: Failures):
    """Each member commits ADMIN_COMMIT for its own partitions; then the group as the AdminClient sees it."""
    from confluent_kafka import KafkaError, KafkaException

    for m in members:
        owned = set(m.snapshot()[0])
        m.call(lambda c, owned=owned: c.commit_offsets({p: (ADMIN_COMMIT[p], f"meta-{p}") for p in owned}))
    split = {f"{group}-{n}": set(m.snapshot()[0]) for n, m in zip(("a", "b"), members)}

    def probe():
        d = admin.describe_consumer_groups([group], request_timeout=TIMEOUT_S)[group].result(TIMEOUT_S)
        described = {m.client_id: {tp.partition for tp in m.assignment.topic_partitions} for m in d.members}
        got = (d.state.name, d.type.name, d.partition_assignor, d.is_simple_consumer_group, described)
        want = ("STABLE", "CLASSIC", "range", False, split)
        return None if got == want else f"described as {got}, want {want}"

    wait_for("describe_consumer_groups", f, probe)
    d = admin.describe_consumer_groups([group], request_timeout=TIMEOUT_S)[group].result(TIMEOUT_S)
    brokers = admin.list_topics(timeout=TIMEOUT_S).brokers
    f.check(d.coordinator is not None and d.coordinator.id in brokers,
            f"coordinator {d.coordinator} is not one of the brokers {list(brokers)}")
    listing = admin.list_consumer_groups(request_timeout=TIMEOUT_S).result(TIMEOUT_S)
    mine = [(g.state.name, g.type.name) for g in listing.valid if g.group_id == group]
    f.check(mine == [("STABLE", "CLASSIC")], f"list_consumer_groups: {mine}; errors {listing.errors}")

    got = list_offsets_confluent(admin, group, topic, with_metadata=True)
    f.check(got == {p: (o, f"meta-{p}") for p, o in ADMIN_COMMIT.items()},
            f"list_consumer_group_offsets: {got}, want {ADMIN_COMMIT} with metadata meta-<partition>")
    lag = {p: ends[p] - o for p, (o, _) in got.items() if o is not None}
    f.check(lag == ADMIN_LAG, f"lag {lag}, want {ADMIN_LAG}")

    try:
        admin.delete_consumer_groups([group], request_timeout=TIMEOUT_S)[group].result(TIMEOUT_S)
        f.fail("delete_consumer_groups of a group with members succeeded")
    except KafkaException as e:
        f.check(e.args[0].code() == KafkaError.NON_EMPTY_GROUP,
                f"delete_consumer_groups of a group with members: {e}, want NON_EMPTY_GROUP")


def admin_without_members(admin, topic: str, group: str, f: Failures):
    """The empty group keeps its offsets; the admin client changes them, deletes the group, fails to again."""
    from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition

    def empty():
        d = admin.describe_consumer_groups([group], request_timeout=TIMEOUT_S)[group].result(TIMEOUT_S)
        return None if (d.state.name, len(d.members)) == ("EMPTY", 0) else f"{d.state} with {len(d.members)} members"

    wait_for("the group empty after both left", f, empty)
    offsets = list_offsets_confluent(admin, group, topic)
    f.check(offsets == ADMIN_COMMIT, f"offsets of the empty group {offsets}, want {ADMIN_COMMIT}")

    alter = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p, 5) for p in range(PARTITIONS)])]
    admin.alter_consumer_group_offsets(alter, request_timeout=TIMEOUT_S)[group].result(TIMEOUT_S)
    offsets = list_offsets_confluent(admin, group, topic)
    f.check(offsets == {p: 5 for p in range(PARTITIONS)}, f"offsets after alter_consumer_group_offsets {offsets}")

    admin.delete_consumer_groups([group], request_timeout=TIMEOUT_S)[group].result(TIMEOUT_S)
    listing = admin.list_consumer_groups(request_timeout=TIMEOUT_S).result(TIMEOUT_S)
    f.check(all(g.group_id != group for g in listing.valid), "the deleted group is still listed")
    offsets = list_offsets_confluent(admin, group, topic)
    f.check(offsets == {p: None for p in range(PARTITIONS)}, f"offsets of the deleted group {offsets}")
    try:
        admin.delete_consumer_groups([group], request_timeout=TIMEOUT_S)[group].result(TIMEOUT_S)
        f.fail("deleting the group twice succeeded")
    except KafkaException as e:
        f.check(e.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND,
                f"deleting the group twice: {e}, want GROUP_ID_NOT_FOUND")


# ----------------------------------------------------------------------------------------------------------------

CLIENTS = {
    "confluent_kafka": lambda b: Confluent(b),
    "confluent_kafka_kip848": lambda b: Confluent(b, kip848=True),
    "kafka_python": KafkaPython,
    "aiokafka": Aiokafka,
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["share", "admin"])
    ap.add_argument("args", nargs="+", help="share: CLIENT BOOTSTRAP TOPIC GROUP; admin: BOOTSTRAP TOPIC GROUP")
    args = ap.parse_args()
    f = Failures()
    start = time.monotonic()
    if args.command == "share":
        if len(args.args) != 4 or args.args[0] not in CLIENTS:
            ap.error(f"share CLIENT BOOTSTRAP TOPIC GROUP, CLIENT one of {list(CLIENTS)}")
        name, bootstrap, topic, group = args.args
        client = CLIENTS[name](bootstrap)
        label = f"{name} share"
        print(f"{name}: {client.version()}", flush=True)
        try:
            run_share(client, bootstrap, topic, group, f)
        except Exception:  # noqa: BLE001
            f.fail("exception:\n" + traceback.format_exc())
    else:
        if len(args.args) != 3:
            ap.error("admin BOOTSTRAP TOPIC GROUP")
        bootstrap, topic, group = args.args
        label = "confluent_kafka admin"
        try:
            run_admin(bootstrap, topic, group, f)
        except Exception:  # noqa: BLE001
            f.fail("exception:\n" + traceback.format_exc())
    took = time.monotonic() - start
    if f.errors:
        print(f"FAIL {label} ({took:.1f} s)", flush=True)
        for e in f.errors:
            print("    " + e.replace("\n", "\n    "), flush=True)
        return 1
    print(f"ok   {label} ({took:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""confluent-kafka's AdminClient (librdkafka) on what Kafka's admin tools do besides topics and groups.

Usage: admin_clients.py authorized-operations BOOTSTRAP TOPIC GROUP
       admin_clients.py broker-configs BOOTSTRAP TOPIC
       admin_clients.py broker-configs-kept BOOTSTRAP TOPIC
       admin_clients.py group-configs BOOTSTRAP GROUP

authorized-operations: describe_cluster, describe_topics and describe_consumer_groups (a classic group with a
member, and a KIP-848 group with a member) with include_authorized_operations must list every operation each
resource supports, as Kafka without an authorizer does (7 for the cluster, 8 for a topic, 3 for a group), and
none when not asked.

broker-configs: incremental_alter_configs on this broker's resource sets log.retention.ms (a topic default) and
max.connections; describe_configs shows both with source DYNAMIC_BROKER_CONFIG, not read-only, with the static
and default values among the synonyms, and TOPIC (no overrides) inherits the retention with that source. A
validate-only change changes nothing; settings that cannot change live (num.partitions, node.id) are refused
with INVALID_CONFIG naming them, as are unknown names and bad values. DELETE of max.connections restores the
default.

broker-configs-kept: after the broker restarted, log.retention.ms is still this broker's dynamic config and
TOPIC still inherits it.

group-configs: incremental_alter_configs on GROUP (resource type 32) sets consumer.session.timeout.ms and
consumer.heartbeat.interval.ms; describe_configs shows them with source GROUP_CONFIG and the other's broker
default; values outside the broker's bounds, share-group settings and unknown names are refused with
INVALID_CONFIG naming the bound or the setting; DELETE returns to the broker default.

Prints one line per check; exits 1 on any failure.
"""

import sys
import time
from typing import Dict, List

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import (
    AclOperation,
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
    ResourceType,
)

TIMEOUT_S = 30.0
CLUSTER_OPS = {
    AclOperation.CREATE,
    AclOperation.CLUSTER_ACTION,
    AclOperation.DESCRIBE_CONFIGS,
    AclOperation.ALTER_CONFIGS,
    AclOperation.IDEMPOTENT_WRITE,
    AclOperation.ALTER,
    AclOperation.DESCRIBE,
}
TOPIC_OPS = {
    AclOperation.READ,
    AclOperation.WRITE,
    AclOperation.CREATE,
    AclOperation.DESCRIBE,
    AclOperation.DELETE,
    AclOperation.ALTER,
    AclOperation.DESCRIBE_CONFIGS,
    AclOperation.ALTER_CONFIGS,
}
GROUP_OPS = {AclOperation.READ, AclOperation.DESCRIBE, AclOperation.DELETE}


class Checks:
    def __init__(self):
        self.failures: List[str] = []

    def check(self, ok: bool, what: str):
        print(("ok   " if ok else "FAIL ") + what, flush=True)
        if not ok:
            self.failures.append(what)

    def done(self) -> int:
        if self.failures:
            print(f"{len(self.failures)} check(s) failed", flush=True)
            return 1
        return 0


def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def create_topic(a: AdminClient, topic: str):
    for fut in a.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)]).values():
        fut.result(timeout=TIMEOUT_S)


def member(bootstrap: str, group: str, topic: str, kip848: bool) -> Consumer:
    settings = {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    if kip848:
        settings["group.protocol"] = "consumer"
    else:
        settings["session.timeout.ms"] = 6000
    consumer = Consumer(settings)
    consumer.subscribe([topic])
    deadline = time.time() + TIMEOUT_S
    while not consumer.assignment() and time.time() < deadline:
        consumer.poll(0.2)
    return consumer


def ops(found) -> set:
    return set(found or [])


def authorized_operations(bootstrap: str, topic: str, group: str) -> int:
    c = Checks()
    a = admin(bootstrap)
    create_topic(a, topic)
    cluster = a.describe_cluster(include_authorized_operations=True, request_timeout=TIMEOUT_S).result()
    c.check(ops(cluster.authorized_operations) == CLUSTER_OPS,
            f"cluster: {sorted(o.name for o in ops(cluster.authorized_operations))}")
    plain = a.describe_cluster(request_timeout=TIMEOUT_S).result()
    c.check(not plain.authorized_operations, f"cluster, not asked: {plain.authorized_operations}")

    described = a.describe_topics(TopicCollection([topic]), include_authorized_operations=True,
                                  request_timeout=TIMEOUT_S)[topic].result()
    c.check(ops(described.authorized_operations) == TOPIC_OPS,
            f"topic: {sorted(o.name for o in ops(described.authorized_operations))}")

    for kip848 in (False, True):
        name = f"{group}-{'consumer' if kip848 else 'classic'}"
        consumer = member(bootstrap, name, topic, kip848)
        try:
            c.check(bool(consumer.assignment()), f"{name}: the member got partitions")
            d = a.describe_consumer_groups([name], include_authorized_operations=True,
                                           request_timeout=TIMEOUT_S)[name].result()
            c.check(ops(d.authorized_operations) == GROUP_OPS,
                    f"{name}: {sorted(o.name for o in ops(d.authorized_operations))}")
            d = a.describe_consumer_groups([name], request_timeout=TIMEOUT_S)[name].result()
            c.check(not d.authorized_operations, f"{name}, not asked: {d.authorized_operations}")
        finally:
            consumer.close()
    return c.done()


def node_id(a: AdminClient) -> str:
    return str(a.describe_cluster(request_timeout=TIMEOUT_S).result().nodes[0].id)


def describe(a: AdminClient, resource: ConfigResource) -> Dict[str, ConfigEntry]:
    return a.describe_configs([resource], request_timeout=TIMEOUT_S)[resource].result(timeout=TIMEOUT_S)


def alter(a: AdminClient, restype: ResourceType, name: str, entries: List[ConfigEntry], validate_only=False):
    resource = ConfigResource(restype, name, incremental_configs=entries)
    fut = a.incremental_alter_configs([resource], validate_only=validate_only, request_timeout=TIMEOUT_S)
    return fut[resource].result(timeout=TIMEOUT_S)


def refused(c: Checks, what: str, action, code: int, named: str):
    try:
        action()
        c.check(False, f"{what}: accepted")
    except KafkaException as e:
        err: KafkaError = e.args[0]
        c.check(err.code() == code and named in err.str(), f"{what}: {err.name()} {err.str()!r}")


def setting(name: str, value, op=AlterConfigOpType.SET) -> ConfigEntry:
    return ConfigEntry(name, None if value is None else str(value), incremental_operation=op)


def broker_configs(bootstrap: str, topic: str) -> int:
    c = Checks()
    a = admin(bootstrap)
    create_topic(a, topic)
    broker = node_id(a)
    alter(a, ResourceType.BROKER, broker, [setting("log.retention.ms", 7200000), setting("max.connections", 500)])
    configs = describe(a, ConfigResource(ResourceType.BROKER, broker))
    retention = configs["log.retention.ms"]
    c.check(retention.value == "7200000" and retention.source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
            and not retention.is_read_only,
            f"log.retention.ms = {retention.value} from {retention.source}, read-only {retention.is_read_only}")
    hours = configs["log.retention.hours"]
    c.check(hours.value == "168" and hours.source == ConfigSource.DEFAULT_CONFIG.value,
            f"log.retention.hours = {hours.value} from {hours.source}")
    connections = configs["max.connections"]
    sources = [s.source for s in connections.synonyms.values()]
    c.check(connections.value == "500" and connections.source == ConfigSource.DYNAMIC_BROKER_CONFIG.value,
            f"max.connections = {connections.value} from {connections.source}; synonyms {sources}")
    c.check(configs["num.partitions"].is_read_only, "num.partitions is read-only")

    inherited = describe(a, ConfigResource(ResourceType.TOPIC, topic))["retention.ms"]
    c.check(inherited.value == "7200000" and inherited.source == ConfigSource.DYNAMIC_BROKER_CONFIG.value,
            f"{topic} retention.ms = {inherited.value} from {inherited.source}")

    alter(a, ResourceType.BROKER, broker, [setting("log.retention.ms", 1)], validate_only=True)
    after = describe(a, ConfigResource(ResourceType.BROKER, broker))["log.retention.ms"].value
    c.check(after == "7200000", f"validate_only changed nothing: {after}")

    refused(c, "num.partitions live", lambda: alter(a, ResourceType.BROKER, broker, [setting("num.partitions", 3)]),
            KafkaError.INVALID_CONFIG, "num.partitions")
    refused(c, "node.id live", lambda: alter(a, ResourceType.BROKER, broker, [setting("node.id", 7)]),
            KafkaError.INVALID_CONFIG, "node.id")
    refused(c, "unknown name", lambda: alter(a, ResourceType.BROKER, broker, [setting("log.retention.hour", 1)]),
            KafkaError.INVALID_CONFIG, "log.retention.hour")
    refused(c, "bad value", lambda: alter(a, ResourceType.BROKER, broker, [setting("log.segment.bytes", 10)]),
            KafkaError.INVALID_CONFIG, "log.segment.bytes")

    alter(a, ResourceType.BROKER, broker, [setting("max.connections", None, AlterConfigOpType.DELETE)])
    connections = describe(a, ConfigResource(ResourceType.BROKER, broker))["max.connections"]
    c.check(connections.value == "10000" and connections.source == ConfigSource.DEFAULT_CONFIG.value,
            f"max.connections after DELETE = {connections.value} from {connections.source}")
    return c.done()


def broker_configs_kept(bootstrap: str, topic: str) -> int:
    c = Checks()
    a = admin(bootstrap)
    broker = node_id(a)
    retention = describe(a, ConfigResource(ResourceType.BROKER, broker))["log.retention.ms"]
    c.check(retention.value == "7200000" and retention.source == ConfigSource.DYNAMIC_BROKER_CONFIG.value,
            f"after a restart log.retention.ms = {retention.value} from {retention.source}")
    inherited = describe(a, ConfigResource(ResourceType.TOPIC, topic))["retention.ms"]
    c.check(inherited.value == "7200000", f"after a restart {topic} retention.ms = {inherited.value}")
    return c.done()


def group_configs(bootstrap: str, group: str) -> int:
    c = Checks()
    a = admin(bootstrap)
    alter(a, ResourceType.GROUP, group, [setting("consumer.session.timeout.ms", 50000),
                                         setting("consumer.heartbeat.interval.ms", 6000)])
    configs = describe(a, ConfigResource(ResourceType.GROUP, group))
    for name, value in (("consumer.session.timeout.ms", "50000"), ("consumer.heartbeat.interval.ms", "6000")):
        entry = configs.get(name)
        c.check(entry is not None and entry.value == value and entry.source == ConfigSource.GROUP_CONFIG.value,
                f"{name} = {entry and entry.value} from {entry and entry.source}")
    refused(c, "session below the minimum",
            lambda: alter(a, ResourceType.GROUP, group, [setting("consumer.session.timeout.ms", 1000)]),
            KafkaError.INVALID_CONFIG, "group.consumer.min.session.timeout.ms")
    refused(c, "heartbeat above the maximum",
            lambda: alter(a, ResourceType.GROUP, group, [setting("consumer.heartbeat.interval.ms", 20000)]),
            KafkaError.INVALID_CONFIG, "group.consumer.max.heartbeat.interval.ms")
    refused(c, "share-group setting",
            lambda: alter(a, ResourceType.GROUP, group, [setting("share.session.timeout.ms", 45000)]),
            KafkaError.INVALID_CONFIG, "share.session.timeout.ms")
    refused(c, "unknown group config",
            lambda: alter(a, ResourceType.GROUP, group, [setting("session.timeout.ms", 45000)]),
            KafkaError.INVALID_CONFIG, "session.timeout.ms")
    alter(a, ResourceType.GROUP, group, [setting("consumer.heartbeat.interval.ms", None, AlterConfigOpType.DELETE)])
    entry = describe(a, ConfigResource(ResourceType.GROUP, group))["consumer.heartbeat.interval.ms"]
    c.check(entry.value == "5000" and entry.source == ConfigSource.DEFAULT_CONFIG.value,
            f"after DELETE consumer.heartbeat.interval.ms = {entry.value} from {entry.source}")
    return c.done()


def main() -> int:
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "authorized-operations":
        return authorized_operations(*args)
    if mode == "broker-configs":
        return broker_configs(*args)
    if mode == "broker-configs-kept":
        return broker_configs_kept(*args)
    if mode == "group-configs":
        return group_configs(*args)
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())

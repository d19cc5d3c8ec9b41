#!/usr/bin/env python3
"""Cluster figures for a 3-node Ferrite cluster on loopback, measured with real processes.

    FIGURES_BIN=target/release/ferrite .venv/bin/python benches/cluster_figures.py

Measures, in this order:
  1. CreateTopics (6 partitions) sent to a broker that is not the active controller -> the topic visible in
     the Metadata of all 3 brokers (each asked directly over its own socket);
  2. CreateTopics of 1,000 partitions;
  3. controller failover: kill -9 of the active controller -> the next CreateTopics accepted by a survivor;
  4. start time and memory of the 3 nodes holding 10,000 partitions (SIGTERM all, start all, until every
     broker lists 3 brokers), RSS from /proc.
Raw Metadata and DescribeQuorum requests are encoded here (a few lines each) so that each broker is asked
itself, which a client library does not promise.
"""

import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

from confluent_kafka.admin import AdminClient, NewTopic

BIN = os.environ.get("FIGURES_BIN", "target/release/ferrite")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Node:
    def __init__(self, node_id, root, voters, client_port, controller_port):
        self.id = node_id
        self.dir = os.path.join(root, f"n{node_id}")
        os.makedirs(self.dir, exist_ok=True)
        self.client = f"127.0.0.1:{client_port}"
        self.controller = f"127.0.0.1:{controller_port}"
        self.voters = voters
        self.proc = None

    def start(self):
        args = [
            BIN,
            "--listeners", f"PLAINTEXT://{self.client},CONTROLLER://{self.controller}",
            "--log-dirs", os.path.join(self.dir, "data"),
            "--override", f"node.id={self.id}",
            "--override", "process.roles=broker,controller",
            "--override", f"controller.quorum.voters={self.voters}",
        ]
        log = open(os.path.join(self.dir, "log"), "ab")
        env = dict(os.environ, FERRITE_LOG="warn")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, env=env)

    def wait_started(self):
        line = self.proc.stdout.readline()
        if b"listening" not in line:
            raise SystemExit(f"node {self.id} did not start: {line!r}")

    def rss_mb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return -1

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def terminate(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)


def call(address, api_key, version, body, flexible=False):
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        client = b"figures"
        header = struct.pack(">hhih", api_key, version, 1, len(client)) + client
        if flexible:
            header += b"\x00"  # no tagged fields
        frame = header + body
        s.sendall(struct.pack(">i", len(frame)) + frame)
        size = struct.unpack(">i", recv_exact(s, 4))[0]
        # Skip the correlation id (and, flexible, the header's empty tagged fields).
        return recv_exact(s, size)[5 if flexible else 4:]


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise ConnectionError("closed")
        out += chunk
    return out


class Reader:
    def __init__(self, data):
        self.data, self.at = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return v[0]

    def string(self):
        n = self.take(">h")
        if n < 0:
            return None
        v = self.data[self.at:self.at + n].decode()
        self.at += n
        return v


def metadata(address, topic):
    """Metadata v4 for one topic, never auto-creating it: (broker ids, partition count or None)."""
    name = topic.encode()
    body = struct.pack(">ih", 1, len(name)) + name + b"\x00"
    r = Reader(call(address, 3, 4, body))
    r.take(">i")  # throttle time
    brokers = []
    for _ in range(r.take(">i")):
        brokers.append(r.take(">i"))
        r.string()
        r.take(">i")
        r.string()
    r.string()  # cluster id
    r.take(">i")  # controller id
    partitions = None
    for _ in range(r.take(">i")):
        error = r.take(">h")
        r.string()
        r.take(">b")
        count = r.take(">i")
        for _ in range(count):
            r.take(">h"); r.take(">i"); r.take(">i")
            for _ in range(r.take(">i")):
                r.take(">i")
            for _ in range(r.take(">i")):
                r.take(">i")
        if error == 0:
            partitions = count
    return sorted(brokers), partitions


def quorum_leader(address):
    """DescribeQuorum v0 (a flexible version: compact arrays and strings, one-byte lengths here): the leader."""
    name = b"__cluster_metadata"
    body = bytes([2, len(name) + 1]) + name + bytes([2]) + struct.pack(">i", 0) + bytes([0, 0, 0])
    data = call(address, 55, 0, body, flexible=True)
    r = Reader(data)
    r.take(">h")  # error code
    r.take(">B")  # topics (compact length)
    name_length = r.take(">B") - 1
    r.at += name_length  # topic name
    r.take(">B")  # partitions
    r.take(">i")  # partition index
    error = r.take(">h")
    if error != 0:
        raise ConnectionError(f"DescribeQuorum error {error}")
    return r.take(">i")


def create(address, name, partitions, timeout=30):
    admin = AdminClient({"bootstrap.servers": address})
    futures = admin.create_topics([NewTopic(name, partitions, 1)], request_timeout=timeout)
    futures[name].result()


def wait_until(what, check, timeout=120, pause=0.001):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, ConnectionError, struct.error):
            pass
        time.sleep(pause)
    raise SystemExit(f"timed out waiting for {what}")


def main():
    root = tempfile.mkdtemp(prefix="ferrite-figures-")
    ports = [(free_port(), free_port()) for _ in range(3)]
    voters = ",".join(f"{i + 1}@127.0.0.1:{c}" for i, (_, c) in enumerate(ports))
    nodes = [Node(i + 1, root, voters, p, c) for i, (p, c) in enumerate(ports)]
    try:
        started = time.monotonic()
        for n in nodes:
            n.start()
        for n in nodes:
            n.wait_started()
        wait_until("3 brokers", lambda: all(metadata(n.client, "x")[0] == [1, 2, 3] for n in nodes))
        print(f"empty 3-node cluster up in {time.monotonic() - started:.2f} s")

        leader = quorum_leader(nodes[0].client)
        follower = next(n for n in nodes if n.id != leader)
        samples = []
        for i in range(20):
            topic = f"visible-{i}"
            create(follower.client, topic, 6)
            t0 = time.monotonic()
            wait_until(topic, lambda: all(metadata(n.client, topic)[1] == 6 for n in nodes))
            samples.append((time.monotonic() - t0) * 1000)
        samples.sort()
        print(f"CreateTopics answered -> visible on all 3 brokers: median {samples[10]:.1f} ms, "
              f"max {samples[-1]:.1f} ms (20 topics, created through non-controller node {follower.id})")

        t0 = time.monotonic()
        create(follower.client, "thousand", 1000)
        created = time.monotonic() - t0
        wait_until("thousand", lambda: all(metadata(n.client, "thousand")[1] == 1000 for n in nodes))
        print(f"CreateTopics of 1,000 partitions: {created * 1000:.0f} ms to the answer, "
              f"{(time.monotonic() - t0) * 1000:.0f} ms until visible on all 3")

        for i in range(9):
            create(follower.client, f"bulk-{i}", 1000)
        print("10,000 partitions created (10 topics of 1,000)")

        leader = quorum_leader(follower.client)
        victim = next(n for n in nodes if n.id == leader)
        survivor = next(n for n in nodes if n.id != leader)
        t0 = time.monotonic()
        victim.kill9()
        attempt = 0
        while True:
            attempt += 1
            try:
                create(survivor.client, f"after-failover-{attempt}", 1, timeout=5)
                break
            except Exception:
                if time.monotonic() - t0 > 60:
                    raise
        print(f"controller failover: kill -9 of node {victim.id} -> CreateTopics accepted in "
              f"{(time.monotonic() - t0) * 1000:.0f} ms ({attempt} attempt(s))")
        victim.start()
        victim.wait_started()

        for n in nodes:
            n.terminate()
        t0 = time.monotonic()
        for n in nodes:
            n.start()
        for n in nodes:
            n.wait_started()
        wait_until("restart", lambda: all(metadata(n.client, "x")[0] == [1, 2, 3] for n in nodes))
        print(f"restart of 3 nodes holding 10,000 partitions (+ __consumer_offsets): "
              f"{time.monotonic() - t0:.2f} s until every broker lists 3 brokers")
        rss = [n.rss_mb() for n in nodes]
        print("RSS per node after restart: " + ", ".join(f"{r:.0f} MB" for r in rss))
    finally:
        for n in nodes:
            if n.proc and n.proc.poll() is None:
                n.proc.kill()


if __name__ == "__main__":
    sys.exit(main())

//! Consumer-group figures (`--groups`): how long a 10-member group takes to stabilise, how many offset
//! commits per second a durable broker answers, and how much memory an idle group costs.
//!
//! ```text
//! rebalance:  10 librdkafka consumers subscribe together ──> time until every one holds a disjoint share
//! commits:    N connections, each a loop of synchronous OffsetCommit (raw protocol), durable broker
//!             (log.flush.interval.messages=1) and default broker, against raw fdatasync/s on the same disk
//! memory:     10,000 groups, each joined and synced by one raw member and holding one committed offset;
//!             broker RSS before and after, divided by the group count
//! ```

use crate::broker::Broker;
use crate::report::Error;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, GroupId, JoinGroupRequest, JoinGroupResponse, OffsetCommitRequest,
    OffsetCommitResponse, RequestHeader, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use serde::Serialize;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Debug, Default, Serialize)]
pub struct GroupFigures {
    /// group.initial.rebalance.delay.ms -> seconds from the last subscribe to every member assigned.
    pub stabilise_seconds: Vec<(i64, f64)>,
    pub members: usize,
    pub partitions: i32,
    /// (connections, commits/s) on a durable broker.
    pub durable_commits_per_s: Vec<(usize, f64)>,
    /// (connections, commits/s) on a default (periodic flush) broker.
    pub default_commits_per_s: Vec<(usize, f64)>,
    /// Raw fdatasync calls per second on the same disk, one thread: the ceiling for one sync per commit.
    pub fdatasync_per_s: f64,
    pub idle_groups: usize,
    pub rss_bytes_per_idle_group: f64,
}

pub fn run(bin: &Path, scratch: &Path, quick: bool) -> Result<GroupFigures, Error> {
    let mut figures = GroupFigures {
        members: 10,
        partitions: 20,
        ..Default::default()
    };
    for delay in [0i64, 3000] {
        let data = scratch.join(format!("groups-rebalance-{delay}"));
        let delay_setting = format!("group.initial.rebalance.delay.ms={delay}");
        let broker = Broker::start(bin, &data, &[&delay_setting])?;
        let seconds = stabilise(&broker.addr, figures.members, figures.partitions)?;
        eprintln!("  10-member group, initial delay {delay} ms: stable after {seconds:.2} s");
        figures.stabilise_seconds.push((delay, seconds));
    }
    let secs = Duration::from_secs(if quick { 2 } else { 5 });
    figures.fdatasync_per_s = fdatasync_rate(scratch, secs)?;
    for (durable, out) in [(true, 0), (false, 1)] {
        let data = scratch.join(format!("groups-commits-{durable}"));
        let flush = if durable {
            vec!["log.flush.interval.messages=1"]
        } else {
            vec![]
        };
        let broker = Broker::start(bin, &data, &flush)?;
        crate::load::create_topic(&broker.addr, "committed", 1, &[])?;
        for connections in [1usize, 16] {
            let rate = commit_rate(&broker.addr, connections, secs)?;
            eprintln!(
                "  offset commits, durable={durable}, {connections} connections: {rate:.0}/s"
            );
            let list = if out == 0 {
                &mut figures.durable_commits_per_s
            } else {
                &mut figures.default_commits_per_s
            };
            list.push((connections, rate));
        }
    }
    figures.idle_groups = if quick { 2_000 } else { 10_000 };
    let mut broker = Broker::start(
        bin,
        &scratch.join("groups-memory"),
        &["group.initial.rebalance.delay.ms=0"],
    )?;
    crate::load::create_topic(&broker.addr, "idle", 1, &[])?;
    figures.rss_bytes_per_idle_group = idle_group_memory(&mut broker, figures.idle_groups)?;
    eprintln!(
        "  {} idle groups: {:.0} bytes of broker RSS each",
        figures.idle_groups, figures.rss_bytes_per_idle_group
    );
    Ok(figures)
}

impl GroupFigures {
    pub fn markdown(&self) -> String {
        let mut s = String::from("| figure | value |\n|---|---|\n");
        for (delay, secs) in &self.stabilise_seconds {
            s += &format!(
                "| {}-member group on {} partitions stable after all subscribed, group.initial.rebalance.delay.ms={delay} | {secs:.2} s |\n",
                self.members, self.partitions
            );
        }
        for (c, r) in &self.durable_commits_per_s {
            s += &format!(
                "| offset commits/s, durable (fsync before answer), {c} connection(s) | {r:.0} |\n"
            );
        }
        for (c, r) in &self.default_commits_per_s {
            s += &format!(
                "| offset commits/s, default flush policy, {c} connection(s) | {r:.0} |\n"
            );
        }
        s += &format!(
            "| raw fdatasync/s on the same disk, one thread (ceiling for unshared syncs) | {:.0} |\n",
            self.fdatasync_per_s
        );
        s += &format!(
            "| broker RSS per idle group ({} stable one-member groups, one committed offset each) | {:.0} bytes |\n",
            self.idle_groups, self.rss_bytes_per_idle_group
        );
        s
    }
}

/// Starts `members` consumers in one group and returns seconds from the last subscribe until all hold a
/// non-empty, disjoint share covering every partition.
fn stabilise(addr: &str, members: usize, partitions: i32) -> Result<f64, Error> {
    let topic = format!("rebalance-{}", std::process::id());
    crate::load::create_topic(addr, &topic, partitions, &[])?;
    let consumers: Vec<BaseConsumer> = (0..members)
        .map(|_| {
            ClientConfig::new()
                .set("bootstrap.servers", addr)
                .set("group.id", "stabilise")
                .set("session.timeout.ms", "10000")
                .set("heartbeat.interval.ms", "500")
                .create()
        })
        .collect::<Result<_, _>>()?;
    for c in &consumers {
        c.subscribe(&[topic.as_str()])?;
    }
    let start = Instant::now();
    let deadline = start + Duration::from_secs(60);
    while Instant::now() < deadline {
        for c in &consumers {
            let _ = c.poll(Duration::from_millis(5));
        }
        let mut seen = BTreeSet::new();
        let mut disjoint = true;
        let mut all_assigned = true;
        for c in &consumers {
            let assignment = c.assignment()?;
            all_assigned &= assignment.count() > 0;
            for e in assignment.elements() {
                disjoint &= seen.insert(e.partition());
            }
        }
        if all_assigned && disjoint && seen.len() == partitions as usize {
            return Ok(start.elapsed().as_secs_f64());
        }
    }
    Err("the group did not stabilise within 60 s".into())
}

/// A blocking Kafka connection speaking one request at a time.
struct Raw {
    stream: TcpStream,
    correlation: i32,
}

impl Raw {
    fn connect(addr: &str) -> Result<Raw, Error> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(Raw {
            stream,
            correlation: 0,
        })
    }

    fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        request: &Req,
    ) -> Result<Resp, Error> {
        self.correlation += 1;
        let mut header = RequestHeader::default();
        header.request_api_key = key as i16;
        header.request_api_version = version;
        header.correlation_id = self.correlation;
        header.client_id = Some(StrBytes::from_static_str("ferrite-bench"));
        let mut body = BytesMut::new();
        header.encode(&mut body, key.request_header_version(version))?;
        request.encode(&mut body, version)?;
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(&body);
        self.stream.write_all(&frame)?;
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len)?;
        let mut buf = vec![0u8; i32::from_be_bytes(len).max(0) as usize];
        self.stream.read_exact(&mut buf)?;
        let mut bytes = Bytes::from(buf);
        bytes.advance(4); // correlation id
        if key.response_header_version(version) >= 1 {
            // Response header v1: an empty tagged-field section.
            bytes.advance(1);
        }
        Ok(Resp::decode(&mut bytes, version)?)
    }
}

fn commit_request(group: &str, topic: &str, offset: i64) -> OffsetCommitRequest {
    let mut p = OffsetCommitRequestPartition::default();
    p.partition_index = 0;
    p.committed_offset = offset;
    p.committed_leader_epoch = -1;
    let mut t = OffsetCommitRequestTopic::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.partitions = vec![p];
    let mut r = OffsetCommitRequest::default();
    r.group_id = GroupId(StrBytes::from_string(group.to_string()));
    r.generation_id_or_member_epoch = -1;
    r.topics = vec![t];
    r
}

/// Commits per second over `connections` connections, each committing synchronously in its own group.
fn commit_rate(addr: &str, connections: usize, secs: Duration) -> Result<f64, Error> {
    let handles: Vec<_> = (0..connections)
        .map(|i| {
            let addr = addr.to_string();
            std::thread::spawn(move || -> Result<u64, Error> {
                let mut raw = Raw::connect(&addr)?;
                let group = format!("committer-{i}");
                let start = Instant::now();
                let mut n = 0u64;
                while start.elapsed() < secs {
                    let response: OffsetCommitResponse = raw.call(
                        ApiKey::OffsetCommit,
                        8,
                        &commit_request(&group, "committed", n as i64),
                    )?;
                    let error = response.topics[0].partitions[0].error_code;
                    if error != 0 {
                        return Err(format!("commit failed with error {error}").into());
                    }
                    n += 1;
                }
                Ok(n)
            })
        })
        .collect();
    let mut total = 0;
    for h in handles {
        total += h.join().map_err(|_| "committer panicked")??;
    }
    Ok(total as f64 / secs.as_secs_f64())
}

/// One-thread fdatasync rate of 4 KiB appends on the scratch disk.
fn fdatasync_rate(scratch: &Path, secs: Duration) -> Result<f64, Error> {
    let path = scratch.join("fdatasync-probe");
    let mut file = std::fs::File::create(&path)?;
    let block = [0u8; 4096];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < secs {
        file.write_all(&block)?;
        file.sync_data()?;
        n += 1;
    }
    std::fs::remove_file(&path)?;
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Joins, syncs and commits `groups` one-member groups, then returns the broker's RSS growth per group.
fn idle_group_memory(broker: &mut Broker, groups: usize) -> Result<f64, Error> {
    let mut raw = Raw::connect(&broker.addr)?;
    // Warm the connection and the coordinator so the baseline includes fixed costs.
    make_idle_group(&mut raw, "warm-up")?;
    std::thread::sleep(Duration::from_millis(500));
    let before = broker.rss_bytes();
    for i in 0..groups {
        make_idle_group(&mut raw, &format!("idle-{i}"))?;
    }
    std::thread::sleep(Duration::from_millis(500));
    let after = broker.rss_bytes();
    Ok(after.saturating_sub(before) as f64 / groups as f64)
}

fn make_idle_group(raw: &mut Raw, group: &str) -> Result<(), Error> {
    let group_id = GroupId(StrBytes::from_string(group.to_string()));
    let mut protocol = JoinGroupRequestProtocol::default();
    protocol.name = StrBytes::from_static_str("range");
    // A realistic subscription: version 1, one topic, no user data, no owned partitions.
    protocol.metadata =
        Bytes::from_static(b"\x00\x01\x00\x00\x00\x01\x00\x04idle\xff\xff\xff\xff\x00\x00\x00\x00");
    let mut join = JoinGroupRequest::default();
    join.group_id = group_id.clone();
    join.session_timeout_ms = 1_800_000;
    join.rebalance_timeout_ms = 60_000;
    join.protocol_type = StrBytes::from_static_str("consumer");
    join.protocols = vec![protocol];
    // v3: no MEMBER_ID_REQUIRED round trip; with no initial delay the join completes at once.
    let joined: JoinGroupResponse = raw.call(ApiKey::JoinGroup, 3, &join)?;
    if joined.error_code != 0 {
        return Err(format!("join failed with error {}", joined.error_code).into());
    }
    let mut assignment = SyncGroupRequestAssignment::default();
    assignment.member_id = joined.member_id.clone();
    assignment.assignment = Bytes::from_static(
        b"\x00\x01\x00\x00\x00\x01\x00\x04idle\x00\x00\x00\x01\x00\x00\x00\x00\xff\xff\xff\xff",
    );
    let mut sync = SyncGroupRequest::default();
    sync.group_id = group_id;
    sync.generation_id = joined.generation_id;
    sync.member_id = joined.member_id.clone();
    let member_id = joined.member_id;
    sync.assignments = vec![assignment];
    let synced: kafka_protocol::messages::SyncGroupResponse =
        raw.call(ApiKey::SyncGroup, 3, &sync)?;
    if synced.error_code != 0 {
        return Err(format!("sync failed with error {}", synced.error_code).into());
    }
    let mut commit = commit_request(group, "idle", 42);
    commit.generation_id_or_member_epoch = joined.generation_id;
    commit.member_id = member_id;
    let committed: OffsetCommitResponse = raw.call(ApiKey::OffsetCommit, 8, &commit)?;
    let error = committed.topics[0].partitions[0].error_code;
    if error != 0 {
        return Err(format!("commit failed with error {error}").into());
    }
    Ok(())
}

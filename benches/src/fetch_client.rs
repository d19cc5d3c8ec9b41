//! A raw Fetch client: the broker's own serving speed, without a client library's per-record work.
//!
//! librdkafka parses, queues and hands over every record, so one consumer saturates its core long before the
//! broker does (0.3 broker CPU s/GB in the consume scenario). To compare the broker's fetch path with raw
//! `sendfile(2)`, this client does what the raw baseline's receiver does, read and drop bytes, plus the
//! least a Kafka consumer must: one Fetch (v11) at a time with a large byte budget, walking only the batch
//! headers of the answer to find the next offset.
//!
//! ```text
//! Fetch v11 response (non-flexible): throttle i32 | error i16 | session i32 | [topic: name | [partition:
//!   index i32 | error i16 | hw i64 | lso i64 | log_start i64 | aborted [pid i64, first i64]? |
//!   preferred_replica i32 | records bytes?]]
//! ```

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, FetchRequest, RequestHeader, TopicName};
use kafka_protocol::protocol::{encode_request_header_into_buffer, Encodable, StrBytes};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

const VERSION: i16 = 11;
/// Bytes asked for per Fetch: large enough that a round trip is a small part of each transfer.
const FETCH_BYTES: i32 = 32 << 20;

/// What a raw fetch run moved.
#[derive(Debug, Clone, Copy)]
pub struct Fetched {
    pub record_bytes: u64,
    pub fetches: u64,
    pub seconds: f64,
}

/// Reads partition `partition` of `topic` from offset 0 until `end_offset`, over and over until at least
/// `min_duration` has passed (so that a short read is not all connection start-up and timer noise); returns
/// the record bytes moved.
pub fn fetch_all(
    addr: &str,
    topic: &str,
    partition: i32,
    end_offset: i64,
    min_duration: Duration,
) -> Result<Fetched, Error> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut frame = Vec::new();
    let (mut record_bytes, mut fetches) = (0u64, 0u64);
    let started = Instant::now();
    while started.elapsed() < min_duration {
        let (bytes, n) = read_once(
            &mut stream,
            &mut frame,
            topic,
            partition,
            end_offset,
            fetches,
        )?;
        record_bytes += bytes;
        fetches += n;
    }
    Ok(Fetched {
        record_bytes,
        fetches,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// One pass over the partition: (record bytes, fetches).
fn read_once(
    stream: &mut TcpStream,
    frame: &mut Vec<u8>,
    topic: &str,
    partition: i32,
    end_offset: i64,
    fetches_before: u64,
) -> Result<(u64, u64), Error> {
    let mut offset = 0i64;
    let (mut record_bytes, mut fetches) = (0u64, fetches_before);
    while offset < end_offset {
        fetches += 1;
        let request = encode_fetch(topic, partition, offset, fetches as i32)?;
        stream.write_all(&request)?;
        read_frame(stream, frame)?;
        let records = records_of(frame)?;
        let next = next_offset(records)
            .ok_or_else(|| format!("fetch at offset {offset} returned no whole batch"))?;
        record_bytes += records.len() as u64;
        offset = next;
    }
    Ok((record_bytes, fetches - fetches_before))
}

fn encode_fetch(
    topic: &str,
    partition: i32,
    offset: i64,
    correlation_id: i32,
) -> Result<BytesMut, Error> {
    let mut wanted = FetchPartition::default();
    wanted.partition = partition;
    wanted.fetch_offset = offset;
    wanted.partition_max_bytes = FETCH_BYTES;
    let mut t = FetchTopic::default();
    t.topic = TopicName(StrBytes::from_string(topic.to_string()));
    t.partitions = vec![wanted];
    let mut request = FetchRequest::default();
    request.replica_id = (-1).into();
    request.max_wait_ms = 500;
    request.min_bytes = 1;
    request.max_bytes = FETCH_BYTES;
    request.session_epoch = -1;
    request.topics = vec![t];
    let mut header = RequestHeader::default();
    header.request_api_key = ApiKey::Fetch as i16;
    header.request_api_version = VERSION;
    header.correlation_id = correlation_id;
    header.client_id = Some(StrBytes::from_static_str("ferrite-bench-fetch"));
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    encode_request_header_into_buffer(&mut buf, &header)?;
    request.encode(&mut buf, VERSION)?;
    let size = i32::try_from(buf.len() - 4)?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf)
}

/// Reads one response frame (without its length prefix) into `frame`, reusing its allocation.
fn read_frame(stream: &mut TcpStream, frame: &mut Vec<u8>) -> Result<(), Error> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size)?;
    let size = usize::try_from(i32::from_be_bytes(size))?;
    frame.resize(size, 0);
    stream.read_exact(frame)?;
    Ok(())
}

/// A cursor over big-endian fields.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.0.len() < n {
            return Err("fetch response shorter than its fields".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn i16(&mut self) -> Result<i16, Error> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into()?))
    }
    fn i32(&mut self) -> Result<i32, Error> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into()?))
    }
}

/// The record bytes of the only partition in a v11 response frame (after the length prefix).
fn records_of(frame: &[u8]) -> Result<&[u8], Error> {
    let mut c = Cursor(frame);
    c.take(4)?; // correlation id (response header v0)
    c.take(4)?; // throttle_time_ms
    let error = c.i16()?;
    c.take(4)?; // session id
    if error != 0 {
        return Err(format!("fetch failed with error {error}").into());
    }
    if c.i32()? != 1 {
        return Err("expected one topic in the fetch response".into());
    }
    let name_len = usize::try_from(c.i16()?)?;
    c.take(name_len)?;
    if c.i32()? != 1 {
        return Err("expected one partition in the fetch response".into());
    }
    c.take(4)?; // partition index
    let error = c.i16()?;
    if error != 0 {
        return Err(format!("fetch of the partition failed with error {error}").into());
    }
    c.take(24)?; // high watermark, last stable offset, log start offset
    let aborted = c.i32()?;
    if aborted > 0 {
        c.take(usize::try_from(aborted)? * 16)?;
    }
    c.take(4)?; // preferred read replica
    let len = c.i32()?;
    if len <= 0 {
        return Ok(&[]);
    }
    c.take(usize::try_from(len)?)
}

/// The offset after the last whole batch in `records`, from the batch headers alone.
fn next_offset(mut records: &[u8]) -> Option<i64> {
    let mut next = None;
    // Batch header: base offset i64 | length i32 | leader epoch i32 | magic i8 | crc u32 | attributes i16 |
    // last offset delta i32 ...
    while records.len() >= 27 {
        let base = i64::from_be_bytes(records[..8].try_into().ok()?);
        let len = usize::try_from(i32::from_be_bytes(records[8..12].try_into().ok()?)).ok()?;
        if records.len() < 12 + len {
            break;
        }
        let delta = i32::from_be_bytes(records[23..27].try_into().ok()?);
        next = Some(base + i64::from(delta) + 1);
        records = &records[12 + len..];
    }
    next
}

//! Fetch responses written by hand, so that record bytes can be file slices sent with `sendfile(2)`.
//!
//! kafka-protocol's generated encoder needs the records in memory; here the response becomes a list of
//! [`Chunk`]s: encoded framing in memory, record data as [`RecordData`] (file slices on the plaintext path).
//! The layout per version (0..=17) is Kafka's `FetchResponse.json`; a test checks versions 4..=17 byte for byte
//! against kafka-protocol's encoder, which no longer has 0-3.
//!
//! ```text
//! size | correlation id | [tagged fields v12+]
//! throttle_time_ms (v1+) | error_code (v7+) | session_id (v7+)
//! responses[ topic name (v<13) or topic id (v13+)
//!            partitions[ index | error | high watermark | last stable offset (v4+) | log start offset (v5+)
//!                        aborted transactions (nullable, v4+) | preferred read replica (v11+)
//!                        records (length-prefixed) | [tagged fields v12+] ]
//!            [tagged fields v12+] ]
//! [tagged fields v12+]
//! ```
//! Versions 0-3 carry magic 0/1 message sets, converted in memory (`legacy::message_set`).

use crate::response::{begin_response, finish_response};
use bytes::{BufMut, Bytes, BytesMut};
use ferrite_log::FileSlice;
use kafka_protocol::messages::ApiKey;

/// Record bytes of one partition.
#[derive(Debug, Clone)]
pub enum RecordData {
    Memory(Bytes),
    File(FileSlice),
}

impl RecordData {
    pub fn len(&self) -> u64 {
        match self {
            RecordData::Memory(b) => b.len() as u64,
            RecordData::File(f) => f.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A piece of the response, in order.
#[derive(Debug, Clone)]
pub enum Chunk {
    Memory(Bytes),
    Records(RecordData),
}

#[derive(Debug, Clone, Default)]
pub struct FetchPartition {
    pub partition_index: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// `None` encodes null (no transactions looked at); `Some(vec![])` an empty list.
    pub aborted_transactions: Option<Vec<(i64, i64)>>,
    pub preferred_read_replica: i32,
    pub records: Vec<RecordData>,
}

#[derive(Debug, Clone, Default)]
pub struct FetchTopic {
    pub name: String,
    pub topic_id: [u8; 16],
    pub partitions: Vec<FetchPartition>,
}

#[derive(Debug, Clone, Default)]
pub struct FetchResponseBody {
    pub throttle_time_ms: i32,
    pub error_code: i16,
    pub session_id: i32,
    pub topics: Vec<FetchTopic>,
}

struct Writer {
    chunks: Vec<Chunk>,
    buf: BytesMut,
    flexible: bool,
    records_len: u64,
}

impl Writer {
    fn unsigned_varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.put_u8(v as u8);
    }

    fn array_len(&mut self, len: usize) {
        if self.flexible {
            self.unsigned_varint(len as u64 + 1);
        } else {
            self.buf.put_i32(len as i32);
        }
    }

    fn string(&mut self, s: &str) {
        if self.flexible {
            self.unsigned_varint(s.len() as u64 + 1);
        } else {
            self.buf.put_i16(s.len() as i16);
        }
        self.buf.put_slice(s.as_bytes());
    }

    fn tagged_fields(&mut self) {
        if self.flexible {
            self.buf.put_u8(0);
        }
    }

    fn records(&mut self, records: &[RecordData]) {
        let len: u64 = records.iter().map(RecordData::len).sum();
        if self.flexible {
            self.unsigned_varint(len + 1);
        } else {
            self.buf.put_i32(len as i32);
        }
        let before = std::mem::take(&mut self.buf).freeze();
        self.chunks.push(Chunk::Memory(before));
        for r in records {
            self.chunks.push(Chunk::Records(r.clone()));
        }
        self.records_len += len;
    }
}

/// Encodes a whole Fetch response frame (size prefix included) as chunks to write in order.
pub fn encode_fetch_response(
    version: i16,
    correlation_id: i32,
    body: &FetchResponseBody,
) -> Vec<Chunk> {
    let mut w = Writer {
        chunks: Vec::new(),
        buf: BytesMut::with_capacity(256),
        flexible: version >= 12,
        records_len: 0,
    };
    begin_response(&mut w.buf, ApiKey::Fetch, version, correlation_id);
    if version >= 1 {
        w.buf.put_i32(body.throttle_time_ms);
    }
    if version >= 7 {
        w.buf.put_i16(body.error_code);
        w.buf.put_i32(body.session_id);
    }
    w.array_len(body.topics.len());
    for topic in &body.topics {
        if version >= 13 {
            w.buf.put_slice(&topic.topic_id);
        } else {
            w.string(&topic.name);
        }
        w.array_len(topic.partitions.len());
        for p in &topic.partitions {
            w.buf.put_i32(p.partition_index);
            w.buf.put_i16(p.error_code);
            w.buf.put_i64(p.high_watermark);
            if version >= 4 {
                w.buf.put_i64(p.last_stable_offset);
                if version >= 5 {
                    w.buf.put_i64(p.log_start_offset);
                }
                match &p.aborted_transactions {
                    None if w.flexible => w.buf.put_u8(0),
                    None => w.buf.put_i32(-1),
                    Some(list) => {
                        w.array_len(list.len());
                        for &(producer_id, first_offset) in list {
                            w.buf.put_i64(producer_id);
                            w.buf.put_i64(first_offset);
                            w.tagged_fields();
                        }
                    }
                }
            }
            if version >= 11 {
                w.buf.put_i32(p.preferred_read_replica);
            }
            w.records(&p.records);
            w.tagged_fields();
        }
        w.tagged_fields();
    }
    w.tagged_fields();
    // The size prefix counts everything, record data included.
    let mut first = match w.chunks.first() {
        Some(Chunk::Memory(b)) => BytesMut::from(&b[..]),
        _ => std::mem::take(&mut w.buf),
    };
    let total_memory: u64 =
        w.chunks.iter().skip(1).map(chunk_memory_len).sum::<u64>() + w.buf.len() as u64;
    let extra = if w.chunks.is_empty() {
        0
    } else {
        total_memory + w.records_len
    };
    finish_response(&mut first, extra);
    if w.chunks.is_empty() {
        return vec![Chunk::Memory(first.freeze())];
    }
    w.chunks[0] = Chunk::Memory(first.freeze());
    if !w.buf.is_empty() {
        w.chunks.push(Chunk::Memory(w.buf.freeze()));
    }
    w.chunks
}

fn chunk_memory_len(c: &Chunk) -> u64 {
    match c {
        Chunk::Memory(b) => b.len() as u64,
        Chunk::Records(_) => 0,
    }
}

/// Total bytes of a response on the wire.
pub fn chunks_len(chunks: &[Chunk]) -> u64 {
    chunks
        .iter()
        .map(|c| match c {
            Chunk::Memory(b) => b.len() as u64,
            Chunk::Records(r) => r.len(),
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, FetchableTopicResponse, PartitionData,
    };
    use kafka_protocol::messages::{FetchResponse, ProducerId, TopicName};
    use kafka_protocol::protocol::StrBytes;

    fn sample(with_aborted: bool) -> FetchResponseBody {
        let records = |n: usize| {
            vec![
                RecordData::Memory(Bytes::from(vec![7u8; n])),
                RecordData::Memory(Bytes::from(vec![9u8; 3])),
            ]
        };
        FetchResponseBody {
            throttle_time_ms: 5,
            error_code: 0,
            session_id: 77,
            topics: vec![
                FetchTopic {
                    name: "orders".into(),
                    topic_id: [3; 16],
                    partitions: vec![
                        FetchPartition {
                            partition_index: 0,
                            high_watermark: 100,
                            last_stable_offset: 90,
                            log_start_offset: 10,
                            aborted_transactions: with_aborted.then(|| vec![(5, 50), (6, 60)]),
                            preferred_read_replica: 2,
                            records: records(200),
                            ..Default::default()
                        },
                        FetchPartition {
                            partition_index: 1,
                            error_code: 1,
                            log_start_offset: -1,
                            preferred_read_replica: -1,
                            records: vec![],
                            ..Default::default()
                        },
                    ],
                },
                FetchTopic {
                    name: "t2".into(),
                    topic_id: [4; 16],
                    partitions: vec![],
                },
            ],
        }
    }

    /// The same response through kafka-protocol, with only the fields that exist in `version` set.
    fn reference(body: &FetchResponseBody, version: i16) -> FetchResponse {
        let mut r = FetchResponse::default();
        r.throttle_time_ms = body.throttle_time_ms;
        if version >= 7 {
            r.error_code = body.error_code;
            r.session_id = body.session_id;
        }
        for t in &body.topics {
            let mut topic = FetchableTopicResponse::default();
            if version >= 13 {
                topic.topic_id = uuid::Uuid::from_bytes(t.topic_id);
            } else {
                topic.topic = TopicName(StrBytes::from_string(t.name.clone()));
            }
            for p in &t.partitions {
                let mut pd = PartitionData::default();
                pd.partition_index = p.partition_index;
                pd.error_code = p.error_code;
                pd.high_watermark = p.high_watermark;
                pd.last_stable_offset = p.last_stable_offset;
                if version >= 5 {
                    pd.log_start_offset = p.log_start_offset;
                }
                pd.aborted_transactions = p.aborted_transactions.as_ref().map(|list| {
                    list.iter()
                        .map(|&(pid, first)| {
                            let mut a = AbortedTransaction::default();
                            a.producer_id = ProducerId(pid);
                            a.first_offset = first;
                            a
                        })
                        .collect()
                });
                if version >= 11 {
                    pd.preferred_read_replica =
                        kafka_protocol::messages::BrokerId(p.preferred_read_replica);
                }
                let mut bytes = vec![];
                for r in &p.records {
                    if let RecordData::Memory(b) = r {
                        bytes.extend_from_slice(b);
                    }
                }
                pd.records = Some(Bytes::from(bytes));
                topic.partitions.push(pd);
            }
            r.responses.push(topic);
        }
        r
    }

    fn flatten(chunks: &[Chunk]) -> Vec<u8> {
        let mut out = vec![];
        for c in chunks {
            match c {
                Chunk::Memory(b) | Chunk::Records(RecordData::Memory(b)) => {
                    out.extend_from_slice(b)
                }
                Chunk::Records(RecordData::File(_)) => panic!("no files in this test"),
            }
        }
        out
    }

    #[test]
    fn matches_kafka_protocol_encoder_for_every_version() {
        for version in 4..=17 {
            for with_aborted in [false, true] {
                let body = sample(with_aborted);
                let chunks = encode_fetch_response(version, 99, &body);
                let expected = crate::response::encode_response(
                    ApiKey::Fetch,
                    version,
                    99,
                    &reference(&body, version),
                )
                .expect("encode");
                assert_eq!(
                    flatten(&chunks),
                    expected.to_vec(),
                    "version {version} aborted {with_aborted}"
                );
                assert_eq!(chunks_len(&chunks), expected.len() as u64);
            }
        }
    }

    #[test]
    fn versions_0_to_3_layout() {
        let body = sample(true);
        for version in 0..=3 {
            let bytes = flatten(&encode_fetch_response(version, 99, &body));
            let mut want = vec![];
            want.extend_from_slice(&99i32.to_be_bytes());
            if version >= 1 {
                want.extend_from_slice(&5i32.to_be_bytes()); // throttle
            }
            want.extend_from_slice(&2i32.to_be_bytes());
            want.extend_from_slice(b"\x00\x06orders\x00\x00\x00\x02");
            // partition 0: index, error, high watermark, 203 record bytes
            want.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
            want.extend_from_slice(&100i64.to_be_bytes());
            want.extend_from_slice(&203i32.to_be_bytes());
            want.extend_from_slice(&[7; 200]);
            want.extend_from_slice(&[9; 3]);
            // partition 1: error 1, high watermark 0, no records
            want.extend_from_slice(&[0, 0, 0, 1, 0, 1]);
            want.extend_from_slice(&0i64.to_be_bytes());
            want.extend_from_slice(&0i32.to_be_bytes());
            want.extend_from_slice(b"\x00\x02t2\x00\x00\x00\x00");
            let size = (want.len() as i32).to_be_bytes();
            assert_eq!(bytes, [&size[..], &want].concat(), "version {version}");
        }
    }

    #[test]
    fn empty_response_is_one_chunk() {
        let chunks = encode_fetch_response(12, 1, &FetchResponseBody::default());
        let expected = crate::response::encode_response(
            ApiKey::Fetch,
            12,
            1,
            &reference(&FetchResponseBody::default(), 12),
        )
        .expect("encode");
        assert_eq!(flatten(&chunks), expected.to_vec());
    }
}

//! Encodes uncompressed v2 record batches. The broker itself never builds batches from records (it stores what
//! producers send); this exists for tests, benchmarks and tools that need real, valid batches.

use crate::batch::{compute_crc, BATCH_HEADER_LEN, CRC_POS, CURRENT_MAGIC, LOG_OVERHEAD};
use bytes::{BufMut, BytesMut};

/// One record to encode.
#[derive(Debug, Clone, Default)]
pub struct RecordSpec<'a> {
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Vec<(&'a str, Option<&'a [u8]>)>,
    pub timestamp: i64,
}

/// Producer identity for an idempotent batch; `None` writes Kafka's "no producer" values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdentity {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

fn put_varlong(out: &mut BytesMut, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.put_u8((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    out.put_u8(zigzag as u8);
}

fn put_nullable_bytes(out: &mut BytesMut, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varlong(out, -1),
        Some(b) => {
            put_varlong(out, b.len() as i64);
            out.put_slice(b);
        }
    }
}

/// Appends one encoded batch to `out`, with base offset 0 (the log assigns real offsets).
pub fn encode_batch(
    out: &mut BytesMut,
    records: &[RecordSpec<'_>],
    leader_epoch: i32,
    producer: Option<ProducerIdentity>,
) {
    assert!(!records.is_empty(), "a batch holds at least one record");
    let start = out.len();
    let base_timestamp = records[0].timestamp;
    let max_timestamp = records
        .iter()
        .map(|r| r.timestamp)
        .max()
        .unwrap_or(base_timestamp);
    let producer = producer.unwrap_or(ProducerIdentity {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
    });

    out.put_i64(0); // base offset
    out.put_i32(0); // batch length, patched below
    out.put_i32(leader_epoch);
    out.put_i8(CURRENT_MAGIC);
    out.put_u32(0); // crc, patched below
    out.put_i16(0); // attributes: no compression, CreateTime
    out.put_i32(records.len() as i32 - 1);
    out.put_i64(base_timestamp);
    out.put_i64(max_timestamp);
    out.put_i64(producer.producer_id);
    out.put_i16(producer.producer_epoch);
    out.put_i32(producer.base_sequence);
    out.put_i32(records.len() as i32);
    debug_assert_eq!(out.len() - start, BATCH_HEADER_LEN);

    let mut body = BytesMut::new();
    for (delta, record) in records.iter().enumerate() {
        body.clear();
        body.put_i8(0);
        put_varlong(&mut body, record.timestamp - base_timestamp);
        put_varlong(&mut body, delta as i64);
        put_nullable_bytes(&mut body, record.key);
        put_nullable_bytes(&mut body, record.value);
        put_varlong(&mut body, record.headers.len() as i64);
        for (key, value) in &record.headers {
            put_nullable_bytes(&mut body, Some(key.as_bytes()));
            put_nullable_bytes(&mut body, *value);
        }
        put_varlong(out, body.len() as i64);
        out.put_slice(&body);
    }

    let batch_length = (out.len() - start - LOG_OVERHEAD) as i32;
    out[start + 8..start + 12].copy_from_slice(&batch_length.to_be_bytes());
    let crc = compute_crc(&out[start..]);
    out[start + CRC_POS..start + CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Convenience: one batch of `count` records with values of `value_size` bytes and the given timestamp.
pub fn simple_batch(count: usize, value_size: usize, timestamp: i64) -> BytesMut {
    let value = vec![0xabu8; value_size];
    let records: Vec<RecordSpec<'_>> = (0..count)
        .map(|_| RecordSpec {
            key: None,
            value: Some(&value),
            headers: vec![],
            timestamp,
        })
        .collect();
    let mut out = BytesMut::with_capacity(BATCH_HEADER_LEN + count * (value_size + 16));
    encode_batch(&mut out, &records, -1, None);
    out
}

/// One batch of `count` records compressed with `codec` (built uncompressed, then recompressed the way the
/// broker does for a topic's `compression.type`).
pub fn compressed_batch(
    count: usize,
    value_size: usize,
    timestamp: i64,
    codec: crate::batch::Compression,
) -> BytesMut {
    let plain = simple_batch(count, value_size, timestamp);
    match crate::batch::recompress_payload(
        &plain,
        codec,
        crate::compression::MAX_DECOMPRESSED_BYTES,
    ) {
        Ok(packed) => packed,
        Err(e) => unreachable!("a freshly built batch always recompresses: {e}"),
    }
}

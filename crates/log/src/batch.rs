//! A view over Kafka v2 record batches ("magic 2") as they sit in a produce request and on disk.
//!
//! ```text
//! offset  size  field
//!      0     8  base offset             } "log overhead": not covered by the CRC,
//!      8     4  batch length (bytes after this field)
//!     12     4  partition leader epoch  } rewritten by the broker without touching the CRC
//!     16     1  magic (= 2)
//!     17     4  CRC-32C of bytes 21..end
//!     21     2  attributes: bits 0-2 compression, 3 timestamp type, 4 transactional, 5 control
//!     23     4  last offset delta
//!     27     8  base timestamp
//!     35     8  max timestamp
//!     43     8  producer id
//!     51     2  producer epoch
//!     53     4  base sequence
//!     57     4  record count
//!     61     …  records (possibly compressed)
//! ```
//!
//! The broker never re-encodes records: it rewrites the base offset (and, for LogAppendTime, the max timestamp
//! plus the CRC) in place. Record-level checks walk uncompressed records without copying them.

use crate::config::TimestampType;
use crate::error::ValidationError;

pub const BASE_OFFSET_POS: usize = 0;
pub const BATCH_LENGTH_POS: usize = 8;
pub const PARTITION_LEADER_EPOCH_POS: usize = 12;
pub const MAGIC_POS: usize = 16;
pub const CRC_POS: usize = 17;
pub const ATTRIBUTES_POS: usize = 21;
pub const LAST_OFFSET_DELTA_POS: usize = 23;
pub const BASE_TIMESTAMP_POS: usize = 27;
pub const MAX_TIMESTAMP_POS: usize = 35;
pub const PRODUCER_ID_POS: usize = 43;
pub const PRODUCER_EPOCH_POS: usize = 51;
pub const BASE_SEQUENCE_POS: usize = 53;
pub const RECORDS_COUNT_POS: usize = 57;
/// Size of the fixed batch header; the smallest possible batch (zero records) is this long.
pub const BATCH_HEADER_LEN: usize = 61;
/// Base offset + batch length: the bytes in front of what `batch length` counts.
pub const LOG_OVERHEAD: usize = 12;
/// The only magic this broker accepts or writes; Kafka 4 rejects 0 and 1 too.
pub const CURRENT_MAGIC: i8 = 2;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

/// No producer id: the batch is not idempotent.
pub const NO_PRODUCER_ID: i64 = -1;
/// No timestamp (-1), as Kafka encodes it.
pub const NO_TIMESTAMP: i64 = -1;

/// The codec named by the attributes' low bits.
/// The codec named by the attributes' low bits (the discriminants are the attribute values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None = 0,
    Gzip = 1,
    Snappy = 2,
    Lz4 = 3,
    Zstd = 4,
}

impl Compression {
    pub fn from_attributes(attributes: i16) -> Option<Self> {
        match attributes & COMPRESSION_MASK {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }
}

fn read_i64(buf: &[u8], pos: usize) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[pos..pos + 8]);
    i64::from_be_bytes(b)
}

fn read_i32(buf: &[u8], pos: usize) -> i32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[pos..pos + 4]);
    i32::from_be_bytes(b)
}

fn read_i16(buf: &[u8], pos: usize) -> i16 {
    i16::from_be_bytes([buf[pos], buf[pos + 1]])
}

/// The fixed header of one batch, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Decodes the header from the first [`BATCH_HEADER_LEN`] bytes; `None` if fewer are given.
    pub fn parse(buf: &[u8]) -> Option<Self> {
        if buf.len() < BATCH_HEADER_LEN {
            return None;
        }
        Some(BatchHeader {
            base_offset: read_i64(buf, BASE_OFFSET_POS),
            batch_length: read_i32(buf, BATCH_LENGTH_POS),
            partition_leader_epoch: read_i32(buf, PARTITION_LEADER_EPOCH_POS),
            magic: buf[MAGIC_POS] as i8,
            crc: read_i32(buf, CRC_POS) as u32,
            attributes: read_i16(buf, ATTRIBUTES_POS),
            last_offset_delta: read_i32(buf, LAST_OFFSET_DELTA_POS),
            base_timestamp: read_i64(buf, BASE_TIMESTAMP_POS),
            max_timestamp: read_i64(buf, MAX_TIMESTAMP_POS),
            producer_id: read_i64(buf, PRODUCER_ID_POS),
            producer_epoch: read_i16(buf, PRODUCER_EPOCH_POS),
            base_sequence: read_i32(buf, BASE_SEQUENCE_POS),
            records_count: read_i32(buf, RECORDS_COUNT_POS),
        })
    }

    /// Bytes the whole batch occupies, log overhead included. Only meaningful once `batch_length` was checked.
    pub fn total_size(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    pub fn compression(&self) -> Option<Compression> {
        Compression::from_attributes(self.attributes)
    }

    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    pub fn has_producer_id(&self) -> bool {
        self.producer_id != NO_PRODUCER_ID
    }
}

/// The CRC a batch should carry: CRC-32C over attributes..end.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[ATTRIBUTES_POS..])
}

/// Rewrites the base offset. The CRC does not cover it, so nothing else changes.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[BASE_OFFSET_POS..BASE_OFFSET_POS + 8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Rewrites the partition leader epoch. The CRC does not cover it either.
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[PARTITION_LEADER_EPOCH_POS..PARTITION_LEADER_EPOCH_POS + 4]
        .copy_from_slice(&epoch.to_be_bytes());
}

/// LogAppendTime on a batch whose header and body are held apart (the append path): header fields are
/// rewritten in `header`, and the CRC is computed over the header's covered part followed by the body.
pub fn set_log_append_time_split(
    header: &mut [u8; BATCH_HEADER_LEN],
    body: &[u8],
    timestamp_ms: i64,
) {
    let attributes = read_i16(header, ATTRIBUTES_POS) | TIMESTAMP_TYPE_BIT;
    header[ATTRIBUTES_POS..ATTRIBUTES_POS + 2].copy_from_slice(&attributes.to_be_bytes());
    header[MAX_TIMESTAMP_POS..MAX_TIMESTAMP_POS + 8].copy_from_slice(&timestamp_ms.to_be_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&header[ATTRIBUTES_POS..]), body);
    header[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Marks the batch LogAppendTime with the broker's clock, as Kafka does: the timestamp-type bit and the max
/// timestamp change (consumers then read `max timestamp` as every record's time), and the CRC is recomputed.
pub fn set_log_append_time(batch: &mut [u8], timestamp_ms: i64) {
    let attributes = read_i16(batch, ATTRIBUTES_POS) | TIMESTAMP_TYPE_BIT;
    batch[ATTRIBUTES_POS..ATTRIBUTES_POS + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP_POS..MAX_TIMESTAMP_POS + 8].copy_from_slice(&timestamp_ms.to_be_bytes());
    let crc = compute_crc(batch);
    batch[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Why one batch's framing is unusable; shared by produce validation and recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Fewer bytes than the header or the declared length: a torn write at the tail of a file.
    Truncated,
    /// A declared length that cannot be a batch.
    BadLength,
    /// Magic other than 2.
    BadMagic(i8),
    /// Stored CRC differs from the computed one.
    BadCrc,
}

impl FrameError {
    pub fn reason(&self) -> &'static str {
        match self {
            FrameError::Truncated => "truncated batch",
            FrameError::BadLength => "impossible batch length",
            FrameError::BadMagic(_) => "unsupported magic",
            FrameError::BadCrc => "CRC-32C mismatch",
        }
    }
}

/// Checks framing, magic and CRC of the batch starting at `buf[0]`; returns its header.
pub fn check_frame(buf: &[u8], max_batch_size: usize) -> Result<BatchHeader, FrameError> {
    let header = BatchHeader::parse(buf).ok_or(FrameError::Truncated)?;
    if (header.batch_length as i64) < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i64
        || header.total_size() > max_batch_size
    {
        return Err(FrameError::BadLength);
    }
    if header.magic != CURRENT_MAGIC {
        return Err(FrameError::BadMagic(header.magic));
    }
    if buf.len() < header.total_size() {
        return Err(FrameError::Truncated);
    }
    if compute_crc(&buf[..header.total_size()]) != header.crc {
        return Err(FrameError::BadCrc);
    }
    Ok(header)
}

/// What the server's produce path needs to know about an incoming payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ValidationRules {
    pub max_message_bytes: usize,
    pub timestamp_type: TimestampType,
    pub timestamp_before_max_ms: i64,
    pub timestamp_after_max_ms: i64,
}

impl ValidationRules {
    pub fn from_config(config: &crate::LogConfig) -> Self {
        ValidationRules {
            max_message_bytes: config.max_message_bytes,
            timestamp_type: config.timestamp_type,
            timestamp_before_max_ms: config.timestamp_before_max_ms,
            timestamp_after_max_ms: config.timestamp_after_max_ms,
        }
    }

    fn check_timestamp(&self, timestamp: i64, now_ms: i64) -> Result<(), ValidationError> {
        if self.timestamp_type == TimestampType::LogAppendTime || timestamp == NO_TIMESTAMP {
            return Ok(());
        }
        let too_old = now_ms.saturating_sub(timestamp) > self.timestamp_before_max_ms;
        let too_new = timestamp.saturating_sub(now_ms) > self.timestamp_after_max_ms;
        if too_old || too_new {
            return Err(ValidationError::InvalidTimestamp {
                timestamp,
                now: now_ms,
            });
        }
        Ok(())
    }
}

/// Summary of a validated payload, enough to assign offsets without parsing it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadSummary {
    pub batch_count: usize,
    pub record_count: u64,
    /// Sum over batches of `last_offset_delta + 1`: how many offsets the payload consumes.
    pub offset_count: u64,
    pub max_timestamp: i64,
}

/// Validates a produce payload (one or more batches) before anything is written: framing, magic, CRC,
/// record count against the last offset delta, size against `max.message.bytes`, timestamps. Every batch is
/// also walked record by record (framing, offset deltas, per-record timestamps), compressed ones after
/// decompression.
pub fn validate_payload(
    payload: &[u8],
    rules: &ValidationRules,
    now_ms: i64,
) -> Result<PayloadSummary, ValidationError> {
    if payload.is_empty() {
        return Err(ValidationError::InvalidRecord {
            position: 0,
            reason: "empty record set".into(),
        });
    }
    let mut summary = PayloadSummary {
        batch_count: 0,
        record_count: 0,
        offset_count: 0,
        max_timestamp: NO_TIMESTAMP,
    };
    let limit = crate::compression::decompressed_limit(rules.max_message_bytes);
    let mut position = 0;
    while position < payload.len() {
        let rest = &payload[position..];
        if let Some(header) = BatchHeader::parse(rest) {
            if header.total_size() > rules.max_message_bytes && header.batch_length > 0 {
                return Err(ValidationError::TooLarge {
                    size: header.total_size(),
                    max: rules.max_message_bytes,
                });
            }
        }
        let header = check_frame(rest, usize::MAX).map_err(|e| match e {
            FrameError::BadMagic(m) => ValidationError::InvalidRecord {
                position,
                reason: format!("magic {m} is not supported; only v2"),
            },
            other => ValidationError::Corrupt {
                position,
                reason: other.reason(),
            },
        })?;
        validate_batch_header(&header, position, rules, now_ms)?;
        let batch = &rest[..header.total_size()];
        let records = records_of(&header, batch, limit).map_err(|e| ValidationError::Corrupt {
            position,
            reason: codec_reason(&e),
        })?;
        validate_records(&header, &records, rules, now_ms, position)?;
        summary.batch_count += 1;
        summary.record_count += header.records_count as u64;
        summary.offset_count += header.last_offset_delta as u64 + 1;
        summary.max_timestamp = summary.max_timestamp.max(header.max_timestamp);
        position += header.total_size();
    }
    Ok(summary)
}

fn validate_batch_header(
    header: &BatchHeader,
    position: usize,
    rules: &ValidationRules,
    now_ms: i64,
) -> Result<(), ValidationError> {
    let invalid = |reason: String| ValidationError::InvalidRecord { position, reason };
    if header.compression().is_none() {
        return Err(invalid(format!(
            "unknown compression codec in attributes {:#x}",
            header.attributes
        )));
    }
    if header.records_count <= 0 {
        return Err(invalid(format!(
            "record count {} must be positive",
            header.records_count
        )));
    }
    if header.last_offset_delta < 0
        || i64::from(header.last_offset_delta) + 1 != i64::from(header.records_count)
    {
        return Err(invalid(format!(
            "record count {} does not match last offset delta {}",
            header.records_count, header.last_offset_delta
        )));
    }
    if header.is_control() && !header.is_transactional() {
        return Err(invalid(
            "control batch without the transactional flag".into(),
        ));
    }
    rules.check_timestamp(header.max_timestamp, now_ms)?;
    rules.check_timestamp(header.base_timestamp, now_ms)
}

/// A cursor over zig-zag varints, as the record format uses them.
struct VarintReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> VarintReader<'a> {
    fn varlong(&mut self) -> Result<i64, String> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .buf
                .get(self.pos)
                .ok_or("record ends inside a varint")?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    fn varint(&mut self) -> Result<i32, String> {
        i32::try_from(self.varlong()?).map_err(|_| "varint out of i32 range".to_string())
    }

    /// Skips a length-prefixed byte string, returning where it lies (`None` for null); -1 (null) is allowed
    /// where `nullable`.
    fn skip_bytes(&mut self, nullable: bool) -> Result<Option<std::ops::Range<usize>>, String> {
        let len = self.varint()?;
        if len < 0 {
            return if nullable && len == -1 {
                Ok(None)
            } else {
                Err(format!("invalid length {len}"))
            };
        }
        let end = self
            .pos
            .checked_add(len as usize)
            .filter(|&e| e <= self.buf.len())
            .ok_or("field overruns record")?;
        let start = self.pos;
        self.pos = end;
        Ok(Some(start..end))
    }
}

/// One record's position inside a batch, as found by [`walk_records`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMeta {
    pub offset_delta: i32,
    pub timestamp: i64,
    /// Where the key and value lie in the records buffer (`None`: null).
    pub key: Option<std::ops::Range<usize>>,
    pub value: Option<std::ops::Range<usize>>,
}

/// Walks the (uncompressed) records of a batch, calling `visit` for each, checking that every record's framing
/// fits exactly and that the count matches the header.
pub fn walk_records(
    header: &BatchHeader,
    records: &[u8],
    mut visit: impl FnMut(RecordMeta) -> Result<(), String>,
) -> Result<(), String> {
    let mut reader = VarintReader {
        buf: records,
        pos: 0,
    };
    let mut seen: i64 = 0;
    while reader.pos < records.len() {
        let length = reader.varint()?;
        if length < 0 {
            return Err(format!("negative record length {length}"));
        }
        let end = reader
            .pos
            .checked_add(length as usize)
            .filter(|&e| e <= records.len())
            .ok_or("record overruns batch")?;
        let mut rec = VarintReader {
            buf: &records[..end],
            pos: reader.pos,
        };
        rec.pos += 1; // attributes: unused in v2
        if rec.pos > end {
            return Err("record too short".into());
        }
        let timestamp_delta = rec.varlong()?;
        let offset_delta = rec.varint()?;
        let key = rec.skip_bytes(true)?;
        let value = rec.skip_bytes(true)?;
        let header_count = rec.varint()?;
        if header_count < 0 {
            return Err(format!("negative header count {header_count}"));
        }
        for _ in 0..header_count {
            rec.skip_bytes(false)?; // header key
            rec.skip_bytes(true)?; // header value
        }
        if rec.pos != end {
            return Err("record length does not match its fields".into());
        }
        let timestamp = if header.timestamp_type() == TimestampType::LogAppendTime {
            header.max_timestamp
        } else {
            header.base_timestamp.wrapping_add(timestamp_delta)
        };
        visit(RecordMeta {
            offset_delta,
            timestamp,
            key,
            value,
        })?;
        seen += 1;
        reader.pos = end;
    }
    if seen != i64::from(header.records_count) {
        return Err(format!(
            "header says {} records, batch holds {seen}",
            header.records_count
        ));
    }
    Ok(())
}

/// Record-level validation of a produce batch: offset deltas must run 0, 1, 2, … and every record's
/// timestamp must be inside the allowed window. `records` is the batch body, decompressed if need be;
/// `position` is the batch's place in the payload, for the error.
pub fn validate_records(
    header: &BatchHeader,
    records: &[u8],
    rules: &ValidationRules,
    now_ms: i64,
    position: usize,
) -> Result<(), ValidationError> {
    let mut expected_delta = 0;
    let mut bad_timestamp = None;
    let walked = walk_records(header, records, |meta| {
        if meta.offset_delta != expected_delta {
            return Err(format!(
                "record offset delta {} where {expected_delta} was expected",
                meta.offset_delta
            ));
        }
        expected_delta += 1;
        rules.check_timestamp(meta.timestamp, now_ms).map_err(|e| {
            bad_timestamp = Some(e);
            "timestamp out of range".to_string()
        })
    });
    match (walked, bad_timestamp) {
        (Ok(()), _) => Ok(()),
        (Err(_), Some(timestamp_error)) => Err(timestamp_error),
        (Err(reason), None) => Err(ValidationError::InvalidRecord { position, reason }),
    }
}

/// The record bytes of a batch: borrowed when uncompressed, decompressed otherwise, refusing to decompress
/// past `limit` bytes. A batch from a client is bounded by
/// [`decompressed_limit`](crate::compression::decompressed_limit) of its topic's `max.message.bytes`; one the
/// log already holds (validated when appended) by [`MAX_DECOMPRESSED_BYTES`](crate::compression::MAX_DECOMPRESSED_BYTES).
pub fn records_of<'a>(
    header: &BatchHeader,
    batch: &'a [u8],
    limit: usize,
) -> Result<std::borrow::Cow<'a, [u8]>, crate::compression::CodecError> {
    let body = &batch[BATCH_HEADER_LEN.min(batch.len())..];
    match header.compression() {
        Some(Compression::None) | None => Ok(std::borrow::Cow::Borrowed(body)),
        Some(codec) => {
            crate::compression::decompress(codec, body, limit).map(std::borrow::Cow::Owned)
        }
    }
}

/// [`records_of`] for a batch the log already holds.
pub fn stored_records_of<'a>(
    header: &BatchHeader,
    batch: &'a [u8],
) -> Result<std::borrow::Cow<'a, [u8]>, crate::compression::CodecError> {
    records_of(header, batch, crate::compression::MAX_DECOMPRESSED_BYTES)
}

/// Static text for a codec failure (validation errors carry `&'static str` reasons).
fn codec_reason(e: &crate::compression::CodecError) -> &'static str {
    match e {
        crate::compression::CodecError::Corrupt { .. } => "records do not decompress",
        crate::compression::CodecError::TooLarge { .. } => {
            "records decompress beyond the size limit"
        }
    }
}

/// Rewrites every batch of a validated payload with its records compressed by `target` (a topic's
/// `compression.type`), leaving batches already in that codec untouched. Only the compressed body and the
/// header fields that describe it (attributes, length, CRC) change; records are not re-encoded. No batch may
/// decompress to more than `limit` bytes (see [`records_of`]).
pub fn recompress_payload(
    payload: &[u8],
    target: Compression,
    limit: usize,
) -> Result<bytes::BytesMut, ValidationError> {
    let mut out = bytes::BytesMut::with_capacity(payload.len());
    for (position, header) in batches(payload) {
        let batch = &payload[position..position + header.total_size()];
        if header.compression() == Some(target) {
            out.extend_from_slice(batch);
            continue;
        }
        let records = records_of(&header, batch, limit).map_err(|e| ValidationError::Corrupt {
            position,
            reason: codec_reason(&e),
        })?;
        let body = crate::compression::compress(target, &records).map_err(|_| {
            ValidationError::Corrupt {
                position,
                reason: "records could not be recompressed",
            }
        })?;
        let start = out.len();
        out.extend_from_slice(&batch[..BATCH_HEADER_LEN]);
        out.extend_from_slice(&body);
        let new = &mut out[start..];
        let attributes = (header.attributes & !COMPRESSION_MASK) | target as i16;
        new[ATTRIBUTES_POS..ATTRIBUTES_POS + 2].copy_from_slice(&attributes.to_be_bytes());
        let length = (BATCH_HEADER_LEN - LOG_OVERHEAD + body.len()) as i32;
        new[BATCH_LENGTH_POS..BATCH_LENGTH_POS + 4].copy_from_slice(&length.to_be_bytes());
        let crc = compute_crc(new);
        new[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
    }
    Ok(out)
}

/// Iterates over the batches of a buffer that is known to be well framed (for example a validated payload).
pub fn batches(buf: &[u8]) -> impl Iterator<Item = (usize, BatchHeader)> + '_ {
    let mut position = 0;
    std::iter::from_fn(move || {
        let header = BatchHeader::parse(buf.get(position..)?)?;
        let at = position;
        position += header.total_size();
        if position > buf.len() || header.total_size() < BATCH_HEADER_LEN {
            return None;
        }
        Some((at, header))
    })
}

#[cfg(test)]
pub(crate) mod tests;

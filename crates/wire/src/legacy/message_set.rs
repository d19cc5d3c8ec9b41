//! Magic 0 and 1 message sets (the message formats before Kafka 0.11), converted to and from the v2 record
//! batches the log stores. kafka-go 0.2.1 needs both directions: it produces magic 1 with Produce v2 and can only
//! read magic 0/1, which it fetches with Fetch v2.
//!
//! ```text
//! message set: [offset i64 | message_size i32 | message] ...
//! message v0:  crc u32 | magic i8 = 0 | attributes i8 | key bytes | value bytes
//! message v1:  crc u32 | magic i8 = 1 | attributes i8 | timestamp i64 | key bytes | value bytes
//!   crc:        CRC-32 (IEEE) of everything after it
//!   attributes: bits 0-2 the codec (0 none, 1 gzip, 2 snappy, 3 lz4), bit 3 LogAppendTime (v1)
//!   bytes:      i32 length (-1: null), then the bytes
//! compressed:  one wrapper message whose value is the compressed message set of the real messages
//! ```
//! Up-conversion (Produce v0-2) makes one uncompressed v2 batch of the messages' keys, values and timestamps
//! (magic 0 has none: -1), then compresses it with the wrapper's codec if the messages came compressed, so the
//! log stores what a current producer would have sent. Down-conversion (Fetch v0-3) writes one uncompressed
//! message per record at or after the fetch offset, with its absolute offset; control batches and record
//! headers, which the old formats cannot carry, are left out, as Kafka does. Neither can be zero-copy: the
//! server counts them.

use bytes::{BufMut, BytesMut};
use ferrite_log::batch::{self, BatchHeader, Compression};
use ferrite_log::batch_builder::{encode_batch, RecordSpec};
use ferrite_log::compression::decompress;
use ferrite_log::TimestampType;

const CODEC_MASK: i8 = 0x07;
const LOG_APPEND_TIME: i8 = 0x08;
/// Offset and size in front of every message.
const ENTRY_OVERHEAD: usize = 12;

/// Why a message set cannot be up-converted; the produce path then answers CORRUPT_MESSAGE.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageSetError {
    #[error("message set ends inside a message")]
    Truncated,
    #[error("message size {0} does not match its fields")]
    BadSize(i32),
    #[error("unsupported magic {0}")]
    BadMagic(i8),
    #[error("CRC-32 mismatch")]
    BadCrc,
    #[error("unknown compression codec {0}")]
    BadCodec(i8),
    #[error("a compressed message inside a compressed message")]
    Nested,
    #[error("compressed messages: {0}")]
    Codec(String),
    #[error("no messages")]
    Empty,
}

/// One message, borrowed from its message set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Message<'a> {
    magic: i8,
    attributes: i8,
    timestamp: i64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8], MessageSetError> {
    if buf.len() < n {
        return Err(MessageSetError::Truncated);
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

fn take_i32(buf: &mut &[u8]) -> Result<i32, MessageSetError> {
    let b = take(buf, 4)?;
    Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn take_u32(buf: &mut &[u8]) -> Result<u32, MessageSetError> {
    let b = take(buf, 4)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn take_i64(buf: &mut &[u8]) -> Result<i64, MessageSetError> {
    let mut a = [0u8; 8];
    a.copy_from_slice(take(buf, 8)?);
    Ok(i64::from_be_bytes(a))
}

fn take_bytes<'a>(buf: &mut &'a [u8]) -> Result<Option<&'a [u8]>, MessageSetError> {
    let len = take_i32(buf)?;
    if len == -1 {
        return Ok(None);
    }
    let len = usize::try_from(len).map_err(|_| MessageSetError::Truncated)?;
    take(buf, len).map(Some)
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    crc.sum()
}

/// Splits a message set into its messages, checking each one's size and CRC.
fn messages(mut set: &[u8]) -> Result<Vec<Message<'_>>, MessageSetError> {
    let mut out = vec![];
    while !set.is_empty() {
        let _offset = take_i64(&mut set)?;
        let size = take_i32(&mut set)?;
        let mut body = take(
            &mut set,
            usize::try_from(size).map_err(|_| MessageSetError::BadSize(size))?,
        )?;
        let crc = take_u32(&mut body)?;
        if crc32(body) != crc {
            return Err(MessageSetError::BadCrc);
        }
        let header = take(&mut body, 2)?;
        let (magic, attributes) = (header[0] as i8, header[1] as i8);
        let timestamp = match magic {
            0 => batch::NO_TIMESTAMP,
            1 => take_i64(&mut body)?,
            other => return Err(MessageSetError::BadMagic(other)),
        };
        let key = take_bytes(&mut body)?;
        let value = take_bytes(&mut body)?;
        if !body.is_empty() {
            return Err(MessageSetError::BadSize(size));
        }
        out.push(Message {
            magic,
            attributes,
            timestamp,
            key,
            value,
        });
    }
    Ok(out)
}

fn codec(attributes: i8) -> Result<Compression, MessageSetError> {
    match attributes & CODEC_MASK {
        0 => Ok(Compression::None),
        1 => Ok(Compression::Gzip),
        2 => Ok(Compression::Snappy),
        3 => Ok(Compression::Lz4),
        other => Err(MessageSetError::BadCodec(other)),
    }
}

/// Whether `records` (a produce request's record set) is a magic 0/1 message set rather than v2 batches: the
/// magic byte sits at the same place in both formats.
pub fn is_message_set(records: &[u8]) -> bool {
    records
        .get(batch::MAGIC_POS)
        .is_some_and(|&magic| magic < batch::CURRENT_MAGIC as u8)
}

/// One v2 batch holding the messages of a magic 0/1 message set (see the module doc); `(batch, messages)`.
/// The compressed wrappers of the set may decompress to at most `limit` bytes in all (a bomb is refused
/// without materialising it; see `ferrite_log::compression::decompressed_limit`).
pub fn up_convert(set: &[u8], limit: usize) -> Result<(BytesMut, usize), MessageSetError> {
    let outer = messages(set)?;
    // Decompressed first, so the records below can borrow from them.
    let mut unpacked = vec![];
    let mut target = Compression::None;
    let mut left = limit;
    for m in &outer {
        let c = codec(m.attributes)?;
        if c != Compression::None {
            let value = m.value.unwrap_or_default();
            let inner =
                decompress(c, value, left).map_err(|e| MessageSetError::Codec(e.to_string()))?;
            left -= inner.len();
            unpacked.push(inner);
            target = c;
        }
    }
    let mut unpacked = unpacked.iter();
    let mut records: Vec<RecordSpec<'_>> = vec![];
    for m in &outer {
        if codec(m.attributes)? == Compression::None {
            records.push(spec(m, None));
            continue;
        }
        let inner = unpacked.next().ok_or(MessageSetError::Truncated)?;
        // A wrapper in LogAppendTime names the time for all its messages.
        let overriding =
            (m.magic == 1 && m.attributes & LOG_APPEND_TIME != 0).then_some(m.timestamp);
        for im in messages(inner)? {
            if codec(im.attributes)? != Compression::None {
                return Err(MessageSetError::Nested);
            }
            records.push(spec(&im, overriding));
        }
    }
    if records.is_empty() {
        return Err(MessageSetError::Empty);
    }
    let mut out = BytesMut::with_capacity(set.len() + batch::BATCH_HEADER_LEN);
    encode_batch(&mut out, &records, -1, None);
    let count = records.len();
    if target == Compression::None {
        return Ok((out, count));
    }
    batch::recompress_payload(&out, target, limit)
        .map(|packed| (packed, count))
        .map_err(|e| MessageSetError::Codec(e.to_string()))
}

fn spec<'a>(m: &Message<'a>, timestamp: Option<i64>) -> RecordSpec<'a> {
    RecordSpec {
        key: m.key,
        value: m.value,
        headers: vec![],
        timestamp: timestamp.unwrap_or(m.timestamp),
    }
}

/// The records of `batches` (whole v2 batches, as the log returns them) at or after `fetch_offset`, as
/// uncompressed magic `magic` messages; at most `max_bytes`, but always the first message. Stops at a batch it
/// cannot read. Returns the message set and how many messages it holds.
pub fn down_convert(
    batches: &[u8],
    magic: i8,
    fetch_offset: i64,
    max_bytes: usize,
) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut count = 0;
    let mut position = 0;
    while let Some(header) = batches.get(position..).and_then(BatchHeader::parse) {
        let Some(batch) = batches.get(position..position + header.total_size()) else {
            break;
        };
        position += header.total_size();
        let last_offset = header
            .base_offset
            .saturating_add(i64::from(header.last_offset_delta));
        if header.is_control() || last_offset < fetch_offset {
            continue;
        }
        let Ok(records) = batch::stored_records_of(&header, batch) else {
            break;
        };
        let log_append = header.timestamp_type() == TimestampType::LogAppendTime;
        let mut full = false;
        let walked = batch::walk_records(&header, &records, |r| {
            let offset = header.base_offset.saturating_add(i64::from(r.offset_delta));
            if offset < fetch_offset {
                return Ok(());
            }
            let field = |range: &Option<std::ops::Range<usize>>| range.clone().map(|r| &records[r]);
            let message = encode_message(
                magic,
                offset,
                r.timestamp,
                log_append,
                field(&r.key),
                field(&r.value),
            );
            if count > 0 && out.len() + message.len() > max_bytes {
                full = true;
                return Err("response full".into());
            }
            out.extend_from_slice(&message);
            count += 1;
            Ok(())
        });
        if full || walked.is_err() {
            break;
        }
    }
    (out, count)
}

/// A message's key, value and timestamp.
pub type Plain<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, i64);

/// An uncompressed magic 0/1 message set of `messages`, offsets counting from `first_offset`: what an old
/// producer sends (for tests).
pub fn encode(magic: i8, first_offset: i64, messages: &[Plain<'_>]) -> Vec<u8> {
    let mut out = vec![];
    for (i, (key, value, timestamp)) in messages.iter().enumerate() {
        out.extend(encode_message(
            magic,
            first_offset + i as i64,
            *timestamp,
            false,
            *key,
            *value,
        ));
    }
    out
}

/// One message with its offset and size in front (a message set entry).
fn encode_message(
    magic: i8,
    offset: i64,
    timestamp: i64,
    log_append_time: bool,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Vec<u8> {
    let len = |b: Option<&[u8]>| 4 + b.map_or(0, <[u8]>::len);
    let size = 4 + 2 + if magic >= 1 { 8 } else { 0 } + len(key) + len(value);
    let mut out = BytesMut::with_capacity(ENTRY_OVERHEAD + size);
    out.put_i64(offset);
    out.put_i32(i32::try_from(size).unwrap_or(i32::MAX));
    out.put_u32(0); // CRC, patched below
    out.put_i8(magic);
    out.put_i8(if magic >= 1 && log_append_time {
        LOG_APPEND_TIME
    } else {
        0
    });
    if magic >= 1 {
        out.put_i64(timestamp);
    }
    for field in [key, value] {
        match field {
            None => out.put_i32(-1),
            Some(b) => {
                out.put_i32(i32::try_from(b.len()).unwrap_or(i32::MAX));
                out.put_slice(b);
            }
        }
    }
    let crc = crc32(&out[ENTRY_OVERHEAD + 4..]);
    out[ENTRY_OVERHEAD..ENTRY_OVERHEAD + 4].copy_from_slice(&crc.to_be_bytes());
    out.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrite_log::batch_builder::simple_batch;
    use proptest::prelude::*;

    const LIMIT: usize = ferrite_log::compression::MIN_DECOMPRESSED_LIMIT;

    fn set(magic: i8, first: i64, messages: &[Plain<'_>]) -> Vec<u8> {
        encode(magic, first, messages)
    }

    /// `inner` compressed with `codec` into one wrapper message.
    fn wrapped(magic: i8, codec: Compression, inner: &[u8], last_offset: i64) -> Vec<u8> {
        let packed = ferrite_log::compression::compress(codec, inner).expect("compress");
        let mut m = encode_message(magic, last_offset, 1000, false, None, Some(&packed));
        m[ENTRY_OVERHEAD + 5] = codec as u8; // attributes
        let crc = crc32(&m[ENTRY_OVERHEAD + 4..]);
        m[ENTRY_OVERHEAD..ENTRY_OVERHEAD + 4].copy_from_slice(&crc.to_be_bytes());
        m
    }

    type Bytes = Option<Vec<u8>>;

    /// (offset, timestamp, key, value) of every record of v2 batches.
    fn records(batches: &[u8]) -> Vec<(i64, i64, Bytes, Bytes)> {
        let mut out = vec![];
        for (position, header) in batch::batches(batches) {
            let b = &batches[position..position + header.total_size()];
            let recs = batch::stored_records_of(&header, b).expect("records");
            batch::walk_records(&header, &recs, |r| {
                let field =
                    |x: &Option<std::ops::Range<usize>>| x.clone().map(|x| recs[x].to_vec());
                out.push((
                    header.base_offset + i64::from(r.offset_delta),
                    r.timestamp,
                    field(&r.key),
                    field(&r.value),
                ));
                Ok(())
            })
            .expect("walk");
        }
        out
    }

    /// (offset, magic, timestamp, key, value) of every message of a message set.
    fn read_set(mut set: &[u8]) -> Vec<(i64, i8, i64, Bytes, Bytes)> {
        let mut out = vec![];
        while !set.is_empty() {
            let offset = take_i64(&mut set).expect("offset");
            let size = take_i32(&mut set).expect("size") as usize;
            let entry = &set[..size];
            let whole = [
                &offset.to_be_bytes()[..],
                &(size as i32).to_be_bytes(),
                entry,
            ]
            .concat();
            let m = messages(&whole).expect("message")[0];
            out.push((
                offset,
                m.magic,
                m.timestamp,
                m.key.map(<[u8]>::to_vec),
                m.value.map(<[u8]>::to_vec),
            ));
            set = &set[size..];
        }
        out
    }

    #[test]
    fn message_v1_layout() {
        let m = encode_message(1, 5, 7, false, None, Some(b"v"));
        #[rustfmt::skip]
        let without_crc: &[u8] = &[
            0, 0, 0, 0, 0, 0, 0, 5,     // offset
            0, 0, 0, 23,                // size: crc 4, magic 1, attributes 1, timestamp 8, key 4, value 4+1
        ];
        assert_eq!(&m[..12], without_crc);
        assert_eq!(
            &m[16..],
            &[1, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, b'v']
        );
        // The CRC of the same fields computed independently (the crc32fast-compatible IEEE polynomial).
        assert_eq!(&m[12..16], &crc32(&m[16..]).to_be_bytes());
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926, "CRC-32/IEEE check value");
    }

    #[test]
    fn up_converts_plain_and_compressed_sets() {
        let msgs: [Plain<'_>; 3] = [
            (Some(b"k1"), Some(b"v1"), 1000),
            (None, Some(b""), 1001),
            (Some(b"k3"), None, 1002),
        ];
        for magic in [0, 1] {
            let want: Vec<_> = msgs
                .iter()
                .enumerate()
                .map(|(i, (k, v, ts))| {
                    let ts = if magic == 0 { -1 } else { *ts };
                    (i as i64, ts, k.map(<[u8]>::to_vec), v.map(<[u8]>::to_vec))
                })
                .collect();
            let plain = set(magic, 0, &msgs);
            let (batch, n) = up_convert(&plain, LIMIT).expect("plain");
            assert_eq!((n, records(&batch)), (3, want.clone()), "magic {magic}");
            for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4] {
                let inner = set(magic, 0, &msgs);
                let (batch, n) =
                    up_convert(&wrapped(magic, codec, &inner, 2), LIMIT).expect("wrapped");
                assert_eq!(n, 3);
                let header = BatchHeader::parse(&batch).expect("header");
                assert_eq!(
                    header.compression(),
                    Some(codec),
                    "stored in the producer's codec"
                );
                assert_eq!(records(&batch), want, "magic {magic} {codec:?}");
                let rules = batch::ValidationRules::from_config(&ferrite_log::LogConfig::default());
                batch::validate_payload(&batch, &rules, 1002).expect("a valid batch");
            }
        }
    }

    #[test]
    fn corrupt_sets_are_refused() {
        let good = set(1, 0, &[(Some(b"k"), Some(b"v"), 5)]);
        let mut bad_crc = good.clone();
        let last = bad_crc.len() - 1;
        bad_crc[last] ^= 1;
        assert_eq!(up_convert(&bad_crc, LIMIT), Err(MessageSetError::BadCrc));
        let mut bad_magic = good.clone();
        bad_magic[16] = 2;
        assert!(up_convert(&bad_magic, LIMIT).is_err());
        assert_eq!(up_convert(&[], LIMIT), Err(MessageSetError::Empty));
        for cut in 1..good.len() {
            assert!(up_convert(&good[..cut], LIMIT).is_err(), "cut {cut}");
        }
        let inner = wrapped(1, Compression::Gzip, &good, 0);
        let nested = wrapped(1, Compression::Gzip, &inner, 0);
        assert_eq!(up_convert(&nested, LIMIT), Err(MessageSetError::Nested));
        assert!(is_message_set(&good));
        assert!(!is_message_set(&simple_batch(1, 4, 0)));
    }

    #[test]
    fn down_converts_from_the_fetch_offset_within_the_limit() {
        // Two batches of 3 records at offsets 10-12 and 13-15, the second compressed.
        let mut first = simple_batch(3, 4, 1000);
        batch::set_base_offset(&mut first, 10);
        let mut second =
            ferrite_log::batch_builder::compressed_batch(3, 4, 2000, Compression::Gzip);
        batch::set_base_offset(&mut second, 13);
        let log = [&first[..], &second[..]].concat();
        for magic in [0, 1] {
            let (set, n) = down_convert(&log, magic, 11, usize::MAX);
            let got = read_set(&set);
            assert_eq!(n, 5);
            let offsets: Vec<i64> = got.iter().map(|m| m.0).collect();
            assert_eq!(
                offsets,
                vec![11, 12, 13, 14, 15],
                "records before the fetch offset are left out"
            );
            assert!(got
                .iter()
                .all(|m| m.1 == magic && m.4.as_deref() == Some(&[0xab; 4][..])));
            let timestamps: Vec<i64> = got.iter().map(|m| m.2).collect();
            let want = if magic == 0 {
                vec![-1; 5]
            } else {
                vec![1000, 1000, 2000, 2000, 2000]
            };
            assert_eq!(timestamps, want);
        }
        let (all, _) = down_convert(&log, 1, 0, usize::MAX);
        let one = all.len() / 6;
        let (limited, n) = down_convert(&log, 1, 0, one * 2 + 1);
        assert_eq!((limited.len(), n), (one * 2, 2));
        let (first_only, n) = down_convert(&log, 1, 0, 1);
        assert_eq!(
            (first_only.len(), n),
            (one, 1),
            "the first message always fits"
        );
        let (none, n) = down_convert(&log, 1, 16, usize::MAX);
        assert_eq!((none.len(), n), (0, 0));
        // A torn tail stops the conversion, without panicking.
        let (torn, n) = down_convert(&log[..log.len() - 3], 1, 0, usize::MAX);
        assert_eq!((torn.len(), n), (one * 3, 3));
    }

    proptest! {
        #[test]
        fn hostile_input_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = up_convert(&bytes, LIMIT);
            let _ = down_convert(&bytes, 1, 0, 1 << 20);
        }

        #[test]
        fn up_then_down_is_the_identity(
            values in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..8),
            magic in 0i8..=1,
        ) {
            let msgs: Vec<Plain<'_>> =
                values.iter().map(|v| (Some(&v[..]), Some(&v[..]), 77)).collect();
            let original = set(magic, 0, &msgs);
            let (batch, _) = up_convert(&original, LIMIT).expect("convert");
            let (back, n) = down_convert(&batch, magic, 0, usize::MAX);
            prop_assert_eq!(n, values.len());
            prop_assert_eq!(back, original);
        }
    }
}

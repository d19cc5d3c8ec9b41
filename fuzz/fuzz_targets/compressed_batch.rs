//! The compressed record path: fuzzed bytes as the body of a v2 batch in every codec, through produce
//! validation (decompress + record walk), recompression, the bare codecs, and Produce v0-2's up-conversion
//! of magic 0/1 wrapper messages. Nothing may panic, and no decompression may exceed its limit.
#![no_main]

use bytes::BytesMut;
use ferrite_log::batch::{self, Compression, ValidationRules};
use ferrite_log::batch_builder::simple_batch;
use ferrite_log::compression::{decompress, decompressed_limit};
use libfuzzer_sys::fuzz_target;

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];
/// Small, so bombs hit the limit quickly; run with `-malloc_limit_mb` to catch allocations of claimed sizes.
const MAX_MESSAGE_BYTES: usize = 4096;
const NOW: i64 = 1_700_000_000_000;

/// A well-formed v2 batch header (from a real batch) around `body`, with `codec`, `count` records and a
/// correct CRC, so validation gets past the header to the records.
fn batch_around(body: &[u8], codec: Compression, count: u16) -> BytesMut {
    let mut b = BytesMut::from(&simple_batch(1, 1, NOW)[..batch::BATCH_HEADER_LEN]);
    b.extend_from_slice(body);
    let length = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&length.to_be_bytes());
    b[21..23].copy_from_slice(&(codec as i16).to_be_bytes());
    let count = i32::from(count.max(1));
    b[23..27].copy_from_slice(&(count - 1).to_be_bytes()); // last offset delta
    b[57..61].copy_from_slice(&count.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

fuzz_target!(|data: &[u8]| {
    let [selector, c0, c1, body @ ..] = data else {
        return;
    };
    let codec = CODECS[*selector as usize % CODECS.len()];
    let limit = decompressed_limit(MAX_MESSAGE_BYTES);
    if let Ok(out) = decompress(codec, body, limit) {
        assert!(out.len() <= limit, "{codec:?} decompressed past its limit");
    }
    let payload = batch_around(body, codec, u16::from_be_bytes([*c0, *c1]));
    let rules = ValidationRules {
        max_message_bytes: payload.len().max(MAX_MESSAGE_BYTES),
        timestamp_type: ferrite_log::TimestampType::CreateTime,
        timestamp_before_max_ms: i64::MAX,
        timestamp_after_max_ms: i64::MAX,
    };
    if batch::validate_payload(&payload, &rules, NOW).is_ok() {
        for target in CODECS {
            let packed = batch::recompress_payload(&payload, target, limit)
                .expect("a valid batch recompresses");
            batch::validate_payload(&packed, &rules, NOW).expect("a recompressed batch is valid");
        }
    }
    // The same body as a magic 1 wrapper message of an old producer (codec bits 1-3 only).
    if (1..=3).contains(&(codec as i8)) {
        let mut wrapper = ferrite_wire::legacy::message_set::encode(1, 0, &[(None, Some(body), NOW)]);
        // offset (8), size (4), crc (4), magic (1), attributes (1); the CRC-32 covers magic onwards.
        wrapper[17] |= codec as u8;
        let crc = crc32fast::hash(&wrapper[16..]);
        wrapper[12..16].copy_from_slice(&crc.to_be_bytes());
        let _ = ferrite_wire::legacy::message_set::up_convert(&wrapper, limit);
    }
});

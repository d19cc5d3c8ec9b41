//! The four Kafka codecs, for what the broker must look inside: record-level validation of compressed
//! batches, recompression to a topic's `compression.type`, timestamp lookups inside compressed batches.
//!
//! Framings clients actually send, all accepted on input:
//! - gzip: a gzip stream;
//! - snappy: the Java client's xerial framing (`\x82SNAPPY\0`, version, compat, then length-prefixed blocks)
//!   or librdkafka's single raw block; output uses xerial framing, as Kafka's own broker writes;
//! - lz4: the LZ4 frame format; output uses independent 64 KiB blocks, which Kafka's Java reader requires;
//! - zstd: a zstd frame.
//!
//! Decompression stops at a size limit, so a compression bomb is an error, not an out-of-memory kill. The
//! limit is enforced before memory is committed: gzip, lz4 and zstd are decoded as streams into a buffer that
//! grows only as decoded bytes arrive and stops one byte past the limit (a zstd frame's declared content size
//! and an lz4 frame's content size are never used to size a buffer); snappy's raw block format names its
//! decompressed length up front, which is checked against the limit before the output is allocated.
//!
//! # The bound
//! A batch's records, decompressed, may take at most [`decompressed_limit`]`(max.message.bytes)`:
//! [`DECOMPRESSION_RATIO_MAX`] times the topic's `max.message.bytes` (compressed batches are bounded by it),
//! at most [`MAX_DECOMPRESSED_BYTES`], and never less than [`MIN_DECOMPRESSED_LIMIT`] nor than
//! 2 × `max.message.bytes` (so a topic whose operator raised `max.message.bytes` past the cap still accepts
//! its own batches). Ratios above 16 are rare for real record data (JSON under zstd runs 5-10×); producers
//! keep batches far smaller (librdkafka's `batch.size` bounds the uncompressed size at 1 MB, the Java
//! client's defaults to 16 KiB).

use crate::batch::Compression;
use std::io::{Read, Write};

/// Hard cap on a decompressed batch body, whatever `max.message.bytes` says (see the module doc).
pub const MAX_DECOMPRESSED_BYTES: usize = 256 * 1024 * 1024;
/// How many times `max.message.bytes` a batch's records may take once decompressed.
pub const DECOMPRESSION_RATIO_MAX: usize = 16;
/// Floor of [`decompressed_limit`], for topics with a tiny `max.message.bytes`.
pub const MIN_DECOMPRESSED_LIMIT: usize = 1024 * 1024;

/// The most bytes one batch's records may decompress to, for a topic's `max.message.bytes`.
pub fn decompressed_limit(max_message_bytes: usize) -> usize {
    max_message_bytes
        .saturating_mul(DECOMPRESSION_RATIO_MAX)
        .min(MAX_DECOMPRESSED_BYTES)
        .max(max_message_bytes.saturating_mul(2))
        .max(MIN_DECOMPRESSED_LIMIT)
}

const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_BLOCK: usize = 32 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("corrupt {codec:?} data: {reason}")]
    Corrupt { codec: Compression, reason: String },
    #[error("{codec:?} data decompresses to more than {limit} bytes")]
    TooLarge { codec: Compression, limit: usize },
}

fn corrupt(codec: Compression, e: impl std::fmt::Display) -> CodecError {
    CodecError::Corrupt {
        codec,
        reason: e.to_string(),
    }
}

/// Reads a decoder to its end, refusing to go past `limit` bytes.
fn read_limited(
    codec: Compression,
    reader: impl Read,
    limit: usize,
) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    let read = reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| corrupt(codec, e))?;
    if read > limit {
        return Err(CodecError::TooLarge { codec, limit });
    }
    Ok(out)
}

pub fn decompress(codec: Compression, data: &[u8], limit: usize) -> Result<Vec<u8>, CodecError> {
    match codec {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => read_limited(codec, flate2::read::GzDecoder::new(data), limit),
        Compression::Lz4 => read_limited(codec, lz4_flex::frame::FrameDecoder::new(data), limit),
        Compression::Zstd => {
            let decoder = zstd::stream::read::Decoder::new(data).map_err(|e| corrupt(codec, e))?;
            read_limited(codec, decoder, limit)
        }
        Compression::Snappy if data.starts_with(XERIAL_MAGIC) => snappy_xerial(&data[8..], limit),
        Compression::Snappy => snappy_block(data, limit, Vec::new()),
    }
}

/// The most a snappy block can expand: its densest element, a 3-byte copy, yields 64 bytes.
const SNAPPY_EXPANSION_MAX: usize = 22;

/// One raw snappy block appended to `out`. The block's header claims its decompressed length; the claim is
/// checked against `limit` and against what `block.len()` bytes can possibly expand to before the output
/// is allocated, so a lying header costs nothing.
fn snappy_block(block: &[u8], limit: usize, mut out: Vec<u8>) -> Result<Vec<u8>, CodecError> {
    let codec = Compression::Snappy;
    let len = snap::raw::decompress_len(block).map_err(|e| corrupt(codec, e))?;
    if out.len().saturating_add(len) > limit {
        return Err(CodecError::TooLarge { codec, limit });
    }
    if len > block.len().saturating_mul(SNAPPY_EXPANSION_MAX) {
        return Err(corrupt(
            codec,
            format!("block of {} bytes claims {len}", block.len()),
        ));
    }
    let start = out.len();
    out.resize(start + len, 0);
    snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| corrupt(codec, e))?;
    Ok(out)
}

fn snappy_xerial(mut rest: &[u8], limit: usize) -> Result<Vec<u8>, CodecError> {
    let codec = Compression::Snappy;
    if rest.len() < 8 {
        return Err(corrupt(codec, "truncated xerial header"));
    }
    rest = &rest[8..]; // version and compatible version
    let mut out = Vec::new();
    while !rest.is_empty() {
        let Some(len_bytes) = rest.get(..4) else {
            return Err(corrupt(codec, "truncated xerial block length"));
        };
        let len =
            u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]) as usize;
        let block = rest
            .get(4..4 + len)
            .ok_or_else(|| corrupt(codec, "truncated xerial block"))?;
        out = snappy_block(block, limit, out)?;
        rest = &rest[4 + len..];
    }
    Ok(out)
}

pub fn compress(codec: Compression, data: &[u8]) -> Result<Vec<u8>, CodecError> {
    match codec {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(data).map_err(|e| corrupt(codec, e))?;
            encoder.finish().map_err(|e| corrupt(codec, e))
        }
        Compression::Lz4 => {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut encoder = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
            encoder.write_all(data).map_err(|e| corrupt(codec, e))?;
            encoder.finish().map_err(|e| corrupt(codec, e))
        }
        Compression::Zstd => zstd::bulk::compress(data, 3).map_err(|e| corrupt(codec, e)),
        Compression::Snappy => {
            let mut out = XERIAL_MAGIC.to_vec();
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut encoder = snap::raw::Encoder::new();
            for chunk in data.chunks(XERIAL_BLOCK) {
                let block = encoder.compress_vec(chunk).map_err(|e| corrupt(codec, e))?;
                out.extend_from_slice(&(block.len() as u32).to_be_bytes());
                out.extend_from_slice(&block);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    #[test]
    fn round_trip_every_codec() {
        let data: Vec<u8> = (0..200_000u32)
            .map(|i| (i % 251) as u8 ^ (i / 1000) as u8)
            .collect();
        for codec in ALL {
            let packed = compress(codec, &data).expect("compress");
            assert_eq!(
                decompress(codec, &packed, MAX_DECOMPRESSED_BYTES).expect("decompress"),
                data,
                "{codec:?}"
            );
            // Empty input may decode as empty or be refused; it must not panic.
            let _ = decompress(codec, &[], MAX_DECOMPRESSED_BYTES);
        }
    }

    #[test]
    fn limit_follows_max_message_bytes() {
        const MIB: usize = 1024 * 1024;
        assert_eq!(decompressed_limit(0), MIN_DECOMPRESSED_LIMIT);
        assert_eq!(decompressed_limit(1_048_588), 1_048_588 * 16);
        assert_eq!(decompressed_limit(100 * MIB), MAX_DECOMPRESSED_BYTES);
        assert_eq!(decompressed_limit(200 * MIB), 400 * MIB);
        assert_eq!(decompressed_limit(usize::MAX), usize::MAX);
    }

    /// A snappy block is 21 bytes at most per input byte; denser claims are lies, refused unallocated.
    #[test]
    fn snappy_claims_are_checked_before_allocation() {
        // Varint 200 MiB, then one literal byte.
        let mut lying = vec![];
        let mut n = 200u32 << 20;
        while n >= 0x80 {
            lying.push((n as u8) | 0x80);
            n >>= 7;
        }
        lying.extend_from_slice(&[n as u8, 0x00, b'x']);
        assert!(matches!(
            decompress(Compression::Snappy, &lying, 16 << 20),
            Err(CodecError::TooLarge { .. })
        ));
        // Within the limit, the claim is still refused by the expansion bound, not by the decoder after a
        // 200 MiB allocation.
        let refused = decompress(Compression::Snappy, &lying, MAX_DECOMPRESSED_BYTES);
        assert!(
            matches!(&refused, Err(CodecError::Corrupt { reason, .. }) if reason.contains("claims")),
            "{refused:?}"
        );
        // The densest real block still decodes: the bound is not below snappy's real expansion.
        let zeros = vec![0u8; 1 << 20];
        let dense = snap::raw::Encoder::new()
            .compress_vec(&zeros)
            .expect("compress");
        assert!(zeros.len() <= dense.len() * SNAPPY_EXPANSION_MAX);
        assert_eq!(
            decompress(Compression::Snappy, &dense, 1 << 20).expect("decompress"),
            zeros
        );
    }

    #[test]
    fn raw_snappy_block_as_librdkafka_sends() {
        let data = b"hello hello hello hello".repeat(100);
        let raw = snap::raw::Encoder::new()
            .compress_vec(&data)
            .expect("compress");
        assert_eq!(
            decompress(Compression::Snappy, &raw, MAX_DECOMPRESSED_BYTES).expect("decompress"),
            data
        );
    }

    #[test]
    fn bombs_and_garbage_are_errors() {
        let zeros = vec![0u8; 10 << 20];
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let packed = compress(codec, &zeros).expect("compress");
            assert!(
                matches!(
                    decompress(codec, &packed, 1 << 20),
                    Err(CodecError::TooLarge { .. })
                ),
                "{codec:?}"
            );
            assert!(
                decompress(codec, b"\x00\x01garbage\xff\xff\xff\xff", 1 << 20).is_err(),
                "{codec:?}"
            );
            let truncated = &packed[..packed.len() / 2];
            assert!(
                decompress(codec, truncated, 100 << 20).is_err(),
                "{codec:?} truncated"
            );
        }
    }
}

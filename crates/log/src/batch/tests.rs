use super::*;
use crate::batch_builder::{encode_batch, simple_batch, RecordSpec};
use bytes::BytesMut;

const NOW: i64 = 1_700_000_000_000;

fn rules() -> ValidationRules {
    ValidationRules::from_config(&crate::LogConfig::default())
}

#[test]
fn builder_output_parses_and_validates() {
    let batch = simple_batch(3, 10, NOW);
    let header = check_frame(&batch, usize::MAX).expect("valid frame");
    assert_eq!(header.records_count, 3);
    assert_eq!(header.last_offset_delta, 2);
    assert_eq!(header.total_size(), batch.len());
    let summary = validate_payload(&batch, &rules(), NOW).expect("valid");
    assert_eq!(
        summary,
        PayloadSummary {
            batch_count: 1,
            record_count: 3,
            offset_count: 3,
            max_timestamp: NOW
        }
    );
}

#[test]
fn several_batches_in_one_payload() {
    let mut payload = simple_batch(2, 5, NOW);
    payload.extend_from_slice(&simple_batch(4, 5, NOW + 1));
    let summary = validate_payload(&payload, &rules(), NOW).expect("valid");
    assert_eq!(summary.batch_count, 2);
    assert_eq!(summary.offset_count, 6);
    assert_eq!(batches(&payload).count(), 2);
}

#[test]
fn base_offset_and_epoch_rewrite_keep_crc_valid() {
    let mut batch = simple_batch(1, 1, NOW);
    set_base_offset(&mut batch, 1234);
    set_partition_leader_epoch(&mut batch, 7);
    let header = check_frame(&batch, usize::MAX).expect("crc still valid");
    assert_eq!(header.base_offset, 1234);
    assert_eq!(header.partition_leader_epoch, 7);
}

#[test]
fn log_append_time_rewrites_and_recomputes_crc() {
    let mut batch = simple_batch(2, 1, NOW - 1000);
    set_log_append_time(&mut batch, NOW);
    let header = check_frame(&batch, usize::MAX).expect("crc recomputed");
    assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(header.max_timestamp, NOW);
}

#[test]
fn flipped_byte_is_corrupt() {
    let mut batch = simple_batch(2, 10, NOW);
    let last = batch.len() - 1;
    batch[last] ^= 0x01;
    assert!(matches!(
        validate_payload(&batch, &rules(), NOW),
        Err(ValidationError::Corrupt { .. })
    ));
}

#[test]
fn truncated_payload_is_corrupt() {
    let batch = simple_batch(2, 10, NOW);
    for cut in [1, 12, 60, batch.len() - 1] {
        let r = validate_payload(&batch[..cut], &rules(), NOW);
        assert!(
            matches!(r, Err(ValidationError::Corrupt { .. })),
            "cut at {cut}: {r:?}"
        );
    }
}

#[test]
fn old_magic_is_invalid_record() {
    let mut batch = simple_batch(1, 1, NOW);
    batch[MAGIC_POS] = 1;
    assert!(matches!(
        validate_payload(&batch, &rules(), NOW),
        Err(ValidationError::InvalidRecord { .. })
    ));
}

#[test]
fn count_mismatch_is_invalid_record() {
    let mut batch = simple_batch(3, 1, NOW);
    batch[LAST_OFFSET_DELTA_POS..LAST_OFFSET_DELTA_POS + 4].copy_from_slice(&5i32.to_be_bytes());
    let crc = compute_crc(&batch);
    batch[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(
        validate_payload(&batch, &rules(), NOW),
        Err(ValidationError::InvalidRecord { .. })
    ));
}

#[test]
fn record_count_must_match_records_present() {
    let mut batch = simple_batch(3, 1, NOW);
    // Claim two records, consistently in the header, while three are encoded.
    batch[LAST_OFFSET_DELTA_POS..LAST_OFFSET_DELTA_POS + 4].copy_from_slice(&1i32.to_be_bytes());
    batch[RECORDS_COUNT_POS..RECORDS_COUNT_POS + 4].copy_from_slice(&2i32.to_be_bytes());
    let crc = compute_crc(&batch);
    batch[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(
        validate_payload(&batch, &rules(), NOW),
        Err(ValidationError::InvalidRecord { .. })
    ));
}

#[test]
fn oversize_batch_is_too_large() {
    let batch = simple_batch(1, 2000, NOW);
    let small = ValidationRules {
        max_message_bytes: 1000,
        ..rules()
    };
    assert!(matches!(
        validate_payload(&batch, &small, NOW),
        Err(ValidationError::TooLarge { .. })
    ));
}

#[test]
fn timestamps_outside_window_are_rejected() {
    let future = simple_batch(1, 1, NOW + 3_600_001);
    assert!(matches!(
        validate_payload(&future, &rules(), NOW),
        Err(ValidationError::InvalidTimestamp { .. })
    ));
    let past = simple_batch(1, 1, NOW - 10_000);
    let strict = ValidationRules {
        timestamp_before_max_ms: 5_000,
        ..rules()
    };
    assert!(matches!(
        validate_payload(&past, &strict, NOW),
        Err(ValidationError::InvalidTimestamp { .. })
    ));
    // LogAppendTime topics accept any producer timestamp: the broker overwrites it.
    let append_time = ValidationRules {
        timestamp_type: TimestampType::LogAppendTime,
        ..rules()
    };
    assert!(validate_payload(&future, &append_time, NOW).is_ok());
}

#[test]
fn record_timestamps_are_checked_individually() {
    let v = [1u8];
    let records = [
        RecordSpec {
            key: None,
            value: Some(&v),
            headers: vec![],
            timestamp: NOW,
        },
        RecordSpec {
            key: Some(b"k"),
            value: None,
            headers: vec![("h", Some(b"x"))],
            timestamp: NOW + 4_000_000,
        },
        RecordSpec {
            key: None,
            value: Some(&v),
            headers: vec![],
            timestamp: NOW,
        },
    ];
    let mut batch = BytesMut::new();
    encode_batch(&mut batch, &records, -1, None);
    // Max timestamp already catches this one; record-level walking must agree.
    assert!(validate_payload(&batch, &rules(), NOW).is_err());
    let header = BatchHeader::parse(&batch).expect("header");
    let mut seen = vec![];
    walk_records(&header, &batch[BATCH_HEADER_LEN..], |m| {
        seen.push(m);
        Ok(())
    })
    .expect("walk");
    assert_eq!(
        seen.iter().map(|m| m.offset_delta).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert_eq!(seen[1].timestamp, NOW + 4_000_000);
}

#[test]
fn garbage_never_panics() {
    // A few hostile shapes: huge lengths, negative lengths, random bytes.
    let mut hostile = simple_batch(1, 1, NOW);
    hostile[BATCH_LENGTH_POS..BATCH_LENGTH_POS + 4].copy_from_slice(&i32::MAX.to_be_bytes());
    assert!(validate_payload(&hostile, &rules(), NOW).is_err());
    hostile[BATCH_LENGTH_POS..BATCH_LENGTH_POS + 4].copy_from_slice(&(-5i32).to_be_bytes());
    assert!(validate_payload(&hostile, &rules(), NOW).is_err());
    let mut seed: u32 = 12345;
    for len in 0..300 {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (seed >> 16) as u8
            })
            .collect();
        let _ = validate_payload(&bytes, &rules(), NOW);
    }
}

proptest::proptest! {
    #[test]
    fn mutated_batches_never_panic(flip in 0usize..200, value in proptest::num::u8::ANY, cut in 0usize..200) {
        let mut batch = simple_batch(3, 20, NOW).to_vec();
        let at = flip % batch.len();
        batch[at] = value;
        let end = batch.len() - (cut % batch.len());
        let _ = validate_payload(&batch[..end], &rules(), NOW);
        if let Some(header) = BatchHeader::parse(&batch) {
            let _ = walk_records(&header, &batch[BATCH_HEADER_LEN.min(end)..end], |_| Ok(()));
        }
    }
}

#[test]
fn compressed_batches_are_validated_record_by_record() {
    use crate::batch_builder::compressed_batch;
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let batch = compressed_batch(20, 100, NOW, codec);
        let header = check_frame(&batch, usize::MAX).expect("valid frame");
        assert_eq!(header.compression(), Some(codec));
        assert!(
            batch.len() < simple_batch(20, 100, NOW).len(),
            "{codec:?} compresses"
        );
        assert_eq!(
            validate_payload(&batch, &rules(), NOW)
                .expect("valid")
                .record_count,
            20
        );
        // Back to uncompressed gives the original batch exactly.
        assert_eq!(
            recompress_payload(
                &batch,
                Compression::None,
                crate::compression::MAX_DECOMPRESSED_BYTES
            )
            .expect("recompress"),
            simple_batch(20, 100, NOW)
        );
        // A damaged compressed body with a recomputed CRC is still caught.
        let mut damaged = batch.clone();
        let n = damaged.len();
        damaged[n - 5] ^= 0xff;
        damaged[BATCH_HEADER_LEN + 1] ^= 0xff;
        let crc = compute_crc(&damaged);
        damaged[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
        assert!(
            validate_payload(&damaged, &rules(), NOW).is_err(),
            "{codec:?}"
        );
        // Record timestamps inside a compressed batch are checked too.
        let future = compressed_batch(2, 10, NOW + 3_600_001, codec);
        assert!(matches!(
            validate_payload(&future, &rules(), NOW),
            Err(ValidationError::InvalidTimestamp { .. })
        ));
    }
}

#[test]
fn compressed_record_count_mismatch_is_invalid() {
    let mut batch = crate::batch_builder::compressed_batch(3, 1, NOW, Compression::Lz4);
    batch[LAST_OFFSET_DELTA_POS..LAST_OFFSET_DELTA_POS + 4].copy_from_slice(&1i32.to_be_bytes());
    batch[RECORDS_COUNT_POS..RECORDS_COUNT_POS + 4].copy_from_slice(&2i32.to_be_bytes());
    let crc = compute_crc(&batch);
    batch[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(
        validate_payload(&batch, &rules(), NOW),
        Err(ValidationError::InvalidRecord { .. })
    ));
}

/// A batch's records may decompress to at most `decompressed_limit(max.message.bytes)`: the same batch is
/// accepted under a topic whose limit covers it and refused as corrupt (not materialised) under a smaller one.
#[test]
fn decompressed_size_is_bounded_by_max_message_bytes() {
    use crate::batch_builder::compressed_batch;
    use crate::compression::decompressed_limit;
    // 3000 records of 1000 zero bytes: about 3 MB of records, a few KiB compressed.
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let batch = compressed_batch(3000, 1000, NOW, codec);
        let small = ValidationRules {
            max_message_bytes: 160 * 1024,
            ..rules()
        };
        assert!(
            batch.len() < small.max_message_bytes,
            "{codec:?} compresses"
        );
        assert!(decompressed_limit(small.max_message_bytes) < 3_000_000);
        assert!(
            matches!(
                validate_payload(&batch, &small, NOW),
                Err(ValidationError::Corrupt { .. })
            ),
            "{codec:?}"
        );
        let limit = decompressed_limit(small.max_message_bytes);
        assert!(recompress_payload(&batch, Compression::None, limit).is_err());
        assert_eq!(
            validate_payload(&batch, &rules(), NOW)
                .expect("within the default limit")
                .record_count,
            3000
        );
    }
}

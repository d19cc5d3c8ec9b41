//! What the unit tests of this crate share.

use bytes::Bytes;
use ferrite_log::batch_builder::{encode_batch, RecordSpec};

/// One record batch holding one record with `value`, as a producer would send it.
pub fn batch(value: &str) -> Bytes {
    let records = [RecordSpec {
        key: None,
        value: Some(value.as_bytes()),
        headers: vec![],
        timestamp: 1,
    }];
    let mut out = bytes::BytesMut::new();
    encode_batch(&mut out, &records, -1, None);
    out.freeze()
}

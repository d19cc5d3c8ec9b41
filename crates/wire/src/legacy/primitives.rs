//! The non-flexible Kafka primitives the old versions use: big-endian integers, `string` (i16 length), nullable
//! `string` (length -1 = null), `bytes` (i32 length, -1 = null) and arrays (i32 count, -1 = null). Reads check
//! every length against the bytes left, so a hostile count can neither overrun the buffer nor make a large
//! allocation.

use super::LegacyError;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::protocol::StrBytes;

/// Reads fields off the front of a request or response body.
pub(crate) struct Reader {
    buf: Bytes,
}

impl Reader {
    pub(crate) fn new(buf: Bytes) -> Reader {
        Reader { buf }
    }

    fn need(&self, n: usize, what: &'static str) -> Result<(), LegacyError> {
        if self.buf.remaining() < n {
            return Err(LegacyError::Truncated(what));
        }
        Ok(())
    }

    pub(crate) fn i8(&mut self, what: &'static str) -> Result<i8, LegacyError> {
        self.need(1, what)?;
        Ok(self.buf.get_i8())
    }

    pub(crate) fn bool(&mut self, what: &'static str) -> Result<bool, LegacyError> {
        Ok(self.i8(what)? != 0)
    }

    pub(crate) fn i16(&mut self, what: &'static str) -> Result<i16, LegacyError> {
        self.need(2, what)?;
        Ok(self.buf.get_i16())
    }

    pub(crate) fn i32(&mut self, what: &'static str) -> Result<i32, LegacyError> {
        self.need(4, what)?;
        Ok(self.buf.get_i32())
    }

    pub(crate) fn i64(&mut self, what: &'static str) -> Result<i64, LegacyError> {
        self.need(8, what)?;
        Ok(self.buf.get_i64())
    }

    pub(crate) fn nullable_string(
        &mut self,
        what: &'static str,
    ) -> Result<Option<StrBytes>, LegacyError> {
        let len = self.i16(what)?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| LegacyError::Invalid(what))?;
        self.need(len, what)?;
        StrBytes::from_utf8(self.buf.split_to(len))
            .map(Some)
            .map_err(|_| LegacyError::Invalid(what))
    }

    pub(crate) fn string(&mut self, what: &'static str) -> Result<StrBytes, LegacyError> {
        self.nullable_string(what)?
            .ok_or(LegacyError::Invalid(what))
    }

    pub(crate) fn nullable_bytes(
        &mut self,
        what: &'static str,
    ) -> Result<Option<Bytes>, LegacyError> {
        let len = self.i32(what)?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| LegacyError::Invalid(what))?;
        self.need(len, what)?;
        Ok(Some(self.buf.split_to(len)))
    }

    /// An array's element count (`None`: null); each element takes at least `min_element_bytes`, so a count the
    /// remaining bytes cannot hold is refused before anything is allocated.
    pub(crate) fn nullable_array_len(
        &mut self,
        what: &'static str,
        min_element_bytes: usize,
    ) -> Result<Option<usize>, LegacyError> {
        let count = self.i32(what)?;
        if count == -1 {
            return Ok(None);
        }
        let count = usize::try_from(count).map_err(|_| LegacyError::Invalid(what))?;
        if count.saturating_mul(min_element_bytes.max(1)) > self.buf.remaining() {
            return Err(LegacyError::Truncated(what));
        }
        Ok(Some(count))
    }

    pub(crate) fn array_len(
        &mut self,
        what: &'static str,
        min_element_bytes: usize,
    ) -> Result<usize, LegacyError> {
        self.nullable_array_len(what, min_element_bytes)?
            .ok_or(LegacyError::Invalid(what))
    }

    /// Reads `count` elements with `read`.
    pub(crate) fn array<T>(
        &mut self,
        what: &'static str,
        min_element_bytes: usize,
        mut read: impl FnMut(&mut Reader) -> Result<T, LegacyError>,
    ) -> Result<Vec<T>, LegacyError> {
        let count = self.array_len(what, min_element_bytes)?;
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(read(self)?);
        }
        Ok(out)
    }

    /// The body must end here: trailing bytes mean the layout was misread.
    pub(crate) fn finish(self) -> Result<(), LegacyError> {
        if self.buf.has_remaining() {
            return Err(LegacyError::Trailing(self.buf.remaining()));
        }
        Ok(())
    }
}

pub(crate) fn put_string(out: &mut BytesMut, s: &str) {
    put_nullable_string(out, Some(s));
}

pub(crate) fn put_nullable_string(out: &mut BytesMut, s: Option<&str>) {
    match s {
        None => out.put_i16(-1),
        Some(s) => {
            let len = s.len().min(i16::MAX as usize);
            out.put_i16(len as i16);
            out.put_slice(&s.as_bytes()[..len]);
        }
    }
}

pub(crate) fn put_array_len(out: &mut BytesMut, len: usize) {
    out.put_i32(i32::try_from(len).unwrap_or(i32::MAX));
}

pub(crate) fn put_bool(out: &mut BytesMut, b: bool) {
    out.put_i8(i8::from(b));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_lengths_are_errors() {
        // An array claiming 2^31-1 elements in 4 bytes.
        let mut r = Reader::new(Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff]));
        assert!(matches!(
            r.array_len("a", 1),
            Err(LegacyError::Truncated("a"))
        ));
        // A negative string length other than -1, and a string longer than the buffer.
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xfe]));
        assert!(r.string("s").is_err());
        let mut r = Reader::new(Bytes::from_static(&[0, 9, b'a']));
        assert!(r.string("s").is_err());
        let mut r = Reader::new(Bytes::from_static(&[0, 1, 0xff]));
        assert!(matches!(r.string("s"), Err(LegacyError::Invalid("s"))));
        // Null where a string is required; a null nullable string.
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff]));
        assert!(r.string("s").is_err());
        assert_eq!(r.nullable_string("s").expect("null"), None);
        let r = Reader::new(Bytes::from_static(&[1]));
        assert!(matches!(r.finish(), Err(LegacyError::Trailing(1))));
    }

    #[test]
    fn strings_round_trip() {
        let mut out = BytesMut::new();
        put_string(&mut out, "héllo");
        put_nullable_string(&mut out, None);
        let mut r = Reader::new(out.freeze());
        assert_eq!(r.string("a").expect("a").as_str(), "héllo");
        assert_eq!(r.nullable_string("b").expect("b"), None);
        r.finish().expect("end");
    }
}

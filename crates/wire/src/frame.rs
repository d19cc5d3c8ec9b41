//! Size-prefixed framing: every request and response is a big-endian i32 length followed by that many bytes.

/// Why a frame cannot be accepted; either way the connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {size} bytes exceeds socket.request.max.bytes {max}")]
    TooLarge { size: usize, max: usize },
    #[error("negative frame size {0}")]
    Negative(i32),
}

/// Length of the whole frame (prefix included) if `buf` starts with a complete one, `Ok(None)` if more bytes
/// are needed. Checks the size before any of the body arrives, so a hostile size never causes an allocation.
pub fn frame_length(buf: &[u8], max_frame_bytes: usize) -> Result<Option<usize>, FrameError> {
    let Some(prefix) = buf.get(..4) else {
        return Ok(None);
    };
    let size = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    let size = usize::try_from(size).map_err(|_| FrameError::Negative(size))?;
    if size > max_frame_bytes {
        return Err(FrameError::TooLarge {
            size,
            max: max_frame_bytes,
        });
    }
    Ok((buf.len() >= 4 + size).then_some(4 + size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_partial_and_hostile_frames() {
        assert_eq!(frame_length(&[0, 0], 100), Ok(None));
        assert_eq!(frame_length(&[0, 0, 0, 3, 1, 2], 100), Ok(None));
        assert_eq!(frame_length(&[0, 0, 0, 3, 1, 2, 3, 9], 100), Ok(Some(7)));
        assert_eq!(frame_length(&[0, 0, 0, 0], 100), Ok(Some(4)));
        assert_eq!(
            frame_length(&[0x7f, 0xff, 0xff, 0xff], 100),
            Err(FrameError::TooLarge {
                size: i32::MAX as usize,
                max: 100
            })
        );
        assert_eq!(
            frame_length(&[0xff, 0xff, 0xff, 0xff], 100),
            Err(FrameError::Negative(-1))
        );
    }
}

//! A range of bytes in a segment file, handed to the server so it can `sendfile(2)` them to a socket.
//!
//! The slice owns an `Arc<File>`: a segment deleted by retention while a fetch is in flight stays readable
//! through the handle (the inode lives until the last handle closes), so readers never race deletion.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct FileSlice {
    file: Arc<File>,
    position: u64,
    len: u64,
}

impl FileSlice {
    pub(crate) fn new(file: Arc<File>, position: u64, len: u64) -> Self {
        FileSlice {
            file,
            position,
            len,
        }
    }

    pub fn position(&self) -> u64 {
        self.position
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn file(&self) -> &Arc<File> {
        &self.file
    }

    /// Copies the bytes into memory. For tests, replication in-process and TLS connections; the plaintext fetch
    /// path uses [`FileSlice::send_to`] instead.
    pub fn read_to_vec(&self) -> io::Result<Vec<u8>> {
        let mut out = vec![0u8; self.len as usize];
        self.file.read_exact_at(&mut out, self.position)?;
        Ok(out)
    }

    /// Sends up to `len - sent` bytes, starting `sent` bytes into the slice, to `out_fd` with one `sendfile(2)`
    /// call. Returns how many bytes went; a non-blocking socket may take fewer than asked, or answer
    /// `WouldBlock`, and the caller resumes at the new `sent` once the socket is writable again.
    pub fn send_to(&self, out_fd: RawFd, sent: u64) -> io::Result<usize> {
        let remaining = self.len.saturating_sub(sent);
        if remaining == 0 {
            return Ok(0);
        }
        let mut offset = libc::off_t::try_from(self.position + sent).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "file position beyond off_t")
        })?;
        let count = remaining.min(isize::MAX as u64) as usize;
        // SAFETY: both descriptors are open for the duration of the call (we hold the Arc<File>; the caller owns
        // out_fd), `offset` is a valid pointer to a local, and sendfile does not touch our memory otherwise.
        let n = unsafe { libc::sendfile(out_fd, self.file.as_raw_fd(), &mut offset, count) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// Sends the whole slice to a blocking descriptor. Convenience for tests and benchmarks.
    pub fn send_all_blocking(&self, out_fd: RawFd) -> io::Result<()> {
        let mut sent = 0u64;
        while sent < self.len {
            match self.send_to(out_fd, sent) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "sendfile wrote nothing",
                    ))
                }
                Ok(n) => sent += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

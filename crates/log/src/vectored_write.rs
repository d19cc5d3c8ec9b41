//! Positional vectored writes (`pwritev(2)`): an append writes each batch's patched header and its untouched
//! body from the request buffer in one system call, without first copying them together.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// The kernel's limit on buffers per call (`IOV_MAX` on Linux); longer lists take several calls.
const MAX_BUFFERS: usize = 1024;

/// Writes all of `parts`, in order, at `offset`, resuming after short writes.
pub(crate) fn write_all_at(file: &File, parts: &[&[u8]], mut offset: u64) -> io::Result<()> {
    let mut index = 0; // first part not fully written
    let mut skip = 0; // bytes of parts[index] already written
    while index < parts.len() {
        let iovecs: Vec<libc::iovec> = parts[index..]
            .iter()
            .take(MAX_BUFFERS)
            .enumerate()
            .map(|(i, part)| {
                let part = if i == 0 { &part[skip..] } else { part };
                libc::iovec {
                    iov_base: part.as_ptr() as *mut libc::c_void,
                    iov_len: part.len(),
                }
            })
            .collect();
        let at = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset beyond off_t"))?;
        // SAFETY: every iovec points into a slice borrowed for the duration of the call and is only read by the
        // kernel; the descriptor is open (we hold `file`).
        let written = unsafe {
            libc::pwritev(
                file.as_raw_fd(),
                iovecs.as_ptr(),
                iovecs.len() as libc::c_int,
                at,
            )
        };
        if written < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if written == 0 && iovecs.iter().any(|v| v.iov_len > 0) {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "pwritev wrote nothing",
            ));
        }
        offset += written as u64;
        let mut left = written as usize;
        while index < parts.len() && left >= parts[index].len() - skip {
            left -= parts[index].len() - skip;
            index += 1;
            skip = 0;
        }
        skip += left;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn writes_many_parts_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("f"))
            .expect("open");
        let parts: Vec<Vec<u8>> = (0..3000u32)
            .map(|i| vec![(i % 251) as u8; (i % 7) as usize])
            .collect();
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        write_all_at(&file, &refs, 5).expect("write");
        let expected: Vec<u8> = parts.concat();
        let mut got = vec![0u8; expected.len()];
        file.read_exact_at(&mut got, 5).expect("read");
        assert_eq!(got, expected);
    }
}

//! The broker's few direct system calls, kept in one module (the only one allowed `unsafe`).
#![allow(unsafe_code)]

/// Raises the soft open-file limit to the hard limit. A partition holds a descriptor per segment (its `.log`;
/// indexes are mapped, not held open) plus sockets, and a default soft limit of 1024 would stop a broker at
/// under a thousand partitions.
/// Returns (before, after).
pub fn raise_open_file_limit() -> std::io::Result<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let before = limit.rlim_cur;
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: as above; the kernel only reads `limit`.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok((before, limit.rlim_cur))
}

/// (total, available) bytes of the filesystem holding `path`, or (-1, -1) if unknown.
pub fn disk_space(path: &std::path::Path) -> (i64, i64) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return (-1, -1);
    };
    // SAFETY: statvfs is plain old data; zeroed is a valid value for it.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is a valid NUL-terminated string and stat a valid out-pointer for the call's duration.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
        return (-1, -1);
    }
    let block = stat.f_frsize as i64;
    (stat.f_blocks as i64 * block, stat.f_bavail as i64 * block)
}

#[cfg(test)]
mod tests {
    #[test]
    fn limits_and_disk_space() {
        let (before, after) = super::raise_open_file_limit().expect("rlimit");
        assert!(after >= before);
        let (total, available) = super::disk_space(std::path::Path::new("."));
        assert!(total > 0 && available >= 0 && available <= total);
    }
}

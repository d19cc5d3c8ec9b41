//! The few system calls the bench needs that std does not wrap: `sendfile(2)` for the raw read baseline,
//! `setrlimit(2)` to allow 10,000 partitions (one descriptor each, plus sockets), `kill(2)` to stop the broker cleanly,
//! and `sysconf(_SC_CLK_TCK)` to turn `/proc/<pid>/stat` ticks into seconds.
#![allow(unsafe_code)] // each call below has a SAFETY comment.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

/// Sends `len` bytes of `file` from offset 0 to `out_fd` in calls of at most `chunk` bytes. Returns bytes sent.
pub fn sendfile_all(file: &File, len: u64, out_fd: RawFd, chunk: usize) -> io::Result<u64> {
    let mut offset: libc::off_t = 0;
    while (offset as u64) < len {
        let count = chunk.min((len - offset as u64) as usize);
        // SAFETY: both descriptors are open for the whole call (the caller owns them); `offset` is a valid
        // pointer to a local that the kernel advances.
        let n = unsafe { libc::sendfile(out_fd, file.as_raw_fd(), &mut offset, count) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        } else if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "sendfile sent nothing",
            ));
        }
    }
    Ok(offset as u64)
}

/// Raises the soft limit on open files to `want` (or the hard limit if lower). Returns the new soft limit.
pub fn raise_nofile(want: u64) -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let target = want.min(lim.rlim_max);
    if lim.rlim_cur < target {
        lim.rlim_cur = target;
        // SAFETY: `lim` is a valid rlimit struct with cur <= max.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(lim.rlim_cur)
}

/// Sends SIGTERM to `pid`.
pub fn terminate(pid: u32) -> io::Result<()> {
    // SAFETY: kill(2) has no memory-safety preconditions; `pid` is our own child.
    if unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Clock ticks per second, for `/proc/<pid>/stat` CPU times.
pub fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// CPU seconds (user + system) that process `pid` has used so far.
pub fn cpu_seconds(pid: u32) -> io::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| io::Error::other("malformed /proc/pid/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15 (1-based) => indexes 11 and 12.
    let tick = |i: usize| -> io::Result<f64> {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .ok_or_else(|| io::Error::other("missing utime/stime in /proc/pid/stat"))
    };
    Ok((tick(11)? + tick(12)?) / clock_ticks_per_second())
}

/// Resident set size of process `pid` in bytes (VmRSS), or 0 if unknown.
pub fn rss_bytes(pid: u32) -> u64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Machine-wide CPU time from `/proc/stat`: (all jiffies, jiffies stolen by the hypervisor, idle jiffies).
/// A virtual machine's vCPUs can be taken away for milliseconds at a time, which shows in tail latencies.
pub fn cpu_jiffies() -> io::Result<(u64, u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let total = fields.iter().take(8).sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    Ok((total, fields.get(7).copied().unwrap_or(0), idle))
}

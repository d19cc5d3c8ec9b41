//! Limits of this machine measured in the same run, with the same volumes as the Ferrite scenarios:
//! sequential `write(2)` of a plain file with and without `fdatasync` after each chunk, and `sendfile(2)` of a
//! page-cached file to a loopback TCP socket whose receiver drains it.

use crate::load::payload_pool;
use crate::sys;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// MB/s of writing `bytes` to a new file in `dir` in `chunk`-byte writes, each followed by `fdatasync` if
/// `sync_each`; the clock includes a final `fdatasync` in both cases only when `sync_each`.
pub fn raw_write(dir: &Path, bytes: u64, chunk: usize, sync_each: bool) -> Result<f64, Error> {
    let path = dir.join(if sync_each {
        "raw-sync.bin"
    } else {
        "raw-write.bin"
    });
    let data = payload_pool(chunk);
    let mut file = File::create(&path)?;
    let started = Instant::now();
    let mut written = 0u64;
    while written < bytes {
        file.write_all(&data)?;
        if sync_each {
            file.sync_data()?;
        }
        written += chunk as u64;
    }
    let secs = started.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(written as f64 / secs / 1e6)
}

/// MB/s of `sendfile(2)` of a `bytes`-byte page-cached file to a loopback socket, in 1 MiB calls, the whole
/// file again and again until `min_duration` has passed (as the raw Fetch client reads its partition); the
/// clock stops when the receiver has read every byte.
pub fn raw_sendfile(dir: &Path, bytes: u64, min_duration: Duration) -> Result<f64, Error> {
    let path = dir.join("raw-sendfile.bin");
    let chunk = payload_pool(1 << 20);
    {
        let mut f = File::create(&path)?;
        let mut written = 0u64;
        while written < bytes {
            f.write_all(&chunk)?;
            written += chunk.len() as u64;
        }
    }
    let len = std::fs::metadata(&path)?.len();
    // Warm the page cache, as the consumer scenario reads data the broker just wrote.
    let mut f = File::open(&path)?;
    let mut sink = vec![0u8; 1 << 20];
    while f.read(&mut sink)? > 0 {}
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let sender = TcpStream::connect(listener.local_addr()?)?;
    let (mut receiver, _) = listener.accept()?;
    let reader = std::thread::spawn(move || -> std::io::Result<u64> {
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0u64;
        loop {
            let n = receiver.read(&mut buf)?;
            if n == 0 {
                return Ok(got);
            }
            got += n as u64;
        }
    });
    let started = Instant::now();
    while started.elapsed() < min_duration {
        sys::sendfile_all(&f, len, sender.as_raw_fd(), 1 << 20)?;
    }
    drop(sender);
    let got = reader.join().map_err(|_| "receiver panicked")??;
    let secs = started.elapsed().as_secs_f64();
    std::fs::remove_file(&path)?;
    Ok(got as f64 / secs / 1e6)
}

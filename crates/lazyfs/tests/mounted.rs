//! The filesystem through the kernel, with the system calls the log makes: each kind of write is lost
//! without its sync and kept with it.
#![allow(clippy::unwrap_used, unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{IoSlice, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use ferrite_lazyfs::LazyFs;

fn mounted() -> (tempfile::TempDir, LazyFs) {
    let dir = tempfile::tempdir().unwrap();
    let fs = LazyFs::mount(dir.path()).expect("mount lazyfs (the tests run as root)");
    (dir, fs)
}

fn sync_dir(dir: &Path) {
    File::open(dir).unwrap().sync_all().unwrap();
}

#[test]
fn writes_survive_only_with_their_syncs() {
    let (_dir, mut fs) = mounted();
    let root = fs.mountpoint().to_owned();
    let kept = root.join("kept");
    let unnamed = root.join("unnamed");
    fs::create_dir(root.join("sub")).unwrap();
    let mut f = File::create(&kept).unwrap();
    f.write_all(b"synced").unwrap();
    f.sync_data().unwrap();
    f.write_all(b" but not this").unwrap();
    let mut g = File::create(&unnamed).unwrap();
    g.write_all(b"data synced, name not").unwrap();
    g.sync_all().unwrap();
    // Both names are durable after this; the unlink and the later create are not.
    sync_dir(&root);
    fs::remove_file(&unnamed).unwrap();
    let late = root.join("late");
    File::create(&late).unwrap().sync_all().unwrap();
    drop((f, g));

    let loss = fs.restore_power().unwrap();
    assert_eq!(fs::read(&kept).unwrap(), b"synced");
    assert_eq!(
        fs::read(&unnamed).unwrap(),
        b"data synced, name not",
        "an unsynced unlink is undone"
    );
    assert!(!late.exists(), "a name in an unsynced directory is lost");
    assert!(root.join("sub").is_dir());
    assert!(loss.bytes_dropped >= 13, "{loss:?}");
}

#[test]
fn pwritev_truncate_fallocate_and_rename() {
    let (_dir, mut fs) = mounted();
    let root = fs.mountpoint().to_owned();
    let path = root.join("seg.log");
    let f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let parts = [IoSlice::new(b"abc"), IoSlice::new(b"def")];
    let n = unsafe { libc::pwritev(f.as_raw_fd(), parts.as_ptr().cast(), 2, 0) };
    assert_eq!(n, 6);
    f.set_len(4).unwrap();
    let rc = unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, 8192) };
    assert_eq!(rc, 0, "fallocate: {}", std::io::Error::last_os_error());
    assert_eq!(f.metadata().unwrap().len(), 8192);
    f.sync_data().unwrap();
    File::create(root.join("a.tmp"))
        .unwrap()
        .write_all(b"new")
        .unwrap();
    fs::rename(root.join("a.tmp"), root.join("a")).unwrap();
    sync_dir(&root);
    drop(f);

    fs.restore_power().unwrap();
    let bytes = fs::read(&path).unwrap();
    assert_eq!(bytes.len(), 8192);
    assert_eq!(&bytes[..4], b"abcd");
    assert!(bytes[4..].iter().all(|b| *b == 0));
    assert_eq!(
        fs::read(root.join("a")).unwrap(),
        b"",
        "the rename is durable, the unsynced data is not"
    );
}

#[test]
fn shared_mmap_writes_need_a_sync() {
    let (_dir, mut fs) = mounted();
    let root = fs.mountpoint().to_owned();
    let path = root.join("00.index");
    let f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    f.set_len(4096 * 4).unwrap();
    f.sync_all().unwrap();
    sync_dir(&root);
    let mut map = unsafe { memmap2::MmapMut::map_mut(&f).unwrap() };
    map[0..4].copy_from_slice(b"sync");
    map.flush().unwrap();
    f.sync_data().unwrap();
    map[4096..4100].copy_from_slice(b"lost");
    // msync(MS_SYNC) is an fsync of the file, so no flush here: closing writes the dirty page back to the
    // filesystem (as the kernel's writeback may at any time) without syncing it.
    let writes_before = fs.counts().writes;
    drop(map);
    drop(f);
    assert!(
        fs.counts().writes > writes_before,
        "close wrote the dirty page back"
    );

    fs.restore_power().unwrap();
    let bytes = fs::read(&path).unwrap();
    assert_eq!(&bytes[0..4], b"sync");
    assert_eq!(&bytes[4096..4100], &[0, 0, 0, 0]);
}

#[test]
fn sendfile_reads_through_the_page_cache() {
    let (_dir, fs) = mounted();
    let path = fs.mountpoint().join("f");
    let payload: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    fs::write(&path, &payload).unwrap();
    let f = File::open(&path).unwrap();
    let (mut rx, tx) = std::os::unix::net::UnixStream::pair().unwrap();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        rx.read_to_end(&mut got).unwrap();
        got
    });
    let mut offset: libc::off_t = 1000;
    let mut sent = 0usize;
    while sent < 50_000 {
        let n =
            unsafe { libc::sendfile(tx.as_raw_fd(), f.as_raw_fd(), &mut offset, 50_000 - sent) };
        assert!(n > 0, "sendfile: {}", std::io::Error::last_os_error());
        sent += n as usize;
    }
    drop(tx);
    assert_eq!(reader.join().unwrap(), &payload[1000..51_000]);
}

#[test]
fn after_the_cut_nothing_more_becomes_durable() {
    let (_dir, mut fs) = mounted();
    let path = fs.mountpoint().join("f");
    let mut f = File::create(&path).unwrap();
    sync_dir(fs.mountpoint());
    f.write_all(b"before").unwrap();
    f.sync_data().unwrap();
    fs.cut_power();
    assert!(f.write_all(b"after").is_err() || f.sync_data().is_err());
    let _ = f.write_at(b"more", 100);
    drop(f);
    fs.restore_power().unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"before");
    let counts = fs.counts();
    assert!(
        counts.file_syncs >= 1 && counts.dir_syncs >= 1,
        "{counts:?}"
    );
}

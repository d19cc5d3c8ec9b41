//! FUSE requests mapped onto the [`Tree`]. Every changing request after the power switch is off fails with
//! EIO and changes nothing, so a program still running at the moment of the cut cannot make anything durable.

use std::ffi::OsStr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::tree::{Contents, Tree, PAGE};

/// How long the kernel may cache names and attributes. Only this mount changes the tree, and the kernel
/// sees every change it makes, so caching is safe; a remount after a power cut starts with no cache.
const TTL: Duration = Duration::from_secs(1);

/// State shared between the FUSE session thread and the test that owns the mount.
pub struct Shared {
    pub tree: Mutex<Tree>,
    /// Set by the power cut; cleared only by a remount.
    pub power_off: AtomicBool,
    /// Changing requests still allowed before the power goes off by itself; negative when not armed.
    pub changes_left: AtomicI64,
    /// Set while this side unmounts, so that the end of the session is expected.
    pub unmounting: AtomicBool,
    /// Why serving stopped while still mounted, if it did.
    pub session_end: Mutex<Option<String>>,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            tree: Mutex::default(),
            power_off: AtomicBool::new(false),
            changes_left: AtomicI64::new(-1),
            unmounting: AtomicBool::new(false),
            session_end: Mutex::new(None),
        }
    }
}

impl Shared {
    pub fn tree(&self) -> MutexGuard<'_, Tree> {
        // A panic in a request handler must not hide the tree from the test that reports on it.
        self.tree
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The [`Filesystem`] the session runs.
pub struct LazyFsOps(pub Arc<Shared>);

fn errno(code: i32) -> Errno {
    Errno::from_i32(code)
}

impl LazyFsOps {
    /// The tree for a request that only looks. Looking still works after the cut: it changes nothing, and
    /// a failed read of a mapped index page would kill a program that shares this process (SIGBUS) before
    /// it could be taken down in order.
    fn live(&self) -> Result<MutexGuard<'_, Tree>, Errno> {
        Ok(self.0.tree())
    }

    /// The tree for a request that changes something; counts down an armed cut, which this request may
    /// trigger (it then fails, as a request the power cut interrupted).
    fn live_for_change(&self) -> Result<MutexGuard<'_, Tree>, Errno> {
        let left = self.0.changes_left.load(Ordering::SeqCst);
        if left == 0 {
            self.0.power_off.store(true, Ordering::SeqCst);
            self.0.changes_left.store(-1, Ordering::SeqCst);
        } else if left > 0 {
            self.0.changes_left.store(left - 1, Ordering::SeqCst);
        }
        if self.0.power_off.load(Ordering::SeqCst) {
            return Err(Errno::EIO);
        }
        Ok(self.0.tree())
    }

    fn attr(tree: &Tree, ino: u64) -> Result<FileAttr, Errno> {
        let node = tree.node(ino).map_err(errno)?;
        let (kind, size, blocks, nlink) = match &node.contents {
            Contents::File { current, .. } => (
                FileType::RegularFile,
                current.len(),
                current.pages_held() * (PAGE as u64 / 512),
                1,
            ),
            Contents::Dir { .. } => (FileType::Directory, 4096, 8, 2),
        };
        Ok(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks,
            atime: node.mtime,
            mtime: node.mtime,
            ctime: node.mtime,
            crtime: node.mtime,
            kind,
            perm: node.mode,
            nlink,
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: PAGE as u32,
            flags: 0,
        })
    }

    fn entry(
        &self,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        is_dir: bool,
    ) -> Result<FileAttr, Errno> {
        let mut tree = self.live_for_change()?;
        let ino = tree
            .create(parent.0, name, (mode & 0o7777) as u16, is_dir)
            .map_err(errno)?;
        Self::attr(&tree, ino)
    }
}

fn reply_entry(reply: ReplyEntry, result: Result<FileAttr, Errno>) {
    match result {
        Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
        Err(e) => reply.error(e),
    }
}

fn empty(reply: ReplyEmpty, result: Result<(), Errno>) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

impl Filesystem for LazyFsOps {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let found = self.live().and_then(|tree| {
            let ino = tree.lookup(parent.0, name).map_err(errno)?;
            Self::attr(&tree, ino)
        });
        reply_entry(reply, found)
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.live().and_then(|tree| Self::attr(&tree, ino.0)) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let result = self.live_for_change().and_then(|mut tree| {
            if let Some(size) = size {
                tree.set_len(ino.0, size).map_err(errno)?;
            }
            if let Some(mode) = mode {
                tree.set_mode(ino.0, (mode & 0o7777) as u16)
                    .map_err(errno)?;
            }
            Self::attr(&tree, ino.0)
        });
        match result {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        if mode & libc::S_IFMT != libc::S_IFREG {
            return reply.error(Errno::EPERM);
        }
        reply_entry(reply, self.entry(parent, name, mode, false))
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        reply_entry(reply, self.entry(parent, name, mode, true))
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let result = self
            .live_for_change()
            .and_then(|mut tree| tree.remove(parent.0, name, false).map_err(errno));
        empty(reply, result);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let result = self
            .live_for_change()
            .and_then(|mut tree| tree.remove(parent.0, name, true).map_err(errno));
        empty(reply, result);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if !(flags - RenameFlags::RENAME_NOREPLACE).is_empty() {
            return reply.error(Errno::EINVAL);
        }
        let noreplace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        let result = self.live_for_change().and_then(|mut tree| {
            tree.rename(parent.0, name, newparent.0, newname, noreplace)
                .map_err(errno)
        });
        empty(reply, result);
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let result = self.live().and_then(|mut tree| {
            if flags.0 & libc::O_TRUNC != 0 {
                tree.set_len(ino.0, 0).map_err(errno)?;
            }
            tree.node(ino.0).map(|_| ()).map_err(errno)
        });
        match result {
            // No FOPEN_DIRECT_IO: reads go through the page cache, so mmap and sendfile work as on disk.
            Ok(()) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let result = self.live().and_then(|tree| {
            tree.file(ino.0)
                .map(|f| f.read(offset, size))
                .map_err(errno)
        });
        match result {
            Ok(bytes) => reply.data(&bytes),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let result = self
            .live_for_change()
            .and_then(|mut tree| tree.write(ino.0, offset, data).map_err(errno));
        match result {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close(2) makes nothing durable.
        empty(reply, self.live().map(drop));
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // fdatasync persists the size too (every Linux filesystem does); the two differ only in timestamps.
        let result = self
            .live_for_change()
            .and_then(|mut tree| tree.sync(ino.0).map_err(errno));
        empty(reply, result);
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let listing = match self.live().and_then(|tree| tree.list(ino.0).map_err(errno)) {
            Ok(listing) => listing,
            Err(e) => return reply.error(e),
        };
        let dots = [
            (OsStr::new(".").to_owned(), ino.0, true),
            (OsStr::new("..").to_owned(), ino.0, true),
        ];
        for (i, (name, child, is_dir)) in dots
            .into_iter()
            .chain(listing)
            .enumerate()
            .skip(offset as usize)
        {
            let kind = if is_dir {
                FileType::Directory
            } else {
                FileType::RegularFile
            };
            if reply.add(INodeNo(child), (i + 1) as u64, kind, &name) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let result = self
            .live_for_change()
            .and_then(|mut tree| tree.sync(ino.0).map_err(errno));
        empty(reply, result);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // Plenty of room: running out of space is the full-disk tests' business, not this one's.
        let blocks = 1 << 24;
        reply.statfs(
            blocks,
            blocks,
            blocks,
            1 << 20,
            1 << 20,
            PAGE as u32,
            255,
            PAGE as u32,
        );
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        empty(reply, self.live().map(drop));
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        match self.entry(parent, name, mode, false) {
            Ok(attr) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(0),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(e),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let result = self
            .live_for_change()
            .and_then(|mut tree| tree.fallocate(ino.0, offset, length, mode).map_err(errno));
        empty(reply, result);
    }
}

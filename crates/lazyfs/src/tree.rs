//! The filesystem's contents as two views of every inode: what a program sees now (`current`) and what
//! would survive a power cut (`durable`). Pure data, no FUSE: the rules of what a sync makes durable live
//! here and are unit-tested here.
//!
//! ```text
//!   write / truncate / fallocate ──▶ File.current ──fsync, fdatasync──▶ File.durable
//!   create / mkdir / unlink / rename ──▶ Dir.current ──fsync of that dir──▶ Dir.durable
//!   lose_power(): every current := durable; inodes no durable entry reaches are gone
//! ```
//!
//! The rules are POSIX's minimum, stricter than ext4 or xfs in practice: a new file's name is durable only
//! once its directory is synced, a rename only once both directories are, and `fdatasync` persists the size
//! as well as the data (as every Linux filesystem does, and as the log relies on). A program that is correct
//! here is correct on any filesystem that keeps POSIX's promises.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::sync::Arc;
use std::time::SystemTime;

/// Bytes per page; file contents are kept as shared pages so that a sync copies pointers, not data.
pub const PAGE: usize = 4096;

/// An errno for the FUSE layer to return.
pub type Errno = i32;

/// Inode number of the root directory, as FUSE requires.
pub const ROOT: u64 = 1;

/// A file's bytes: a length and the pages that hold anything (missing pages read as zeros, as holes do).
#[derive(Clone, Default, Debug, PartialEq)]
pub struct FileData {
    len: u64,
    pages: BTreeMap<u64, Arc<[u8; PAGE]>>,
}

impl FileData {
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Pages that hold data, for `st_blocks`.
    pub fn pages_held(&self) -> u64 {
        self.pages.len() as u64
    }

    pub fn read(&self, offset: u64, size: u32) -> Vec<u8> {
        let end = self.len.min(offset.saturating_add(u64::from(size)));
        if offset >= end {
            return Vec::new();
        }
        let mut out = vec![0u8; (end - offset) as usize];
        let mut at = offset;
        while at < end {
            let page = at / PAGE as u64;
            let in_page = (at % PAGE as u64) as usize;
            let n = (PAGE - in_page).min((end - at) as usize);
            if let Some(bytes) = self.pages.get(&page) {
                let dst = (at - offset) as usize;
                out[dst..dst + n].copy_from_slice(&bytes[in_page..in_page + n]);
            }
            at += n as u64;
        }
        out
    }

    pub fn write(&mut self, offset: u64, data: &[u8]) {
        let mut at = offset;
        let mut rest = data;
        while !rest.is_empty() {
            let page = at / PAGE as u64;
            let in_page = (at % PAGE as u64) as usize;
            let n = (PAGE - in_page).min(rest.len());
            let bytes = self
                .pages
                .entry(page)
                .or_insert_with(|| Arc::new([0u8; PAGE]));
            Arc::make_mut(bytes)[in_page..in_page + n].copy_from_slice(&rest[..n]);
            at += n as u64;
            rest = &rest[n..];
        }
        self.len = self.len.max(offset + data.len() as u64);
    }

    /// `ftruncate`: shrinking forgets the bytes past `len`, so growing again reads zeros there.
    pub fn set_len(&mut self, len: u64) {
        if len < self.len {
            self.zero(len, self.len - len);
        }
        self.len = len;
    }

    /// Zeroes a range without changing the length (a punched hole).
    pub fn zero(&mut self, offset: u64, length: u64) {
        let end = offset.saturating_add(length);
        let first_whole = offset.div_ceil(PAGE as u64);
        let last_whole = end / PAGE as u64; // exclusive
        if first_whole < last_whole {
            let doomed: Vec<u64> = self
                .pages
                .range(first_whole..last_whole)
                .map(|(k, _)| *k)
                .collect();
            for page in doomed {
                self.pages.remove(&page);
            }
        }
        for (from, to) in [
            (offset, end.min(first_whole * PAGE as u64)),
            ((last_whole * PAGE as u64).max(offset), end),
        ] {
            if from < to {
                let page = from / PAGE as u64;
                if let Some(bytes) = self.pages.get_mut(&page) {
                    let a = (from % PAGE as u64) as usize;
                    let b = a + (to - from) as usize;
                    Arc::make_mut(bytes)[a..b].fill(0);
                }
            }
        }
    }
}

/// A directory's entries, name to inode number.
pub type Entries = BTreeMap<OsString, u64>;

#[derive(Clone, Debug)]
pub enum Contents {
    File {
        current: FileData,
        durable: FileData,
    },
    Dir {
        current: Entries,
        durable: Entries,
    },
}

#[derive(Clone, Debug)]
pub struct Node {
    pub contents: Contents,
    pub mode: u16,
    pub mtime: SystemTime,
}

impl Node {
    pub fn is_dir(&self) -> bool {
        matches!(self.contents, Contents::Dir { .. })
    }
}

/// What a power cut took away, for the test's log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Loss {
    /// Files whose contents went back to their last sync.
    pub files_reverted: u64,
    /// Bytes of file length lost (current length minus durable length, where positive).
    pub bytes_dropped: u64,
    /// Directories whose entries went back to their last sync.
    pub dirs_reverted: u64,
}

/// Operations counted since mount, so a test can show the log really synced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub writes: u64,
    pub file_syncs: u64,
    pub dir_syncs: u64,
    pub renames: u64,
    pub truncates: u64,
    pub fallocates: u64,
}

/// Every inode by number.
#[derive(Debug)]
pub struct Tree {
    nodes: HashMap<u64, Node>,
    next_ino: u64,
    pub counts: Counts,
}

impl Default for Tree {
    fn default() -> Self {
        Self::new()
    }
}

impl Tree {
    pub fn new() -> Tree {
        let root = Node {
            contents: Contents::Dir {
                current: Entries::new(),
                durable: Entries::new(),
            },
            mode: 0o755,
            mtime: SystemTime::now(),
        };
        Tree {
            nodes: HashMap::from([(ROOT, root)]),
            next_ino: ROOT + 1,
            counts: Counts::default(),
        }
    }

    pub fn node(&self, ino: u64) -> Result<&Node, Errno> {
        self.nodes.get(&ino).ok_or(libc::ENOENT)
    }

    fn node_mut(&mut self, ino: u64) -> Result<&mut Node, Errno> {
        self.nodes.get_mut(&ino).ok_or(libc::ENOENT)
    }

    fn entries(&self, dir: u64) -> Result<&Entries, Errno> {
        match &self.node(dir)?.contents {
            Contents::Dir { current, .. } => Ok(current),
            Contents::File { .. } => Err(libc::ENOTDIR),
        }
    }

    fn entries_mut(&mut self, dir: u64) -> Result<&mut Entries, Errno> {
        let node = self.node_mut(dir)?;
        node.mtime = SystemTime::now();
        match &mut node.contents {
            Contents::Dir { current, .. } => Ok(current),
            Contents::File { .. } => Err(libc::ENOTDIR),
        }
    }

    fn file_mut(&mut self, ino: u64) -> Result<&mut FileData, Errno> {
        let node = self.node_mut(ino)?;
        node.mtime = SystemTime::now();
        match &mut node.contents {
            Contents::File { current, .. } => Ok(current),
            Contents::Dir { .. } => Err(libc::EISDIR),
        }
    }

    pub fn file(&self, ino: u64) -> Result<&FileData, Errno> {
        match &self.node(ino)?.contents {
            Contents::File { current, .. } => Ok(current),
            Contents::Dir { .. } => Err(libc::EISDIR),
        }
    }

    pub fn lookup(&self, dir: u64, name: &OsStr) -> Result<u64, Errno> {
        self.entries(dir)?.get(name).copied().ok_or(libc::ENOENT)
    }

    /// Entries of a directory in name order, for readdir.
    pub fn list(&self, dir: u64) -> Result<Vec<(OsString, u64, bool)>, Errno> {
        Ok(self
            .entries(dir)?
            .iter()
            .map(|(name, ino)| {
                let is_dir = self.nodes.get(ino).is_some_and(Node::is_dir);
                (name.clone(), *ino, is_dir)
            })
            .collect())
    }

    /// Creates a file or directory named `name` in `dir`; EEXIST if the name is taken.
    pub fn create(
        &mut self,
        dir: u64,
        name: &OsStr,
        mode: u16,
        is_dir: bool,
    ) -> Result<u64, Errno> {
        if self.entries(dir)?.contains_key(name) {
            return Err(libc::EEXIST);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let contents = if is_dir {
            Contents::Dir {
                current: Entries::new(),
                durable: Entries::new(),
            }
        } else {
            Contents::File {
                current: FileData::default(),
                durable: FileData::default(),
            }
        };
        let node = Node {
            contents,
            mode,
            mtime: SystemTime::now(),
        };
        self.nodes.insert(ino, node);
        self.entries_mut(dir)?.insert(name.to_owned(), ino);
        Ok(ino)
    }

    /// Removes a name. The inode stays while a durable entry may still name it; a power cut decides.
    pub fn remove(&mut self, dir: u64, name: &OsStr, want_dir: bool) -> Result<(), Errno> {
        let ino = self.lookup(dir, name)?;
        match (&self.node(ino)?.contents, want_dir) {
            (Contents::Dir { current, .. }, true) if !current.is_empty() => {
                return Err(libc::ENOTEMPTY)
            }
            (Contents::Dir { .. }, false) => return Err(libc::EISDIR),
            (Contents::File { .. }, true) => return Err(libc::ENOTDIR),
            _ => {}
        }
        self.entries_mut(dir)?.remove(name);
        Ok(())
    }

    /// `rename(2)`, replacing a file or an empty directory at the target; `noreplace` is RENAME_NOREPLACE.
    pub fn rename(
        &mut self,
        dir: u64,
        name: &OsStr,
        new_dir: u64,
        new_name: &OsStr,
        noreplace: bool,
    ) -> Result<(), Errno> {
        let ino = self.lookup(dir, name)?;
        self.entries(new_dir)?;
        if let Ok(existing) = self.lookup(new_dir, new_name) {
            if noreplace {
                return Err(libc::EEXIST);
            }
            if existing == ino {
                return Ok(());
            }
            let moving_dir = self.node(ino)?.is_dir();
            match &self.node(existing)?.contents {
                Contents::Dir { .. } if !moving_dir => return Err(libc::EISDIR),
                Contents::Dir { current, .. } if !current.is_empty() => {
                    return Err(libc::ENOTEMPTY)
                }
                Contents::File { .. } if moving_dir => return Err(libc::ENOTDIR),
                _ => {}
            }
        }
        self.counts.renames += 1;
        self.entries_mut(dir)?.remove(name);
        self.entries_mut(new_dir)?.insert(new_name.to_owned(), ino);
        Ok(())
    }

    pub fn write(&mut self, ino: u64, offset: u64, data: &[u8]) -> Result<(), Errno> {
        self.counts.writes += 1;
        self.file_mut(ino)?.write(offset, data);
        Ok(())
    }

    pub fn set_len(&mut self, ino: u64, len: u64) -> Result<(), Errno> {
        self.counts.truncates += 1;
        self.file_mut(ino)?.set_len(len);
        Ok(())
    }

    pub fn set_mode(&mut self, ino: u64, mode: u16) -> Result<(), Errno> {
        self.node_mut(ino)?.mode = mode;
        Ok(())
    }

    /// `fallocate(2)` in the modes Linux programs use: plain (grow), KEEP_SIZE (nothing to remember, since
    /// this filesystem never runs out of space), and PUNCH_HOLE|KEEP_SIZE (zeroes). Others are refused.
    pub fn fallocate(
        &mut self,
        ino: u64,
        offset: u64,
        length: u64,
        mode: i32,
    ) -> Result<(), Errno> {
        self.counts.fallocates += 1;
        let file = self.file_mut(ino)?;
        let end = offset.checked_add(length).ok_or(libc::EFBIG)?;
        match mode {
            0 => {
                if end > file.len() {
                    file.set_len(end);
                }
                Ok(())
            }
            libc::FALLOC_FL_KEEP_SIZE => Ok(()),
            m if m == libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE => {
                file.zero(offset, length.min(file.len().saturating_sub(offset)));
                Ok(())
            }
            _ => Err(libc::EOPNOTSUPP),
        }
    }

    /// `fsync`/`fdatasync` of a file, or of a directory: its current state becomes what survives.
    pub fn sync(&mut self, ino: u64) -> Result<(), Errno> {
        let node = self.node_mut(ino)?;
        match &mut node.contents {
            Contents::File { current, durable } => {
                *durable = current.clone();
                self.counts.file_syncs += 1;
            }
            Contents::Dir { current, durable } => {
                *durable = current.clone();
                self.counts.dir_syncs += 1;
            }
        }
        Ok(())
    }

    /// The power cut: everything not synced is gone, and inodes that no durable entry reaches with it.
    pub fn lose_power(&mut self) -> Loss {
        let mut loss = Loss::default();
        for node in self.nodes.values_mut() {
            match &mut node.contents {
                Contents::File { current, durable } => {
                    if current != durable {
                        loss.files_reverted += 1;
                        loss.bytes_dropped += current.len().saturating_sub(durable.len());
                        *current = durable.clone();
                    }
                }
                Contents::Dir { current, durable } => {
                    if current != durable {
                        loss.dirs_reverted += 1;
                        *current = durable.clone();
                    }
                }
            }
        }
        let mut reachable = std::collections::HashSet::from([ROOT]);
        let mut stack = vec![ROOT];
        while let Some(ino) = stack.pop() {
            if let Some(Node {
                contents: Contents::Dir { current, .. },
                ..
            }) = self.nodes.get(&ino)
            {
                for child in current.values() {
                    if reachable.insert(*child) {
                        stack.push(*child);
                    }
                }
            }
        }
        self.nodes.retain(|ino, _| reachable.contains(ino));
        loss
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn name(s: &str) -> &OsStr {
        OsStr::new(s)
    }

    #[test]
    fn unsynced_writes_vanish_and_synced_ones_stay() {
        let mut tree = Tree::new();
        let dir = tree.create(ROOT, name("d"), 0o755, true).unwrap();
        let f = tree.create(dir, name("f"), 0o644, false).unwrap();
        tree.sync(ROOT).unwrap();
        tree.sync(dir).unwrap();
        tree.write(f, 0, b"durable").unwrap();
        tree.sync(f).unwrap();
        tree.write(f, 7, b" and lost").unwrap();
        assert_eq!(tree.file(f).unwrap().read(0, 100), b"durable and lost");
        let loss = tree.lose_power();
        assert_eq!(loss.bytes_dropped, 9);
        assert_eq!(tree.file(f).unwrap().read(0, 100), b"durable");
    }

    #[test]
    fn a_name_needs_its_directory_synced() {
        let mut tree = Tree::new();
        let f = tree.create(ROOT, name("f"), 0o644, false).unwrap();
        tree.write(f, 0, b"x").unwrap();
        tree.sync(f).unwrap();
        tree.lose_power();
        assert_eq!(tree.lookup(ROOT, name("f")), Err(libc::ENOENT));
    }

    #[test]
    fn rename_is_durable_only_after_the_directory_sync() {
        let mut tree = Tree::new();
        let f = tree.create(ROOT, name("a.tmp"), 0o644, false).unwrap();
        tree.write(f, 0, b"new").unwrap();
        tree.sync(f).unwrap();
        tree.sync(ROOT).unwrap();
        tree.rename(ROOT, name("a.tmp"), ROOT, name("a"), false)
            .unwrap();
        tree.lose_power();
        assert!(tree.lookup(ROOT, name("a")).is_err());
        assert_eq!(tree.lookup(ROOT, name("a.tmp")), Ok(f));
        tree.rename(ROOT, name("a.tmp"), ROOT, name("a"), false)
            .unwrap();
        tree.sync(ROOT).unwrap();
        tree.lose_power();
        assert_eq!(tree.lookup(ROOT, name("a")), Ok(f));
        assert_eq!(tree.file(f).unwrap().read(0, 10), b"new");
    }

    #[test]
    fn truncate_then_grow_reads_zeros_and_holes_are_zero() {
        let mut data = FileData::default();
        data.write(0, &[7u8; 3 * PAGE]);
        data.set_len(PAGE as u64 + 10);
        data.set_len(3 * PAGE as u64);
        let bytes = data.read(0, 3 * PAGE as u32);
        assert!(bytes[..PAGE + 10].iter().all(|b| *b == 7));
        assert!(bytes[PAGE + 10..].iter().all(|b| *b == 0));
        data.write(10 * PAGE as u64, b"z");
        assert_eq!(data.read(5 * PAGE as u64, 4), vec![0; 4]);
        assert_eq!(data.pages_held(), 3);
    }

    #[test]
    fn punch_hole_zeroes_partial_and_whole_pages() {
        let mut tree = Tree::new();
        let f = tree.create(ROOT, name("f"), 0o644, false).unwrap();
        tree.write(f, 0, &[1u8; 3 * PAGE]).unwrap();
        let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
        tree.fallocate(f, 100, 2 * PAGE as u64, mode).unwrap();
        let bytes = tree.file(f).unwrap().read(0, 3 * PAGE as u32);
        assert!(bytes[..100].iter().all(|b| *b == 1));
        assert!(bytes[100..100 + 2 * PAGE].iter().all(|b| *b == 0));
        assert!(bytes[100 + 2 * PAGE..].iter().all(|b| *b == 1));
        tree.fallocate(f, 0, 10 * PAGE as u64, 0).unwrap();
        assert_eq!(tree.file(f).unwrap().len(), 10 * PAGE as u64);
        assert_eq!(tree.fallocate(f, 0, 1, 0x40), Err(libc::EOPNOTSUPP));
    }

    #[test]
    fn removed_but_durably_named_files_come_back() {
        let mut tree = Tree::new();
        let f = tree.create(ROOT, name("f"), 0o644, false).unwrap();
        tree.write(f, 0, b"kept").unwrap();
        tree.sync(f).unwrap();
        tree.sync(ROOT).unwrap();
        tree.remove(ROOT, name("f"), false).unwrap();
        tree.lose_power();
        assert_eq!(tree.lookup(ROOT, name("f")), Ok(f));
        assert_eq!(tree.file(f).unwrap().read(0, 10), b"kept");
    }

    #[test]
    fn directories_refuse_what_posix_refuses() {
        let mut tree = Tree::new();
        let d = tree.create(ROOT, name("d"), 0o755, true).unwrap();
        tree.create(d, name("f"), 0o644, false).unwrap();
        assert_eq!(tree.remove(ROOT, name("d"), true), Err(libc::ENOTEMPTY));
        assert_eq!(tree.remove(ROOT, name("d"), false), Err(libc::EISDIR));
        assert_eq!(tree.create(d, name("f"), 0o644, false), Err(libc::EEXIST));
        tree.create(ROOT, name("g"), 0o644, false).unwrap();
        assert_eq!(
            tree.rename(ROOT, name("g"), ROOT, name("d"), false),
            Err(libc::EISDIR)
        );
        assert_eq!(
            tree.rename(ROOT, name("g"), d, name("f"), true),
            Err(libc::EEXIST)
        );
    }
}

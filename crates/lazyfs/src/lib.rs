//! A filesystem that forgets what was not synced: the power cut of Ferrite's durability tests.
//!
//! `kill -9` keeps the kernel's page cache, so a test built on it passes even if every `fdatasync` were
//! deleted. This crate mounts a FUSE filesystem (held in the memory of a child process it forks, see [`LazyFs`]) that keeps two views of every
//! file and directory, what programs see now and what the last sync made durable (see [`tree`]), and a
//! [`LazyFs::cut_power`] after which every change fails. [`LazyFs::restore_power`] then unmounts, which throws away
//! the kernel's cached and dirty pages with the connection, rolls every file and directory back to its last
//! sync, and mounts the survivors again for the next start of the program under test.
//!
//! ```text
//!   broker ──syscalls──▶ kernel (page cache, mmap) ──FUSE──▶ LazyFsOps ──▶ Tree { current, durable }
//!   test:  cut_power()      every change fails with EIO from now on, so nothing more becomes durable
//!          kill -9 broker   its files close; writeback of dirty pages also fails
//!          restore_power()  unmount (page cache gone), current := durable, mount again
//! ```
//!
//! Why FUSE and not a VM under KVM: a VM would test one real filesystem (ext4, whose ordered journal makes
//! many missing syncs harmless in practice) and pay a boot per cut. This model is deterministic, needs
//! milliseconds per cut, runs in CI as root without an image, and holds the log to POSIX's minimum, which
//! is what a log that claims durability on any filesystem must meet. What it cannot model: torn writes
//! inside a page (a write is all or nothing here), and reordering of writes within one file between syncs
//! (everything since the last sync goes at once). Shared writable `mmap` (the index files) works: the
//! kernel writes dirty pages back as FUSE writes on `msync`, `fsync`, close or unmount, and only a sync
//! makes them durable, exactly as on disk. `sendfile` works because files are opened through the page cache
//! (no direct I/O). Requires root (it mounts with `mount(2)` on a `/dev/fuse` descriptor, no fusermount).

mod control;
pub mod fuse;
mod mount;
mod server;
pub mod tree;

pub use control::LazyFs;
pub use tree::{Counts, Loss};

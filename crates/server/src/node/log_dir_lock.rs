//! One broker per log directory. Two brokers appending to the same partition files would each believe its
//! own view of the log end, and records one of them acknowledged would be overwritten by the other. Like
//! Kafka's `LogManager`, a broker takes an exclusive `flock` on `<log.dir>/.lock` in every log directory before
//! it opens anything there, holds it for as long as it runs, and refuses to start if another process holds it.
//!
//! The lock file also carries the holder's pid, so the refusal can name the process in the way. The pid is
//! informative only: the lock itself is the kernel's, released when the holder exits however it exits
//! (`kill -9` included), so a stale file never blocks a restart.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file's name, as in Kafka.
pub const LOCK_FILE: &str = ".lock";

/// Why a log directory could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LogDirError {
    #[error("log directory {} is not a directory: {}", .dir.display(), .what)]
    NotADirectory { dir: PathBuf, what: String },
    #[error("cannot create log directory {}: {source}", .dir.display())]
    Create {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "log directory {} is in use by another broker{}; stop it or give this one other log.dirs",
        .dir.display(),
        .holder.map(|pid| format!(" (process {pid})")).unwrap_or_default()
    )]
    InUse { dir: PathBuf, holder: Option<u32> },
    #[error("cannot lock log directory {}: {source}", .dir.display())]
    Lock {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// The locks on every log directory; dropping it releases them.
#[derive(Debug)]
pub struct LogDirLocks {
    _files: Vec<File>,
}

impl LogDirLocks {
    /// Creates the directories that do not exist yet and locks each of them.
    pub fn acquire(dirs: &[PathBuf]) -> Result<LogDirLocks, LogDirError> {
        let files = dirs
            .iter()
            .map(|dir| lock_dir(dir))
            .collect::<Result<_, _>>()?;
        Ok(LogDirLocks { _files: files })
    }
}

fn lock_dir(dir: &Path) -> Result<File, LogDirError> {
    ensure_directory(dir)?;
    let path = dir.join(LOCK_FILE);
    let lock_error = |source| LogDirError::Lock {
        dir: dir.to_path_buf(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(lock_error)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(LogDirError::InUse {
                dir: dir.to_path_buf(),
                holder: holder_pid(&mut file),
            })
        }
        Err(TryLockError::Error(e)) => return Err(lock_error(e)),
    }
    // Ours now: record who holds it. A failure here costs only the pid in someone else's message.
    let recorded = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()));
    if let Err(e) = recorded {
        tracing::warn!(path = %path.display(), error = %e, "could not record the pid in the lock file");
    }
    Ok(file)
}

/// A missing directory is created (with its parents); a path that exists but is a file, or whose parent is a
/// file, gets a message that says so instead of the bare "File exists" / "Not a directory" of mkdir.
fn ensure_directory(dir: &Path) -> Result<(), LogDirError> {
    let not_a_directory = |what: String| LogDirError::NotADirectory {
        dir: dir.to_path_buf(),
        what,
    };
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(_) => return Err(not_a_directory("it is a file".to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            return Err(not_a_directory("a part of its path is a file".to_string()))
        }
        Err(source) => {
            return Err(LogDirError::Create {
                dir: dir.to_path_buf(),
                source,
            })
        }
    }
    std::fs::create_dir_all(dir).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotADirectory | std::io::ErrorKind::AlreadyExists => {
            not_a_directory("a part of its path is a file".to_string())
        }
        _ => LogDirError::Create {
            dir: dir.to_path_buf(),
            source,
        },
    })
}

/// The pid the current holder wrote, if it wrote one.
fn holder_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_with_the_holders_pid() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = vec![tmp.path().join("a"), tmp.path().join("b")];
        let held = LogDirLocks::acquire(&dirs).unwrap();
        assert!(dirs.iter().all(|d| d.is_dir()), "created");
        // flock locks belong to the open file description, so a second open in this process conflicts too.
        let error = LogDirLocks::acquire(&dirs[1..]).unwrap_err();
        let LogDirError::InUse { dir, holder } = &error else {
            panic!("{error}")
        };
        assert_eq!((dir, *holder), (&dirs[1], Some(std::process::id())));
        assert!(error.to_string().contains(&std::process::id().to_string()));
        drop(held);
        LogDirLocks::acquire(&dirs).expect("free again once released");
    }

    #[test]
    fn a_file_where_a_directory_should_be_is_named_as_such() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("plain");
        std::fs::write(&file, b"x").unwrap();
        for dir in [file.clone(), file.join("below")] {
            let error = LogDirLocks::acquire(std::slice::from_ref(&dir)).unwrap_err();
            assert!(
                matches!(error, LogDirError::NotADirectory { .. }),
                "{dir:?}: {error}"
            );
            assert!(error.to_string().contains("not a directory"), "{error}");
        }
    }
}

//! Small partition-level state files, written atomically: write `<name>.tmp`, fsync it, rename over `<name>`,
//! fsync the directory. A crash leaves either the old or the new file, never a torn one.
//!
//! Format (as Kafka's checkpoint files): a version line, an entry-count line, then one line per entry of
//! space-separated integers.
//! ```text
//! 0
//! 2
//! 3 0
//! 5 1200
//! ```

use crate::error::{IoContext, LogError, Result};
use crate::file_names::{with_suffix, TMP_SUFFIX};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

const VERSION: i64 = 0;

/// Writes the entries atomically and durably.
pub(crate) fn write(path: &Path, entries: &[Vec<i64>]) -> Result<()> {
    let mut text = format!("{VERSION}\n{}\n", entries.len());
    for entry in entries {
        let line: Vec<String> = entry.iter().map(i64::to_string).collect();
        text.push_str(&line.join(" "));
        text.push('\n');
    }
    let tmp = with_suffix(path, TMP_SUFFIX);
    {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .at(&tmp)?;
        file.write_all(text.as_bytes()).at(&tmp)?;
        file.sync_all().at(&tmp)?;
    }
    std::fs::rename(&tmp, path).at(path)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Reads the entries; `Ok(None)` if the file does not exist, an error if it is malformed.
pub(crate) fn read(path: &Path, fields_per_entry: usize) -> Result<Option<Vec<Vec<i64>>>> {
    read_entries(path, Some(fields_per_entry))
}

/// Like [`read`], for entries of varying length.
pub(crate) fn read_variable(path: &Path) -> Result<Option<Vec<Vec<i64>>>> {
    read_entries(path, None)
}

fn read_entries(path: &Path, fields_per_entry: Option<usize>) -> Result<Option<Vec<Vec<i64>>>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(LogError::Io {
                path: path.to_path_buf(),
                source: e,
            })
        }
    };
    let corrupt = |reason: &str| LogError::CorruptFile {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let mut lines = text.lines();
    let version: i64 = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| corrupt("no version"))?;
    if version != VERSION {
        return Err(corrupt("unknown version"));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| corrupt("no count"))?;
    let mut entries = Vec::with_capacity(count.min(1 << 16));
    for line in lines.by_ref().take(count) {
        let fields: Option<Vec<i64>> = line.split_whitespace().map(|f| f.parse().ok()).collect();
        match fields {
            Some(f) if fields_per_entry.is_none_or(|n| f.len() == n) => entries.push(f),
            _ => return Err(corrupt("malformed entry")),
        }
    }
    if entries.len() != count {
        return Err(corrupt("fewer entries than the count says"));
    }
    Ok(Some(entries))
}

/// fsync of a directory, so that a create, rename or unlink inside it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).at(dir)?.sync_all().at(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_malformed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cp");
        assert!(read(&path, 2).expect("read").is_none());
        write(&path, &[vec![3, 0], vec![5, 1200]]).expect("write");
        assert_eq!(
            read(&path, 2).expect("read"),
            Some(vec![vec![3, 0], vec![5, 1200]])
        );
        assert!(!with_suffix(&path, TMP_SUFFIX).exists());
        std::fs::write(&path, "0\n3\n1 2\n").expect("write");
        assert!(read(&path, 2).is_err());
        std::fs::write(&path, "0\n1\n1 x\n").expect("write");
        assert!(read(&path, 2).is_err());
    }
}

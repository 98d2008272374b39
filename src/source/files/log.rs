//! The discovery log: every file the source ever took, in the order it reads them,
//! kept in the checkpoint directory (Spark's `FileStreamSourceLog`).

use super::listing::Entry;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The file name inside the source's directory.
const FILE: &str = "discovered.jsonl";

/// An append-only list of JSON lines, one [`Entry`] each. A line is appended (and, with
/// `sync`, synced) before any record of its file is read, so a restart reads the same
/// files in the same order: the offsets in checkpoints are indices into it.
#[derive(Debug)]
pub(crate) struct DiscoveryLog {
    dir: PathBuf,
    /// Open for appending once something was written.
    file: Option<File>,
    /// Bytes of the file that hold whole entries (a torn tail after them is cut off
    /// before the next append).
    valid_len: u64,
    sync: bool,
}

impl DiscoveryLog {
    /// Reads the log in `dir` (absent: empty). Only reads; nothing is created until the
    /// first [`append`](Self::append).
    pub(crate) fn load(dir: &Path, sync: bool) -> Result<(DiscoveryLog, Vec<Entry>), String> {
        let path = dir.join(FILE);
        let mut entries = Vec::new();
        let mut valid_len = 0u64;
        match std::fs::read(&path) {
            Ok(bytes) => {
                let mut start = 0;
                while start < bytes.len() {
                    let Some(end) = memchr::memchr(b'\n', &bytes[start..]).map(|i| start + i)
                    else {
                        // A last line without its newline: torn by a crash mid-append.
                        break;
                    };
                    match serde_json::from_slice::<Entry>(&bytes[start..end]) {
                        Ok(entry) => entries.push(entry),
                        Err(error) => {
                            return Err(format!(
                                "the discovery log {} is damaged at byte {start}: {error}",
                                path.display()
                            ))
                        }
                    }
                    start = end + 1;
                    valid_len = start as u64;
                }
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(format!("cannot read {}: {error}", path.display()));
            }
        }
        let log = DiscoveryLog {
            dir: dir.to_path_buf(),
            file: None,
            valid_len,
            sync,
        };
        Ok((log, entries))
    }

    /// Appends `entries`; with `sync`, they are on disk when this returns.
    pub(crate) fn append(&mut self, entries: &[Entry]) -> io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        if self.file.is_none() {
            let created = !self.dir.exists();
            std::fs::create_dir_all(&self.dir)?;
            let path = self.dir.join(FILE);
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)?;
            file.set_len(self.valid_len)?;
            if self.sync && created {
                if let Some(parent) = self.dir.parent() {
                    File::open(parent)?.sync_all()?;
                }
            }
            self.file = Some(file);
        }
        let file = self.file.as_mut().expect("opened above");
        let mut bytes = Vec::new();
        for entry in entries {
            serde_json::to_writer(&mut bytes, entry).map_err(io::Error::other)?;
            bytes.push(b'\n');
        }
        use std::io::{Seek, SeekFrom};
        file.seek(SeekFrom::Start(self.valid_len))?;
        file.write_all(&bytes)?;
        if self.sync {
            file.sync_data()?;
        }
        self.valid_len += bytes.len() as u64;
        Ok(())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn entry(name: &str) -> Entry {
        Entry {
            name: name.into(),
            mtime: 1,
            len: 2,
        }
    }

    #[test]
    fn appends_and_survives_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let log_dir = dir.path().join("files-x");
        let (mut log, entries) = DiscoveryLog::load(&log_dir, true).unwrap();
        assert!(entries.is_empty());
        assert!(!log_dir.exists(), "loading creates nothing");
        log.append(&[entry("a"), entry("b")]).unwrap();
        log.append(&[entry("c")]).unwrap();
        // A crash mid-append leaves half a line.
        let path = log_dir.join(FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(b"{\"name\":\"d\",\"mt");
        std::fs::write(&path, &bytes).unwrap();
        let (mut log, entries) = DiscoveryLog::load(&log_dir, false).unwrap();
        assert_eq!(entries, [entry("a"), entry("b"), entry("c")]);
        log.append(&[entry("e")]).unwrap();
        let (_, entries) = DiscoveryLog::load(&log_dir, false).unwrap();
        assert_eq!(entries, [entry("a"), entry("b"), entry("c"), entry("e")]);
        // Damage before the end is an error.
        std::fs::write(&path, b"garbage\n{\"name\":\"a\",\"mtime\":1,\"len\":2}\n").unwrap();
        assert!(DiscoveryLog::load(&log_dir, false).is_err());
    }
}

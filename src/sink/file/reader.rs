//! Reading a file sink's output back: only committed part files, found through their
//! commit markers, never by listing `part-*`.

use super::commit_log::{self, CommittedPart};
use super::format::{self, FileFormat};
use super::FileSinkError;
use serde::de::DeserializeOwned;
use std::fs::File;
use std::path::Path;

/// Lists the committed part files in `dir` (a [`FileSink`](super::FileSink)'s directory), ordered by
/// epoch, then instance (for queries without checkpoints: by run first, checkpointed
/// output before any run). Temporary files and part files without a commit marker are
/// left out.
///
/// # Errors
///
/// [`FileSinkError::Io`] when `dir/_commits` cannot be listed or a marker read;
/// [`FileSinkError::Corrupt`] for a marker that is not one.
pub fn committed_parts(dir: impl AsRef<Path>) -> Result<Vec<CommittedPart>, FileSinkError> {
    commit_log::list_committed(dir.as_ref())
}

/// Reads every committed record in `dir` (a [`FileSink`](super::FileSink)'s directory) written as
/// `format`, in the order of [`committed_parts`]: by epoch, then instance; within a part
/// file, in the order written. Uncommitted output is never read.
///
/// # Errors
///
/// As for [`committed_parts`] and [`CommittedPart::read`], and [`FileSinkError::Decode`]
/// when a committed file is not in `format`.
pub fn read_committed<R: DeserializeOwned>(
    dir: impl AsRef<Path>,
    format: FileFormat,
) -> Result<Vec<R>, FileSinkError> {
    let mut records = Vec::new();
    for part in committed_parts(dir)? {
        if part.format != format {
            return Err(FileSinkError::Decode {
                source: format!("it is a {} file, not {format}", part.format).into(),
                path: part.path,
            });
        }
        part.read_into(&mut records)?;
    }
    Ok(records)
}

impl CommittedPart {
    /// Reads the records of this part file.
    ///
    /// # Errors
    ///
    /// As for [`read_into`](Self::read_into).
    pub fn read<R: DeserializeOwned>(&self) -> Result<Vec<R>, FileSinkError> {
        let mut records = Vec::new();
        self.read_into(&mut records)?;
        Ok(records)
    }

    /// Appends the records of this part file to `records`.
    ///
    /// # Errors
    ///
    /// [`FileSinkError::Io`] when the file cannot be opened or read,
    /// [`FileSinkError::Decode`] when its records are not `R`s, and
    /// [`FileSinkError::Corrupt`] when it holds another number of records than its
    /// commit marker says.
    pub fn read_into<R: DeserializeOwned>(
        &self,
        records: &mut Vec<R>,
    ) -> Result<(), FileSinkError> {
        let file = File::open(&self.path)
            .map_err(|source| FileSinkError::io("open", &self.path, source))?;
        let before = records.len();
        format::read_records(file, self.format, self.header, records).map_err(|source| {
            FileSinkError::Decode {
                path: self.path.clone(),
                source,
            }
        })?;
        let found = (records.len() - before) as u64;
        if found != self.records {
            return Err(FileSinkError::Corrupt {
                path: self.path.clone(),
                reason: format!(
                    "holds {found} records, its commit marker says {}",
                    self.records
                ),
            });
        }
        Ok(())
    }
}

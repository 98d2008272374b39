//! The file sink's error type.

use crate::error::BoxError;
use std::io;
use std::path::{Path, PathBuf};

/// What went wrong in a [`FileSink`](super::FileSink) or while reading its output back.
/// Every variant names the path involved.
///
/// The sink's methods return it boxed (as [`BoxError`]); downcast to inspect it, for
/// instance to tell a full disk from a permission problem:
///
/// ```
/// use rivulet::sink::file::FileSinkError;
/// # let error: rivulet::error::BoxError = Box::new(FileSinkError::NotADirectory {
/// #     path: "/etc/hostname".into(),
/// # });
/// if let Some(FileSinkError::Io { source, .. }) = error.downcast_ref::<FileSinkError>() {
///     let _full = source.kind() == std::io::ErrorKind::StorageFull;
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileSinkError {
    /// A file system operation failed: no permission, disk full (`StorageFull`), file
    /// size limit (`FileTooLarge`), and so on.
    #[error("file sink: cannot {action} `{path}`: {source}")]
    Io {
        /// What the sink was doing ("create directory", "write", "sync", …).
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// Renaming a file into place failed.
    #[error("file sink: cannot rename `{from}` to `{to}`: {source}")]
    Rename {
        /// The file being renamed.
        from: PathBuf,
        /// Its new name.
        to: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// The sink's path exists and is not a directory.
    #[error("file sink: `{path}` exists and is not a directory")]
    NotADirectory {
        /// The sink's path.
        path: PathBuf,
    },

    /// A record could not be expressed in the file format (say, a nested struct in CSV).
    #[error("file sink: cannot encode a record for `{path}`: {source}")]
    Encode {
        /// The file being written.
        path: PathBuf,
        /// The encoder's error.
        #[source]
        source: BoxError,
    },

    /// A committed part file could not be decoded as the requested record type.
    #[error("file sink: cannot decode `{path}`: {source}")]
    Decode {
        /// The part file.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: BoxError,
    },

    /// The sink's commit log disagrees with the files: an unreadable marker, a marker
    /// naming the wrong file, a part file with another record count than its marker.
    #[error("file sink: `{path}`: {reason}")]
    Corrupt {
        /// The marker or part file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// The directory holds output this query did not write: a commit record stamped
    /// with another query's id (see [`SinkContext::query_id`]), for instance because the
    /// query's checkpoint directory was deleted, or because two queries share the output
    /// directory. Writing would replace or mix with that output, and skipping epochs
    /// that the other query published would lose records, so the sink refuses. Use an
    /// empty directory, or restart with the checkpoint directory that wrote the output.
    ///
    /// [`SinkContext::query_id`]: crate::sink::SinkContext::query_id
    #[error(
        "file sink: `{path}` holds output of another query (`{record}` {reason}); a \
         checkpointed query needs an output directory that only it writes: use an empty \
         directory, or restart with the checkpoint directory that wrote this output"
    )]
    ForeignOutput {
        /// The sink's directory.
        path: PathBuf,
        /// The commit record that is not this query's.
        record: PathBuf,
        /// Whose it is, as far as the record says.
        reason: String,
    },

    /// The sink was called out of order (say, records after `prepare_commit` without a
    /// `begin_epoch`, or before `open`): a bug in the caller.
    #[error("file sink `{path}`: {message}")]
    Protocol {
        /// The sink's directory.
        path: PathBuf,
        /// The call that was out of order.
        message: String,
    },
}

impl FileSinkError {
    /// An [`Io`](FileSinkError::Io) error.
    pub(crate) fn io(action: &'static str, path: &Path, source: io::Error) -> Self {
        FileSinkError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

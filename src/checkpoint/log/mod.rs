//! The checkpoint log: an append-only, memory-mapped, CRC-framed log of opaque entries.
//!
//! Checkpoints are written here, and so is the write-ahead ingest log of a source that
//! cannot replay. The log knows nothing of epochs or operators: an entry is an
//! [`EntryKind`] byte and a payload.
//!
//! ```
//! use rivulet::checkpoint::log::{scan, EntryKind, LogConfig, LogWriter};
//!
//! let dir = tempfile::tempdir()?;
//! let mut writer = LogWriter::open(dir.path(), LogConfig::default())?;
//! let at = writer.append(EntryKind(1), b"snapshot bytes")?;
//! writer.sync()?;
//!
//! let found = scan(dir.path())?;
//! assert_eq!(found.entries[0].location, at);
//! assert_eq!(found.entries[0].payload, b"snapshot bytes");
//! assert!(found.problems.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Files
//!
//! A log directory holds segment files named `segment-{:016x}.log` (the number in
//! sixteen lower-case hex digits), a `MANIFEST` and a `LOCK` file.
//!
//! A segment (format 2, `RIVLOG02`) starts with a 32-byte header: the magic, the segment
//! number (equal to the one in the name), the file's size as created, a flag saying
//! whether the writer rolled over to it from the segment before, and a crc32 of all that.
//! Frames follow:
//!
//! ```text
//! sync: 4 bytes | len: u32 LE | kind: u8 | crc32: u32 LE (kind, then payload)
//!   | nlen: u32 LE (!len) | payload
//! ```
//!
//! A segment is preallocated to its full size with zeros, so a frame header that starts
//! with zeros, followed by nothing but zeros, marks the end of its entries. The `sync`
//! marker and `nlen` let [`scan`] find the next intact frame after a damaged one:
//! one damaged entry loses that entry, not the rest of its segment. See
//! [`LogWriter::append`] for how a crash in the middle of an append is detected, and
//! [`scan`] for how the log is read back and which [`Problem`]s it reports.
//!
//! The `MANIFEST` (28 bytes: magic `RIVMAN01`, the oldest segment not removed, the newest
//! created, a crc32) records outside the segments which segments should exist. The writer
//! rewrites it in place after creating a segment and before removing old ones, so deleted segments,
//! the newest or all of them, are reported missing instead of read as a shorter log or a
//! fresh directory.
//!
//! ## Versions
//!
//! Format 1 (`RIVLOG01`, before issue #15) had a 24-byte header without size or flags,
//! 9-byte frames without `sync` or `nlen`, and no `MANIFEST`. Its segments are still
//! read, in the same directory as format-2 ones: a writer opened on such a directory adds
//! format-2 segments and a `MANIFEST`. In a format-1 segment the reader can resume after a
//! damaged frame only where that frame's length says, if a valid frame is there; after a
//! damaged length the rest of the segment is lost, as before. Gaps are found between the
//! segments present until the first `MANIFEST` is written.
//!
//! # Safety of the memory map
//!
//! Segments are written through a writable memory map (`memmap2::MmapMut`). That is sound
//! only while nothing else changes a mapped file: rivulet alone writes a log directory,
//! one [`LogWriter`] at a time (the `LOCK` file enforces it), and a mapped segment is never
//! truncated or resized. The one `map_mut` call, in `segment.rs`, states this promise.
//! The reader never maps: [`scan`] uses `std::fs::read`, so any content, however corrupt,
//! cannot crash it.
//!
//! # Modules
//!
//! | file | job |
//! |---|---|
//! | `mod.rs` | the public vocabulary: config, locations, entries, problems, errors |
//! | `frame.rs` | byte layout of headers and frames (both formats), resync, pure functions |
//! | `manifest.rs` | the `MANIFEST`: which segments should exist |
//! | `dir.rs` | file names and directory listing |
//! | `segment.rs` | preallocating and mapping one segment, appending frames to it (the only `unsafe`) |
//! | `writer.rs` | [`LogWriter`]: lock, rolling, sync, retention |
//! | `reader.rs` | [`scan`]: recovery read |

use std::fmt;
use std::path::{Path, PathBuf};

mod dir;
mod frame;
mod manifest;
mod reader;
mod segment;
#[cfg(test)]
mod tests;
mod writer;

pub use reader::scan;
pub(crate) use reader::scan_one;
pub use writer::{DirLock, LockUndo, LogWriter, MIN_SEGMENT_BYTES};

/// What an entry is, as a byte the log stores but does not interpret. `EntryKind(0)` is
/// reserved (it marks the end of the entries in a segment) and cannot be appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryKind(pub u8);

/// How much [`LogWriter::sync`] promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `sync` writes every entry appended before it to disk, so it survives power loss.
    /// New segments and their directory entry are fsynced when created. (Named after
    /// msync, but it does not call it: a sync maps the segment afresh, unmaps the old
    /// map and `fdatasync`s the file, which spares the operator threads a TLB
    /// shootdown per page written back; see `Segment::flush`.)
    #[default]
    Msync,
    /// `sync` does nothing. Appended entries survive a crash of the process (`kill -9`),
    /// because mapped pages belong to the OS page cache, but not necessarily power loss.
    OsBuffered,
}

/// How a [`LogWriter`] lays out and syncs segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Size of a segment file in bytes, header included (default 16 MiB, at least
    /// [`MIN_SEGMENT_BYTES`]). The whole size is written to disk when the segment is
    /// created. An entry that does not fit in a segment of this size gets a segment of
    /// its own, sized to fit.
    pub segment_bytes: u64,
    /// What [`LogWriter::sync`] does.
    pub durability: Durability,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 16 << 20,
            durability: Durability::default(),
        }
    }
}

/// Where an entry starts: its segment and the byte offset of its frame in the segment
/// file. Locations order like the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    /// The segment number.
    pub segment: u64,
    /// Byte offset of the entry's frame header in the segment file.
    pub offset: u64,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "segment {} offset {}", self.segment, self.offset)
    }
}

/// An intact entry read back by [`scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Where it is.
    pub location: Location,
    /// Its kind, as appended.
    pub kind: EntryKind,
    /// Its payload, as appended.
    pub payload: Vec<u8>,
}

/// What [`scan`] found in a log directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// Every intact entry, in log order (segment number, then offset).
    pub entries: Vec<Entry>,
    /// The segment numbers present (files named like segments, readable or not),
    /// ascending.
    pub segments: Vec<u64>,
    /// Everything that was skipped, in the order found.
    pub problems: Vec<Problem>,
}

impl Scan {
    /// Whether the scan found no problem at all.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Something [`scan`] skipped, or found missing. Each says what was lost; everything
/// else is still read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The segment's entries end in a frame that is not valid and is not followed by a
    /// valid one: what a crash in the middle of an append leaves. The frame at `offset`
    /// and everything after it in the segment are ignored.
    ///
    /// This can be any segment, not only the last: a writer that restarts after a crash
    /// starts a new segment and leaves the torn one behind. It is the one problem that is
    /// not damage (see [`Problem::is_damage`]).
    TornTail {
        /// The segment.
        segment: u64,
        /// Offset of the incomplete frame.
        offset: u64,
    },
    /// Like a torn tail, but in a segment whose writer went on to the next segment (its
    /// header says it was rolled over to), so the segment was whole when it was left: the
    /// bytes from `offset` on were damaged afterwards, and any entries there are lost.
    DamagedTail {
        /// The segment.
        segment: u64,
        /// Offset of the first invalid frame.
        offset: u64,
    },
    /// An invalid frame followed by a valid one: a frame that was once complete was
    /// damaged (a crash does not do that; a disk or another program does). The bytes from
    /// `offset` to `resumed_at` are skipped; reading resumed at the valid frame at
    /// `resumed_at`.
    Corrupt {
        /// The segment.
        segment: u64,
        /// Offset of the damaged frame.
        offset: u64,
        /// Offset of the next intact frame, where reading resumed.
        resumed_at: u64,
        /// What is wrong with the damaged frame.
        reason: String,
    },
    /// The segment file is shorter than it was created (format 2 records its size in the
    /// header): something cut it. Entries in the part that is left are read; what was
    /// after `len` is lost.
    Truncated {
        /// The segment.
        segment: u64,
        /// The file's length now.
        len: u64,
        /// Its length when created.
        expected: u64,
    },
    /// The segment's header is invalid; the whole segment is ignored.
    BadHeader {
        /// The segment number in the file name.
        segment: u64,
        /// What is wrong with the header.
        reason: String,
    },
    /// Segments `first..=last` are missing: the log's `MANIFEST` says they were written
    /// and not removed, or segments on both sides of them exist. One problem per run of
    /// missing numbers. When every segment is missing, [`Scan::segments`] is empty.
    MissingSegments {
        /// The first missing segment number.
        first: u64,
        /// The last missing segment number of the run.
        last: u64,
    },
    /// The `MANIFEST` file cannot be read or is damaged, so segments deleted from the log
    /// may go unnoticed; gaps between the segments present are still found.
    Manifest {
        /// What is wrong with it.
        reason: String,
    },
    /// A file or directory entry could not be read.
    Unreadable {
        /// The file (or the directory, for an entry that could not be listed).
        path: PathBuf,
        /// The error.
        reason: String,
    },
}

impl Problem {
    /// Whether this problem means that entries once written may be lost: everything but
    /// a [`Problem::TornTail`], which is what a crash during an append leaves (the entry
    /// being appended was never complete).
    pub fn is_damage(&self) -> bool {
        !matches!(self, Problem::TornTail { .. })
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::TornTail { segment, offset } => write!(
                f,
                "segment {segment}: an incomplete entry at offset {offset}, as a crash during a \
                 write leaves it (not damage: that entry was never complete)"
            ),
            Problem::DamagedTail { segment, offset } => write!(
                f,
                "segment {segment}: the bytes from offset {offset} to its end are damaged (its \
                 writer went on to segment {}, so this is no torn write); any entries there \
                 are lost",
                segment.saturating_add(1)
            ),
            Problem::Corrupt {
                segment,
                offset,
                resumed_at,
                reason,
            } => write!(
                f,
                "segment {segment}: bytes {offset}..{resumed_at} are damaged ({reason}); \
                 the entries there are lost, the entries after them were read"
            ),
            Problem::Truncated {
                segment,
                len,
                expected,
            } => write!(
                f,
                "segment {segment}: the file was cut to {len} bytes (it was created with \
                 {expected}); entries after byte {len} are lost"
            ),
            Problem::BadHeader { segment, reason } => write!(
                f,
                "segment {segment}: its header is damaged ({reason}); every entry in it is lost"
            ),
            Problem::MissingSegments { first, last } if first == last => write!(
                f,
                "segment {first} is missing: it was written and never removed by rivulet, but \
                 its file is gone; every entry in it is lost"
            ),
            Problem::MissingSegments { first, last } => write!(
                f,
                "segments {first} to {last} are missing: they were written and never removed \
                 by rivulet, but their files are gone; every entry in them is lost"
            ),
            Problem::Manifest { reason } => write!(
                f,
                "the MANIFEST file is damaged or unreadable ({reason}): segments deleted from \
                 this log could go unnoticed"
            ),
            Problem::Unreadable { path, reason } => {
                write!(f, "could not read {}: {reason}", path.display())
            }
        }
    }
}

/// An error from the log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// An I/O operation failed.
    #[error("could not {operation} {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done, such as `"create lock file"` or `"msync"`.
        operation: &'static str,
        /// The error from the OS.
        #[source]
        source: std::io::Error,
    },
    /// Another [`LogWriter`] holds the directory's lock.
    #[error("log directory {} is locked by another writer", dir.display())]
    Locked {
        /// The directory.
        dir: PathBuf,
    },
    /// The disk is full: a new segment could not be preallocated (the partial file was
    /// removed).
    #[error("no space for a new log segment {} ({needed} bytes)", path.display())]
    NoSpace {
        /// The segment that could not be created.
        path: PathBuf,
        /// Its size.
        needed: u64,
    },
    /// The payload is longer than a frame can describe.
    #[error("log entry of {len} bytes is too large (at most {max})")]
    EntryTooLarge {
        /// The payload length.
        len: u64,
        /// The largest payload allowed.
        max: u64,
    },
    /// `EntryKind(0)` was appended; it is reserved.
    #[error("entry kind 0 is reserved")]
    ReservedKind,
    /// [`LogWriter::remove_segment`] was asked to remove the current segment.
    #[error("segment {segment} is the current segment and cannot be removed")]
    SegmentInUse {
        /// The segment.
        segment: u64,
    },
    /// The segment numbers ran out (a segment numbered `u64::MAX` exists).
    #[error("no segment number left after u64::MAX")]
    SegmentNumberOverflow,
    /// The [`LogConfig`] is not usable.
    #[error("invalid log config: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },
}

impl LogError {
    fn io(operation: &'static str, path: &Path, source: std::io::Error) -> LogError {
        LogError::Io {
            path: path.to_path_buf(),
            operation,
            source,
        }
    }

    /// Whether this is an I/O error because a file or directory does not exist (as from
    /// [`scan`] on a directory that does not exist).
    pub fn is_not_found(&self) -> bool {
        matches!(self, LogError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

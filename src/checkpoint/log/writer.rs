//! The log writer: owns a directory, appends frames to the current segment, rolls to new
//! segments, syncs, and removes old segments.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use super::frame::{FRAME_HEADER_LEN, HEADER_LEN, MAX_PAYLOAD};
use super::manifest::{self, Manifest, ManifestFile};
use super::segment::Segment;
use super::{dir, Durability, EntryKind, Location, LogConfig, LogError};

/// The smallest [`LogConfig::segment_bytes`] accepted: a header and one empty frame.
pub const MIN_SEGMENT_BYTES: u64 = (HEADER_LEN + FRAME_HEADER_LEN) as u64;

/// Appends entries to a log directory.
///
/// A `LogWriter` owns its directory for as long as it lives: it holds an exclusive lock on
/// the directory's `LOCK` file, which is what lets the segment it maps be written safely
/// (see the module docs). It writes only to the segment it created; it never appends to a
/// segment left by an earlier writer, which may end in a torn entry.
///
/// Dropping the writer unmaps the current segment and releases the lock. It does not
/// sync: what was appended survives a process crash either way (mapped pages belong to
/// the page cache), but only [`LogWriter::sync`] with [`Durability::Msync`] makes it
/// survive power loss.
#[derive(Debug)]
pub struct LogWriter {
    dir: PathBuf,
    config: LogConfig,
    current: Segment,
    segments: BTreeSet<u64>,
    /// The oldest segment the `MANIFEST` says should exist.
    first: u64,
    /// The `MANIFEST`, rewritten after each new segment and before removals.
    manifest: ManifestFile,
    /// Held for the writer's life; the lock is released when the file is closed.
    _lock: File,
}

/// The exclusive lock on a log directory, taken before anything in it is written.
///
/// A query takes it before it opens its sinks, so that a second process started on the
/// same checkpoint directory is refused before it could touch the first one's output.
#[derive(Debug)]
pub struct DirLock {
    dir: PathBuf,
    file: File,
    /// What [`acquire`](Self::acquire) created.
    created: LockUndo,
}

/// What [`DirLock::acquire`] created: the `LOCK` file and the directories that did not
/// exist (deepest first). [`run`](Self::run) removes them again.
#[derive(Debug, Clone, Default)]
pub struct LockUndo {
    lock_file: Option<PathBuf>,
    dirs: Vec<PathBuf>,
}

impl LockUndo {
    /// Removes the `LOCK` file and then each created directory that is still empty.
    /// Best effort: what cannot be removed stays. Run it only once the lock is released
    /// (the [`DirLock`] or the [`LogWriter`] holding it dropped).
    pub fn run(self) {
        if let Some(lock_file) = self.lock_file {
            let _ = std::fs::remove_file(lock_file);
        }
        for dir in self.dirs {
            if std::fs::remove_dir(&dir).is_err() {
                break;
            }
        }
    }
}

impl DirLock {
    /// Creates `dir` if it is missing and locks its `LOCK` file (created if missing;
    /// nothing else in the directory changes).
    ///
    /// # Errors
    ///
    /// [`LogError::Locked`] if another writer (in this process or another) holds the
    /// directory; [`LogError::Io`] if it cannot be created or locked.
    pub fn acquire(dir: &Path) -> Result<DirLock, LogError> {
        let created_dirs: Vec<PathBuf> = dir
            .ancestors()
            .take_while(|ancestor| !ancestor.as_os_str().is_empty() && !ancestor.exists())
            .map(Path::to_path_buf)
            .collect();
        std::fs::create_dir_all(dir)
            .map_err(|source| LogError::io("create log directory", dir, source))?;
        let lock_path = dir.join(dir::LOCK_FILE);
        let created_lock = !lock_path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|source| LogError::io("create lock file", &lock_path, source))?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock {
                dir: dir.to_path_buf(),
                file,
                created: LockUndo {
                    lock_file: created_lock.then_some(lock_path),
                    dirs: created_dirs,
                },
            }),
            Err(TryLockError::WouldBlock) => Err(LogError::Locked {
                dir: dir.to_path_buf(),
            }),
            Err(TryLockError::Error(source)) => Err(LogError::io("lock", &lock_path, source)),
        }
    }
}

impl DirLock {
    /// Releases the lock and removes what [`acquire`](Self::acquire) created (the `LOCK`
    /// file, the directory if it is still empty): a query whose start failed leaves the
    /// directory as it found it. Best effort: a file that cannot be removed stays.
    pub fn release_and_undo(self) {
        let undo = self.undo();
        drop(self);
        undo.run();
    }

    /// What [`acquire`](Self::acquire) created, to remove after the lock is released by
    /// whoever holds it then.
    pub fn undo(&self) -> LockUndo {
        self.created.clone()
    }
}

impl LogWriter {
    /// Opens (creating it if missing) the log directory `dir` for writing, and starts a new
    /// segment numbered one past the highest segment already there or recorded in the
    /// directory's `MANIFEST` (0 in an empty directory; a deleted newest segment's number
    /// is not reused, so the gap stays visible). The new segment is preallocated to
    /// `config.segment_bytes`, then the `MANIFEST` records it.
    ///
    /// Leftover `*.log.tmp` files (a segment being preallocated when an earlier writer
    /// crashed) are removed.
    ///
    /// # Errors
    ///
    /// * [`LogError::InvalidConfig`] if `segment_bytes` is below [`MIN_SEGMENT_BYTES`].
    /// * [`LogError::Locked`] if another `LogWriter` (in this process or another) holds
    ///   the directory.
    /// * [`LogError::NoSpace`] if the disk cannot hold the new segment.
    /// * [`LogError::SegmentNumberOverflow`] if a segment numbered `u64::MAX` exists.
    /// * [`LogError::Io`] for any other failure (for example a directory that cannot be
    ///   created or written), naming the path and the operation.
    pub fn open(dir: &Path, config: LogConfig) -> Result<LogWriter, LogError> {
        LogWriter::open_locked(DirLock::acquire(dir)?, config)
    }

    /// [`open`](Self::open) on a directory already locked with [`DirLock::acquire`].
    ///
    /// # Errors
    ///
    /// As for [`open`](Self::open), but for the lock.
    pub fn open_locked(lock: DirLock, config: LogConfig) -> Result<LogWriter, LogError> {
        if config.segment_bytes < MIN_SEGMENT_BYTES {
            return Err(LogError::InvalidConfig {
                reason: format!(
                    "segment_bytes is {}, the minimum is {MIN_SEGMENT_BYTES}",
                    config.segment_bytes
                ),
            });
        }
        let DirLock {
            dir, file: lock, ..
        } = lock;
        let dir = dir.as_path();
        let listing = dir::list(dir)?;
        for temp in &listing.temps {
            std::fs::remove_file(temp)
                .map_err(|source| LogError::io("remove leftover temporary file", temp, source))?;
        }
        let segments: BTreeSet<u64> = listing.segments.iter().map(|(n, _)| *n).collect();
        // A damaged manifest was reported by recovery's scan; it is rewritten from what
        // is there.
        let recorded = manifest::read(dir).ok().flatten();
        let newest = segments
            .last()
            .copied()
            .max(recorded.map(|manifest| manifest.last));
        let number = match newest {
            None => 0,
            Some(last) => last.checked_add(1).ok_or(LogError::SegmentNumberOverflow)?,
        };
        let current = Segment::create(dir, number, config.segment_bytes, false, config.durability)?;
        let manifest = ManifestFile::open(dir, config.durability)?;
        let first = recorded
            .map(|manifest| manifest.first)
            .or(segments.first().copied())
            .unwrap_or(number);
        let mut writer = LogWriter {
            dir: dir.to_path_buf(),
            config,
            current,
            segments,
            first,
            manifest,
            _lock: lock,
        };
        writer.segments.insert(number);
        writer.write_manifest()?;
        Ok(writer)
    }

    /// Records the segments that should exist, `first..=current`, in the `MANIFEST`.
    fn write_manifest(&mut self) -> Result<(), LogError> {
        let manifest = Manifest {
            first: self.first,
            last: self.current.number(),
        };
        self.manifest.write(manifest)
    }

    /// Appends one entry and returns where it starts.
    ///
    /// If the entry does not fit in the current segment, the writer first rolls to a new
    /// segment (with [`Durability::Msync`], syncing what is left unsynced in the old one).
    /// The new segment is `segment_bytes` long, or just long enough for this entry if
    /// that is more.
    ///
    /// The entry survives a process crash as soon as this returns; it survives power loss
    /// after the next [`LogWriter::sync`] (with [`Durability::Msync`]).
    ///
    /// # Errors
    ///
    /// * [`LogError::ReservedKind`] if `kind` is `EntryKind(0)`.
    /// * [`LogError::EntryTooLarge`] if the payload is longer than `u32::MAX` bytes.
    /// * Rolling can fail like [`LogWriter::open`] ([`LogError::NoSpace`],
    ///   [`LogError::Io`], [`LogError::SegmentNumberOverflow`]); the entry is then not
    ///   written and the writer stays on its current segment, so the call can be retried.
    pub fn append(&mut self, kind: EntryKind, payload: &[u8]) -> Result<Location, LogError> {
        if kind.0 == 0 {
            return Err(LogError::ReservedKind);
        }
        let len = payload.len() as u64;
        if len > MAX_PAYLOAD {
            return Err(LogError::EntryTooLarge {
                len,
                max: MAX_PAYLOAD,
            });
        }
        let needed = FRAME_HEADER_LEN + payload.len();
        if needed > self.current.remaining() {
            self.roll(needed as u64)?;
        }
        let offset = self.current.append(kind.0, payload);
        Ok(Location {
            segment: self.current.number(),
            offset,
        })
    }

    fn roll(&mut self, frame_len: u64) -> Result<(), LogError> {
        if self.config.durability == Durability::Msync {
            self.current.flush()?;
        }
        let number = self
            .current
            .number()
            .checked_add(1)
            .ok_or(LogError::SegmentNumberOverflow)?;
        let size = self.config.segment_bytes.max(HEADER_LEN as u64 + frame_len);
        self.current = Segment::create(&self.dir, number, size, true, self.config.durability)?;
        self.segments.insert(number);
        self.write_manifest()
    }

    /// Makes the entries appended so far durable, as [`LogConfig::durability`] says:
    /// with [`Durability::Msync`], writes what was appended since the last sync to disk
    /// (remap, unmap, `fdatasync`); with
    /// [`Durability::OsBuffered`], does nothing.
    ///
    /// # Errors
    ///
    /// [`LogError::Io`] if mapping the segment again or `fdatasync` fails.
    pub fn sync(&mut self) -> Result<(), LogError> {
        match self.config.durability {
            Durability::Msync => self.current.flush(),
            Durability::OsBuffered => Ok(()),
        }
    }

    /// The number of the segment being appended to.
    pub fn current_segment(&self) -> u64 {
        self.current.number()
    }

    /// The segment numbers in the directory, ascending, the current one included: those
    /// found when the writer opened, plus those it created, less those it removed.
    pub fn segments(&self) -> Vec<u64> {
        self.segments.iter().copied().collect()
    }

    /// Deletes segment `segment`'s file (retention: remove segments once newer complete
    /// epochs exist). As [`remove_segments`](Self::remove_segments) with one segment.
    ///
    /// # Errors
    ///
    /// As [`remove_segments`](Self::remove_segments).
    pub fn remove_segment(&mut self, segment: u64) -> Result<(), LogError> {
        self.remove_segments(&[segment])
    }

    /// Deletes the files of `segments` (retention). Remove from the oldest on: the
    /// `MANIFEST` then records the oldest segment left, once for the whole call and
    /// before any file goes; a removed segment between two others shows as a
    /// [`Problem::MissingSegments`](super::Problem::MissingSegments) in later scans.
    ///
    /// # Errors
    ///
    /// * [`LogError::SegmentInUse`] if `segments` holds the current segment (nothing is
    ///   removed).
    /// * [`LogError::Io`] if the manifest cannot be written (nothing is removed) or a
    ///   file cannot be removed (including when it does not exist; those before it in
    ///   `segments` are removed).
    pub fn remove_segments(&mut self, segments: &[u64]) -> Result<(), LogError> {
        if segments.contains(&self.current.number()) {
            return Err(LogError::SegmentInUse {
                segment: self.current.number(),
            });
        }
        let left = self
            .segments
            .iter()
            .copied()
            .find(|number| !segments.contains(number))
            .expect("the current segment is left");
        if left > self.first {
            // Before any file goes: a manifest that still named a removed segment would
            // report it missing after a crash.
            let old_first = std::mem::replace(&mut self.first, left);
            if let Err(error) = self.write_manifest() {
                self.first = old_first;
                return Err(error);
            }
        }
        for &segment in segments {
            let path = dir::segment_path(&self.dir, segment);
            // No directory fsync: if a power failure undoes the removal, the old segment
            // comes back (below the manifest's first, not a gap) and is removed again
            // later.
            std::fs::remove_file(&path)
                .map_err(|source| LogError::io("remove segment", &path, source))?;
            self.segments.remove(&segment);
        }
        Ok(())
    }

    /// The log directory, as given to [`LogWriter::open`].
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration the writer was opened with.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }
}

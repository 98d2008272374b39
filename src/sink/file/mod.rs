//! An exactly-once file sink: every epoch's records land in one part file per sink
//! instance, published atomically once the epoch is complete (Spark's `file` sink).
//!
//! # Layout
//!
//! One directory per sink, shared by its instances (and by later runs of the query):
//!
//! | name | what it is |
//! |---|---|
//! | `part-{epoch:010}-{instance:03}.{csv,jsonl}` | an epoch's published output |
//! | `.part-{epoch:010}-{instance:03}.{csv,jsonl}.tmp` | an epoch's output being written or staged |
//! | `_commits/{epoch:010}-{instance:03}` | the commit marker of that part file: JSON with the file name and record count |
//!
//! Queries without checkpoints start at epoch 1 every run, so their names carry a run
//! id, `{start time in µs:016}-{pid}`, before the epoch: `part-{run}-{epoch:010}-{instance:03}.csv`
//! and `_commits/{run}-{epoch:010}-{instance:03}`. Runs never overwrite each other.
//!
//! # Commit protocol
//!
//! Records of an epoch are encoded ([`FileFormat`]) into the hidden temporary file as
//! they arrive. At the epoch's end, [`Sink::prepare_commit`] flushes and fsyncs it, and
//! returns the second phase, which the engine runs once the epoch is complete: rename the
//! file into place, fsync the directory, then write the commit marker (temporary file,
//! fsync, rename, fsync of `_commits/`). A part file counts as committed only once its
//! marker exists, so **readers must list committed files through the markers**
//! ([`committed_parts`], [`read_committed`]), never by globbing `part-*`: a crash between
//! the rename and the marker leaves a part file that is not (yet) committed.
//!
//! # Exactly once
//!
//! In a checkpointed query an epoch number names the same records in every run. When
//! the query restarts, [`Sink::open`] reads this instance's markers, and an epoch that is
//! replayed after it was already committed is recognised in
//! [`Sink::begin_epoch`]: its records are dropped and nothing is written for it. `open`
//! also removes what a crashed run of this instance left behind: temporary files and part
//! files without a marker (their epochs are replayed, so they are written again).
//!
//! Skipping is decided per instance, so it relies on a replayed epoch reaching each
//! instance with the records that instance had before: the sink's parallelism must not
//! change across a restart.
//!
//! # Output modes
//!
//! In [`OutputMode::Append`](crate::OutputMode::Append) and
//! [`Update`](crate::OutputMode::Update) each epoch's files hold the rows emitted in that
//! epoch. In [`Complete`](crate::OutputMode::Complete) the engine sends the whole result
//! table every epoch, so each epoch's files together are the full table as of that
//! epoch: read the newest epoch's ([`CommittedPart::epoch`]).
//!
//! # One writer per directory
//!
//! A directory belongs to one sink of one query at a time: `open` removes the
//! uncommitted files of its instance, which would break another query writing there.
//!
//! # Example
//!
//! Driving the sink by hand, as the engine does:
//!
//! ```
//! use rivulet::sink::file::read_committed;
//! use rivulet::sink::{FileFormat, FileSink, Sink, SinkContext};
//! use rivulet::trigger::EmitMode;
//! use rivulet::Epoch;
//!
//! #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
//! struct Click {
//!     user: String,
//!     page: u32,
//! }
//!
//! let dir = tempfile::tempdir()?;
//! let mut sink = FileSink::new(dir.path(), FileFormat::Csv);
//! sink.open(&SinkContext::new("clicks", 0, 1).epochs(true).checkpointed(true))?;
//! sink.begin_epoch(Epoch(1), EmitMode::default())?;
//! sink.write(Click { user: "ada".into(), page: 3 })?;
//! let commit = sink.prepare_commit(Epoch(1))?.expect("epoch 1 has records");
//! // Nothing is visible before the engine runs the commit.
//! assert!(read_committed::<Click>(dir.path(), FileFormat::Csv)?.is_empty());
//! commit()?;
//! let rows: Vec<Click> = read_committed(dir.path(), FileFormat::Csv)?;
//! assert_eq!(rows, [Click { user: "ada".into(), page: 3 }]);
//! # Ok::<(), rivulet::error::BoxError>(())
//! ```

mod commit_log;
mod error;
mod format;
#[cfg(test)]
mod tests;

pub use commit_log::CommittedPart;
pub use error::FileSinkError;

use super::{EpochCommit, Sink, SinkContext};
use crate::error::BoxError;
use crate::event::Epoch;
use crate::trigger::{EmitMode, ExecutionMode};
use commit_log::{CommitMarker, Entry, PartId, COMMITS_DIR};
use format::{EncodeError, RecordWriter};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::fs::{self, File};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How a [`FileSink`] encodes records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileFormat {
    /// Comma-separated values (extension `csv`), encoded with the `csv` crate's serde
    /// support. Each part file starts with a header row when the record type has field
    /// names (a struct); tuples and scalars have none. Records must be flat: the csv
    /// crate refuses maps, and cannot name the columns of a struct inside a struct.
    Csv,
    /// One JSON value per line (extension `jsonl`): an object for a struct, an array
    /// for a tuple.
    JsonLines,
}

impl FileFormat {
    /// The part files' extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::JsonLines => "jsonl",
        }
    }

    /// The format with this extension.
    fn from_extension(extension: &str) -> Option<FileFormat> {
        match extension {
            "csv" => Some(FileFormat::Csv),
            "jsonl" => Some(FileFormat::JsonLines),
            _ => None,
        }
    }
}

impl fmt::Display for FileFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileFormat::Csv => "CSV",
            FileFormat::JsonLines => "JSON lines",
        })
    }
}

/// Writes records of type `T` into part files in one directory, exactly once per epoch
/// in checkpointed queries (see the [module docs](self) for the layout and protocol).
///
/// [`write`](Sink::write) encodes into a buffer and allocates nothing per record;
/// [`flush`](Sink::flush) does nothing, since no output is visible before its epoch
/// commits (and [`prepare_commit`](Sink::prepare_commit) makes it durable).
///
/// Errors name the path involved and come back as [`FileSinkError`] (boxed): a full disk
/// or a file size limit fails the query, nothing is dropped silently. After an error the
/// epoch's temporary file is abandoned (it is removed by the next `open`).
pub struct FileSink<T> {
    dir: PathBuf,
    format: FileFormat,
    /// Run ids for queries without checkpoints, shared by the clones of one sink.
    runs: Arc<Mutex<RunIds>>,
    /// Set by `open`.
    state: Option<Opened>,
    _records: PhantomData<fn(T)>,
}

impl<T> fmt::Debug for FileSink<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSink")
            .field("dir", &self.dir)
            .field("format", &self.format)
            .field("instance", &self.state.as_ref().map(|state| state.instance))
            .finish_non_exhaustive()
    }
}

impl<T> Clone for FileSink<T> {
    /// Another, unopened instance writing to the same directory (the engine clones one
    /// per parallel instance before opening them).
    fn clone(&self) -> Self {
        FileSink {
            dir: self.dir.clone(),
            format: self.format,
            runs: self.runs.clone(),
            state: None,
            _records: PhantomData,
        }
    }
}

impl<T> FileSink<T> {
    /// A sink writing `format` part files into the directory `dir`, which `open` creates
    /// if needed (with its parents).
    pub fn new(dir: impl AsRef<Path>, format: FileFormat) -> Self {
        FileSink {
            dir: dir.as_ref().to_path_buf(),
            format,
            runs: Arc::default(),
            state: None,
            _records: PhantomData,
        }
    }

    /// The sink's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The sink's file format.
    pub fn format(&self) -> FileFormat {
        self.format
    }

    /// The run id for `instance`: the clones opened for one run share it, so one run's
    /// files sort together. An instance opened a second time starts a new run.
    fn run_id(&self, instance: usize) -> String {
        let mut runs = self
            .runs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let runs = &mut *runs;
        let current = match &runs.current {
            Some(current) if !runs.opened.contains(&instance) => current.clone(),
            _ => {
                runs.opened.clear();
                let fresh = commit_log::new_run_id();
                runs.current = Some(fresh.clone());
                fresh
            }
        };
        runs.opened.insert(instance);
        current
    }
}

/// Run ids handed to the instances of one sink (queries without checkpoints only).
#[derive(Debug, Default)]
struct RunIds {
    /// The run id of the run being opened.
    current: Option<String>,
    /// Instances opened with `current`.
    opened: HashSet<usize>,
}

/// An opened instance.
#[derive(Debug)]
struct Opened {
    instance: usize,
    /// The run id, without checkpoints.
    run: Option<String>,
    /// The epoch of records that arrive before any `begin_epoch`.
    first_epoch: Epoch,
    /// Epochs this instance committed in an earlier run, from `first_epoch` on (only in
    /// checkpointed queries): replays, to be skipped.
    committed: BTreeSet<u64>,
    epoch: EpochState,
}

/// Where an instance is in its epoch cycle.
#[derive(Debug)]
enum EpochState {
    /// Before the first epoch (`last` is `None`), or after `prepare_commit(last)`.
    Between { last: Option<Epoch> },
    /// Taking the records of `epoch`; the temporary file is created with the first one
    /// (boxed: once per epoch, and it keeps this enum small).
    Writing {
        epoch: Epoch,
        part: Option<Box<Part>>,
    },
    /// `epoch` was committed by an earlier run: its records are dropped.
    Replayed { epoch: Epoch },
}

/// The temporary file of the epoch being written.
struct Part {
    id: PartId,
    temp: PathBuf,
    writer: RecordWriter<File>,
}

impl fmt::Debug for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Part").field("temp", &self.temp).finish()
    }
}

impl Part {
    #[inline]
    fn write<T: Serialize>(&mut self, record: &T) -> Result<(), BoxError> {
        match self.writer.write(record) {
            Ok(()) => Ok(()),
            Err(error) => Err(encode_error(error, &self.temp).into()),
        }
    }
}

#[cold]
fn encode_error(error: EncodeError, path: &Path) -> FileSinkError {
    match error {
        EncodeError::Io(source) => FileSinkError::io("write", path, source),
        EncodeError::Format(source) => FileSinkError::Encode {
            path: path.to_path_buf(),
            source,
        },
    }
}

#[cold]
fn protocol_error(dir: &Path, message: String) -> BoxError {
    FileSinkError::Protocol {
        path: dir.to_path_buf(),
        message,
    }
    .into()
}

impl<T: Serialize + 'static> Sink<T> for FileSink<T> {
    /// Creates the directory (and `_commits/`) if needed and checks that both are
    /// writable, by creating and removing a probe file. In a checkpointed query, reads
    /// the epochs this instance committed before; removes what a crashed run of this
    /// instance left uncommitted.
    ///
    /// # Errors
    ///
    /// [`FileSinkError::NotADirectory`] when the path is a file;
    /// [`FileSinkError::Io`] when a directory cannot be created, is not writable or
    /// cannot be listed.
    fn open(&mut self, context: &SinkContext) -> Result<(), BoxError> {
        self.state = None;
        let run = (!context.checkpointed).then(|| self.run_id(context.instance));
        let committed = prepare_dir(&self.dir, context.instance)?;
        let committed = if context.checkpointed {
            committed
                .into_iter()
                .filter(|id| id.run.is_none() && id.epoch >= context.first_epoch.0)
                .map(|id| id.epoch)
                .collect()
        } else {
            // Epoch numbers of another run name other records.
            BTreeSet::new()
        };
        self.state = Some(Opened {
            instance: context.instance,
            run,
            first_epoch: context.first_epoch,
            committed,
            epoch: EpochState::Between { last: None },
        });
        Ok(())
    }

    /// Starts `epoch`; if this instance committed it in an earlier run (a replay after
    /// a restart), its records will be dropped.
    ///
    /// # Errors
    ///
    /// [`FileSinkError::Protocol`] before `open`, or when the previous epoch holds records
    /// that were never prepared.
    fn begin_epoch(&mut self, epoch: Epoch, mode: EmitMode) -> Result<(), BoxError> {
        // Every output mode writes what it receives: in complete mode that is the whole
        // table. Only a micro-batch is replayed with exactly the records it had (its
        // offsets were logged before it ran), so only a micro-batch this instance
        // already committed is skipped. A continuous epoch replayed after a crash may
        // hold other records (markers of several inputs are not aligned), so it is
        // written again and its commit replaces the earlier one: at-least-once.
        let replayable = mode.execution == ExecutionMode::MicroBatch;
        let Some(state) = &mut self.state else {
            return Err(protocol_error(&self.dir, "begin_epoch before open".into()));
        };
        if let EpochState::Writing {
            epoch: open,
            part: Some(_),
        } = &state.epoch
        {
            return Err(protocol_error(
                &self.dir,
                format!(
                    "epoch {} began while epoch {} holds records that were never prepared",
                    epoch.0, open.0
                ),
            ));
        }
        // Epochs only go up: what lies below `epoch` is never asked about again.
        while state
            .committed
            .first()
            .is_some_and(|&first| first < epoch.0)
        {
            state.committed.pop_first();
        }
        state.epoch = if state.committed.remove(&epoch.0) && replayable {
            EpochState::Replayed { epoch }
        } else {
            EpochState::Writing { epoch, part: None }
        };
        Ok(())
    }

    /// Encodes `record` into the epoch's temporary file (created with the epoch's first
    /// record). Records of a replayed epoch are dropped. Records that arrive before any
    /// `begin_epoch` belong to the context's `first_epoch`.
    ///
    /// # Errors
    ///
    /// [`FileSinkError::Io`] when the file cannot be created or written (a full disk, a
    /// file size limit), [`FileSinkError::Encode`] when the record does not fit the
    /// format, [`FileSinkError::Protocol`] before `open` or between `prepare_commit` and
    /// the next `begin_epoch`.
    #[inline]
    fn write(&mut self, record: T) -> Result<(), BoxError> {
        if let Some(Opened {
            epoch: EpochState::Writing {
                part: Some(part), ..
            },
            ..
        }) = &mut self.state
        {
            return part.write(&record);
        }
        self.write_cold(&record)
    }

    /// Does nothing: output becomes visible only when its epoch commits, and
    /// [`prepare_commit`](Sink::prepare_commit) makes it durable. Until then the encoder's
    /// buffer reaches the file whenever it fills.
    fn flush(&mut self) -> Result<(), BoxError> {
        Ok(())
    }

    /// Flushes and fsyncs the epoch's temporary file and returns the commit that
    /// publishes it (see the [module docs](self)).
    ///
    /// Returns `None` for an epoch without records, and for a replayed epoch. An empty
    /// epoch writes no part file and no marker, and that is safe: a replay of it is
    /// recognised by having nothing to skip. The engine replays an epoch with the same
    /// records, so a replay of an empty epoch is empty again and writes nothing; and if a
    /// replay ever did carry records, nothing of them was published before, so writing
    /// them duplicates nothing. Recording empty epochs would only cost two renames and
    /// three fsyncs per instance per idle epoch.
    ///
    /// # Errors
    ///
    /// [`FileSinkError::Io`] when the file cannot be flushed or synced (a full disk);
    /// [`FileSinkError::Protocol`] when `epoch` is not the epoch in progress.
    fn prepare_commit(&mut self, epoch: Epoch) -> Result<Option<EpochCommit>, BoxError> {
        let Some(state) = &mut self.state else {
            return Err(protocol_error(
                &self.dir,
                "prepare_commit before open".into(),
            ));
        };
        let current =
            std::mem::replace(&mut state.epoch, EpochState::Between { last: Some(epoch) });
        match current {
            EpochState::Writing {
                epoch: open,
                part: Some(part),
            } if open == epoch => Ok(Some(stage(&self.dir, self.format, state, *part)?)),
            EpochState::Writing {
                epoch: open,
                part: None,
            }
            | EpochState::Replayed { epoch: open }
                if open == epoch =>
            {
                Ok(None)
            }
            EpochState::Writing { epoch: open, .. } | EpochState::Replayed { epoch: open } => {
                Err(protocol_error(
                    &self.dir,
                    format!(
                        "prepare_commit({}) while epoch {} is in progress",
                        epoch.0, open.0
                    ),
                ))
            }
            // Nothing arrived since the last prepare (or ever).
            EpochState::Between { .. } => Ok(None),
        }
    }

    /// Ends the instance. Records of an epoch that was never prepared (an aborted query)
    /// are abandoned in their temporary file, which the next `open` removes.
    fn close(&mut self) -> Result<(), BoxError> {
        if let Some(state) = &mut self.state {
            if let EpochState::Writing { epoch, .. } | EpochState::Replayed { epoch } = state.epoch
            {
                state.epoch = EpochState::Between { last: Some(epoch) };
            }
        }
        Ok(())
    }
}

impl<T: Serialize + 'static> FileSink<T> {
    /// The slow path of `write`: the epoch's first record, a replayed epoch, a record
    /// before `begin_epoch`, or a call out of order.
    #[cold]
    fn write_cold(&mut self, record: &T) -> Result<(), BoxError> {
        let Some(state) = &mut self.state else {
            return Err(protocol_error(&self.dir, "write before open".into()));
        };
        match &mut state.epoch {
            EpochState::Replayed { .. } => Ok(()),
            EpochState::Writing { epoch, part } => {
                let id = PartId {
                    run: state.run.clone(),
                    epoch: epoch.0,
                    instance: state.instance,
                };
                let temp = self.dir.join(id.temp_name(self.format));
                // `create` truncates: a leftover of this very file can only be an
                // abandoned attempt at the same epoch (`open` removed older ones).
                let file = File::create(&temp)
                    .map_err(|source| FileSinkError::io("create", &temp, source))?;
                part.insert(Box::new(Part {
                    id,
                    temp,
                    writer: RecordWriter::new(self.format, file),
                }))
                .write(record)
            }
            EpochState::Between { last: None } => {
                let first = state.first_epoch;
                Sink::<T>::begin_epoch(self, first, EmitMode::default())?;
                // Now inside an epoch (writing or replayed): this recurses once.
                self.write_cold(record)
            }
            EpochState::Between { last: Some(last) } => Err(protocol_error(
                &self.dir,
                format!(
                    "a record arrived after prepare_commit({}) and before the next begin_epoch",
                    last.0
                ),
            )),
        }
    }
}

/// The first phase of a commit: flush and fsync the temporary file, and return the
/// second phase.
fn stage(
    dir: &Path,
    format: FileFormat,
    state: &Opened,
    part: Part,
) -> Result<EpochCommit, BoxError> {
    let Part { id, temp, writer } = part;
    let finished = writer
        .finish()
        .map_err(|error| encode_error(error, &temp))?;
    finished
        .inner
        .sync_all()
        .map_err(|source| FileSinkError::io("sync", &temp, source))?;
    drop(finished.inner);
    let marker = CommitMarker {
        file: id.part_name(format),
        records: finished.records,
        epoch: id.epoch,
        instance: state.instance,
        run: id.run.clone(),
        header: finished.header,
    };
    let dir = dir.to_path_buf();
    Ok(Box::new(move || {
        commit_log::publish(&dir, &temp, &id, &marker)?;
        Ok(())
    }))
}

/// Creates and checks the directory for `instance` and cleans up after a crashed run of
/// it; returns the part ids this instance committed before.
fn prepare_dir(dir: &Path, instance: usize) -> Result<Vec<PartId>, FileSinkError> {
    // Any other problem with the path shows when the directory is created.
    if fs::metadata(dir).is_ok_and(|metadata| !metadata.is_dir()) {
        return Err(FileSinkError::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    let commits = dir.join(COMMITS_DIR);
    for path in [dir, commits.as_path()] {
        fs::create_dir_all(path)
            .map_err(|source| FileSinkError::io("create directory", path, source))?;
        if !fs::metadata(path).is_ok_and(|metadata| metadata.is_dir()) {
            return Err(FileSinkError::NotADirectory {
                path: path.to_path_buf(),
            });
        }
        let probe = path.join(format!(".probe-{instance:03}-{}", std::process::id()));
        File::create(&probe)
            .and_then(|_| fs::remove_file(&probe))
            .map_err(|source| FileSinkError::io("write into directory", path, source))?;
    }

    let remove = |path: PathBuf| {
        fs::remove_file(&path).map_err(|source| FileSinkError::io("remove", &path, source))
    };
    let mut committed = Vec::new();
    let mut committed_stems = HashSet::new();
    for entry in read_dir(&commits)? {
        let (name, path) = entry?;
        if let Some(stem) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) {
            // A marker whose writing was cut short: its commit did not happen.
            if PartId::parse_stem(stem).is_some_and(|id| id.instance == instance) {
                remove(path)?;
            }
        } else if let Some(id) = PartId::parse_stem(&name) {
            if id.instance == instance {
                committed_stems.insert(name);
                committed.push(id);
            }
        }
    }
    for entry in read_dir(dir)? {
        let (name, path) = entry?;
        match Entry::parse(&name) {
            Some(Entry::TempPart(id)) if id.instance == instance => remove(path)?,
            // Renamed into place, but the marker was never written: not committed.
            Some(Entry::Part(id, _))
                if id.instance == instance && !committed_stems.contains(&id.stem()) =>
            {
                remove(path)?
            }
            _ => {}
        }
    }
    Ok(committed)
}

/// The entries of `dir` with UTF-8 names, as `(name, path)`; other names are not the
/// sink's.
fn read_dir(
    dir: &Path,
) -> Result<impl Iterator<Item = Result<(String, PathBuf), FileSinkError>> + '_, FileSinkError> {
    let entries = fs::read_dir(dir).map_err(|source| FileSinkError::io("list", dir, source))?;
    Ok(entries.filter_map(move |entry| match entry {
        Ok(entry) => {
            let name = entry.file_name().into_string().ok()?;
            Some(Ok((name, entry.path())))
        }
        Err(source) => Some(Err(FileSinkError::io("list", dir, source))),
    }))
}

/// Lists the committed part files in `dir` (a [`FileSink`]'s directory), ordered by
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

/// Reads every committed record in `dir` (a [`FileSink`]'s directory) written as
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

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
//! | `_commits/{epoch:010}-{instance:03}` | the commit marker of that part file: JSON with the file name, record count and query id |
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
//! In a checkpointed query an epoch number names the same records in every run only for
//! the epoch that recovery *replays*: the one after the restored epoch, when the offset
//! log recorded its records before an earlier run ran it (a micro-batch). The engine
//! names it in [`SinkContext::replayed_epoch`], and [`Sink::begin_epoch`] drops its
//! records if this instance's commit marker for it exists: they were published before.
//! Nothing else is skipped. The mode of an epoch does not say it is a replay: a
//! micro-batch can be planned afresh under a number an earlier run already published
//! (a continuous run whose commit the query never recorded, restarted with a
//! micro-batch trigger), and then it holds other records.
//!
//! Skipping is decided per instance, so it relies on a replayed epoch reaching each
//! instance with the records that instance had before: the sink's parallelism must not
//! change across a restart.
//!
//! # Restarts
//!
//! Every commit marker of a checkpointed query carries the query's id
//! ([`SinkContext::query_id`], kept in the checkpoint log; [`CommittedPart::query`]).
//! [`Sink::open`] reads this instance's markers from the context's `first_epoch` on, and
//! the newest one before it, and:
//!
//! * refuses a directory holding another query's markers with
//!   [`FileSinkError::ForeignOutput`], which names the directory, and removes nothing.
//!   A query whose checkpoint directory was deleted is another query: its batches 1,
//!   2, … are not the old ones, so it may neither skip them nor write over the old files.
//!   Start it on an empty output directory, or restore the checkpoint directory.
//!   Markers written before markers carried a query id are taken for this query's
//!   when it was restored (`first_epoch` > 1), and refused when it starts afresh.
//! * *retires* every marker of its own from `first_epoch` on, except the replayed
//!   epoch's: the query never recorded those commits, so it runs those epochs again,
//!   with records that may differ or be none. The marker is removed first and
//!   `_commits/` fsynced, then the part file, so a reader never sees a marker without
//!   its file, a crash at any point leaves a consistent pair (the part file, if left,
//!   is uncommitted and removed by the next `open`), and an epoch that comes out empty
//!   this time leaves nothing of the old output published. A commit therefore never
//!   renames a file over a committed part; if it finds a marker for its part (a second
//!   writer on the directory) it fails with [`FileSinkError::ForeignOutput`].
//! * removes what a crashed run of this instance left behind: temporary files and
//!   part files without a marker.
//!
//! Continuous epochs have no offset entry, so they are never the replayed epoch: one
//! the query did not record as committed is run again after a crash and its old output
//! retired. Continuous output is at-least-once: with unaligned markers an instance's
//! epoch can hold records its sources emitted after the epoch's marker, and those come
//! again after a restore.
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
//! A directory belongs to one sink of one query: `open` removes the uncommitted files
//! of its instance, which would break another query writing there, and a checkpointed
//! query refuses markers of another (see [Restarts](#restarts)). Queries without
//! checkpoints may share a directory with each other (their names carry a run id).
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
use crate::trigger::EmitMode;
use commit_log::{CommitMarker, Entry, PartId, COMMITS_DIR};
use format::{EncodeError, RecordWriter};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
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
    /// The query id commit records are stamped with (checkpointed queries).
    query: Option<String>,
    /// The epoch of records that arrive before any `begin_epoch`.
    first_epoch: Epoch,
    /// The context's replayed epoch, if this instance published it in an earlier run of
    /// the query (only in checkpointed queries): its records are dropped.
    skip: Option<Epoch>,
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
    /// `epoch` is the replayed epoch and this instance published it in an earlier run:
    /// its records are dropped.
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
    /// writable, by creating and removing a probe file; removes what a crashed run of
    /// this instance left uncommitted. In a checkpointed query, also checks that the
    /// directory's commit records are this query's and retires (durably removes) the
    /// ones this run will write again: see [Restarts](self#restarts).
    ///
    /// # Errors
    ///
    /// [`FileSinkError::NotADirectory`] when the path is a file;
    /// [`FileSinkError::Io`] when a directory cannot be created, is not writable or
    /// cannot be listed; [`FileSinkError::ForeignOutput`] when the directory holds
    /// another query's output (nothing is removed then); [`FileSinkError::Corrupt`] for a
    /// commit record that cannot be read.
    fn open(&mut self, context: &SinkContext) -> Result<(), BoxError> {
        self.state = None;
        let run = (!context.checkpointed).then(|| self.run_id(context.instance));
        let skip = prepare_dir(&self.dir, context)?;
        self.state = Some(Opened {
            instance: context.instance,
            run,
            query: context.query_id.clone().filter(|_| context.checkpointed),
            first_epoch: context.first_epoch,
            skip,
            epoch: EpochState::Between { last: None },
        });
        Ok(())
    }

    /// Starts `epoch`. If it is the context's
    /// [`replayed_epoch`](SinkContext::replayed_epoch) and this instance published it in
    /// an earlier run, its records will be dropped. Every other epoch is written, in
    /// every mode: in complete mode that is the whole table.
    ///
    /// # Errors
    ///
    /// [`FileSinkError::Protocol`] before `open`, or when the previous epoch holds records
    /// that were never prepared.
    fn begin_epoch(&mut self, epoch: Epoch, _mode: EmitMode) -> Result<(), BoxError> {
        // Not the mode: a micro-batch may be planned afresh under a number an earlier
        // run used (after a continuous run, or when its offsets were never logged).
        // Only the replayed epoch holds exactly the records it had.
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
        state.epoch = if state.skip.take_if(|skip| *skip == epoch).is_some() {
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
    /// Returns `None` for an epoch without records, and for a skipped replay. An empty
    /// epoch writes no part file and no marker, and that is safe: an earlier run's
    /// output under the same number was retired by `open` (unless the epoch is the
    /// replay, whose records are the same, so empty again), and a later replay of it
    /// finds nothing to skip and writes whatever it holds, which nothing published
    /// before. Recording empty epochs would only cost two renames and three fsyncs per
    /// instance per idle epoch.
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
        query: state.query.clone(),
    };
    let dir = dir.to_path_buf();
    Ok(Box::new(move || {
        commit_log::publish(&dir, &temp, &id, &marker)?;
        Ok(())
    }))
}

/// Creates and checks the directory for the context's instance and cleans up after a
/// crashed run of it. In a checkpointed query, also judges the commit records (see
/// [`judge_records`]) and retires the stale ones; returns the replayed epoch if this
/// instance already published it.
///
/// Instance 0 also looks after instances at or beyond the parallelism, which an earlier
/// run with more instances may have left.
fn prepare_dir(dir: &Path, context: &SinkContext) -> Result<Option<Epoch>, FileSinkError> {
    let instance = context.instance;
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

    let mine = |id: &PartId| {
        id.instance == instance || (instance == 0 && id.instance >= context.parallelism)
    };
    let remove = |path: &Path| {
        fs::remove_file(path).map_err(|source| FileSinkError::io("remove", path, source))
    };
    // Markers being written when a run died: their commits did not happen.
    let mut cut_short = Vec::new();
    // The committed markers of our instances, by stem; checkpointed ones also by
    // (epoch, instance).
    let mut committed_stems = HashSet::new();
    let mut checkpointed = BTreeMap::new();
    for entry in read_dir(&commits)? {
        let (name, path) = entry?;
        if let Some(stem) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) {
            if PartId::parse_stem(stem).is_some_and(|id| mine(&id)) {
                cut_short.push(path);
            }
        } else if let Some(id) = PartId::parse_stem(&name) {
            if mine(&id) {
                if id.run.is_none() {
                    checkpointed.insert((id.epoch, id.instance), (name.clone(), path));
                }
                committed_stems.insert(name);
            }
        }
    }

    // Judged before anything is removed: a directory of another query stays untouched.
    let Verdict { skip, stale } = if context.checkpointed {
        judge_records(dir, context, &checkpointed)?
    } else {
        // Epoch numbers of another run name other records; names never collide.
        Verdict::default()
    };
    for path in &cut_short {
        remove(path)?;
    }
    // The marker goes first, durably: from then on the part file is uncommitted (and
    // removed below, or by the next `open` after a crash), so readers never see a
    // marker without its file, and no later crash brings the marker back.
    for (stem, path) in &stale {
        remove(path)?;
        committed_stems.remove(stem);
    }
    if !stale.is_empty() {
        commit_log::sync_dir(&commits)?;
    }

    let mut removed_parts = false;
    for entry in read_dir(dir)? {
        let (name, path) = entry?;
        match Entry::parse(&name) {
            Some(Entry::TempPart(id)) if mine(&id) => remove(&path)?,
            // Renamed into place, but the marker was never written (or was retired):
            // not committed.
            Some(Entry::Part(id, _)) if mine(&id) && !committed_stems.contains(&id.stem()) => {
                remove(&path)?;
                removed_parts = true;
            }
            _ => {}
        }
    }
    if removed_parts {
        commit_log::sync_dir(dir)?;
    }
    Ok(skip)
}

/// A commit record of one of our instances: its stem (the marker's name) and path.
type Record = (String, PathBuf);

/// What [`judge_records`] decided.
#[derive(Debug, Default)]
struct Verdict {
    /// The replayed epoch, if this instance published it: its records are dropped.
    skip: Option<Epoch>,
    /// Records to retire.
    stale: Vec<Record>,
}

/// Judges the checkpointed commit records of our instances, by `(epoch, instance)`,
/// from the point of view of the query starting with `context`.
///
/// * A record is this query's if it carries the context's query id. A record without
///   one (written before records carried it) is taken for this query's only when the
///   query was restored (`first_epoch` > 1): a query starting afresh cannot know who
///   wrote it. Any other record is another query's: [`FileSinkError::ForeignOutput`].
/// * Records from `first_epoch` on are read, and the newest one before it (it says who
///   wrote the history the query continues); older ones are not (a long-running
///   query's directory holds one per epoch and instance).
/// * From `first_epoch` on, the query has not recorded any commit, so it runs those
///   epochs again: the record of the replayed epoch by this instance is kept (its
///   records come again, the same ones, and are skipped); every other one is stale
///   (its epoch number will hold other records, or none) and is retired.
fn judge_records(
    dir: &Path,
    context: &SinkContext,
    records: &BTreeMap<(u64, usize), Record>,
) -> Result<Verdict, FileSinkError> {
    let first = context.first_epoch.0;
    let ours = context.query_id.as_deref();
    let restored = first > 1;
    let newest_before = records.range(..(first, 0)).next_back();
    let mut skip = None;
    let mut stale = Vec::new();
    for (&(epoch, instance), (stem, path)) in
        newest_before.into_iter().chain(records.range((first, 0)..))
    {
        let marker = commit_log::read_marker(path)?;
        let owner = marker.query.as_deref();
        if owner != ours && !(owner.is_none() && restored) {
            let this = ours.map_or_else(
                || "this sink was opened without a query id".to_string(),
                |ours| format!("this query is {ours}"),
            );
            let reason = match owner {
                Some(owner) => format!("was written by query {owner}; {this}"),
                None => format!(
                    "carries no query id (written before commit records did) and this \
                     query starts afresh, so it cannot be this query's; {this}"
                ),
            };
            return Err(FileSinkError::ForeignOutput {
                path: dir.to_path_buf(),
                record: path.clone(),
                reason,
            });
        }
        if epoch < first {
            continue;
        }
        if Some(Epoch(epoch)) == context.replayed_epoch && instance == context.instance {
            skip = Some(Epoch(epoch));
        } else {
            stale.push((stem.clone(), path.clone()));
        }
    }
    Ok(Verdict { skip, stale })
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

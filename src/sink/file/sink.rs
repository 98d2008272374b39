//! The [`FileSink`] itself: an instance's epoch cycle (open, begin, write, prepare) and
//! the two commit phases, staging on the operator thread and publishing on the
//! coordinator's. What `open` does to the directory is in `directory`.

use super::commit_log::{self, CommitMarker, PartId};
use super::directory::prepare_dir;
use super::format::{EncodeError, FileFormat, RecordWriter};
use super::FileSinkError;
use crate::error::BoxError;
use crate::event::Epoch;
use crate::sink::{EpochCommit, Sink, SinkContext};
use crate::trigger::EmitMode;
use serde::Serialize;
use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Writes records of type `T` into part files in one directory, exactly once per epoch
/// in checkpointed queries (see the [module docs](super) for the layout and protocol).
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
    pub(crate) fn run_id(&self, instance: usize) -> String {
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
pub(crate) fn encode_error(error: EncodeError, path: &Path) -> FileSinkError {
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
    /// ones this run will write again: see [Restarts](super#restarts).
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
    /// publishes it (see the [module docs](super)).
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

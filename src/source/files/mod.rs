//! The file directory source: Spark's `readStream.text(dir)` / `.csv(dir)` /
//! `.json(dir)`, reading the files that appear in a directory as records of a serde
//! type ([`FileSource`], configured by [`FileSourceConfig`], added with
//! [`QueryBuilder::read_dir`](crate::QueryBuilder::read_dir)).
//!
//! ```
//! use rivulet::source::FileSourceConfig;
//!
//! #[derive(Debug, serde::Deserialize)]
//! struct Sensor {
//!     resid: String,
//!     date: String,
//!     time: String,
//!     hz: f64,
//!     disp: f64,
//!     flow: f64,
//!     #[serde(rename = "sedPPM")]
//!     sed_ppm: f64,
//!     psi: f64,
//!     #[serde(rename = "chlPPM")]
//!     chl_ppm: f64,
//! }
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("sensor-1.csv"), "COHUTTA,3/10/14,1:01,10.27,1.73,881,1.56,85,1.94\n\
//!                                                  COHUTTA,3/10/14,1:02,9.67,1.731,882,0.52,0.4,1.79\n")?;
//! let mut query = rivulet::Query::builder();
//! let alerts = query
//!     .read_dir::<Sensor>("sensors", FileSourceConfig::csv(dir.path()))
//!     .filter(|row| row.psi < 0.5)
//!     .map(|row| format!("{} {} {}", row.resid, row.date, row.time))
//!     .to_memory("alerts");
//! let running = query.start()?;
//! while alerts.rows().is_empty() {
//!     std::thread::sleep(std::time::Duration::from_millis(5));
//! }
//! running.stop()?;
//! assert_eq!(alerts.rows(), ["COHUTTA 3/10/14 1:02"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Which files, in which order
//!
//! * Regular files directly in the directory (no recursion), whose names are UTF-8,
//!   match the [glob filter](FileSourceConfig::path_glob_filter) if one is set, and do
//!   not start with `.` or `_` or end with `._COPYING_` (hidden and temporary files, as
//!   Hadoop's listing that Spark uses skips them).
//! * The directory is listed when the source has read every file it knows, at most once
//!   per [poll interval](FileSourceConfig::poll_interval) (default 100 ms); between
//!   listings the source's thread sleeps until the next one is due (no busy loop). The
//!   files a listing finds are read in modification-time order, ties by name (newest
//!   first with [`latest_first`](FileSourceConfig::latest_first)); files found by a
//!   later listing come after them. At most
//!   [`max_files_per_trigger`](FileSourceConfig::max_files_per_trigger) files are
//!   started per micro-batch (per epoch in continuous mode; per poll interval in a
//!   query without checkpoints).
//! * **Files being written are not read half.** As in Spark, a file must be complete
//!   when its name appears: write it under a hidden name (`.name`, `_name`) or
//!   elsewhere on the same file system and rename it into the directory. As a safety
//!   for writers that cannot rename, [`settle_time`](FileSourceConfig::settle_time)
//!   takes only files whose modification time is at least that old (default zero: the
//!   rename rule alone, as Spark). A file is read once, to the end it has when the
//!   reader gets there (a last line without a newline is a line); a file taken is never
//!   read again, even if it changes later.
//!
//! ## Checkpoints: exactly once
//!
//! In a checkpointed query the source writes every file it takes, before reading it,
//! to its discovery log, `<checkpoint dir>/files-<name>/discovered.jsonl` (Spark's
//! file-source metadata log; `files-<name>-<i>` for instance `i > 0`), synced to disk
//! under [`Durability::Msync`](crate::checkpoint::Durability). The checkpoint offset
//! is a position in that list: files finished, and in the current file the byte offset
//! after the last record emitted, its line number and whether its CSV header was read.
//! A restarted query reads the files of the log from that position in the same order,
//! so an interrupted micro-batch replays the same records and nothing is skipped or
//! read twice (into a micro-batch [file sink](crate::sink::FileSink): every row
//! exactly once). A file the source had started that is missing, shorter than the
//! offset, or modified since, fails the start with an error naming it (restore the file,
//! or delete the checkpoint directory to start over). A file listed but not yet started
//! that has vanished is skipped and counted (`vanished_files`).
//!
//! ## Malformed records and faults
//!
//! Records are decoded by [`format::Decoder`](crate::format::Decoder): see
//! [`format`](crate::format) for Spark's three modes and the verdict on each kind of
//! malformed record. Every malformed record is counted in progress
//! ([`OperatorProgress::counters`](crate::query::OperatorProgress::counters) of the
//! source: `malformed_rows`; those dropped also in `dropped_rows`). Dropped records are
//! written to the quarantine file
//! `<quarantine dir or checkpoint dir>/_quarantine/<name>.jsonl` (`<name>-<i>.jsonl`
//! for instance `i > 0`), one JSON object per record with `file`, `line`, `field`,
//! `error` and `record`; without either directory they are only counted. The
//! quarantine file is flushed at every checkpoint; after a crash the records of a
//! replayed batch may be quarantined again (at least once, each entry naming its file
//! and line).
//!
//! | fault | what happens |
//! |---|---|
//! | the directory does not exist, or is not a directory | `start()` fails naming it |
//! | the directory or a file cannot be read (permissions) | `start()` fails (directory), or the query fails naming the file |
//! | a file deleted while it is read | it is read to the end (the open file stays readable) |
//! | a file truncated while it is read | the query fails naming the file, its old and new length |
//! | a file deleted before it is read | skipped, counted in `vanished_files` |
//! | a line longer than `max_record_bytes` (1 MiB) | a malformed record, skipped without holding it in memory |
//! | a binary file | lines split at `\n`/`\r`, invalid UTF-8 replaced: malformed records |
//! | the directory vanishes while the query runs | the query fails naming it |

mod listing;
mod log;

use self::listing::{Entry, Glob};
use self::log::DiscoveryLog;
use super::{Source, SourceContext, SourcePoll};
use crate::checkpoint::{codec, Durability};
use crate::error::BoxError;
use crate::event::Epoch;
use crate::format::{
    CsvOptions, DecodeOptions, Decoder, Format, InvalidUtf8, LineReader, Malformed, ParseMode,
    Verdict,
};
use crate::format::{RecordSeed, Typed};
use crate::metrics::Counter;
use crate::row::{Row, RowSeed, Schema};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The settings of a [`FileSource`]: the directory, the format, and Spark's file-source
/// options. Build it with [`csv`](Self::csv), [`json`](Self::json) or
/// [`text`](Self::text), then the options:
///
/// ```
/// use rivulet::format::{CsvOptions, ParseMode};
/// use rivulet::source::FileSourceConfig;
/// use std::time::Duration;
///
/// let config = FileSourceConfig::csv("/data/oil")
///     .csv_options(CsvOptions::default().header(true))
///     .mode(ParseMode::DropMalformed)
///     .max_files_per_trigger(4)
///     .path_glob_filter("*.csv")
///     .settle_time(Duration::from_secs(2));
/// assert_eq!(config.dir(), std::path::Path::new("/data/oil"));
/// ```
#[derive(Debug, Clone)]
pub struct FileSourceConfig {
    dir: PathBuf,
    format: Format,
    decode: DecodeOptions,
    max_files_per_trigger: Option<usize>,
    latest_first: bool,
    glob: Option<String>,
    settle: Duration,
    poll_interval: Duration,
    quarantine_dir: Option<PathBuf>,
}

impl FileSourceConfig {
    /// Files of `format` in `dir`, with the defaults: [`ParseMode::Permissive`], every
    /// file, oldest first, no settle time, listed every 100 ms.
    pub fn new(dir: impl AsRef<Path>, format: Format) -> Self {
        FileSourceConfig {
            dir: dir.as_ref().to_path_buf(),
            format,
            decode: DecodeOptions::default(),
            max_files_per_trigger: None,
            latest_first: false,
            glob: None,
            settle: Duration::ZERO,
            poll_interval: Duration::from_millis(100),
            quarantine_dir: None,
        }
    }

    /// CSV files (Spark's `readStream.csv(dir)`), with Spark's default [`CsvOptions`].
    pub fn csv(dir: impl AsRef<Path>) -> Self {
        Self::new(dir, Format::Csv(CsvOptions::default()))
    }

    /// JSON lines files (Spark's `readStream.json(dir)`).
    pub fn json(dir: impl AsRef<Path>) -> Self {
        Self::new(dir, Format::JsonLines)
    }

    /// Text files, one record per line (Spark's `readStream.text(dir)`).
    pub fn text(dir: impl AsRef<Path>) -> Self {
        Self::new(dir, Format::Text)
    }

    /// The CSV options (and the format, CSV).
    pub fn csv_options(mut self, options: CsvOptions) -> Self {
        self.format = Format::Csv(options);
        self
    }

    /// What happens to malformed records (Spark's `mode`; default
    /// [`ParseMode::Permissive`]).
    pub fn mode(mut self, mode: ParseMode) -> Self {
        self.decode = self.decode.mode(mode);
        self
    }

    /// The record type's field that receives the raw line of a malformed record in
    /// `Permissive` mode (Spark's `columnNameOfCorruptRecord`; default
    /// `_corrupt_record`; an `Option<String>`).
    pub fn corrupt_record_field(mut self, name: &str) -> Self {
        self.decode = self.decode.corrupt_record_field(name);
        self
    }

    /// What to do with bytes that are not UTF-8 (default: replace them, as Spark).
    pub fn invalid_utf8(mut self, policy: InvalidUtf8) -> Self {
        self.decode = self.decode.invalid_utf8(policy);
        self
    }

    /// The longest record (line) in bytes (default 1 MiB); a longer one is malformed
    /// and never held in memory whole.
    pub fn max_record_bytes(mut self, bytes: usize) -> Self {
        self.decode = self.decode.max_record_bytes(bytes);
        self
    }

    /// All decoding options at once.
    pub fn decode_options(mut self, options: DecodeOptions) -> Self {
        self.decode = options;
        self
    }

    /// Starts at most `files` new files per micro-batch (Spark's `maxFilesPerTrigger`;
    /// default: no limit). In continuous mode, per epoch; without checkpoints, per poll
    /// interval.
    pub fn max_files_per_trigger(mut self, files: usize) -> Self {
        self.max_files_per_trigger = Some(files.max(1));
        self
    }

    /// Reads the newest files of a listing first (Spark's `latestFirst`; default
    /// `false`): useful to catch up on a backlog with `max_files_per_trigger`.
    pub fn latest_first(mut self, latest_first: bool) -> Self {
        self.latest_first = latest_first;
        self
    }

    /// Reads only files whose names match `pattern` (Spark's `pathGlobFilter`): `*`,
    /// `?`, `[a-z]`, `[!a-z]`, `{csv,txt}`, `\` escapes. A bad pattern fails `start()`.
    pub fn path_glob_filter(mut self, pattern: &str) -> Self {
        self.glob = Some(pattern.to_string());
        self
    }

    /// Takes only files modified at least `settle` ago (default zero): a safety for
    /// writers that write files in place instead of renaming them in.
    pub fn settle_time(mut self, settle: Duration) -> Self {
        self.settle = settle;
        self
    }

    /// How often the directory is listed while there is nothing to read (default
    /// 100 ms; at least 1 ms).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Where the quarantine of dropped records goes: `<dir>/_quarantine/` (default: the
    /// checkpoint directory's).
    pub fn quarantine_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.quarantine_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// The directory read.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The format.
    pub fn format(&self) -> &Format {
        &self.format
    }
}

/// Why a [`FileSource`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileSourceError {
    /// A malformed record in [`ParseMode::FailFast`] (or a record type that cannot be
    /// decoded at all).
    #[error("malformed record in {file} at line {line}: {malformed} (record: {record:?})", file = file.display(), record = malformed.record)]
    Malformed {
        /// The file.
        file: PathBuf,
        /// The line number, from 1.
        line: u64,
        /// What is wrong, and with which field.
        malformed: Malformed,
    },
    /// Listing the directory, or opening, reading or checking a file failed.
    #[error("cannot {action} {path}: {source}", path = path.display())]
    Io {
        /// What the source was doing.
        action: &'static str,
        /// The directory or file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A file changed in a way the source cannot continue from: truncated while being
    /// read, or (at a restart) gone, shorter than the checkpoint's offset or modified.
    #[error("{path}: {reason}", path = path.display())]
    Changed {
        /// The file.
        path: PathBuf,
        /// What happened.
        reason: String,
    },
    /// The configuration or the record type cannot work.
    #[error("{0}")]
    Config(String),
}

impl FileSourceError {
    fn io(action: &'static str, path: &Path, source: io::Error) -> Self {
        FileSourceError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The checkpoint offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FilesOffset {
    /// Index (in discovery order) of the next file to start.
    next: u64,
    /// The file being read, if any.
    current: Option<Position>,
}

/// Where in the file being read the source is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Position {
    /// The file, as discovered.
    file: Entry,
    /// Its index in discovery order.
    index: u64,
    /// The byte after the last line read.
    byte: u64,
    /// Lines read.
    line: u64,
    /// The CSV header is still to come.
    header_pending: bool,
}

/// The file being read.
struct Reading {
    index: u64,
    entry: Entry,
    path: PathBuf,
    reader: LineReader<File>,
}

impl fmt::Debug for Reading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reading")
            .field("path", &self.path)
            .field("position", &self.reader.position())
            .field("line", &self.reader.lines_read())
            .finish()
    }
}

/// The source's counters, once opened.
#[derive(Debug)]
struct Counters {
    malformed: Arc<Counter>,
    dropped: Arc<Counter>,
    files: Arc<Counter>,
    vanished: Arc<Counter>,
}

/// Lines handled in one poll without a record before the source hands the thread back
/// (a file of blank or dropped lines must not hold off epochs and stops).
const LINES_PER_POLL: usize = 4096;

/// Reads the files appearing in a directory as records of `T` (see the
/// [module docs](self) for the rules). Add it with
/// [`QueryBuilder::read_dir`](crate::QueryBuilder::read_dir); several instances
/// ([`QueryBuilder::source_instances`](crate::QueryBuilder::source_instances)) share the
/// files by a hash of their names, each instance with its own order and offset.
pub struct FileSource<T, S = Typed<T>> {
    config: FileSourceConfig,
    decoder: Result<Decoder<T, S>, String>,
    glob: Option<Glob>,
    /// Every file taken, in reading order; `known` holds their names.
    discovered: Vec<Entry>,
    known: HashSet<String>,
    /// Index in `discovered` of the next file to start.
    next: usize,
    current: Option<Reading>,
    restored: Option<FilesOffset>,
    discovery_log: Option<DiscoveryLog>,
    instance: usize,
    instances: usize,
    /// When the directory may be listed again.
    next_listing: Option<Instant>,
    /// Files started in this round (for `max_files_per_trigger`) and when it began.
    round_files: usize,
    round_start: Instant,
    /// Whether rounds end at checkpoints (each epoch's marker) rather than every poll
    /// interval: set at `open` for a checkpointed query.
    rounds_per_epoch: bool,
    counters: Option<Counters>,
    quarantine_path: Option<PathBuf>,
    quarantine: Option<BufWriter<File>>,
}

impl<T, S> fmt::Debug for FileSource<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSource")
            .field("config", &self.config)
            .field("discovered", &self.discovered.len())
            .field("next", &self.next)
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned + Send + 'static> FileSource<T> {
    /// A source reading `config`'s directory. Nothing is touched until the query
    /// starts; a record type the format cannot fill, or a bad glob, fails `start()`.
    pub fn new(config: FileSourceConfig) -> Self {
        FileSource::with_seed(Typed::new(), config)
    }
}

impl FileSource<Row, RowSeed> {
    /// A source reading `config`'s directory as rows of `schema` (Spark's
    /// `readStream.schema(userSchema)`): see [`RowSeed`] for how columns are filled.
    pub fn with_schema(schema: Arc<Schema>, config: FileSourceConfig) -> Self {
        FileSource::with_seed(RowSeed::new(schema), config)
    }
}

impl<T: Send + 'static, S: RecordSeed<Value = T>> FileSource<T, S> {
    /// A source reading `config`'s directory, building records with `seed`.
    pub fn with_seed(seed: S, config: FileSourceConfig) -> Self {
        let decoder = Decoder::with_seed(seed, &config.format, &config.decode).map_err(|e| e.0);
        let glob = config.glob.as_deref().map(Glob::new);
        let (glob, decoder) = match glob {
            Some(Err(message)) => (None, Err(format!("bad path_glob_filter: {message}"))),
            Some(Ok(glob)) => (Some(glob), decoder),
            None => (None, decoder),
        };
        FileSource {
            config,
            decoder,
            glob,
            discovered: Vec::new(),
            known: HashSet::new(),
            next: 0,
            current: None,
            restored: None,
            discovery_log: None,
            instance: 0,
            instances: 1,
            next_listing: None,
            round_files: 0,
            round_start: Instant::now(),
            rounds_per_epoch: false,
            counters: None,
            quarantine_path: None,
            quarantine: None,
        }
    }

    /// Problems with the configuration or the record type that will fail `start()`.
    pub fn check(&self) -> Result<(), String> {
        self.decoder.as_ref().map(|_| ()).map_err(Clone::clone)
    }

    /// The directory read.
    pub fn dir(&self) -> &Path {
        &self.config.dir
    }

    /// Whether this instance reads `name` (instances share files by a hash of names).
    fn mine(&self, name: &str) -> bool {
        self.instances <= 1
            || crc32fast::hash(name.as_bytes()) as usize % self.instances == self.instance
    }

    /// Lists the directory and takes the new files (logging them first).
    fn list(&mut self) -> Result<(), FileSourceError> {
        let listed = {
            let (known, glob) = (&self.known, &self.glob);
            let this = &*self;
            listing::list(&self.config.dir, self.config.settle, |name| {
                !known.contains(name)
                    && glob.as_ref().is_none_or(|glob| glob.matches(name))
                    && this.mine(name)
            })
        }
        .map_err(|error| {
            if error.kind() == io::ErrorKind::NotFound {
                FileSourceError::Changed {
                    path: self.config.dir.clone(),
                    reason: "the directory is gone".into(),
                }
            } else {
                FileSourceError::io("list", &self.config.dir, error)
            }
        })?;
        let mut ready = listed.ready;
        let latest_first = self.config.latest_first;
        ready.sort_by(|a, b| listing::order(a, b, latest_first));
        if let Some(log) = &mut self.discovery_log {
            log.append(&ready).map_err(|error| {
                FileSourceError::io("write the discovery log of", &self.config.dir, error)
            })?;
        }
        for entry in ready {
            self.known.insert(entry.name.clone());
            self.discovered.push(entry);
        }
        Ok(())
    }

    /// Opens file `index` of `discovered` at `byte` (after `line` lines). `Ok(None)`:
    /// it vanished.
    fn open_file(
        &self,
        index: usize,
        byte: u64,
        line: u64,
    ) -> Result<Option<Reading>, FileSourceError> {
        let entry = self.discovered[index].clone();
        let path = self.config.dir.join(&entry.name);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(FileSourceError::io("open", &path, error)),
        };
        if byte > 0 {
            file.seek(SeekFrom::Start(byte))
                .map_err(|error| FileSourceError::io("seek in", &path, error))?;
        }
        let max = self.config.decode.max_record_len();
        Ok(Some(Reading {
            index: index as u64,
            entry,
            path,
            reader: LineReader::resume(file, max, byte, line),
        }))
    }

    /// The offset now.
    fn offset(&self) -> FilesOffset {
        let header_pending = self
            .decoder
            .as_ref()
            .is_ok_and(|decoder| decoder.header_pending());
        FilesOffset {
            next: self.next as u64,
            current: self.current.as_ref().map(|reading| Position {
                file: reading.entry.clone(),
                index: reading.index,
                byte: reading.reader.position(),
                line: reading.reader.lines_read(),
                header_pending,
            }),
        }
    }

    /// Applies the restored offset (in `open`, once the discovery log is read).
    fn apply_restored(&mut self, offset: FilesOffset) -> Result<(), FileSourceError> {
        let known = self.discovered.len() as u64;
        let needed = offset.current.as_ref().map_or(offset.next, |p| p.index + 1);
        if needed > known {
            return Err(FileSourceError::Config(format!(
                "the checkpoint has read {needed} files of {}, but its discovery log lists \
                 only {known}: the checkpoint directory is incomplete",
                self.config.dir.display()
            )));
        }
        self.next = offset.next as usize;
        if let Some(position) = offset.current {
            let index = position.index as usize;
            let path = self.config.dir.join(&position.file.name);
            if self.discovered[index].name != position.file.name {
                return Err(FileSourceError::Config(format!(
                    "the checkpoint reads {} as file {index}, the discovery log has {}: the \
                     checkpoint directory is inconsistent",
                    position.file.name, self.discovered[index].name
                )));
            }
            let gone = |reason: String| FileSourceError::Changed {
                path: path.clone(),
                reason: format!(
                    "{reason}; the checkpoint had read it up to line {} (byte {}): restore \
                     the file, or delete the checkpoint directory to start over",
                    position.line, position.byte
                ),
            };
            let metadata = match std::fs::metadata(&path) {
                Ok(metadata) => metadata,
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    return Err(gone("the file is gone".into()))
                }
                Err(error) => return Err(FileSourceError::io("check", &path, error)),
            };
            if metadata.len() < position.byte {
                return Err(gone(format!(
                    "the file is now {} bytes long",
                    metadata.len()
                )));
            }
            let modified = metadata.modified().map(listing::micros).ok();
            if modified.is_some_and(|mtime| mtime != position.file.mtime) {
                return Err(gone("the file was modified since".into()));
            }
            match self.open_file(index, position.byte, position.line)? {
                Some(reading) => self.current = Some(reading),
                None => return Err(gone("the file is gone".into())),
            }
            if let Ok(decoder) = &mut self.decoder {
                decoder.resume_file(position.header_pending);
            }
        }
        Ok(())
    }

    /// Writes a dropped record to the quarantine file.
    fn quarantine(
        &mut self,
        path: &Path,
        line: u64,
        malformed: &Malformed,
    ) -> Result<(), FileSourceError> {
        let Some(target) = &self.quarantine_path else {
            return Ok(());
        };
        if self.quarantine.is_none() {
            let parent = target.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(parent)
                .map_err(|error| FileSourceError::io("create", parent, error))?;
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(target)
                .map_err(|error| FileSourceError::io("open", target, error))?;
            self.quarantine = Some(BufWriter::new(file));
        }
        #[derive(Serialize)]
        struct QuarantineEntry<'a> {
            file: &'a Path,
            line: u64,
            field: Option<&'a str>,
            error: &'a str,
            record: &'a str,
        }
        let entry = QuarantineEntry {
            file: path,
            line,
            field: malformed.field.as_deref(),
            error: &malformed.reason,
            record: &malformed.record,
        };
        let target = target.clone();
        let writer = self.quarantine.as_mut().expect("opened above");
        serde_json::to_writer(&mut *writer, &entry)
            .map_err(io::Error::other)
            .and_then(|()| writer.write_all(b"\n"))
            .map_err(|error| FileSourceError::io("write", &target, error))
    }

    fn flush_quarantine(&mut self) -> Result<(), FileSourceError> {
        if let (Some(writer), Some(target)) = (&mut self.quarantine, &self.quarantine_path) {
            writer
                .flush()
                .map_err(|error| FileSourceError::io("write", target, error))?;
        }
        Ok(())
    }

    /// One step of reading: a record, nothing yet, or a failure (boxed: the record is
    /// what moves on the hot path).
    fn read(&mut self) -> Result<Option<T>, Box<FileSourceError>> {
        let mut lines = 0;
        loop {
            if let Some(reading) = &mut self.current {
                let decoder = match &mut self.decoder {
                    Ok(decoder) => decoder,
                    Err(message) => return Err(Box::new(FileSourceError::Config(message.clone()))),
                };
                // The verdict is matched where it is made: a row moves once, into the
                // return value.
                let (verdict, number) = match reading.reader.next_line() {
                    Ok(Some(line)) => (decoder.decode(line.bytes, line.too_long), line.number),
                    Ok(None) => {
                        // The end of the file.
                        let read = reading.reader.position();
                        if read < reading.entry.len {
                            return Err(Box::new(FileSourceError::Changed {
                                path: reading.path.clone(),
                                reason: format!(
                                    "the file was truncated while being read: it was {} bytes \
                                     long when listed, it ended after {read} bytes",
                                    reading.entry.len
                                ),
                            }));
                        }
                        self.current = None;
                        if let Some(counters) = &self.counters {
                            counters.files.add(1);
                        }
                        continue;
                    }
                    Err(error) => {
                        return Err(Box::new(FileSourceError::io("read", &reading.path, error)))
                    }
                };
                match verdict {
                    Verdict::Row(row) => return Ok(Some(row)),
                    Verdict::Repaired(row, _) => {
                        if let Some(counters) = &self.counters {
                            counters.malformed.add(1);
                        }
                        return Ok(Some(row));
                    }
                    Verdict::Skipped => {}
                    Verdict::Dropped(malformed) => {
                        if let Some(counters) = &self.counters {
                            counters.malformed.add(1);
                            counters.dropped.add(1);
                        }
                        let path = reading.path.clone();
                        self.quarantine(&path, number, &malformed)?;
                    }
                    Verdict::Failed(malformed) => {
                        return Err(Box::new(FileSourceError::Malformed {
                            file: reading.path.clone(),
                            line: number,
                            malformed: *malformed,
                        }));
                    }
                }
                lines += 1;
                if lines >= LINES_PER_POLL {
                    return Ok(None);
                }
                continue;
            }
            // No file open: start the next one, or list.
            let now = Instant::now();
            if let Some(limit) = self.config.max_files_per_trigger {
                // With checkpoints a round is an epoch (`checkpoint` starts the next), so
                // a micro-batch never holds more than the limit, however long it takes.
                if !self.rounds_per_epoch && now >= self.round_start + self.config.poll_interval {
                    self.round_start = now;
                    self.round_files = 0;
                }
                if self.round_files >= limit && self.next < self.discovered.len() {
                    return Ok(None);
                }
            }
            if self.next < self.discovered.len() {
                let index = self.next;
                self.next += 1;
                match self.open_file(index, 0, 0)? {
                    Some(reading) => {
                        self.round_files += 1;
                        if let Ok(decoder) = &mut self.decoder {
                            decoder.start_file();
                        }
                        self.current = Some(reading);
                    }
                    None => {
                        if let Some(counters) = &self.counters {
                            counters.vanished.add(1);
                        }
                    }
                }
                continue;
            }
            if self.next_listing.is_some_and(|at| now < at) {
                return Ok(None);
            }
            self.next_listing = Some(now + self.config.poll_interval);
            self.list()?;
            if self.next >= self.discovered.len() {
                return Ok(None);
            }
        }
    }

    /// When to poll again when there is nothing to read.
    fn wake_at(&self) -> Instant {
        if self.current.is_some() {
            // Handed the thread back in the middle of a file.
            return Instant::now();
        }
        if self.next < self.discovered.len() {
            // Files wait for the next round (max_files_per_trigger): the next poll
            // interval, or with checkpoints the next epoch's marker (which wakes the
            // thread anyway; the interval only bounds the wait).
            return if self.rounds_per_epoch {
                Instant::now() + self.config.poll_interval
            } else {
                self.round_start + self.config.poll_interval
            };
        }
        self.next_listing.unwrap_or_else(Instant::now)
    }
}

impl<T: Send + 'static, S: RecordSeed<Value = T>> Source for FileSource<T, S> {
    type Item = T;

    /// Checks the directory (it must exist and be listable), reads the discovery log
    /// (checkpointed queries) and reopens the file the restored offset is in. Writes
    /// nothing.
    fn open(&mut self, context: &SourceContext) -> Result<(), BoxError> {
        if let Err(message) = &self.decoder {
            return Err(FileSourceError::Config(message.clone()).into());
        }
        let dir = &self.config.dir;
        match std::fs::metadata(dir) {
            Ok(metadata) if metadata.is_dir() => {}
            Ok(_) => {
                return Err(FileSourceError::Config(format!(
                    "{} is not a directory",
                    dir.display()
                ))
                .into())
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(FileSourceError::Config(format!(
                    "the directory {} does not exist",
                    dir.display()
                ))
                .into())
            }
            Err(error) => return Err(FileSourceError::io("read", dir, error).into()),
        }
        std::fs::read_dir(dir).map_err(|error| FileSourceError::io("list", dir, error))?;
        self.instance = context.instance;
        self.instances = context.instances.max(1);
        let suffix = if context.instance == 0 {
            context.name.clone()
        } else {
            format!("{}-{}", context.name, context.instance)
        };
        if let Some((config, _)) = &context.checkpoint {
            let sync = config.durability == Durability::Msync;
            let (log, entries) =
                DiscoveryLog::load(&config.dir().join(format!("files-{suffix}")), sync)
                    .map_err(FileSourceError::Config)?;
            for entry in entries {
                self.known.insert(entry.name.clone());
                self.discovered.push(entry);
            }
            self.discovery_log = Some(log);
        }
        if let Some(offset) = self.restored.take() {
            self.apply_restored(offset)?;
        }
        let base = self
            .config
            .quarantine_dir
            .clone()
            .or_else(|| context.checkpoint_dir.clone());
        self.quarantine_path =
            base.map(|base| base.join("_quarantine").join(format!("{suffix}.jsonl")));
        self.counters = Some(Counters {
            malformed: context.counter("malformed_rows"),
            dropped: context.counter("dropped_rows"),
            files: context.counter("files"),
            vanished: context.counter("vanished_files"),
        });
        self.round_start = Instant::now();
        self.rounds_per_epoch = context.checkpoint.is_some();
        Ok(())
    }

    fn poll_next(&mut self) -> SourcePoll<T> {
        match self.read() {
            Ok(Some(row)) => SourcePoll::Ready(row),
            Ok(None) => SourcePoll::Pending {
                until: Some(self.wake_at()),
            },
            Err(error) => SourcePoll::Failed(error),
        }
    }

    fn has_data(&self) -> bool {
        // Time makes files due (the next listing): the thread waits with a deadline.
        false
    }

    fn can_replay(&self) -> bool {
        true
    }

    /// The position in the discovery log; flushes the quarantine file and starts a new
    /// round of `max_files_per_trigger`.
    fn checkpoint(&mut self, _epoch: Epoch) -> Result<Vec<u8>, BoxError> {
        self.flush_quarantine()?;
        self.round_files = 0;
        self.round_start = Instant::now();
        Ok(codec::encode(&self.offset())?)
    }

    /// Keeps the offset; [`open`](Source::open) applies it once the discovery log is
    /// read.
    fn restore(&mut self, offset: &[u8]) -> Result<(), BoxError> {
        let offset: FilesOffset = codec::decode(offset)?;
        self.restored = Some(offset);
        Ok(())
    }
}

impl<T, S> Drop for FileSource<T, S> {
    fn drop(&mut self) {
        if let Some(writer) = &mut self.quarantine {
            // Best effort: errors were reported at checkpoints.
            let _ = writer.flush();
        }
    }
}

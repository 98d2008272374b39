//! An exactly-once file sink: every epoch's records land in one part file per sink
//! instance, published atomically once the epoch is complete (Spark's `file` sink).
//!
//! # Layout
//!
//! One directory per sink, shared by its instances (and by later runs of the query):
//!
//! | name | what it is |
//! |---|---|
//! | `part-{epoch:010}-{instance:03}.{csv,jsonl,txt}` | an epoch's published output |
//! | `.part-{epoch:010}-{instance:03}.{csv,jsonl,txt}.tmp` | an epoch's output being written or staged |
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
//!
//! [`Sink::open`]: crate::sink::Sink::open
//! [`Sink::begin_epoch`]: crate::sink::Sink::begin_epoch
//! [`Sink::prepare_commit`]: crate::sink::Sink::prepare_commit
//! [`SinkContext::query_id`]: crate::sink::SinkContext::query_id
//! [`SinkContext::replayed_epoch`]: crate::sink::SinkContext::replayed_epoch

// One job per file: `sink` (the FileSink and its two commit phases), `directory` (what
// `open` checks, keeps and retires), `commit_log` (names, markers, durable publish),
// `format` (FileFormat, encoders and decoders), `reader` (reading committed output back),
// `error` (FileSinkError).
mod commit_log;
mod directory;
mod error;
mod format;
mod reader;
mod sink;
#[cfg(test)]
mod tests;

pub use commit_log::CommittedPart;
pub use error::FileSinkError;
pub use format::FileFormat;
pub use reader::{committed_parts, read_committed};
pub use sink::FileSink;

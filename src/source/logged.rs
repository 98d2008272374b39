//! [`IngestLogged`]: the ingest write-ahead log as a wrapper for any source that cannot
//! replay by itself.

use super::ingest_log::IngestLog;
use super::{Source, SourceContext, SourcePoll};
use crate::checkpoint::codec;
use crate::error::BoxError;
use crate::event::Epoch;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// Makes a source that cannot rewind (a socket, a queue fed by the application)
/// replayable: in a checkpointed query every record it produces is appended to an ingest
/// write-ahead log before it is emitted, the source's checkpoint offset is the log's
/// sequence number, and after a restart the records from the restored offset on are read
/// back from the log and emitted again before new ones are polled.
///
/// * The log lives in `<checkpoint dir>/ingest-<name>` (`ingest-<name>-<i>` for instance
///   `i > 0` of a source with [several instances](crate::QueryBuilder::source_instances)),
///   on the same memory-mapped segments as checkpoints (each entry framed with a CRC, a
///   torn tail ignored, other damage an error at start); it is opened in
///   [`Source::open`], after the wrapped source's own `open`.
/// * What reaches the disk when follows [`Durability`](crate::checkpoint::Durability):
///   with `Msync` the log is synced at every epoch marker, before the offset is reported.
/// * Segments holding only records older than every retained complete epoch are removed.
/// * Without checkpointing there is no log: records pass straight through.
///
/// The wrapped source is polled, woken and stopped as usual
/// ([`has_data`](Source::has_data), [`park`](Source::park),
/// [`drain_on_stop`](Source::drain_on_stop) are passed on); its own offsets, if it has
/// any, are not used. Records must be serde types. [`QueryBuilder::push_source`]
/// wraps a [`PushSource`](super::PushSource) this way; wrap your own with
/// [`QueryBuilder::source_with_ingest_log`] or with `IngestLogged::new`:
///
/// ```
/// use rivulet::checkpoint::CheckpointConfig;
/// use rivulet::source::{IngestLogged, Source, SourcePoll};
///
/// /// Lines from a channel: gone once read, so it cannot replay.
/// struct Lines(crossbeam::channel::Receiver<String>);
///
/// impl Source for Lines {
///     type Item = String;
///     fn poll_next(&mut self) -> SourcePoll<String> {
///         match self.0.try_recv() {
///             Ok(line) => SourcePoll::Ready(line),
///             Err(crossbeam::channel::TryRecvError::Empty) => SourcePoll::Pending {
///                 until: Some(std::time::Instant::now() + std::time::Duration::from_millis(1)),
///             },
///             Err(crossbeam::channel::TryRecvError::Disconnected) => SourcePoll::Exhausted,
///         }
///     }
/// }
///
/// let dir = tempfile::tempdir()?;
/// let (feed, lines) = crossbeam::channel::unbounded();
/// feed.send("hello".to_string())?;
/// drop(feed);
/// let mut query = rivulet::Query::builder();
/// query.checkpoint(CheckpointConfig::new(dir.path()));
/// let out = query
///     .source("lines", IngestLogged::new(Lines(lines)))
///     .to_memory("out");
/// query.start()?.await_termination()?;
/// assert_eq!(out.rows(), vec!["hello".to_string()]);
/// assert!(dir.path().join("ingest-lines").is_dir());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`QueryBuilder::push_source`]: crate::QueryBuilder::push_source
/// [`QueryBuilder::source_with_ingest_log`]: crate::QueryBuilder::source_with_ingest_log
pub struct IngestLogged<S: Source> {
    source: S,
    /// The log, once opened (only in a checkpointed query).
    wal: Option<IngestLog<S::Item>>,
    /// The offset restored at start, applied when the log is opened.
    restore_to: Option<u64>,
}

impl<S: Source + fmt::Debug> fmt::Debug for IngestLogged<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IngestLogged")
            .field("source", &self.source)
            .field("wal", &self.wal)
            .finish_non_exhaustive()
    }
}

impl<S: Source> IngestLogged<S> {
    /// Wraps `source`; the log is opened when the query starts.
    pub fn new(source: S) -> Self {
        IngestLogged {
            source,
            wal: None,
            restore_to: None,
        }
    }

    /// The wrapped source.
    pub fn inner(&self) -> &S {
        &self.source
    }

    /// The wrapped source, mutably.
    pub fn inner_mut(&mut self) -> &mut S {
        &mut self.source
    }

    /// The wrapped source, without its log.
    pub fn into_inner(self) -> S {
        self.source
    }
}

impl<S> Source for IngestLogged<S>
where
    S: Source,
    S::Item: Serialize + DeserializeOwned,
{
    type Item = S::Item;

    /// Opens the wrapped source, then, in a checkpointed query, the ingest log
    /// (`<checkpoint dir>/ingest-<name>`, or `ingest-<name>-<i>` for instance `i > 0`),
    /// rewound to the restored offset.
    fn open(&mut self, context: &SourceContext) -> Result<(), BoxError> {
        self.source.open(context)?;
        let Some((config, shared)) = &context.checkpoint else {
            return Ok(());
        };
        let name = if context.instance == 0 {
            format!("ingest-{}", context.name)
        } else {
            format!("ingest-{}-{}", context.name, context.instance)
        };
        let mut wal = IngestLog::open(&config.dir().join(name), config, shared.clone())?;
        if let Some(offset) = self.restore_to.take() {
            wal.restore(offset)?;
        }
        self.wal = Some(wal);
        Ok(())
    }

    #[inline]
    fn poll_next(&mut self) -> SourcePoll<S::Item> {
        let Some(wal) = &mut self.wal else {
            return self.source.poll_next();
        };
        match wal.next_replay() {
            Some(Ok(record)) => return SourcePoll::Ready(record),
            Some(Err(error)) => return SourcePoll::Failed(error),
            None => {}
        }
        match self.source.poll_next() {
            SourcePoll::Ready(record) => match wal.append(&record) {
                Ok(()) => SourcePoll::Ready(record),
                Err(error) => SourcePoll::Failed(error),
            },
            other => other,
        }
    }

    fn has_data(&self) -> bool {
        self.wal.as_ref().is_some_and(IngestLog::has_replay) || self.source.has_data()
    }

    fn park(&mut self, timeout: Option<Duration>) -> bool {
        self.source.park(timeout)
    }

    fn drain_on_stop(&mut self) -> bool {
        self.source.drain_on_stop()
    }

    /// `true`: in a checkpointed query the log (opened in [`open`](Self::open)) replays.
    fn can_replay(&self) -> bool {
        true
    }

    /// The log's sequence number of the next record, after syncing the log (with
    /// `Durability::Msync`) and removing segments no retained epoch needs.
    fn checkpoint(&mut self, epoch: Epoch) -> Result<Vec<u8>, BoxError> {
        match &mut self.wal {
            Some(wal) => wal.checkpoint(epoch),
            None => Err("the source has no ingest log (checkpointing is off)".into()),
        }
    }

    fn restore(&mut self, offset: &[u8]) -> Result<(), BoxError> {
        let offset: u64 = codec::decode(offset)?;
        match &mut self.wal {
            Some(wal) => wal.restore(offset),
            None => {
                // Applied when `open` opens the log.
                self.restore_to = Some(offset);
                Ok(())
            }
        }
    }
}

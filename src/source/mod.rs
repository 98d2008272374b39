//! Sources: where records enter a query.
//!
//! A source runs on its own thread and is polled for one item at a time; operators
//! chained after it run on the same thread. Provided sources:
//!
//! | source | Spark counterpart | ends |
//! |---|---|---|
//! | [`IterSource`] (`QueryBuilder::from_iter`) | `MemoryStream` | when the iterator ends |
//! | [`RateSource`] (`QueryBuilder::rate`) | `rate` | on `stop()` or after `limit` rows |
//! | [`PushSource`] (`QueryBuilder::push_source`) | — (an app-fed queue) | when every [`PushHandle`] is dropped, or on `stop()` |
//! | [`SocketTextSource`] (`QueryBuilder::socket_text`) | `socket` (`socketTextStream`) | on `stop()` (or when the last client leaves) |
//! | [`FileSource`] (`QueryBuilder::read_dir`) | `readStream.text/csv/json(dir)` | on `stop()` |
//!
//! Writing a source: implement [`Source`]. It is opened at `start()` with a
//! [`SourceContext`] (its name, its instance number of several, the checkpoint directory,
//! the wake handle of its thread). A source that can rewind to an offset says so
//! ([`Source::can_replay`]) and checkpoints its offset; one that cannot is wrapped in
//! [`IngestLogged`], the ingest write-ahead log, to take part in a checkpointed query
//! ([`QueryBuilder::source_with_ingest_log`](crate::QueryBuilder::source_with_ingest_log)).
//! A source whose data arrives on sockets blocks in a `mio` poll of its own
//! ([`Source::park`], [`WakeHandle::register_mio`]). Several instances of one source,
//! each on its own thread with its own offset:
//! [`QueryBuilder::source_instances`](crate::QueryBuilder::source_instances).

pub mod files;
pub(crate) mod ingest_log;
pub mod logged;
pub mod memory;
pub mod push;
pub mod rate;
pub mod socket;

pub use files::{FileSource, FileSourceConfig, FileSourceError};
pub use logged::IngestLogged;
pub use memory::IterSource;
pub use push::{PushError, PushHandle, PushSource};
pub use rate::{RateRow, RateSource};
pub use socket::{SocketSourceConfig, SocketSourceStats, SocketTextSource};

use crate::checkpoint::coordinator::CheckpointShared;
use crate::checkpoint::CheckpointConfig;
use crate::edge::WakeSignal;
use crate::error::BoxError;
use crate::event::Epoch;
use crate::metrics::{Counter, NamedCounters};
use crate::sync::Arc;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The wake handle of a source's thread, from [`SourceContext::wake`].
///
/// * Threads that feed the source (as [`PushHandle`]s do) call
///   [`notify`](Self::notify) after handing it data, so that a waiting source thread
///   re-checks [`Source::has_data`].
/// * A source that blocks in a `mio` poll of its own ([`Source::park`]) registers the
///   poll's waker with [`register_mio`](Self::register_mio): every wake-up of the thread
///   (an epoch to mark, a batch released, a stop, an abort) then also ends the poll.
///
/// ```
/// use rivulet::source::{Source, SourceContext, SourcePoll};
/// use std::time::Duration;
///
/// /// Ends when the query stops; polls an (empty) `mio` registry meanwhile.
/// struct Quiet {
///     poll: Option<mio::Poll>,
///     events: mio::Events,
/// }
///
/// impl Source for Quiet {
///     type Item = u64;
///     fn open(&mut self, context: &SourceContext) -> Result<(), rivulet::error::BoxError> {
///         let poll = mio::Poll::new()?;
///         context.wake.register_mio(poll.registry(), mio::Token(0))?;
///         self.poll = Some(poll);
///         Ok(())
///     }
///     fn poll_next(&mut self) -> SourcePoll<u64> {
///         SourcePoll::Pending { until: None }
///     }
///     fn has_data(&self) -> bool {
///         false
///     }
///     fn park(&mut self, timeout: Option<Duration>) -> bool {
///         if let Some(poll) = &mut self.poll {
///             let _ = poll.poll(&mut self.events, timeout);
///         }
///         true
///     }
/// }
///
/// let mut query = rivulet::Query::builder();
/// let source = Quiet { poll: None, events: mio::Events::with_capacity(8) };
/// query.source("quiet", source).for_each(|_| {});
/// let running = query.start()?;
/// running.stop()?; // wakes the poll; the source ends
/// # Ok::<(), rivulet::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct WakeHandle {
    signal: Arc<WakeSignal>,
}

impl WakeHandle {
    /// The handle of the thread that waits on `signal`.
    pub fn new(signal: Arc<WakeSignal>) -> Self {
        WakeHandle { signal }
    }

    /// Wakes the source's thread if it is waiting (or about to), so that it re-checks
    /// [`Source::has_data`]. Call it after making data visible to the source (a release
    /// store or a lock). Cheap when the thread is running: a fence and a load.
    #[inline]
    pub fn notify(&self) {
        self.signal.notify();
    }

    /// Makes every wake-up of the thread also call `waker`, which must end the wait of
    /// [`Source::park`], also when it fires before that wait starts. For `mio`, use
    /// [`register_mio`](Self::register_mio). Call it in [`Source::open`].
    pub fn set_waker(&self, waker: impl Fn() + Send + Sync + 'static) {
        self.signal.set_waker(std::sync::Arc::new(waker));
    }

    /// Creates a `mio::Waker` for `token` on `registry` (the poll that [`Source::park`]
    /// blocks in) and makes every wake-up of the thread fire it. Events for `token` mean
    /// only "re-check": ignore them. A `mio` poll has room for one waker.
    ///
    /// # Errors
    ///
    /// The waker could not be created or registered.
    pub fn register_mio(&self, registry: &mio::Registry, token: mio::Token) -> std::io::Result<()> {
        let waker = mio::Waker::new(registry, token)?;
        self.set_waker(move || {
            // Fails only if the poll is gone, and then nobody waits in it.
            let _ = waker.wake();
        });
        Ok(())
    }

    /// The thread's signal.
    pub fn signal(&self) -> &Arc<WakeSignal> {
        &self.signal
    }
}

/// What a source instance learns when the query starts (see [`Source::open`]).
#[derive(Clone)]
#[non_exhaustive]
pub struct SourceContext {
    /// The source's name in the query (unique).
    pub name: String,
    /// This instance, `0..instances`.
    pub instance: usize,
    /// How many instances of the source run.
    pub instances: usize,
    /// The query's checkpoint directory, if it checkpoints. A source that keeps files of
    /// its own (an ingest log) keeps them under it, named after the source (and
    /// instance).
    pub checkpoint_dir: Option<PathBuf>,
    /// The wake handle of the thread that runs this instance: for feeders to notify, and
    /// for a source that blocks in a `mio` poll to register the poll's waker with.
    pub wake: WakeHandle,
    /// The checkpoint settings and the query's epoch state, for the ingest log.
    pub(crate) checkpoint: Option<(CheckpointConfig, Arc<CheckpointShared>)>,
    /// The query's epoch state, in a query with epochs (a trigger or checkpoints): how
    /// each epoch runs, for sources that plan micro-batches themselves (Kafka).
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub(crate) epochs: Option<Arc<CheckpointShared>>,
    /// The named counters of this instance (see [`counter`](Self::counter)).
    pub(crate) counters: std::sync::Arc<NamedCounters>,
}

impl SourceContext {
    /// The counter `name` of this source instance, created at zero on first use.
    /// Progress reports sum it over the source's instances in
    /// [`OperatorProgress::counters`](crate::query::OperatorProgress::counters) (the
    /// file source counts `malformed_rows` this way). Only the instance's own thread may
    /// add to it ([`Counter::add`] is a single-writer add); take it in
    /// [`Source::open`] and keep it.
    ///
    /// ```
    /// use rivulet::metrics::Counter;
    /// use rivulet::source::{Source, SourceContext, SourcePoll};
    /// use std::sync::Arc;
    ///
    /// /// Counts the odd numbers it skips.
    /// struct Evens {
    ///     next: u64,
    ///     skipped: Option<Arc<Counter>>,
    /// }
    ///
    /// impl Source for Evens {
    ///     type Item = u64;
    ///     fn open(&mut self, context: &SourceContext) -> Result<(), rivulet::error::BoxError> {
    ///         self.skipped = Some(context.counter("skipped"));
    ///         Ok(())
    ///     }
    ///     fn poll_next(&mut self) -> SourcePoll<u64> {
    ///         while self.next < 10 {
    ///             self.next += 1;
    ///             if (self.next - 1) % 2 == 0 {
    ///                 return SourcePoll::Ready(self.next - 1);
    ///             }
    ///             if let Some(skipped) = &self.skipped {
    ///                 skipped.add(1);
    ///             }
    ///         }
    ///         SourcePoll::Exhausted
    ///     }
    /// }
    ///
    /// let mut query = rivulet::Query::builder();
    /// query.source("evens", Evens { next: 0, skipped: None }).for_each(|_| {});
    /// let running = query.start()?;
    /// running.await_termination()?;
    /// assert_eq!(running.progress().operator("evens").unwrap().counters["skipped"], 5);
    /// # Ok::<(), rivulet::Error>(())
    /// ```
    pub fn counter(&self, name: &'static str) -> std::sync::Arc<Counter> {
        self.counters.get_or_add(name)
    }
}

impl std::fmt::Debug for SourceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceContext")
            .field("name", &self.name)
            .field("instance", &self.instance)
            .field("instances", &self.instances)
            .field("checkpoint_dir", &self.checkpoint_dir)
            .field("wake", &self.wake)
            .finish_non_exhaustive()
    }
}

/// What a [`Source::poll_next`] produced.
#[derive(Debug)]
pub enum SourcePoll<T> {
    /// The next item.
    Ready(T),
    /// Nothing yet. `until`: when to poll again at the latest (a rate source's next row);
    /// `None` means "when woken" (see [`Source::has_data`]).
    Pending {
        /// The next time the source has data, if it knows.
        until: Option<Instant>,
    },
    /// The source is finished; the runtime sends end-of-stream.
    Exhausted,
    /// The source failed (for example, its write-ahead log hit a full disk); the query
    /// stops with [`Error::Source`](crate::Error::Source).
    Failed(BoxError),
}

/// A producer of records, polled on its own thread.
pub trait Source: Send + 'static {
    /// The records it produces.
    type Item: Send + 'static;

    /// Opens the source when the query starts: connect, open files, read an ingest log.
    /// Nothing of this may happen while the query is only being built. Called after
    /// [`restore`](Self::restore) (if the query restored an offset), before the query's
    /// sinks are opened and before the first [`poll_next`](Self::poll_next). Check what
    /// can fail before writing anything: a sink that refuses to open afterwards fails the
    /// start, and a failed start should leave the disk as it found it (the ingest log
    /// only reads here and starts writing with its first record). The default does
    /// nothing.
    ///
    /// # Errors
    ///
    /// An error makes `start()` fail, naming the source.
    fn open(&mut self, context: &SourceContext) -> Result<(), BoxError> {
        let _ = context;
        Ok(())
    }

    /// Returns the next item, says when to come back, or reports the end.
    fn poll_next(&mut self) -> SourcePoll<Self::Item>;

    /// Whether a poll might now find data. The thread re-checks this after announcing it
    /// is about to park; a source fed by other threads must make its feeders notify the
    /// thread (see [`PushHandle`], [`WakeHandle::notify`]). The default, `true`, suits
    /// sources that never wait for anyone.
    fn has_data(&self) -> bool {
        true
    }

    /// Waits for the source's own events (socket readiness) for at most `timeout`, in
    /// place of parking the thread, and returns `true`; the default returns `false`: the
    /// source has no wait of its own and the thread parks on its wake signal.
    ///
    /// A source whose data arrives on sockets blocks here in `mio::Poll::poll` and notes
    /// which sockets are ready, so that [`has_data`](Self::has_data) then says so. It
    /// must also wake for epochs, stops and aborts: register the poll's waker in
    /// [`open`](Self::open) with [`WakeHandle::register_mio`]. The runtime calls `park`
    /// only after it announced the wait and re-checked `has_data` (the wake-up protocol
    /// of [`crate::edge::wait`]); a wake-up in between fires the waker before the poll,
    /// and a `mio` poll returns for a waker fired before it started, so it is not lost.
    /// Return after one poll, whatever ended it: the runtime re-checks and calls again.
    /// Between spin rounds (and under policies that never park, instead of parking) it
    /// calls `park(Some(Duration::ZERO))`: look without blocking.
    ///
    /// Sources that do not override it cost nothing per record: the runtime asks once and,
    /// once `park` returned `false`, never again (so answer the same way every time).
    fn park(&mut self, timeout: Option<Duration>) -> bool {
        let _ = timeout;
        false
    }

    /// The query is stopping gracefully. Return `true` to keep being polled until
    /// [`SourcePoll::Exhausted`] (to hand over records already accepted from elsewhere,
    /// as the push source does); the default, `false`, ends the stream at once.
    fn drain_on_stop(&mut self) -> bool {
        false
    }

    /// Whether this source can rewind to an offset it reported, so that a checkpointed
    /// query can replay what followed the last complete epoch. Checkpointing a query with
    /// a source that cannot is refused at `start()`. The default is `false`.
    fn can_replay(&self) -> bool {
        false
    }

    /// The offset to resume from after everything emitted so far, for `epoch`'s
    /// checkpoint (called just before the source emits the epoch's marker).
    ///
    /// # Errors
    ///
    /// An error fails the query. The default reports that the source cannot replay.
    fn checkpoint(&mut self, epoch: Epoch) -> Result<Vec<u8>, BoxError> {
        let _ = epoch;
        Err("this source cannot replay from an offset".into())
    }

    /// Rewinds to `offset`, as returned by [`checkpoint`](Self::checkpoint), when the
    /// query starts (before [`open`](Self::open)).
    ///
    /// # Errors
    ///
    /// An error makes `start()` fail. The default reports that the source cannot replay.
    fn restore(&mut self, offset: &[u8]) -> Result<(), BoxError> {
        let _ = offset;
        Err("this source cannot replay from an offset".into())
    }

    /// When the first epoch of this start replays a restored micro-batch: the offset
    /// the source reported after that batch's records when it was planned (its
    /// [`checkpoint`](Self::checkpoint) then). Called after [`restore`](Self::restore),
    /// before [`open`](Self::open). The runtime polls exactly the batch's record count
    /// again; a source whose next records depend on more than its start offset (one
    /// that interleaves several inputs, as the Kafka source does its partitions) uses
    /// the end offset to give back the same records. The default ignores it.
    ///
    /// # Errors
    ///
    /// An error makes `start()` fail.
    fn replay_until(&mut self, end_offset: &[u8]) -> Result<(), BoxError> {
        let _ = end_offset;
        Ok(())
    }
}

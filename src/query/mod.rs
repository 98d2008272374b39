//! Building and running queries: [`QueryBuilder`] → [`Query`].

mod files;
pub mod handle;
#[cfg(feature = "kafka")]
mod kafka;
pub mod listener;
pub mod progress;
mod sockets;

pub use handle::Query;
pub use listener::{QueryIdleEvent, QueryListener, QueryStartedEvent, QueryTerminatedEvent};
pub use progress::{OperatorKind, OperatorProgress, QueryProgress, QueryStatus};

use crate::checkpoint::CheckpointConfig;
use crate::edge::{WaitPolicy, WakeSignal};
use crate::error::{Error, Result};
use crate::plan::CheckpointBuild;
use crate::plan::Graph;
use crate::runtime::Pinning;
use crate::source::{IngestLogged, IterSource, PushHandle, PushSource, RateSource, Source};
use crate::stream::{SourceChain, Stream};
use crate::sync::Arc;
use crate::time::Clock;
use crate::trigger::{OutputMode, Trigger};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

/// The stream [`QueryBuilder::push_source`] returns: a [`PushSource`] wrapped in the
/// ingest write-ahead log.
pub type PushStream<T> = Stream<SourceChain<IngestLogged<PushSource<T>>>>;

/// Describes a query: its settings, its sources, and (through the [`Stream`]s they
/// return) everything downstream. [`start`](QueryBuilder::start) runs it.
///
/// ```
/// use rivulet::{Query, WaitPolicy};
///
/// let mut query = Query::builder();
/// query.name("evens").ring_capacity(256).wait_policy(WaitPolicy::default());
/// let evens = query.from_iter("numbers", 0..10u64).filter(|x| x % 2 == 0).to_memory("evens");
/// let running = query.start().unwrap();
/// running.await_termination().unwrap();
/// assert_eq!(evens.rows(), vec![0, 2, 4, 6, 8]);
/// ```
pub struct QueryBuilder {
    graph: Rc<RefCell<Graph>>,
}

impl fmt::Debug for QueryBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueryBuilder")
            .field("config", &self.graph.borrow().config)
            .finish_non_exhaustive()
    }
}

impl Default for QueryBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl QueryBuilder {
    /// An empty query with default settings: ring capacity 1024, the
    /// [`WaitPolicy::default`] (spin briefly, then park), [`Pinning::Auto`], parallelism 1.
    pub fn new() -> Self {
        QueryBuilder {
            graph: Rc::new(RefCell::new(Graph::new())),
        }
    }

    /// Names the query (progress reports and thread names show it).
    pub fn name(&mut self, name: &str) -> &mut Self {
        self.graph.borrow_mut().config.name = name.to_string();
        self
    }

    /// Events each edge's ring holds (default 1024). Must be at least 1; larger rings
    /// absorb bursts, smaller ones bound memory and queueing delay.
    pub fn ring_capacity(&mut self, capacity: usize) -> &mut Self {
        self.graph.borrow_mut().config.ring_capacity = capacity;
        self
    }

    /// How idle threads wait (default: spin briefly, then park).
    pub fn wait_policy(&mut self, policy: WaitPolicy) -> &mut Self {
        self.graph.borrow_mut().config.wait_policy = policy;
        self
    }

    /// How threads are placed on cores (default [`Pinning::Auto`]).
    pub fn pinning(&mut self, pinning: Pinning) -> &mut Self {
        self.graph.borrow_mut().config.pinning = pinning;
        self
    }

    /// Default number of instances of keyed aggregates (default 1).
    pub fn parallelism(&mut self, parallelism: usize) -> &mut Self {
        self.graph.borrow_mut().config.parallelism = parallelism;
        self
    }

    /// Checkpoints the query into `config`'s directory and, if that directory holds a
    /// complete epoch of this query, restores from it when the query starts: operators
    /// get their state back, sources rewind to their offsets, and epochs continue after
    /// it. It may be called anywhere while the query is built: nothing is read or written
    /// until [`start`](Self::start).
    ///
    /// Every source must be able to replay ([`Source::can_replay`]); the push source does so
    /// through an ingest write-ahead log in the checkpoint directory, and so does any
    /// source added with [`source_with_ingest_log`](Self::source_with_ingest_log).
    ///
    /// Problems are reported by [`start`](Self::start): a directory written by a different
    /// query, damage that leaves no complete epoch intact, an unwritable directory.
    pub fn checkpoint(&mut self, config: CheckpointConfig) -> &mut Self {
        let mut graph = self.graph.borrow_mut();
        if let Err(message) = config.validate() {
            graph.errors.push(message);
            drop(graph);
            return self;
        }
        let build = graph.checkpoint.get_or_insert_with(|| {
            CheckpointBuild::new(Trigger::Continuous {
                checkpoint_interval: config.interval,
            })
        });
        if !build.trigger_set {
            build.trigger = Trigger::Continuous {
                checkpoint_interval: config.interval,
            };
        }
        build.config = Some(config);
        drop(graph);
        self
    }

    /// The processing-time clock operators read and processing-time timers follow
    /// (default: [`Clock::system`]). Tests pass a [`ManualClock`](crate::time::ManualClock)'s
    /// clock to drive timers without sleeping.
    pub fn clock(&mut self, clock: Clock) -> &mut Self {
        self.graph.borrow_mut().config.clock = clock;
        self
    }

    /// Runs the query under `trigger` (see [`Trigger`]): continuously with epochs on a
    /// timer, in micro-batches, or in batches until the sources are drained. It may be
    /// called anywhere while the query is built. Without a trigger, a query runs
    /// continuously, with epochs only if it checkpoints
    /// ([`checkpoint`](Self::checkpoint)'s interval).
    ///
    /// A query started with a trigger can switch to another while it runs
    /// ([`Query::set_trigger`]).
    ///
    /// ```
    /// use rivulet::{Query, Trigger};
    /// use std::time::Duration;
    ///
    /// let mut query = Query::builder();
    /// query.trigger(Trigger::MicroBatch { interval: Duration::from_millis(10) });
    /// let counts = query
    ///     .from_iter("words", ["a", "b", "a"])
    ///     .key_by(|word| word.to_string())
    ///     .count()
    ///     .to_memory("counts");
    /// query.start()?.await_termination()?;
    /// let mut rows = counts.rows();
    /// rows.sort();
    /// // Once per batch per changed key: all three words arrive in one batch.
    /// assert_eq!(rows, vec![("a".to_string(), 2), ("b".to_string(), 1)]);
    /// # Ok::<(), rivulet::Error>(())
    /// ```
    pub fn trigger(&mut self, trigger: Trigger) -> &mut Self {
        self.configure_trigger(trigger);
        self
    }

    fn configure_trigger(&self, trigger: Trigger) {
        let mut graph = self.graph.borrow_mut();
        if let Err(message) = trigger.validate() {
            graph.errors.push(message);
            return;
        }
        let build = graph
            .checkpoint
            .get_or_insert_with(|| CheckpointBuild::new(trigger));
        build.trigger = trigger;
        build.trigger_set = true;
    }

    /// What aggregations emit (see [`OutputMode`]; default [`OutputMode::Update`]).
    /// `start()` refuses [`OutputMode::Complete`] without an aggregation and
    /// [`OutputMode::Append`] with one (it needs event-time watermarks).
    pub fn output_mode(&mut self, mode: OutputMode) -> &mut Self {
        self.graph.borrow_mut().config.output_mode = mode;
        self
    }

    /// The most records one source releases in one micro-batch (default 1,048,576;
    /// Spark's `maxOffsetsPerTrigger`). What is left over goes into the next batch.
    pub fn max_batch_records(&mut self, records: usize) -> &mut Self {
        self.graph.borrow_mut().config.max_batch_records = records;
        self
    }

    /// Registers a [`QueryListener`]: it hears the query start, each epoch's progress,
    /// idle triggers and the termination, on a thread of its own (see
    /// [its docs](crate::query::listener)). Progress comes per epoch, so a query without
    /// epochs (no [`trigger`](Self::trigger), no checkpointing) reports only its start
    /// and termination.
    pub fn listener(&mut self, listener: impl QueryListener) -> &mut Self {
        self.graph.borrow_mut().listeners.push(Box::new(listener));
        self
    }

    /// Follows one record in `every` with a latency marker (see
    /// [`metrics::latency`](crate::metrics::latency)); 0 turns latency measurement off.
    /// Default [`DEFAULT_SAMPLE_EVERY`](crate::metrics::latency::DEFAULT_SAMPLE_EVERY).
    /// Latency is measured only in queries with epochs.
    pub fn latency_sampling(&mut self, every: u32) -> &mut Self {
        self.graph.borrow_mut().config.latency_sample_every = every;
        self
    }

    /// How many epochs' progress [`Query::recent_progress`] keeps (default
    /// [`DEFAULT_RECENT_PROGRESS`](crate::metrics::history::DEFAULT_RECENT_PROGRESS);
    /// at least 1).
    pub fn recent_progress_capacity(&mut self, epochs: usize) -> &mut Self {
        self.graph.borrow_mut().config.recent_progress = epochs;
        self
    }

    /// Adds a source.
    pub fn source<S: Source>(&mut self, name: &str, source: S) -> Stream<SourceChain<S>> {
        Stream::from_sources(self.graph.clone(), name, vec![source])
    }

    /// Adds a source run as `instances` instances, each on a thread of its own:
    /// `make(i)` builds instance `i` (`0..instances`), which [`Source::open`] then also
    /// learns from its [`SourceContext`](crate::source::SourceContext) (`instance`,
    /// `instances`), to take its share: every `instances`-th file, one client, one Kafka
    /// partition. `make` runs now, while the query is built, so the sources must not
    /// connect or open anything before `open`.
    ///
    /// Each instance is a checkpoint participant of its own: it reports its own offset
    /// at every epoch and gets that offset back ([`Source::restore`]) when the query
    /// restarts (the instance count is part of the plan a checkpoint directory accepts).
    /// The stream continues with parallelism `instances`: operators chained after the
    /// source run on each instance's thread, a following `key_by` exchanges from every
    /// instance to every aggregate instance, a `union` or a sink with one instance reads
    /// them all. A source wrapped in [`IngestLogged`] keeps one log per instance
    /// (`ingest-<name>`, `ingest-<name>-1`, …).
    ///
    /// ```
    /// use rivulet::source::{Source, SourceContext, SourcePoll};
    ///
    /// /// The numbers below `end` that belong to its instance: `i, i + n, i + 2n, ...`.
    /// struct Share {
    ///     next: u64,
    ///     step: u64,
    ///     end: u64,
    /// }
    ///
    /// impl Source for Share {
    ///     type Item = u64;
    ///     fn open(&mut self, context: &SourceContext) -> Result<(), rivulet::error::BoxError> {
    ///         self.next = context.instance as u64;
    ///         self.step = context.instances as u64;
    ///         Ok(())
    ///     }
    ///     fn poll_next(&mut self) -> SourcePoll<u64> {
    ///         if self.next >= self.end {
    ///             return SourcePoll::Exhausted;
    ///         }
    ///         self.next += self.step;
    ///         SourcePoll::Ready(self.next - self.step)
    ///     }
    /// }
    ///
    /// let mut query = rivulet::Query::builder();
    /// let numbers = query.source_instances("numbers", 3, |_| Share { next: 0, step: 1, end: 10 });
    /// assert_eq!(numbers.parallelism(), 3);
    /// let sums = numbers.key_by(|n| n % 2).fold(0u64, |sum, n| *sum += n).to_memory("sums");
    /// query.start()?.await_termination()?;
    /// let mut last = std::collections::BTreeMap::new();
    /// for (parity, sum) in sums.rows() {
    ///     last.insert(parity, sum);
    /// }
    /// assert_eq!(last[&0], 0 + 2 + 4 + 6 + 8);
    /// assert_eq!(last[&1], 1 + 3 + 5 + 7 + 9);
    /// # Ok::<(), rivulet::Error>(())
    /// ```
    pub fn source_instances<S: Source>(
        &mut self,
        name: &str,
        instances: usize,
        make: impl FnMut(usize) -> S,
    ) -> Stream<SourceChain<S>> {
        if instances == 0 {
            self.graph
                .borrow_mut()
                .errors
                .push(format!("source `{name}` needs at least one instance"));
        }
        let sources = (0..instances).map(make).collect();
        Stream::from_sources(self.graph.clone(), name, sources)
    }

    /// A finite source over `items` (Spark's `MemoryStream`).
    pub fn from_iter<I>(
        &mut self,
        name: &str,
        items: I,
    ) -> Stream<SourceChain<IterSource<I::IntoIter>>>
    where
        I: IntoIterator,
        I::IntoIter: Send + 'static,
        I::Item: Send + 'static,
    {
        self.source(name, IterSource::new(items.into_iter()))
    }

    /// Spark's `rate` source: `rows_per_second` [`RateRow`](crate::source::RateRow)s per
    /// second, until the query stops. Use [`source`](Self::source) with
    /// [`RateSource::with_limit`] for a finite one.
    pub fn rate(&mut self, name: &str, rows_per_second: u64) -> Stream<SourceChain<RateSource>> {
        if rows_per_second == 0 {
            self.graph
                .borrow_mut()
                .errors
                .push(format!("rate source `{name}` needs rows_per_second > 0"));
            return self.source(name, RateSource::new(1).with_limit(0));
        }
        self.source(name, RateSource::new(rows_per_second))
    }

    /// Adds a source that cannot replay by itself (a socket, a queue), wrapped in the
    /// ingest write-ahead log ([`IngestLogged`]): in a checkpointed query every record is
    /// logged in `<checkpoint dir>/ingest-<name>` before it is emitted and replayed from
    /// there after a restart. Records must be serde types.
    ///
    /// ```
    /// use rivulet::checkpoint::CheckpointConfig;
    /// use rivulet::source::{Source, SourcePoll};
    ///
    /// /// Hands out what it is given, once: no offsets of its own.
    /// struct Once(Vec<u64>);
    ///
    /// impl Source for Once {
    ///     type Item = u64;
    ///     fn poll_next(&mut self) -> SourcePoll<u64> {
    ///         match self.0.pop() {
    ///             Some(n) => SourcePoll::Ready(n),
    ///             None => SourcePoll::Exhausted,
    ///         }
    ///     }
    /// }
    ///
    /// let dir = tempfile::tempdir()?;
    /// let mut query = rivulet::Query::builder();
    /// query.checkpoint(CheckpointConfig::new(dir.path()));
    /// let out = query.source_with_ingest_log("once", Once(vec![3, 2, 1])).to_memory("out");
    /// query.start()?.await_termination()?;
    /// assert_eq!(out.rows(), vec![1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn source_with_ingest_log<S>(
        &mut self,
        name: &str,
        source: S,
    ) -> Stream<SourceChain<IngestLogged<S>>>
    where
        S: Source,
        S::Item: Serialize + DeserializeOwned,
    {
        self.source(name, IngestLogged::new(source))
    }

    /// A source fed by the application through the returned [`PushHandle`]; its queue
    /// holds `ring_capacity` records. It is a [`PushSource`] wrapped in the ingest
    /// write-ahead log ([`IngestLogged`]): in a checkpointed query it logs what it takes
    /// in `<checkpoint dir>/ingest-<name>` (records must be serde types).
    pub fn push_source<T>(&mut self, name: &str) -> (PushHandle<T>, PushStream<T>)
    where
        T: Send + Serialize + DeserializeOwned + 'static,
    {
        let capacity = self.graph.borrow().config.ring_capacity;
        let signal = Arc::new(WakeSignal::new());
        let (handle, source) = PushSource::new(capacity, signal.clone());
        let stream = self.source_with_ingest_log(name, source);
        // The source's thread is the group just created: give it the signal the handle
        // notifies.
        {
            let mut graph = self.graph.borrow_mut();
            let group = graph.groups.len() - 1;
            graph.groups[group].signals[0] = signal;
        }
        (handle, stream)
    }

    /// Runs a SQL `SELECT` on the views registered on this query with
    /// [`DataFrame::create_or_replace_temp_view`](crate::frame::DataFrame::create_or_replace_temp_view)
    /// (Spark's `spark.sql(..)`): see [`sql`](crate::sql) for what is supported.
    ///
    /// # Errors
    ///
    /// Text that does not parse; SQL that is not supported (naming the construct and
    /// its position); an unknown view, column or a type error (naming those there are).
    #[cfg(feature = "sql")]
    pub fn sql(
        &mut self,
        text: &str,
    ) -> std::result::Result<crate::frame::DataFrame, crate::sql::SqlError> {
        crate::sql::plan(&self.graph, text)
    }

    /// Registers `frame` as the static view `name` (what
    /// [`StaticFrame::create_or_replace_temp_view`](crate::frame::StaticFrame::create_or_replace_temp_view)
    /// does), replacing a static view of that name.
    #[cfg(feature = "sql")]
    pub(crate) fn register_static_view(&self, name: &str, frame: crate::frame::StaticFrame) {
        let mut graph = self.graph.borrow_mut();
        graph
            .static_views
            .retain(|(view, _)| !view.eq_ignore_ascii_case(name));
        graph.static_views.push((name.to_string(), frame));
    }

    /// Checks the query and starts its threads.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] if the query has no sink, a stream was left without a consumer
    /// or a view registered for SQL was not read,
    /// a capacity or parallelism is 0; [`Error::Spawn`] if a thread could not start.
    pub fn start(self) -> Result<Query> {
        // Views hold streams of this graph: drop the unread ones before anything else.
        let unread: Vec<String> = std::mem::take(&mut self.graph.borrow_mut().views)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        if !unread.is_empty() {
            return Err(Error::config(format!(
                "the view(s) {} were registered but no sql() statement read them; \
                 a view's stream must end in a sink as any stream",
                unread.join(", ")
            )));
        }
        let graph = Rc::try_unwrap(self.graph).map_err(|_| {
            Error::config(
                "a stream was neither sent to a sink nor dropped before start(); \
                 every branch must end in a sink",
            )
        })?;
        handle::start(graph.into_inner())
    }
}

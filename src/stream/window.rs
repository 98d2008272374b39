//! Window aggregates: [`KeyedStream::window`] and [`Stream::window`] (global) give a
//! [`WindowedStream`] / [`GlobalWindowedStream`], which an aggregate ([`agg`], [`count`])
//! turns into a stream of `(key, window, result)` (or `(window, result)`) rows.
//!
//! The window specification ([`TimeWindows`](crate::window::TimeWindows) for tumbling and
//! sliding windows, or any other [`WindowSpec`]) builds the operator; the builder routes
//! the keyed records to it, checks that the aggregate can be merged when the windows need
//! it, and optionally turns the late records into a stream of their own
//! ([`late_records`](WindowedStream::late_records)).
//!
//! What the rows are and when they come out follows the query's output mode and the
//! epoch's execution mode (see [`window::TimeWindowAggregate`](crate::window::TimeWindowAggregate)):
//! append mode needs a watermarked stream and emits each window once when the watermark
//! passes its end; update mode emits changed windows; complete mode the whole table.
//!
//! [`agg`]: WindowedStream::agg
//! [`count`]: WindowedStream::count

use super::{Chain, InputChain, KeyedStream, Stream};
use crate::aggregate::Aggregate;
use crate::error::BoxError;
use crate::event::{Epoch, Timestamp};
use crate::operator::{Collector, Context, Operator, Timer};
use crate::trigger::EmitMode;
use crate::window::{Window, WindowSpec};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::hash::Hash;

/// Where the late records go: a closure that ends their stream in a sink.
type LateSink<T> = Box<dyn FnOnce(Stream<InputChain<T>>)>;

impl<S, F, K> KeyedStream<S, F>
where
    S: Chain,
    F: FnMut(&S::Out) -> K + Clone + Send + 'static,
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
{
    /// Groups each key's records into event-time windows (Spark's
    /// `groupBy(key, window(time, ..))`): `spec` says which windows (tumbling, sliding,
    /// sessions), `time` reads a record's event time. Finish with an aggregate
    /// ([`agg`](WindowedStream::agg), [`count`](WindowedStream::count)).
    ///
    /// Complete mode needs no watermark (nothing is ever dropped):
    ///
    /// ```
    /// use rivulet::window::{TimeWindows, Window};
    /// use rivulet::{OutputMode, Query, Timestamp};
    /// use std::time::Duration;
    ///
    /// let mut query = Query::builder();
    /// query.output_mode(OutputMode::Complete);
    /// let events = [("a", 1), ("b", 4), ("a", 7), ("a", 12)]; // (key, time in µs)
    /// let counts = query
    ///     .from_iter("events", events)
    ///     .key_by(|(key, _)| key.to_string())
    ///     .window(TimeWindows::tumbling(Duration::from_micros(10))?, |(_, t)| Timestamp(*t))
    ///     .count()
    ///     .to_memory("counts");
    /// query.start()?.await_termination()?;
    /// // In complete mode the memory table holds the current result table.
    /// let w = |s| Window { start: Timestamp(s), end: Timestamp(s + 10) };
    /// let mut table = counts.rows();
    /// table.sort();
    /// assert_eq!(table, vec![("a".into(), w(0), 2), ("a".into(), w(10), 1), ("b".into(), w(0), 1)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn window<W, TF>(self, spec: W, time: TF) -> WindowedStream<S, F, W, TF>
    where
        W: WindowSpec,
        TF: Fn(&S::Out) -> Timestamp + Clone + Send + 'static,
    {
        WindowedStream {
            keyed: self,
            spec,
            time,
            late: None,
        }
    }
}

impl<S: Chain> Stream<S> {
    /// Groups all records into event-time windows, without a key (Spark's
    /// `groupBy(window(time, ..))`). The aggregate runs as one instance, behind an
    /// exchange if this stream is parallel; its rows are `(window, result)`.
    ///
    /// ```
    /// use rivulet::window::{TimeWindows, Window};
    /// use rivulet::{OutputMode, Query, Timestamp};
    /// use std::time::Duration;
    ///
    /// let mut query = Query::builder();
    /// query.output_mode(OutputMode::Update);
    /// let windows = TimeWindows::sliding(Duration::from_micros(10), Duration::from_micros(5))?;
    /// let counts = query
    ///     .from_iter("times", [1i64, 7])
    ///     .window(windows, |t| Timestamp(*t))
    ///     .count()
    ///     .to_memory("counts");
    /// query.start()?.await_termination()?;
    /// let w = |s| Window { start: Timestamp(s), end: Timestamp(s + 10) };
    /// // Update mode, continuous: every window a record changed, after each record.
    /// assert_eq!(counts.rows(), vec![(w(-5), 1), (w(0), 1), (w(0), 2), (w(5), 1)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn window<W, TF>(self, spec: W, time: TF) -> GlobalWindowedStream<S, W, TF>
    where
        W: WindowSpec,
        TF: Fn(&S::Out) -> Timestamp + Clone + Send + 'static,
    {
        GlobalWindowedStream {
            inner: self
                .key_by(no_key::<S::Out> as fn(&S::Out))
                .with_parallelism(1)
                .window(spec, time),
        }
    }
}

/// The key of every record of a global window aggregate.
fn no_key<T>(_: &T) {}

/// A keyed stream grouped into windows, waiting for its aggregate. Created by
/// [`KeyedStream::window`].
#[must_use = "a windowed stream needs an aggregate (agg, count)"]
pub struct WindowedStream<S: Chain, F, W, TF> {
    keyed: KeyedStream<S, F>,
    spec: W,
    time: TF,
    late: Option<LateSink<S::Out>>,
}

impl<S: Chain, F, W, TF> fmt::Debug for WindowedStream<S, F, W, TF> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WindowedStream")
            .field("keyed", &self.keyed)
            .field("late_records", &self.late.is_some())
            .finish_non_exhaustive()
    }
}

impl<S, F, K, W, TF> WindowedStream<S, F, W, TF>
where
    S: Chain,
    F: FnMut(&S::Out) -> K + Clone + Send + 'static,
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    W: WindowSpec,
    TF: Fn(&S::Out) -> Timestamp + Clone + Send + 'static,
{
    /// Sends the late records (those none of whose windows was still open, see
    /// [`TimeWindowAggregate`](crate::window::TimeWindowAggregate)) to a stream of their
    /// own, which `sink` must end in a sink; without this they are counted and dropped.
    /// Spark has no such stream: it drops late rows.
    ///
    /// ```
    /// use rivulet::window::TimeWindows;
    /// use rivulet::{OutputMode, Query, Timestamp};
    /// use std::time::Duration;
    ///
    /// let mut query = Query::builder();
    /// query.output_mode(OutputMode::Complete);
    /// let late = std::sync::Arc::new(std::sync::Mutex::new(None));
    /// let keep = late.clone();
    /// let _counts = query
    ///     .from_iter("n", [1i64, 2, 3])
    ///     .key_by(|n| n % 2)
    ///     .window(TimeWindows::tumbling(Duration::from_micros(10))?, |n| Timestamp(*n))
    ///     .late_records(move |stream| *keep.lock().unwrap() = Some(stream.to_memory("late")))
    ///     .count()
    ///     .to_memory("counts");
    /// query.start()?.await_termination()?;
    /// // Complete mode drops nothing: no late records.
    /// assert!(late.lock().unwrap().as_ref().unwrap().rows().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn late_records(mut self, sink: impl FnOnce(Stream<InputChain<S::Out>>) + 'static) -> Self {
        self.late = Some(Box::new(sink));
        self
    }

    /// Aggregates each key's records in each window with `agg`, emitting `(key, window,
    /// result)` rows as the output mode says.
    ///
    /// A window specification that combines partial results (sliding windows, sessions)
    /// needs a [mergeable](Aggregate::mergeable) aggregate; otherwise `start()` fails,
    /// naming the operator.
    pub fn agg<A>(self, agg: A) -> Stream<impl Chain<Out = (K, Window, A::Out)>>
    where
        A: Aggregate<S::Out>,
    {
        let WindowedStream {
            keyed,
            spec,
            time,
            late,
        } = self;
        let name = spec.operator_name();
        let input = keyed.route(name);
        check_mergeable(&input, &spec, &agg, name);
        let op = spec.operator::<K, S::Out, A, TF>(agg, time);
        input.window_aggregate(name, op, late)
    }

    /// Counts each key's records in each window: `(key, window, count)` rows.
    pub fn count(self) -> Stream<impl Chain<Out = (K, Window, u64)>> {
        self.agg(crate::aggregate::count())
    }
}

/// A stream grouped into windows without a key, waiting for its aggregate. Created by
/// [`Stream::window`]; its rows are `(window, result)`.
#[must_use = "a windowed stream needs an aggregate (agg, count)"]
pub struct GlobalWindowedStream<S: Chain, W, TF> {
    inner: WindowedStream<S, fn(&S::Out), W, TF>,
}

impl<S: Chain, W, TF> fmt::Debug for GlobalWindowedStream<S, W, TF> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GlobalWindowedStream")
            .field("inner", &self.inner)
            .finish()
    }
}

impl<S, W, TF> GlobalWindowedStream<S, W, TF>
where
    S: Chain,
    W: WindowSpec,
    TF: Fn(&S::Out) -> Timestamp + Clone + Send + 'static,
{
    /// Sends the late records to a stream of their own, as
    /// [`WindowedStream::late_records`].
    pub fn late_records(mut self, sink: impl FnOnce(Stream<InputChain<S::Out>>) + 'static) -> Self {
        self.inner = self.inner.late_records(sink);
        self
    }

    /// Aggregates the records of each window with `agg`, emitting `(window, result)` rows
    /// as the output mode says (see [`WindowedStream::agg`]).
    pub fn agg<A>(self, agg: A) -> Stream<impl Chain<Out = (Window, A::Out)>>
    where
        A: Aggregate<S::Out>,
    {
        let WindowedStream {
            keyed,
            spec,
            time,
            late,
        } = self.inner;
        let name = spec.operator_name();
        let input = keyed.route(name);
        check_mergeable(&input, &spec, &agg, name);
        let op = Unkeyed(spec.operator::<(), S::Out, A, TF>(agg, time));
        input.window_aggregate(name, op, late)
    }

    /// Counts the records in each window: `(window, count)` rows.
    pub fn count(self) -> Stream<impl Chain<Out = (Window, u64)>> {
        self.agg(crate::aggregate::count())
    }
}

/// Records a build error (reported by `start()`) if `spec` needs to merge partial
/// aggregates and `agg` cannot.
fn check_mergeable<C, W, A, T>(input: &Stream<C>, spec: &W, agg: &A, name: &str)
where
    W: WindowSpec,
    A: Aggregate<T>,
{
    if spec.needs_merge() && !agg.mergeable() {
        let mut graph = input.graph.borrow_mut();
        let name = graph.unique_name(name);
        graph.errors.push(format!(
            "the window aggregate `{name}` needs a mergeable aggregate (its windows combine \
             partial results: sliding windows or sessions), and this aggregate does not \
             implement merge; use tumbling windows or a mergeable aggregate"
        ));
    }
}

/// A global window aggregate: the operator of key `()`, its rows without the key.
#[derive(Debug, Clone)]
struct Unkeyed<O>(O);

/// The context a global window aggregate's operator emits into: drops the `()` key.
struct DropKey<'a, C>(&'a mut C);

impl<C, V> Collector<((), Window, V)> for DropKey<'_, C>
where
    C: Collector<(Window, V)>,
{
    #[inline(always)]
    fn push(&mut self, ((), window, value): ((), Window, V)) {
        self.0.push((window, value));
    }
}

impl<C, V, Key, Side> Context<((), Window, V), Key, Side> for DropKey<'_, C>
where
    C: Context<(Window, V), Key, Side>,
{
    #[inline]
    fn side_output(&mut self, record: Side) {
        self.0.side_output(record);
    }
    fn watermark(&self) -> Timestamp {
        self.0.watermark()
    }
    fn processing_time(&self) -> Timestamp {
        self.0.processing_time()
    }
    fn epoch(&self) -> Epoch {
        self.0.epoch()
    }
    fn register_event_time_timer(&mut self, key: Key, time: Timestamp) -> bool {
        self.0.register_event_time_timer(key, time)
    }
    fn register_processing_time_timer(&mut self, key: Key, time: Timestamp) -> bool {
        self.0.register_processing_time_timer(key, time)
    }
    fn delete_event_time_timer(&mut self, key: &Key, time: Timestamp) -> bool {
        self.0.delete_event_time_timer(key, time)
    }
    fn delete_processing_time_timer(&mut self, key: &Key, time: Timestamp) -> bool {
        self.0.delete_processing_time_timer(key, time)
    }
    #[inline]
    fn count(&mut self, name: &'static str, n: u64) {
        self.0.count(name, n);
    }
    fn gauge(&mut self, name: &'static str, value: u64) {
        self.0.gauge(name, value);
    }
}

impl<T, V, O> Operator<((), T)> for Unkeyed<O>
where
    O: Operator<((), T), Out = ((), Window, V)>,
    V: Send + 'static,
{
    type Out = (Window, V);
    type Key = O::Key;
    type Side = O::Side;

    #[inline]
    fn on_record<C: Context<Self::Out, Self::Key, Self::Side>>(
        &mut self,
        record: ((), T),
        ctx: &mut C,
    ) {
        self.0.on_record(record, &mut DropKey(ctx));
    }

    fn on_timer<C: Context<Self::Out, Self::Key, Self::Side>>(
        &mut self,
        timer: Timer<Self::Key>,
        ctx: &mut C,
    ) {
        self.0.on_timer(timer, &mut DropKey(ctx));
    }

    fn on_watermark<C: Context<Self::Out, Self::Key, Self::Side>>(
        &mut self,
        watermark: Timestamp,
        ctx: &mut C,
    ) {
        self.0.on_watermark(watermark, &mut DropKey(ctx));
    }

    fn on_marker<C: Context<Self::Out, Self::Key, Self::Side>>(
        &mut self,
        epoch: Epoch,
        ctx: &mut C,
    ) {
        self.0.on_marker(epoch, &mut DropKey(ctx));
    }

    fn on_commit(&mut self, epoch: Epoch) {
        self.0.on_commit(epoch);
    }

    fn set_emit_mode(&mut self, mode: EmitMode) {
        self.0.set_emit_mode(mode);
    }

    fn on_end<C: Context<Self::Out, Self::Key, Self::Side>>(&mut self, ctx: &mut C) {
        self.0.on_end(&mut DropKey(ctx));
    }

    fn state_metrics(&self) -> Option<crate::metrics::StateMetrics> {
        self.0.state_metrics()
    }

    fn snapshot(&self) -> Result<Option<Vec<u8>>, BoxError> {
        self.0.snapshot()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), BoxError> {
        self.0.restore(state)
    }
}

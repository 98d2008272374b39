//! Spark Streaming's (DStream) window operations by processing time:
//! [`Stream::window_by_processing_time`], [`Stream::count_by_window`],
//! [`Stream::count_by_value_and_window`], [`KeyedStream::reduce_by_key_and_window`] and
//! [`KeyedStream::reduce_by_key_and_window_inv`]. The operator and its semantics are in
//! [`window::processing`](crate::window::processing).
//!
//! Each appends a [`ProcessingWindows`] operator behind the keyed route (a window over
//! the whole stream is keyed by `()` into one instance). The operator learns the trigger
//! interval when `start()` builds it, not while the query is built (the trigger may be
//! set after the stream), and a micro-batch interval that does not divide the window
//! length and slide makes `start()` fail, naming the operator, the two durations and
//! the interval.
//!
//! Each window's rows are emitted once and never revised, so the operator counts as a
//! transformation for Spark's output-mode rules: append and update mode take its rows as
//! they come; complete mode, which needs a result table, is refused unless the query also
//! has an aggregation (whose table it then is).

use super::{Chain, KeyedInput, KeyedStream, Stream, Then};
use crate::error::Error;
use crate::operator::Operator;
use crate::plan::{Graph, OperatorKind, PortId};
use crate::runtime::{Downstream, Task};
use crate::window::processing::{
    Collect, Count, KeyedRows, ProcessingWindows, Reduce, ReduceInv, RowShape, SliceFold,
};
use crate::window::{Window, WindowSpecError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::hash::Hash;
use std::time::Duration;

impl<S: Chain> Stream<S> {
    /// Every `slide`, the records that arrived during the last `length` of processing
    /// time, as one `(window, records)` row (Spark Streaming's `window(windowLength,
    /// slideInterval)`, which re-emits the window's records each slide; one row per
    /// window keeps the typed API). Records keep their arrival order; windows without
    /// records emit nothing. The window runs as one instance.
    ///
    /// In micro-batch mode `length` and `slide` must be multiples of the trigger
    /// interval (`start()` fails otherwise); see
    /// [`window::processing`](crate::window::processing) for how batches and windows
    /// line up, and for continuous mode.
    ///
    /// ```
    /// use rivulet::time::ManualClock;
    /// use rivulet::window::Window;
    /// use rivulet::Timestamp;
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new(Timestamp(5_000_000)); // 5 s
    /// let mut query = rivulet::Query::builder();
    /// query.clock(clock.clock());
    /// let (input, lines) = query.push_source::<String>("lines");
    /// let windows = lines
    ///     .window_by_processing_time(Duration::from_secs(10), Duration::from_secs(10))
    ///     .to_memory("windows");
    /// let running = query.start()?;
    /// input.push("a".to_string()).unwrap();
    /// input.push("b".to_string()).unwrap();
    /// assert!(input.flush(Duration::from_secs(60)));
    /// clock.set(Timestamp(10_000_000)); // the window [0 s, 10 s) ends
    /// windows.wait_for_len(1, Duration::from_secs(60));
    /// let window = Window { start: Timestamp(0), end: Timestamp(10_000_000) };
    /// assert_eq!(windows.rows(), vec![(window, vec!["a".to_string(), "b".to_string()])]);
    /// drop(input);
    /// running.await_termination()?;
    /// # Ok::<(), rivulet::Error>(())
    /// ```
    pub fn window_by_processing_time(
        self,
        length: Duration,
        slide: Duration,
    ) -> Stream<impl Chain<Out = (Window, Vec<S::Out>)>>
    where
        S::Out: Clone + Serialize + DeserializeOwned,
    {
        let name = "window";
        let op = windows(&self, name, Collect, length, slide).without_key();
        self.key_by(|_: &S::Out| ())
            .with_parallelism(1)
            .processing_windows(name, op)
    }

    /// Every `slide`, the number of records that arrived during the last `length` of
    /// processing time, as `(window, count)` (Spark Streaming's `countByWindow`). Windows
    /// without records emit nothing. The count runs as one instance, incrementally.
    ///
    /// In micro-batch mode `length` and `slide` must be multiples of the trigger
    /// interval; see [`window_by_processing_time`](Self::window_by_processing_time).
    pub fn count_by_window(
        self,
        length: Duration,
        slide: Duration,
    ) -> Stream<impl Chain<Out = (Window, u64)>> {
        let name = "count_by_window";
        let op = windows(&self, name, Count, length, slide).without_key();
        self.key_by(|_: &S::Out| ())
            .with_parallelism(1)
            .processing_windows(name, op)
    }

    /// Every `slide`, how often each distinct record arrived during the last `length` of
    /// processing time, as `(record, window, count)`, one row per record present in the
    /// window (Spark Streaming's `countByValueAndWindow`). Runs incrementally, at the
    /// query's parallelism (as [`count_by_value`](Self::count_by_value)).
    ///
    /// In micro-batch mode `length` and `slide` must be multiples of the trigger
    /// interval; see [`window_by_processing_time`](Self::window_by_processing_time).
    pub fn count_by_value_and_window(
        self,
        length: Duration,
        slide: Duration,
    ) -> Stream<impl Chain<Out = (S::Out, Window, u64)>>
    where
        S::Out: Hash + Eq + Clone + Serialize + DeserializeOwned,
    {
        let name = "count_by_value_and_window";
        let op = windows(&self, name, Count, length, slide);
        self.key_by(|record: &S::Out| record.clone())
            .processing_windows(name, op)
    }
}

impl<S, F, K> KeyedStream<S, F>
where
    S: Chain,
    F: FnMut(&S::Out) -> K + Clone + Send + 'static,
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
{
    /// Every `slide`, each key's records of the last `length` of processing time reduced
    /// with `reduce(&mut acc, record)`, as `(key, window, value)`, one row per key present
    /// in the window (Spark Streaming's `reduceByKeyAndWindow(reduceFunc, windowLength,
    /// slideInterval)`). Slices of `gcd(length, slide)` are reduced as records arrive;
    /// each window merges its slices.
    ///
    /// In micro-batch mode `length` and `slide` must be multiples of the trigger
    /// interval; see [`window::processing`](crate::window::processing).
    ///
    /// ```
    /// use rivulet::time::ManualClock;
    /// use rivulet::Timestamp;
    /// use std::time::Duration;
    ///
    /// // Spark's windowed word count: counts over the last 30 s, every 10 s.
    /// let clock = ManualClock::new(Timestamp(0));
    /// let mut query = rivulet::Query::builder();
    /// query.clock(clock.clock());
    /// let (input, lines) = query.push_source::<String>("lines");
    /// let counts = lines
    ///     .flat_map(|line: String| {
    ///         line.split(' ').map(|w| (w.to_string(), 1u64)).collect::<Vec<_>>()
    ///     })
    ///     .key_by(|(word, _)| word.clone())
    ///     .reduce_by_key_and_window(
    ///         |acc: &mut (String, u64), (_, n)| acc.1 += n,
    ///         Duration::from_secs(30),
    ///         Duration::from_secs(10),
    ///     )
    ///     .map(|(word, window, (_, n))| (word, window.end.0 / 1_000_000, n))
    ///     .to_memory("counts");
    /// let running = query.start()?;
    /// input.push("to be or not to be".to_string()).unwrap();
    /// assert!(input.flush(Duration::from_secs(60)));
    /// clock.set(Timestamp(10_000_000));
    /// counts.wait_for_len(4, Duration::from_secs(60));
    /// let mut rows = counts.rows();
    /// rows.sort();
    /// let expected = [("be", 2), ("not", 1), ("or", 1), ("to", 2)];
    /// let expected: Vec<_> = expected.iter().map(|(w, n)| (w.to_string(), 10, *n)).collect();
    /// assert_eq!(rows, expected);
    /// drop(input);
    /// running.await_termination()?;
    /// # Ok::<(), rivulet::Error>(())
    /// ```
    pub fn reduce_by_key_and_window<G>(
        self,
        reduce: G,
        length: Duration,
        slide: Duration,
    ) -> Stream<impl Chain<Out = (K, Window, S::Out)>>
    where
        S::Out: Clone + Serialize + DeserializeOwned,
        G: FnMut(&mut S::Out, S::Out) + Clone + Send + 'static,
    {
        let name = "reduce_by_key_and_window";
        let op = windows(&self.stream, name, Reduce(reduce), length, slide);
        self.processing_windows(name, op)
    }

    /// [`reduce_by_key_and_window`](Self::reduce_by_key_and_window) computed
    /// incrementally (Spark Streaming's `reduceByKeyAndWindow(reduceFunc, invReduceFunc,
    /// windowLength, slideInterval)`): one running value per key, to which each window
    /// adds the slices entering it (`reduce`) and from which it takes those leaving it
    /// (`inverse(&mut acc, leaving)`). A key whose records all left the window is dropped
    /// (Spark needs a `filterFunc` for that), so the rows equal the plain form's as long
    /// as `inverse` undoes `reduce` exactly (integers, not floating point).
    ///
    /// In micro-batch mode `length` and `slide` must be multiples of the trigger
    /// interval; see [`window::processing`](crate::window::processing).
    pub fn reduce_by_key_and_window_inv<G, I>(
        self,
        reduce: G,
        inverse: I,
        length: Duration,
        slide: Duration,
    ) -> Stream<impl Chain<Out = (K, Window, S::Out)>>
    where
        S::Out: Clone + Serialize + DeserializeOwned,
        G: FnMut(&mut S::Out, S::Out) + Clone + Send + 'static,
        I: FnMut(&mut S::Out, S::Out) + Clone + Send + 'static,
    {
        let name = "reduce_by_key_and_window";
        let fold = ReduceInv { reduce, inverse };
        let op = windows(&self.stream, name, fold, length, slide);
        self.processing_windows(name, op)
    }

    /// Appends `op` behind the keyed route, wrapped so that `start()` hands it the
    /// trigger interval.
    fn processing_windows<A, G, R>(
        self,
        name: &str,
        op: ProcessingWindows<K, A, G, R>,
    ) -> Windowed<S, F, K, A, G, R>
    where
        ProcessingWindows<K, A, G, R>: Operator<(K, S::Out), Out = R::Out>,
        G: SliceFold<S::Out, Acc = A>,
        A: Clone + Send + 'static,
        R: RowShape<K, A>,
    {
        let windowed = self.route(name).then(name, OperatorKind::Transform, op);
        Stream {
            graph: windowed.graph,
            chain: TriggerAware(windowed.chain),
            group: windowed.group,
            parallelism: windowed.parallelism,
            last_op: windowed.last_op,
            upstream: windowed.upstream,
            watermarked: windowed.watermarked,
        }
    }
}

/// A keyed stream's records through a [`ProcessingWindows`] operator.
type Windowed<S, F, K, A, G, R> = Stream<TriggerAware<KeyedInput<S, F, K>, K, A, G, R>>;

/// The operator for `name`, or (with the problem reported by `start()`) a stand-in if
/// `length` and `slide` are invalid.
fn windows<S, K, A, G>(
    stream: &Stream<S>,
    name: &str,
    fold: G,
    length: Duration,
    slide: Duration,
) -> ProcessingWindows<K, A, G, KeyedRows>
where
    G: Clone,
{
    ProcessingWindows::new(fold.clone(), length, slide).unwrap_or_else(|error| {
        stream
            .graph
            .borrow_mut()
            .errors
            .push(format!("`{name}`: {error}"));
        let tick = Duration::from_micros(1);
        ProcessingWindows::new(fold, tick, tick).expect("a 1 µs window is valid")
    })
}

/// A chain ending in a [`ProcessingWindows`] operator that learns, when `start()` builds
/// it, which trigger the query starts with (and refuses one whose interval does not fit).
pub(super) struct TriggerAware<S, K, A, G, R>(Then<S, ProcessingWindows<K, A, G, R>>)
where
    S: Chain,
    ProcessingWindows<K, A, G, R>: Operator<S::Out>;

impl<S, K, A, G, R> Clone for TriggerAware<S, K, A, G, R>
where
    S: Chain,
    ProcessingWindows<K, A, G, R>: Operator<S::Out> + Clone,
{
    fn clone(&self) -> Self {
        TriggerAware(self.0.clone())
    }
}

impl<S, K, A, G, R> std::fmt::Debug for TriggerAware<S, K, A, G, R>
where
    S: Chain,
    ProcessingWindows<K, A, G, R>: Operator<S::Out>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("TriggerAware").field(&self.0.op).finish()
    }
}

impl<S, K, A, G, R> Chain for TriggerAware<S, K, A, G, R>
where
    S: Chain,
    K: 'static,
    A: 'static,
    G: 'static,
    R: 'static,
    ProcessingWindows<K, A, G, R>: Operator<S::Out> + Clone,
    <ProcessingWindows<K, A, G, R> as Operator<S::Out>>::Out: Send + 'static,
{
    type Out = <ProcessingWindows<K, A, G, R> as Operator<S::Out>>::Out;

    fn input_port(&self) -> Option<PortId> {
        self.0.input_port()
    }

    #[allow(private_interfaces, private_bounds)]
    fn finish<C>(mut self, downstream: C, graph: &mut Graph, instance: usize) -> Box<dyn Task>
    where
        C: Downstream<Self::Out> + Send + 'static,
    {
        let trigger = graph.checkpoint.as_ref().map(|build| build.trigger);
        if let Err(error) = self.0.op.configure(trigger) {
            refuse(graph, self.0.id, error);
        }
        self.0.finish(downstream, graph, instance)
    }
}

/// Makes `start()` fail with `error`, naming the operator (the first failure wins).
fn refuse(graph: &mut Graph, op: usize, error: WindowSpecError) {
    if graph.fatal.is_none() {
        let name = graph.operators[op].name.clone();
        graph.fatal = Some(Error::Config(format!("`{name}`: {error}")));
    }
}

//! The typed query builder: [`Stream`] and its combinators.
//!
//! A `Stream<S>` is a chain of operators not yet attached to a consumer; `S` is the
//! chain's type, built up by each combinator (`map` wraps it, `filter` wraps that, …) so
//! that user closures stay generic parameters and a thread's chain compiles to straight
//! code. A chain ends at a sink, or at a thread boundary (`key_by` with an exchange,
//! `union`, `fan_out`, `new_thread`), where it is turned into one erased task per thread
//! and the stream continues on the other side of new ring edges.
//!
//! ```
//! let mut query = rivulet::Query::builder();
//! let words = query.from_iter("lines", ["a b", "b c", "c"]);
//! let counts = words
//!     .flat_map(|line: &str| line.split(' ').map(str::to_string).collect::<Vec<_>>())
//!     .count_by_value()
//!     .to_memory("counts");
//! query.start().unwrap().await_termination().unwrap();
//! // Running counts, one update per word (update mode).
//! let mut rows = counts.rows();
//! rows.sort();
//! assert_eq!(rows.last(), Some(&("c".to_string(), 2)));
//! ```
//!
//! Building only records the plan: each ended chain leaves a build step in the graph,
//! and [`QueryBuilder::start`](crate::QueryBuilder::start) runs them after recovery,
//! each group after the groups that send into it, so restored state reaches every
//! operator and every edge exists before the chain that reads it is built.
//!
//! ## Files
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | [`Stream`], the combinators that stay on the thread (`map`, `filter`, `operator`, …), the sinks, and `terminate`, which records how an ended chain is built |
//! | `chain.rs` | the chain types ([`Chain`], [`SourceChain`], [`InputChain`], [`Then`], [`KeyedInput`]) and how each builds its part of a thread's task |
//! | `keyed.rs` | [`Stream::key_by`], [`KeyedStream`] and the keyed aggregates |
//! | `window.rs` | window aggregates: [`KeyedStream::window`], [`Stream::window`], [`WindowedStream`] |
//! | `boundary.rs` | thread boundaries: `union`, `fan_out`, `new_thread`, the keyed exchange, side outputs |
//! | `maybe_watermark.rs` | `MaybeWatermarked` (crate-private): an operator, then — chosen at run time — the watermark generator and a second operator, as one chain type (the DataFrame layer's prelude) |
//! | `connect.rs` | two streams into one two-input operator: [`Stream::connect`], [`KeyedStream::connect`], [`ConnectedStreams`] |
//! | `static_join.rs` | stream–static joins: [`Stream::join_static`], [`Stream::left_outer_join_static`] and their `_with` variants |
//! | `dstream.rs` | Spark Streaming's window operations by processing time (`window_by_processing_time`, `count_by_window`, `reduce_by_key_and_window`, …) |
//! | `dstream_join.rs` | Spark Streaming's joins per batch of two keyed streams (`join_per_batch`, `left_outer_join_per_batch`, …, `cogroup_per_batch`) |

mod boundary;
mod chain;
mod connect;
mod dedup;
mod dstream;
mod dstream_join;
mod event_time;
mod join;
mod keyed;
mod maybe_watermark;
mod socket;
mod state;
mod static_join;
mod window;

pub(crate) use boundary::UnionInput;
pub use chain::{Chain, InputChain, KeyedInput, SourceChain, Then};
pub(crate) use connect::KeyedConnection;
pub use connect::{ConnectedStreams, TwoInputChain};
pub use event_time::{EventTimeStream, Watermarked};
pub(crate) use join::JoinType as StreamJoinType;
pub use join::{EventTimeJoin, JoinBuilder};
pub use keyed::KeyedStream;
pub use window::{GlobalWindowedStream, WindowedStream};

use crate::event::Epoch;
use crate::operator::stateless::{Filter, FlatMap, Inspect, Map};
use crate::operator::Operator;
use crate::plan::{Deferred, Graph, GroupId, OpId, OperatorKind};
use crate::runtime::Downstream;
use crate::sink::{
    ConsoleSink, FileFormat, FileSink, ForEachSink, MemorySink, MemoryTable, Sink, SinkContext,
    SinkStage,
};
use crate::source::Source;
use serde::Serialize;
use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

/// A stream of records of type `S::Out`, being built. See the [module docs](self).
///
/// Streams are consumed by their combinators. To use one stream twice, split it with
/// [`fan_out`](Stream::fan_out). Every branch of a query must end in a sink: `start()`
/// fails for a stream still alive (neither sent to a sink nor dropped), and for one that
/// was dropped without reaching a sink (its source or thread would have nowhere to send).
#[must_use = "a stream does nothing until it ends in a sink"]
pub struct Stream<S> {
    graph: Rc<RefCell<Graph>>,
    chain: S,
    group: GroupId,
    parallelism: usize,
    last_op: Option<OpId>,
    /// The operators whose records this stream carries (several after a union): the
    /// next operator's upstream in the plan's edges.
    upstream: Vec<OpId>,
    /// Whether every record reaching the end of the chain comes with watermarks
    /// ([`with_watermark`](Stream::with_watermark) upstream on every path): what append
    /// mode on a window aggregate needs.
    watermarked: bool,
}

impl<S> fmt::Debug for Stream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("group", &self.group)
            .field("parallelism", &self.parallelism)
            .finish_non_exhaustive()
    }
}

impl<S: Source> Stream<SourceChain<S>> {
    /// A source run as `sources.len()` instances, one thread each (instance `i` runs
    /// `sources[i]`); the stream continues with that parallelism.
    pub(crate) fn from_sources(graph: Rc<RefCell<Graph>>, name: &str, sources: Vec<S>) -> Self {
        let parallelism = sources.len();
        let (group, op) = {
            let mut g = graph.borrow_mut();
            let name = g.unique_name(name);
            let group = g.add_group(&name, parallelism);
            let op = g.add_operator(&name, OperatorKind::Source, parallelism);
            (group, op)
        };
        Stream {
            graph,
            chain: SourceChain {
                sources: Rc::new(RefCell::new(sources.into_iter().map(Some).collect())),
                op,
                group,
            },
            group,
            parallelism,
            last_op: Some(op),
            upstream: vec![op],
            watermarked: false,
        }
    }
}

impl<S: Chain> Stream<S> {
    /// Number of parallel instances this stream runs as.
    pub fn parallelism(&self) -> usize {
        self.parallelism
    }

    /// The plan this stream is part of (the DataFrame layer keeps its views there).
    pub(crate) fn graph(&self) -> &Rc<RefCell<Graph>> {
        &self.graph
    }

    /// Appends `op`, named `name`, to the chain (on the same thread).
    ///
    /// This is how custom operators join a query; `map`, `filter` and the rest are
    /// built on it.
    pub fn operator<O>(self, name: &str, op: O) -> Stream<Then<S, O>>
    where
        O: Operator<S::Out> + Clone,
        O::Out: Send + 'static,
    {
        self.then(name, OperatorKind::Transform, op)
    }

    /// The same stream with its chain replaced by `f(chain)` (a chain type that holds
    /// the same operators differently).
    fn map_chain<S2>(self, f: impl FnOnce(S) -> S2) -> Stream<S2> {
        Stream {
            graph: self.graph,
            chain: f(self.chain),
            group: self.group,
            parallelism: self.parallelism,
            last_op: self.last_op,
            upstream: self.upstream,
            watermarked: self.watermarked,
        }
    }

    fn then<O>(self, name: &str, kind: OperatorKind, op: O) -> Stream<Then<S, O>>
    where
        O: Operator<S::Out> + Clone,
        O::Out: Send + 'static,
    {
        let id = {
            let mut g = self.graph.borrow_mut();
            let name = g.unique_name(name);
            let id = g.add_operator(&name, kind, self.parallelism);
            g.add_edges(&self.upstream, id);
            id
        };
        Stream {
            graph: self.graph,
            chain: Then {
                upstream: self.chain,
                op,
                id,
                group: self.group,
                side: None,
                watermarked: self.watermarked,
            },
            group: self.group,
            parallelism: self.parallelism,
            last_op: Some(id),
            upstream: vec![id],
            watermarked: self.watermarked,
        }
    }

    /// Appends the window aggregate `op`, named `name`; if `late` is given, the
    /// operator's side output (its late records) becomes a stream on a thread of its
    /// own, handed to `late` to be sunk.
    #[allow(clippy::type_complexity)]
    pub(super) fn window_aggregate<O>(
        self,
        name: &str,
        op: O,
        late: Option<Box<dyn FnOnce(Stream<InputChain<O::Side>>)>>,
    ) -> Stream<Then<S, O>>
    where
        O: Operator<S::Out> + Clone,
        O::Out: Send + 'static,
    {
        self.note_window_aggregate(name);
        match late {
            None => self.then(name, OperatorKind::WindowAggregate, op),
            Some(sink_late) => {
                let (main, side) =
                    self.then_with_side_output(name, OperatorKind::WindowAggregate, op);
                sink_late(side);
                main
            }
        }
    }

    /// Records, before a window aggregate named `name` is appended, whether its input has
    /// watermarks (append mode refuses it otherwise, at `start()`).
    fn note_window_aggregate(&self, name: &str) {
        if !self.watermarked {
            let mut graph = self.graph.borrow_mut();
            let name = graph.unique_name(name);
            graph.unwatermarked_windows.push(name);
        }
    }

    /// Renames the operator added last (as shown in progress reports and errors).
    ///
    /// ```
    /// let mut query = rivulet::Query::builder();
    /// query.from_iter("n", 0..3u64).map(|x| x + 1).named("add_one").for_each(|_| {});
    /// let running = query.start().unwrap();
    /// running.await_termination().unwrap();
    /// assert!(running.progress().operators.iter().any(|op| op.name == "add_one"));
    /// ```
    pub fn named(self, name: &str) -> Self {
        if let Some(op) = self.last_op {
            self.graph.borrow_mut().rename_operator(op, name);
        }
        self
    }

    /// Transforms every record with `f` (Spark's `map`).
    pub fn map<U, F>(self, f: F) -> Stream<Then<S, Map<F>>>
    where
        F: FnMut(S::Out) -> U + Clone + Send + 'static,
        U: Send + 'static,
    {
        self.then("map", OperatorKind::Transform, Map(f))
    }

    /// Keeps the records for which `f` returns `true` (Spark's `filter`).
    pub fn filter<F>(self, f: F) -> Stream<Then<S, Filter<F>>>
    where
        F: FnMut(&S::Out) -> bool + Clone + Send + 'static,
    {
        self.then("filter", OperatorKind::Transform, Filter(f))
    }

    /// Replaces every record with the items `f` returns (Spark's `flatMap`).
    pub fn flat_map<I, F>(self, f: F) -> Stream<Then<S, FlatMap<F>>>
    where
        F: FnMut(S::Out) -> I + Clone + Send + 'static,
        I: IntoIterator,
        I::Item: Send + 'static,
    {
        self.then("flat_map", OperatorKind::Transform, FlatMap(f))
    }

    /// Calls `f` on every record, passing records on unchanged.
    pub fn inspect<F>(self, f: F) -> Stream<Then<S, Inspect<F>>>
    where
        F: FnMut(&S::Out) + Clone + Send + 'static,
    {
        self.then("inspect", OperatorKind::Transform, Inspect(f))
    }

    /// Ends the chain in `make(graph, instance)` for every instance. Only recorded here:
    /// `start()` builds the tasks (restoring state, connecting edges) in the order the
    /// chains were ended, so every edge exists before the chain reading it is built.
    fn terminate<C>(self, mut make: impl FnMut(&mut Graph, usize) -> C + 'static)
    where
        C: Downstream<S::Out> + Send + 'static,
    {
        let Stream {
            graph,
            chain,
            group,
            parallelism,
            ..
        } = self;
        let mut g = graph.borrow_mut();
        g.groups[group].terminated = true;
        let reads = chain.input_port();
        g.deferred.push(Deferred {
            group,
            reads,
            build: Box::new(move |g: &mut Graph| {
                for instance in 0..parallelism {
                    let downstream = make(g, instance);
                    let task = chain.clone().finish(downstream, g, instance);
                    g.set_task(group, instance, task);
                }
            }),
        });
    }

    /// Sends every record to `sink`, named `name` (cloned once per instance).
    pub fn sink<K>(self, name: &str, sink: K)
    where
        K: Sink<S::Out> + Clone,
    {
        // The sink is opened by `start()` (after recovery, once nothing can fail any
        // more), never while the query is being built.
        let op = {
            let mut g = self.graph.borrow_mut();
            let name = g.unique_name(name);
            let op = g.add_operator(&name, OperatorKind::Sink, self.parallelism);
            g.add_edges(&self.upstream, op);
            op
        };
        let parallelism = self.parallelism;
        self.terminate(move |g, instance| {
            let (metrics, name) = g.operator_instance(op, instance);
            let participant = g.participant(op, instance);
            let context = SinkContext {
                name: name.to_string(),
                instance,
                parallelism,
                output_mode: g.config.output_mode,
                epochs: participant.is_some(),
                checkpointed: g.persistent(),
                first_epoch: Epoch(g.first_epoch()),
                replayed_epoch: g.replayed_epoch().map(Epoch),
                query_id: g.query_id(),
                counters: metrics.named.clone(),
            };
            SinkStage::new(
                sink.clone(),
                context,
                metrics,
                g.control.clone(),
                participant,
                g.first_emit_mode(),
            )
        });
    }

    /// Calls `f` for every record (Spark's `foreach` sink).
    pub fn for_each<F>(self, f: F)
    where
        F: FnMut(S::Out) + Clone + Send + 'static,
    {
        self.sink("for_each", ForEachSink(f));
    }

    /// Prints every record on standard output (Spark's `console` sink): a table per
    /// micro-batch, with one column per field, or one line per record in continuous
    /// epochs. See [`ConsoleSink`] for the format; use [`Stream::sink`] with a configured
    /// [`ConsoleSink`] for another output, a prefix or other table options.
    pub fn to_console(self)
    where
        S::Out: Serialize,
    {
        self.sink("console", ConsoleSink::new(""));
    }

    /// Writes every record to part files in `dir` (Spark's `file` sink), as CSV, JSON
    /// lines or text lines ([`FileFormat`]): one part file per epoch and sink instance,
    /// staged in a temporary file and renamed into place once the epoch is complete, with
    /// a commit record of its own.
    /// With a micro-batch trigger and checkpointing the output is exactly-once across
    /// crashes; read it with [`sink::file::read_committed`](crate::sink::file::read_committed).
    /// A checkpointed query refuses to start on a directory that another query (or this
    /// one, before its checkpoint directory was deleted) wrote: see
    /// [`FileSinkError::ForeignOutput`](crate::sink::file::FileSinkError::ForeignOutput).
    pub fn to_files(self, dir: impl AsRef<std::path::Path>, format: FileFormat)
    where
        S::Out: Serialize,
    {
        self.sink("files", FileSink::new(dir, format));
    }

    /// Collects every record into a table named `name` (Spark's `memory` sink). The
    /// table can be read while the query runs, through the returned handle or
    /// [`Query::memory_table`](crate::Query::memory_table).
    pub fn to_memory(self, name: &str) -> MemoryTable<S::Out>
    where
        S::Out: Sync,
    {
        let table = MemoryTable::new();
        self.graph
            .borrow_mut()
            .tables
            .push((name.to_string(), Box::new(table.clone())));
        self.sink(name, MemorySink::new(table.clone()));
        table
    }
}

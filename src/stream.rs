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

use crate::event::Epoch;
use crate::operator::exchange::{BroadcastOut, ExchangeOut, ForwardOut};
use crate::operator::keyed::{KeyedFold, KeyedReduce};
use crate::operator::stage::{restore_stage, SideOut, Stage, StageParts};
use crate::operator::stateless::{Filter, FlatMap, Inspect, KeyBy, Map};
use crate::operator::timer::TimerService;
use crate::operator::{Downstream, Operator};
use crate::plan::{Deferred, Graph, GroupId, OpId, PortId, PortKind};
use crate::query::progress::OperatorKind;
use crate::runtime::chain_time::ChainTime;
use crate::runtime::heads::{InputTask, SourceCheckpoint, SourceTask};
use crate::runtime::Task;
use crate::sink::{
    ConsoleSink, FileFormat, FileSink, ForEachSink, MemorySink, MemoryTable, Sink, SinkContext,
    SinkStage,
};
use crate::source::{Source, SourceContext, WakeHandle};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::cell::RefCell;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

/// A chain of operators from a head (a source or input edges) to records of type `Out`.
///
/// Implemented by rivulet's chain types only; it appears in signatures as
/// `Stream<impl Chain<Out = T>>`.
pub trait Chain: Clone + 'static {
    /// The records at the end of the chain.
    type Out: Send + 'static;

    /// Attaches `downstream` to the end of the chain and returns the task for one
    /// instance of the chain's thread group (at `start()`, after recovery).
    #[doc(hidden)]
    #[allow(private_interfaces, private_bounds)]
    fn finish<C>(self, downstream: C, graph: &mut Graph, instance: usize) -> Box<dyn Task>
    where
        C: Downstream<Self::Out> + Send + 'static;

    /// The union port this chain reads from, if it is nothing but that port.
    #[doc(hidden)]
    fn bare_port(&self) -> Option<PortId> {
        None
    }

    /// The port whose input edges the chain starts at (`None` for a source).
    #[doc(hidden)]
    fn input_port(&self) -> Option<PortId>;
}

/// Why a user `restore` failed (an error or a panic), if it did. The failure is reported
/// by `start()`, not thrown from the builder call that attached the operator.
fn restore_failure(
    outcome: std::thread::Result<Result<(), crate::error::BoxError>>,
) -> Option<String> {
    match outcome {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(error.to_string()),
        Err(payload) => Some(format!(
            "panicked: {}",
            crate::error::panic_message(payload.as_ref())
        )),
    }
}

/// The head of a chain that starts at a source (one source per instance).
pub struct SourceChain<S> {
    sources: Rc<RefCell<Vec<Option<S>>>>,
    op: OpId,
    group: GroupId,
}

impl<S> Clone for SourceChain<S> {
    fn clone(&self) -> Self {
        SourceChain {
            sources: self.sources.clone(),
            op: self.op,
            group: self.group,
        }
    }
}

impl<S> fmt::Debug for SourceChain<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceChain").field("op", &self.op).finish()
    }
}

impl<S: Source> Chain for SourceChain<S> {
    type Out = S::Item;

    fn input_port(&self) -> Option<PortId> {
        None
    }

    #[allow(private_interfaces, private_bounds)]
    fn finish<C>(self, downstream: C, graph: &mut Graph, instance: usize) -> Box<dyn Task>
    where
        C: Downstream<S::Item> + Send + 'static,
    {
        let (metrics, name) = graph.operator_instance(self.op, instance);
        let instances = self.sources.borrow().len();
        let mut source = self.sources.borrow_mut()[instance]
            .take()
            .expect("each source instance is attached once");
        let participant = graph.participant(self.op, instance);
        if graph.persistent()
            && !source.can_replay()
            && !graph.unreplayable.iter().any(|n| **n == *name)
        {
            graph.unreplayable.push(name.to_string());
        }
        if let Some(offset) = graph.restored_offset(self.op, instance) {
            let restored = catch_unwind(AssertUnwindSafe(|| source.restore(offset)));
            if let Some(message) = restore_failure(restored) {
                graph.restore_failed(self.op, message);
            }
        }
        let replay = graph.replay_records(self.op, instance);
        let max_batch = graph.config.max_batch_records;
        let epochs = graph.epochs();
        let signal = graph.groups[self.group].signals[instance].clone();
        let checkpoint = participant.map(|participant| {
            participant.shared.clock.add_source(signal.clone());
            SourceCheckpoint::new(participant, replay, max_batch)
        });
        let context = SourceContext {
            name: name.to_string(),
            instance,
            instances,
            checkpoint_dir: graph.checkpoint_dir(),
            wake: WakeHandle::new(signal),
            checkpoint: graph.checkpoint_config().zip(epochs.clone()),
        };
        Box::new(SourceTask {
            source,
            chain: downstream,
            metrics,
            control: graph.control.clone(),
            name,
            draining: false,
            checkpoint,
            time: ChainTime::new(graph.config.clock.clone(), epochs),
            context: Some(context),
        })
    }
}

/// The head of a chain that starts at the input edges of a thread boundary.
pub struct InputChain<T> {
    port: PortId,
    name: Rc<str>,
    _record: PhantomData<fn() -> T>,
}

impl<T> Clone for InputChain<T> {
    fn clone(&self) -> Self {
        InputChain {
            port: self.port,
            name: self.name.clone(),
            _record: PhantomData,
        }
    }
}

impl<T> fmt::Debug for InputChain<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InputChain")
            .field("port", &self.port)
            .finish()
    }
}

impl<T: Send + 'static> Chain for InputChain<T> {
    type Out = T;

    #[allow(private_interfaces, private_bounds)]
    fn finish<C>(self, downstream: C, graph: &mut Graph, instance: usize) -> Box<dyn Task>
    where
        C: Downstream<T> + Send + 'static,
    {
        let inputs = graph.take_receivers::<T>(self.port, instance);
        let time = ChainTime::new(graph.config.clock.clone(), graph.epochs());
        Box::new(InputTask::new(
            inputs,
            downstream,
            graph.control.clone(),
            std::sync::Arc::from(&*self.name),
            graph.aligned(),
            time,
        ))
    }

    fn bare_port(&self) -> Option<PortId> {
        Some(self.port)
    }

    fn input_port(&self) -> Option<PortId> {
        Some(self.port)
    }
}

/// A chain followed by one more operator.
#[derive(Debug, Clone)]
pub struct Then<S, O> {
    upstream: S,
    op: O,
    id: OpId,
    group: GroupId,
    /// The port of the side output's thread group, if the side output is read.
    side: Option<PortId>,
}

impl<S, O> Chain for Then<S, O>
where
    S: Chain,
    O: Operator<S::Out> + Clone,
    O::Out: Send + 'static,
{
    type Out = O::Out;

    fn input_port(&self) -> Option<PortId> {
        self.upstream.input_port()
    }

    #[allow(private_interfaces, private_bounds)]
    fn finish<C>(self, downstream: C, graph: &mut Graph, instance: usize) -> Box<dyn Task>
    where
        C: Downstream<O::Out> + Send + 'static,
    {
        let (metrics, name) = graph.operator_instance(self.id, instance);
        let mut op = self.op;
        let mut timers = TimerService::new();
        if let Some((state, legacy)) = graph.restored_state(self.id, instance) {
            let restored = catch_unwind(AssertUnwindSafe(|| {
                restore_stage(&mut op, state, legacy).map(|restored| timers = restored)
            }));
            if let Some(message) = restore_failure(restored) {
                graph.restore_failed(self.id, message);
            }
        }
        let side = match self.side {
            Some(port) => SideOut::Edge(ForwardOut {
                sender: graph.connect(self.group, instance, port, instance),
                control: graph.control.clone(),
                name: name.clone(),
            }),
            None => SideOut::Discard(metrics.named.clone(), None),
        };
        let parts = StageParts {
            participant: graph.participant(self.id, instance),
            mode: graph.first_emit_mode(),
            first_epoch: graph.first_epoch(),
            clock: graph.config.clock.clone(),
            control: graph.control.clone(),
            metrics,
            name,
        };
        let stage: Stage<S::Out, O, C, SideOut<O::Side>> =
            Stage::new(op, timers, downstream, side, parts);
        self.upstream.finish(stage, graph, instance)
    }
}

/// The input of a keyed aggregate: either chained on the upstream thread (one instance
/// on each side, so no exchange is needed) or the receiving side of a keyed exchange.
pub enum KeyedInput<S: Chain, F, K> {
    /// Upstream chain plus key extraction, on the upstream's thread.
    Local(Then<S, KeyBy<F>>),
    /// Edges of a keyed exchange.
    Exchanged(InputChain<(K, S::Out)>),
}

impl<S: Chain, F: Clone, K> Clone for KeyedInput<S, F, K> {
    fn clone(&self) -> Self {
        match self {
            KeyedInput::Local(chain) => KeyedInput::Local(chain.clone()),
            KeyedInput::Exchanged(chain) => KeyedInput::Exchanged(chain.clone()),
        }
    }
}

impl<S: Chain, F, K> fmt::Debug for KeyedInput<S, F, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyedInput::Local(_) => f.write_str("KeyedInput::Local"),
            KeyedInput::Exchanged(_) => f.write_str("KeyedInput::Exchanged"),
        }
    }
}

impl<S, F, K> Chain for KeyedInput<S, F, K>
where
    S: Chain,
    F: FnMut(&S::Out) -> K + Clone + Send + 'static,
    K: Send + 'static,
{
    type Out = (K, S::Out);

    fn input_port(&self) -> Option<PortId> {
        match self {
            KeyedInput::Local(chain) => chain.input_port(),
            KeyedInput::Exchanged(chain) => chain.input_port(),
        }
    }

    #[allow(private_interfaces, private_bounds)]
    fn finish<C>(self, downstream: C, graph: &mut Graph, instance: usize) -> Box<dyn Task>
    where
        C: Downstream<(K, S::Out)> + Send + 'static,
    {
        match self {
            KeyedInput::Local(chain) => chain.finish(downstream, graph, instance),
            KeyedInput::Exchanged(chain) => chain.finish(downstream, graph, instance),
        }
    }
}

/// A stream of records of type `S::Out`, being built. See the [module docs](self).
///
/// Streams are consumed by their combinators. To use one stream twice, split it with
/// [`fan_out`](Stream::fan_out). A stream that is neither sent to a sink nor dropped
/// before `start()` makes `start()` fail: every branch of a query must end in a sink.
#[must_use = "a stream does nothing until it ends in a sink"]
pub struct Stream<S> {
    graph: Rc<RefCell<Graph>>,
    chain: S,
    group: GroupId,
    parallelism: usize,
    last_op: Option<OpId>,
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
        }
    }
}

impl<S: Chain> Stream<S> {
    /// Number of parallel instances this stream runs as.
    pub fn parallelism(&self) -> usize {
        self.parallelism
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

    /// Appends `op`, named `name`, like [`operator`](Self::operator), and returns its
    /// side output ([`Operator::Side`], what it sets aside with
    /// [`Context::side_output`](crate::operator::Context::side_output)) as a second
    /// stream, read on a thread of its own (one per instance). Control events
    /// (watermarks, epoch markers, end-of-stream) reach both streams, so the side stream
    /// checkpoints and ends like any other.
    ///
    /// ```
    /// use rivulet::operator::{Collector, Context, Operator};
    ///
    /// /// Passes even numbers on and sets odd ones aside.
    /// #[derive(Clone)]
    /// struct SplitOdd;
    ///
    /// impl Operator<u64> for SplitOdd {
    ///     type Out = u64;
    ///     type Key = ();
    ///     type Side = u64;
    ///     fn on_record<C: Context<u64, (), u64>>(&mut self, n: u64, ctx: &mut C) {
    ///         if n % 2 == 0 {
    ///             ctx.push(n);
    ///         } else {
    ///             ctx.count("odd", 1);
    ///             ctx.side_output(n);
    ///         }
    ///     }
    /// }
    ///
    /// let mut query = rivulet::Query::builder();
    /// let (evens, odds) = query
    ///     .from_iter("numbers", 1..=6u64)
    ///     .operator_with_side_output("split", SplitOdd);
    /// let evens = evens.to_memory("evens");
    /// let odds = odds.to_memory("odds");
    /// let running = query.start()?;
    /// running.await_termination()?;
    /// assert_eq!(evens.rows(), vec![2, 4, 6]);
    /// assert_eq!(odds.rows(), vec![1, 3, 5]);
    /// assert_eq!(running.progress().operator("split").unwrap().counters["odd"], 3);
    /// # Ok::<(), rivulet::Error>(())
    /// ```
    #[allow(clippy::type_complexity)] // the two chain types, spelled out
    pub fn operator_with_side_output<O>(
        self,
        name: &str,
        op: O,
    ) -> (Stream<Then<S, O>>, Stream<InputChain<O::Side>>)
    where
        O: Operator<S::Out> + Clone,
        O::Out: Send + 'static,
    {
        let parallelism = self.parallelism;
        let graph = self.graph.clone();
        let mut main = self.then(name, OperatorKind::Transform, op);
        let (group, port) = {
            let mut g = graph.borrow_mut();
            let group = g.add_group("side_output", parallelism);
            (group, g.add_port::<O::Side>(group, PortKind::Forward))
        };
        main.chain.side = Some(port);
        graph.borrow_mut().add_producer(port, main.group);
        let side = Stream {
            graph,
            chain: InputChain {
                port,
                name: Rc::from("side_output"),
                _record: PhantomData,
            },
            group,
            parallelism,
            last_op: None,
        };
        (main, side)
    }

    fn then<O>(self, name: &str, kind: OperatorKind, op: O) -> Stream<Then<S, O>>
    where
        O: Operator<S::Out> + Clone,
        O::Out: Send + 'static,
    {
        let id = {
            let mut g = self.graph.borrow_mut();
            let name = g.unique_name(name);
            g.add_operator(&name, kind, self.parallelism)
        };
        Stream {
            graph: self.graph,
            chain: Then {
                upstream: self.chain,
                op,
                id,
                group: self.group,
                side: None,
            },
            group: self.group,
            parallelism: self.parallelism,
            last_op: Some(id),
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

    /// Partitions the stream by `key` for a keyed aggregate.
    ///
    /// Keys and aggregate values are serde types: keyed state is what checkpoints save.
    ///
    /// Every record with the same key goes to the same instance of the aggregate, which
    /// owns that key's state. The number of instances is the query's default parallelism
    /// ([`QueryBuilder::parallelism`](crate::QueryBuilder::parallelism)) unless
    /// [`KeyedStream::with_parallelism`] says otherwise. With one instance on both
    /// sides the aggregate is chained onto this stream's thread; otherwise records cross
    /// a keyed exchange: one ring per (upstream instance, aggregate instance) pair.
    pub fn key_by<K, F>(self, key: F) -> KeyedStream<S, F>
    where
        F: FnMut(&S::Out) -> K + Clone + Send + 'static,
        K: Hash + Eq + Clone + Send + 'static,
    {
        let parallelism = self.graph.borrow().config.parallelism;
        KeyedStream {
            stream: self,
            key,
            parallelism,
        }
    }

    /// Running count of each distinct record (Spark's `countByValue`): emits
    /// `(record, count so far)` for every record.
    pub fn count_by_value(self) -> Stream<impl Chain<Out = (S::Out, u64)>>
    where
        S::Out: Hash + Eq + Clone + Serialize + DeserializeOwned,
    {
        self.key_by(|record: &S::Out| record.clone()).aggregate(
            "count_by_value",
            KeyedFold::new(|| 0u64, |count: &mut u64, _record: S::Out| *count += 1),
        )
    }

    /// Merges this stream with `other` (Spark's `union`) on one new thread that reads
    /// both. Chained calls (`a.union(b).union(c)`) share that thread. Records of one
    /// input keep their order; inputs interleave.
    pub fn union<S2>(self, other: Stream<S2>) -> Stream<InputChain<S::Out>>
    where
        S2: Chain<Out = S::Out>,
    {
        let existing = self
            .chain
            .bare_port()
            .filter(|port| self.graph.borrow().port_kind(*port) == PortKind::Union);
        let (stream, port) = match existing {
            Some(port) => {
                let bare = Stream {
                    graph: self.graph.clone(),
                    chain: InputChain::<S::Out> {
                        port,
                        name: Rc::from("union"),
                        _record: PhantomData,
                    },
                    group: self.group,
                    parallelism: 1,
                    last_op: None,
                };
                (bare, port)
            }
            None => {
                let (group, port) = {
                    let mut g = self.graph.borrow_mut();
                    let group = g.add_group("union", 1);
                    (group, g.add_port::<S::Out>(group, PortKind::Union))
                };
                self.forward_into(port, |_| 0);
                let stream = Stream {
                    graph: other.graph.clone(),
                    chain: InputChain {
                        port,
                        name: Rc::from("union"),
                        _record: PhantomData,
                    },
                    group,
                    parallelism: 1,
                    last_op: None,
                };
                (stream, port)
            }
        };
        other.forward_into(port, |_| 0);
        stream
    }

    /// Splits the stream into `branches` streams that each see every record, each on new
    /// threads (one per instance of this stream).
    pub fn fan_out(self, branches: usize) -> Vec<Stream<InputChain<S::Out>>>
    where
        S::Out: Clone,
    {
        if branches == 0 {
            self.graph
                .borrow_mut()
                .errors
                .push("fan_out needs at least one branch".to_string());
            return Vec::new();
        }
        let parallelism = self.parallelism;
        let graph = self.graph.clone();
        let targets: Vec<(GroupId, PortId)> = {
            let mut g = graph.borrow_mut();
            (0..branches)
                .map(|_| {
                    let group = g.add_group("fan_out", parallelism);
                    (group, g.add_port::<S::Out>(group, PortKind::Forward))
                })
                .collect()
        };
        let from = self.group;
        let ports: Vec<PortId> = targets.iter().map(|(_, port)| *port).collect();
        for port in &ports {
            graph.borrow_mut().add_producer(*port, from);
        }
        self.terminate(move |g, instance| BroadcastOut {
            senders: ports
                .iter()
                .map(|port| g.connect(from, instance, *port, instance))
                .collect(),
            control: g.control.clone(),
            name: std::sync::Arc::from("fan_out"),
        });
        targets
            .into_iter()
            .map(|(group, port)| Stream {
                graph: graph.clone(),
                chain: InputChain {
                    port,
                    name: Rc::from("fan_out"),
                    _record: PhantomData,
                },
                group,
                parallelism,
                last_op: None,
            })
            .collect()
    }

    /// Ends the chain here: what follows runs on new threads (one per instance),
    /// connected by rings. Use it to split heavy operators across cores.
    pub fn new_thread(self) -> Stream<InputChain<S::Out>> {
        let parallelism = self.parallelism;
        let graph = self.graph.clone();
        let (group, port) = {
            let mut g = graph.borrow_mut();
            let group = g.add_group("thread", parallelism);
            (group, g.add_port::<S::Out>(group, PortKind::Forward))
        };
        self.forward_into(port, |instance| instance);
        Stream {
            graph,
            chain: InputChain {
                port,
                name: Rc::from("thread"),
                _record: PhantomData,
            },
            group,
            parallelism,
            last_op: None,
        }
    }

    /// Ends every instance's chain in one edge to `port`, instance `target(instance)`.
    fn forward_into(self, port: PortId, target: impl Fn(usize) -> usize + 'static) {
        let from = self.group;
        self.graph.borrow_mut().add_producer(port, from);
        self.terminate(move |g, instance| ForwardOut {
            sender: g.connect(from, instance, port, target(instance)),
            control: g.control.clone(),
            name: std::sync::Arc::from(g.groups[from].name.as_str()),
        });
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
            g.add_operator(&name, OperatorKind::Sink, self.parallelism)
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

    /// Writes every record to part files in `dir` (Spark's `file` sink), as CSV or JSON
    /// lines: one part file per epoch and sink instance, staged in a temporary file and
    /// renamed into place once the epoch is complete, with a commit record of its own.
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

/// A stream partitioned by key, ready for a keyed aggregate. Created by
/// [`Stream::key_by`].
#[must_use = "a keyed stream needs an aggregate (count, fold, reduce)"]
pub struct KeyedStream<S, F> {
    stream: Stream<S>,
    key: F,
    parallelism: usize,
}

impl<S, F> fmt::Debug for KeyedStream<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedStream")
            .field("parallelism", &self.parallelism)
            .finish_non_exhaustive()
    }
}

impl<S, F, K> KeyedStream<S, F>
where
    S: Chain,
    F: FnMut(&S::Out) -> K + Clone + Send + 'static,
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
{
    /// Runs the aggregate as `parallelism` instances (threads).
    pub fn with_parallelism(mut self, parallelism: usize) -> Self {
        self.parallelism = parallelism;
        self
    }

    /// Folds each key's records into an accumulator starting at `init`, emitting
    /// `(key, accumulator)` after every record.
    ///
    /// ```
    /// let mut query = rivulet::Query::builder();
    /// let sums = query
    ///     .from_iter("n", 1..=6u64)
    ///     .key_by(|x| x % 2)
    ///     .fold(0u64, |sum, x| *sum += x)
    ///     .to_memory("sums");
    /// query.start().unwrap().await_termination().unwrap();
    /// let last_even = sums.rows().into_iter().filter(|(k, _)| *k == 0).last();
    /// assert_eq!(last_even, Some((0, 2 + 4 + 6)));
    /// ```
    pub fn fold<A, G>(self, init: A, fold: G) -> Stream<impl Chain<Out = (K, A)>>
    where
        A: Clone + Send + Serialize + DeserializeOwned + 'static,
        G: FnMut(&mut A, S::Out) + Clone + Send + 'static,
    {
        let init = move || init.clone();
        self.aggregate("fold", KeyedFold::new(init, fold))
    }

    /// Running count per key: emits `(key, count so far)` for every record.
    pub fn count(self) -> Stream<impl Chain<Out = (K, u64)>> {
        self.aggregate(
            "count",
            KeyedFold::new(|| 0u64, |count: &mut u64, _record: S::Out| *count += 1),
        )
    }

    /// Combines each key's records with `reduce(&mut acc, record)` (Spark's
    /// `reduceByKey`), emitting `(key, acc)` after every record.
    pub fn reduce<G>(self, reduce: G) -> Stream<impl Chain<Out = (K, S::Out)>>
    where
        S::Out: Clone + Serialize + DeserializeOwned,
        G: FnMut(&mut S::Out, S::Out) + Clone + Send + 'static,
    {
        self.aggregate("reduce", KeyedReduce::new(reduce))
    }

    /// Applies a custom keyed operator to the `(key, record)` pairs.
    pub fn aggregate<O>(self, name: &str, op: O) -> Stream<Then<KeyedInput<S, F, K>, O>>
    where
        O: Operator<(K, S::Out)> + Clone,
        O::Out: Send + 'static,
    {
        let KeyedStream {
            stream,
            key,
            parallelism,
        } = self;
        let keyed = if parallelism == 0 {
            stream
                .graph
                .borrow_mut()
                .errors
                .push(format!("`{name}` has parallelism 0; it must be at least 1"));
            stream.local_key(key)
        } else if parallelism == 1 && stream.parallelism == 1 {
            stream.local_key(key)
        } else {
            stream.exchange(key, parallelism)
        };
        keyed.then(name, OperatorKind::Aggregate, op)
    }
}

impl<S: Chain> Stream<S> {
    /// Adds the key on this thread (no exchange).
    fn local_key<K, F>(self, key: F) -> Stream<KeyedInput<S, F, K>>
    where
        F: FnMut(&S::Out) -> K + Clone + Send + 'static,
        K: Send + 'static,
    {
        let keyed = self.then("key_by", OperatorKind::Transform, KeyBy(key));
        Stream {
            graph: keyed.graph,
            chain: KeyedInput::Local(keyed.chain),
            group: keyed.group,
            parallelism: keyed.parallelism,
            last_op: keyed.last_op,
        }
    }

    /// Repartitions by key onto `parallelism` new threads.
    fn exchange<K, F>(self, key: F, parallelism: usize) -> Stream<KeyedInput<S, F, K>>
    where
        F: FnMut(&S::Out) -> K + Clone + Send + 'static,
        K: Hash + Send + 'static,
    {
        let graph = self.graph.clone();
        let (group, port) = {
            let mut g = graph.borrow_mut();
            let group = g.add_group("keyed", parallelism);
            (group, g.add_port::<(K, S::Out)>(group, PortKind::Exchange))
        };
        let from = self.group;
        graph.borrow_mut().add_producer(port, from);
        self.terminate(move |g, instance| ExchangeOut {
            senders: (0..parallelism)
                .map(|target| g.connect(from, instance, port, target))
                .collect(),
            key: key.clone(),
            control: g.control.clone(),
            name: std::sync::Arc::from("key_by"),
        });
        Stream {
            graph,
            chain: KeyedInput::Exchanged(InputChain {
                port,
                name: Rc::from("keyed"),
                _record: PhantomData,
            }),
            group,
            parallelism,
            last_op: None,
        }
    }
}

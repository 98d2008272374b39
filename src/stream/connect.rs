//! Two streams into one operator: [`Stream::connect`], [`KeyedStream::connect`] and the
//! [`ConnectedStreams`] they return, which a
//! [`TwoInputOperator`](crate::operator::TwoInputOperator) consumes.
//!
//! Both sides end in edges into one thread group, tagged with their side
//! ([`Either`]); see [`operator::two_input`](crate::operator::two_input) for what the
//! reading thread guarantees (markers aligned across both inputs, the watermark the
//! minimum of both).

use super::{Chain, InputChain, KeyedStream, Stream, Then};
use crate::operator::{Either, TwoInput, TwoInputOperator};
use crate::plan::{OperatorKind, PortKind};
use std::fmt;
use std::hash::Hash;

/// The chain a [`TwoInputOperator`] `O` of left records `L` and right records `R` ends:
/// the operator (run as an [`Operator`](crate::operator::Operator) of the tagged input)
/// after the input edges of both sides.
pub type TwoInputChain<L, R, O> = Then<InputChain<Either<L, R>>, TwoInput<O>>;

/// Two streams, a left one of `L` and a right one of `R`, read by one thread group and
/// waiting for the [`TwoInputOperator`] that consumes them. Created by
/// [`Stream::connect`] and [`KeyedStream::connect`].
#[must_use = "connected streams need an operator"]
pub struct ConnectedStreams<L: Send + 'static, R: Send + 'static> {
    pub(super) merged: Stream<InputChain<Either<L, R>>>,
}

impl<L: Send + 'static, R: Send + 'static> fmt::Debug for ConnectedStreams<L, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectedStreams")
            .field("parallelism", &self.merged.parallelism)
            .finish_non_exhaustive()
    }
}

impl<L: Send + 'static, R: Send + 'static> ConnectedStreams<L, R> {
    /// Number of parallel instances the operator will run as.
    pub fn parallelism(&self) -> usize {
        self.merged.parallelism
    }

    /// Whether both inputs carry watermarks (every path from a source passed
    /// [`with_watermark`](crate::stream::EventTimeStream::with_watermark)).
    pub fn is_watermarked(&self) -> bool {
        self.merged.watermarked
    }

    /// Runs `op`, named `name`, on both inputs: [`on_left`](TwoInputOperator::on_left)
    /// for each record of the left stream, [`on_right`](TwoInputOperator::on_right) for
    /// each of the right. One instance of `op` (cloned) per instance of the group.
    pub fn operator<O>(self, name: &str, op: O) -> Stream<TwoInputChain<L, R, O>>
    where
        O: TwoInputOperator<L, R> + Clone,
        O::Out: Send + 'static,
    {
        self.operator_of_kind(name, OperatorKind::Transform, op)
    }

    /// [`operator`](Self::operator) for an operator of a given kind (a join).
    pub(crate) fn operator_of_kind<O>(
        self,
        name: &str,
        kind: OperatorKind,
        op: O,
    ) -> Stream<TwoInputChain<L, R, O>>
    where
        O: TwoInputOperator<L, R> + Clone,
        O::Out: Send + 'static,
    {
        self.merged.then(name, kind, TwoInput::new(op))
    }
}

impl<S: Chain> Stream<S> {
    /// Connects this stream (the left input) with `other` (the right input) for a
    /// [`TwoInputOperator`]: one thread reads every instance of both (as
    /// [`union`](Self::union) does), so the operator sees all of both streams. To split
    /// the work by key, connect two [`KeyedStream`]s instead.
    ///
    /// The operator's watermark is the minimum of both inputs'; an epoch's marker reaches
    /// it once it arrived on both (in aligned checkpoint mode the input that delivered it
    /// first is held back meanwhile). See [`operator::two_input`](crate::operator::two_input).
    pub fn connect<S2: Chain>(self, other: Stream<S2>) -> ConnectedStreams<S::Out, S2::Out> {
        let watermarked = self.watermarked && other.watermarked;
        let upstream = self
            .upstream
            .iter()
            .chain(&other.upstream)
            .copied()
            .collect();
        let graph = self.graph.clone();
        let (group, port) = {
            let mut g = graph.borrow_mut();
            let group = g.add_group("connect", 1);
            (
                group,
                g.add_port::<Either<S::Out, S2::Out>>(group, PortKind::Forward),
            )
        };
        self.tagged_forward_into(port.clone(), Either::Left);
        other.tagged_forward_into(port.clone(), Either::Right);
        ConnectedStreams {
            merged: Stream {
                graph,
                chain: InputChain::new(port, "connect"),
                group,
                parallelism: 1,
                last_op: None,
                upstream,
                watermarked,
            },
        }
    }
}

impl<S, F, K> KeyedStream<S, F>
where
    S: Chain,
    F: FnMut(&S::Out) -> K + Clone + Send + 'static,
    K: Hash + Eq + Clone + Send + 'static,
{
    /// Connects this keyed stream (the left input) with `other` (the right input), keyed
    /// the same way, for a [`TwoInputOperator`] of `(key, record)` pairs: both sides are
    /// partitioned by key onto this keyed stream's
    /// [parallelism](KeyedStream::with_parallelism) (which `other`'s must equal), so
    /// every record of a key, from either side, reaches the same instance. What joins
    /// are built on.
    ///
    /// ```
    /// use rivulet::operator::{Context, TwoInputOperator};
    /// use std::collections::HashMap;
    ///
    /// /// Emits each order with the latest price its product had when it arrived.
    /// #[derive(Clone, Default)]
    /// struct PriceOrders(HashMap<u32, u64>);
    ///
    /// impl TwoInputOperator<(u32, (u32, u64)), (u32, (u32, u64))> for PriceOrders {
    ///     type Out = (u32, u64);
    ///     type Key = ();
    ///     type Side = ();
    ///     fn on_left<C: Context<(u32, u64)>>(&mut self, (product, (_, qty)): (u32, (u32, u64)), ctx: &mut C) {
    ///         if let Some(price) = self.0.get(&product) {
    ///             ctx.push((product, qty * price));
    ///         }
    ///     }
    ///     fn on_right<C: Context<(u32, u64)>>(&mut self, (product, (_, price)): (u32, (u32, u64)), _ctx: &mut C) {
    ///         self.0.insert(product, price);
    ///     }
    /// }
    ///
    /// let mut query = rivulet::Query::builder();
    /// query.parallelism(2);
    /// let orders = query.from_iter("orders", [(1u32, 3u64), (2, 1)]).key_by(|o| o.0);
    /// let prices = query.from_iter("prices", [(1u32, 10u64), (2, 7)]).key_by(|p| p.0);
    /// let totals = orders.connect(prices).operator("price", PriceOrders::default()).to_memory("totals");
    /// query.start()?.await_termination()?;
    /// // An order priced only if its price came first: any subset, each at most once.
    /// assert!(totals.rows().len() <= 2);
    /// # Ok::<(), rivulet::Error>(())
    /// ```
    pub fn connect<S2, F2>(
        self,
        other: KeyedStream<S2, F2>,
    ) -> ConnectedStreams<(K, S::Out), (K, S2::Out)>
    where
        S2: Chain,
        F2: FnMut(&S2::Out) -> K + Clone + Send + 'static,
    {
        let parallelism = self.parallelism;
        let watermarked = self.stream.watermarked && other.stream.watermarked;
        let upstream = (self.stream.upstream.iter())
            .chain(&other.stream.upstream)
            .copied()
            .collect();
        let graph = self.stream.graph.clone();
        let (group, port) = {
            let mut g = graph.borrow_mut();
            if parallelism == 0 || other.parallelism != parallelism {
                g.errors.push(format!(
                    "connected keyed streams must run as the same number of instances (at least \
                     one): the left has {parallelism}, the right {}",
                    other.parallelism
                ));
            }
            let group = g.add_group("connect", parallelism.max(1));
            (
                group,
                g.add_port::<Either<(K, S::Out), (K, S2::Out)>>(group, PortKind::Exchange),
            )
        };
        self.stream
            .exchange_into(port.clone(), self.key, |key, record| {
                Either::Left((key, record))
            });
        other
            .stream
            .exchange_into(port.clone(), other.key, |key, record| {
                Either::Right((key, record))
            });
        ConnectedStreams {
            merged: Stream {
                graph,
                chain: InputChain::new(port, "connect"),
                group,
                parallelism: parallelism.max(1),
                last_op: None,
                upstream,
                watermarked,
            },
        }
    }
}

/// A keyed connection built one input at a time, for callers that cannot hold both
/// inputs' chain types at once (the DataFrame layer's erased streams): each input is
/// partitioned by key into the connection's port as it is added, as
/// [`KeyedStream::connect`] partitions both.
pub(crate) struct KeyedConnection<K, L: Send + 'static, R: Send + 'static> {
    graph: std::rc::Rc<std::cell::RefCell<crate::plan::Graph>>,
    group: crate::plan::GroupId,
    port: crate::plan::Port<Either<(K, L), (K, R)>>,
    parallelism: usize,
    upstream: Vec<crate::plan::OpId>,
    watermarked: bool,
}

impl<K, L, R> KeyedConnection<K, L, R>
where
    K: Hash + Eq + Clone + Send + 'static,
    L: Send + 'static,
    R: Send + 'static,
{
    /// A connection whose operator runs as the query's configured parallelism (what
    /// [`Stream::key_by`] partitions onto).
    pub(crate) fn new(graph: &std::rc::Rc<std::cell::RefCell<crate::plan::Graph>>) -> Self {
        let (group, port, parallelism) = {
            let mut g = graph.borrow_mut();
            let parallelism = g.config.parallelism.max(1);
            let group = g.add_group("connect", parallelism);
            let port = g.add_port::<Either<(K, L), (K, R)>>(group, PortKind::Exchange);
            (group, port, parallelism)
        };
        KeyedConnection {
            graph: graph.clone(),
            group,
            port,
            parallelism,
            upstream: Vec::new(),
            watermarked: true,
        }
    }

    fn note<S: Chain>(&mut self, stream: &Stream<S>) {
        self.watermarked &= stream.watermarked;
        self.upstream.extend(stream.upstream.iter().copied());
    }

    /// Both inputs connected (call after adding both).
    pub(crate) fn finish(self) -> ConnectedStreams<(K, L), (K, R)> {
        ConnectedStreams {
            merged: Stream {
                graph: self.graph,
                chain: InputChain::new(self.port, "connect"),
                group: self.group,
                parallelism: self.parallelism,
                last_op: None,
                upstream: self.upstream,
                watermarked: self.watermarked,
            },
        }
    }
}

impl<K, T> KeyedConnection<K, T, T>
where
    K: Hash + Eq + Clone + Send + 'static,
    T: Send + 'static,
{
    /// Adds `stream`, keyed by `key`, as the left input if `left`, else as the right
    /// one. One method for both sides (the side is a branch per record, not a type), so
    /// that the thread feeding each side compiles once per chain type, not twice.
    pub(crate) fn add<S, F>(&mut self, stream: Stream<S>, key: F, left: bool)
    where
        S: Chain<Out = T>,
        F: FnMut(&T) -> K + Clone + Send + 'static,
    {
        self.note(&stream);
        stream.exchange_into(self.port.clone(), key, move |key, record: T| {
            if left {
                Either::Left((key, record))
            } else {
                Either::Right((key, record))
            }
        });
    }
}

//! Thread boundaries: the combinators after which a stream continues on other threads,
//! across new ring edges. `union` (one fan-in thread), `fan_out` (a broadcast to new
//! groups), `new_thread` (a forward edge per instance), the keyed exchange behind
//! `key_by`, and the side output of `operator_with_side_output` (a forward edge per
//! instance from the operator's stage).
//!
//! Each creates a thread group and a port (the group's input edges) in the plan, and ends
//! the upstream chain in an output that connects its edges when `start()`
//! builds it.

use super::{Chain, InputChain, KeyedInput, Stream, Then};
use crate::operator::exchange::{BroadcastOut, ExchangeOut, ForwardOut, Tagged};
use crate::operator::Operator;
use crate::plan::{GroupId, OpId, OperatorKind, Port, PortKind};
use std::hash::Hash;

/// What a union's stream takes on from an input added with
/// [`Stream::union_add`]: whether it carries watermarks, and its operators (the plan's
/// edges).
#[derive(Debug)]
pub(crate) struct UnionInput {
    watermarked: bool,
    upstream: Vec<OpId>,
}

impl<S: Chain> Stream<S> {
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
    // The pair of streams is the signature; an alias would only hide it.
    #[allow(clippy::type_complexity)]
    pub fn operator_with_side_output<O>(
        self,
        name: &str,
        op: O,
    ) -> (Stream<Then<S, O>>, Stream<InputChain<O::Side>>)
    where
        O: Operator<S::Out> + Clone,
        O::Out: Send + 'static,
    {
        self.then_with_side_output(name, OperatorKind::Transform, op)
    }

    /// [`operator_with_side_output`](Self::operator_with_side_output) for an operator of
    /// any kind (a window aggregate's late records, say).
    #[allow(clippy::type_complexity)]
    pub(super) fn then_with_side_output<O>(
        self,
        name: &str,
        kind: OperatorKind,
        op: O,
    ) -> (Stream<Then<S, O>>, Stream<InputChain<O::Side>>)
    where
        O: Operator<S::Out> + Clone,
        O::Out: Send + 'static,
    {
        let parallelism = self.parallelism;
        let watermarked = self.watermarked;
        let graph = self.graph.clone();
        let mut main = self.then(name, kind, op);
        let (group, port) = {
            let mut g = graph.borrow_mut();
            let group = g.add_group("side_output", parallelism);
            (group, g.add_port::<O::Side>(group, PortKind::Forward))
        };
        main.chain.side = Some(port.clone());
        graph.borrow_mut().add_producer(port.id(), main.group);
        let side = Stream {
            graph,
            chain: InputChain::new(port, "side_output"),
            group,
            parallelism,
            last_op: None,
            upstream: main.upstream.clone(),
            watermarked,
        };
        (main, side)
    }

    /// Merges this stream with `other` (Spark's `union`) on one new thread that reads
    /// both. Chained calls (`a.union(b).union(c)`) share that thread. Records of one
    /// input keep their order; inputs interleave.
    pub fn union<S2>(self, other: Stream<S2>) -> Stream<InputChain<S::Out>>
    where
        S2: Chain<Out = S::Out>,
    {
        let watermarked = self.watermarked && other.watermarked;
        let upstream: Vec<OpId> = self
            .upstream
            .iter()
            .chain(&other.upstream)
            .copied()
            .collect();
        let existing = self
            .chain
            .bare_port()
            .filter(|port| self.graph.borrow().port_kind(port.id()) == PortKind::Union);
        let (stream, port) = match existing {
            Some(port) => {
                let bare = Stream {
                    graph: self.graph.clone(),
                    chain: InputChain::new(port.clone(), "union"),
                    group: self.group,
                    parallelism: 1,
                    last_op: None,
                    upstream: upstream.clone(),
                    watermarked,
                };
                (bare, port)
            }
            None => {
                let (group, port) = {
                    let mut g = self.graph.borrow_mut();
                    let group = g.add_group("union", 1);
                    (group, g.add_port::<S::Out>(group, PortKind::Union))
                };
                self.forward_into(port.clone(), |_| 0);
                let stream = Stream {
                    graph: other.graph.clone(),
                    chain: InputChain::new(port.clone(), "union"),
                    group,
                    parallelism: 1,
                    last_op: None,
                    upstream: upstream.clone(),
                    watermarked,
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
        let watermarked = self.watermarked;
        let graph = self.graph.clone();
        let targets: Vec<(GroupId, Port<S::Out>)> = {
            let mut g = graph.borrow_mut();
            (0..branches)
                .map(|_| {
                    let group = g.add_group("fan_out", parallelism);
                    (group, g.add_port::<S::Out>(group, PortKind::Forward))
                })
                .collect()
        };
        let from = self.group;
        let upstream = self.upstream.clone();
        let ports: Vec<Port<S::Out>> = targets.iter().map(|(_, port)| port.clone()).collect();
        for port in &ports {
            graph.borrow_mut().add_producer(port.id(), from);
        }
        self.terminate(move |g, instance| BroadcastOut {
            senders: ports
                .iter()
                .map(|port| g.connect(from, instance, port, instance))
                .collect(),
            control: g.control.clone(),
            name: std::sync::Arc::from("fan_out"),
        });
        targets
            .into_iter()
            .map(|(group, port)| Stream {
                graph: graph.clone(),
                chain: InputChain::new(port, "fan_out"),
                group,
                parallelism,
                last_op: None,
                upstream: upstream.clone(),
                watermarked,
            })
            .collect()
    }

    /// Ends the chain here: what follows runs on new threads (one per instance),
    /// connected by rings. Use it to split heavy operators across cores.
    pub fn new_thread(self) -> Stream<InputChain<S::Out>> {
        let parallelism = self.parallelism;
        let watermarked = self.watermarked;
        let graph = self.graph.clone();
        let (group, port) = {
            let mut g = graph.borrow_mut();
            let group = g.add_group("thread", parallelism);
            (group, g.add_port::<S::Out>(group, PortKind::Forward))
        };
        let upstream = self.upstream.clone();
        self.forward_into(port.clone(), |instance| instance);
        Stream {
            graph,
            chain: InputChain::new(port, "thread"),
            group,
            parallelism,
            last_op: None,
            upstream,
            watermarked,
        }
    }

    /// Opens a union thread fed by this stream, for callers that hold their inputs
    /// erased (the DataFrame layer, which cannot name `S2` for [`union`](Self::union)):
    /// further inputs join it with [`union_add`](Self::union_add).
    pub(crate) fn union_open(self) -> (Stream<InputChain<S::Out>>, Port<S::Out>) {
        let watermarked = self.watermarked;
        let graph = self.graph.clone();
        let (group, port) = {
            let mut g = graph.borrow_mut();
            let group = g.add_group("union", 1);
            (group, g.add_port::<S::Out>(group, PortKind::Union))
        };
        let upstream = self.upstream.clone();
        self.forward_into(port.clone(), |_| 0);
        let stream = Stream {
            graph,
            chain: InputChain::new(port.clone(), "union"),
            group,
            parallelism: 1,
            last_op: None,
            upstream,
            watermarked,
        };
        (stream, port)
    }

    /// Sends this stream into the union thread of `port` (see
    /// [`union_open`](Self::union_open)); returns what the union's stream must take on
    /// from it ([`and_union_input`](Self::and_union_input)).
    pub(crate) fn union_add(self, port: Port<S::Out>) -> UnionInput {
        let input = UnionInput {
            watermarked: self.watermarked,
            upstream: self.upstream.clone(),
        };
        self.forward_into(port, |_| 0);
        input
    }

    /// Takes on another input of the union thread this stream reads: it carries
    /// watermarks only if both do, and its records come from both inputs' operators.
    pub(crate) fn and_union_input(mut self, input: UnionInput) -> Self {
        self.watermarked &= input.watermarked;
        self.upstream.extend(input.upstream);
        self
    }

    /// Ends every instance's chain in one edge to `port`, instance `target(instance)`.
    fn forward_into(self, port: Port<S::Out>, target: impl Fn(usize) -> usize + 'static) {
        let from = self.group;
        self.graph.borrow_mut().add_producer(port.id(), from);
        self.terminate(move |g, instance| ForwardOut {
            sender: g.connect(from, instance, &port, target(instance)),
            control: g.control.clone(),
            name: std::sync::Arc::from(g.groups[from].name.as_str()),
        });
    }

    /// Repartitions by key onto `parallelism` new threads.
    pub(super) fn exchange<K, F>(self, key: F, parallelism: usize) -> Stream<KeyedInput<S, F, K>>
    where
        F: FnMut(&S::Out) -> K + Clone + Send + 'static,
        K: Hash + Send + 'static,
    {
        let graph = self.graph.clone();
        let watermarked = self.watermarked;
        let (group, port) = {
            let mut g = graph.borrow_mut();
            let group = g.add_group("keyed", parallelism);
            (group, g.add_port::<(K, S::Out)>(group, PortKind::Exchange))
        };
        let input = InputChain::new(port.clone(), "keyed");
        let upstream = self.upstream.clone();
        self.exchange_into(port, key, |key, record| (key, record));
        Stream {
            graph,
            chain: KeyedInput::Exchanged(input),
            group,
            parallelism,
            last_op: None,
            upstream,
            watermarked,
        }
    }

    /// Ends every instance's chain in a keyed exchange into `port`: record `r` goes to
    /// the instance its key hashes to, as `wrap(key(&r), r)`.
    pub(super) fn exchange_into<K, W, F, G>(self, port: Port<W>, key: F, wrap: G)
    where
        W: Send + 'static,
        F: FnMut(&S::Out) -> K + Clone + Send + 'static,
        G: FnMut(K, S::Out) -> W + Clone + Send + 'static,
        K: Hash + 'static,
    {
        let from = self.group;
        let parallelism = port.instances();
        self.graph.borrow_mut().add_producer(port.id(), from);
        self.terminate(move |g, instance| ExchangeOut {
            senders: (0..parallelism)
                .map(|target| g.connect(from, instance, &port, target))
                .collect(),
            key: key.clone(),
            wrap: wrap.clone(),
            control: g.control.clone(),
            name: std::sync::Arc::from("key_by"),
            _key: std::marker::PhantomData,
        });
    }

    /// Ends every instance's chain in one edge to instance 0 of `port`, tagging each
    /// record with `tag`.
    pub(super) fn tagged_forward_into<W, G>(self, port: Port<W>, tag: G)
    where
        W: Send + 'static,
        G: FnMut(S::Out) -> W + Clone + Send + 'static,
    {
        let from = self.group;
        self.graph.borrow_mut().add_producer(port.id(), from);
        self.terminate(move |g, instance| Tagged {
            inner: ForwardOut {
                sender: g.connect(from, instance, &port, 0),
                control: g.control.clone(),
                name: std::sync::Arc::from(g.groups[from].name.as_str()),
            },
            tag: tag.clone(),
        });
    }
}

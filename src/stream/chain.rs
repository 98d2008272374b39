//! The chain types: what a [`Stream`](super::Stream)'s type parameter is made of, and
//! how each builds its part of a thread's task at `start()`.
//!
//! A chain starts at a head, [`SourceChain`] (a source) or [`InputChain`] (the input
//! edges of a thread boundary), and grows by one [`Then`] per operator; [`KeyedInput`] is
//! the input of a keyed aggregate, chained or behind a keyed exchange. When the chain is
//! ended (in a sink or at a thread boundary), [`Chain::finish`] nests its operators as
//! stages around the chain's end, innermost last, and boxes the result once as the task
//! of one thread.

use crate::error::run_guarded;
use crate::metrics::latency::LatencySampler;
use crate::operator::exchange::ForwardOut;
use crate::operator::stage::{restore_stage, SideOut, Stage, StageParts};
use crate::operator::stateless::KeyBy;
use crate::operator::timer::TimerService;
use crate::operator::Operator;
use crate::plan::{Graph, GroupId, OpId, Port, PortId};
use crate::runtime::chain_time::ChainTime;
use crate::runtime::heads::{InputTask, SourceCheckpoint, SourceTask};
use crate::runtime::{Downstream, Task};
use crate::source::{Source, SourceContext, WakeHandle};
use std::cell::RefCell;
use std::fmt;
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

    /// The port this chain reads from, if it is nothing but that port (so a `union`
    /// can add inputs to it).
    #[doc(hidden)]
    #[allow(private_interfaces)]
    fn bare_port(&self) -> Option<Port<Self::Out>> {
        None
    }

    /// The port whose input edges the chain starts at (`None` for a source).
    #[doc(hidden)]
    fn input_port(&self) -> Option<PortId>;
}

/// The head of a chain that starts at a source (one source per instance).
pub struct SourceChain<S> {
    pub(super) sources: Rc<RefCell<Vec<Option<S>>>>,
    pub(super) op: OpId,
    pub(super) group: GroupId,
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
            // A failure is reported by `start()`, naming the operator.
            if let Err(message) = run_guarded(|| source.restore(offset)) {
                graph.restore_failed(self.op, message);
            }
        }
        if let Some(end) = graph.replay_end_offset(self.op, instance) {
            if let Err(message) = run_guarded(|| source.replay_until(end)) {
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
            epochs: epochs.clone(),
            counters: metrics.named.clone(),
        };
        Box::new(SourceTask {
            source,
            chain: downstream,
            metrics,
            control: graph.control.clone(),
            name,
            draining: false,
            checkpoint,
            // Only a query with epochs collects latency samples.
            sampler: LatencySampler::new(if epochs.is_some() {
                graph.config.latency_sample_every
            } else {
                0
            }),
            time: ChainTime::new(graph.config.clock.clone(), epochs),
            context: Some(context),
        })
    }
}

/// The head of a chain that starts at the input edges of a thread boundary.
pub struct InputChain<T> {
    port: Port<T>,
    name: Rc<str>,
}

impl<T> InputChain<T> {
    /// Reads `port`; `name` names the thread's head in failures.
    pub(super) fn new(port: Port<T>, name: &str) -> Self {
        InputChain {
            port,
            name: Rc::from(name),
        }
    }
}

impl<T> Clone for InputChain<T> {
    fn clone(&self) -> Self {
        InputChain {
            port: self.port.clone(),
            name: self.name.clone(),
        }
    }
}

impl<T> fmt::Debug for InputChain<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InputChain")
            .field("port", &self.port.id())
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
        let inputs = self.port.take_receivers(instance);
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

    #[allow(private_interfaces)]
    fn bare_port(&self) -> Option<Port<T>> {
        Some(self.port.clone())
    }

    fn input_port(&self) -> Option<PortId> {
        Some(self.port.id())
    }
}

/// A chain followed by one more operator.
///
/// The bounds name the operator's side output type, which the port of a read side
/// output carries.
pub struct Then<S: Chain, O: Operator<S::Out>> {
    pub(super) upstream: S,
    pub(super) op: O,
    pub(super) id: OpId,
    pub(super) group: GroupId,
    /// The port of the side output's thread group, if the side output is read.
    pub(super) side: Option<Port<O::Side>>,
    /// Whether the input carries watermarks: micro-batches then apply the query's batch
    /// watermark from their first event.
    pub(super) watermarked: bool,
}

impl<S: Chain, O: Operator<S::Out>> Then<S, O> {
    /// The upstream chain, the operator, its id and thread group, and whether its input
    /// carries watermarks (for a chain type that holds the operator itself; a read side
    /// output is not carried over).
    pub(super) fn into_parts(self) -> (S, O, OpId, GroupId, bool) {
        debug_assert!(
            self.side.is_none(),
            "a read side output is not carried over"
        );
        (
            self.upstream,
            self.op,
            self.id,
            self.group,
            self.watermarked,
        )
    }
}

// By hand: a derive would ask `O::Side` to be `Clone` and `Debug` too.
impl<S: Chain, O: Operator<S::Out> + Clone> Clone for Then<S, O> {
    fn clone(&self) -> Self {
        Then {
            upstream: self.upstream.clone(),
            op: self.op.clone(),
            id: self.id,
            group: self.group,
            side: self.side.clone(),
            watermarked: self.watermarked,
        }
    }
}

impl<S, O> fmt::Debug for Then<S, O>
where
    S: Chain + fmt::Debug,
    O: Operator<S::Out> + fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Then")
            .field("upstream", &self.upstream)
            .field("op", &self.op)
            .field("id", &self.id)
            .field("group", &self.group)
            .field("side", &self.side)
            .finish()
    }
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
        let stage = build_stage(
            self.op,
            self.id,
            self.group,
            self.side.as_ref(),
            self.watermarked,
            downstream,
            graph,
            instance,
        );
        self.upstream.finish(stage, graph, instance)
    }
}

/// The stage of operator `op` (`id`, on a thread of `group`) for one instance, in front
/// of `downstream`: its restored state and timers, its side output (into `side`'s port
/// where it is read), what it reports to. What [`Then::finish`] nests around the chain's
/// end; shared with [`MaybeWatermarked`](super::maybe_watermark::MaybeWatermarked).
#[allow(clippy::too_many_arguments)]
pub(super) fn build_stage<In, O, C>(
    op: O,
    id: OpId,
    group: GroupId,
    side: Option<&Port<O::Side>>,
    watermarked: bool,
    downstream: C,
    graph: &mut Graph,
    instance: usize,
) -> Stage<In, O, C, SideOut<O::Side>>
where
    O: Operator<In>,
    C: Downstream<O::Out> + Send + 'static,
{
    let (op, timers, side, parts) = stage_parts(op, id, group, side, watermarked, graph, instance);
    Stage::new(op, timers, downstream, side, parts)
}

/// What [`build_stage`] builds that does not depend on the downstream: generic over the
/// operator only, so that it is compiled once per operator type rather than once per
/// (operator, rest of the thread) pair.
fn stage_parts<In, O: Operator<In>>(
    mut op: O,
    id: OpId,
    group: GroupId,
    side: Option<&Port<O::Side>>,
    watermarked: bool,
    graph: &mut Graph,
    instance: usize,
) -> (O, TimerService<O::Key>, SideOut<O::Side>, StageParts) {
    let (metrics, name) = graph.operator_instance(id, instance);
    let mut timers = TimerService::new();
    if let Some((state, legacy)) = graph.restored_state(id, instance) {
        let restored =
            run_guarded(|| restore_stage(&mut op, state, legacy).map(|restored| timers = restored));
        if let Err(message) = restored {
            graph.restore_failed(id, message);
        }
    }
    let side = match side {
        Some(port) => SideOut::Edge(ForwardOut {
            sender: graph.connect(group, instance, port, instance),
            control: graph.control.clone(),
            name: name.clone(),
        }),
        None => SideOut::Discard(metrics.named.clone(), None),
    };
    let parts = StageParts {
        participant: graph.participant(id, instance),
        mode: graph.first_emit_mode(),
        first_epoch: graph.first_epoch(),
        batch_watermark: watermarked,
        clock: graph.config.clock.clone(),
        control: graph.control.clone(),
        metrics,
        name,
    };
    (op, timers, side, parts)
}

/// The input of a keyed aggregate: either chained on the upstream thread (one instance
/// on each side, so no exchange is needed) or the receiving side of a keyed exchange.
pub enum KeyedInput<S: Chain, F, K>
where
    KeyBy<F>: Operator<S::Out>,
{
    /// Upstream chain plus key extraction, on the upstream's thread.
    Local(Then<S, KeyBy<F>>),
    /// Edges of a keyed exchange.
    Exchanged(InputChain<(K, S::Out)>),
}

impl<S: Chain, F: Clone, K> Clone for KeyedInput<S, F, K>
where
    KeyBy<F>: Operator<S::Out>,
{
    fn clone(&self) -> Self {
        match self {
            KeyedInput::Local(chain) => KeyedInput::Local(chain.clone()),
            KeyedInput::Exchanged(chain) => KeyedInput::Exchanged(chain.clone()),
        }
    }
}

impl<S: Chain, F, K> fmt::Debug for KeyedInput<S, F, K>
where
    KeyBy<F>: Operator<S::Out>,
{
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

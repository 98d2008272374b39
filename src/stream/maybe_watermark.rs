//! [`MaybeWatermarked`]: an operator, then — where the plan asks for one, decided at run
//! time — the watermark generator and a second operator, as one chain type.
//!
//! The DataFrame layer appends this before each stateful step or sink. Were the two
//! shapes two chain types (`Then<S, O>` and `Then<Watermarked<Then<S, O>, F>, O>`),
//! every continuation of every erased stream would compile the whole thread's code
//! twice; here the choice costs one predictable branch per record instead.

use super::chain::build_stage;
use super::event_time::{generator_parts, Unrestorable};
use super::{Chain, Stream, Then};
use crate::event::{Epoch, Signal, Timestamp};
use crate::operator::stage::{SideOut, Stage};
use crate::operator::watermark::WatermarkStage;
use crate::operator::Operator;
use crate::plan::{Graph, GroupId, OpId, PortId};
use crate::runtime::{Downstream, Task};
use crate::time::WatermarkConfig;
use std::fmt;

/// A chain followed by the operator `before`, then optionally by the watermark generator
/// (event time `F`) and the operator `after`. Built by [`Stream::then_maybe_watermark`].
pub(crate) struct MaybeWatermarked<S: Chain, O: Operator<S::Out>, F> {
    before: Then<S, O>,
    watermark: Option<Generated<O, F>>,
}

/// The generator and the operator after it.
#[derive(Clone)]
struct Generated<O, F> {
    time: F,
    config: WatermarkConfig,
    id: OpId,
    instances: usize,
    after: O,
    after_id: OpId,
    group: GroupId,
    /// Whether the second operator's input carries watermarks (it does, unless a
    /// generator fails to restore).
    watermarked: bool,
}

impl<S: Chain, O: Operator<S::Out> + Clone, F: Clone> Clone for MaybeWatermarked<S, O, F> {
    fn clone(&self) -> Self {
        MaybeWatermarked {
            before: self.before.clone(),
            watermark: self.watermark.clone(),
        }
    }
}

impl<S: Chain, O: Operator<S::Out>, F> fmt::Debug for MaybeWatermarked<S, O, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaybeWatermarked")
            .field("watermark", &self.watermark.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: Chain> Stream<S> {
    /// `self.operator(name, before)`, then, where `watermark` is given,
    /// `.with_event_time(time).with_watermark_config(config).operator(name, after)`:
    /// the same plan (operators, edges, names), as one chain type whatever the choice.
    pub(crate) fn then_maybe_watermark<O, F>(
        self,
        name: &str,
        before: O,
        watermark: Option<(F, WatermarkConfig, O)>,
    ) -> Stream<MaybeWatermarked<S, O, F>>
    where
        O: Operator<S::Out, Out = S::Out> + Clone,
        F: FnMut(&S::Out) -> Timestamp + Clone + Send + 'static,
    {
        let stream = self.operator(name, before);
        let Some((time, config, after)) = watermark else {
            return stream.map_chain(|before| MaybeWatermarked {
                before,
                watermark: None,
            });
        };
        let stream = stream
            .with_event_time(time)
            .with_watermark_config(config)
            .operator(name, after);
        stream.map_chain(|then| {
            let (generator, after, after_id, group, watermarked) = then.into_parts();
            let (before, time, config, id, instances) = generator.into_parts();
            MaybeWatermarked {
                before,
                watermark: Some(Generated {
                    time,
                    config,
                    id,
                    instances,
                    after,
                    after_id,
                    group,
                    watermarked,
                }),
            }
        })
    }
}

impl<S, O, F> Chain for MaybeWatermarked<S, O, F>
where
    S: Chain,
    O: Operator<S::Out, Out = S::Out> + Clone,
    F: FnMut(&S::Out) -> Timestamp + Clone + Send + 'static,
{
    type Out = S::Out;

    fn input_port(&self) -> Option<PortId> {
        self.before.input_port()
    }

    #[allow(private_interfaces, private_bounds)]
    fn finish<C>(self, downstream: C, graph: &mut Graph, instance: usize) -> Box<dyn Task>
    where
        C: Downstream<S::Out> + Send + 'static,
    {
        let next = match self.watermark {
            None => Tail::Plain(downstream),
            Some(generated) => {
                // As `Then::finish` then `Watermarked::finish` build them: the stage
                // after the generator first.
                let after = build_stage(
                    generated.after,
                    generated.after_id,
                    generated.group,
                    None,
                    generated.watermarked,
                    downstream,
                    graph,
                    instance,
                );
                let parts = generator_parts(generated.id, instance, generated.instances, graph);
                match WatermarkStage::new(generated.time, generated.config, after, parts) {
                    Ok(stage) => Tail::Generated(stage),
                    Err(error) => {
                        // Reported by `start()`, naming the generator; never run.
                        graph.restore_failed(generated.id, error.to_string());
                        Tail::Unrestorable(Unrestorable)
                    }
                }
            }
        };
        self.before.finish(next, graph, instance)
    }
}

/// The watermark generator (event time `F`) in front of the stage of `O`, in front of
/// `C`.
type Generator<T, O, F, C> =
    WatermarkStage<T, F, Stage<T, O, C, SideOut<<O as Operator<T>>::Side>>>;

/// What follows the first operator on the thread: the rest of the chain, or the
/// generator and the second operator in front of it.
///
/// Built once per thread and held in its task; the variants' sizes differ, but boxing
/// the large one would add a pointer chase per record.
#[allow(clippy::large_enum_variant)]
enum Tail<T, O: Operator<T>, F, C> {
    Plain(C),
    Generated(Generator<T, O, F, C>),
    Unrestorable(Unrestorable),
}

impl<T, O, F, C> Downstream<T> for Tail<T, O, F, C>
where
    O: Operator<T, Out = T>,
    F: FnMut(&T) -> Timestamp,
    C: Downstream<T>,
{
    #[inline(always)]
    fn push(&mut self, record: T) {
        match self {
            Tail::Plain(next) => next.push(record),
            Tail::Generated(next) => next.push(record),
            Tail::Unrestorable(next) => Downstream::<T>::push(next, record),
        }
    }

    #[inline]
    fn signal(&mut self, signal: Signal) {
        match self {
            Tail::Plain(next) => next.signal(signal),
            Tail::Generated(next) => next.signal(signal),
            Tail::Unrestorable(next) => Downstream::<T>::signal(next, signal),
        }
    }

    #[inline]
    fn flush(&mut self) {
        match self {
            Tail::Plain(next) => next.flush(),
            Tail::Generated(next) => next.flush(),
            Tail::Unrestorable(next) => Downstream::<T>::flush(next),
        }
    }

    #[inline]
    fn next_timer(&self) -> Option<Timestamp> {
        match self {
            Tail::Plain(next) => next.next_timer(),
            Tail::Generated(next) => next.next_timer(),
            Tail::Unrestorable(next) => Downstream::<T>::next_timer(next),
        }
    }

    #[inline]
    fn fire_timers(&mut self, now: Timestamp) {
        match self {
            Tail::Plain(next) => next.fire_timers(now),
            Tail::Generated(next) => next.fire_timers(now),
            Tail::Unrestorable(next) => Downstream::<T>::fire_timers(next, now),
        }
    }

    #[inline]
    fn committed(&mut self, epoch: Epoch) {
        match self {
            Tail::Plain(next) => next.committed(epoch),
            Tail::Generated(next) => next.committed(epoch),
            Tail::Unrestorable(next) => Downstream::<T>::committed(next, epoch),
        }
    }

    #[inline]
    fn batch_started(&mut self) {
        match self {
            Tail::Plain(next) => next.batch_started(),
            Tail::Generated(next) => next.batch_started(),
            Tail::Unrestorable(next) => Downstream::<T>::batch_started(next),
        }
    }

    fn open(&mut self) -> Result<(), String> {
        match self {
            Tail::Plain(next) => next.open(),
            Tail::Generated(next) => next.open(),
            Tail::Unrestorable(next) => Downstream::<T>::open(next),
        }
    }
}

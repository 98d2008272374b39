//! The [`Context`] an operator gets with every hook, and the engine's implementation of
//! it for a stage on an operator thread.

use super::timer::TimerService;
use super::{Collector, TimerKey};
use crate::checkpoint::coordinator::CheckpointShared;
use crate::event::{Epoch, Timestamp};
use crate::metrics::{Counter, NamedCounters};
use crate::runtime::Downstream;
use crate::time::Clock;
use std::cell::Cell;

/// What an operator sees and can do while it handles an event: emit (it is its
/// [`Collector`]), set records aside on its side output, read the watermark and the
/// processing time, set and delete timers, and count things that progress reports show.
///
/// `Out` is what the operator emits, `Key` what its timers are keyed by and `Side` what
/// its side output carries (see [`Operator`](super::Operator)). The engine passes its own
/// implementation; [`Harness`](super::Harness) is one for tests.
pub trait Context<Out, Key = (), Side = ()>: Collector<Out> {
    /// Sets `record` aside on the operator's side output.
    fn side_output(&mut self, record: Side);

    /// The watermark of the operator's input: no record with an event time before it is
    /// expected any more. [`Timestamp::MIN`] until the first watermark arrives.
    fn watermark(&self) -> Timestamp;

    /// The current processing time, from the query's [`Clock`].
    ///
    /// In a micro-batch epoch it is the *batch time*: the clock's reading when the batch
    /// was planned, the same for every call and every operator throughout the batch, and
    /// recorded in the offset log, so a batch replayed after a restart sees the time the
    /// original run saw (Spark's `GroupState.getCurrentProcessingTimeMs`: "a constant
    /// value throughout the duration of a trigger, even if the trigger is re-executed").
    /// Processing-time timers in a micro-batch fire by it too. In a continuous epoch it is
    /// the clock's reading at the call.
    fn processing_time(&self) -> Timestamp;

    /// The epoch the records being handled belong to.
    fn epoch(&self) -> Epoch;

    /// Sets an event-time timer: [`on_timer`](super::Operator::on_timer) runs for `key`
    /// once the watermark reaches `time` (a timer at or before the current watermark
    /// fires with the next watermark that advances). Returns `false` if that timer was
    /// already set.
    fn register_event_time_timer(&mut self, key: Key, time: Timestamp) -> bool;

    /// Sets a processing-time timer: [`on_timer`](super::Operator::on_timer) runs for
    /// `key` once the clock reads `time` or later, even if no input arrives meanwhile. In
    /// a micro-batch epoch it fires at the end of a batch (the engine runs a batch without
    /// data when a timer is due and nothing else arrives), so its output belongs to that
    /// batch. Returns `false` if that timer was already set.
    fn register_processing_time_timer(&mut self, key: Key, time: Timestamp) -> bool;

    /// Deletes an event-time timer; `false` if it was not set.
    fn delete_event_time_timer(&mut self, key: &Key, time: Timestamp) -> bool;

    /// Deletes a processing-time timer; `false` if it was not set.
    fn delete_processing_time_timer(&mut self, key: &Key, time: Timestamp) -> bool;

    /// Adds `n` to the operator's counter `name` (late rows, malformed rows, …), which
    /// [`QueryProgress`](crate::QueryProgress) reports per operator.
    fn count(&mut self, name: &'static str, n: u64);

    /// Sets the operator's gauge `name` to `value`: a level that can go down as well as up
    /// (rows held in state, Spark's `numRowsTotal`), which
    /// [`QueryProgress`](crate::QueryProgress) reports with the counters (summed over the
    /// operator's instances). The default ignores it; the engine's context and
    /// [`Harness`](super::Harness) keep it, and a context wrapping another should forward it.
    fn gauge(&mut self, name: &'static str, value: u64) {
        let _ = (name, value);
    }
}

/// An operator's named counters as its thread caches them: the shared registry is
/// consulted (under its lock) only the first time a name is used.
#[derive(Debug)]
pub(crate) struct CounterCache {
    registry: std::sync::Arc<NamedCounters>,
    cached: Vec<(&'static str, std::sync::Arc<Counter>)>,
}

impl CounterCache {
    pub(crate) fn new(registry: std::sync::Arc<NamedCounters>) -> Self {
        CounterCache {
            registry,
            cached: Vec::new(),
        }
    }

    /// Adds `n` to counter `name`.
    #[inline]
    pub(crate) fn add(&mut self, name: &'static str, n: u64) {
        self.get(name).add(n);
    }

    /// Sets gauge `name` to `value`.
    #[inline]
    pub(crate) fn set(&mut self, name: &'static str, value: u64) {
        self.get(name).set(value);
    }

    /// The counter `name`, registered on first use.
    #[inline]
    fn get(&mut self, name: &'static str) -> &Counter {
        // Names are usually string literals: compare addresses first, then contents.
        let found = self
            .cached
            .iter()
            .position(|(known, _)| std::ptr::eq(*known, name) || *known == name);
        let at = match found {
            Some(at) => at,
            None => {
                self.cached.push((name, self.registry.get_or_add(name)));
                self.cached.len() - 1
            }
        };
        &self.cached[at].1
    }
}

/// Where a stage reads processing time: the query's clock in a continuous epoch, the
/// batch time the coordinator recorded for a micro-batch (looked up in the epoch clock
/// once per batch and cached), falling back to the clock for an epoch without one (the
/// records a stop drained after the last planned batch).
pub(crate) struct StageClock {
    clock: Clock,
    epochs: Option<crate::sync::Arc<CheckpointShared>>,
    micro_batch: bool,
    /// `(epoch, batch time)` last looked up; epoch 0 is never a batch.
    cached: Cell<(u64, Timestamp)>,
}

impl StageClock {
    /// Reads `clock`, or the batch times of `epochs` in micro-batch epochs.
    pub(crate) fn new(
        clock: Clock,
        epochs: Option<crate::sync::Arc<CheckpointShared>>,
        micro_batch: bool,
    ) -> Self {
        StageClock {
            clock,
            epochs,
            micro_batch,
            cached: Cell::new((0, Timestamp::MIN)),
        }
    }

    /// Whether the epochs from now on are micro-batches (the stage tells at each marker
    /// where the mode changes).
    pub(crate) fn set_micro_batch(&mut self, micro_batch: bool) {
        self.micro_batch = micro_batch;
    }

    /// The processing time for a call during `epoch`.
    #[inline]
    pub(crate) fn now(&self, epoch: u64) -> Timestamp {
        if !self.micro_batch {
            return self.clock.now();
        }
        let (known, time) = self.cached.get();
        if known == epoch {
            return time;
        }
        self.batch_time(epoch)
    }

    #[cold]
    fn batch_time(&self, epoch: u64) -> Timestamp {
        match self
            .epochs
            .as_ref()
            .and_then(|shared| shared.clock.batch_time(epoch))
        {
            Some(time) => {
                self.cached.set((epoch, time));
                time
            }
            None => self.clock.now(),
        }
    }
}

/// The engine's context for one call into an operator on a stage.
pub(crate) struct StageContext<'a, C, D, K> {
    pub(crate) out: &'a mut C,
    pub(crate) side: &'a mut D,
    pub(crate) timers: &'a mut TimerService<K>,
    pub(crate) counters: &'a mut CounterCache,
    pub(crate) clock: &'a StageClock,
    pub(crate) watermark: Timestamp,
    pub(crate) epoch: u64,
    pub(crate) records_out: &'a Counter,
}

impl<Out, C, D, K> Collector<Out> for StageContext<'_, C, D, K>
where
    C: Downstream<Out>,
{
    #[inline(always)]
    fn push(&mut self, record: Out) {
        self.records_out.add(1);
        self.out.push(record);
    }
}

impl<Out, Side, C, D, K> Context<Out, K, Side> for StageContext<'_, C, D, K>
where
    C: Downstream<Out>,
    D: Downstream<Side>,
    K: TimerKey,
{
    #[inline]
    fn side_output(&mut self, record: Side) {
        self.side.push(record);
    }

    #[inline]
    fn watermark(&self) -> Timestamp {
        self.watermark
    }

    #[inline]
    fn processing_time(&self) -> Timestamp {
        self.clock.now(self.epoch)
    }

    #[inline]
    fn epoch(&self) -> Epoch {
        Epoch(self.epoch)
    }

    fn register_event_time_timer(&mut self, key: K, time: Timestamp) -> bool {
        self.timers.register_event_time(key, time)
    }

    fn register_processing_time_timer(&mut self, key: K, time: Timestamp) -> bool {
        self.timers.register_processing_time(key, time)
    }

    fn delete_event_time_timer(&mut self, key: &K, time: Timestamp) -> bool {
        self.timers.delete_event_time(key, time)
    }

    fn delete_processing_time_timer(&mut self, key: &K, time: Timestamp) -> bool {
        self.timers.delete_processing_time(key, time)
    }

    #[inline]
    fn count(&mut self, name: &'static str, n: u64) {
        self.counters.add(name, n);
    }

    #[inline]
    fn gauge(&mut self, name: &'static str, value: u64) {
        self.counters.set(name, value);
    }
}

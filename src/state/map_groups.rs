//! [`FlatMapGroupsWithState`]: the operator of `map_groups_with_state` and
//! `flat_map_groups_with_state`.

use super::group::{GroupState, GroupStateTimeout, Values};
use super::keyed::{Expiry, KeyedState};
use crate::error::BoxError;
use crate::event::{Epoch, Timestamp};
use crate::operator::{Context, Operator, Timer};
use crate::trigger::{EmitMode, ExecutionMode};
use rustc_hash::FxHashMap;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::cell::Cell;
use std::collections::hash_map::Entry;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;

/// Runs a user function per group with Spark's `GroupState` semantics;
/// [`KeyedStream::flat_map_groups_with_state`](crate::KeyedStream::flat_map_groups_with_state)
/// and [`map_groups_with_state`](crate::KeyedStream::map_groups_with_state) build it.
///
/// The function `f(&key, records, &mut GroupState<'_, S>)` returns the rows to emit.
///
/// * **Continuous epochs**: `f` runs for every record, with that one record.
/// * **Micro-batch epochs**: the records of a batch are buffered per key and `f` runs
///   once per key that has records, with all of them in arrival order, at the end of the
///   batch.
/// * **Timeouts** (see [`GroupState`]): a group whose timeout passed gets one more call,
///   with no records and [`has_timed_out`](GroupState::has_timed_out). Continuous: as
///   soon as the watermark or the clock passes it. Micro-batch: at the end of the batch
///   in which it passed, after the calls with data, and only if the group had no records
///   in that batch (its call with records replaced the timeout, as in Spark).
///
/// The state of each group and its timeout are kept in a [`KeyedState`], checkpointed
/// with the operator; the timeouts' timers are checkpointed by the stage.
///
/// Rivulet does not drop records older than the watermark before `f` (Spark does, for
/// an event-time timeout): `f` sees every record, and a late one can be recognised with
/// [`current_watermark`](GroupState::current_watermark).
///
/// ```
/// use rivulet::operator::Harness;
/// use rivulet::state::{FlatMapGroupsWithState, GroupStateTimeout};
/// use rivulet::Timestamp;
///
/// // Per key: the running sum, emitted after each call; a key with no record for
/// // 10 units of event time emits its total and is forgotten.
/// let op = FlatMapGroupsWithState::new(GroupStateTimeout::EventTimeTimeout,
///     |key: &char, records, state| {
///         if state.has_timed_out() {
///             let total = state.take().unwrap_or(0);
///             return vec![(*key, total, "closed")];
///         }
///         let mut sum = state.get_option().copied().unwrap_or(0);
///         let mut latest = 0;
///         for (t, n) in records {
///             sum += n;
///             latest = t;
///         }
///         state.update(sum);
///         state.set_timeout_timestamp(Timestamp(latest + 10)).unwrap();
///         vec![(*key, sum, "open")]
///     });
/// let mut h = Harness::new(op);
/// h.push(('a', (1i64, 5u32)));
/// h.push(('a', (4, 2)));
/// assert_eq!(h.take_output(), [('a', 5, "open"), ('a', 7, "open")]);
/// h.advance_watermark(Timestamp(14)); // the timeout is 14: not passed yet
/// assert!(h.take_output().is_empty());
/// h.advance_watermark(Timestamp(15));
/// assert_eq!(h.take_output(), [('a', 7, "closed")]);
/// ```
pub struct FlatMapGroupsWithState<K, V, S, F> {
    state: KeyedState<K, S>,
    conf: GroupStateTimeout,
    mode: EmitMode,
    /// Micro-batch: the batch's records per key.
    batch: FxHashMap<K, Vec<V>>,
    /// Emptied record buffers, reused by the next batches.
    spare: Vec<Vec<V>>,
    /// Micro-batch: the timeouts that fired during the batch, handled at its end.
    due: Vec<Timer<K>>,
    f: F,
    /// Calls of `f` since the operator started (each may write its group's state): what
    /// progress reports as rows updated.
    calls: u64,
    _values: PhantomData<fn(V)>,
}

impl<K, V, S, F> FlatMapGroupsWithState<K, V, S, F> {
    /// The operator for `f`, with the timeouts `conf` allows.
    pub fn new<I>(conf: GroupStateTimeout, f: F) -> Self
    where
        F: FnMut(&K, Values<'_, V>, &mut GroupState<'_, S>) -> I,
    {
        FlatMapGroupsWithState {
            state: KeyedState::default(),
            conf,
            mode: EmitMode::default(),
            batch: FxHashMap::default(),
            spare: Vec::new(),
            due: Vec::new(),
            f,
            calls: 0,
            _values: PhantomData,
        }
    }

    /// The groups' states.
    pub fn state(&self) -> &KeyedState<K, S> {
        &self.state
    }
}

impl<K: Clone, V, S: Clone, F: Clone> Clone for FlatMapGroupsWithState<K, V, S, F> {
    fn clone(&self) -> Self {
        FlatMapGroupsWithState {
            state: self.state.clone(),
            conf: self.conf,
            mode: self.mode,
            batch: FxHashMap::default(),
            spare: Vec::new(),
            due: Vec::new(),
            f: self.f.clone(),
            calls: self.calls,
            _values: PhantomData,
        }
    }
}

impl<K, V, S, F> fmt::Debug for FlatMapGroupsWithState<K, V, S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlatMapGroupsWithState")
            .field("groups", &self.state.slot_count())
            .field("timeout", &self.conf)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// Spark times a group out once the watermark (or batch time) is *past* its timeout
/// (`timeout < threshold`); a timer at `t` fires once the watermark or clock reaches
/// `t`. So the timer goes one microsecond after the timeout.
fn expiry_of(conf: GroupStateTimeout, timeout: Option<Timestamp>) -> Option<Expiry> {
    let at = Timestamp(timeout?.0.saturating_add(1));
    match conf {
        GroupStateTimeout::NoTimeout => None,
        GroupStateTimeout::ProcessingTimeTimeout => Some(Expiry::processing_time(at)),
        GroupStateTimeout::EventTimeTimeout => Some(Expiry::event_time(at)),
    }
}

impl<K, V, S, F, I> FlatMapGroupsWithState<K, V, S, F>
where
    K: Hash + Eq + Clone,
    F: FnMut(&K, Values<'_, V>, &mut GroupState<'_, S>) -> I,
    I: IntoIterator,
{
    /// Calls `f` for `key` with `values` and emits what it returns.
    #[inline]
    fn call<C>(&mut self, key: K, values: Values<'_, V>, timed_out: bool, ctx: &mut C)
    where
        C: Context<I::Item, K>,
        K: crate::operator::TimerKey,
    {
        let conf = self.conf;
        let watermark = ctx.watermark();
        self.calls += 1;
        let f = &mut self.f;
        // The clock is read only if the function asks for the time.
        let shared: &C = ctx;
        let clock = || shared.processing_time();
        let (rows, rearm) = self.state.update_deferred(key, |key, value, expiry| {
            let mut group = GroupState {
                value: value.take(),
                timeout: None,
                conf,
                timed_out,
                watermark,
                now: Cell::new(None),
                clock: &clock,
            };
            let rows = f(key, values, &mut group);
            *value = group.value;
            *expiry = expiry_of(conf, group.timeout);
            rows
        });
        if let Some(rearm) = rearm {
            rearm.apply(ctx);
        }
        for row in rows {
            ctx.push(row);
        }
    }

    /// The end of a micro-batch (or of the stream): the calls with the batch's records,
    /// then the timeouts that fired during it and still stand.
    fn end_batch<C>(&mut self, ctx: &mut C)
    where
        C: Context<I::Item, K>,
        K: crate::operator::TimerKey,
    {
        if !self.batch.is_empty() {
            let mut batch = std::mem::take(&mut self.batch);
            for (key, mut values) in batch.drain() {
                self.call(key, Values::batch(&mut values), false, ctx);
                self.spare.push(values);
            }
            self.batch = batch;
        }
        // A group called with records above has a new timeout (or none), so its fired
        // timer is no longer its expiry and it is skipped here.
        let due = std::mem::take(&mut self.due);
        for timer in due {
            if self.state.is_expiry(&timer) {
                self.call(timer.key, Values::none(), true, ctx);
            }
        }
    }
}

impl<K, V, S, F, I> Operator<(K, V)> for FlatMapGroupsWithState<K, V, S, F>
where
    K: crate::operator::TimerKey + Hash + Eq,
    V: Send + 'static,
    S: Send + Serialize + DeserializeOwned + 'static,
    F: FnMut(&K, Values<'_, V>, &mut GroupState<'_, S>) -> I + Send + 'static,
    I: IntoIterator,
{
    type Out = I::Item;
    type Key = K;
    type Side = ();

    #[inline]
    fn on_record<C: Context<I::Item, K>>(&mut self, (key, value): (K, V), ctx: &mut C) {
        match self.mode.execution {
            ExecutionMode::Continuous => self.call(key, Values::one(value), false, ctx),
            ExecutionMode::MicroBatch => match self.batch.entry(key) {
                Entry::Occupied(mut values) => values.get_mut().push(value),
                Entry::Vacant(slot) => {
                    let mut values = self.spare.pop().unwrap_or_default();
                    values.push(value);
                    slot.insert(values);
                }
            },
        }
    }

    fn on_timer<C: Context<I::Item, K>>(&mut self, timer: Timer<K>, ctx: &mut C) {
        if !self.state.is_expiry(&timer) {
            return;
        }
        match self.mode.execution {
            ExecutionMode::Continuous => self.call(timer.key, Values::none(), true, ctx),
            ExecutionMode::MicroBatch => self.due.push(timer),
        }
    }

    fn on_marker<C: Context<I::Item, K>>(&mut self, _epoch: Epoch, ctx: &mut C) {
        self.end_batch(ctx);
    }

    fn on_end<C: Context<I::Item, K>>(&mut self, ctx: &mut C) {
        self.end_batch(ctx);
    }

    fn set_emit_mode(&mut self, mode: EmitMode) {
        self.mode = mode;
    }

    fn state_metrics(&self) -> Option<crate::metrics::StateMetrics> {
        Some(crate::metrics::StateMetrics {
            rows_total: self.state.len() as u64,
            rows_updated: self.calls,
            memory_used_bytes: self.state.estimated_bytes() as u64,
            ..Default::default()
        })
    }

    fn snapshot(&self) -> Result<Option<Vec<u8>>, BoxError> {
        Ok(Some(self.state.snapshot()?))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), BoxError> {
        self.state.restore(state)?;
        Ok(())
    }
}

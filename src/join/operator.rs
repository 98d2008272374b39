//! The stream–stream join operator: a symmetric hash join of `(key, record)` pairs with an
//! event-time condition, state evicted by the watermark.

use super::buffer::{BufferSnapshot, BufferSnapshotRef, Row, SideBuffer};
use super::condition::{Condition, Side};
use super::output::JoinOutput;
use super::STATE_ROWS;
use crate::checkpoint::codec;
use crate::error::BoxError;
use crate::event::{Epoch, Timestamp};
use crate::operator::{Context, TwoInputOperator};
use crate::trigger::{EmitMode, ExecutionMode};
use crate::window::lateness::Lateness;
use crate::window::ROWS_DROPPED_BY_WATERMARK;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::hash::Hash;

/// How often (in rows added) the state-size gauge is refreshed between watermarks.
const GAUGE_EVERY: u32 = 1024;

/// Reads a record's event time (µs), or none for a join without event time.
pub(crate) trait EventTimeOf<T>: Clone + Send + 'static {
    /// The record's event time.
    fn time_of(&self, record: &T) -> i64;
}

/// Event time from a closure.
#[derive(Clone)]
pub(crate) struct TimeFn<F>(pub(crate) F);

impl<T, F: Fn(&T) -> Timestamp + Clone + Send + 'static> EventTimeOf<T> for TimeFn<F> {
    #[inline(always)]
    fn time_of(&self, record: &T) -> i64 {
        (self.0)(record).0
    }
}

/// No event time: an equi-join whose state is never evicted and whose rows are never late.
#[derive(Clone, Copy)]
pub(crate) struct NoTime;

impl<T> EventTimeOf<T> for NoTime {
    #[inline(always)]
    fn time_of(&self, _record: &T) -> i64 {
        0
    }
}

/// The join's checkpointed state.
struct JoinState<K, L, R> {
    lateness: Lateness,
    left: SideBuffer<K, L>,
    right: SideBuffer<K, R>,
}

#[derive(Serialize)]
#[serde(bound(serialize = "K: Serialize, L: Serialize, R: Serialize"))]
struct StateRef<'a, K, L, R> {
    lateness: Lateness,
    left: BufferSnapshotRef<'a, K, L>,
    right: BufferSnapshotRef<'a, K, R>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "K: DeserializeOwned, L: DeserializeOwned, R: DeserializeOwned"))]
struct StateOwned<K, L, R> {
    lateness: Lateness,
    left: BufferSnapshot<K, L>,
    right: BufferSnapshot<K, R>,
}

/// A stream–stream join of `(K, L)` and `(K, R)` pairs (see the [module docs](super)).
///
/// Per record: drop it if it is late (its time at or before the late bound), join it with
/// the other side's buffered rows of its key whose times the condition allows, then buffer
/// it unless it can no longer match anything to come. Per watermark (continuous) or epoch
/// end (micro-batch): evict each side's rows up to its state watermark, emitting the
/// unmatched ones of an outer side.
pub(crate) struct StreamJoin<K, L, R, TL, TR, E> {
    condition: Condition,
    left_time: TL,
    right_time: TR,
    /// Whether rows have event times (late rows are dropped only then).
    timed: bool,
    output: E,
    mode: EmitMode,
    state: JoinState<K, L, R>,
    /// Rows added since the state-size gauge was last set.
    unreported: u32,
    /// Rows added to the state since the operator started (rows leave it only by
    /// eviction, so what is gone is this less what is held).
    added_total: u64,
}

impl<K, L, R, TL, TR, E> StreamJoin<K, L, R, TL, TR, E> {
    /// A join with empty state.
    pub(crate) fn new(
        condition: Condition,
        left_time: TL,
        right_time: TR,
        timed: bool,
        output: E,
    ) -> Self {
        StreamJoin {
            condition,
            left_time,
            right_time,
            timed,
            output,
            mode: EmitMode::default(),
            state: JoinState {
                lateness: Lateness::new(),
                left: SideBuffer::default(),
                right: SideBuffer::default(),
            },
            unreported: 0,
            added_total: 0,
        }
    }
}

/// A copy with empty state (the builder clones the operator once per instance, before
/// any record).
impl<K, L, R, TL: Clone, TR: Clone, E: Clone> Clone for StreamJoin<K, L, R, TL, TR, E> {
    fn clone(&self) -> Self {
        StreamJoin::new(
            self.condition,
            self.left_time.clone(),
            self.right_time.clone(),
            self.timed,
            self.output.clone(),
        )
    }
}

impl<K, L, R, TL, TR, E> StreamJoin<K, L, R, TL, TR, E>
where
    K: Hash + Eq + Clone,
    E: JoinOutput<K, L, R>,
{
    /// Whether a row at `time` is late: at or before the late bound (Spark's
    /// `eventTime <= watermark` filter; in a micro-batch the previous batch's watermark).
    #[inline]
    fn is_late(&self, time: i64) -> bool {
        self.timed && time <= self.state.lateness.bound(self.mode.execution)
    }

    /// Whether a row of `side` at `time` is to be buffered. In a continuous epoch, a row at
    /// or before its side's state watermark can match nothing still to come, so it is not
    /// (Spark does not add such rows to the state either). In a micro-batch every row is:
    /// rows of this batch on the other side may still be later than the previous batch's
    /// watermark while at or before this one's, and the batch's end evicts it anyway.
    #[inline]
    fn keeps(&self, side: Side, time: i64, watermark: Timestamp) -> bool {
        self.mode.execution == ExecutionMode::MicroBatch
            || self
                .condition
                .state_watermark(side, watermark.0)
                .is_none_or(|bound| time > bound)
    }

    /// Removes the rows the watermark made unmatchable on both sides, emitting the
    /// unmatched ones of an outer side; then reports the state size.
    fn evict<C: Context<E::Out>>(&mut self, watermark: i64, ctx: &mut C) {
        let output = &mut self.output;
        if let Some(until) = self.condition.state_watermark(Side::Left, watermark) {
            self.state.left.evict_until(until, |key, row| {
                if E::LEFT_OUTER && !row.matched {
                    if let Some(out) = output.left_only(key, &row.value) {
                        ctx.push(out);
                    }
                }
            });
        }
        if let Some(until) = self.condition.state_watermark(Side::Right, watermark) {
            self.state.right.evict_until(until, |key, row| {
                if E::RIGHT_OUTER && !row.matched {
                    if let Some(out) = output.right_only(key, &row.value) {
                        ctx.push(out);
                    }
                }
            });
        }
        self.report(ctx);
    }

    /// Sets the state-size gauge.
    fn report<C: Context<E::Out>>(&mut self, ctx: &mut C) {
        self.unreported = 0;
        ctx.gauge(
            STATE_ROWS,
            (self.state.left.len() + self.state.right.len()) as u64,
        );
    }

    /// Counts a row added to the state, refreshing the gauge now and then.
    #[inline]
    fn added<C: Context<E::Out>>(&mut self, ctx: &mut C) {
        self.added_total += 1;
        self.unreported += 1;
        if self.unreported >= GAUGE_EVERY {
            self.report(ctx);
        }
    }
}

impl<K, L, R, TL, TR, E> TwoInputOperator<(K, L), (K, R)> for StreamJoin<K, L, R, TL, TR, E>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    L: Send + Serialize + DeserializeOwned + 'static,
    R: Send + Serialize + DeserializeOwned + 'static,
    TL: EventTimeOf<L>,
    TR: EventTimeOf<R>,
    E: JoinOutput<K, L, R>,
{
    type Out = E::Out;
    type Key = ();
    type Side = ();

    #[inline]
    fn on_left<C: Context<E::Out>>(&mut self, (key, left): (K, L), ctx: &mut C) {
        let time = self.left_time.time_of(&left);
        if self.is_late(time) {
            ctx.count(ROWS_DROPPED_BY_WATERMARK, 1);
            return;
        }
        let (lo, hi) = self.condition.other_side_times(Side::Left, time);
        let mut matched = false;
        if E::SEMI {
            let output = &mut self.output;
            self.state.right.for_each_in(&key, lo, hi, |right| {
                if !matched {
                    if let Some(out) = output.both(&key, &left, &right.value) {
                        matched = true;
                        ctx.push(out);
                    }
                }
            });
            if matched {
                // Emitted once, now: it can give no other output, so it is not kept.
                return;
            }
        } else {
            let output = &mut self.output;
            self.state.right.for_each_in(&key, lo, hi, |right| {
                if let Some(out) = output.both(&key, &left, &right.value) {
                    right.matched = true;
                    matched = true;
                    ctx.push(out);
                }
            });
        }
        if self.keeps(Side::Left, time, ctx.watermark()) {
            let row = Row {
                time,
                matched,
                value: left,
            };
            self.state.left.insert(&key, row);
            self.added(ctx);
        } else if E::LEFT_OUTER && !matched {
            if let Some(out) = self.output.left_only(&key, &left) {
                ctx.push(out);
            }
        }
    }

    #[inline]
    fn on_right<C: Context<E::Out>>(&mut self, (key, right): (K, R), ctx: &mut C) {
        let time = self.right_time.time_of(&right);
        if self.is_late(time) {
            ctx.count(ROWS_DROPPED_BY_WATERMARK, 1);
            return;
        }
        let (lo, hi) = self.condition.other_side_times(Side::Right, time);
        let mut matched = false;
        let output = &mut self.output;
        self.state.left.for_each_in(&key, lo, hi, |left| {
            if E::SEMI && left.matched {
                return; // emitted already
            }
            if let Some(out) = output.both(&key, &left.value, &right) {
                left.matched = true;
                matched = true;
                ctx.push(out);
            }
        });
        if self.keeps(Side::Right, time, ctx.watermark()) {
            let row = Row {
                time,
                matched,
                value: right,
            };
            self.state.right.insert(&key, row);
            self.added(ctx);
        } else if E::RIGHT_OUTER && !matched {
            if let Some(out) = self.output.right_only(&key, &right) {
                ctx.push(out);
            }
        }
    }

    fn on_watermark<C: Context<E::Out>>(&mut self, watermark: Timestamp, ctx: &mut C) {
        if self.state.lateness.observe(watermark)
            && Lateness::closes_on_watermark(self.mode.execution)
        {
            self.evict(watermark.0, ctx);
        }
    }

    fn on_marker<C: Context<E::Out>>(&mut self, _epoch: Epoch, ctx: &mut C) {
        // Micro-batch: the batch's own watermark evicts, after its records (Spark's
        // eviction watermark); the next batch judges lateness by it. Continuous: the
        // watermark evicted as it came, so this finds nothing new.
        let watermark = self.state.lateness.end_epoch(ctx.watermark());
        self.evict(watermark, ctx);
    }

    fn on_end<C: Context<E::Out>>(&mut self, ctx: &mut C) {
        // The final watermark (micro-batch: applied by the stage before this call, as the
        // batch without data after the last one would).
        let watermark = self.state.lateness.end_epoch(ctx.watermark());
        self.evict(watermark, ctx);
    }

    fn set_emit_mode(&mut self, mode: EmitMode) {
        self.mode = mode;
    }

    fn state_metrics(&self) -> Option<crate::metrics::StateMetrics> {
        let held = (self.state.left.len() + self.state.right.len()) as u64;
        Some(crate::metrics::StateMetrics {
            rows_total: held,
            rows_updated: self.added_total,
            rows_removed: self.added_total.saturating_sub(held),
            ..Default::default()
        })
    }

    fn snapshot(&self) -> Result<Option<Vec<u8>>, BoxError> {
        let state = StateRef {
            lateness: self.state.lateness,
            left: self.state.left.snapshot(),
            right: self.state.right.snapshot(),
        };
        Ok(Some(codec::encode(&state)?))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), BoxError> {
        let state: StateOwned<K, L, R> = codec::decode(state)?;
        self.state = JoinState {
            lateness: state.lateness,
            left: SideBuffer::from_snapshot(state.left),
            right: SideBuffer::from_snapshot(state.right),
        };
        // The gauge is set again at the first watermark, marker or GAUGE_EVERY rows.
        self.unreported = GAUGE_EVERY - 1;
        Ok(())
    }
}

//! [`DropDuplicates`]: the operator of Spark's `dropDuplicates` and
//! `dropDuplicatesWithinWatermark` on streams.

use super::keyed::{Expiry, KeyedState};
use crate::error::BoxError;
use crate::event::{Epoch, Timestamp};
use crate::operator::{Context, Operator, Timer, TimerKey};
use crate::trigger::{EmitMode, ExecutionMode};
use crate::window::lateness::Lateness;
use crate::window::ROWS_DROPPED_BY_WATERMARK;
use std::fmt;
use std::hash::Hash;

/// The event time of a record for [`DropDuplicates`] without one: never called.
pub type NoEventTime<V> = fn(&V) -> Timestamp;

/// Emits the first record of each key and drops the records after it (Spark's
/// streaming `dropDuplicates`); built by
/// [`KeyedStream::drop_duplicates`](crate::KeyedStream::drop_duplicates) and its
/// watermarked forms. Its input is `(key, record)` pairs; it emits the records.
///
/// * **Without event time** ([`new`](Self::new)): every key seen stays in the state
///   for the life of the query (and its checkpoints), as in Spark without a watermark:
///   the state grows with the number of distinct keys.
/// * **With event time** ([`with_event_time`](Self::with_event_time)): a record whose
///   event time is at or behind the watermark is late and dropped (counted as
///   `rows_dropped_by_watermark`), before it is looked up. A key's state is kept until
///   the watermark reaches the event time of its first record plus `retain`, then
///   evicted: Spark's `dropDuplicates` with the event-time column among the key columns
///   is `retain` zero (every record of a key has the same time), Spark 3.5's
///   `dropDuplicatesWithinWatermark` is `retain` = the watermark's delay. `retain`
///   `None` drops late records but never evicts (Spark's `dropDuplicates` on a
///   watermarked stream whose key leaves out the event time). A record whose time is
///   `Timestamp(i64::MIN)` (a null event time) is never late, and its key never evicted.
///
/// Which watermark judges and evicts follows the windows ([`crate::window`]): in a
/// micro-batch epoch records are judged late by the watermark the previous batch ended
/// with and keys are evicted at the end of the batch by its own (Spark's
/// `eventTimeWatermarkForLateEvents` / `ForEviction`); in a continuous epoch both use
/// the current watermark, and keys are evicted as it arrives (their timers fire).
///
/// The keys and their expiries live in a [`KeyedState`]; the expiries are event-time
/// timers, which the stage checkpoints beside it, so a restored operator drops the
/// same duplicates and evicts the same keys.
///
/// ```
/// use rivulet::operator::Harness;
/// use rivulet::state::DropDuplicates;
/// use rivulet::Timestamp;
///
/// // (id, event time): state per id until the watermark reaches its first time.
/// let op = DropDuplicates::with_event_time(|(_, t): &(char, i64)| Timestamp(*t), Some(0));
/// let mut h = Harness::new(op);
/// for (id, t) in [('a', 5), ('b', 7), ('a', 5)] {
///     h.push((id, (id, t)));
/// }
/// assert_eq!(h.take_output(), [('a', 5), ('b', 7)]);
/// h.advance_watermark(Timestamp(5)); // evicts a; b stays
/// assert_eq!(h.operator().state().len(), 1);
/// h.push(('b', ('b', 7))); // a duplicate
/// h.push(('c', ('c', 4))); // late
/// assert!(h.take_output().is_empty());
/// assert_eq!(h.counter("rows_dropped_by_watermark"), 1);
/// ```
pub struct DropDuplicates<K, T> {
    state: KeyedState<K, ()>,
    /// The event time of a record, if the operator watches the watermark.
    time: Option<T>,
    /// How long after its first record's time a key is kept (µs); `None`: for ever.
    retain: Option<i64>,
    mode: EmitMode,
    lateness: Lateness,
    /// Micro-batch: the keys to evict at the end of the batch.
    due: Vec<K>,
    /// Keys stored since the operator started (progress's rows updated).
    inserted: u64,
    /// Keys evicted since the operator started.
    evicted: u64,
}

impl<K, V> DropDuplicates<K, NoEventTime<V>> {
    /// Deduplication without event time: the state keeps every key for ever.
    pub fn new() -> Self {
        DropDuplicates::build(None, None)
    }
}

impl<K, V> Default for DropDuplicates<K, NoEventTime<V>> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, T> DropDuplicates<K, T> {
    /// Deduplication by event time `time`: late records are dropped, and each key is
    /// evicted once the watermark reaches its first record's time plus `retain`
    /// microseconds (`None`: never evicted). See the [type docs](Self).
    pub fn with_event_time(time: T, retain: Option<i64>) -> Self {
        DropDuplicates::build(Some(time), retain)
    }

    fn build(time: Option<T>, retain: Option<i64>) -> Self {
        DropDuplicates {
            state: KeyedState::default(),
            time,
            retain,
            mode: EmitMode::default(),
            lateness: Lateness::new(),
            due: Vec::new(),
            inserted: 0,
            evicted: 0,
        }
    }

    /// The keys held.
    pub fn state(&self) -> &KeyedState<K, ()> {
        &self.state
    }
}

impl<K: Clone, T: Clone> Clone for DropDuplicates<K, T> {
    fn clone(&self) -> Self {
        DropDuplicates {
            state: self.state.clone(),
            time: self.time.clone(),
            retain: self.retain,
            mode: self.mode,
            lateness: self.lateness,
            due: self.due.clone(),
            inserted: self.inserted,
            evicted: self.evicted,
        }
    }
}

impl<K, T> fmt::Debug for DropDuplicates<K, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DropDuplicates")
            .field("keys", &self.state.slot_count())
            .field("event_time", &self.time.is_some())
            .field("retain", &self.retain)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl<K, T> DropDuplicates<K, T>
where
    K: TimerKey + Hash + Eq,
{
    /// Evicts the keys due in this micro-batch.
    fn evict_due<O, C: Context<O, K>>(&mut self, ctx: &mut C) {
        for key in std::mem::take(&mut self.due) {
            if self.state.remove_and_cancel(&key, ctx).is_some() {
                self.evicted += 1;
            }
        }
    }
}

impl<K, V, T> Operator<(K, V)> for DropDuplicates<K, T>
where
    K: TimerKey + Hash + Eq,
    V: Send + 'static,
    T: FnMut(&V) -> Timestamp + Send + 'static,
{
    type Out = V;
    type Key = K;
    type Side = ();

    #[inline]
    fn on_record<C: Context<V, K>>(&mut self, (key, record): (K, V), ctx: &mut C) {
        let mut expiry = None;
        if let Some(time) = &mut self.time {
            let at = time(&record);
            if at.0 != i64::MIN {
                let bound = self.lateness.bound(self.mode.execution);
                if bound != i64::MIN && at.0 <= bound {
                    ctx.count(ROWS_DROPPED_BY_WATERMARK, 1);
                    return;
                }
                expiry = self
                    .retain
                    .map(|retain| Expiry::event_time(Timestamp(at.0.saturating_add(retain))));
            }
        }
        let due_now = match expiry {
            // A micro-batch evicts at its end by its own watermark: a key already due
            // then waits for no timer (one set at or behind the watermark would fire
            // only when the watermark moves again).
            Some(expiry) if self.mode.execution == ExecutionMode::MicroBatch => {
                expiry.time <= ctx.watermark() && ctx.watermark().0 != i64::MIN
            }
            _ => false,
        };
        if due_now {
            if !self.state.contains_key(&key) {
                self.state.insert_if_absent(key.clone(), (), None, ctx);
                self.inserted += 1;
                self.due.push(key);
                ctx.push(record);
            }
        } else if self.state.insert_if_absent(key, (), expiry, ctx) {
            self.inserted += 1;
            ctx.push(record);
        }
    }

    fn on_timer<C: Context<V, K>>(&mut self, timer: Timer<K>, _ctx: &mut C) {
        if !self.state.is_expiry(&timer) {
            return;
        }
        match self.mode.execution {
            ExecutionMode::Continuous => {
                self.state.expire(&timer);
                self.evicted += 1;
            }
            ExecutionMode::MicroBatch => self.due.push(timer.key),
        }
    }

    fn on_watermark<C: Context<V, K>>(&mut self, watermark: Timestamp, _ctx: &mut C) {
        self.lateness.observe(watermark);
    }

    fn on_marker<C: Context<V, K>>(&mut self, _epoch: Epoch, ctx: &mut C) {
        self.lateness.end_epoch(ctx.watermark());
        self.evict_due(ctx);
    }

    fn on_end<C: Context<V, K>>(&mut self, ctx: &mut C) {
        self.evict_due(ctx);
    }

    fn set_emit_mode(&mut self, mode: EmitMode) {
        self.mode = mode;
    }

    fn state_metrics(&self) -> Option<crate::metrics::StateMetrics> {
        Some(crate::metrics::StateMetrics {
            rows_total: self.state.len() as u64,
            rows_updated: self.inserted,
            rows_removed: self.evicted,
            memory_used_bytes: self.state.estimated_bytes() as u64,
            ..Default::default()
        })
    }

    fn snapshot(&self) -> Result<Option<Vec<u8>>, BoxError> {
        // The keys (with their expiries) and the watermarks they are judged by: a
        // replayed micro-batch must judge its records as the original run did.
        let saved = (&self.state, &self.lateness);
        Ok(Some(crate::checkpoint::codec::encode(&saved)?))
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), BoxError> {
        let (state, lateness): (KeyedState<K, ()>, Lateness) =
            crate::checkpoint::codec::decode(bytes)?;
        self.state = state;
        self.lateness = lateness;
        self.due.clear();
        Ok(())
    }
}

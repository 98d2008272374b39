//! [`Harness`]: drives one operator by hand, without threads, for unit tests.

use super::stage::{restore_stage, StageSnapshot};
use super::timer::TimerService;
use super::{Collector, Context, Operator, TimerKey};
use crate::error::BoxError;
use crate::event::{Epoch, Timestamp};
use crate::trigger::EmitMode;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

/// Runs an [`Operator`] on the calling thread the way a stage runs it: records, watermarks
/// (firing the event-time timers they make due), processing time (firing processing-time
/// timers), markers, end-of-stream, snapshot and restore. What the operator emits is
/// collected for the test to read.
///
/// ```
/// use rivulet::operator::{Collector, Context, Harness, Operator, Timer};
/// use rivulet::Timestamp;
///
/// /// Emits each record once the watermark passes it.
/// #[derive(Clone, Default)]
/// struct Delay;
///
/// impl Operator<i64> for Delay {
///     type Out = i64;
///     type Key = i64;
///     type Side = ();
///     fn on_record<C: Context<i64, i64>>(&mut self, t: i64, ctx: &mut C) {
///         ctx.register_event_time_timer(t, Timestamp(t));
///     }
///     fn on_timer<C: Context<i64, i64>>(&mut self, timer: Timer<i64>, ctx: &mut C) {
///         ctx.push(timer.key);
///     }
/// }
///
/// let mut harness = Harness::new(Delay);
/// harness.push(30);
/// harness.push(10);
/// harness.advance_watermark(Timestamp(20));
/// assert_eq!(harness.take_output(), vec![10]);
/// // Timers are part of the snapshot: a restored operator still fires them.
/// let snapshot = harness.snapshot().unwrap();
/// let mut restored = Harness::restore(Delay, snapshot.as_deref()).unwrap();
/// restored.advance_watermark(Timestamp(40));
/// assert_eq!(restored.take_output(), vec![30]);
/// ```
pub struct Harness<In, O: Operator<In>> {
    op: O,
    parts: Parts<O::Out, O::Key, O::Side>,
    _input: PhantomData<fn(In)>,
}

impl<In, O: Operator<In>> fmt::Debug for Harness<In, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Harness")
            .field("watermark", &self.parts.watermark)
            .field("processing_time", &self.parts.now)
            .field("epoch", &self.parts.epoch)
            .field("timers", &self.parts.timers.len())
            .finish_non_exhaustive()
    }
}

/// Everything but the operator: the context's state and the collected output.
struct Parts<Out, Key, Side> {
    output: Vec<Out>,
    side: Vec<Side>,
    timers: TimerService<Key>,
    counters: BTreeMap<&'static str, u64>,
    watermark: Timestamp,
    now: Timestamp,
    epoch: u64,
}

impl<Out, Key: TimerKey, Side> Collector<Out> for Parts<Out, Key, Side> {
    fn push(&mut self, record: Out) {
        self.output.push(record);
    }
}

impl<Out, Key: TimerKey, Side> Context<Out, Key, Side> for Parts<Out, Key, Side> {
    fn side_output(&mut self, record: Side) {
        self.side.push(record);
    }
    fn watermark(&self) -> Timestamp {
        self.watermark
    }
    fn processing_time(&self) -> Timestamp {
        self.now
    }
    fn epoch(&self) -> Epoch {
        Epoch(self.epoch)
    }
    fn register_event_time_timer(&mut self, key: Key, time: Timestamp) -> bool {
        self.timers.register_event_time(key, time)
    }
    fn register_processing_time_timer(&mut self, key: Key, time: Timestamp) -> bool {
        self.timers.register_processing_time(key, time)
    }
    fn delete_event_time_timer(&mut self, key: &Key, time: Timestamp) -> bool {
        self.timers.delete_event_time(key, time)
    }
    fn delete_processing_time_timer(&mut self, key: &Key, time: Timestamp) -> bool {
        self.timers.delete_processing_time(key, time)
    }
    fn count(&mut self, name: &'static str, n: u64) {
        *self.counters.entry(name).or_default() += n;
    }
    fn gauge(&mut self, name: &'static str, value: u64) {
        self.counters.insert(name, value);
    }
}

impl<In, O: Operator<In>> Harness<In, O> {
    /// A harness around `op`, in epoch 1, at processing time 0, with no watermark yet,
    /// in the default [`EmitMode`] (continuous, update).
    pub fn new(op: O) -> Self {
        Self::with_timers(op, TimerService::new())
    }

    fn with_timers(mut op: O, timers: TimerService<O::Key>) -> Self {
        op.set_emit_mode(EmitMode::default());
        Harness {
            op,
            parts: Parts {
                output: Vec::new(),
                side: Vec::new(),
                timers,
                counters: BTreeMap::new(),
                watermark: Timestamp::MIN,
                now: Timestamp(0),
                epoch: 1,
            },
            _input: PhantomData,
        }
    }

    /// A harness around `op` restored from [`snapshot`](Self::snapshot)'s bytes (`None`:
    /// the operator had no state and no timers).
    ///
    /// # Errors
    ///
    /// What the operator's [`restore`](Operator::restore) or the decoding reports.
    pub fn restore(mut op: O, snapshot: Option<&[u8]>) -> Result<Self, BoxError> {
        let timers = match snapshot {
            Some(bytes) => restore_stage(&mut op, bytes, false)?,
            None => TimerService::new(),
        };
        Ok(Self::with_timers(op, timers))
    }

    /// Hands `record` to the operator.
    pub fn push(&mut self, record: In) {
        self.op.on_record(record, &mut self.parts);
    }

    /// Moves the watermark to `watermark` (if later): fires the event-time timers due,
    /// then calls [`on_watermark`](Operator::on_watermark).
    pub fn advance_watermark(&mut self, watermark: Timestamp) {
        if watermark <= self.parts.watermark {
            return;
        }
        self.parts.watermark = watermark;
        while let Some(timer) = self.parts.timers.pop_event_time(watermark) {
            self.op.on_timer(timer, &mut self.parts);
        }
        self.op.on_watermark(watermark, &mut self.parts);
    }

    /// Moves processing time to `now` (if later) and fires the processing-time timers due.
    pub fn set_processing_time(&mut self, now: Timestamp) {
        self.parts.now = self.parts.now.max(now);
        while let Some(timer) = self.parts.timers.pop_processing_time(self.parts.now) {
            self.op.on_timer(timer, &mut self.parts);
        }
    }

    /// Ends the current epoch ([`on_marker`](Operator::on_marker)); records after it
    /// belong to the next.
    pub fn end_epoch(&mut self) {
        let epoch = Epoch(self.parts.epoch);
        self.op.on_marker(epoch, &mut self.parts);
        self.parts.epoch += 1;
    }

    /// Tells the operator about a new [`EmitMode`].
    pub fn set_emit_mode(&mut self, mode: EmitMode) {
        self.op.set_emit_mode(mode);
    }

    /// End of stream ([`on_end`](Operator::on_end)).
    pub fn end(&mut self) {
        self.op.on_end(&mut self.parts);
    }

    /// The operator's state and pending timers as a stage checkpoints them; `None` if it
    /// has neither.
    ///
    /// # Errors
    ///
    /// What the operator's [`snapshot`](Operator::snapshot) or the encoding reports.
    pub fn snapshot(&self) -> Result<Option<Vec<u8>>, BoxError> {
        StageSnapshot::encode(self.op.snapshot()?, &self.parts.timers)
    }

    /// Takes what the operator emitted so far.
    pub fn take_output(&mut self) -> Vec<O::Out> {
        std::mem::take(&mut self.parts.output)
    }

    /// Takes what the operator set aside on its side output so far.
    pub fn take_side_output(&mut self) -> Vec<O::Side> {
        std::mem::take(&mut self.parts.side)
    }

    /// The value of counter or gauge `name` (0 if never counted or set).
    pub fn counter(&self, name: &str) -> u64 {
        self.parts.counters.get(name).copied().unwrap_or(0)
    }

    /// The pending timers.
    pub fn timers(&self) -> &TimerService<O::Key> {
        &self.parts.timers
    }

    /// The operator.
    pub fn operator(&self) -> &O {
        &self.op
    }

    /// The current watermark.
    pub fn watermark(&self) -> Timestamp {
        self.parts.watermark
    }
}

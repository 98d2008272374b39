//! A stage: one operator instance on a thread, wrapped with its counters, panic guard,
//! context (watermark, timers, named counters, side output) and checkpoint duties.

use super::context::{CounterCache, StageClock, StageContext};
use super::exchange::ForwardOut;
use super::timer::{TimeDomain, TimerService};
use super::Operator;
use crate::checkpoint::codec;
use crate::checkpoint::coordinator::Participant;
use crate::checkpoint::CheckpointError;
use crate::error::{BoxError, Error};
use crate::event::{Epoch, Signal, Timestamp};
use crate::metrics::epoch::EpochMetrics;
use crate::metrics::latency::LatencyRecorder;
use crate::metrics::{Counter, NamedCounters, OperatorMetrics};
use crate::runtime::{Downstream, RunControl};
use crate::sync::Arc;
use crate::time::Clock;
use crate::trigger::{EmitMode, ExecutionMode};
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

/// What a stage checkpoints: the operator's own state and its pending timers, each
/// encoded on its own so an operator's encoding never depends on its timers'.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct StageSnapshot {
    /// [`Operator::snapshot`]'s bytes.
    pub(crate) operator: Option<Vec<u8>>,
    /// The encoded [`TimerService`], if any timer was pending.
    pub(crate) timers: Option<Vec<u8>>,
}

impl StageSnapshot {
    /// Encodes an operator's snapshot and its pending timers; `None` if it has neither.
    pub(crate) fn encode<K: super::TimerKey>(
        operator: Option<Vec<u8>>,
        timers: &TimerService<K>,
    ) -> Result<Option<Vec<u8>>, BoxError> {
        let timers = if timers.is_empty() {
            None
        } else {
            Some(codec::encode(timers)?)
        };
        if operator.is_none() && timers.is_none() {
            return Ok(None);
        }
        Ok(Some(codec::encode(&StageSnapshot { operator, timers })?))
    }
}

/// Restores `op` and returns its timers from a stage snapshot. `legacy`: the checkpoint
/// predates timers (format 3 and older) and holds the operator's bytes alone.
pub(crate) fn restore_stage<In, O: Operator<In>>(
    op: &mut O,
    state: &[u8],
    legacy: bool,
) -> Result<TimerService<O::Key>, BoxError> {
    if legacy {
        op.restore(state)?;
        return Ok(TimerService::new());
    }
    let snapshot: StageSnapshot = codec::decode(state)?;
    if let Some(bytes) = &snapshot.operator {
        op.restore(bytes)?;
    }
    match &snapshot.timers {
        Some(bytes) => Ok(codec::decode(bytes)?),
        None => Ok(TimerService::new()),
    }
}

/// Where a stage's side output goes: a thread of its own reading it
/// ([`Stream::operator_with_side_output`](crate::Stream::operator_with_side_output)), or
/// nowhere, counted.
pub(crate) enum SideOut<T: Send> {
    /// Nobody reads it: count (as `side_output_discarded`, created at the first record)
    /// and drop.
    Discard(
        std::sync::Arc<NamedCounters>,
        Option<std::sync::Arc<Counter>>,
    ),
    /// An edge to the side stream's thread; control signals go there too.
    Edge(ForwardOut<T>),
}

impl<T: Send> Downstream<T> for SideOut<T> {
    #[inline]
    fn push(&mut self, record: T) {
        match self {
            SideOut::Discard(registry, counter) => counter
                .get_or_insert_with(|| registry.get_or_add("side_output_discarded"))
                .add(1),
            SideOut::Edge(edge) => edge.push(record),
        }
    }
    #[inline]
    fn signal(&mut self, signal: Signal) {
        if let SideOut::Edge(edge) = self {
            edge.signal(signal);
        }
    }
    #[inline]
    fn flush(&mut self) {
        if let SideOut::Edge(edge) = self {
            edge.flush();
        }
    }
}

/// The per-stage settings a stage is built with.
pub(crate) struct StageParts {
    pub(crate) metrics: Arc<OperatorMetrics>,
    pub(crate) name: std::sync::Arc<str>,
    pub(crate) control: Arc<RunControl>,
    /// This instance's handle to the checkpoint coordinator, if the query has epochs.
    pub(crate) participant: Option<Participant>,
    /// How the first epoch runs.
    pub(crate) mode: EmitMode,
    /// The epoch the first records belong to.
    pub(crate) first_epoch: u64,
    /// Whether the input carries watermarks (see [`Stage::start_batch`]).
    pub(crate) batch_watermark: bool,
    pub(crate) clock: Clock,
}

/// Runs `op` and forwards what it emits to `next` (and its side output to `side`).
pub(crate) struct Stage<In, O: Operator<In>, C, D> {
    op: O,
    next: C,
    side: D,
    timers: TimerService<O::Key>,
    counters: CounterCache,
    watermark: Timestamp,
    epoch: u64,
    clock: StageClock,
    metrics: Arc<OperatorMetrics>,
    name: std::sync::Arc<str>,
    control: Arc<RunControl>,
    participant: Option<Participant>,
    /// What the operator was last told about the epoch it is in.
    mode: EmitMode,
    /// The newest epoch the operator was told is committed.
    committed: u64,
    /// The earliest processing-time timer last published to the coordinator.
    published_timer: std::cell::Cell<i64>,
    /// Whether the input carries watermarks, so micro-batches apply the query's batch
    /// watermark.
    batch_watermark: bool,
    /// Whether the next event is the first of a micro-batch whose watermark is still to
    /// be applied.
    batch_starting: bool,
    /// Latency markers' samples since the last epoch report.
    latency: LatencyRecorder,
    _input: PhantomData<fn(In)>,
}

impl<In, O: Operator<In>, C, D> Stage<In, O, C, D> {
    /// A stage for `op` with restored `timers`.
    pub(crate) fn new(
        mut op: O,
        timers: TimerService<O::Key>,
        next: C,
        side: D,
        parts: StageParts,
    ) -> Self {
        op.set_emit_mode(parts.mode);
        let batch_starting = parts.batch_watermark
            && parts.participant.is_some()
            && parts.mode.execution == ExecutionMode::MicroBatch;
        Stage {
            batch_watermark: parts.batch_watermark,
            batch_starting,
            counters: CounterCache::new(parts.metrics.named.clone()),
            op,
            next,
            side,
            timers,
            watermark: Timestamp::MIN,
            epoch: parts.first_epoch,
            committed: parts.first_epoch.saturating_sub(1),
            published_timer: std::cell::Cell::new(i64::MAX),
            clock: StageClock::new(
                parts.clock,
                parts.participant.as_ref().map(|p| p.shared.clone()),
                parts.participant.is_some() && parts.mode.execution == ExecutionMode::MicroBatch,
            ),
            mode: parts.mode,
            metrics: parts.metrics,
            name: parts.name,
            control: parts.control,
            participant: parts.participant,
            latency: LatencyRecorder::default(),
            _input: PhantomData,
        }
    }

    /// Reports a panic of this operator's user code (if no earlier failure was reported,
    /// this one names the operator) and continues unwinding the thread.
    #[cold]
    #[inline(never)]
    fn panicked(&self, payload: Box<dyn std::any::Any + Send>) -> ! {
        self.control
            .fail(Error::from_panic(&self.name, payload.as_ref()));
        resume_unwind(payload)
    }
}

/// Borrows a stage's parts as the context of one call into its operator.
macro_rules! context {
    ($stage:ident) => {
        StageContext {
            out: &mut $stage.next,
            side: &mut $stage.side,
            timers: &mut $stage.timers,
            counters: &mut $stage.counters,
            clock: &$stage.clock,
            watermark: $stage.watermark,
            epoch: $stage.epoch,
            records_out: &$stage.metrics.records_out,
        }
    };
}

impl<In, O, C, D> Stage<In, O, C, D>
where
    O: Operator<In>,
    C: Downstream<O::Out>,
    D: Downstream<O::Side>,
{
    /// Encodes the operator's state and its timers for a checkpoint.
    fn snapshot(&self) -> Result<Option<Vec<u8>>, BoxError> {
        StageSnapshot::encode(self.op.snapshot()?, &self.timers)
    }

    /// Reports what this stage did up to the marker of `epoch` (or, at the end, in
    /// `epoch`) for the epoch's progress.
    fn report(&mut self, epoch: u64) {
        if let Some(participant) = &self.participant {
            participant.report(
                epoch,
                EpochMetrics {
                    state: self.op.state_metrics(),
                    ..EpochMetrics::of(&self.metrics, &mut self.latency)
                },
            );
        }
    }

    /// Forwards a control signal to the main and side outputs.
    fn forward(&mut self, signal: Signal) {
        self.next.signal(signal);
        self.side.signal(signal);
    }

    /// Fires the timers of `domain` due at `until`, one at a time (a timer the operator
    /// deletes from `on_timer` does not fire), but no more than were pending when the
    /// round began: a timer set from `on_timer` at or before `until` waits for the next
    /// round instead of looping here.
    fn fire_due(&mut self, domain: TimeDomain, until: Timestamp) {
        let mut budget = self.timers.len();
        while budget > 0 {
            let Some(timer) = self.timers.pop(domain, until) else {
                break;
            };
            budget -= 1;
            let op = &mut self.op;
            op.on_timer(timer, &mut context!(self));
        }
    }

    /// Whether the stage's own processing-time timers fire at epoch markers only: in a
    /// micro-batch epoch a timer's output belongs to a batch (and its checkpoint), as a
    /// processing-time timeout does in Spark.
    fn timers_wait_for_batches(&self) -> bool {
        self.mode.execution == ExecutionMode::MicroBatch
    }

    /// The watermark moved to `time`: fire the event-time timers it made due, tell the
    /// operator, forward it.
    fn on_watermark(&mut self, time: Timestamp) {
        if time > self.watermark {
            self.advance_watermark(time);
        } else {
            self.forward(Signal::Watermark(time));
        }
    }

    /// Moves the watermark forward to `time`: fires the event-time timers it made due,
    /// tells the operator, forwards it.
    fn advance_watermark(&mut self, time: Timestamp) {
        self.watermark = time;
        self.fire_due(TimeDomain::EventTime, time);
        let op = &mut self.op;
        op.on_watermark(time, &mut context!(self));
        self.forward(Signal::Watermark(time));
    }

    /// The first event of a micro-batch downstream of a watermark generator: the batch's
    /// watermark (Spark's: from every generator's records up to the end of the batch
    /// before) applies from here on, before any of the batch's records, whatever order
    /// this stage's inputs deliver theirs in. Called by the thread's head before the first
    /// record, marker or watermark after a marker (`Downstream::batch_started`; checked
    /// there once per epoch, not per record), and on a marker or watermark arriving first
    /// (on the generator's own thread the in-band watermark is first anyway). The same
    /// watermark arrives in-band later (and changes nothing then).
    #[cold]
    #[inline(never)]
    fn start_batch(&mut self) {
        self.batch_starting = false;
        if let Some(participant) = &self.participant {
            let watermark = participant
                .shared
                .watermarks
                .batch_watermark(self.epoch - 1);
            if watermark > self.watermark.0 {
                self.advance_watermark(Timestamp(watermark));
            }
        }
    }

    /// End of a stream downstream of a watermark generator, in a micro-batch epoch: the
    /// watermark of every record seen applies first, as it would in the batch without
    /// data that follows the last batch (Spark's no-data batch). Whether that batch ran
    /// before the sources ended depends on how the last records fell into batches, so
    /// without this a finite input's last windows would come out or not depending on the
    /// batch size. By now every generator upstream has ended and reported.
    fn end_batches(&mut self) {
        if self.mode.execution != ExecutionMode::MicroBatch {
            return;
        }
        if let Some(participant) = &self.participant {
            let board = &participant.shared.watermarks;
            let watermark = board.batch_watermark(crate::time::watermark::FINISHED);
            if watermark > self.watermark.0 {
                self.advance_watermark(Timestamp(watermark));
            }
        }
    }

    /// [`start_batch`](Self::start_batch) with the panic guard.
    #[cold]
    #[inline(never)]
    fn start_batch_guarded(&mut self) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| self.start_batch())) {
            self.panicked(payload);
        }
    }

    fn signal_inner(&mut self, signal: Signal) {
        match signal {
            Signal::Watermark(time) => self.on_watermark(time),
            Signal::Marker(epoch) => self.on_marker(epoch),
            Signal::Status(_) => self.forward(signal),
            Signal::Latency(stamp) => {
                let latency = LatencyRecorder::arrived(stamp);
                self.forward(signal);
                self.latency.record(latency);
            }
            Signal::End => self.on_end(),
        }
    }

    fn on_marker(&mut self, epoch: Epoch) {
        // The operator emits what the epoch owes; then the state reflects exactly the
        // records that preceded the marker (on every input, when aligned) and the
        // epoch's output, and the marker follows that output downstream. In a
        // micro-batch, the processing-time timers due by now fire first, as part of it.
        if self.timers_wait_for_batches() {
            // The batch's time, recorded when it was planned (and again by a replay).
            let now = self.clock.now(self.epoch);
            self.fire_due(TimeDomain::ProcessingTime, now);
        }
        let op = &mut self.op;
        op.on_marker(epoch, &mut context!(self));
        self.report(epoch.0);
        if let Some(participant) = &self.participant {
            if let Err(error) = participant.ack_state(epoch.0, &mut || self.snapshot()) {
                self.control
                    .fail(CheckpointError::snapshot_failed(&self.name, error));
            }
            let next = participant.shared.emit_mode(epoch.0 + 1);
            if next != self.mode {
                self.mode = next;
                self.op.set_emit_mode(next);
                self.clock
                    .set_micro_batch(next.execution == ExecutionMode::MicroBatch);
            }
            self.batch_starting =
                self.batch_watermark && next.execution == ExecutionMode::MicroBatch;
        }
        self.epoch = epoch.0 + 1;
        self.forward(Signal::Marker(epoch));
    }

    fn on_end(&mut self) {
        let op = &mut self.op;
        op.on_end(&mut context!(self));
        // Report the final state before forwarding the end, so a downstream
        // participant's report always follows ours.
        self.report(self.epoch);
        if let Some(participant) = &self.participant {
            if let Err(error) = participant.finish_state(&mut || self.snapshot()) {
                self.control
                    .fail(CheckpointError::snapshot_failed(&self.name, error));
            }
        }
        self.forward(Signal::End);
    }
}

impl<In, O, C, D> Downstream<In> for Stage<In, O, C, D>
where
    O: Operator<In>,
    C: Downstream<O::Out>,
    D: Downstream<O::Side>,
{
    #[inline]
    fn push(&mut self, record: In) {
        self.metrics.records_in.add(1);
        // The closure takes the stage as one pointer and builds the context inside, where
        // it is taken apart into registers, rather than capturing a reference per field.
        let this = &mut *self;
        let outcome = catch_unwind(AssertUnwindSafe(move || {
            let op = &mut this.op;
            op.on_record(record, &mut context!(this));
        }));
        if let Err(payload) = outcome {
            self.panicked(payload);
        }
    }

    fn signal(&mut self, signal: Signal) {
        let result = catch_unwind(AssertUnwindSafe(|| match signal {
            Signal::Watermark(_) | Signal::Marker(_) if self.batch_starting => {
                self.start_batch();
                self.signal_inner(signal);
            }
            Signal::End if self.batch_watermark => {
                self.end_batches();
                self.signal_inner(signal);
            }
            _ => self.signal_inner(signal),
        }));
        if let Err(payload) = result {
            self.panicked(payload);
        }
    }

    #[inline]
    fn flush(&mut self) {
        self.next.flush();
        self.side.flush();
    }

    #[inline]
    fn next_timer(&self) -> Option<Timestamp> {
        if self.timers.is_empty() && self.published_timer.get() == i64::MAX {
            // No timer, none published: nothing to look up or tell the coordinator.
            return self.next.next_timer();
        }
        let own = self.timers.next_processing_time();
        if let Some(participant) = &self.participant {
            // Published for the coordinator, which runs a micro-batch without data when
            // a timer is due; stored only when it changed.
            let deadline = own.map_or(i64::MAX, |time| time.0);
            if deadline != self.published_timer.get() {
                self.published_timer.set(deadline);
                participant.publish_timer(deadline);
            }
        }
        let own = own.filter(|_| !self.timers_wait_for_batches());
        match (own, self.next.next_timer()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn fire_timers(&mut self, now: Timestamp) {
        if !self.timers_wait_for_batches()
            && self
                .timers
                .next_processing_time()
                .is_some_and(|due| due <= now)
        {
            let result = catch_unwind(AssertUnwindSafe(|| {
                self.fire_due(TimeDomain::ProcessingTime, now);
            }));
            if let Err(payload) = result {
                self.panicked(payload);
            }
        }
        self.next.fire_timers(now);
    }

    fn batch_started(&mut self) {
        if self.batch_starting {
            self.start_batch_guarded();
        }
        self.next.batch_started();
    }

    fn committed(&mut self, epoch: Epoch) {
        if epoch.0 > self.committed {
            self.committed = epoch.0;
            let op = &mut self.op;
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| op.on_commit(epoch))) {
                self.panicked(payload);
            }
        }
        self.next.committed(epoch);
    }

    fn open(&mut self) -> Result<(), String> {
        self.next.open()
    }
}

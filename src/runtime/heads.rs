//! The heads of operator chains: what drives a thread's chain of collectors.
//!
//! * [`SourceTask`] polls a source and pushes each item into the chain; its epoch
//!   decisions (markers, replay, micro-batches) are the pure state machine
//!   [`SourceEpochs`], which it asks what to do and then does;
//! * [`InputTask`] pops events from the thread's input edges (one for a forward edge,
//!   several for a union or a keyed exchange), merges their control signals with
//!   [`FanIn`], and pushes records into the chain.

use super::chain_time::ChainTime;
use super::fan_in::FanIn;
use super::source_epochs::{Action, PlannedBatch, ReplayShortfall, Seen, SourceEpochs, Work};
use super::{Downstream, RunControl, Step, Task};
use crate::checkpoint::coordinator::Participant;
use crate::checkpoint::CheckpointError;
use crate::edge::{EdgeReceiver, Event};
use crate::error::Error;
use crate::event::{Epoch, Signal};
use crate::metrics::epoch::EpochMetrics;
use crate::metrics::latency::{self, LatencySampler};
use crate::metrics::OperatorMetrics;
use crate::source::{Source, SourceContext, SourcePoll};
use crate::sync::Arc;
use std::ops::ControlFlow;
use std::time::Instant;

/// A source driving a chain.
pub(crate) struct SourceTask<S: Source, C> {
    /// The source polled.
    pub(crate) source: S,
    /// The operators after it on this thread.
    pub(crate) chain: C,
    /// The source's counters.
    pub(crate) metrics: Arc<OperatorMetrics>,
    /// The query's stop, abort and failure flags.
    pub(crate) control: Arc<RunControl>,
    /// The source's name, for errors.
    pub(crate) name: std::sync::Arc<str>,
    /// Set once a stop was seen and the source asked to drain first.
    pub(crate) draining: bool,
    /// Epoch markers and batches, if the query has epochs.
    pub(crate) checkpoint: Option<SourceCheckpoint<S::Item>>,
    /// Timers and commit notifications of the chain.
    pub(crate) time: ChainTime,
    /// What the source is opened with at start; `None` once opened.
    pub(crate) context: Option<SourceContext>,
    /// Which records get a latency marker after them.
    pub(crate) sampler: LatencySampler,
}

/// A source's part in epochs: it injects a marker for every epoch the coordinator
/// starts, after recording its offset; in a micro-batch epoch it first plans the batch
/// (polls what is there, reports it) and emits it once the coordinator released it.
///
/// The decisions are [`SourceEpochs`], a pure state machine; this holds it with the
/// participant the source acknowledges to, whose epoch clock the task reads for it.
pub(crate) struct SourceCheckpoint<T> {
    /// Where acknowledgements, plans and the final report go; its epoch clock is what
    /// the task reads.
    pub(crate) participant: Participant,
    /// What to do next, given the stop flag and the clock.
    pub(crate) epochs: SourceEpochs<T>,
}

impl<T> SourceCheckpoint<T> {
    /// The part of a source that replays `replay` records first (if its first epoch is a
    /// restored one) and plans batches of at most `max_batch` records. Its first epoch is
    /// the one after the clock's current epoch.
    pub(crate) fn new(participant: Participant, replay: Option<u64>, max_batch: usize) -> Self {
        let clock = &participant.shared.clock;
        let injected = clock.current();
        let mode = clock.mode_of(injected + 1);
        let epochs = SourceEpochs::new(injected, mode, replay, max_batch);
        SourceCheckpoint {
            participant,
            epochs,
        }
    }

    /// Reads the epoch clock, after the stop flag (`stopping`), in the order [`Seen`]
    /// needs: the round after the current epoch.
    fn seen(&self, stopping: bool) -> Seen {
        let clock = &self.participant.shared.clock;
        let last_complete = clock.last_complete();
        let released = clock.released();
        let current = clock.current();
        let round = clock.round();
        Seen {
            stopping,
            last_complete,
            released,
            current,
            round,
        }
    }
}

impl<S, C> SourceTask<S, C>
where
    S: Source,
    C: Downstream<S::Item>,
{
    /// Counts a record handed to the chain; every `N`th is followed by a latency marker
    /// stamped now.
    #[inline(always)]
    fn sample(&mut self) {
        if self.sampler.tick() {
            self.mark_latency();
        }
    }

    #[cold]
    #[inline(never)]
    fn mark_latency(&mut self) {
        self.chain.signal(Signal::Latency(latency::now_nanos()));
    }

    fn finish(&mut self) -> Step {
        if let Some(checkpoint) = &self.checkpoint {
            let (epoch, records) = checkpoint.epochs.final_epoch();
            // The final offset: a restart that restores an epoch this source never saw
            // resumes from here (the end) instead of replaying.
            let state = if checkpoint.participant.shared.persistent {
                match self.source.checkpoint(Epoch(epoch)) {
                    Ok(offset) => Some(offset),
                    Err(error) => {
                        self.control
                            .fail(CheckpointError::snapshot_failed(&self.name, error));
                        return Step::Done;
                    }
                }
            } else {
                None
            };
            checkpoint.participant.report(
                epoch,
                EpochMetrics::of(&self.metrics, &mut Default::default()),
            );
            checkpoint.participant.finish_source(state, epoch, records);
        }
        self.chain.signal(Signal::End);
        self.chain.flush();
        Step::Done
    }

    /// The source's offset for `epoch`'s checkpoint (empty without a checkpoint log).
    /// `None` if the query failed.
    fn offset(&mut self, epoch: u64) -> Option<Vec<u8>> {
        let persistent = self
            .checkpoint
            .as_ref()
            .is_some_and(|checkpoint| checkpoint.participant.shared.persistent);
        if !persistent {
            return Some(Vec::new());
        }
        match self.source.checkpoint(Epoch(epoch)) {
            Ok(offset) => Some(offset),
            Err(error) => {
                self.control
                    .fail(CheckpointError::snapshot_failed(&self.name, error));
                None
            }
        }
    }

    /// Emits the marker of `epoch` with `offset`, acknowledging it.
    fn emit_marker(&mut self, epoch: u64, offset: Vec<u8>, took: std::time::Duration) {
        let Some(checkpoint) = &mut self.checkpoint else {
            return;
        };
        checkpoint.participant.report(
            epoch,
            EpochMetrics::of(&self.metrics, &mut Default::default()),
        );
        checkpoint
            .participant
            .ack_source(epoch, offset, took, checkpoint.epochs.records());
        let next_mode = checkpoint.participant.shared.clock.mode_of(epoch + 1);
        checkpoint.epochs.marked(epoch, next_mode);
        self.chain.signal(Signal::Marker(Epoch(epoch)));
    }

    /// Records the source's offset for `epoch` and emits its marker. Returns `false` if
    /// the query failed.
    fn mark(&mut self, epoch: u64) -> bool {
        let started = Instant::now();
        let Some(offset) = self.offset(epoch) else {
            return false;
        };
        self.emit_marker(epoch, offset, started.elapsed());
        true
    }

    /// Replays up to `remaining` records of a restored epoch, at most `budget`. `None`
    /// once all `remaining` are out: its marker follows in this step.
    fn replay(&mut self, budget: usize, remaining: u64) -> Option<Step> {
        let count = remaining.min(budget as u64);
        for emitted in 0..count {
            match self.source.poll_next() {
                SourcePoll::Ready(item) => {
                    if let Some(checkpoint) = &mut self.checkpoint {
                        checkpoint.epochs.replayed();
                    }
                    self.metrics.records_out.add(1);
                    self.chain.push(item);
                    self.sample();
                }
                SourcePoll::Pending { until } => {
                    self.chain.flush();
                    let stop_requested = self.control.is_stop_requested();
                    let shortfall = self.checkpoint.as_ref().and_then(|checkpoint| {
                        checkpoint
                            .epochs
                            .replay_stalled(until.is_none(), stop_requested)
                    });
                    if let Some(ReplayShortfall { epoch, remaining }) = shortfall {
                        // Nothing more comes without its feeders, which are stopping:
                        // the replayed epoch cannot be completed as it was logged.
                        let message = format!(
                            "stopped while replaying epoch {epoch}: the source could not give \
                             the {remaining} more records its offset log holds"
                        );
                        return Some(self.failed(message.into()));
                    }
                    return Some(if emitted > 0 {
                        Step::Busy
                    } else {
                        Step::Idle { until }
                    });
                }
                SourcePoll::Exhausted => return Some(self.finish()),
                SourcePoll::Failed(error) => return Some(self.failed(error)),
            }
        }
        if count < remaining {
            self.chain.flush();
            return Some(Step::Busy);
        }
        None
    }

    /// Plans micro-batch `epoch` in `round`: polls what the source holds (up to `max`
    /// records), reports it to the coordinator, and keeps it until the batch is released.
    fn plan_batch(&mut self, epoch: u64, round: u64, max: usize) -> Step {
        let mut records = Vec::new();
        let mut exhausted = false;
        let mut drained = false;
        while records.len() < max {
            match self.source.poll_next() {
                SourcePoll::Ready(item) => records.push(item),
                SourcePoll::Pending { .. } => {
                    drained = true;
                    break;
                }
                SourcePoll::Exhausted => {
                    exhausted = true;
                    drained = true;
                    break;
                }
                SourcePoll::Failed(error) => return self.failed(error),
            }
        }
        let Some(offset) = self.offset(epoch) else {
            return Step::Done;
        };
        let checkpoint = self.checkpoint.as_mut().expect("planning a batch");
        checkpoint.participant.plan(
            epoch,
            round,
            (records.len() as u64, offset.clone()),
            drained,
        );
        checkpoint.epochs.planned(PlannedBatch {
            epoch,
            round,
            records,
            offset,
            exhausted,
        });
        Step::Busy
    }

    /// Emits a released batch and its marker.
    fn emit_batch(&mut self, batch: PlannedBatch<S::Item>) -> Step {
        let started = Instant::now();
        self.metrics.records_out.add(batch.records.len() as u64);
        for record in batch.records {
            self.chain.push(record);
            self.sample();
        }
        self.emit_marker(batch.epoch, batch.offset, started.elapsed());
        if batch.exhausted {
            return self.finish();
        }
        self.chain.flush();
        Step::Busy
    }

    fn failed(&mut self, error: crate::error::BoxError) -> Step {
        self.control.fail(Error::Source {
            operator: self.name.to_string(),
            source: std::sync::Arc::from(error),
        });
        Step::Done
    }

    /// The epoch-driven part of a step: asks [`SourceEpochs`] what to do, with the clock
    /// read afresh each time, and does it. `Some(step)` ends the step there; `None`: the
    /// records flow freely.
    fn step_epochs(&mut self, budget: usize, stopping: bool) -> Option<Step> {
        loop {
            let checkpoint = self.checkpoint.as_mut()?;
            let seen = checkpoint.seen(stopping);
            match checkpoint.epochs.next(seen) {
                Action::Wait => return Some(Step::Idle { until: None }),
                Action::EmitFreely => return None,
                Action::InjectMarker(epoch) => {
                    if !self.mark(epoch) {
                        return Some(Step::Done);
                    }
                }
                Action::Replay { remaining } => {
                    if let Some(step) = self.replay(budget, remaining) {
                        return Some(step);
                    }
                }
                Action::ReplayMarker(epoch) => {
                    if !self.mark(epoch) {
                        return Some(Step::Done);
                    }
                    self.chain.flush();
                    return Some(Step::Busy);
                }
                Action::PlanBatch { epoch, round, max } => {
                    return Some(self.plan_batch(epoch, round, max))
                }
                Action::EmitBatch(batch) => return Some(self.emit_batch(batch)),
                Action::Finish => return Some(self.finish()),
            }
        }
    }
}

impl<S, C> Task for SourceTask<S, C>
where
    S: Source,
    C: Downstream<S::Item> + Send,
{
    fn step(&mut self, budget: usize) -> Step {
        if self.time.before_step(&mut self.chain) {
            self.chain.flush();
        }
        let step = self.step_source(budget);
        self.time.after(step, &self.chain)
    }

    fn has_work(&self) -> bool {
        self.time.timer_due() || self.source_has_work()
    }

    fn open_sinks(&mut self) -> Result<(), String> {
        self.chain.open()
    }

    fn open_source(&mut self) -> Result<(), String> {
        let Some(context) = self.context.take() else {
            return Ok(());
        };
        let source = &mut self.source;
        crate::error::run_guarded(|| source.open(&context))
            .map_err(|message| format!("source `{}` cannot start: {message}", self.name))
    }

    fn park(&mut self, timeout: Option<std::time::Duration>) -> bool {
        self.source.park(timeout)
    }
}

impl<S, C> SourceTask<S, C>
where
    S: Source,
    C: Downstream<S::Item> + Send,
{
    /// One step of the source itself: epochs, then polling.
    fn step_source(&mut self, budget: usize) -> Step {
        // Read the stop flag before the epoch clock: a stop that follows a final epoch
        // (Query::stop) then always sees that epoch and checkpoints it before ending.
        let stopping = self.control.is_stop_requested();
        if let Some(step) = self.step_epochs(budget, stopping) {
            return step;
        }
        if !self.draining && stopping {
            if !self.source.drain_on_stop() {
                return self.finish();
            }
            self.draining = true;
        }
        for emitted in 0..budget {
            match self.source.poll_next() {
                SourcePoll::Ready(item) => {
                    self.metrics.records_out.add(1);
                    if let Some(checkpoint) = &mut self.checkpoint {
                        checkpoint.epochs.emitted();
                    }
                    self.chain.push(item);
                    self.sample();
                }
                SourcePoll::Pending { until } => {
                    self.chain.flush();
                    return if emitted > 0 {
                        Step::Busy
                    } else {
                        Step::Idle { until }
                    };
                }
                SourcePoll::Exhausted => return self.finish(),
                SourcePoll::Failed(error) => return self.failed(error),
            }
        }
        self.chain.flush();
        Step::Busy
    }

    /// Whether the source has something to do (epochs or data).
    fn source_has_work(&self) -> bool {
        // The stop flag before the clock, as in a step.
        let stopping = self.control.is_stop_requested();
        let Some(checkpoint) = &self.checkpoint else {
            return stopping || self.source.has_data();
        };
        match checkpoint.epochs.has_work(checkpoint.seen(stopping)) {
            Work::Yes => true,
            Work::No => false,
            Work::IfSourceHasData => self.source.has_data(),
        }
    }
}

/// Input edges driving a chain.
pub(crate) struct InputTask<T, C> {
    pub(crate) inputs: Vec<EdgeReceiver<T>>,
    pub(crate) chain: C,
    pub(crate) fan_in: FanIn,
    pub(crate) control: Arc<RunControl>,
    pub(crate) name: std::sync::Arc<str>,
    /// Input to start the next step with, so no input is starved.
    pub(crate) next_input: usize,
    /// Scratch space for signals released by `fan_in`.
    pub(crate) released: Vec<Signal>,
    /// Timers and commit notifications of the chain.
    pub(crate) time: ChainTime,
    /// A marker was handed down and the next epoch's first event has not come yet: the
    /// chain hears `batch_started` before it (see [`InputTask::open_batch`]).
    pub(crate) batch_boundary: bool,
}

impl<T: Send, C: Downstream<T>> InputTask<T, C> {
    pub(crate) fn new(
        inputs: Vec<EdgeReceiver<T>>,
        chain: C,
        control: Arc<RunControl>,
        name: std::sync::Arc<str>,
        aligned: bool,
        time: ChainTime,
    ) -> Self {
        let fan_in = FanIn::new(inputs.len(), aligned);
        InputTask {
            inputs,
            chain,
            fan_in,
            control,
            name,
            next_input: 0,
            released: Vec::new(),
            time,
            batch_boundary: false,
        }
    }

    fn flush(&mut self) {
        for input in &mut self.inputs {
            input.flush();
        }
        self.chain.flush();
    }
}

/// Handles a control signal from `input`: merges it in `fan_in` and passes on what that
/// releases. Says whether the last input ended, or else whether a marker went down (an
/// epoch boundary), or else whether this input is done for now (it ended, or waits for
/// the other inputs' markers).
fn on_signal<T, C: Downstream<T>>(
    fan_in: &mut FanIn,
    released: &mut Vec<Signal>,
    chain: &mut C,
    input: usize,
    signal: Signal,
) -> ChunkEnd {
    fan_in.on_signal(input, signal, released);
    let mut marker = false;
    for signal in released.drain(..) {
        marker |= matches!(signal, Signal::Marker(_));
        chain.signal(signal);
    }
    if fan_in.all_ended() {
        ChunkEnd::AllEnded
    } else if marker {
        ChunkEnd::Boundary
    } else if signal == Signal::End || fan_in.is_blocked(input) {
        ChunkEnd::InputDone
    } else {
        ChunkEnd::Read
    }
}

/// Why [`InputTask::step`] stopped reading a chunk of one input.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ChunkEnd {
    /// Handed out every event asked for, or the ring ran dry.
    Read,
    /// The input ended or is blocked (aligned mode): go on to the next input.
    InputDone,
    /// The last input ended: the task is done.
    AllEnded,
    /// A marker went down the chain: the step ends, and the next one starts the epoch
    /// (`InputTask::open_batch`).
    Boundary,
}

impl<T, C> Task for InputTask<T, C>
where
    T: Send,
    C: Downstream<T> + Send,
{
    fn step(&mut self, budget: usize) -> Step {
        if self.time.before_step(&mut self.chain) {
            self.chain.flush();
        }
        let step = self.step_inputs(budget);
        self.time.after(step, &self.chain)
    }

    fn has_work(&self) -> bool {
        self.time.timer_due()
            || self.inputs.iter().enumerate().any(|(i, input)| {
                !self.fan_in.is_ended(i) && !self.fan_in.is_blocked(i) && input.is_ready()
            })
    }

    fn open_sinks(&mut self) -> Result<(), String> {
        self.chain.open()
    }
}

impl<T, C> InputTask<T, C>
where
    T: Send,
    C: Downstream<T> + Send,
{
    /// After a marker went down: waits for the next epoch's first record, marker or
    /// watermark, and tells the chain `batch_started` before handing it down, so a
    /// micro-batch's watermark applies before any of its records on every input (in a
    /// micro-batch that event exists only once the epoch before is complete). An end or
    /// idleness arriving first is handed down without it. Checked once per step, never
    /// per record. Returns the step's outcome if the step should end here.
    #[cold]
    fn open_batch(&mut self) -> Option<Step> {
        let count = self.inputs.len();
        let mut handled = false;
        for offset in 0..count {
            let input = (self.next_input + offset) % count;
            while !self.fan_in.is_ended(input) && !self.fan_in.is_blocked(input) {
                let Some(event) = self.inputs[input].try_recv() else {
                    break;
                };
                handled = true;
                let signal = match event.into_parts() {
                    Ok(record) => {
                        self.batch_boundary = false;
                        self.chain.batch_started();
                        self.chain.push(record);
                        return None;
                    }
                    Err(signal) => signal,
                };
                if matches!(signal, Signal::Marker(_) | Signal::Watermark(_)) {
                    self.batch_boundary = false;
                    self.chain.batch_started();
                }
                let InputTask {
                    chain,
                    fan_in,
                    released,
                    ..
                } = self;
                match on_signal(fan_in, released, chain, input, signal) {
                    ChunkEnd::AllEnded => {
                        self.flush();
                        return Some(Step::Done);
                    }
                    ChunkEnd::Boundary => {
                        self.batch_boundary = true;
                        self.flush();
                        return Some(Step::Busy);
                    }
                    ChunkEnd::InputDone | ChunkEnd::Read => {}
                }
                if !self.batch_boundary {
                    return None;
                }
            }
        }
        self.flush();
        Some(if handled {
            Step::Busy
        } else {
            Step::Idle { until: None }
        })
    }

    /// One step over the inputs.
    fn step_inputs(&mut self, budget: usize) -> Step {
        if self.batch_boundary {
            if let Some(step) = self.open_batch() {
                return step;
            }
        }
        let count = self.inputs.len();
        let mut handled = 0;
        for offset in 0..count {
            let input = (self.next_input + offset) % count;
            if self.fan_in.is_ended(input) || self.fan_in.is_blocked(input) {
                continue;
            }
            while handled < budget {
                // Events are read a chunk at a time (one index store frees the chunk), but
                // handled one by one: a signal that ends or blocks this input stops the
                // chunk there, and the events after it stay in the ring.
                let InputTask {
                    inputs,
                    chain,
                    fan_in,
                    released,
                    ..
                } = self;
                let mut end = ChunkEnd::Read;
                let read = inputs[input].recv_chunk(budget - handled, |event| match event {
                    Event::Record(record) => {
                        chain.push(record);
                        ControlFlow::Continue(())
                    }
                    event => {
                        let signal = match event.into_parts() {
                            Ok(_) => unreachable!("records are matched above"),
                            Err(signal) => signal,
                        };
                        end = on_signal(fan_in, released, chain, input, signal);
                        if end == ChunkEnd::Read {
                            ControlFlow::Continue(())
                        } else {
                            ControlFlow::Break(())
                        }
                    }
                });
                handled += read;
                match end {
                    ChunkEnd::AllEnded => {
                        self.flush();
                        return Step::Done;
                    }
                    ChunkEnd::Boundary => {
                        self.batch_boundary = true;
                        self.flush();
                        return Step::Busy;
                    }
                    ChunkEnd::InputDone => break,
                    ChunkEnd::Read if read > 0 => {}
                    ChunkEnd::Read => {
                        if self.inputs[input].is_disconnected() {
                            // The upstream thread ended without an end-of-stream: it
                            // failed (and reported why) or the query is aborting.
                            if !self.control.is_aborted() {
                                self.control.fail(Error::Disconnected {
                                    operator: self.name.to_string(),
                                    peer: "upstream",
                                });
                            }
                            return Step::Done;
                        }
                        break;
                    }
                }
            }
        }
        self.next_input = (self.next_input + 1) % count;
        self.flush();
        if handled == 0 {
            Step::Idle { until: None }
        } else {
            Step::Busy
        }
    }
}

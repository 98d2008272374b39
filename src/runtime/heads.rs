//! The heads of operator chains: what drives a thread's chain of collectors.
//!
//! * [`SourceTask`] polls a source and pushes each item into the chain;
//! * [`InputTask`] pops events from the thread's input edges (one for a forward edge,
//!   several for a union or a keyed exchange), merges their control signals with
//!   [`FanIn`], and pushes records into the chain.

use super::chain_time::ChainTime;
use super::fan_in::FanIn;
use super::{Downstream, RunControl, Step, Task};
use crate::checkpoint::coordinator::Participant;
use crate::checkpoint::CheckpointError;
use crate::edge::{EdgeReceiver, Event};
use crate::error::Error;
use crate::event::{Epoch, Signal};
use crate::metrics::OperatorMetrics;
use crate::source::{Source, SourceContext, SourcePoll};
use crate::sync::Arc;
use crate::trigger::ExecutionMode;
use std::ops::ControlFlow;
use std::time::Instant;

/// A source driving a chain.
pub(crate) struct SourceTask<S: Source, C> {
    pub(crate) source: S,
    pub(crate) chain: C,
    pub(crate) metrics: Arc<OperatorMetrics>,
    pub(crate) control: Arc<RunControl>,
    pub(crate) name: std::sync::Arc<str>,
    /// Set once a stop was seen and the source asked to drain first.
    pub(crate) draining: bool,
    /// Epoch markers and batches, if the query has epochs.
    pub(crate) checkpoint: Option<SourceCheckpoint<S::Item>>,
    /// Timers and commit notifications of the chain.
    pub(crate) time: ChainTime,
    /// What the source is opened with at start; `None` once opened.
    pub(crate) context: Option<SourceContext>,
}

/// A source's part in epochs: it injects a marker for every epoch the coordinator
/// starts, after recording its offset; in a micro-batch epoch it first plans the batch
/// (polls what is there, reports it) and emits it once the coordinator released it.
pub(crate) struct SourceCheckpoint<T> {
    pub(crate) participant: Participant,
    /// The newest epoch this source has emitted a marker for.
    pub(crate) injected: u64,
    /// How epoch `injected + 1` runs (cached: the clock's table is behind a lock).
    pub(crate) mode: ExecutionMode,
    /// Records emitted since the last marker.
    pub(crate) records: u64,
    /// Records still to replay before the marker of `injected + 1`: a restored epoch
    /// runs again with exactly the records the offset log recorded.
    pub(crate) replay: Option<u64>,
    /// A planned micro-batch, waiting for its release.
    pub(crate) batch: Option<PlannedBatch<T>>,
    /// A micro-batch this source ended, followed by a continuous epoch: the source
    /// sends nothing more until the batch is complete, so no record of the continuous
    /// epoch can reach an operator (at an unaligned fan-in) or a sink before the batch
    /// is committed. Micro-batches stay exactly-once across a switch.
    pub(crate) held_behind: Option<u64>,
    /// The most records in one batch.
    pub(crate) max_batch: usize,
}

impl<T> SourceCheckpoint<T> {
    pub(crate) fn new(participant: Participant, replay: Option<u64>, max_batch: usize) -> Self {
        let injected = participant.shared.clock.current();
        let mode = participant.shared.clock.mode_of(injected + 1);
        SourceCheckpoint {
            participant,
            injected,
            mode,
            records: 0,
            replay,
            batch: None,
            held_behind: None,
            max_batch: max_batch.max(1),
        }
    }
}

/// A micro-batch a source polled and reported, not emitted yet.
pub(crate) struct PlannedBatch<T> {
    epoch: u64,
    /// The planning round it was made in.
    round: u64,
    records: Vec<T>,
    offset: Vec<u8>,
    exhausted: bool,
}

impl<S, C> SourceTask<S, C>
where
    S: Source,
    C: Downstream<S::Item>,
{
    fn finish(&mut self) -> Step {
        if let Some(checkpoint) = &self.checkpoint {
            // The final offset: a restart that restores an epoch this source never saw
            // resumes from here (the end) instead of replaying.
            let state = if checkpoint.participant.shared.persistent {
                match self.source.checkpoint(Epoch(checkpoint.injected + 1)) {
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
            checkpoint.participant.finish_source(
                state,
                checkpoint.injected + 1,
                checkpoint.records,
            );
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

    /// Emits the marker of epoch `injected + 1` with `offset`, acknowledging it.
    fn emit_marker(&mut self, offset: Vec<u8>, took: std::time::Duration) {
        let Some(checkpoint) = &mut self.checkpoint else {
            return;
        };
        let epoch = checkpoint.injected + 1;
        checkpoint
            .participant
            .ack_source(epoch, offset, took, checkpoint.records);
        checkpoint.injected = epoch;
        checkpoint.records = 0;
        let ended = checkpoint.mode;
        checkpoint.mode = checkpoint.participant.shared.clock.mode_of(epoch + 1);
        if ended == ExecutionMode::MicroBatch && checkpoint.mode == ExecutionMode::Continuous {
            checkpoint.held_behind = Some(epoch);
        }
        self.chain.signal(Signal::Marker(Epoch(epoch)));
    }

    /// Emits a marker for every continuous epoch started since the last one, each after
    /// recording the source's offset. Stops at a micro-batch epoch (planned apart).
    /// Returns `false` if the query failed.
    fn inject_markers(&mut self) -> bool {
        loop {
            let Some(checkpoint) = &self.checkpoint else {
                return true;
            };
            let target = checkpoint.participant.shared.clock.current();
            if checkpoint.injected >= target || checkpoint.mode != ExecutionMode::Continuous {
                return true;
            }
            let epoch = checkpoint.injected + 1;
            let started = Instant::now();
            let Some(offset) = self.offset(epoch) else {
                return false;
            };
            self.emit_marker(offset, started.elapsed());
        }
    }

    /// Replays a restored epoch: exactly the records the offset log recorded, then its
    /// marker.
    fn step_replay(&mut self, budget: usize) -> Step {
        let mut emitted = 0;
        while let Some(remaining) = self.checkpoint.as_ref().and_then(|c| c.replay) {
            if remaining == 0 {
                let checkpoint = self.checkpoint.as_mut().expect("replaying");
                checkpoint.replay = None;
                let epoch = checkpoint.injected + 1;
                let started = Instant::now();
                let Some(offset) = self.offset(epoch) else {
                    return Step::Done;
                };
                self.emit_marker(offset, started.elapsed());
                break;
            }
            if emitted == budget {
                break;
            }
            match self.source.poll_next() {
                SourcePoll::Ready(item) => {
                    let checkpoint = self.checkpoint.as_mut().expect("replaying");
                    checkpoint.replay = Some(remaining - 1);
                    checkpoint.records += 1;
                    self.metrics.records_out.add(1);
                    self.chain.push(item);
                    emitted += 1;
                }
                SourcePoll::Pending { until } => {
                    self.chain.flush();
                    if until.is_none() && self.control.is_stop_requested() {
                        // Nothing more comes without its feeders, which are stopping:
                        // the replayed epoch cannot be completed as it was logged.
                        let epoch = self.checkpoint.as_ref().map_or(0, |c| c.injected + 1);
                        return self.failed(
                            format!(
                                "stopped while replaying epoch {epoch}: the source could not \
                                 give the {remaining} more records its offset log holds"
                            )
                            .into(),
                        );
                    }
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

    /// Plans micro-batch `epoch`: polls what the source holds (up to the batch limit),
    /// reports it to the coordinator, and keeps it until the batch is released.
    fn plan_batch(&mut self, epoch: u64) -> Option<Step> {
        let (max, round) = self.checkpoint.as_ref().map_or((1, 0), |c| {
            (c.max_batch, c.participant.shared.clock.round())
        });
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
                SourcePoll::Failed(error) => return Some(self.failed(error)),
            }
        }
        let Some(offset) = self.offset(epoch) else {
            return Some(Step::Done);
        };
        let checkpoint = self.checkpoint.as_mut().expect("planning a batch");
        checkpoint.participant.plan(
            epoch,
            round,
            (records.len() as u64, offset.clone()),
            drained,
        );
        checkpoint.batch = Some(PlannedBatch {
            epoch,
            round,
            records,
            offset,
            exhausted,
        });
        None
    }

    /// Emits a released batch and its marker.
    fn emit_batch(&mut self) -> Step {
        let checkpoint = self.checkpoint.as_mut().expect("emitting a batch");
        let batch = checkpoint.batch.take().expect("a planned batch");
        checkpoint.records = batch.records.len() as u64;
        let started = Instant::now();
        self.metrics.records_out.add(batch.records.len() as u64);
        for record in batch.records {
            self.chain.push(record);
        }
        self.emit_marker(batch.offset, started.elapsed());
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

    /// The epoch-driven part of a step: replay, micro-batches, markers. `Some(step)` ends
    /// the step there.
    fn step_epochs(&mut self, budget: usize, stopping: bool) -> Option<Step> {
        let checkpoint = self.checkpoint.as_mut()?;
        if let Some(batch) = checkpoint.held_behind {
            if checkpoint.participant.shared.clock.last_complete() < batch {
                return Some(Step::Idle { until: None });
            }
            checkpoint.held_behind = None;
        }
        if checkpoint.replay.is_some() {
            return Some(self.step_replay(budget));
        }
        if let Some(batch) = &checkpoint.batch {
            let clock = &checkpoint.participant.shared.clock;
            if clock.released() >= batch.epoch {
                return Some(self.emit_batch());
            }
            if !(batch.records.is_empty() && (stopping || clock.round() > batch.round)) {
                return Some(Step::Idle { until: None });
            }
            // An empty plan the coordinator will not run (no source had records): drop
            // it, then plan again, or end the stream when stopping.
            let exhausted = batch.exhausted;
            self.checkpoint.as_mut()?.batch = None;
            if exhausted {
                return Some(self.finish());
            }
        }
        if !self.inject_markers() {
            return Some(Step::Done);
        }
        let checkpoint = self.checkpoint.as_ref()?;
        if checkpoint.mode != ExecutionMode::MicroBatch || stopping {
            // Continuous (or stopping: the rest drains as in continuous mode, and the
            // final epoch takes it).
            return None;
        }
        let epoch = checkpoint.injected + 1;
        if checkpoint.participant.shared.clock.current() < epoch {
            // Between batches: records wait in the source.
            return Some(Step::Idle { until: None });
        }
        if let Some(step) = self.plan_batch(epoch) {
            return Some(step);
        }
        Some(Step::Busy)
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
        if let Some(context) = self.context.take() {
            let source = &mut self.source;
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| source.open(&context))) {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    return Err(format!("source `{}` cannot start: {error}", self.name))
                }
                Err(payload) => {
                    return Err(format!(
                        "source `{}` cannot start: panicked: {}",
                        self.name,
                        crate::error::panic_message(payload.as_ref())
                    ))
                }
            }
        }
        Ok(())
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
                        checkpoint.records += 1;
                    }
                    self.chain.push(item);
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
        let stopping = self.control.is_stop_requested();
        let Some(checkpoint) = &self.checkpoint else {
            return stopping || self.source.has_data();
        };
        let clock = &checkpoint.participant.shared.clock;
        if let Some(batch) = checkpoint.held_behind {
            return clock.last_complete() >= batch;
        }
        if let Some(batch) = &checkpoint.batch {
            // Checked before the stop flag: a stopping source with a planned batch waits
            // (parked) for its release instead of spinning on it.
            return clock.released() >= batch.epoch
                || (batch.records.is_empty() && (stopping || clock.round() > batch.round));
        }
        if stopping {
            return true;
        }
        clock.current() > checkpoint.injected
            || ((checkpoint.mode == ExecutionMode::Continuous || checkpoint.replay.is_some())
                && self.source.has_data())
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
/// releases. Returns `true` when the last input ended.
fn on_signal<T, C: Downstream<T>>(
    fan_in: &mut FanIn,
    released: &mut Vec<Signal>,
    chain: &mut C,
    input: usize,
    signal: Signal,
) -> bool {
    fan_in.on_signal(input, signal, released);
    for signal in released.drain(..) {
        chain.signal(signal);
    }
    fan_in.all_ended()
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
    /// One step over the inputs.
    fn step_inputs(&mut self, budget: usize) -> Step {
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
                        if on_signal(fan_in, released, chain, input, signal) {
                            end = ChunkEnd::AllEnded;
                            ControlFlow::Break(())
                        } else if signal == Signal::End || fan_in.is_blocked(input) {
                            end = ChunkEnd::InputDone;
                            ControlFlow::Break(())
                        } else {
                            ControlFlow::Continue(())
                        }
                    }
                });
                handled += read;
                match end {
                    ChunkEnd::AllEnded => {
                        self.flush();
                        return Step::Done;
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

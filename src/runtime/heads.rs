//! The heads of operator chains: what drives a thread's chain of collectors.
//!
//! * [`SourceTask`] polls a source and pushes each item into the chain;
//! * [`InputTask`] pops events from the thread's input edges (one for a forward edge,
//!   several for a union or a keyed exchange), merges their control signals with
//!   [`FanIn`], and pushes records into the chain.

use super::{RunControl, Step, Task};
use crate::checkpoint::coordinator::Participant;
use crate::checkpoint::CheckpointError;
use crate::edge::{EdgeReceiver, Event};
use crate::error::Error;
use crate::event::{Epoch, Signal};
use crate::metrics::OperatorMetrics;
use crate::operator::fan_in::FanIn;
use crate::operator::Collector;
use crate::source::{Source, SourcePoll};
use crate::sync::Arc;
use std::time::Instant;

/// A source driving a chain.
pub(crate) struct SourceTask<S, C> {
    pub(crate) source: S,
    pub(crate) chain: C,
    pub(crate) metrics: Arc<OperatorMetrics>,
    pub(crate) control: Arc<RunControl>,
    pub(crate) name: std::sync::Arc<str>,
    /// Set once a stop was seen and the source asked to drain first.
    pub(crate) draining: bool,
    /// Epoch markers, if checkpointing is on.
    pub(crate) checkpoint: Option<SourceCheckpoint>,
}

/// A source's part in checkpoints: it injects a marker for every epoch the coordinator
/// starts, after recording its offset.
pub(crate) struct SourceCheckpoint {
    pub(crate) participant: Participant,
    /// The newest epoch this source has emitted a marker for.
    pub(crate) injected: u64,
}

impl<S, C> SourceTask<S, C>
where
    S: Source,
    C: Collector<S::Item>,
{
    fn finish(&mut self) -> Step {
        if let Some(checkpoint) = &self.checkpoint {
            // The final offset: a restart that restores an epoch this source never saw
            // resumes from here (the end) instead of replaying.
            match self.source.checkpoint(Epoch(checkpoint.injected + 1)) {
                Ok(offset) => checkpoint.participant.finish(Some(offset)),
                Err(error) => {
                    self.control
                        .fail(CheckpointError::snapshot_failed(&self.name, error));
                    return Step::Done;
                }
            }
        }
        self.chain.signal(Signal::End);
        self.chain.flush();
        Step::Done
    }

    /// Emits a marker for every epoch started since the last one, each after recording
    /// the source's offset. Returns `false` if the query failed.
    fn inject_markers(&mut self) -> bool {
        let Some(checkpoint) = &mut self.checkpoint else {
            return true;
        };
        let target = checkpoint.participant.shared.clock.current();
        while checkpoint.injected < target {
            let epoch = checkpoint.injected + 1;
            let started = Instant::now();
            match self.source.checkpoint(Epoch(epoch)) {
                Ok(offset) => checkpoint
                    .participant
                    .ack(epoch, Some(offset), started.elapsed()),
                Err(error) => {
                    self.control
                        .fail(CheckpointError::snapshot_failed(&self.name, error));
                    return false;
                }
            }
            checkpoint.injected = epoch;
            self.chain.signal(Signal::Marker(Epoch(epoch)));
        }
        true
    }
}

impl<S, C> Task for SourceTask<S, C>
where
    S: Source,
    C: Collector<S::Item> + Send,
{
    fn step(&mut self, budget: usize) -> Step {
        // Read the stop flag before the epoch clock: a stop that follows a final epoch
        // (Query::stop) then always sees that epoch and checkpoints it before ending.
        let stopping = self.control.is_stop_requested();
        if !self.inject_markers() {
            return Step::Done;
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
                SourcePoll::Failed(error) => {
                    self.control.fail(Error::Source {
                        operator: self.name.to_string(),
                        source: std::sync::Arc::from(error),
                    });
                    return Step::Done;
                }
            }
        }
        self.chain.flush();
        Step::Busy
    }

    fn has_work(&self) -> bool {
        self.control.is_stop_requested()
            || self.source.has_data()
            || self.checkpoint.as_ref().is_some_and(|checkpoint| {
                checkpoint.participant.shared.clock.current() > checkpoint.injected
            })
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
}

impl<T: Send, C: Collector<T>> InputTask<T, C> {
    pub(crate) fn new(
        inputs: Vec<EdgeReceiver<T>>,
        chain: C,
        control: Arc<RunControl>,
        name: std::sync::Arc<str>,
        aligned: bool,
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
        }
    }

    fn flush(&mut self) {
        for input in &mut self.inputs {
            input.flush();
        }
        self.chain.flush();
    }

    /// Handles a control signal from `input`; returns `true` when the last input ended.
    fn on_signal(&mut self, input: usize, signal: Signal) -> bool {
        self.fan_in.on_signal(input, signal, &mut self.released);
        for signal in self.released.drain(..) {
            self.chain.signal(signal);
        }
        self.fan_in.all_ended()
    }
}

impl<T, C> Task for InputTask<T, C>
where
    T: Send,
    C: Collector<T> + Send,
{
    fn step(&mut self, budget: usize) -> Step {
        let count = self.inputs.len();
        let mut handled = 0;
        for offset in 0..count {
            let input = (self.next_input + offset) % count;
            if self.fan_in.is_ended(input) || self.fan_in.is_blocked(input) {
                continue;
            }
            while handled < budget {
                match self.inputs[input].try_recv() {
                    Some(Event::Record(record)) => self.chain.push(record),
                    Some(event) => {
                        let signal = match event.into_parts() {
                            Ok(_) => unreachable!("records are matched above"),
                            Err(signal) => signal,
                        };
                        if self.on_signal(input, signal) {
                            self.flush();
                            return Step::Done;
                        }
                        if signal == Signal::End || self.fan_in.is_blocked(input) {
                            break;
                        }
                    }
                    None => {
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
                handled += 1;
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

    fn has_work(&self) -> bool {
        self.inputs.iter().enumerate().any(|(i, input)| {
            !self.fan_in.is_ended(i) && !self.fan_in.is_blocked(i) && input.is_ready()
        })
    }
}

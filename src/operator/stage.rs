//! A stage: one operator instance on a thread, wrapped with its counters and panic guard.

use super::{Collector, Operator};
use crate::checkpoint::coordinator::Participant;
use crate::checkpoint::CheckpointError;
use crate::error::Error;
use crate::event::Signal;
use crate::metrics::{Counter, OperatorMetrics};
use crate::runtime::RunControl;
use crate::sync::Arc;
use crate::trigger::EmitMode;
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::Instant;

/// Runs `op` and forwards what it emits to `next`.
pub(crate) struct Stage<In, O, C> {
    op: O,
    next: C,
    metrics: Arc<OperatorMetrics>,
    name: std::sync::Arc<str>,
    control: Arc<RunControl>,
    /// This instance's handle to the checkpoint coordinator, if checkpointing is on.
    participant: Option<Participant>,
    /// What the operator was last told about the epoch it is in.
    mode: EmitMode,
    _input: PhantomData<fn(In)>,
}

impl<In, O: Operator<In>, C> Stage<In, O, C> {
    /// A stage for `op`, whose first epoch runs in `mode`.
    pub(crate) fn new(
        mut op: O,
        next: C,
        metrics: Arc<OperatorMetrics>,
        name: std::sync::Arc<str>,
        control: Arc<RunControl>,
        participant: Option<Participant>,
        mode: EmitMode,
    ) -> Self {
        op.set_emit_mode(mode);
        Stage {
            mode,
            op,
            next,
            metrics,
            name,
            control,
            participant,
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

/// Counts what an operator emits on its way to the next stage.
struct CountOut<'a, C> {
    next: &'a mut C,
    out: &'a Counter,
}

impl<T, C: Collector<T>> Collector<T> for CountOut<'_, C> {
    #[inline(always)]
    fn push(&mut self, record: T) {
        self.out.add(1);
        self.next.push(record);
    }
    #[inline(always)]
    fn signal(&mut self, signal: Signal) {
        self.next.signal(signal);
    }
    #[inline(always)]
    fn flush(&mut self) {
        self.next.flush();
    }
}

impl<In, O, C> Collector<In> for Stage<In, O, C>
where
    O: Operator<In>,
    C: Collector<O::Out>,
{
    #[inline]
    fn push(&mut self, record: In) {
        self.metrics.records_in.add(1);
        let op = &mut self.op;
        let mut out = CountOut {
            next: &mut self.next,
            out: &self.metrics.records_out,
        };
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| op.on_record(record, &mut out))) {
            self.panicked(payload);
        }
    }

    fn signal(&mut self, signal: Signal) {
        let op = &mut self.op;
        let mut out = CountOut {
            next: &mut self.next,
            out: &self.metrics.records_out,
        };
        let participant = self.participant.as_ref();
        let mode = &mut self.mode;
        let control = &self.control;
        let name = &self.name;
        let result = catch_unwind(AssertUnwindSafe(|| match signal {
            Signal::Watermark(time) => op.on_watermark(time, &mut out),
            Signal::Marker(epoch) => {
                // The operator emits what the epoch owes and forwards the marker; then the
                // state reflects exactly the records that preceded the marker (on every
                // input, when aligned) and the epoch's output.
                op.on_marker(epoch, &mut out);
                if let Some(participant) = participant {
                    if participant.shared.persistent {
                        let started = Instant::now();
                        match op.snapshot() {
                            Ok(state) => participant.ack(epoch.0, state, started.elapsed()),
                            Err(error) => {
                                control.fail(CheckpointError::snapshot_failed(name, error))
                            }
                        }
                    } else {
                        participant.ack(epoch.0, None, std::time::Duration::ZERO);
                    }
                    let next = participant.shared.emit_mode(epoch.0 + 1);
                    if next != *mode {
                        *mode = next;
                        op.set_emit_mode(next);
                    }
                }
            }
            Signal::End => {
                op.on_end(&mut out);
                // Report the final state before forwarding the end, so a downstream
                // participant's report always follows ours.
                if let Some(participant) = participant {
                    let state = if participant.shared.persistent {
                        op.snapshot()
                    } else {
                        Ok(None)
                    };
                    match state {
                        Ok(state) => participant.finish(state, None),
                        Err(error) => control.fail(CheckpointError::snapshot_failed(name, error)),
                    }
                }
                out.signal(Signal::End);
            }
        }));
        if let Err(payload) = result {
            self.panicked(payload);
        }
    }

    #[inline]
    fn flush(&mut self) {
        self.next.flush();
    }
}

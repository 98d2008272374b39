//! Sinks: where records leave a query.
//!
//! A sink is the last stage of an operator chain and runs on that chain's thread. It gets
//! records one at a time ([`Sink::write`]), a [`Sink::flush`] at the end of each step of
//! work (publish or write out what was buffered), and [`Sink::close`] at end-of-stream.
//! An error from any of them, or a panic, stops the query with an error naming the sink.
//!
//! | sink | builder call | Spark counterpart |
//! |---|---|---|
//! | [`MemorySink`] | [`Stream::to_memory`](crate::Stream::to_memory) | `memory` |
//! | [`ForEachSink`] | [`Stream::for_each`](crate::Stream::for_each) | `foreach` |
//! | [`ConsoleSink`] | [`Stream::to_console`](crate::Stream::to_console) | `console` |

pub mod console;
pub mod foreach;
pub mod memory;

pub use console::ConsoleSink;
pub use foreach::ForEachSink;
pub use memory::{MemorySink, MemoryTable};

use crate::checkpoint::coordinator::Participant;
use crate::error::{BoxError, Error};
use crate::event::{Epoch, Signal};
use crate::metrics::OperatorMetrics;
use crate::operator::Collector;
use crate::runtime::RunControl;
use crate::sync::Arc;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

/// A destination for records. Cloned once per parallel instance.
pub trait Sink<T>: Send + 'static {
    /// Takes one record.
    ///
    /// # Errors
    ///
    /// Any error stops the query; it is reported by `await_termination`.
    fn write(&mut self, record: T) -> Result<(), BoxError>;

    /// Ends a step of work: make buffered records visible or durable. Called often (after
    /// every batch the thread handled), so it should be cheap when nothing is pending.
    ///
    /// # Errors
    ///
    /// As for [`write`](Sink::write).
    fn flush(&mut self) -> Result<(), BoxError> {
        Ok(())
    }

    /// Everything before the marker of `epoch` has been written (and flushed). The
    /// epoch is not complete yet: other operators may still be snapshotting it, and a
    /// crash now restores the epoch before and replays this one. So this is a
    /// *pre-commit*: make the epoch's output durable and identifiable here, and treat a
    /// replayed epoch idempotently; output that must appear exactly once must not be
    /// published on the strength of this call alone.
    ///
    /// # Errors
    ///
    /// As for [`write`](Sink::write).
    fn on_epoch(&mut self, epoch: Epoch) -> Result<(), BoxError> {
        let _ = epoch;
        Ok(())
    }

    /// End of stream. The default flushes.
    ///
    /// # Errors
    ///
    /// As for [`write`](Sink::write).
    fn close(&mut self) -> Result<(), BoxError> {
        self.flush()
    }
}

/// Runs a sink as the last stage of a chain.
pub(crate) struct SinkStage<S> {
    pub(crate) sink: S,
    pub(crate) metrics: Arc<OperatorMetrics>,
    pub(crate) name: std::sync::Arc<str>,
    pub(crate) control: Arc<RunControl>,
    /// Set after the sink failed: later calls are skipped while the query aborts.
    pub(crate) failed: bool,
    /// This instance's handle to the checkpoint coordinator, if checkpointing is on.
    pub(crate) participant: Option<Participant>,
}

impl<S> SinkStage<S> {
    pub(crate) fn new(
        sink: S,
        metrics: Arc<OperatorMetrics>,
        name: std::sync::Arc<str>,
        control: Arc<RunControl>,
        participant: Option<Participant>,
    ) -> Self {
        SinkStage {
            sink,
            metrics,
            name,
            control,
            failed: false,
            participant,
        }
    }

    #[inline]
    fn guard(&mut self, call: impl FnOnce(&mut S) -> Result<(), BoxError>) {
        if self.failed {
            return;
        }
        let sink = &mut self.sink;
        match catch_unwind(AssertUnwindSafe(|| call(sink))) {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                self.failed = true;
                self.control.fail(Error::Sink {
                    operator: self.name.to_string(),
                    source: std::sync::Arc::from(error),
                });
            }
            Err(payload) => {
                self.failed = true;
                self.control
                    .fail(Error::from_panic(&self.name, payload.as_ref()));
                resume_unwind(payload);
            }
        }
    }
}

impl<T, S: Sink<T>> Collector<T> for SinkStage<S> {
    #[inline]
    fn push(&mut self, record: T) {
        self.metrics.records_in.add(1);
        self.guard(|sink| sink.write(record));
    }

    fn signal(&mut self, signal: Signal) {
        match signal {
            Signal::Watermark(_) => {}
            Signal::Marker(epoch) => {
                // Acknowledge only once everything before the marker is flushed.
                self.guard(|sink| {
                    sink.flush()?;
                    sink.on_epoch(epoch)
                });
                if let (false, Some(participant)) = (self.failed, &self.participant) {
                    participant.ack(epoch.0, None, std::time::Duration::ZERO);
                }
            }
            Signal::End => {
                self.guard(Sink::close);
                if let (false, Some(participant)) = (self.failed, &self.participant) {
                    participant.finish(None);
                }
            }
        }
    }

    #[inline]
    fn flush(&mut self) {
        self.guard(Sink::flush);
    }
}

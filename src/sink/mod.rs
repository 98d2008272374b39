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
mod table;

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
use crate::trigger::{EmitMode, OutputMode};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

/// Publishes one epoch's staged output, once the epoch is complete (see
/// [`Sink::prepare_commit`]). It runs on the checkpoint coordinator's thread, never on an
/// operator thread, and at most once; an error fails the query, naming the sink.
pub type EpochCommit = Box<dyn FnOnce() -> Result<(), BoxError> + Send>;

/// What a sink instance learns before the query starts (see [`Sink::open`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SinkContext {
    /// The sink's name in the query (unique).
    pub name: String,
    /// This instance, `0..parallelism`.
    pub instance: usize,
    /// Number of instances of this sink.
    pub parallelism: usize,
    /// The query's output mode.
    pub output_mode: OutputMode,
    /// Whether the query has epochs at all (a trigger or checkpointing is configured).
    /// Without epochs, the whole run is one epoch and its commit runs at end-of-stream.
    pub epochs: bool,
    /// Whether the query checkpoints and restores. Only then do epoch numbers identify
    /// the same data across runs: after a restart, an epoch at or below the last
    /// committed one is a replay. Without checkpointing every run starts at epoch 1 anew.
    pub checkpointed: bool,
    /// The epoch the first records belong to (after a restore, the restored epoch + 1).
    pub first_epoch: Epoch,
}

impl SinkContext {
    /// The context of instance `instance` of `parallelism` of the sink `name`, in a query
    /// without epochs or checkpointing, in the default output mode
    /// ([`OutputMode::Update`]), whose first epoch is 1. The engine builds these; the
    /// constructor is for driving a sink directly (in tests, say).
    ///
    /// ```
    /// use rivulet::sink::SinkContext;
    /// use rivulet::OutputMode;
    ///
    /// let context = SinkContext::new("counts", 0, 2).output_mode(OutputMode::Complete);
    /// assert_eq!(context.output_mode, OutputMode::Complete);
    /// ```
    pub fn new(name: impl Into<String>, instance: usize, parallelism: usize) -> Self {
        SinkContext {
            name: name.into(),
            instance,
            parallelism,
            output_mode: OutputMode::default(),
            epochs: false,
            checkpointed: false,
            first_epoch: Epoch(1),
        }
    }

    /// Sets the query's output mode.
    pub fn output_mode(mut self, output_mode: OutputMode) -> Self {
        self.output_mode = output_mode;
        self
    }

    /// Sets whether the query has epochs.
    pub fn epochs(mut self, epochs: bool) -> Self {
        self.epochs = epochs;
        self
    }

    /// Sets whether the query checkpoints and restores.
    pub fn checkpointed(mut self, checkpointed: bool) -> Self {
        self.checkpointed = checkpointed;
        self
    }

    /// Sets the epoch the first records belong to.
    pub fn first_epoch(mut self, first_epoch: Epoch) -> Self {
        self.first_epoch = first_epoch;
        self
    }
}

/// A destination for records. Cloned once per parallel instance.
///
/// Call order on one instance: [`open`](Sink::open) (when the query starts, on the
/// thread calling `start()`), then on the sink's thread: [`begin_epoch`](Sink::begin_epoch)
/// for the first epoch, records ([`write`](Sink::write)) with [`flush`](Sink::flush)es,
/// and at each epoch marker [`prepare_commit`](Sink::prepare_commit) followed by
/// `begin_epoch` of the next epoch; at end-of-stream a last `prepare_commit` (for the
/// epoch in progress) and [`close`](Sink::close).
pub trait Sink<T>: Send + 'static {
    /// Prepares the instance before the query starts: check paths, read what an earlier
    /// run committed. An error makes `start()` fail.
    ///
    /// # Errors
    ///
    /// Anything that makes the sink unusable.
    fn open(&mut self, context: &SinkContext) -> Result<(), BoxError> {
        let _ = context;
        Ok(())
    }

    /// The records that follow belong to `epoch`, which runs in `mode`.
    ///
    /// # Errors
    ///
    /// As for [`write`](Sink::write).
    fn begin_epoch(&mut self, epoch: Epoch, mode: EmitMode) -> Result<(), BoxError> {
        let _ = (epoch, mode);
        Ok(())
    }

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

    /// Everything of `epoch` has been written (and flushed). The epoch is not complete
    /// yet: other operators may still be snapshotting it, and a crash now restores an
    /// earlier epoch and replays this one. So this is the first phase of a two-phase
    /// commit: stage the epoch's output durably (say, a temporary file) and return the
    /// second phase, which the engine runs once the epoch is complete (say, renaming the
    /// file into place and recording the epoch as committed). Return `None` when there
    /// is nothing to publish (the default).
    ///
    /// After a crash between the two phases the epoch is replayed with the same records
    /// in micro-batch mode (its offsets were logged before it ran), so a sink that skips
    /// epochs it already committed gives exactly-once output.
    ///
    /// # Errors
    ///
    /// As for [`write`](Sink::write).
    fn prepare_commit(&mut self, epoch: Epoch) -> Result<Option<EpochCommit>, BoxError> {
        let _ = epoch;
        Ok(None)
    }

    /// End of stream, after the last `prepare_commit`. The default flushes.
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
                    if let Some(commit) = sink.prepare_commit(epoch)? {
                        commit()?;
                    }
                    Ok(())
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

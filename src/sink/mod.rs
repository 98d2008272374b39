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
//! | [`FileSink`] | [`Sink`] methods (see [`mod@file`]) | `file` (CSV, JSON lines), exactly once |
//! | [`SocketSink`] | [`Stream::to_socket`](crate::Stream::to_socket) | — (text lines to TCP peers) |

pub mod console;
pub mod file;
pub mod foreach;
pub mod memory;
pub mod socket;

pub use console::ConsoleSink;
pub use file::{FileFormat, FileSink};
pub use foreach::ForEachSink;
pub use memory::{MemorySink, MemoryTable};
pub use socket::{SocketSink, SocketSinkConfig, SocketSinkStats};

pub use crate::checkpoint::commit::EpochCommit;

use crate::checkpoint::commit::PendingCommit;
use crate::checkpoint::coordinator::Participant;
use crate::error::{BoxError, Error};
use crate::event::{Epoch, Signal};
use crate::metrics::epoch::EpochMetrics;
use crate::metrics::latency::LatencyRecorder;
use crate::metrics::OperatorMetrics;
use crate::runtime::{Downstream, RunControl};
use crate::sync::Arc;
use crate::trigger::{EmitMode, OutputMode};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

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
    /// Whether the query checkpoints and restores. Only then do epochs continue across
    /// runs: after a restart, epochs up to the restored one are done, and the next ones
    /// run again (see [`replayed_epoch`](Self::replayed_epoch) for the one that holds
    /// the same records as before). Without checkpointing every run starts at epoch 1
    /// anew.
    pub checkpointed: bool,
    /// The epoch the first records belong to (after a restore, the restored epoch + 1).
    pub first_epoch: Epoch,
    /// The epoch this start *replays*: the one after the restored epoch, when the offset
    /// log recorded its records before an earlier run ran it (a micro-batch). Its sources
    /// emit exactly those records again under the same number, so a sink that already
    /// published this epoch may skip it. Every other epoch from
    /// [`first_epoch`](Self::first_epoch) on holds records planned afresh, even where an
    /// earlier run published output under the same number (say, a continuous epoch whose
    /// commit was never recorded, or a run on a checkpoint directory that was deleted):
    /// that output must be replaced, never taken for this epoch's. `None` when nothing
    /// is replayed, and always without checkpoints.
    pub replayed_epoch: Option<Epoch>,
    /// The identity of the checkpointed query: chosen when its checkpoint directory is
    /// first used, recorded in the checkpoint log, and the same on every restart from
    /// that directory. A sink that keeps its own commit records can stamp them with it,
    /// to tell its own output from another query's (a query whose checkpoint directory
    /// was deleted is another query). `None` without checkpoints.
    pub query_id: Option<String>,
    /// The instance's named counters in the query's progress (see
    /// [`counter`](Self::counter)); a context built by hand has counters of its own.
    pub(crate) counters: std::sync::Arc<crate::metrics::NamedCounters>,
}

impl SinkContext {
    /// The context of instance `instance` (of `parallelism`) of the sink `name`, in a
    /// query without epochs or checkpoints, in [`OutputMode::Update`], whose first epoch
    /// is 1, replaying nothing, without a query id. The setters below change the rest. The engine builds one per instance;
    /// tests and tools that drive a sink by hand build their own.
    ///
    /// ```
    /// use rivulet::sink::SinkContext;
    /// use rivulet::{Epoch, OutputMode};
    ///
    /// let context = SinkContext::new("out", 0, 2)
    ///     .output_mode(OutputMode::Complete)
    ///     .epochs(true)
    ///     .checkpointed(true)
    ///     .query_id("7f3a")
    ///     .first_epoch(Epoch(8))
    ///     .replayed_epoch(Epoch(8));
    /// assert_eq!(context.first_epoch, Epoch(8));
    /// assert_eq!(context.replayed_epoch, Some(Epoch(8)));
    /// ```
    ///
    /// # Panics
    ///
    /// If `instance` is not below `parallelism`.
    pub fn new(name: impl Into<String>, instance: usize, parallelism: usize) -> Self {
        assert!(
            instance < parallelism,
            "sink instance {instance} out of range for parallelism {parallelism}"
        );
        SinkContext {
            name: name.into(),
            instance,
            parallelism,
            output_mode: OutputMode::default(),
            epochs: false,
            checkpointed: false,
            first_epoch: Epoch(1),
            replayed_epoch: None,
            query_id: None,
            counters: std::sync::Arc::default(),
        }
    }

    /// Sets the query's output mode.
    pub fn output_mode(mut self, mode: OutputMode) -> Self {
        self.output_mode = mode;
        self
    }

    /// Sets whether the query has epochs (a trigger or checkpointing is configured).
    pub fn epochs(mut self, epochs: bool) -> Self {
        self.epochs = epochs;
        self
    }

    /// Sets whether the query checkpoints and restores (a checkpointed query has epochs
    /// too: set [`epochs`](Self::epochs) as well).
    pub fn checkpointed(mut self, checkpointed: bool) -> Self {
        self.checkpointed = checkpointed;
        self
    }

    /// Sets the epoch the first records belong to.
    pub fn first_epoch(mut self, epoch: Epoch) -> Self {
        self.first_epoch = epoch;
        self
    }

    /// Sets the epoch this start replays with exactly the records an earlier run had in
    /// it (see [`replayed_epoch`](Self::replayed_epoch)): the engine sets it to the first
    /// epoch when the offset log holds that epoch's records. Only this epoch may be
    /// skipped as already published.
    pub fn replayed_epoch(mut self, epoch: Epoch) -> Self {
        self.replayed_epoch = Some(epoch);
        self
    }

    /// Sets the checkpointed query's identity (see [`query_id`](Self::query_id)).
    pub fn query_id(mut self, id: impl Into<String>) -> Self {
        self.query_id = Some(id.into());
        self
    }

    /// The counter `name` of this sink instance, which the query's progress shows in
    /// the sink operator's [`counters`](crate::query::OperatorProgress::counters)
    /// (dropped or slow clients, lines written with nobody listening, …). Take it in
    /// [`Sink::open`] and add to it from the sink's thread only (the counter has one
    /// writer), as [`SourceContext::counter`](crate::source::SourceContext::counter) does
    /// for sources.
    pub fn counter(&self, name: &'static str) -> std::sync::Arc<crate::metrics::Counter> {
        self.counters.get_or_add(name)
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

    /// Every epoch up to `epoch` is complete and committed (the commits
    /// [`prepare_commit`](Sink::prepare_commit) returned have run). Called on the sink's
    /// own thread at its next step after the commit, so a transactional sink can finish
    /// its side (drop a staged transaction's handle, start the next one) without
    /// sharing state with the coordinator's thread. The default does nothing.
    ///
    /// # Errors
    ///
    /// As for [`write`](Sink::write).
    fn on_committed(&mut self, epoch: Epoch) -> Result<(), BoxError> {
        let _ = epoch;
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
    /// After a crash between the two phases the epoch runs again. A micro-batch runs
    /// again with the same records (its offsets were logged before it ran) and is named
    /// in [`SinkContext::replayed_epoch`]: a sink that skips that epoch if it already
    /// committed it, and replaces what it committed under any other epoch number from
    /// [`SinkContext::first_epoch`] on, gives exactly-once output. Skipping any other
    /// epoch would drop records: its number may name other records now.
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
    /// This instance's handle to the epoch coordinator, if the query has epochs.
    pub(crate) participant: Option<Participant>,
    /// The epoch records belong to now.
    epoch: u64,
    mode: EmitMode,
    /// Whether `begin_epoch` ran for `epoch`.
    begun: bool,
    /// What the sink is opened with at start; `None` once opened.
    context: Option<SinkContext>,
    /// The newest epoch the sink was told is committed.
    committed: u64,
    /// Latency markers' samples since the last epoch report.
    latency: LatencyRecorder,
}

impl<S> SinkStage<S> {
    /// A stage for `sink`, to be opened with `context` when the query starts.
    pub(crate) fn new(
        sink: S,
        context: SinkContext,
        metrics: Arc<OperatorMetrics>,
        control: Arc<RunControl>,
        participant: Option<Participant>,
        mode: EmitMode,
    ) -> Self {
        let first_epoch = context.first_epoch.0;
        let name = std::sync::Arc::from(context.name.as_str());
        SinkStage {
            context: Some(context),
            committed: first_epoch.saturating_sub(1),
            sink,
            metrics,
            name,
            control,
            failed: false,
            participant,
            epoch: first_epoch,
            mode,
            begun: false,
            latency: LatencyRecorder::default(),
        }
    }

    #[inline]
    fn guard<R>(&mut self, call: impl FnOnce(&mut S) -> Result<R, BoxError>) -> Option<R> {
        if self.failed {
            return None;
        }
        let sink = &mut self.sink;
        match catch_unwind(AssertUnwindSafe(|| call(sink))) {
            Ok(Ok(value)) => Some(value),
            Ok(Err(error)) => {
                self.failed = true;
                self.control.fail(Error::Sink {
                    operator: self.name.to_string(),
                    source: std::sync::Arc::from(error),
                });
                None
            }
            Err(payload) => {
                self.failed = true;
                self.control
                    .fail(Error::from_panic(&self.name, payload.as_ref()));
                resume_unwind(payload);
            }
        }
    }

    /// Tells the sink which epoch the next records belong to, once per epoch.
    #[inline]
    fn begin<T>(&mut self)
    where
        S: Sink<T>,
    {
        if !self.begun {
            self.begun = true;
            let (epoch, mode) = (Epoch(self.epoch), self.mode);
            self.guard(|sink| sink.begin_epoch(epoch, mode));
        }
    }

    /// Flushes and stages the current epoch; returns its commit, if any.
    fn prepare<T>(&mut self, epoch: Epoch) -> Option<PendingCommit>
    where
        S: Sink<T>,
    {
        self.begin();
        let commit = self.guard(|sink| {
            sink.flush()?;
            sink.prepare_commit(epoch)
        })??;
        Some(PendingCommit {
            sink: self.name.clone(),
            run: commit,
        })
    }
}

impl<T, S: Sink<T>> Downstream<T> for SinkStage<S> {
    #[inline]
    fn push(&mut self, record: T) {
        self.begin();
        self.metrics.records_in.add(1);
        self.guard(|sink| sink.write(record));
    }

    fn signal(&mut self, signal: Signal) {
        match signal {
            Signal::Watermark(_) | Signal::Status(_) => {}
            Signal::Latency(stamp) => self.latency.record(LatencyRecorder::arrived(stamp)),
            Signal::Marker(epoch) => {
                // Acknowledge only once everything before the marker is flushed (and
                // staged, for a sink with a commit).
                let commit = self.prepare(epoch);
                if let (false, Some(participant)) = (self.failed, &self.participant) {
                    participant.report(epoch.0, EpochMetrics::of(&self.metrics, &mut self.latency));
                    participant.ack_sink(epoch.0, commit);
                    self.epoch = epoch.0 + 1;
                    self.mode = participant.shared.emit_mode(self.epoch);
                    self.begun = false;
                    self.begin();
                }
            }
            Signal::End => {
                let commit = self.prepare(Epoch(self.epoch));
                self.guard(Sink::close);
                if self.failed {
                    return;
                }
                match &self.participant {
                    // Published with the next epoch that completes.
                    Some(participant) => {
                        participant.report(
                            self.epoch,
                            EpochMetrics::of(&self.metrics, &mut self.latency),
                        );
                        participant.finish(None, commit)
                    }
                    // No epochs: the whole run is one, complete now.
                    None => {
                        if let Some(commit) = commit {
                            let run = commit.run;
                            self.guard(|_| run());
                        }
                    }
                }
            }
        }
    }

    #[inline]
    fn flush(&mut self) {
        self.guard(Sink::flush);
    }

    fn committed(&mut self, epoch: Epoch) {
        if epoch.0 > self.committed {
            self.committed = epoch.0;
            self.guard(|sink| sink.on_committed(epoch));
        }
    }

    fn open(&mut self) -> Result<(), String> {
        let Some(context) = self.context.take() else {
            return Ok(());
        };
        let sink = &mut self.sink;
        crate::error::run_guarded(|| sink.open(&context))
            .map_err(|message| format!("sink `{}` cannot start: {message}", self.name))
    }
}

//! The checkpoint coordinator: it triggers epochs, collects acknowledgements and
//! snapshots, writes them to the log and declares epochs complete.
//!
//! The decision "epoch *e* is complete" is [`AckTracker`], a pure state machine; the
//! coordinator thread is a thin shell around it that does the I/O. Participants talk to
//! it through one channel, so acknowledgements from one participant arrive in the order
//! it sent them (and it sends them in epoch order, because markers travel in order).
//!
//! | module | job |
//! |---|---|
//! | this one | the coordinator thread: its loop, messages, starting epochs |
//! | `acks` | [`AckTracker`], [`AckOutcome`]: the completion rule, exhaustively tested |
//! | `participant` | what sources, stages and sinks hold: `Participant`, `CheckpointShared`, `Message` |
//! | `batches` | micro-batches: plans, the offset log, release, replay at start |
//! | `completion` | log entries, completing an epoch, running the sinks' commits |
//! | `retention` | which segments can go: pure decisions, tested on their own |
//! | `stats` | [`CheckpointStats`], [`EpochReport`] |

use super::commit::PendingCommit;
use super::entries::{MetaEntry, OffsetsEntry};
use super::error::CheckpointError;
use super::log::LogWriter;
use crate::error::Error;
use crate::sync::Arc;
use crate::trigger::{ExecutionMode, Trigger};
use crossbeam::channel::{Receiver, RecvTimeoutError};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

mod acks;
mod batches;
mod completion;
mod participant;
pub(crate) mod progress;
mod retention;
mod stats;

pub use super::clock::EpochClock;
pub use acks::{AckOutcome, AckTracker};
pub(crate) use participant::{CheckpointShared, Message, Participant};
pub use stats::{CheckpointStats, EpochReport};

/// What the coordinator may do to its query: read its stop and abort flags, stop it
/// (`Trigger::AvailableNow` once drained) and fail it (a log error, a failed commit).
pub(crate) trait QueryControl {
    /// Records `error` if it is the first, then aborts the query.
    fn fail(&self, error: Error);
    /// `true` once the query is aborting.
    fn is_aborted(&self) -> bool;
    /// `true` once a graceful stop was requested.
    fn is_stop_requested(&self) -> bool;
    /// Asks the sources to end their streams.
    fn request_stop(&self);
}

/// The coordinator thread's state.
pub(crate) struct Coordinator<C> {
    pub(crate) receiver: Receiver<Message>,
    pub(crate) shared: Arc<CheckpointShared>,
    /// The checkpoint log; `None` when the query has epochs (a trigger) but no
    /// checkpoint directory.
    pub(crate) log: Option<LogWriter>,
    pub(crate) tracker: AckTracker,
    /// Complete epochs to keep in the log.
    pub(crate) retain: usize,
    /// This start's attempt number.
    pub(crate) attempt: u64,
    /// The trigger in effect.
    pub(crate) trigger: Trigger,
    pub(crate) meta: MetaEntry,
    /// `(operator, instance)` of every participant, by index.
    pub(crate) participants: Vec<(String, u32)>,
    pub(crate) control: Arc<C>,
    pub(crate) stats: Arc<std::sync::Mutex<CheckpointStats>>,
    /// Newest epoch with an entry in each segment (0: only metadata).
    pub(crate) segment_epochs: BTreeMap<u64, u64>,
    pub(crate) open_epochs: BTreeMap<u64, OpenEpoch>,
    pub(crate) completed: VecDeque<u64>,
    pub(crate) last_segment: Option<u64>,
    /// Participant indices of the sources: no epoch starts once they all finished.
    pub(crate) sources: Vec<usize>,
    /// Final states of participants that finished.
    pub(crate) final_states: BTreeMap<usize, Vec<u8>>,
    /// Sinks' last commits, run with the next epoch that completes.
    pub(crate) final_commits: Vec<PendingCommit>,
    pub(crate) final_epoch_taken: bool,
    /// The epoch to replay at start with the records the offset log recorded.
    pub(crate) replay: Option<OffsetsEntry>,
    /// When the next epoch may start.
    pub(crate) next_trigger: Instant,
    /// Sources that found nothing more to give (for [`Trigger::AvailableNow`]).
    pub(crate) drained: BTreeSet<usize>,
    /// The current micro-batch, if its plans found no records: it is planned again at
    /// the next interval instead of run.
    pub(crate) idle_batch: Option<u64>,
    /// Where each completed epoch's progress goes.
    pub(crate) progress: Option<progress::ProgressOut>,
}

/// An epoch that was triggered (or first acknowledged) but is not complete yet.
#[derive(Debug, Default)]
pub(crate) struct OpenEpoch {
    triggered: Option<Instant>,
    mode: ExecutionMode,
    bytes: u64,
    states: Vec<(String, u32)>,
    snapshot_times: Vec<(String, u32, Duration)>,
    /// Sources' records and offsets (from their plans or acknowledgements).
    sources: BTreeMap<usize, (u64, Vec<u8>)>,
    /// Whether the offsets were logged before the epoch ran (a micro-batch).
    offsets_logged: bool,
    commits: Vec<PendingCommit>,
}

impl<C: QueryControl> Coordinator<C> {
    /// Runs until shut down; a log failure fails the query.
    pub(crate) fn run(mut self) {
        if let Err(error) = self.serve() {
            self.control
                .fail(Error::Checkpoint(std::sync::Arc::new(error)));
        }
        if let Some(progress) = &self.progress {
            progress.coordinator_done();
        }
    }

    fn serve(&mut self) -> Result<(), CheckpointError> {
        self.write_meta()?;
        self.stats.lock().unwrap().trigger = self.trigger.to_string();
        if let Some(replay) = self.replay.take() {
            self.start_replay(replay)?;
        }
        // As in Spark, the first micro-batch runs at once; the first continuous epoch
        // ends one interval after the start.
        self.next_trigger = match self.trigger.mode() {
            ExecutionMode::MicroBatch => Instant::now(),
            ExecutionMode::Continuous => Instant::now() + self.trigger.interval(),
        };
        loop {
            match self.receiver.recv_timeout(self.wait_time()) {
                Ok(Message::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                    // Threads have ended: take what they sent last.
                    while let Ok(message) = self.receiver.try_recv() {
                        self.handle(message)?;
                    }
                    return Ok(());
                }
                Ok(message) => self.handle(message)?,
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.maybe_trigger()?;
        }
    }

    fn handle(&mut self, message: Message) -> Result<(), CheckpointError> {
        if self.halted() {
            // Acknowledgements, plans and final states still queued (or sent by threads
            // that have not seen the abort yet) are dropped with their commits: no later
            // epoch may complete, commit or become the restore point.
            return Ok(());
        }
        match message {
            Message::Ack {
                epoch,
                participant,
                state,
                took,
                records,
                commit,
            } => self.on_ack(epoch, participant as usize, state, took, records, commit),
            Message::Planned {
                epoch,
                round,
                participant,
                records,
                offset,
                drained,
            } => {
                if round != self.shared.clock.round() {
                    // Planned in a round that has been replanned since: a new plan comes.
                    return Ok(());
                }
                self.on_planned(epoch, participant as usize, records, offset, drained)
            }
            Message::Finished {
                participant,
                state,
                commit,
                tail,
            } => self.on_finished(participant as usize, state, commit, tail),
            Message::Metrics {
                epoch,
                participant,
                metrics,
            } => {
                if let Some(progress) = &mut self.progress {
                    progress
                        .assembler
                        .receive(epoch, participant as usize, metrics);
                }
                Ok(())
            }
            Message::TriggerChanged => {
                // A shorter interval asked for applies to the wait already running.
                let requested = *self.shared.requested.lock().unwrap();
                self.next_trigger = self.next_trigger.min(Instant::now() + requested.interval());
                Ok(())
            }
            Message::Shutdown => Ok(()),
        }
    }

    /// Whether the query is aborting: asked to, or failing (a sink commit failed here,
    /// or an operator failed). From then on the coordinator starts, completes, commits
    /// and logs nothing more: an epoch completed after one whose commit failed would
    /// become the restore point and skip that epoch's output for good. The last epoch
    /// completed before stays the restore point, and a restart replays what follows it.
    fn halted(&self) -> bool {
        self.control.is_aborted()
    }

    /// How long to wait for a message before looking at the timer again: until the next
    /// trigger, or, while a micro-batch runs (its completion arrives as a message) or
    /// nothing can start, a while.
    fn wait_time(&self) -> Duration {
        const IDLE: Duration = Duration::from_millis(100);
        let current = self.shared.clock.current();
        let batch_running = self.idle_batch.is_none()
            && self.tracker.last_complete() < current
            && self.shared.clock.mode_of(current + 1) == ExecutionMode::MicroBatch;
        if batch_running || !self.sources_running() {
            return IDLE;
        }
        self.next_trigger
            .saturating_duration_since(Instant::now())
            .min(IDLE)
    }

    /// Whether a source has not finished yet.
    fn sources_running(&self) -> bool {
        self.sources
            .iter()
            .any(|participant| !self.tracker.is_finished(*participant))
    }

    /// Starts the next epoch if it is due: a continuous epoch on the timer; a
    /// micro-batch on the timer once the previous epoch is complete and committed.
    fn maybe_trigger(&mut self) -> Result<(), CheckpointError> {
        if self.halted() || self.control.is_stop_requested() || !self.sources_running() {
            return Ok(());
        }
        let current = self.shared.clock.current();
        let previous_done = self.tracker.last_complete() >= current;
        if self.trigger == Trigger::AvailableNow
            && (previous_done || self.idle_batch.is_some())
            && self
                .sources
                .iter()
                .all(|source| self.drained.contains(source) || self.tracker.is_finished(*source))
        {
            // Every source is drained and its last batch is committed.
            self.control.request_stop();
            return Ok(());
        }
        let now = Instant::now();
        if now < self.next_trigger {
            return Ok(());
        }
        if let Some(epoch) = self.idle_batch.take() {
            self.retry_idle_batch(epoch)?;
            self.next_trigger = now + self.trigger.interval();
            return Ok(());
        }
        if self.shared.clock.released() < current {
            // The current micro-batch still waits for its plans: starting the next epoch
            // would release it (releases are levels) before its offsets are logged.
            return Ok(());
        }
        let mode = self.shared.clock.mode_of(current + 1);
        if !previous_done
            && (mode == ExecutionMode::MicroBatch
                || self.shared.clock.mode_of(current) == ExecutionMode::MicroBatch)
        {
            // Batches run one after another; this one starts when the last is done. A
            // continuous epoch after a batch runs once the batch is complete (its sources
            // hold back until then), so there is nothing to end before.
            return Ok(());
        }
        self.trigger()?;
        let interval = self.trigger.interval();
        if mode == ExecutionMode::MicroBatch || interval.is_zero() {
            self.next_trigger = now + interval;
        } else {
            // Continuous epochs keep a fixed rate; missed ticks are skipped.
            while self.next_trigger <= now {
                self.next_trigger += interval;
            }
        }
        Ok(())
    }

    /// Takes the trigger last asked for with `Query::set_trigger` as the query's own and
    /// returns it.
    fn adopt_requested_trigger(&mut self) -> Trigger {
        let requested = *self.shared.requested.lock().unwrap();
        if requested != self.trigger {
            self.trigger = requested;
            self.drained.clear();
            self.stats.lock().unwrap().trigger = requested.to_string();
        }
        requested
    }

    /// Starts the next epoch, fixing the mode of the one after it from the trigger asked
    /// for.
    fn trigger(&mut self) -> Result<(), CheckpointError> {
        if self.halted() {
            // No epoch starts after a failure (see `halted`).
            return Ok(());
        }
        let requested = self.adopt_requested_trigger();
        let epoch = self.shared.clock.current() + 1;
        self.shared.clock.set_mode_from(epoch + 1, requested.mode());
        let mode = self.shared.clock.mode_of(epoch);
        let advanced = self.shared.clock.advance();
        debug_assert_eq!(advanced, epoch);
        let open = self.open_epochs.entry(epoch).or_default();
        open.triggered = Some(Instant::now());
        open.mode = mode;
        self.stats.lock().unwrap().epochs_triggered += 1;
        if mode == ExecutionMode::Continuous {
            // Only micro-batches wait for a release; keep it level for the others.
            self.shared.clock.release(epoch);
        } else {
            // Sources plan the batch; with no source left there is nothing to wait for.
            self.check_plans(epoch)?;
        }
        let outcome = self.tracker.open(epoch);
        self.on_outcome(outcome)
    }

    fn on_outcome(&mut self, outcome: AckOutcome) -> Result<(), CheckpointError> {
        if let AckOutcome::Completed(epochs) = outcome {
            for epoch in epochs {
                self.complete(epoch)?;
            }
        }
        Ok(())
    }

    /// A participant ended its stream. Once every participant has, one last epoch
    /// records the final state of the whole query, so a restart replays nothing.
    fn on_finished(
        &mut self,
        participant: usize,
        state: Option<Vec<u8>>,
        commit: Option<PendingCommit>,
        tail: Option<(u64, u64)>,
    ) -> Result<(), CheckpointError> {
        if participant >= self.participants.len() || self.tracker.is_finished(participant) {
            return Ok(());
        }
        if let Some((epoch, records)) = tail {
            // The source's last records belong to `epoch`: a replay of that epoch must
            // emit exactly them again (a stop drains a micro-batch source outside any
            // planned batch).
            let open = self.open_epochs.entry(epoch).or_default();
            if !open.offsets_logged && epoch > self.tracker.last_complete() {
                let offset = state.clone().unwrap_or_default();
                open.sources.insert(participant, (records, offset));
            }
        }
        if let Some(state) = state {
            self.final_states.insert(participant, state);
        }
        self.final_commits.extend(commit);
        let outcome = self.tracker.finish(participant);
        self.on_outcome(outcome)?;
        if self.halted() {
            // A commit run just now failed: no batch is released, no final epoch taken.
            return Ok(());
        }
        // A batch waiting for this source's plan need not wait any more.
        self.check_plans(self.shared.clock.current())?;
        if self.tracker.all_finished() && !self.final_epoch_taken {
            self.final_epoch_taken = true;
            self.idle_batch = None;
            self.trigger()?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn on_ack(
        &mut self,
        epoch: u64,
        participant: usize,
        state: Option<Vec<u8>>,
        took: Duration,
        records: u64,
        commit: Option<PendingCommit>,
    ) -> Result<(), CheckpointError> {
        if epoch <= self.tracker.last_complete() {
            return Ok(());
        }
        if self.sources.contains(&participant) {
            if let Some(offset) = &state {
                let open = self.open_epochs.entry(epoch).or_default();
                if !open.offsets_logged {
                    open.sources.insert(participant, (records, offset.clone()));
                }
            }
        }
        if let Some(state) = state {
            let bytes = if self.log.is_some() {
                self.write_state(epoch, participant, state)?
            } else {
                0
            };
            let (operator, instance) = self.participants[participant].clone();
            let open = self.open_epochs.entry(epoch).or_default();
            open.bytes += bytes;
            open.states.push((operator.clone(), instance));
            open.snapshot_times.push((operator, instance, took));
        }
        if let Some(commit) = commit {
            self.open_epochs
                .entry(epoch)
                .or_default()
                .commits
                .push(commit);
        }
        let outcome = self.tracker.ack(epoch, participant);
        self.on_outcome(outcome)
    }
}

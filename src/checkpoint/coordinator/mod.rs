//! The checkpoint coordinator: it triggers epochs, collects acknowledgements and
//! snapshots, writes them to the log and declares epochs complete.
//!
//! The decision "epoch *e* is complete" is [`AckTracker`], a pure state machine; the
//! coordinator thread is a thin shell around it that does the I/O. Participants talk to
//! it through one channel, so acknowledgements from one participant arrive in the order
//! it sent them (and it sends them in epoch order, because markers travel in order).

use super::codec;
use super::commit::PendingCommit;
use super::entries::{
    self, CommitEntry, CompleteEntry, MetaEntry, OffsetsEntry, SourceOffsets, StateEntry,
};
use super::error::CheckpointError;
use super::log::{Location, LogWriter};
use crate::error::Error;
use crate::runtime::RunControl;
use crate::sync::{Arc, Mutex};
use crate::trigger::{EmitMode, ExecutionMode, OutputMode, Trigger};
use crossbeam::channel::{Receiver, RecvTimeoutError, Sender};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

/// Decides when epochs are complete: exactly once, only after every participant
/// acknowledged (or had already finished: a participant that reached end-of-stream
/// counts as having acknowledged every epoch it never saw), in epoch order.
#[derive(Debug, Clone)]
pub struct AckTracker {
    participants: usize,
    last_complete: u64,
    pending: BTreeMap<u64, Vec<bool>>,
    finished: Vec<bool>,
}

/// What an acknowledgement did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckOutcome {
    /// Recorded; the epoch still waits for others.
    Pending,
    /// This acknowledgement completed these epochs (oldest first; normally just one).
    Completed(Vec<u64>),
    /// Ignored: the epoch is already complete, or this participant already acknowledged
    /// it, or the participant is unknown or finished.
    Ignored,
}

impl AckTracker {
    /// A tracker for `participants` participants whose last complete epoch is
    /// `last_complete` (0 if none).
    pub fn new(participants: usize, last_complete: u64) -> Self {
        AckTracker {
            participants,
            last_complete,
            pending: BTreeMap::new(),
            finished: vec![false; participants],
        }
    }

    /// The newest complete epoch (0 if none).
    pub fn last_complete(&self) -> u64 {
        self.last_complete
    }

    /// `true` once every participant finished.
    pub fn all_finished(&self) -> bool {
        self.finished.iter().all(|finished| *finished)
    }

    /// `true` if `participant` finished.
    pub fn is_finished(&self, participant: usize) -> bool {
        self.finished.get(participant).copied().unwrap_or(false)
    }

    /// Registers a started epoch, so it can complete even if no participant is left to
    /// acknowledge it (all finished).
    pub fn open(&mut self, epoch: u64) -> AckOutcome {
        if epoch <= self.last_complete {
            return AckOutcome::Ignored;
        }
        let participants = self.participants;
        self.pending
            .entry(epoch)
            .or_insert_with(|| vec![false; participants]);
        self.complete_ready()
    }

    /// Records that `participant` acknowledged `epoch`.
    pub fn ack(&mut self, epoch: u64, participant: usize) -> AckOutcome {
        if epoch <= self.last_complete
            || participant >= self.participants
            || self.finished[participant]
        {
            return AckOutcome::Ignored;
        }
        let participants = self.participants;
        let acked = self
            .pending
            .entry(epoch)
            .or_insert_with(|| vec![false; participants]);
        if acked[participant] {
            return AckOutcome::Ignored;
        }
        acked[participant] = true;
        self.complete_ready()
    }

    /// Records that `participant` reached end-of-stream after its last acknowledgement:
    /// it acknowledges nothing more, and no epoch waits for it.
    pub fn finish(&mut self, participant: usize) -> AckOutcome {
        if participant >= self.participants || self.finished[participant] {
            return AckOutcome::Ignored;
        }
        self.finished[participant] = true;
        self.complete_ready()
    }

    /// Completes, in order, every oldest epoch that every participant acknowledged or
    /// finished before.
    fn complete_ready(&mut self) -> AckOutcome {
        let mut completed = Vec::new();
        while let Some(entry) = self.pending.first_entry() {
            let done = entry
                .get()
                .iter()
                .zip(&self.finished)
                .all(|(acked, finished)| *acked || *finished);
            if !done {
                break;
            }
            let epoch = *entry.key();
            entry.remove();
            self.last_complete = epoch;
            completed.push(epoch);
        }
        if completed.is_empty() {
            AckOutcome::Pending
        } else {
            AckOutcome::Completed(completed)
        }
    }
}

pub use super::clock::EpochClock;

/// Messages from participants (and the query handle) to the coordinator.
#[derive(Debug)]
pub(crate) enum Message {
    /// A participant passed the marker of `epoch`.
    Ack {
        epoch: u64,
        participant: u32,
        state: Option<Vec<u8>>,
        took: Duration,
        /// For a source: records it emitted in the epoch.
        records: u64,
        /// For a sink: the epoch's staged output to publish once the epoch is complete.
        commit: Option<PendingCommit>,
    },
    /// A source planned micro-batch `epoch`: it holds `records` records and its offset
    /// after them is `offset`. `drained`: it had nothing more to give.
    Planned {
        epoch: u64,
        /// The planning round the plan was made in (see [`EpochClock::replan`]).
        round: u64,
        participant: u32,
        records: u64,
        offset: Vec<u8>,
        drained: bool,
    },
    /// A participant reached end-of-stream; `state` is its final state (a source's final
    /// offset, an operator's state after its last record). Every epoch it never
    /// acknowledged will restore it from this state. A sink's last output is committed
    /// with the next epoch that completes. A source also says how many records it
    /// emitted after its last marker, in `tail.1`, which is epoch `tail.0`.
    Finished {
        participant: u32,
        state: Option<Vec<u8>>,
        commit: Option<PendingCommit>,
        tail: Option<(u64, u64)>,
    },
    /// `Query::set_trigger` asked for another trigger.
    TriggerChanged,
    /// Every operator thread has ended: write what is left and end.
    Shutdown,
}

/// What the query's threads share about epochs.
#[derive(Debug)]
pub(crate) struct CheckpointShared {
    pub(crate) sender: Sender<Message>,
    pub(crate) clock: EpochClock,
    /// Whether epochs are written to a checkpoint log (operators snapshot state only
    /// then).
    pub(crate) persistent: bool,
    /// The trigger asked for; the coordinator applies it at the next epoch boundary.
    pub(crate) requested: Mutex<Trigger>,
    /// The query's output mode.
    pub(crate) output_mode: OutputMode,
}

impl CheckpointShared {
    /// What operators and sinks emit in `epoch`.
    pub(crate) fn emit_mode(&self, epoch: u64) -> EmitMode {
        EmitMode {
            execution: self.clock.mode_of(epoch),
            output: self.output_mode,
        }
    }
}

/// One participant's handle: sources, operator stages and sinks hold one each.
#[derive(Debug, Clone)]
pub(crate) struct Participant {
    pub(crate) shared: Arc<CheckpointShared>,
    pub(crate) index: u32,
}

impl Participant {
    /// Reports end-of-stream, with the participant's final state, after its last `ack`.
    pub(crate) fn finish(&self, state: Option<Vec<u8>>, commit: Option<PendingCommit>) {
        let _ = self.shared.sender.send(Message::Finished {
            participant: self.index,
            state,
            commit,
            tail: None,
        });
    }

    /// A source reports end-of-stream: its final offset, and the `records` it emitted
    /// in `epoch` (the one after its last marker) before ending.
    pub(crate) fn finish_source(&self, offset: Option<Vec<u8>>, epoch: u64, records: u64) {
        let _ = self.shared.sender.send(Message::Finished {
            participant: self.index,
            state: offset,
            commit: None,
            tail: Some((epoch, records)),
        });
    }

    /// Acknowledges `epoch` with this participant's snapshot (if it has state).
    pub(crate) fn ack(&self, epoch: u64, state: Option<Vec<u8>>, took: Duration) {
        self.send_ack(epoch, state, took, 0, None);
    }

    /// A source acknowledges `epoch` with its offset and the records it emitted in it.
    pub(crate) fn ack_source(&self, epoch: u64, offset: Vec<u8>, took: Duration, records: u64) {
        self.send_ack(epoch, Some(offset), took, records, None);
    }

    /// A sink acknowledges `epoch`, handing over the commit of its staged output.
    pub(crate) fn ack_sink(&self, epoch: u64, commit: Option<PendingCommit>) {
        self.send_ack(epoch, None, Duration::ZERO, 0, commit);
    }

    /// A source reports what micro-batch `epoch` holds.
    pub(crate) fn plan(&self, epoch: u64, round: u64, plan: (u64, Vec<u8>), drained: bool) {
        let (records, offset) = plan;
        let _ = self.shared.sender.send(Message::Planned {
            epoch,
            round,
            participant: self.index,
            records,
            offset,
            drained,
        });
    }

    fn send_ack(
        &self,
        epoch: u64,
        state: Option<Vec<u8>>,
        took: Duration,
        records: u64,
        commit: Option<PendingCommit>,
    ) {
        // The coordinator outlives every participant (it ends after all operator threads
        // joined), so the send only fails while the query is being torn down.
        let _ = self.shared.sender.send(Message::Ack {
            epoch,
            participant: self.index,
            state,
            took,
            records,
            commit,
        });
    }
}

/// One completed epoch, as progress reports show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpochReport {
    /// The epoch (in micro-batch mode: the batch id).
    pub epoch: u64,
    /// How the epoch ran.
    pub mode: ExecutionMode,
    /// From the trigger to the completion (and commit) of the epoch, including the msync,
    /// if any.
    pub duration: Duration,
    /// Records the sources emitted in the epoch, where known (micro-batches, and
    /// continuous epochs that every source acknowledged).
    pub input_rows: Option<u64>,
    /// Bytes of log entries written for this epoch (offsets, snapshots and completion).
    pub bytes_written: u64,
    /// How long each participant with state took to snapshot: `(operator, instance, time)`.
    pub snapshot_times: Vec<(String, u32, Duration)>,
    /// Sink commits run for the epoch.
    pub commits: usize,
}

/// Epoch and checkpoint progress of a query.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CheckpointStats {
    /// The trigger in effect (as text, e.g. `micro-batch every 100ms`).
    pub trigger: String,
    /// Whether epochs are written to a checkpoint directory.
    pub persistent: bool,
    /// The epoch restored at start, if any.
    pub recovered_epoch: Option<u64>,
    /// The epoch replayed with the records the offset log recorded, if any.
    pub replayed_epoch: Option<u64>,
    /// The newest complete epoch.
    pub last_complete_epoch: Option<u64>,
    /// Epochs triggered so far (including incomplete ones).
    pub epochs_triggered: u64,
    /// Bytes written to the log since start.
    pub bytes_written: u64,
    /// The most recent completed epochs (up to 16), oldest first.
    pub recent: Vec<EpochReport>,
}

/// The coordinator thread's state.
pub(crate) struct Coordinator {
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
    pub(crate) control: Arc<RunControl>,
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
}

/// The least time between two plans of a micro-batch that found no records (Spark's
/// `spark.streaming.pollingDelay`).
const IDLE_POLLING_DELAY: Duration = Duration::from_millis(10);

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

impl Coordinator {
    /// Runs until shut down; a log failure fails the query.
    pub(crate) fn run(mut self) {
        if let Err(error) = self.serve() {
            self.control
                .fail(Error::Checkpoint(std::sync::Arc::new(error)));
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

    /// The interval after a micro-batch that found no records: plan it again, or, if a
    /// continuous trigger is now asked for, run it empty so the switch takes effect.
    fn retry_idle_batch(&mut self, epoch: u64) -> Result<(), CheckpointError> {
        let requested = self.adopt_requested_trigger();
        // Nobody has passed marker `epoch` yet, so the mode after it is still open.
        self.shared.clock.set_mode_from(epoch + 1, requested.mode());
        if requested.mode() == ExecutionMode::Continuous {
            return self.release_batch(epoch);
        }
        let sources = &self.sources;
        let tracker = &self.tracker;
        if let Some(open) = self.open_epochs.get_mut(&epoch) {
            // Keep what finished sources reported; running ones plan again.
            open.sources.retain(|participant, _| {
                !sources.contains(participant) || tracker.is_finished(*participant)
            });
        }
        self.shared.clock.replan();
        Ok(())
    }

    /// Starts the epoch after the restored one with the records the offset log holds for
    /// it: the sources replay exactly those (they learned so when they were built), and
    /// the batch is released at once.
    fn start_replay(&mut self, replay: OffsetsEntry) -> Result<(), CheckpointError> {
        let epoch = replay.epoch;
        self.stats.lock().unwrap().replayed_epoch = Some(epoch);
        let payload = codec::encode(&OffsetsEntry {
            attempt: self.attempt,
            ..replay.clone()
        })?;
        self.append(entries::OFFSETS, &payload, epoch)?;
        // The modes of this epoch and the next were fixed when the clock was built.
        debug_assert_eq!(self.shared.clock.mode_of(epoch), replay.mode);
        self.shared.clock.advance();
        self.shared.clock.release(epoch);
        let sources: Vec<(usize, (u64, Vec<u8>))> = replay
            .sources
            .iter()
            .filter_map(|source| {
                let participant = self.participant_index(&source.operator, source.instance)?;
                Some((participant, (source.records, source.end_offset.clone())))
            })
            .collect();
        let open = self.open_epochs.entry(epoch).or_default();
        open.triggered = Some(Instant::now());
        open.mode = replay.mode;
        open.offsets_logged = true;
        open.bytes += payload.len() as u64;
        open.sources.extend(sources);
        self.stats.lock().unwrap().epochs_triggered += 1;
        let outcome = self.tracker.open(epoch);
        self.on_outcome(outcome)
    }

    fn participant_index(&self, operator: &str, instance: u32) -> Option<usize> {
        self.participants
            .iter()
            .position(|(name, i)| name == operator && *i == instance)
    }

    fn on_planned(
        &mut self,
        epoch: u64,
        participant: usize,
        records: u64,
        offset: Vec<u8>,
        drained: bool,
    ) -> Result<(), CheckpointError> {
        if epoch <= self.shared.clock.released() || participant >= self.participants.len() {
            // A batch released already (a replayed one): nothing to plan.
            return Ok(());
        }
        if drained {
            self.drained.insert(participant);
        } else {
            self.drained.remove(&participant);
        }
        self.open_epochs
            .entry(epoch)
            .or_default()
            .sources
            .insert(participant, (records, offset));
        self.check_plans(epoch)
    }

    /// Once every running source planned micro-batch `epoch`, logs its offsets and
    /// releases it.
    fn check_plans(&mut self, epoch: u64) -> Result<(), CheckpointError> {
        if epoch <= self.shared.clock.released() || epoch > self.shared.clock.current() {
            return Ok(());
        }
        let open = self.open_epochs.entry(epoch).or_default();
        let planned = self
            .sources
            .iter()
            .all(|source| open.sources.contains_key(source) || self.tracker.is_finished(*source));
        if !planned {
            return Ok(());
        }
        let records: u64 = open.sources.values().map(|(records, _)| records).sum();
        if records == 0 && !self.final_epoch_taken && !self.control.is_stop_requested() {
            // No source had anything: like Spark, run no batch; plan it again at the
            // next interval, and never sooner than the polling delay (an interval of
            // zero would otherwise re-plan, and sync the sources' logs, in a loop).
            self.idle_batch = Some(epoch);
            self.next_trigger = self.next_trigger.max(Instant::now() + IDLE_POLLING_DELAY);
            return Ok(());
        }
        self.release_batch(epoch)
    }

    /// Logs micro-batch `epoch`'s offsets and lets the sources emit it.
    fn release_batch(&mut self, epoch: u64) -> Result<(), CheckpointError> {
        let entry = OffsetsEntry {
            epoch,
            attempt: self.attempt,
            mode: ExecutionMode::MicroBatch,
            sources: self.source_offsets(epoch),
        };
        let payload = codec::encode(&entry)?;
        // Logged before the batch runs (Spark's offset log). Not synced on its own: a
        // batch lost with an unsynced offset entry was never committed either, and is
        // planned afresh.
        self.append(entries::OFFSETS, &payload, epoch)?;
        let open = self.open_epochs.entry(epoch).or_default();
        open.offsets_logged = true;
        open.bytes += payload.len() as u64;
        // No source has sent this batch's marker yet, so the epoch after it can still
        // take a trigger asked for while the batch was planned.
        let requested = self.adopt_requested_trigger();
        self.shared.clock.set_mode_from(epoch + 1, requested.mode());
        self.shared.clock.release(epoch);
        Ok(())
    }

    /// The offset-log rows of `epoch`, from what its sources reported.
    fn source_offsets(&self, epoch: u64) -> Vec<SourceOffsets> {
        let Some(open) = self.open_epochs.get(&epoch) else {
            return Vec::new();
        };
        open.sources
            .iter()
            .map(|(participant, (records, offset))| {
                let (operator, instance) = self.participants[*participant].clone();
                SourceOffsets {
                    operator,
                    instance,
                    records: *records,
                    end_offset: offset.clone(),
                }
            })
            .collect()
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

    /// Appends an entry (nothing without a log).
    fn append(
        &mut self,
        kind: super::log::EntryKind,
        payload: &[u8],
        epoch: u64,
    ) -> Result<Option<Location>, CheckpointError> {
        let Some(log) = self.log.as_mut() else {
            return Ok(None);
        };
        let location = log.append(kind, payload)?;
        let newest = self.segment_epochs.entry(location.segment).or_insert(0);
        *newest = (*newest).max(epoch);
        self.stats.lock().unwrap().bytes_written += payload.len() as u64;
        if self.last_segment != Some(location.segment) {
            // A new segment: start it with the query's identity, so a directory whose
            // older segments were removed still says which query wrote it.
            self.last_segment = Some(location.segment);
            if kind != entries::META {
                self.write_meta()?;
            }
        }
        Ok(Some(location))
    }

    fn write_meta(&mut self) -> Result<(), CheckpointError> {
        if self.log.is_none() {
            return Ok(());
        }
        let payload = codec::encode(&self.meta)?;
        self.append(entries::META, &payload, 0)?;
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

    /// Appends `participant`'s snapshot for `epoch`; returns the bytes written.
    fn write_state(
        &mut self,
        epoch: u64,
        participant: usize,
        state: Vec<u8>,
    ) -> Result<u64, CheckpointError> {
        let (operator, instance) = self.participants[participant].clone();
        let entry = StateEntry {
            epoch,
            attempt: self.attempt,
            operator,
            instance,
            state,
        };
        let payload = codec::encode(&entry)?;
        self.append(entries::STATE, &payload, epoch)?;
        Ok(payload.len() as u64)
    }

    fn complete(&mut self, epoch: u64) -> Result<(), CheckpointError> {
        if self.halted() {
            // An older epoch completed by the same acknowledgement failed its commit (or
            // the query failed meanwhile): this one must not leapfrog it.
            return Ok(());
        }
        let mut open = self.open_epochs.remove(&epoch).unwrap_or_default();
        let mut commits = std::mem::take(&mut open.commits);
        commits.append(&mut self.final_commits);
        if self.log.is_some() {
            // Participants that finished before this epoch's marker reached them restore
            // from their final state (their upstreams finished too, so nothing of theirs
            // replays).
            let carried: Vec<(usize, Vec<u8>)> = self
                .final_states
                .iter()
                .filter(|(participant, _)| {
                    let (operator, instance) = &self.participants[**participant];
                    !open
                        .states
                        .iter()
                        .any(|(name, i)| name == operator && i == instance)
                })
                .map(|(participant, state)| (*participant, state.clone()))
                .collect();
            for (participant, state) in carried {
                open.bytes += self.write_state(epoch, participant, state)?;
                open.states.push(self.participants[participant].clone());
            }
        }
        // Older open epochs can no longer complete on their own; this one supersedes them.
        self.open_epochs.retain(|older, _| *older > epoch);
        let entry = CompleteEntry {
            epoch,
            attempt: self.attempt,
            mode: open.mode,
            needs_commit: !commits.is_empty(),
            fingerprint: self.meta.fingerprint,
            states: open.states.clone(),
            duration_us: open
                .triggered
                .map(|at| at.elapsed())
                .unwrap_or_default()
                .as_micros() as u64,
        };
        let payload = codec::encode(&entry)?;
        self.append(entries::COMPLETE, &payload, epoch)?;
        if let Some(log) = self.log.as_mut() {
            log.sync()?;
        }
        let commit_count = commits.len();
        if !commits.is_empty() {
            if !self.run_commits(commits) {
                // The query is failing (`halted` from now on): this epoch stays
                // unpublished, no later one completes, and a restart replays it.
                return Ok(());
            }
            // Not synced on its own: if it is lost, the epoch is replayed and the sinks,
            // which recorded their commits themselves, skip it.
            let payload = codec::encode(&CommitEntry {
                epoch,
                attempt: self.attempt,
            })?;
            self.append(entries::COMMIT, &payload, epoch)?;
        }
        let duration = open.triggered.map(|at| at.elapsed()).unwrap_or_default();
        {
            let mut stats = self.stats.lock().unwrap();
            stats.last_complete_epoch = Some(epoch);
            stats.recent.push(EpochReport {
                epoch,
                mode: open.mode,
                duration,
                input_rows: (!open.sources.is_empty())
                    .then(|| open.sources.values().map(|(records, _)| records).sum()),
                bytes_written: open.bytes + payload.len() as u64,
                snapshot_times: open.snapshot_times,
                commits: commit_count,
            });
            if stats.recent.len() > 16 {
                stats.recent.remove(0);
            }
        }
        self.completed.push_back(epoch);
        self.shared.clock.set_last_complete(epoch);
        self.remove_old_segments(commit_count > 0)
    }

    /// Runs sink commits; a failing (or panicking) one fails the query, naming the sink.
    /// Returns whether all succeeded.
    fn run_commits(&mut self, commits: Vec<PendingCommit>) -> bool {
        for commit in commits {
            if let Err(error) = commit.publish() {
                self.control.fail(error);
                return false;
            }
        }
        true
    }

    /// Removes segments holding nothing newer than the oldest complete epoch we keep.
    fn remove_old_segments(&mut self, newest_needed_commit: bool) -> Result<(), CheckpointError> {
        // The newest epoch's COMMIT entry is not synced on its own (the next epoch's sync
        // covers it). If a power loss takes it, recovery falls back to the complete epoch
        // before the newest and replays the newest, so that one is kept too.
        let retain = self.retain.max(1) + usize::from(newest_needed_commit);
        while self.completed.len() > retain {
            self.completed.pop_front();
        }
        let Some(&oldest_kept) = self.completed.front() else {
            return Ok(());
        };
        let Some(log) = self.log.as_mut() else {
            return Ok(());
        };
        let current = log.current_segment();
        let removable: Vec<u64> = self
            .segment_epochs
            .iter()
            .filter(|(segment, newest)| **segment != current && **newest < oldest_kept)
            .map(|(segment, _)| *segment)
            .collect();
        for segment in removable {
            log.remove_segment(segment)?;
            self.segment_epochs.remove(&segment);
        }
        Ok(())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn completes_once_after_every_participant() {
        let mut tracker = AckTracker::new(3, 0);
        assert_eq!(tracker.ack(1, 0), AckOutcome::Pending);
        assert_eq!(tracker.ack(1, 0), AckOutcome::Ignored, "duplicate");
        assert_eq!(tracker.ack(1, 2), AckOutcome::Pending);
        assert_eq!(tracker.ack(1, 1), AckOutcome::Completed(vec![1]));
        assert_eq!(tracker.ack(1, 1), AckOutcome::Ignored, "already complete");
        assert_eq!(tracker.last_complete(), 1);
    }

    #[test]
    fn a_newer_epoch_waits_for_the_older_one() {
        let mut tracker = AckTracker::new(2, 0);
        assert_eq!(tracker.ack(1, 0), AckOutcome::Pending);
        assert_eq!(tracker.ack(2, 0), AckOutcome::Pending);
        assert_eq!(tracker.ack(2, 1), AckOutcome::Pending, "epoch 1 still open");
        assert_eq!(tracker.ack(1, 1), AckOutcome::Completed(vec![1, 2]));
    }

    #[test]
    fn unknown_participants_and_old_epochs_are_ignored() {
        let mut tracker = AckTracker::new(1, 5);
        assert_eq!(tracker.ack(5, 0), AckOutcome::Ignored);
        assert_eq!(tracker.ack(6, 1), AckOutcome::Ignored);
        assert_eq!(tracker.ack(6, 0), AckOutcome::Completed(vec![6]));
    }

    #[test]
    fn every_order_of_acks_completes_each_epoch_exactly_once() {
        // All interleavings of 3 participants × 2 epochs where each participant acks
        // its epochs in order (as markers guarantee).
        fn orders(
            remaining: &mut [u64; 3],
            prefix: &mut Vec<(u64, usize)>,
            out: &mut Vec<Vec<(u64, usize)>>,
        ) {
            if remaining.iter().all(|next| *next > 2) {
                out.push(prefix.clone());
                return;
            }
            for participant in 0..3 {
                if remaining[participant] <= 2 {
                    let epoch = remaining[participant];
                    remaining[participant] += 1;
                    prefix.push((epoch, participant));
                    orders(remaining, prefix, out);
                    prefix.pop();
                    remaining[participant] -= 1;
                }
            }
        }
        let mut all = Vec::new();
        orders(&mut [1, 1, 1], &mut Vec::new(), &mut all);
        assert_eq!(all.len(), 90);
        for order in all {
            let mut tracker = AckTracker::new(3, 0);
            let mut completed = Vec::new();
            for (i, (epoch, participant)) in order.iter().enumerate() {
                if let AckOutcome::Completed(epochs) = tracker.ack(*epoch, *participant) {
                    for epoch in epochs {
                        // Complete only after all three acknowledged it.
                        let acks = order[..=i].iter().filter(|(e, _)| *e == epoch).count();
                        assert_eq!(acks, 3, "{order:?}");
                        completed.push(epoch);
                    }
                }
            }
            assert_eq!(completed, vec![1, 2], "{order:?}");
        }
    }
}

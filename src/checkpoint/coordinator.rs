//! The checkpoint coordinator: it triggers epochs, collects acknowledgements and
//! snapshots, writes them to the log and declares epochs complete.
//!
//! The decision "epoch *e* is complete" is [`AckTracker`], a pure state machine; the
//! coordinator thread is a thin shell around it that does the I/O. Participants talk to
//! it through one channel, so acknowledgements from one participant arrive in the order
//! it sent them (and it sends them in epoch order, because markers travel in order).

use super::entries::{self, CompleteEntry, MetaEntry, StateEntry};
use super::error::CheckpointError;
use super::log::{Location, LogWriter};
use super::{codec, CheckpointConfig};
use crate::edge::WakeSignal;
use crate::error::Error;
use crate::runtime::RunControl;
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::{Arc, Mutex};
use crossbeam::channel::{Receiver, RecvTimeoutError, Sender};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
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

/// The epoch sources should have reached; bumped by the coordinator.
///
/// The coordinator calls [`advance`](EpochClock::advance), which publishes the new epoch and then wakes every
/// registered source thread through the [`WakeSignal`] protocol; a source re-checks
/// [`current`](EpochClock::current) before it parks, so a trigger is never missed.
#[derive(Debug)]
pub struct EpochClock {
    current: AtomicU64,
    /// The newest complete epoch, published by the coordinator (sources with an ingest
    /// log truncate it behind complete epochs).
    last_complete: AtomicU64,
    sources: Mutex<Vec<Arc<WakeSignal>>>,
}

impl EpochClock {
    /// A clock at epoch `start` (0, or the newest epoch found in the log).
    pub fn new(start: u64) -> Self {
        EpochClock {
            current: AtomicU64::new(start),
            last_complete: AtomicU64::new(0),
            sources: Mutex::new(Vec::new()),
        }
    }

    /// The newest complete epoch this run (0 before the first).
    pub fn last_complete(&self) -> u64 {
        self.last_complete.load(Ordering::Acquire)
    }

    /// Registers a source thread to wake when an epoch starts.
    pub fn add_source(&self, signal: Arc<WakeSignal>) {
        self.sources.lock().unwrap().push(signal);
    }

    /// The epoch sources must have injected a marker for.
    #[inline]
    pub fn current(&self) -> u64 {
        self.current.load(Ordering::Acquire)
    }

    /// Starts the next epoch and wakes every source (the wake-up protocol of
    /// [`WakeSignal`]: publish, then notify).
    pub fn advance(&self) -> u64 {
        let epoch = self.current.fetch_add(1, Ordering::AcqRel) + 1;
        for signal in self.sources.lock().unwrap().iter() {
            signal.notify();
        }
        epoch
    }

    /// Records that `epoch` is complete (the coordinator, after writing its completion).
    pub fn set_last_complete(&self, epoch: u64) {
        self.last_complete.store(epoch, Ordering::Release);
    }
}

/// Messages from participants (and the query handle) to the coordinator.
#[derive(Debug)]
pub(crate) enum Message {
    /// A participant passed the marker of `epoch`.
    Ack {
        epoch: u64,
        participant: u32,
        state: Option<Vec<u8>>,
        took: Duration,
    },
    /// A participant reached end-of-stream; `state` is its final state (a source's final
    /// offset, an operator's state after its last record). Every epoch it never
    /// acknowledged will restore it from this state.
    Finished {
        participant: u32,
        state: Option<Vec<u8>>,
    },
    /// Every operator thread has ended: write what is left and end.
    Shutdown,
}

/// What the query's threads share about checkpointing.
#[derive(Debug)]
pub(crate) struct CheckpointShared {
    pub(crate) sender: Sender<Message>,
    pub(crate) clock: EpochClock,
}

/// One participant's handle: sources, operator stages and sinks hold one each.
#[derive(Debug, Clone)]
pub(crate) struct Participant {
    pub(crate) shared: Arc<CheckpointShared>,
    pub(crate) index: u32,
}

impl Participant {
    /// Reports end-of-stream, with the participant's final state, after its last `ack`.
    pub(crate) fn finish(&self, state: Option<Vec<u8>>) {
        let _ = self.shared.sender.send(Message::Finished {
            participant: self.index,
            state,
        });
    }

    /// Acknowledges `epoch` with this participant's snapshot (if it has state).
    pub(crate) fn ack(&self, epoch: u64, state: Option<Vec<u8>>, took: Duration) {
        // The coordinator outlives every participant (it ends after all operator threads
        // joined), so the send only fails while the query is being torn down.
        let _ = self.shared.sender.send(Message::Ack {
            epoch,
            participant: self.index,
            state,
            took,
        });
    }
}

/// One completed epoch, as progress reports show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpochReport {
    /// The epoch.
    pub epoch: u64,
    /// From the trigger to the completion entry (including the msync, if any).
    pub duration: Duration,
    /// Bytes of log entries written for this epoch (snapshots and completion).
    pub bytes_written: u64,
    /// How long each participant with state took to snapshot: `(operator, instance, time)`.
    pub snapshot_times: Vec<(String, u32, Duration)>,
}

/// Checkpoint progress of a query.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CheckpointStats {
    /// The epoch restored at start, if any.
    pub recovered_epoch: Option<u64>,
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
    pub(crate) log: LogWriter,
    pub(crate) tracker: AckTracker,
    pub(crate) config: CheckpointConfig,
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
    pub(crate) final_epoch_taken: bool,
}

/// An epoch that was triggered (or first acknowledged) but is not complete yet.
#[derive(Debug, Default)]
pub(crate) struct OpenEpoch {
    triggered: Option<Instant>,
    bytes: u64,
    states: Vec<(String, u32)>,
    snapshot_times: Vec<(String, u32, Duration)>,
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
        let interval = self.config.interval;
        let mut next_trigger = Instant::now() + interval;
        loop {
            let timeout = next_trigger.saturating_duration_since(Instant::now());
            match self.receiver.recv_timeout(timeout) {
                Ok(Message::Ack {
                    epoch,
                    participant,
                    state,
                    took,
                }) => self.on_ack(epoch, participant as usize, state, took)?,
                Ok(Message::Finished { participant, state }) => {
                    self.on_finished(participant as usize, state)?
                }
                Ok(Message::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                    // Threads have ended: take what they sent last.
                    while let Ok(message) = self.receiver.try_recv() {
                        match message {
                            Message::Ack {
                                epoch,
                                participant,
                                state,
                                took,
                            } => self.on_ack(epoch, participant as usize, state, took)?,
                            Message::Finished { participant, state } => {
                                self.on_finished(participant as usize, state)?
                            }
                            Message::Shutdown => {}
                        }
                    }
                    return Ok(());
                }
                Err(RecvTimeoutError::Timeout) => {
                    let sources_running = self
                        .sources
                        .iter()
                        .any(|participant| !self.tracker.is_finished(*participant));
                    if sources_running && !self.control.is_aborted() {
                        self.trigger()?;
                    }
                    let now = Instant::now();
                    while next_trigger <= now {
                        next_trigger += interval;
                    }
                }
            }
        }
    }

    fn trigger(&mut self) -> Result<(), CheckpointError> {
        let epoch = self.shared.clock.advance();
        self.open_epochs.entry(epoch).or_default().triggered = Some(Instant::now());
        self.stats.lock().unwrap().epochs_triggered += 1;
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
    ) -> Result<(), CheckpointError> {
        if participant >= self.participants.len() || self.tracker.is_finished(participant) {
            return Ok(());
        }
        if let Some(state) = state {
            self.final_states.insert(participant, state);
        }
        let outcome = self.tracker.finish(participant);
        self.on_outcome(outcome)?;
        if self.tracker.all_finished() && !self.final_epoch_taken {
            self.final_epoch_taken = true;
            self.trigger()?;
        }
        Ok(())
    }

    fn append(
        &mut self,
        kind: super::log::EntryKind,
        payload: &[u8],
        epoch: u64,
    ) -> Result<Location, CheckpointError> {
        let location = self.log.append(kind, payload)?;
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
        Ok(location)
    }

    fn write_meta(&mut self) -> Result<(), CheckpointError> {
        let payload = codec::encode(&self.meta)?;
        self.append(entries::META, &payload, 0)?;
        Ok(())
    }

    fn on_ack(
        &mut self,
        epoch: u64,
        participant: usize,
        state: Option<Vec<u8>>,
        took: Duration,
    ) -> Result<(), CheckpointError> {
        if epoch <= self.tracker.last_complete() {
            return Ok(());
        }
        if let Some(state) = state {
            let bytes = self.write_state(epoch, participant, state)?;
            let (operator, instance) = self.participants[participant].clone();
            let open = self.open_epochs.entry(epoch).or_default();
            open.bytes += bytes;
            open.states.push((operator.clone(), instance));
            open.snapshot_times.push((operator, instance, took));
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
            operator,
            instance,
            state,
        };
        let payload = codec::encode(&entry)?;
        self.append(entries::STATE, &payload, epoch)?;
        Ok(payload.len() as u64)
    }

    fn complete(&mut self, epoch: u64) -> Result<(), CheckpointError> {
        let mut open = self.open_epochs.remove(&epoch).unwrap_or_default();
        // Participants that finished before this epoch's marker reached them restore from
        // their final state (their upstreams finished too, so nothing of theirs replays).
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
        // Older open epochs can no longer complete on their own; this one supersedes them.
        self.open_epochs.retain(|older, _| *older > epoch);
        let duration = open.triggered.map(|at| at.elapsed()).unwrap_or_default();
        let entry = CompleteEntry {
            epoch,
            fingerprint: self.meta.fingerprint,
            states: open.states.clone(),
            duration_us: duration.as_micros() as u64,
        };
        let payload = codec::encode(&entry)?;
        self.append(entries::COMPLETE, &payload, epoch)?;
        self.log.sync()?;
        let duration = open.triggered.map(|at| at.elapsed()).unwrap_or(duration);
        {
            let mut stats = self.stats.lock().unwrap();
            stats.last_complete_epoch = Some(epoch);
            stats.recent.push(EpochReport {
                epoch,
                duration,
                bytes_written: open.bytes + payload.len() as u64,
                snapshot_times: open.snapshot_times,
            });
            if stats.recent.len() > 16 {
                stats.recent.remove(0);
            }
        }
        self.completed.push_back(epoch);
        self.shared.clock.set_last_complete(epoch);
        self.remove_old_segments()
    }

    /// Removes segments holding nothing newer than the oldest complete epoch we keep.
    fn remove_old_segments(&mut self) -> Result<(), CheckpointError> {
        let retain = self.config.retain.max(1);
        while self.completed.len() > retain {
            self.completed.pop_front();
        }
        let Some(&oldest_kept) = self.completed.front() else {
            return Ok(());
        };
        let current = self.log.current_segment();
        let removable: Vec<u64> = self
            .segment_epochs
            .iter()
            .filter(|(segment, newest)| **segment != current && **newest < oldest_kept)
            .map(|(segment, _)| *segment)
            .collect();
        for segment in removable {
            self.log.remove_segment(segment)?;
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

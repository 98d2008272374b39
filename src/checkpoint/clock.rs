//! The epoch clock: what the coordinator publishes to sources (and operators) about
//! epochs: the newest epoch started, the newest micro-batch released, the newest epoch
//! complete, how each epoch runs, and the batch time of the newest micro-batches.

use crate::edge::WakeSignal;
use crate::event::Timestamp;
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::{Arc, Mutex};
use crate::trigger::ExecutionMode;

/// The epochs as the coordinator has decided them.
///
/// The coordinator calls [`advance`](EpochClock::advance), which publishes the new epoch
/// and then wakes every registered source thread through the [`WakeSignal`] protocol; a
/// source re-checks [`current`](EpochClock::current) before it parks, so a trigger is
/// never missed. [`release`](EpochClock::release) works the same way for micro-batches.
///
/// The mode of epoch *e + 1* is fixed (by [`set_mode_from`](EpochClock::set_mode_from))
/// before epoch *e* starts, so that a source injecting the marker of *e*, and every
/// operator receiving it, already knows how the records after it run.
#[derive(Debug)]
pub struct EpochClock {
    current: AtomicU64,
    /// The newest micro-batch whose offsets are logged: sources may emit it.
    released: AtomicU64,
    /// Planning round: bumped at every trigger, and when a micro-batch that found no
    /// records is planned again instead of run.
    round: AtomicU64,
    /// The newest complete epoch, published by the coordinator (sources with an ingest
    /// log truncate it behind complete epochs).
    last_complete: AtomicU64,
    /// `(first epoch, mode)` for every change of mode, oldest first.
    modes: Mutex<Vec<(u64, ExecutionMode)>>,
    /// `(epoch, batch time)` of the newest released micro-batches, oldest first (at most
    /// [`BATCH_TIMES_KEPT`]).
    batch_times: Mutex<std::collections::VecDeque<(u64, Timestamp)>>,
    sources: Mutex<Vec<Arc<WakeSignal>>>,
}

impl EpochClock {
    /// A clock at epoch `start` (0, or the restored epoch) whose next epoch runs
    /// continuously.
    pub fn new(start: u64) -> Self {
        Self::with_mode(start, ExecutionMode::Continuous)
    }

    /// A clock at epoch `start` whose next epoch runs in `mode`.
    pub fn with_mode(start: u64, mode: ExecutionMode) -> Self {
        EpochClock {
            current: AtomicU64::new(start),
            released: AtomicU64::new(start),
            round: AtomicU64::new(0),
            last_complete: AtomicU64::new(start),
            modes: Mutex::new(vec![(start + 1, mode)]),
            batch_times: Mutex::new(std::collections::VecDeque::new()),
            sources: Mutex::new(Vec::new()),
        }
    }

    /// The newest complete epoch.
    pub fn last_complete(&self) -> u64 {
        self.last_complete.load(Ordering::Acquire)
    }

    /// Registers a source thread to wake when an epoch starts or a batch is released.
    pub fn add_source(&self, signal: Arc<WakeSignal>) {
        self.sources.lock().unwrap().push(signal);
    }

    /// The epoch sources must have injected a marker for (or, for a micro-batch, must
    /// plan).
    #[inline]
    pub fn current(&self) -> u64 {
        self.current.load(Ordering::Acquire)
    }

    /// The newest micro-batch sources may emit.
    #[inline]
    pub fn released(&self) -> u64 {
        self.released.load(Ordering::Acquire)
    }

    /// The planning round (see [`replan`](Self::replan)).
    #[inline]
    pub fn round(&self) -> u64 {
        self.round.load(Ordering::Acquire)
    }

    /// Asks sources to plan the current micro-batch again: its plans found no records,
    /// so it did not run (as Spark runs no batch without new data). A source drops its
    /// empty plan when it sees the round move on.
    pub fn replan(&self) {
        self.round.fetch_add(1, Ordering::AcqRel);
        self.wake_sources();
    }

    /// How `epoch` runs.
    pub fn mode_of(&self, epoch: u64) -> ExecutionMode {
        let modes = self.modes.lock().unwrap();
        modes
            .iter()
            .rev()
            .find(|(first, _)| *first <= epoch)
            .or(modes.first())
            .map(|(_, mode)| *mode)
            .unwrap_or_default()
    }

    /// Epochs from `epoch` on run in `mode` (until changed again). Call before the
    /// epoch before `epoch` starts.
    pub fn set_mode_from(&self, epoch: u64, mode: ExecutionMode) {
        let mut modes = self.modes.lock().unwrap();
        modes.retain(|(first, _)| *first < epoch);
        if modes.last().map(|(_, last)| *last) != Some(mode) {
            modes.push((epoch, mode));
        }
    }

    /// Starts the next epoch and wakes every source (the wake-up protocol of
    /// [`WakeSignal`]: publish, then notify).
    pub fn advance(&self) -> u64 {
        self.round.fetch_add(1, Ordering::AcqRel);
        let epoch = self.current.fetch_add(1, Ordering::AcqRel) + 1;
        self.wake_sources();
        epoch
    }

    /// Records `time` as micro-batch `epoch`'s batch time (Spark's `batchTimestampMs`:
    /// the query clock's reading when the batch was planned, kept in the offset log so
    /// that a replay runs at the same time). Call before [`release`](Self::release), so
    /// that every stage seeing a record or marker of the batch finds it.
    pub fn set_batch_time(&self, epoch: u64, time: Timestamp) {
        let mut times = self.batch_times.lock().unwrap();
        times.retain(|(known, _)| *known != epoch);
        times.push_back((epoch, time));
        while times.len() > BATCH_TIMES_KEPT {
            times.pop_front();
        }
    }

    /// The batch time of micro-batch `epoch`, if it is one of the newest released.
    /// Stages look it up once per batch (see
    /// [`Context::processing_time`](crate::operator::Context::processing_time)).
    pub fn batch_time(&self, epoch: u64) -> Option<Timestamp> {
        let times = self.batch_times.lock().unwrap();
        times
            .iter()
            .rev()
            .find(|(known, _)| *known == epoch)
            .map(|(_, time)| *time)
    }

    /// Lets sources emit micro-batch `epoch` (its offsets are logged) and wakes them.
    pub fn release(&self, epoch: u64) {
        self.released.fetch_max(epoch, Ordering::AcqRel);
        self.wake_sources();
    }

    /// Records that `epoch` is complete (the coordinator, after writing its completion)
    /// and wakes the sources: one that ended a micro-batch before a continuous epoch
    /// waits for this.
    pub fn set_last_complete(&self, epoch: u64) {
        self.last_complete.store(epoch, Ordering::Release);
        self.wake_sources();
    }

    fn wake_sources(&self) {
        for signal in self.sources.lock().unwrap().iter() {
            signal.notify();
        }
    }
}

/// How many batch times the clock keeps. Batches run one after another (batch *e + 1*
/// is released once every stage passed the marker of *e*), so a stage only ever asks
/// for the newest; a few more cost nothing.
const BATCH_TIMES_KEPT: usize = 4;

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn modes_apply_from_their_first_epoch() {
        let clock = EpochClock::new(4);
        assert_eq!(clock.mode_of(5), ExecutionMode::Continuous);
        clock.set_mode_from(7, ExecutionMode::MicroBatch);
        assert_eq!(clock.mode_of(6), ExecutionMode::Continuous);
        assert_eq!(clock.mode_of(7), ExecutionMode::MicroBatch);
        assert_eq!(clock.mode_of(100), ExecutionMode::MicroBatch);
        // Deciding again for the same epoch replaces the decision.
        clock.set_mode_from(7, ExecutionMode::Continuous);
        assert_eq!(clock.mode_of(7), ExecutionMode::Continuous);
        clock.set_mode_from(9, ExecutionMode::Continuous);
        assert_eq!(
            clock.modes.lock().unwrap().len(),
            1,
            "no-op changes are not kept"
        );
    }

    #[test]
    fn batch_times_are_kept_for_the_newest_batches() {
        let clock = EpochClock::with_mode(0, ExecutionMode::MicroBatch);
        assert_eq!(clock.batch_time(1), None);
        for epoch in 1..=6 {
            clock.set_batch_time(epoch, Timestamp(epoch as i64 * 100));
        }
        // A replay records its epoch again: the newest record wins.
        clock.set_batch_time(6, Timestamp(7));
        assert_eq!(clock.batch_time(6), Some(Timestamp(7)));
        assert_eq!(clock.batch_time(3), Some(Timestamp(300)));
        assert_eq!(clock.batch_time(2), None, "older batches are forgotten");
    }

    #[test]
    fn release_only_moves_forward() {
        let clock = EpochClock::with_mode(2, ExecutionMode::MicroBatch);
        assert_eq!(clock.mode_of(3), ExecutionMode::MicroBatch);
        assert_eq!(clock.released(), 2);
        clock.release(3);
        clock.release(1);
        assert_eq!(clock.released(), 3);
        assert_eq!(clock.advance(), 3);
    }
}

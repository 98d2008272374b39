//! The epoch clock: what the coordinator publishes to sources (and operators) about
//! epochs: the newest epoch started, the newest micro-batch released, the newest epoch
//! complete, and how each epoch runs.

use crate::edge::WakeSignal;
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

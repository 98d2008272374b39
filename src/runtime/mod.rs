//! Turns a built query into long-running threads: one per task, pinned by the
//! [`Pinning`] policy, each looping over its task's steps and waiting by its
//! [`WaitPolicy`](crate::edge::WaitPolicy) in between.
//!
//! A *task* is one thread's whole operator chain, type-erased once at start: a head (a
//! source, or the receiving ends of its input edges) driving a chain of operators that
//! ends in a sink or in the sending ends of output edges. The head drives the chain
//! through `Downstream` (records, control signals, flushes, timers), which the
//! operators' stages and the chain ends implement; a head with several inputs merges
//! their control signals with `FanIn` (`fan_in.rs`). Operators and sinks depend on this
//! module (for `Downstream` and [`RunControl`]), not the other way round.

pub mod affinity;
pub(crate) mod chain_time;
pub(crate) mod fan_in;
pub(crate) mod heads;
pub mod shutdown;
pub(crate) mod source_epochs;
pub(crate) mod worker;

pub use affinity::Pinning;
pub use shutdown::RunControl;

use crate::event::{Epoch, Signal, Timestamp};
use std::time::{Duration, Instant};

/// How many events a task handles per step before it flushes its notifications and
/// checks the run flags again.
pub(crate) const STEP_BUDGET: usize = 256;

/// The outcome of one [`Task::step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Work was done; step again.
    Busy,
    /// Nothing to do until new input arrives, or until `until` (a rate source's next row).
    Idle { until: Option<Instant> },
    /// The task has sent end-of-stream downstream; the thread ends.
    Done,
}

/// One thread's erased operator chain.
pub(crate) trait Task: Send {
    /// Handles up to `budget` events, then flushes wake-ups to its peers.
    fn step(&mut self, budget: usize) -> Step;
    /// `true` if a step would find work (the re-check of the park protocol).
    fn has_work(&self) -> bool;
    /// Opens the sink the task's chain ends in, if any, when the query starts; an error
    /// says what failed.
    fn open_sinks(&mut self) -> Result<(), String>;
    /// Opens the task's source, if it has one, when the query starts (before every
    /// sink).
    fn open_source(&mut self) -> Result<(), String> {
        Ok(())
    }
    /// Blocks in the source's own wait (a `mio` poll) for at most `timeout`, instead of
    /// parking the thread; `false` if the task has none (see
    /// [`Source::park`](crate::source::Source::park)).
    fn park(&mut self, timeout: Option<Duration>) -> bool {
        let _ = timeout;
        false
    }
}

/// The rest of a thread's chain as the stage before it sees it: records, control signals,
/// flushes, and the processing-time timers of the stages down the chain. Implemented by
/// the engine's stages and chain ends only.
pub(crate) trait Downstream<T> {
    /// Passes a record on.
    fn push(&mut self, record: T);
    /// Passes a control signal on.
    fn signal(&mut self, signal: Signal);
    /// Ends a step of work: publishes buffered output and wakes downstream threads.
    fn flush(&mut self);
    /// The earliest processing-time timer of this stage and the stages after it on the
    /// thread.
    #[inline(always)]
    fn next_timer(&self) -> Option<Timestamp> {
        None
    }
    /// Fires the processing-time timers due at `now`, here and down the chain.
    #[inline(always)]
    fn fire_timers(&mut self, now: Timestamp) {
        let _ = now;
    }
    /// Epochs up to `epoch` are complete and their output committed.
    #[inline(always)]
    fn committed(&mut self, epoch: Epoch) {
        let _ = epoch;
    }
    /// The first event of a new epoch is about to be handed down (called by a thread
    /// reading input edges, after a marker, once the next record, marker or watermark is
    /// there): stages downstream of a watermark generator apply a micro-batch's
    /// watermark here, before the batch's records, whatever order the inputs deliver in.
    #[inline(always)]
    fn batch_started(&mut self) {}
    /// Opens what the chain writes to (its sink), once, when the query starts. An error
    /// says what failed; `start()` reports it.
    fn open(&mut self) -> Result<(), String> {
        Ok(())
    }
}

impl<T, D: Downstream<T> + ?Sized> Downstream<T> for &mut D {
    #[inline(always)]
    fn push(&mut self, record: T) {
        (**self).push(record)
    }
    #[inline(always)]
    fn signal(&mut self, signal: Signal) {
        (**self).signal(signal)
    }
    #[inline(always)]
    fn flush(&mut self) {
        (**self).flush()
    }
    #[inline(always)]
    fn next_timer(&self) -> Option<Timestamp> {
        (**self).next_timer()
    }
    #[inline(always)]
    fn fire_timers(&mut self, now: Timestamp) {
        (**self).fire_timers(now)
    }
    #[inline(always)]
    fn committed(&mut self, epoch: Epoch) {
        (**self).committed(epoch)
    }
    #[inline(always)]
    fn batch_started(&mut self) {
        (**self).batch_started()
    }
    fn open(&mut self) -> Result<(), String> {
        (**self).open()
    }
}

//! Turns a built query into long-running threads: one per task, pinned by the
//! [`Pinning`] policy, each looping over its task's steps and waiting by its
//! [`WaitPolicy`](crate::edge::WaitPolicy) in between.
//!
//! A *task* is one thread's whole operator chain, type-erased once at start: a head (a
//! source, or the receiving ends of its input edges) driving a chain of operators that
//! ends in a sink or in the sending ends of output edges.

pub mod affinity;
pub(crate) mod chain_time;
pub(crate) mod heads;
pub mod shutdown;
pub(crate) mod source_epochs;
pub(crate) mod worker;

pub use affinity::Pinning;
pub use shutdown::RunControl;

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
    /// Opens the task's source, if it has one, when the query starts (after every
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

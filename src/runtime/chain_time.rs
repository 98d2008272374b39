//! What a thread's head does for the time-driven hooks of its chain: fire the
//! processing-time timers that came due, tell the chain which epochs are committed, and
//! wake up in time for the next timer when it has nothing else to do.

use super::{Downstream, Step};
use crate::checkpoint::coordinator::CheckpointShared;
use crate::event::{Epoch, Timestamp};
use crate::sync::Arc;
use crate::time::Clock;
use std::time::Instant;

/// The time-driven duties of one thread's head.
pub(crate) struct ChainTime {
    clock: Clock,
    /// The earliest processing-time timer down the chain, as of the last step.
    deadline: Option<Timestamp>,
    /// Epochs, if the query has them: their clock says which are committed.
    epochs: Option<Arc<CheckpointShared>>,
    /// The newest committed epoch the chain was told about.
    committed: u64,
}

impl ChainTime {
    pub(crate) fn new(clock: Clock, epochs: Option<Arc<CheckpointShared>>) -> Self {
        let committed = epochs
            .as_ref()
            .map_or(0, |shared| shared.clock.last_complete());
        ChainTime {
            clock,
            deadline: None,
            epochs,
            committed,
        }
    }

    /// At the start of a step: fires the timers that are due and reports new commits.
    /// Returns `true` if the chain ran hooks (whose output the caller flushes).
    #[inline]
    pub(crate) fn before_step<T, C: Downstream<T>>(&mut self, chain: &mut C) -> bool {
        let mut ran = false;
        if let Some(deadline) = self.deadline {
            let now = self.clock.now();
            if now >= deadline {
                chain.fire_timers(now);
                ran = true;
            }
        }
        if let Some(shared) = &self.epochs {
            let complete = shared.clock.last_complete();
            if complete > self.committed {
                self.committed = complete;
                chain.committed(Epoch(complete));
                ran = true;
            }
        }
        ran
    }

    /// At the end of a step that ended as `step`: notes the earliest timer the chain now
    /// holds, and makes an idle thread wake up for it.
    #[inline]
    pub(crate) fn after<T, C: Downstream<T>>(&mut self, step: Step, chain: &C) -> Step {
        if step == Step::Done {
            return step;
        }
        self.deadline = chain.next_timer();
        match step {
            Step::Idle { until } => Step::Idle {
                until: self.wake_at(until),
            },
            step => step,
        }
    }

    /// When an idle thread must wake by itself: the earlier of `until` and its next
    /// timer. (A manual clock wakes the thread when it moves instead.)
    fn wake_at(&self, until: Option<Instant>) -> Option<Instant> {
        let timer = self
            .deadline
            .and_then(|deadline| self.clock.wake_at(deadline));
        match (until, timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether a timer is due now (the park protocol's re-check).
    pub(crate) fn timer_due(&self) -> bool {
        self.deadline
            .is_some_and(|deadline| self.clock.now() >= deadline)
    }
}

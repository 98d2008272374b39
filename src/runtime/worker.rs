//! The body of an operator thread.

use super::{RunControl, Step, Task, STEP_BUDGET};
use crate::edge::wait::{wait_until, Backoff};
use crate::edge::{WaitPolicy, WakeSignal};
use crate::error::Error;
use crate::sync::Arc;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Everything a worker thread needs, moved into it at spawn.
pub(crate) struct Worker {
    pub(crate) name: String,
    pub(crate) task: Box<dyn Task>,
    pub(crate) signal: Arc<WakeSignal>,
    pub(crate) control: Arc<RunControl>,
    pub(crate) policy: WaitPolicy,
    pub(crate) core: Option<core_affinity::CoreId>,
}

impl Worker {
    /// Runs the task until it is done, the query aborts, or user code panics.
    pub(crate) fn run(self) {
        let Worker {
            name,
            mut task,
            signal,
            control,
            policy,
            core,
        } = self;
        if let Some(core) = core {
            // Failure to pin is not fatal: the thread still runs, just unpinned.
            let _pinned = core_affinity::set_for_current(core);
        }
        signal.register_current();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let mut backoff = Backoff::new(policy);
            while !control.is_aborted() {
                match task.step(STEP_BUDGET) {
                    Step::Busy => backoff.reset(),
                    Step::Idle { until } => {
                        let found = wait_until(
                            &signal,
                            &mut backoff,
                            until,
                            || task.has_work() || control.is_aborted(),
                            || {},
                        );
                        if found {
                            backoff.reset();
                        }
                    }
                    Step::Done => break,
                }
            }
        }));
        if let Err(payload) = outcome {
            // Operators report their own name first; this only names the thread when a
            // panic escaped without one (the first failure wins).
            control.fail(Error::from_panic(&name, payload.as_ref()));
        }
        // Drop the task (and its edges, which wake their peers) before counting out. User
        // types dropped here (a sink, an operator's state) may panic too: that is a
        // failure, and the thread still counts out.
        if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(task))) {
            control.fail(Error::from_panic(&name, payload.as_ref()));
        }
        control.thread_finished();
    }
}

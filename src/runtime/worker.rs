//! The body of an operator thread.

use super::{RunControl, Step, Task, STEP_BUDGET};
use crate::edge::wait::{wait_for, Backoff, Waiter};
use crate::edge::{WaitPolicy, WakeSignal};
use crate::error::Error;
use crate::sync::Arc;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

/// How an idle worker waits for its task: the task's re-check (or the abort flag), and,
/// for a source that blocks in a poll of its own, that poll instead of `park()`.
struct TaskWaiter<'a> {
    task: &'a mut dyn Task,
    control: &'a RunControl,
    /// `false` once the task said it has no wait of its own: it is not asked again.
    own_wait: &'a mut bool,
}

impl Waiter for TaskWaiter<'_> {
    fn has_work(&mut self) -> bool {
        self.task.has_work() || self.control.is_aborted()
    }

    /// Between spin rounds a source that polls sockets looks at them without blocking:
    /// under a policy that never parks, nothing else would ever see their data.
    fn poll(&mut self) {
        if *self.own_wait {
            *self.own_wait = self.task.park(Some(Duration::ZERO));
        }
    }

    /// A source that blocks in its own poll does not yield: it blocks there after the
    /// spin rounds (see [`Waiter::yields`]). Known after the first look (`own_wait` starts
    /// `true` and turns `false` at the first `park` of a task without a wait of its own).
    fn yields(&self) -> bool {
        !*self.own_wait
    }

    fn block(&mut self, timeout: Option<Duration>) -> bool {
        if *self.own_wait {
            *self.own_wait = self.task.park(timeout);
        }
        *self.own_wait
    }
}

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
            let mut own_wait = true;
            while !control.is_aborted() {
                match task.step(STEP_BUDGET) {
                    Step::Busy => backoff.reset(),
                    Step::Idle { until } => {
                        let mut waiter = TaskWaiter {
                            task: task.as_mut(),
                            control: &control,
                            own_wait: &mut own_wait,
                        };
                        let found = wait_for(&signal, &mut backoff, until, &mut waiter);
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

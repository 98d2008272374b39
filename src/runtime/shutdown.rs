//! Stop, abort and failure: the flags every operator thread checks between steps.
//!
//! * **Stop** (graceful): sources stop producing and send end-of-stream; every operator
//!   drains its inputs, forwards end-of-stream and ends. Nothing already emitted is lost.
//! * **Abort**: every thread ends at its next check, and a sender blocked on a full ring
//!   gives up. In-flight records are dropped; with checkpoints they are replayed on restart.
//! * **Failure**: the first error (a panic in user code, a failing sink) is kept, and the
//!   query aborts. [`RunControl::failure`] hands it to `await_termination`.

use crate::edge::WakeSignal;
use crate::error::Error;
use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::sync::{Arc, Mutex};

/// The query-wide run flags. Cheap to check: one relaxed or acquire load.
pub struct RunControl {
    stop: AtomicBool,
    abort: Arc<AtomicBool>,
    failure: Mutex<Option<Error>>,
    running_threads: AtomicUsize,
    signals: Mutex<Vec<Arc<WakeSignal>>>,
    /// Run once when the last thread ended (see [`RunControl::when_threads_finish`]).
    finished_hook: Mutex<Option<FinishedHook>>,
    /// When the last thread ended.
    ended_at: Mutex<Option<std::time::Instant>>,
}

/// What runs when a query's last operator thread ends.
type FinishedHook = Box<dyn FnOnce() + Send>;

impl std::fmt::Debug for RunControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunControl")
            .field("stop", &self.stop)
            .field("abort", &self.abort)
            .field("running_threads", &self.running_threads)
            .finish_non_exhaustive()
    }
}

impl Default for RunControl {
    fn default() -> Self {
        Self::new()
    }
}

impl RunControl {
    /// Flags for a query that has not started.
    pub fn new() -> Self {
        RunControl {
            stop: AtomicBool::new(false),
            abort: Arc::new(AtomicBool::new(false)),
            failure: Mutex::new(None),
            running_threads: AtomicUsize::new(0),
            signals: Mutex::new(Vec::new()),
            finished_hook: Mutex::new(None),
            ended_at: Mutex::new(None),
        }
    }

    /// The abort flag, shared with every edge so a blocked sender can give up.
    pub fn abort_flag(&self) -> Arc<AtomicBool> {
        self.abort.clone()
    }

    /// Registers a thread's wake signal so stop and abort can wake it.
    pub fn add_signal(&self, signal: Arc<WakeSignal>) {
        self.signals.lock().unwrap().push(signal);
    }

    /// Asks sources to end their streams; the query drains and ends.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake_all();
    }

    /// `true` once a graceful stop was requested.
    #[inline]
    pub fn is_stop_requested(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Ends every thread at its next check, dropping in-flight records.
    pub fn abort(&self) {
        self.abort.store(true, Ordering::Release);
        self.wake_all();
    }

    /// `true` once the query is aborting (by request or after a failure).
    #[inline]
    pub fn is_aborted(&self) -> bool {
        self.abort.load(Ordering::Acquire)
    }

    /// Records `error` if it is the first, then aborts the query.
    pub fn fail(&self, error: Error) {
        {
            let mut failure = self.failure.lock().unwrap();
            if failure.is_none() {
                *failure = Some(error);
            }
        }
        self.abort();
    }

    /// The first failure, if any.
    pub fn failure(&self) -> Option<Error> {
        self.failure.lock().unwrap().clone()
    }

    /// Counts a thread as running (before it is spawned).
    pub fn thread_started(&self) {
        self.running_threads.fetch_add(1, Ordering::AcqRel);
    }

    /// Counts a thread as ended (the last thing it does). The last one runs the hook
    /// [`when_threads_finish`](Self::when_threads_finish) installed.
    pub fn thread_finished(&self) {
        if self.running_threads.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.run_finished_hook();
        }
    }

    /// Runs `hook` once every thread counted with [`thread_started`](Self::thread_started)
    /// has finished: at once if none runs now, else in the last thread to finish. Install
    /// it after every thread was counted in.
    pub fn when_threads_finish(&self, hook: Box<dyn FnOnce() + Send>) {
        *self.finished_hook.lock().unwrap() = Some(hook);
        if self.running_threads() == 0 {
            self.run_finished_hook();
        }
    }

    /// When the last thread ended, if it has.
    pub fn ended_at(&self) -> Option<std::time::Instant> {
        *self.ended_at.lock().unwrap()
    }

    fn run_finished_hook(&self) {
        // Taken under the lock: of an installer and a finishing thread racing, one runs it.
        self.ended_at
            .lock()
            .unwrap()
            .get_or_insert_with(std::time::Instant::now);
        let hook = self.finished_hook.lock().unwrap().take();
        if let Some(hook) = hook {
            hook();
        }
    }

    /// Threads still running.
    pub fn running_threads(&self) -> usize {
        self.running_threads.load(Ordering::Acquire)
    }

    fn wake_all(&self) {
        for signal in self.signals.lock().unwrap().iter() {
            signal.unpark();
        }
    }
}

impl crate::checkpoint::coordinator::QueryControl for RunControl {
    fn fail(&self, error: Error) {
        RunControl::fail(self, error);
    }
    fn is_aborted(&self) -> bool {
        RunControl::is_aborted(self)
    }
    fn is_stop_requested(&self) -> bool {
        RunControl::is_stop_requested(self)
    }
    fn request_stop(&self) {
        RunControl::request_stop(self);
    }
}

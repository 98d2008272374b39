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
#[derive(Debug)]
pub struct RunControl {
    stop: AtomicBool,
    abort: Arc<AtomicBool>,
    failure: Mutex<Option<Error>>,
    running_threads: AtomicUsize,
    signals: Mutex<Vec<Arc<WakeSignal>>>,
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

    /// Counts a thread as ended (the last thing it does).
    pub fn thread_finished(&self) {
        self.running_threads.fetch_sub(1, Ordering::AcqRel);
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

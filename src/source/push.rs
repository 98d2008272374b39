//! A source that applications feed from their own threads.
//!
//! [`PushHandle`]s (cloneable, usable from any number of threads) put records into a
//! bounded lock-free queue (`crossbeam::queue::ArrayQueue`); the source thread takes them
//! out and runs the query's chain on them. A full queue is back-pressure: `push` waits,
//! `try_push` hands the record back. The stream ends when every handle is dropped, or
//! when the query stops, after what was already accepted has been processed: a record for
//! which `push` returned `Ok` is never lost by a stop.

use super::{Source, SourcePoll};
use crate::edge::WakeSignal;
use crate::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use crate::sync::Arc;
use crossbeam::queue::ArrayQueue;
use crossbeam::utils::Backoff;
use std::fmt;
use std::time::Duration;

/// Bit 0 of `state`: closed, no push accepted any more. The rest: pushes in flight × 2.
const CLOSED: usize = 1;
const IN_FLIGHT: usize = 2;

struct Shared<T> {
    queue: ArrayQueue<T>,
    /// The source thread's signal.
    signal: Arc<WakeSignal>,
    state: AtomicUsize,
    handles: AtomicUsize,
    /// Records accepted by `push` so far.
    accepted: AtomicU64,
    /// Records the source thread has taken (and logged, in a checkpointed query): a
    /// record counts once the source is polled again after handing it out.
    taken: AtomicU64,
}

/// Why a push did not happen; the record is handed back.
#[derive(PartialEq, Eq)]
pub enum PushError<T> {
    /// The queue is full (only from [`PushHandle::try_push`]).
    Full(T),
    /// The query stopped or ended; no more records are accepted.
    Closed(T),
}

impl<T> PushError<T> {
    /// The record that was not pushed.
    pub fn into_inner(self) -> T {
        match self {
            PushError::Full(record) | PushError::Closed(record) => record,
        }
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Full(_) => f.write_str("Full(..)"),
            PushError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Full(_) => f.write_str("the push source's queue is full"),
            PushError::Closed(_) => f.write_str("the push source is closed"),
        }
    }
}

impl<T> std::error::Error for PushError<T> {}

/// Feeds records into a running query from application threads. Clone it for more
/// threads; the stream ends when the last clone is dropped.
///
/// ```
/// let mut query = rivulet::Query::builder();
/// let (handle, numbers) = query.push_source::<u64>("numbers");
/// let doubled = numbers.map(|x| x * 2).to_memory("doubled");
/// let running = query.start().unwrap();
/// for i in 0..5 {
///     handle.push(i).unwrap();
/// }
/// drop(handle); // end of stream
/// running.await_termination().unwrap();
/// assert_eq!(doubled.rows(), vec![0, 2, 4, 6, 8]);
/// ```
pub struct PushHandle<T> {
    shared: Arc<Shared<T>>,
}

impl<T> fmt::Debug for PushHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushHandle")
            .field("queued", &self.shared.queue.len())
            .finish_non_exhaustive()
    }
}

impl<T> Clone for PushHandle<T> {
    fn clone(&self) -> Self {
        self.shared.handles.fetch_add(1, Ordering::Relaxed);
        PushHandle {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for PushHandle<T> {
    fn drop(&mut self) {
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Last handle: the source must wake to see the end.
            self.shared.signal.notify();
        }
    }
}

impl<T: Send> PushHandle<T> {
    /// Pushes `record`, waiting while the queue is full (spinning, then sleeping in steps
    /// of up to 1 ms: the caller is an application thread, not an operator thread).
    ///
    /// # Errors
    ///
    /// [`PushError::Closed`] with the record if the query stopped or ended.
    pub fn push(&self, record: T) -> Result<(), PushError<T>> {
        let mut record = record;
        let backoff = Backoff::new();
        let mut sleep = Duration::from_micros(10);
        loop {
            match self.try_push(record) {
                Ok(()) => return Ok(()),
                Err(PushError::Full(back)) => record = back,
                Err(closed) => return Err(closed),
            }
            if backoff.is_completed() {
                std::thread::sleep(sleep);
                sleep = (sleep * 2).min(Duration::from_millis(1));
            } else {
                backoff.snooze();
            }
        }
    }

    /// Pushes `record` if there is room.
    ///
    /// # Errors
    ///
    /// [`PushError::Full`] if the queue is full, [`PushError::Closed`] if the query stopped
    /// or ended; either way with the record.
    pub fn try_push(&self, record: T) -> Result<(), PushError<T>> {
        let shared = &*self.shared;
        let state = shared.state.fetch_add(IN_FLIGHT, Ordering::AcqRel);
        let result = if state & CLOSED != 0 {
            Err(PushError::Closed(record))
        } else {
            shared.queue.push(record).map_err(PushError::Full)
        };
        if result.is_ok() {
            shared.accepted.fetch_add(1, Ordering::AcqRel);
        }
        shared.state.fetch_sub(IN_FLIGHT, Ordering::Release);
        if result.is_ok() {
            shared.signal.notify();
        }
        result
    }

    /// Waits until the source thread has taken every record accepted so far (from any
    /// handle) and, in a checkpointed query, written it to the ingest log, so that it
    /// survives a crash of the process. Returns `false` if `timeout` passed first or the
    /// source ended before taking them.
    ///
    /// `push` returns as soon as a record is queued; records still queued when the process
    /// dies are lost. Call `flush` where the application needs them safe (the socket
    /// equivalent is waiting for an acknowledgement).
    pub fn flush(&self, timeout: Duration) -> bool {
        let shared = &*self.shared;
        let target = shared.accepted.load(Ordering::Acquire);
        let deadline = std::time::Instant::now() + timeout;
        let backoff = Backoff::new();
        loop {
            if shared.taken.load(Ordering::Acquire) >= target {
                return true;
            }
            if std::time::Instant::now() >= deadline || self.source_gone() {
                return shared.taken.load(Ordering::Acquire) >= target;
            }
            if backoff.is_completed() {
                std::thread::sleep(Duration::from_micros(50));
            } else {
                backoff.snooze();
            }
        }
    }

    /// `true` once the source side was dropped (the query ended).
    fn source_gone(&self) -> bool {
        self.is_closed() && self.shared.queue.is_empty()
    }

    /// Records waiting for the source thread.
    pub fn queued(&self) -> usize {
        self.shared.queue.len()
    }

    /// `true` once the query stopped taking records.
    pub fn is_closed(&self) -> bool {
        self.shared.state.load(Ordering::Acquire) & CLOSED != 0
    }
}

/// The source side of a push handle: a plain source that cannot replay (what it
/// took from the queue is gone). [`QueryBuilder::push_source`] wraps it in an
/// [`IngestLogged`](super::IngestLogged), so in a checkpointed query every record is
/// written to an ingest write-ahead log before it is emitted and replayed from there
/// after a restart; records a `push` accepted are never lost by a crash once logged (see
/// [`PushHandle::flush`], and [`Durability`](crate::checkpoint::Durability) for when they
/// reach the disk).
///
/// [`QueryBuilder::push_source`]: crate::QueryBuilder::push_source
pub struct PushSource<T> {
    shared: Arc<Shared<T>>,
    /// A record was handed out and is not counted in `taken` yet. It is counted at the
    /// next poll: by then whoever polled (an [`IngestLogged`](super::IngestLogged)) has
    /// logged it, which is what [`PushHandle::flush`] waits for.
    handed_out: bool,
}

impl<T> fmt::Debug for PushSource<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushSource").finish_non_exhaustive()
    }
}

impl<T: Send> PushSource<T> {
    /// A source with room for `capacity` queued records, woken through `signal` (the
    /// signal of the thread that will run it).
    pub fn new(capacity: usize, signal: Arc<WakeSignal>) -> (PushHandle<T>, PushSource<T>) {
        let shared = Arc::new(Shared {
            queue: ArrayQueue::new(capacity.max(1)),
            signal,
            state: AtomicUsize::new(0),
            handles: AtomicUsize::new(1),
            accepted: AtomicU64::new(0),
            taken: AtomicU64::new(0),
        });
        (
            PushHandle {
                shared: shared.clone(),
            },
            PushSource {
                shared,
                handed_out: false,
            },
        )
    }

    /// `true` when no push can add anything any more: closed or no handles, and no push
    /// in flight. Acquire loads, so every completed push is visible to the next pop.
    fn finished_feeding(&self) -> bool {
        let state = self.shared.state.load(Ordering::Acquire);
        let closed = state & CLOSED != 0 || self.shared.handles.load(Ordering::Acquire) == 0;
        closed && state / IN_FLIGHT == 0
    }

    /// Counts the record handed out by the previous poll as taken.
    #[inline]
    fn count_taken(&mut self) {
        if self.handed_out {
            self.handed_out = false;
            // Only this thread writes `taken`: a load and a store, no locked instruction.
            let taken = self.shared.taken.load(Ordering::Relaxed);
            self.shared.taken.store(taken + 1, Ordering::Release);
        }
    }

    #[inline]
    fn hand_out(&mut self, record: T) -> SourcePoll<T> {
        self.handed_out = true;
        SourcePoll::Ready(record)
    }
}

impl<T: Send + 'static> Source for PushSource<T> {
    type Item = T;

    #[inline]
    fn poll_next(&mut self) -> SourcePoll<T> {
        self.count_taken();
        if let Some(record) = self.shared.queue.pop() {
            return self.hand_out(record);
        }
        if self.finished_feeding() {
            // A push that completed before we saw "finished" is in the queue now.
            return match self.shared.queue.pop() {
                Some(record) => self.hand_out(record),
                None => SourcePoll::Exhausted,
            };
        }
        SourcePoll::Pending { until: None }
    }

    fn has_data(&self) -> bool {
        !self.shared.queue.is_empty() || self.finished_feeding()
    }

    fn drain_on_stop(&mut self) -> bool {
        self.shared.state.fetch_or(CLOSED, Ordering::AcqRel);
        true
    }
}

impl<T> Drop for PushSource<T> {
    fn drop(&mut self) {
        self.shared.state.fetch_or(CLOSED, Ordering::AcqRel);
    }
}

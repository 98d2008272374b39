//! A source that applications feed from their own threads.
//!
//! [`PushHandle`]s (cloneable, usable from any number of threads) put records into a
//! bounded lock-free queue (`crossbeam::queue::ArrayQueue`); the source thread takes them
//! out and runs the query's chain on them. A full queue is back-pressure: `push` waits,
//! `try_push` hands the record back. The stream ends when every handle is dropped, or
//! when the query stops, after what was already accepted has been processed: a record for
//! which `push` returned `Ok` is never lost by a stop.

use super::ingest_log::IngestLog;
use super::{Source, SourceContext, SourcePoll};
use crate::checkpoint::codec;
use crate::edge::WakeSignal;
use crate::error::BoxError;
use crate::event::Epoch;
use crate::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use crate::sync::Arc;
use crossbeam::queue::ArrayQueue;
use crossbeam::utils::Backoff;
use serde::de::DeserializeOwned;
use serde::Serialize;
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
    /// Records the source thread has taken (and logged, in a checkpointed query).
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

/// The source side of a push handle. Created by
/// [`QueryBuilder::push_source`](crate::QueryBuilder::push_source).
///
/// In a checkpointed query it writes every record to an ingest write-ahead log before
/// emitting it, and replays the log from the restored offset after a restart; records a
/// `push` accepted are never lost by a crash once logged (see
/// [`Durability`](crate::checkpoint::Durability) for when they reach the disk).
pub struct PushSource<T> {
    shared: Arc<Shared<T>>,
    wal: Option<IngestLog<T>>,
    /// The offset restored at start, applied when the ingest log is opened.
    restore_to: Option<u64>,
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
                wal: None,
                restore_to: None,
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
}

impl<T: Send + Serialize + DeserializeOwned> PushSource<T> {
    /// Logs `record` (if there is a write-ahead log) and emits it.
    #[inline]
    fn emit(&mut self, record: T) -> SourcePoll<T> {
        if let Some(wal) = &mut self.wal {
            if let Err(error) = wal.append(&record) {
                return SourcePoll::Failed(error);
            }
        }
        // Only this thread writes `taken`: a load and a store, no locked instruction.
        let taken = self.shared.taken.load(Ordering::Relaxed);
        self.shared.taken.store(taken + 1, Ordering::Release);
        SourcePoll::Ready(record)
    }
}

impl<T: Send + Serialize + DeserializeOwned + 'static> Source for PushSource<T> {
    type Item = T;

    /// In a checkpointed query, opens the ingest write-ahead log
    /// `<checkpoint dir>/ingest-<name>` (instance `i > 0`: `ingest-<name>-<i>`) and
    /// rewinds it to the restored offset.
    fn open(&mut self, context: &SourceContext) -> Result<(), BoxError> {
        let Some((config, shared)) = &context.checkpoint else {
            return Ok(());
        };
        let name = if context.instance == 0 {
            format!("ingest-{}", context.name)
        } else {
            format!("ingest-{}-{}", context.name, context.instance)
        };
        let mut wal = IngestLog::open(&config.dir().join(name), config, shared.clone())?;
        if let Some(offset) = self.restore_to.take() {
            wal.restore(offset)?;
        }
        self.wal = Some(wal);
        Ok(())
    }

    #[inline]
    fn poll_next(&mut self) -> SourcePoll<T> {
        if let Some(wal) = &mut self.wal {
            match wal.next_replay() {
                Some(Ok(record)) => return SourcePoll::Ready(record),
                Some(Err(error)) => return SourcePoll::Failed(error),
                None => {}
            }
        }
        if let Some(record) = self.shared.queue.pop() {
            return self.emit(record);
        }
        if self.finished_feeding() {
            // A push that completed before we saw "finished" is in the queue now.
            return match self.shared.queue.pop() {
                Some(record) => self.emit(record),
                None => SourcePoll::Exhausted,
            };
        }
        SourcePoll::Pending { until: None }
    }

    fn has_data(&self) -> bool {
        !self.shared.queue.is_empty()
            || self.finished_feeding()
            || self.wal.as_ref().is_some_and(IngestLog::has_replay)
    }

    /// `true`: in a checkpointed query the source logs what it accepts (see
    /// [`open`](Self::open)) and replays from that log.
    fn can_replay(&self) -> bool {
        true
    }

    fn checkpoint(&mut self, epoch: Epoch) -> Result<Vec<u8>, BoxError> {
        match &mut self.wal {
            Some(wal) => wal.checkpoint(epoch),
            None => Err("the push source has no ingest log (checkpointing is off)".into()),
        }
    }

    fn restore(&mut self, offset: &[u8]) -> Result<(), BoxError> {
        let offset: u64 = codec::decode(offset)?;
        match &mut self.wal {
            Some(wal) => wal.restore(offset),
            None => {
                // Applied when `open` opens the ingest log.
                self.restore_to = Some(offset);
                Ok(())
            }
        }
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

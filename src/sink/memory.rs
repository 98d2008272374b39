//! A sink that collects records into a table the application can read while the query
//! runs (Spark's `memory` sink).

use super::{EpochCommit, Sink, SinkContext};
use crate::error::BoxError;
use crate::event::Epoch;
use crate::trigger::{EmitMode, OutputMode};
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The rows collected by a [`MemorySink`]: a cheap, cloneable handle to read them at any
/// time, from any thread.
///
/// In [`OutputMode::Append`] and [`OutputMode::Update`] rows accumulate: rows from one
/// sink instance appear in the order they arrived; with parallel sink instances, rows of
/// different instances interleave.
///
/// In [`OutputMode::Complete`] the table is the query's current result table. Each sink
/// instance owns one partition of it, and at every epoch end replaces its partition with
/// the rows of that epoch (which, in complete mode, are the whole result). Partitions
/// are kept in instance order. A partition is replaced in one step: a reader sees the
/// old rows or the new ones, never a mix.
///
/// ```
/// use rivulet::sink::{MemorySink, MemoryTable, Sink, SinkContext};
/// use rivulet::{Epoch, OutputMode};
///
/// let table = MemoryTable::new();
/// let mut sink = MemorySink::new(table.clone());
/// sink.open(&SinkContext::new("counts", 0, 1).output_mode(OutputMode::Complete))?;
/// sink.write(("a", 1))?;
/// sink.prepare_commit(Epoch(1))?;
/// sink.write(("a", 2))?;
/// sink.write(("b", 1))?;
/// sink.prepare_commit(Epoch(2))?;
/// assert_eq!(table.rows(), [("a", 2), ("b", 1)]);
/// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
/// ```
pub struct MemoryTable<T> {
    shared: Arc<Shared<T>>,
}

struct Shared<T> {
    inner: Mutex<Inner<T>>,
    /// Signalled when rows change and someone waits.
    changed: Condvar,
}

struct Inner<T> {
    /// The complete-mode partitions (in instance order, `partitions[i]` rows each), then
    /// the appended rows.
    rows: Vec<T>,
    partitions: Vec<usize>,
    /// Threads waiting in [`MemoryTable::wait_for`]: writers signal only when there are
    /// some, so a sink's flush costs no system call when nobody waits.
    waiters: usize,
}

impl<T> Clone for MemoryTable<T> {
    fn clone(&self) -> Self {
        MemoryTable {
            shared: self.shared.clone(),
        }
    }
}

impl<T> fmt::Debug for MemoryTable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTable")
            .field("len", &self.len())
            .finish()
    }
}

impl<T> Default for MemoryTable<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> MemoryTable<T> {
    /// An empty table.
    pub fn new() -> Self {
        MemoryTable {
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner {
                    rows: Vec::new(),
                    partitions: Vec::new(),
                    waiters: 0,
                }),
                changed: Condvar::new(),
            }),
        }
    }

    /// Rows in the table now.
    pub fn len(&self) -> usize {
        self.lock().rows.len()
    }

    /// `true` if the table holds no row.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of the rows in the table now.
    pub fn rows(&self) -> Vec<T>
    where
        T: Clone,
    {
        self.lock().rows.clone()
    }

    /// Runs `f` on the rows without copying them (the sink waits meanwhile, so keep it
    /// short).
    pub fn with_rows<R>(&self, f: impl FnOnce(&[T]) -> R) -> R {
        f(&self.lock().rows)
    }

    /// Takes the rows in the table, leaving it empty. In complete mode the table fills
    /// again at the next epoch end.
    pub fn take(&self) -> Vec<T> {
        let mut inner = self.lock();
        inner.partitions.iter_mut().for_each(|len| *len = 0);
        std::mem::take(&mut inner.rows)
    }

    /// Waits until the table holds at least `rows` rows or `timeout` passes; returns the
    /// length reached.
    pub fn wait_for_len(&self, rows: usize, timeout: Duration) -> usize {
        self.wait_for(|table| table.len() >= rows, timeout);
        self.len()
    }

    /// Waits until `predicate` holds for the rows or `timeout` passes; returns whether it
    /// held. The predicate runs each time the rows change, holding the table (so the sink
    /// waits meanwhile): keep it short, and do not call the table's methods from it (they
    /// would wait for the table forever).
    ///
    /// ```
    /// use rivulet::sink::MemoryTable;
    /// use std::time::Duration;
    ///
    /// let table = MemoryTable::<u32>::new();
    /// assert!(!table.wait_for(|rows| rows.contains(&7), Duration::from_millis(1)));
    /// ```
    pub fn wait_for(&self, mut predicate: impl FnMut(&[T]) -> bool, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut inner = self.lock();
        loop {
            if predicate(&inner.rows) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            inner.waiters += 1;
            inner = self
                .shared
                .changed
                .wait_timeout(inner, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            inner.waiters -= 1;
        }
    }

    /// Appends `rows` (leaving it empty, its capacity kept for reuse).
    fn append(&self, rows: &mut Vec<T>) {
        let mut inner = self.lock();
        inner.rows.append(rows);
        self.changed(inner);
    }

    /// Replaces the partition of `instance` with `rows` (leaving it empty, its capacity
    /// kept for reuse).
    fn replace_partition(&self, instance: usize, rows: &mut Vec<T>) {
        let mut inner = self.lock();
        let inner_ref = &mut *inner;
        if inner_ref.partitions.len() <= instance {
            inner_ref.partitions.resize(instance + 1, 0);
        }
        let start: usize = inner_ref.partitions[..instance].iter().sum();
        let end = (start + inner_ref.partitions[instance]).min(inner_ref.rows.len());
        let start = start.min(end);
        inner_ref.partitions[instance] = rows.len();
        inner_ref.rows.splice(start..end, rows.drain(..));
        self.changed(inner);
    }

    /// Releases the table after a change, waking waiters if there are any.
    fn changed(&self, inner: MutexGuard<'_, Inner<T>>) {
        let wake = inner.waiters > 0;
        drop(inner);
        if wake {
            self.shared.changed.notify_all();
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        // Appends and partition replacements finish or do not start unless a row's `Drop`
        // panics; the bounds in `replace_partition` keep even that case in range. So a
        // poisoned lock is still usable.
        self.shared
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Collects records into a [`MemoryTable`].
///
/// In [`OutputMode::Append`] and [`OutputMode::Update`] (the mode comes from
/// [`Sink::open`]), the sink thread buffers rows locally and moves them into the table
/// once per step of work (one lock per batch, not per record), so rows become visible to
/// readers within microseconds of arriving.
///
/// In [`OutputMode::Complete`], the rows of an epoch are the whole result at its end:
/// the sink keeps them until [`Sink::prepare_commit`] (or [`Sink::close`], for an epoch
/// that did not end) and then replaces its instance's partition of the table with them.
///
/// A reader holding the table (e.g. copying it with [`MemoryTable::rows`]) delays the
/// sink for that long.
pub struct MemorySink<T> {
    table: MemoryTable<T>,
    pending: Vec<T>,
    instance: usize,
    complete: bool,
    /// Complete mode: rows arrived since the partition was last replaced.
    dirty: bool,
}

impl<T> fmt::Debug for MemorySink<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorySink")
            .field("pending", &self.pending.len())
            .field("instance", &self.instance)
            .field("complete", &self.complete)
            .finish_non_exhaustive()
    }
}

impl<T> Clone for MemorySink<T> {
    /// Another instance feeding the same table.
    fn clone(&self) -> Self {
        MemorySink::new(self.table.clone())
    }
}

impl<T> MemorySink<T> {
    /// A sink filling `table`.
    pub fn new(table: MemoryTable<T>) -> Self {
        MemorySink {
            table,
            pending: Vec::new(),
            instance: 0,
            complete: false,
            dirty: false,
        }
    }

    /// The table this sink fills.
    pub fn table(&self) -> MemoryTable<T> {
        self.table.clone()
    }

    fn publish_partition(&mut self) {
        self.table
            .replace_partition(self.instance, &mut self.pending);
        self.dirty = false;
    }
}

impl<T: Send + 'static> Sink<T> for MemorySink<T> {
    fn open(&mut self, context: &SinkContext) -> Result<(), BoxError> {
        self.instance = context.instance;
        self.complete = context.output_mode == OutputMode::Complete;
        Ok(())
    }

    fn begin_epoch(&mut self, _epoch: Epoch, mode: EmitMode) -> Result<(), BoxError> {
        self.complete = mode.output == OutputMode::Complete;
        Ok(())
    }

    #[inline]
    fn write(&mut self, record: T) -> Result<(), BoxError> {
        self.pending.push(record);
        self.dirty = true;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BoxError> {
        if !self.complete && !self.pending.is_empty() {
            self.table.append(&mut self.pending);
        }
        Ok(())
    }

    fn prepare_commit(&mut self, _epoch: Epoch) -> Result<Option<EpochCommit>, BoxError> {
        if self.complete {
            self.publish_partition();
        } else {
            Sink::<T>::flush(self)?;
        }
        Ok(None)
    }

    fn close(&mut self) -> Result<(), BoxError> {
        if self.complete {
            if self.dirty {
                self.publish_partition();
            }
        } else {
            Sink::<T>::flush(self)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    fn complete(instance: usize, parallelism: usize) -> SinkContext {
        SinkContext::new("t", instance, parallelism).output_mode(OutputMode::Complete)
    }

    #[test]
    fn partitions_are_replaced_in_place() {
        let table = MemoryTable::new();
        let mut first = MemorySink::new(table.clone());
        let mut second = first.clone();
        first.open(&complete(0, 2)).unwrap();
        second.open(&complete(1, 2)).unwrap();
        for row in [10, 11, 12] {
            second.write(row).unwrap();
        }
        second.prepare_commit(Epoch(1)).unwrap();
        assert_eq!(table.rows(), [10, 11, 12]);
        first.write(1).unwrap();
        first.prepare_commit(Epoch(1)).unwrap();
        assert_eq!(table.rows(), [1, 10, 11, 12]);
        // Instance 0 grows and instance 1 shrinks: each keeps its place.
        first.write(1).unwrap();
        first.write(2).unwrap();
        first.prepare_commit(Epoch(2)).unwrap();
        second.write(13).unwrap();
        second.prepare_commit(Epoch(2)).unwrap();
        assert_eq!(table.rows(), [1, 2, 13]);
        // An empty epoch empties the partition.
        first.prepare_commit(Epoch(3)).unwrap();
        assert_eq!(table.rows(), [13]);
    }

    #[test]
    fn take_resets_partitions() {
        let table = MemoryTable::new();
        let mut sink = MemorySink::new(table.clone());
        sink.open(&complete(1, 2)).unwrap();
        sink.write(5).unwrap();
        sink.prepare_commit(Epoch(1)).unwrap();
        assert_eq!(table.take(), [5]);
        sink.write(6).unwrap();
        sink.prepare_commit(Epoch(2)).unwrap();
        assert_eq!(table.rows(), [6]);
    }

    #[test]
    fn flush_does_not_publish_a_partial_result() {
        let table = MemoryTable::new();
        let mut sink = MemorySink::new(table.clone());
        sink.open(&complete(0, 1)).unwrap();
        sink.write(1).unwrap();
        sink.flush().unwrap();
        assert!(table.is_empty());
        sink.close().unwrap();
        assert_eq!(table.rows(), [1]);
    }

    #[test]
    fn wait_for_wakes_on_change() {
        let table = MemoryTable::new();
        let mut sink = MemorySink::new(table.clone());
        let reader = {
            let table = table.clone();
            thread::spawn(move || table.wait_for(|rows| rows == [1, 2], Duration::from_secs(10)))
        };
        while table.lock().waiters == 0 {
            thread::yield_now();
        }
        sink.write(1).unwrap();
        sink.write(2).unwrap();
        sink.flush().unwrap();
        assert!(reader.join().unwrap());
        assert_eq!(table.wait_for_len(3, Duration::from_millis(5)), 2);
    }
}

//! A sink that collects records into a table the application can read while the query
//! runs (Spark's `memory` sink).

use super::Sink;
use crate::error::BoxError;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The rows collected by a [`MemorySink`]: a cheap, cloneable handle to read them at any
/// time, from any thread.
///
/// Rows from one sink instance appear in the order they arrived; with parallel sink
/// instances, rows of different instances interleave.
pub struct MemoryTable<T> {
    rows: Arc<Mutex<Vec<T>>>,
}

impl<T> Clone for MemoryTable<T> {
    fn clone(&self) -> Self {
        MemoryTable {
            rows: self.rows.clone(),
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
            rows: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Rows collected so far.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// `true` if no row arrived yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of the rows collected so far.
    pub fn rows(&self) -> Vec<T>
    where
        T: Clone,
    {
        self.lock().clone()
    }

    /// Runs `f` on the rows without copying them (the sink waits meanwhile, so keep it
    /// short).
    pub fn with_rows<R>(&self, f: impl FnOnce(&[T]) -> R) -> R {
        f(&self.lock())
    }

    /// Takes the rows collected so far, leaving the table empty.
    pub fn take(&self) -> Vec<T> {
        std::mem::take(&mut *self.lock())
    }

    /// Waits until the table holds at least `rows` rows or `timeout` passes; returns the
    /// length reached.
    pub fn wait_for_len(&self, rows: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let len = self.len();
            if len >= rows || Instant::now() >= deadline {
                return len;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<T>> {
        // A panic while holding the lock cannot leave the Vec half-updated (append and
        // clone either finish or do not start), so a poisoned lock is still usable.
        self.rows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Collects records into a [`MemoryTable`]. The sink thread buffers rows locally and
/// moves them into the table once per step of work (one lock per batch, not per record),
/// so rows become visible to readers within microseconds of arriving. A reader holding
/// the table (e.g. copying it with [`MemoryTable::rows`]) delays the sink for that long.
pub struct MemorySink<T> {
    table: MemoryTable<T>,
    pending: Vec<T>,
}

impl<T> fmt::Debug for MemorySink<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorySink")
            .field("pending", &self.pending.len())
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
    /// A sink appending to `table`.
    pub fn new(table: MemoryTable<T>) -> Self {
        MemorySink {
            table,
            pending: Vec::new(),
        }
    }

    /// The table this sink fills.
    pub fn table(&self) -> MemoryTable<T> {
        self.table.clone()
    }
}

impl<T: Send + 'static> Sink<T> for MemorySink<T> {
    #[inline]
    fn write(&mut self, record: T) -> Result<(), BoxError> {
        self.pending.push(record);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BoxError> {
        if !self.pending.is_empty() {
            self.table.lock().append(&mut self.pending);
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), BoxError> {
        self.table.lock().append(&mut self.pending);
        Ok(())
    }
}

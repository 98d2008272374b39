//! Single-writer counters: the owning thread adds with a plain load and store (no locked
//! instruction), readers load at any time. Each instance's counters sit on their own cache
//! lines so two operator threads never write the same line.
//!
//! These are statistics, not a synchronisation protocol, so they use `std` atomics
//! directly rather than the loom shim.

use crossbeam::utils::CachePadded;
use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing count with one writer.
#[derive(Debug, Default)]
pub struct Counter(CachePadded<AtomicU64>);

impl Counter {
    /// Adds `n`. Only the owning thread may call this (a load and a store, not an RMW).
    #[inline(always)]
    pub fn add(&self, n: u64) {
        let value = self.0.load(Ordering::Relaxed);
        self.0.store(value.wrapping_add(n), Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Per-instance record counts of one operator.
#[derive(Debug, Default)]
pub struct OperatorMetrics {
    /// Records the operator received.
    pub records_in: Counter,
    /// Records the operator emitted.
    pub records_out: Counter,
}

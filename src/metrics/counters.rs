//! Single-writer counters: the owning thread adds with a plain load and store (no locked
//! instruction), readers load at any time. Each instance's counters sit on their own cache
//! lines so two operator threads never write the same line.
//!
//! These are statistics, not a synchronisation protocol, so they use `std` atomics
//! directly rather than the loom shim.

use crossbeam::utils::CachePadded;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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

    /// Sets the value (a gauge, such as a state size). Only the owning thread may call this.
    #[inline(always)]
    pub fn set(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
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
    /// Counters the operator named itself (through its
    /// [`Context`](crate::operator::Context)).
    pub named: Arc<NamedCounters>,
}

/// Counters an operator instance creates by name as it runs (late rows, malformed rows).
///
/// The owning thread registers a name once (under the lock) and then adds to its
/// [`Counter`] without it; readers take the lock to list them.
#[derive(Debug, Default)]
pub struct NamedCounters {
    counters: Mutex<Vec<(&'static str, Arc<Counter>)>>,
}

impl NamedCounters {
    /// The counter `name`, created at zero if it is new.
    pub fn get_or_add(&self, name: &'static str) -> Arc<Counter> {
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, counter)) = counters.iter().find(|(known, _)| *known == name) {
            return counter.clone();
        }
        let counter = Arc::new(Counter::default());
        counters.push((name, counter.clone()));
        counter
    }

    /// Every counter's name and value, in the order they were created.
    pub fn values(&self) -> Vec<(&'static str, u64)> {
        let counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        counters.iter().map(|(name, c)| (*name, c.get())).collect()
    }
}

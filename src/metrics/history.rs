//! The recent progress of a query: a bounded history that the coordinator appends to
//! and anyone can read, cheaply and from any thread (a metrics endpoint, a dashboard).

use super::progress::StreamingQueryProgress;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// How many progress reports a query keeps by default (Spark's
/// `spark.sql.streaming.numRecentProgressUpdates`).
pub const DEFAULT_RECENT_PROGRESS: usize = 100;

/// The recent progress of one query, oldest first, bounded. Cloning shares it: a clone
/// taken with [`Query::progress_history`](crate::Query::progress_history) keeps reading
/// the query's reports on another thread, and outlives the query.
///
/// Reports are shared (`Arc`), so reading the history copies pointers, not reports.
#[derive(Debug, Clone)]
pub struct ProgressHistory {
    inner: Arc<Mutex<History>>,
}

#[derive(Debug)]
struct History {
    capacity: usize,
    reports: VecDeque<Arc<StreamingQueryProgress>>,
}

impl ProgressHistory {
    /// An empty history keeping at most `capacity` reports (at least one).
    pub fn new(capacity: usize) -> Self {
        ProgressHistory {
            inner: Arc::new(Mutex::new(History {
                capacity: capacity.max(1),
                reports: VecDeque::new(),
            })),
        }
    }

    /// Appends a report, dropping the oldest beyond the capacity.
    pub(crate) fn push(&self, progress: Arc<StreamingQueryProgress>) {
        let mut history = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if history.reports.len() == history.capacity {
            history.reports.pop_front();
        }
        history.reports.push_back(progress);
    }

    /// The newest report, if any.
    pub fn last(&self) -> Option<Arc<StreamingQueryProgress>> {
        let history = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        history.reports.back().cloned()
    }

    /// Every report kept, oldest first.
    pub fn recent(&self) -> Vec<Arc<StreamingQueryProgress>> {
        let history = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        history.reports.iter().cloned().collect()
    }

    /// The reports kept of epochs after `batch_id`, oldest first: what a poller that
    /// saw `batch_id` last has not seen yet.
    pub fn since(&self, batch_id: u64) -> Vec<Arc<StreamingQueryProgress>> {
        let history = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        history
            .reports
            .iter()
            .filter(|report| report.batch_id > batch_id)
            .cloned()
            .collect()
    }

    /// The reports kept, as a JSON array (oldest first).
    pub fn json(&self) -> String {
        let recent = self.recent();
        let reports: Vec<&StreamingQueryProgress> = recent.iter().map(|report| &**report).collect();
        serde_json::to_string(&reports).expect("progress serializes")
    }
}

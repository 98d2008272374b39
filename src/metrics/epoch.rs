//! What each participant (source, operator stage, sink) reports to the checkpoint
//! coordinator as it passes an epoch's marker, for the epoch's progress: its counters,
//! its operator's state, its latency samples, its event times.
//!
//! Counters are reported as running totals, so a lost or late report loses nothing: the
//! next one carries the difference. Latency samples and event-time statistics are reported
//! since the previous report and merged.

use super::latency::LatencyRecorder;
use super::OperatorMetrics;
use hdrhistogram::Histogram;

/// What a stateful operator says about its state at the end of each epoch (Spark's
/// `StateOperatorProgress`), through
/// [`Operator::state_metrics`](crate::operator::Operator::state_metrics).
///
/// `rows_updated` and `rows_removed` are running totals since the operator was created
/// (or restored); progress reports show their growth per epoch. The others are levels.
///
/// ```
/// use rivulet::metrics::StateMetrics;
///
/// let metrics = StateMetrics {
///     rows_total: 3,
///     rows_updated: 10,
///     memory_used_bytes: 3 * 32,
///     ..StateMetrics::default()
/// }
/// .with_custom("slices", 2);
/// assert_eq!(metrics.custom, [("slices", 2)]);
/// ```
/// Build it with `..StateMetrics::default()` for the fields an operator does not track,
/// so it keeps compiling when fields are added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateMetrics {
    /// Rows (keys, windows × keys, sessions) held now.
    pub rows_total: u64,
    /// Row writes since the operator started: each record that changed a row counts once.
    /// (Spark's `numRowsUpdated` counts distinct keys written per batch, since a batch is
    /// aggregated before it is written; rivulet writes per record.)
    pub rows_updated: u64,
    /// Rows removed (evicted windows, expired keys) since the operator started.
    pub rows_removed: u64,
    /// An estimate of the memory the state takes: the tables' own allocations, not heap
    /// data owned by keys and values.
    pub memory_used_bytes: u64,
    /// Operator-specific figures (levels), shown under `customMetrics`.
    pub custom: Vec<(&'static str, u64)>,
}

impl StateMetrics {
    /// Adds a custom figure.
    pub fn with_custom(mut self, name: &'static str, value: u64) -> Self {
        self.custom.push((name, value));
        self
    }

    /// The memory estimate of a hash table with `capacity` slots of `(K, V)`: each slot
    /// and its control byte.
    pub fn table_bytes<K, V>(capacity: usize) -> u64 {
        (capacity * (std::mem::size_of::<(K, V)>() + 1)) as u64
    }
}

/// Event times seen by a watermark generator since its last report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EventTimeStats {
    pub(crate) min: i64,
    pub(crate) max: i64,
    pub(crate) sum: i128,
    pub(crate) count: u64,
}

impl Default for EventTimeStats {
    fn default() -> Self {
        EventTimeStats {
            min: i64::MAX,
            max: i64::MIN,
            sum: 0,
            count: 0,
        }
    }
}

impl EventTimeStats {
    /// Counts one event time (µs).
    #[inline(always)]
    pub(crate) fn observe(&mut self, time: i64) {
        self.min = self.min.min(time);
        self.max = self.max.max(time);
        self.sum += i128::from(time);
        self.count += 1;
    }

    /// Adds `other`'s times to these.
    pub(crate) fn merge(&mut self, other: &EventTimeStats) {
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
        self.count += other.count;
    }
}

/// One participant's report for the epoch whose marker it just passed (or, at end of
/// stream, for the epoch its last records belong to).
#[derive(Debug, Default)]
pub(crate) struct EpochMetrics {
    /// Records received so far (running total).
    pub(crate) records_in: u64,
    /// Records emitted so far (running total).
    pub(crate) records_out: u64,
    /// The operator's named counters (running totals).
    pub(crate) counters: Vec<(&'static str, u64)>,
    /// What a stateful operator says about its state.
    pub(crate) state: Option<StateMetrics>,
    /// Latency samples since the last report.
    pub(crate) latency: Option<Box<Histogram<u64>>>,
    /// Event times since the last report (watermark generators).
    pub(crate) event_time: Option<EventTimeStats>,
    /// The watermark the generator has sent (µs), if any.
    pub(crate) watermark: Option<i64>,
}

impl EpochMetrics {
    /// The running totals of `metrics` and the samples `latency` holds.
    pub(crate) fn of(metrics: &OperatorMetrics, latency: &mut LatencyRecorder) -> Self {
        EpochMetrics {
            records_in: metrics.records_in.get(),
            records_out: metrics.records_out.get(),
            counters: metrics.named.values(),
            latency: latency.take(),
            ..EpochMetrics::default()
        }
    }
}

//! Latency percentiles from in-band latency markers, recorded per thread into HDR
//! histograms and merged off the hot path.
//!
//! # How latency is measured
//!
//! Sources *sample*: every `N`th record a source hands to the engine (one in
//! [`DEFAULT_SAMPLE_EVERY`] unless [`QueryBuilder::latency_sampling`] says otherwise) is
//! followed by a latency marker ([`Event::Latency`]) stamped with the hand-off time. The
//! marker travels behind that record, in order, through every ring, exchange and fan-in
//! (as Flink's latency markers do), and every operator stage and sink it reaches records
//! `now - stamp` into a histogram of its own thread, without sharing: the time the record
//! took from its source to that operator. At the sink that is the end-to-end latency.
//!
//! Why markers rather than stamping records: records are the user's types, and carrying a
//! timestamp with each would widen every slot of every ring; a marker costs the hot path
//! one counter decrement per record at the source, and one clock read per sampled record
//! at each stage. Because the marker follows its record and each thread handles its
//! events in order, it reaches an operator just after that operator handled the record
//! (and pushed its output), so it sees the record's queueing and the work before it, like
//! the record itself. What a marker does not see is time a record spends *inside* a
//! stateful operator before its result goes out (a micro-batch aggregate emits at the
//! batch end): it measures the data path, not the emission delay.
//!
//! Each stage hands its histogram to the checkpoint coordinator with its epoch report
//! (once per epoch); the coordinator merges them per operator and end to end, per epoch
//! and cumulatively ([`LatencyProgress`](crate::metrics::progress::LatencyProgress)).
//! Latency is measured only in queries with epochs (a trigger or checkpointing): without
//! them nobody collects the histograms, so sources do not sample.
//!
//! [`Event::Latency`]: crate::event::Event::Latency
//! [`QueryBuilder::latency_sampling`]: crate::QueryBuilder::latency_sampling

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;
use std::time::Instant;

/// One record in this many is followed by a latency marker, by default.
pub const DEFAULT_SAMPLE_EVERY: u32 = 1024;

/// The largest latency histograms hold: one hour, in nanoseconds. Longer ones are
/// recorded as this.
pub const MAX_LATENCY_NANOS: u64 = 3_600_000_000_000;

/// Significant decimal digits of the histograms (1% resolution).
const SIGNIFICANT_DIGITS: u8 = 2;

/// The base of the latency clock: the first time any thread asked for it.
static BASE: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds on the process's latency clock (monotonic, shared by every thread).
#[inline]
pub fn now_nanos() -> u64 {
    let base = *BASE.get_or_init(Instant::now);
    Instant::now().saturating_duration_since(base).as_nanos() as u64
}

/// An empty latency histogram: nanoseconds from 1 to [`MAX_LATENCY_NANOS`], two
/// significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NANOS, SIGNIFICANT_DIGITS)
        .expect("valid histogram bounds")
}

/// Which records a source follows with a latency marker: one in `every`, by a counter
/// (no clock read for the others).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LatencySampler {
    every: u32,
    left: u32,
}

impl LatencySampler {
    /// A sampler marking one record in `every`; 0 never marks.
    pub(crate) fn new(every: u32) -> Self {
        LatencySampler {
            every: if every == 0 { u32::MAX } else { every },
            left: if every == 0 { u32::MAX } else { every },
        }
    }

    /// Whether the record just handed over is to be followed by a marker.
    #[inline(always)]
    pub(crate) fn tick(&mut self) -> bool {
        self.left -= 1;
        if self.left == 0 {
            self.left = self.every;
            return self.every != u32::MAX;
        }
        false
    }
}

/// A stage's latency samples since its last epoch report: owned by the stage's thread,
/// handed over whole at the report.
///
/// A stage reads the clock when a marker arrives ([`arrived`](Self::arrived)), passes the
/// marker on, and only then records the sample ([`record`](Self::record)), so the
/// histogram's work is not on the marker's path downstream. The histogram for the next
/// epoch is allocated at the report (an epoch marker's path), not by the first latency
/// marker after it.
#[derive(Debug, Default)]
pub(crate) struct LatencyRecorder {
    histogram: Option<Box<Histogram<u64>>>,
    spare: Option<Box<Histogram<u64>>>,
}

impl LatencyRecorder {
    /// The latency of a marker stamped `stamp` that arrives now, in nanoseconds, clamped
    /// into the histograms' bounds.
    #[inline]
    pub(crate) fn arrived(stamp: u64) -> u64 {
        now_nanos()
            .saturating_sub(stamp)
            .clamp(1, MAX_LATENCY_NANOS)
    }

    /// Records a latency that [`arrived`](Self::arrived) measured.
    #[cold]
    #[inline(never)]
    pub(crate) fn record(&mut self, latency: u64) {
        let spare = &mut self.spare;
        let histogram = self
            .histogram
            .get_or_insert_with(|| spare.take().unwrap_or_else(|| Box::new(new_histogram())));
        // `arrived` already clamps; clamped here too so that no caller's value can fall
        // outside the histogram's bounds (and be lost by `record`'s error).
        let _ = histogram.record(latency.clamp(1, MAX_LATENCY_NANOS));
    }

    /// The samples since the last call, if any. A stage that had samples gets a fresh
    /// histogram ready for the next epoch.
    pub(crate) fn take(&mut self) -> Option<Box<Histogram<u64>>> {
        let taken = self.histogram.take();
        if taken.is_some() && self.spare.is_none() {
            self.spare = Some(Box::new(new_histogram()));
        }
        taken
    }
}

/// Percentiles of a latency distribution, in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Percentiles {
    /// Samples (latency markers) the percentiles are computed from.
    pub count: u64,
    /// Median, µs.
    pub p50: f64,
    /// 90th percentile, µs.
    pub p90: f64,
    /// 99th percentile, µs.
    pub p99: f64,
    /// 99.9th percentile, µs.
    pub p999: f64,
    /// Largest sample, µs.
    pub max: f64,
}

impl Percentiles {
    /// The percentiles of `histogram` (nanoseconds), in microseconds; all zero if empty.
    pub fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Percentiles::default();
        }
        let micros = |nanos: u64| nanos as f64 / 1_000.0;
        Percentiles {
            count: histogram.len(),
            p50: micros(histogram.value_at_quantile(0.50)),
            p90: micros(histogram.value_at_quantile(0.90)),
            p99: micros(histogram.value_at_quantile(0.99)),
            p999: micros(histogram.value_at_quantile(0.999)),
            max: micros(histogram.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampler_marks_one_record_in_n() {
        for every in [1u32, 2, 7, 1024] {
            let mut sampler = LatencySampler::new(every);
            let marked: Vec<usize> = (1..=5000).filter(|_| sampler.tick()).collect();
            let expected: Vec<usize> = (1..=5000).filter(|i| i % every as usize == 0).collect();
            assert_eq!(marked, expected, "every {every}");
        }
        let mut off = LatencySampler::new(0);
        assert!((0..100_000).all(|_| !off.tick()));
    }

    #[test]
    fn percentiles_match_a_sorted_reference_within_resolution() {
        // 1..=10_000 µs in nanoseconds: the q-quantile is q * 10_000 µs.
        let mut histogram = new_histogram();
        let mut values: Vec<u64> = (1..=10_000u64).map(|us| us * 1_000).collect();
        for value in &values {
            histogram.record(*value).unwrap();
        }
        values.sort_unstable();
        let reference = |q: f64| values[((q * values.len() as f64).ceil() as usize).max(1) - 1];
        let p = Percentiles::of(&histogram);
        assert_eq!(p.count, 10_000);
        for (got, q) in [(p.p50, 0.5), (p.p90, 0.9), (p.p99, 0.99), (p.p999, 0.999)] {
            let want = reference(q) as f64 / 1_000.0;
            assert!((got - want).abs() / want < 0.01, "q {q}: {got} vs {want}");
        }
        assert!((p.max - 10_000.0).abs() / 10_000.0 < 0.01);
    }

    #[test]
    fn recorder_hands_over_its_samples_once() {
        let mut recorder = LatencyRecorder::default();
        assert!(recorder.take().is_none());
        let stamp = now_nanos();
        recorder.record(LatencyRecorder::arrived(stamp));
        recorder.record(LatencyRecorder::arrived(stamp));
        let histogram = recorder.take().expect("two samples");
        assert_eq!(histogram.len(), 2);
        assert!(recorder.take().is_none());
        // The next epoch's samples go into the spare, and are handed over alone.
        recorder.record(5);
        assert_eq!(recorder.take().expect("one sample").len(), 1);
    }
}

//! Watermarks: how a stream that carries event time says how far event time has come.
//!
//! [`Stream::with_event_time`](crate::Stream::with_event_time) names a record's event
//! time and [`with_watermark`](crate::stream::EventTimeStream::with_watermark) (Spark's
//! `withWatermark`) makes the stream carry watermarks from there on: the largest event
//! time seen minus a delay, never moving backwards, sent in-band
//! ([`Event::Watermark`](crate::Event::Watermark)) so it stays in order with the records.
//!
//! When the watermark moves depends on the epoch's [execution mode](crate::ExecutionMode):
//!
//! * **Micro-batch** (Spark's rule): a batch uses the watermark computed at the end of the
//!   batch before it, from the largest event time over *all* instances of the stream
//!   (with several watermarked streams in the query, the smallest of their watermarks:
//!   Spark's default policy), and it does not move during the batch: every operator
//!   downstream of a generator applies it before the batch's first record. When the
//!   watermark would move but no source has data, a batch without data still runs, so
//!   that windows it closes are emitted (Spark's `noDataMicroBatches`).
//! * **Continuous**: each instance's watermark follows the records it sees, sent every
//!   [`emit_every_records`](WatermarkConfig::emit_every_records) records or within
//!   [`emit_interval`](WatermarkConfig::emit_interval) of moving, whichever comes first —
//!   not per record, because a control event flushes every edge of an exchange
//!   downstream. Operators after an exchange or a union take the minimum over their
//!   inputs. An instance that sees no record for
//!   [`idle_timeout`](WatermarkConfig::idle_timeout) is marked idle and stops holding
//!   that minimum back until its next record.
//!
//! The watermark is part of the checkpoint: after a restart the stream starts from the
//! restored watermark, so records that were late before a crash are late after it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

/// How a stream's watermark is generated (see the [module docs](self)).
///
/// ```
/// use rivulet::time::WatermarkConfig;
/// use std::time::Duration;
///
/// let config = WatermarkConfig::new(Duration::from_secs(600)) // Spark: "10 minutes"
///     .emit_every_records(4096)
///     .emit_interval(Duration::from_millis(1))
///     .idle_timeout(Duration::from_secs(5));
/// assert_eq!(config.delay(), Duration::from_secs(600));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatermarkConfig {
    delay: Duration,
    every_records: u32,
    interval: Duration,
    idle_timeout: Option<Duration>,
}

impl WatermarkConfig {
    /// Records up to `delay` older than the newest event time seen are still on time.
    /// Continuous epochs send the watermark every 1,024 records or within 1 ms of moving;
    /// no idle timeout.
    pub fn new(delay: Duration) -> Self {
        WatermarkConfig {
            delay,
            every_records: 1024,
            interval: Duration::from_millis(1),
            idle_timeout: None,
        }
    }

    /// In continuous epochs, send the watermark (if it moved) after this many records.
    /// At least 1.
    pub fn emit_every_records(mut self, records: u32) -> Self {
        self.every_records = records.max(1);
        self
    }

    /// In continuous epochs, send a watermark that moved within this time even if fewer
    /// records than [`emit_every_records`](Self::emit_every_records) arrived.
    pub fn emit_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// In continuous epochs, an instance without records for this long is marked idle:
    /// operators with several inputs leave it out of their watermark until it produces
    /// again.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// The delay.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    pub(crate) fn delay_micros(&self) -> i64 {
        i64::try_from(self.delay.as_micros()).unwrap_or(i64::MAX)
    }

    pub(crate) fn every_records(&self) -> u32 {
        self.every_records
    }

    pub(crate) fn interval_micros(&self) -> i64 {
        i64::try_from(self.interval.as_micros()).unwrap_or(i64::MAX)
    }

    pub(crate) fn idle_timeout_micros(&self) -> Option<i64> {
        self.idle_timeout
            .map(|timeout| i64::try_from(timeout.as_micros()).unwrap_or(i64::MAX))
    }
}

/// `max_event_time − delay`, or `i64::MIN` before any record.
pub(crate) fn watermark_of(max_event_time: i64, delay: i64) -> i64 {
    if max_event_time == i64::MIN {
        i64::MIN
    } else {
        max_event_time.saturating_sub(delay)
    }
}

/// What the watermark generators of a query with epochs report at each epoch marker: the
/// largest event time each instance has seen. A micro-batch takes its watermark from
/// them, as Spark does: per generator, the largest event time over all its instances
/// up to the end of the batch before, minus its delay; over several generators (a union
/// or join of watermarked streams), the smallest of those (Spark's default
/// `multipleWatermarkPolicy`, `min`). Every operator downstream of a generator applies
/// that one watermark from the first event of the batch on, whatever order its inputs
/// deliver in. The coordinator asks whether a batch without data would move it.
///
/// Reports reach the board before the instance acknowledges the epoch, and the next
/// micro-batch is released only once the epoch is complete, so every reader sees the
/// same value during a batch.
#[derive(Debug, Default)]
pub(crate) struct WatermarkBoard {
    state: Mutex<BoardState>,
}

#[derive(Debug)]
struct BoardState {
    generators: BTreeMap<usize, GeneratorReports>,
    /// The watermark the latest micro-batch started with.
    applied: i64,
}

impl Default for BoardState {
    fn default() -> Self {
        BoardState {
            generators: BTreeMap::new(),
            applied: i64::MIN,
        }
    }
}

#[derive(Debug)]
struct GeneratorReports {
    delay: i64,
    /// Per instance, its latest reports `(epoch, largest event time so far)`, oldest
    /// first.
    instances: Vec<VecDeque<(u64, i64)>>,
}

/// The epoch a generator reports its final largest event time under, at end of stream:
/// the watermark a batch after every epoch would start with.
pub(crate) const FINISHED: u64 = u64::MAX;

/// Reports kept per instance: a reader is never more than an epoch or two behind.
const REPORTS_KEPT: usize = 8;

impl WatermarkBoard {
    /// Instance `instance` (of `instances`) of generator `generator` had seen event times
    /// up to `max` by the end of `epoch`.
    pub(crate) fn report(
        &self,
        generator: usize,
        (instance, instances): (usize, usize),
        delay: i64,
        epoch: u64,
        max: i64,
    ) {
        let mut state = self.state.lock().unwrap();
        let reports = state
            .generators
            .entry(generator)
            .or_insert_with(|| GeneratorReports {
                delay,
                instances: vec![VecDeque::new(); instances],
            });
        if let Some(history) = reports.instances.get_mut(instance) {
            if history.back().is_some_and(|(last, _)| *last >= epoch) {
                return;
            }
            history.push_back((epoch, max));
            if history.len() > REPORTS_KEPT {
                history.pop_front();
            }
        }
    }

    /// The watermark of a micro-batch that follows `epoch` (`i64::MIN` without
    /// generators or records).
    pub(crate) fn batch_watermark(&self, epoch: u64) -> i64 {
        self.state.lock().unwrap().batch_watermark(epoch)
    }

    /// A micro-batch started with `watermark`.
    pub(crate) fn started_batch(&self, watermark: i64) {
        let mut state = self.state.lock().unwrap();
        state.applied = state.applied.max(watermark);
    }

    /// Whether a micro-batch after `epoch` would start with a later watermark than the
    /// latest one did: then it runs even without data.
    pub(crate) fn would_advance(&self, epoch: u64) -> bool {
        let state = self.state.lock().unwrap();
        !state.generators.is_empty() && state.batch_watermark(epoch) > state.applied
    }
}

impl BoardState {
    fn batch_watermark(&self, epoch: u64) -> i64 {
        self.generators
            .values()
            .map(|reports| reports.watermark_after(epoch))
            .min()
            .unwrap_or(i64::MIN)
    }
}

impl GeneratorReports {
    fn watermark_after(&self, epoch: u64) -> i64 {
        let max = self
            .instances
            .iter()
            .filter_map(|history| {
                history
                    .iter()
                    .rev()
                    .find(|(reported, _)| *reported <= epoch)
                    .map(|(_, max)| *max)
            })
            .max()
            .unwrap_or(i64::MIN);
        watermark_of(max, self.delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_takes_the_largest_event_time_of_every_instance_before_it() {
        let board = WatermarkBoard::default();
        board.report(7, (0, 2), 10, 1, 100);
        board.report(7, (1, 2), 10, 1, 250);
        assert_eq!(board.batch_watermark(1), 240);
        // Instance 1 already ran epoch 2: a reader of epoch 1 still sees epoch 1.
        board.report(7, (1, 2), 10, 2, 900);
        assert_eq!(board.batch_watermark(1), 240);
        assert_eq!(board.batch_watermark(2), 890);
        assert_eq!(board.batch_watermark(0), i64::MIN);
    }

    #[test]
    fn several_generators_hold_each_other_back() {
        let board = WatermarkBoard::default();
        board.report(1, (0, 1), 10, 1, 500);
        board.report(2, (0, 1), 100, 1, 400);
        assert_eq!(board.batch_watermark(1), 300);
        board.report(2, (0, 1), 100, 2, 1000);
        board.report(1, (0, 1), 10, 2, 600);
        assert_eq!(board.batch_watermark(2), 590);
    }

    #[test]
    fn a_batch_without_data_runs_only_while_the_watermark_would_move() {
        let board = WatermarkBoard::default();
        assert!(!board.would_advance(3));
        board.report(1, (0, 1), 5, 3, 50);
        assert!(board.would_advance(3));
        board.started_batch(board.batch_watermark(3));
        assert!(!board.would_advance(3));
        board.report(1, (0, 1), 5, 4, 50);
        assert!(
            !board.would_advance(4),
            "no new event time: nothing to close"
        );
        board.report(1, (0, 1), 5, 5, 51);
        assert!(board.would_advance(5));
    }

    #[test]
    fn no_records_means_no_watermark() {
        assert_eq!(watermark_of(i64::MIN, 10), i64::MIN);
        assert_eq!(watermark_of(i64::MIN + 3, 10), i64::MIN);
        assert_eq!(watermark_of(100, 10), 90);
    }
}

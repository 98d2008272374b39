//! Which watermark judges records late, and which one closes windows, in each epoch mode:
//! [`Lateness`], shared by the window operators.
//!
//! # Micro-batch epochs: Spark 3.4+ exactly
//!
//! Since Spark 3.4 (`spark.sql.streaming.statefulOperator.allowMultiple`, on by default)
//! every stateful operator gets two watermarks in a batch. In Spark 4's
//! `WatermarkPropagator` (`PropagateWatermarkSimulator`),
//! `getInputWatermarkForLateEvents(batchId)` is `getInputWatermarkForEviction(batchId - 1)`
//! ("We use watermark for previous microbatch to determine late events"), and the eviction
//! watermark is the batch's own (`batchWatermarkMs`); Spark 3.4 and 3.5 said the same in
//! `IncrementalExecution` (`eventTimeWatermarkForLateEvents` from
//! `prevOffsetSeqMetadata`, `eventTimeWatermarkForEviction` from `offsetSeqMetadata`).
//! `StateStoreSaveExec` filters the batch's rows with the first, puts them into the state,
//! and only then evicts with the second (append: emitting what it evicts; update: after
//! emitting every row it put); `SessionWindowStateStoreRestoreExec` filters late rows
//! with the first and `SessionWindowStateStoreSaveExec` evicts with the second.
//!
//! In rivulet a batch's watermark is what `ctx.watermark()` returns during the batch (every
//! stage downstream of a generator applies it at the batch's first event). So in a
//! micro-batch epoch:
//!
//! * the *late bound* is the watermark the previous epoch ended with, remembered at each
//!   marker ([`end_epoch`](Lateness::end_epoch)) and checkpointed with the operator's
//!   state, so a restored operator judges the replayed batch as the original run did;
//! * windows close (are emitted in append mode, evicted) at the batch's marker, with the
//!   batch's own watermark, after the batch's records were added.
//!
//! With `wm(N)` the watermark batch `N` runs under, a record whose window ends in
//! `(wm(N − 1), wm(N)]` thus still counts in batch `N` and is emitted with its window at
//! the end of batch `N`; in batch `N + 1` it is late.
//!
//! # Continuous epochs: rivulet's own model
//!
//! Spark's continuous processing has no stateful operators, so there is nothing to follow.
//! A continuous epoch judges records by the current watermark and closes windows as the
//! watermark arrives: the late bound is the latest watermark seen.

use crate::event::Timestamp;
use crate::trigger::ExecutionMode;
use serde::{Deserialize, Serialize};

/// The watermarks a window operator judges and closes by: the latest one seen and the one
/// the last epoch ended with. Part of the operator's snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Lateness {
    /// The latest watermark seen (`i64::MIN` before the first).
    latest: i64,
    /// The watermark the last epoch ended with (`i64::MIN` before the first marker).
    previous: i64,
}

impl Default for Lateness {
    fn default() -> Self {
        Self::new()
    }
}

impl Lateness {
    /// No watermark seen, no epoch ended.
    pub(crate) const fn new() -> Self {
        Lateness {
            latest: i64::MIN,
            previous: i64::MIN,
        }
    }

    /// A watermark arrived; returns whether it is later than any seen before.
    pub(crate) fn observe(&mut self, watermark: Timestamp) -> bool {
        let moved = watermark.0 > self.latest;
        self.latest = self.latest.max(watermark.0);
        moved
    }

    /// The late bound of a record in an epoch running in `execution`: a (record, window)
    /// pair is late when `window.end <= bound`. Continuous: the latest watermark;
    /// micro-batch: the one the previous epoch ended with (Spark's
    /// `eventTimeWatermarkForLateEvents`).
    pub(crate) fn bound(&self, execution: ExecutionMode) -> i64 {
        match execution {
            ExecutionMode::Continuous => self.latest,
            ExecutionMode::MicroBatch => self.previous,
        }
    }

    /// Whether windows close as the watermark arrives (continuous), rather than at the
    /// epoch's marker (micro-batch: Spark evicts at the end of the batch).
    pub(crate) fn closes_on_watermark(execution: ExecutionMode) -> bool {
        execution == ExecutionMode::Continuous
    }

    /// An epoch ends (its marker) under `watermark` (`ctx.watermark()`): returns the
    /// watermark to close windows with (Spark's `eventTimeWatermarkForEviction`), which the
    /// next micro-batch then judges records by.
    pub(crate) fn end_epoch(&mut self, watermark: Timestamp) -> i64 {
        self.observe(watermark);
        self.previous = self.latest;
        self.latest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTINUOUS: ExecutionMode = ExecutionMode::Continuous;
    const MICRO_BATCH: ExecutionMode = ExecutionMode::MicroBatch;

    #[test]
    fn a_micro_batch_judges_by_the_watermark_the_previous_epoch_ended_with() {
        let mut lateness = Lateness::new();
        assert_eq!(lateness.bound(MICRO_BATCH), i64::MIN);
        // Batch 1 runs under watermark 10; its records are judged by nothing yet.
        assert!(lateness.observe(Timestamp(10)));
        assert_eq!(lateness.bound(MICRO_BATCH), i64::MIN);
        assert_eq!(lateness.bound(CONTINUOUS), 10);
        assert_eq!(lateness.end_epoch(Timestamp(10)), 10);
        // Batch 2 runs under 25 and judges by 10; it closes windows with 25.
        assert!(lateness.observe(Timestamp(25)));
        assert!(!lateness.observe(Timestamp(20)), "watermarks never go back");
        assert_eq!(lateness.bound(MICRO_BATCH), 10);
        assert_eq!(lateness.bound(CONTINUOUS), 25);
        assert_eq!(lateness.end_epoch(Timestamp(25)), 25);
        assert_eq!(lateness.bound(MICRO_BATCH), 25);
    }

    #[test]
    fn a_marker_without_a_watermark_event_still_counts() {
        // A batch without data: its watermark is only known from the context at the marker.
        let mut lateness = Lateness::new();
        assert_eq!(lateness.end_epoch(Timestamp(7)), 7);
        assert_eq!(lateness.bound(CONTINUOUS), 7);
        assert_eq!(lateness.bound(MICRO_BATCH), 7);
        // A smaller context watermark (a restored stage before its first event) changes
        // nothing.
        assert_eq!(lateness.end_epoch(Timestamp::MIN), 7);
        assert_eq!(lateness.bound(MICRO_BATCH), 7);
        assert!(Lateness::closes_on_watermark(CONTINUOUS));
        assert!(!Lateness::closes_on_watermark(MICRO_BATCH));
    }
}

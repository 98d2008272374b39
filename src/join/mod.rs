//! Stream–stream joins with Spark Structured Streaming's semantics.
//!
//! Two keyed streams join on their key ([`KeyedStream::join`](crate::KeyedStream::join))
//! and, usually, on an event-time condition between the two rows:
//!
//! * a **time range**, [`TimeRange`]: `left.time BETWEEN right.time + lower AND
//!   right.time + upper` ([`within`](crate::stream::EventTimeJoin::within));
//! * **equal time windows**: both rows in the same tumbling window
//!   ([`within_window`](crate::stream::EventTimeJoin::within_window), Spark's
//!   `leftTimeWindow = rightTimeWindow`).
//!
//! Join types: inner, left outer, right outer, full outer and left semi.
//!
//! ```
//! use rivulet::join::TimeRange;
//! use rivulet::{Query, Timestamp};
//! use std::time::Duration;
//!
//! let sec = |s: i64| Timestamp(s * 1_000_000);
//! // (ad, time) impressions and clicks; a click counts within 10 s after its impression.
//! let impressions = [(1u32, sec(0)), (2, sec(1)), (3, sec(2)), (5, sec(39)), (4, sec(40))];
//! let clicks = [(1u32, sec(5)), (2, sec(30)), (4, sec(41))];
//!
//! let mut query = Query::builder();
//! let impressions = query
//!     .from_iter("impressions", impressions)
//!     .with_event_time(|i| i.1)
//!     .with_watermark(Duration::from_secs(2));
//! let clicks = query
//!     .from_iter("clicks", clicks)
//!     .with_event_time(|c| c.1)
//!     .with_watermark(Duration::from_secs(3));
//! let joined = impressions
//!     .key_by(|i| i.0)
//!     .join(clicks.key_by(|c| c.0))
//!     .event_time(|i| i.1, |c| c.1)
//!     // impression.time BETWEEN click.time − 10 s AND click.time
//!     .within(TimeRange::new(Duration::from_secs(10), Duration::ZERO))
//!     .left_outer(|ad, _impression, click| (*ad, click.is_some()))
//!     .to_memory("joined");
//! query.start()?.await_termination()?;
//!
//! let mut rows = joined.rows();
//! rows.sort();
//! // Ads 1 and 4 were clicked in time, ad 2 too late, ad 3 never. Ad 5's impression is
//! // still waiting at the end, so it is not emitted: the final watermark
//! // (min(40 − 2, 41 − 3) = 38 s) does not rule out a click until 49 s.
//! assert_eq!(rows, [(1, true), (2, false), (3, false), (4, true)]);
//! # Ok::<(), rivulet::Error>(())
//! ```
//!
//! # Semantics (Spark's, and where rivulet differs)
//!
//! The join is a symmetric hash join (Spark's `StreamingSymmetricHashJoinExec`): each side
//! keeps its rows per key in event-time order; a new row is joined with the other side's
//! kept rows of its key that the condition allows, then kept itself. Every pair of
//! matching rows is thus emitted once, whichever came first, as a batch join of the same
//! rows would emit it.
//!
//! * **The watermark** of the join is the minimum of both inputs' (Spark's global
//!   watermark with the default `multipleWatermarkPolicy`); see
//!   [`time::watermark`](crate::time::watermark) for how it moves in each trigger mode.
//! * **Late rows.** A row whose event time is at or before the late bound is dropped
//!   before it joins, and counted as `rows_dropped_by_watermark` (Spark's
//!   `numRowsDroppedByWatermark`); an outer join does not emit it either (Spark drops it
//!   the same way). In a micro-batch the late bound is the previous batch's watermark
//!   (Spark 3.4+'s `eventTimeWatermarkForLateEvents`); in a continuous epoch it is the
//!   current watermark.
//! * **State eviction** (Spark's *state watermark*): with watermark `W`, every row still
//!   to come is later than `W`, so a row of one side whose condition allows only other-side
//!   times up to `W` can never match again and leaves the state. For a range
//!   `left BETWEEN right + lower AND right + upper` that is a left row at or before
//!   `W + lower` and a right row at or before `W − upper`; for equal windows, a row whose
//!   window ends at or before `W + 1`. In a micro-batch the batch's own watermark evicts at
//!   the end of the batch, after its rows were joined (Spark's eviction watermark); in a
//!   continuous epoch each watermark evicts as it arrives, and a new row that can already
//!   match nothing still to come is joined but not kept.
//! * **Outer joins** emit a row that never matched, with `None` for the other side, when
//!   it is evicted: exactly once, as soon as the watermark says no match can come (Spark
//!   emits it in the batch whose watermark evicts it). At the end of a finite input the
//!   final watermark (`max event time − delay`, the minimum over both inputs) evicts what
//!   it covers; rows it does not cover stay in the state and are not emitted (Spark does
//!   not advance the watermark to the end of time either). An input that has ended no
//!   longer holds the join's watermark back (as at any multi-input operator in rivulet: no
//!   row of it can come any more), so from then on the watermark follows the other input
//!   alone. Spark's streaming sources do not end, so it has no such case.
//! * **Left semi joins** emit a left row once, at its first match.
//! * **What is refused** (by `start()`, as Spark's analyzer refuses it): outer and semi
//!   joins without a time condition, or without watermarks on both inputs. rivulet needs
//!   both inputs watermarked where Spark needs only the nullable side's: a two-input
//!   operator's watermark is the minimum of its inputs', so an input without one holds it
//!   back for good. Inner joins need neither: their state is then unbounded (as in Spark).
//!   Sliding windows are refused for window equality.
//! * **Output modes.** Join rows never change once emitted. Spark allows stream–stream
//!   joins only in append mode; rivulet also runs them in update mode (its default), which
//!   for a join emits exactly the same rows.
//!
//! # State and progress
//!
//! Each instance reports the rows it keeps (both sides) as the gauge `state_rows`
//! ([`STATE_ROWS`], Spark's `numRowsTotal`) in
//! [`OperatorProgress::counters`](crate::query::OperatorProgress::counters), refreshed at
//! every watermark and epoch and every 1024 rows kept. The state is checkpointed at every
//! epoch and restored after a crash (keys and records are serde types).

pub(crate) mod buffer;
pub(crate) mod condition;
pub(crate) mod operator;
pub(crate) mod output;

pub use condition::{TimeRange, TimeRangeError};

/// The gauge of rows a join instance keeps, both sides together (Spark's
/// `numRowsTotal`).
pub const STATE_ROWS: &str = "state_rows";

#[cfg(test)]
mod tests;

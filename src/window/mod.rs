//! Event-time windows: the [`Window`] a result row belongs to, how records are assigned
//! to tumbling and sliding windows ([`TimeWindows`]) with Spark's alignment, and session
//! windows ([`SessionWindows`]).
//!
//! Windows start at multiples of the slide from the Unix epoch, shifted by an optional
//! start offset, and hold `[start, end)`: an event exactly at a window's start belongs to
//! it, one exactly at its end to the next (Spark's `window(col, length, slide, start)`).
//! A session (Spark's `session_window(col, gap)`) starts with a record at `t` as
//! `[t, t + gap)` and grows while records of its key touch it.
//!
//! A [`WindowSpec`] builds the aggregate operator of its windows: for [`TimeWindows`]
//! that is [`TimeWindowAggregate`], which aggregates per slice of `gcd(length, slide)`
//! and merges slices when it emits a window; for [`SessionWindows`], a session aggregate
//! that merges sessions as records bridge them. Their docs give the output-mode
//! semantics. Streams use them through
//! [`KeyedStream::window`](crate::KeyedStream::window) and
//! [`Stream::window`](crate::Stream::window).
//!
//! # Late records and closing windows
//!
//! Both operators follow the same rules (a (record, window) pair is late when
//! `window.end <= bound`; for sessions, the record's own `[t, t + gap)`):
//!
//! * **micro-batch epochs, as Spark 3.4+**: the bound is the watermark of the *previous*
//!   batch (Spark's `eventTimeWatermarkForLateEvents`), and windows close (are emitted in
//!   append mode, evicted) at the end of the batch with its own watermark
//!   (`eventTimeWatermarkForEviction`), after its records were added; update mode emits
//!   every window the batch changed, those about to close included;
//! * **continuous epochs, rivulet's own model** (Spark's continuous processing has no
//!   stateful operators): the bound is the current watermark, and windows close as it
//!   arrives.
//!
//! Late records are counted and set aside on the operator's side output
//! ([`WindowedStream::late_records`](crate::stream::WindowedStream::late_records)); in
//! complete mode nothing is late.

pub(crate) mod lateness;
mod sliced;

pub use sliced::{TimeWindowAggregate, LATE_RECORDS, ROWS_DROPPED_BY_WATERMARK};

mod session;
pub use session::SessionWindows;

use crate::aggregate::Aggregate;
use crate::event::Timestamp;
use crate::operator::Operator;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::hash::Hash;
use std::time::Duration;

pub mod processing;

/// How a window aggregate groups records into windows: [`TimeWindows`] (tumbling and
/// sliding) or session windows. The builder
/// ([`KeyedStream::window`](crate::KeyedStream::window)) asks it for the operator.
pub trait WindowSpec: Clone + Send + 'static {
    /// Whether the aggregate must be [mergeable](Aggregate::mergeable) (sliding windows
    /// combine slices, sessions merge).
    fn needs_merge(&self) -> bool;

    /// The name of the aggregate operator in progress reports and errors (`window` for
    /// tumbling and sliding windows, `session_window` for sessions).
    fn operator_name(&self) -> &'static str {
        "window"
    }

    /// The operator that aggregates `(key, record)` pairs with `agg` over these windows,
    /// reading each record's event time with `time`. It emits `(key, window, result)`
    /// rows as the output mode says, and sets late records (every window of theirs
    /// closed by the watermark) aside on its side output.
    ///
    /// The operator must not borrow the spec (`use<..>` leaves `&self`'s lifetime out): an
    /// implementation writes `-> impl Operator<..> + Clone + use<K, T, A, F>`.
    fn operator<K, T, A, F>(
        &self,
        agg: A,
        time: F,
    ) -> impl Operator<(K, T), Out = (K, Window, A::Out), Side = T> + Clone + use<Self, K, T, A, F>
    where
        K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
        T: Send + 'static,
        A: Aggregate<T>,
        F: Fn(&T) -> Timestamp + Clone + Send + 'static;
}

/// A window of event time, `[start, end)` (Spark's `window` struct column).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct Window {
    /// The first instant in the window.
    pub start: Timestamp,
    /// The first instant after the window.
    pub end: Timestamp,
}

impl Window {
    /// Whether `time` lies in `[start, end)`.
    pub fn contains(&self, time: Timestamp) -> bool {
        self.start <= time && time < self.end
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {})", self.start.0, self.end.0)
    }
}

/// Tumbling or sliding windows of event time, aligned as Spark aligns them.
///
/// ```
/// use rivulet::window::{TimeWindows, Window};
/// use rivulet::Timestamp;
/// use std::time::Duration;
///
/// let hour = Duration::from_secs(3600);
/// let windows = TimeWindows::sliding(hour, Duration::from_secs(1800)).unwrap();
/// let t = Timestamp(5_400_000_000); // 01:30
/// let found: Vec<Window> = windows.windows_of(t).collect();
/// assert_eq!(found.len(), 2); // [00:30, 01:30) does not hold 01:30
/// assert!(found.iter().all(|w| w.contains(t)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindows {
    length: i64,
    slide: i64,
    offset: i64,
}

/// Why a window specification was refused (Spark refuses the same ones).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid window: {0}")]
pub struct WindowSpecError(String);

impl TimeWindows {
    /// Windows of `length`, one starting every `length` (Spark's `window(col, length)`).
    ///
    /// # Errors
    ///
    /// A zero length, or one too large for microseconds in an `i64`.
    pub fn tumbling(length: Duration) -> Result<Self, WindowSpecError> {
        Self::sliding(length, length)
    }

    /// Windows of `length`, one starting every `slide` (Spark's `window(col, length,
    /// slide)`); a record belongs to every window that holds its time.
    ///
    /// # Errors
    ///
    /// A zero length or slide, or a slide longer than the length (as Spark).
    pub fn sliding(length: Duration, slide: Duration) -> Result<Self, WindowSpecError> {
        let length = micros(length, "window length")?;
        let slide = micros(slide, "slide")?;
        if slide > length {
            return Err(WindowSpecError(format!(
                "the slide ({slide} µs) must not be longer than the window ({length} µs)"
            )));
        }
        Ok(TimeWindows {
            length,
            slide,
            offset: 0,
        })
    }

    /// Shifts every window start by `offset` (Spark's `startTime`: hourly windows from
    /// 00:15 past each hour are `tumbling(1 h)?.with_offset(15 min)`). Spark's negative
    /// start times are the same windows as `slide − |startTime|`.
    ///
    /// # Errors
    ///
    /// An offset not less than the slide (as Spark).
    pub fn with_offset(mut self, offset: Duration) -> Result<Self, WindowSpecError> {
        let offset = i64::try_from(offset.as_micros()).unwrap_or(i64::MAX);
        if offset >= self.slide {
            return Err(WindowSpecError(format!(
                "the offset ({offset} µs) must be less than the slide ({} µs)",
                self.slide
            )));
        }
        self.offset = offset;
        Ok(self)
    }

    /// The window length in microseconds.
    pub fn length_micros(&self) -> i64 {
        self.length
    }

    /// The slide in microseconds (equal to the length for tumbling windows).
    pub fn slide_micros(&self) -> i64 {
        self.slide
    }

    /// The start offset in microseconds.
    pub fn offset_micros(&self) -> i64 {
        self.offset
    }

    /// Whether windows do not overlap (the slide is the length).
    pub fn is_tumbling(&self) -> bool {
        self.slide == self.length
    }

    /// The latest window start at or before `time`.
    pub fn last_start(&self, time: Timestamp) -> Timestamp {
        let remainder = (time.0 - self.offset).rem_euclid(self.slide);
        Timestamp(time.0 - remainder)
    }

    /// The windows holding `time`, latest start first.
    pub fn windows_of(&self, time: Timestamp) -> impl Iterator<Item = Window> + '_ {
        let last = self.last_start(time).0;
        (0..)
            .map(move |i| last - i * self.slide)
            .take_while(move |start| time.0 < start.saturating_add(self.length))
            .map(move |start| Window {
                start: Timestamp(start),
                end: Timestamp(start.saturating_add(self.length)),
            })
    }
}

/// `duration` in microseconds, positive and within `i64`.
fn micros(duration: Duration, what: &str) -> Result<i64, WindowSpecError> {
    let micros = i64::try_from(duration.as_micros())
        .map_err(|_| WindowSpecError(format!("the {what} is too large")))?;
    if micros <= 0 {
        return Err(WindowSpecError(format!(
            "the {what} must be at least one microsecond"
        )));
    }
    Ok(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000;

    fn minutes(m: u64) -> Duration {
        Duration::from_secs(60 * m)
    }

    #[test]
    fn tumbling_windows_hold_their_start_not_their_end() {
        let w = TimeWindows::tumbling(minutes(10)).unwrap();
        let at_start: Vec<_> = w.windows_of(Timestamp(10 * MIN)).collect();
        assert_eq!(
            at_start,
            vec![Window {
                start: Timestamp(10 * MIN),
                end: Timestamp(20 * MIN)
            }]
        );
        let before: Vec<_> = w.windows_of(Timestamp(10 * MIN - 1)).collect();
        assert_eq!(before[0].start, Timestamp(0));
    }

    #[test]
    fn sliding_windows_match_sparks_expansion() {
        // Spark's guide: 10 min windows sliding every 5 min; 12:07 is in 12:00-12:10 and
        // 12:05-12:15.
        let w = TimeWindows::sliding(minutes(10), minutes(5)).unwrap();
        let t = Timestamp((12 * 60 + 7) * MIN);
        let starts: Vec<i64> = w.windows_of(t).map(|w| w.start.0 / MIN).collect();
        assert_eq!(starts, vec![12 * 60 + 5, 12 * 60]);
        // On a boundary: 12:10 is in 12:05-12:15 and 12:10-12:20 only.
        let t = Timestamp((12 * 60 + 10) * MIN);
        let starts: Vec<i64> = w.windows_of(t).map(|w| w.start.0 / MIN).collect();
        assert_eq!(starts, vec![12 * 60 + 10, 12 * 60 + 5]);
    }

    #[test]
    fn offsets_and_negative_times_align_from_the_epoch() {
        let w = TimeWindows::tumbling(minutes(60))
            .unwrap()
            .with_offset(minutes(15))
            .unwrap();
        assert_eq!(w.last_start(Timestamp(10 * MIN)), Timestamp(-45 * MIN));
        assert_eq!(w.last_start(Timestamp(15 * MIN)), Timestamp(15 * MIN));
        let w = TimeWindows::tumbling(minutes(10)).unwrap();
        assert_eq!(w.last_start(Timestamp(-1)), Timestamp(-10 * MIN));
    }

    #[test]
    fn sparks_invalid_specs_are_refused() {
        assert!(TimeWindows::tumbling(Duration::ZERO).is_err());
        assert!(TimeWindows::sliding(minutes(5), minutes(10)).is_err());
        assert!(TimeWindows::tumbling(minutes(10))
            .unwrap()
            .with_offset(minutes(10))
            .is_err());
    }

    #[test]
    fn every_window_of_a_time_holds_it_and_no_other_does() {
        let w = TimeWindows::sliding(Duration::from_micros(7), Duration::from_micros(3))
            .unwrap()
            .with_offset(Duration::from_micros(1)) // Spark's startTime = -2 µs
            .unwrap();
        for t in -50..50 {
            let found: Vec<Window> = w.windows_of(Timestamp(t)).collect();
            let expected: Vec<i64> = (-100..100)
                .filter(|s| (s + 2) % 3 == 0)
                .filter(|s| *s <= t && t < s + 7)
                .rev()
                .collect();
            let starts: Vec<i64> = found.iter().map(|w| w.start.0).collect();
            assert_eq!(starts, expected, "t = {t}");
        }
    }
}

//! The event-time condition of a stream–stream join, and what it says about state: which
//! times of the other side a row can match, and below which time a side's rows can no
//! longer match anything that is still to come (Spark's *state watermark*).

use crate::window::TimeWindows;
use std::time::Duration;

/// An event-time range condition between the two sides of a join:
/// `left.time BETWEEN right.time + lower AND right.time + upper` (bounds included, in
/// microseconds), the form Spark's documentation calls a *time range join condition*.
///
/// ```
/// use rivulet::join::TimeRange;
/// use std::time::Duration;
///
/// // Spark's ad example, impressions on the left and clicks on the right:
/// // clickTime BETWEEN impressionTime AND impressionTime + interval 1 hour, that is
/// // impressionTime BETWEEN clickTime - 1 hour AND clickTime.
/// let range = TimeRange::new(Duration::from_secs(3600), Duration::ZERO);
/// assert_eq!((range.lower_micros(), range.upper_micros()), (-3_600_000_000, 0));
/// assert!(range.matches(1_000, 1_000) && range.matches(1_000, 2_000));
/// assert!(!range.matches(2_000, 1_000));
/// // Signed bounds: the left row between 5 and 10 µs after the right one.
/// let after = TimeRange::from_micros(5, 10)?;
/// assert!(after.matches(15, 10) && !after.matches(14, 10));
/// assert!(TimeRange::from_micros(10, 5).is_err());
/// # Ok::<(), rivulet::join::TimeRangeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    lower: i64,
    upper: i64,
}

/// Why a [`TimeRange`] was refused: its lower bound is above its upper bound, so no pair
/// of rows could ever match.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid join time range: the lower bound ({lower} µs) is above the upper bound ({upper} µs)"
)]
pub struct TimeRangeError {
    lower: i64,
    upper: i64,
}

impl TimeRange {
    /// `left.time BETWEEN right.time - before AND right.time + after`.
    pub fn new(before: Duration, after: Duration) -> Self {
        TimeRange {
            lower: -micros(before),
            upper: micros(after),
        }
    }

    /// `left.time - right.time BETWEEN lower AND upper` (microseconds, signed).
    ///
    /// # Errors
    ///
    /// If `lower > upper`.
    pub fn from_micros(lower: i64, upper: i64) -> Result<Self, TimeRangeError> {
        if lower > upper {
            return Err(TimeRangeError { lower, upper });
        }
        Ok(TimeRange { lower, upper })
    }

    /// The lower bound of `left.time - right.time`, µs.
    pub fn lower_micros(&self) -> i64 {
        self.lower
    }

    /// The upper bound of `left.time - right.time`, µs.
    pub fn upper_micros(&self) -> i64 {
        self.upper
    }

    /// Whether a left row at `left` µs and a right row at `right` µs satisfy the range.
    pub fn matches(&self, left: i64, right: i64) -> bool {
        let d = i128::from(left) - i128::from(right);
        i128::from(self.lower) <= d && d <= i128::from(self.upper)
    }
}

/// A duration in microseconds, saturating at `i64::MAX / 4` so that adding two bounds to a
/// time never wraps.
fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).map_or(i64::MAX / 4, |m| m.min(i64::MAX / 4))
}

/// Which side of the join a row is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Left,
    Right,
}

/// The time condition a join runs with (besides key equality).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Condition {
    /// None: every pair of rows of a key matches, and no state is ever evicted.
    Unbounded,
    /// A range between the two sides' times.
    Range(TimeRange),
    /// Both rows in the same tumbling window (`length`, windows starting at
    /// `offset + k·length`): Spark's join on `leftTimeWindow = rightTimeWindow`.
    Window { length: i64, offset: i64 },
}

impl Condition {
    /// The window-equality condition of tumbling `windows`, or `None` for sliding ones
    /// (a row would be in several windows).
    pub(crate) fn window(windows: &TimeWindows) -> Option<Self> {
        (windows.slide_micros() == windows.length_micros()).then(|| Condition::Window {
            length: windows.length_micros(),
            offset: windows.offset_micros(),
        })
    }

    /// Whether the condition bounds the state by the watermark.
    pub(crate) fn is_bounded(&self) -> bool {
        !matches!(self, Condition::Unbounded)
    }

    fn window_start(length: i64, offset: i64, time: i64) -> i64 {
        time.saturating_sub(offset).div_euclid(length) * length + offset
    }

    /// The times (inclusive) of the other side's rows that a row of `side` at `time`
    /// matches.
    #[inline]
    pub(crate) fn other_side_times(&self, side: Side, time: i64) -> (i64, i64) {
        match (*self, side) {
            (Condition::Unbounded, _) => (i64::MIN, i64::MAX),
            // left ∈ [right + lower, right + upper]  ⇔  right ∈ [left − upper, left − lower]
            (Condition::Range(r), Side::Left) => {
                (time.saturating_sub(r.upper), time.saturating_sub(r.lower))
            }
            (Condition::Range(r), Side::Right) => {
                (time.saturating_add(r.lower), time.saturating_add(r.upper))
            }
            (Condition::Window { length, offset }, _) => {
                let start = Self::window_start(length, offset, time);
                (start, start.saturating_add(length - 1))
            }
        }
    }

    /// Spark's state watermark of `side` under the event-time `watermark`: rows of
    /// `side` at or before the returned time can match no row of the other side that is
    /// still to come (those are all later than the watermark: a row at or before it is
    /// late and dropped), so they leave the state. `None` while there is no watermark, or
    /// when the condition does not bound the state.
    ///
    /// A row at `t` matches other-side times up to `hi(t)`
    /// ([`other_side_times`](Self::other_side_times)), which grows with `t`; it can still
    /// match iff `hi(t) > watermark`.
    #[inline]
    pub(crate) fn state_watermark(&self, side: Side, watermark: i64) -> Option<i64> {
        if watermark == i64::MIN {
            return None;
        }
        match (*self, side) {
            (Condition::Unbounded, _) => None,
            // hi(t) = t − lower ≤ W  ⇔  t ≤ W + lower
            (Condition::Range(r), Side::Left) => Some(watermark.saturating_add(r.lower)),
            // hi(t) = t + upper ≤ W  ⇔  t ≤ W − upper
            (Condition::Range(r), Side::Right) => Some(watermark.saturating_sub(r.upper)),
            // hi(t) = end(t) − 1 ≤ W  ⇔  t before the window holding W + 1
            (Condition::Window { length, offset }, _) => {
                Some(Self::window_start(length, offset, watermark.saturating_add(1)) - 1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force: the largest `t` in `[lo, hi]` whose match interval ends at or before
    /// `w` (none if no such t), for a condition whose `hi(t)` grows with `t`.
    fn brute_state_watermark(c: &Condition, side: Side, w: i64, lo: i64, hi: i64) -> Option<i64> {
        (lo..=hi)
            .filter(|t| c.other_side_times(side, *t).1 <= w)
            .max()
    }

    #[test]
    fn match_intervals_agree_with_the_range() {
        let range = TimeRange::from_micros(-7, 3).unwrap();
        let c = Condition::Range(range);
        for l in -20..20 {
            for r in -20..20 {
                let (lo, hi) = c.other_side_times(Side::Left, l);
                assert_eq!(
                    lo <= r && r <= hi,
                    range.matches(l, r),
                    "left {l} right {r}"
                );
                let (lo, hi) = c.other_side_times(Side::Right, r);
                assert_eq!(
                    lo <= l && l <= hi,
                    range.matches(l, r),
                    "left {l} right {r}"
                );
            }
        }
    }

    #[test]
    fn state_watermarks_are_the_last_time_that_cannot_match_the_future() {
        let windows = TimeWindows::tumbling(Duration::from_micros(5))
            .unwrap()
            .with_offset(Duration::from_micros(2))
            .unwrap();
        let conditions = [
            Condition::Range(TimeRange::from_micros(-7, 3).unwrap()),
            Condition::Range(TimeRange::from_micros(2, 9).unwrap()),
            Condition::Range(TimeRange::from_micros(-4, -1).unwrap()),
            Condition::window(&windows).unwrap(),
        ];
        for c in &conditions {
            for side in [Side::Left, Side::Right] {
                for w in -30..30 {
                    let brute = brute_state_watermark(c, side, w, -100, 100);
                    assert_eq!(c.state_watermark(side, w), brute, "{c:?} {side:?} w={w}");
                }
            }
        }
        assert_eq!(conditions[0].state_watermark(Side::Left, i64::MIN), None);
        assert_eq!(Condition::Unbounded.state_watermark(Side::Left, 10), None);
    }

    #[test]
    fn window_equality_matches_rows_of_the_same_window() {
        let windows = TimeWindows::tumbling(Duration::from_micros(10)).unwrap();
        let c = Condition::window(&windows).unwrap();
        assert_eq!(c.other_side_times(Side::Left, 15), (10, 19));
        assert_eq!(c.other_side_times(Side::Right, -1), (-10, -1));
        let sliding =
            TimeWindows::sliding(Duration::from_micros(10), Duration::from_micros(5)).unwrap();
        assert_eq!(Condition::window(&sliding), None);
    }

    #[test]
    fn durations_become_signed_bounds() {
        let range = TimeRange::new(Duration::from_micros(3), Duration::from_micros(4));
        assert_eq!((range.lower_micros(), range.upper_micros()), (-3, 4));
        let huge = TimeRange::new(Duration::MAX, Duration::MAX);
        assert_eq!(huge.upper_micros(), i64::MAX / 4);
        assert!(huge.matches(i64::MAX / 8, -(i64::MAX / 8)));
    }
}

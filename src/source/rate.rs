//! Spark's `rate` source: rows at a fixed rate, each a timestamp and a counter.

use super::{Source, SourcePoll};
use crate::checkpoint::codec;
use crate::error::BoxError;
use crate::event::{Epoch, Timestamp};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// One row of a [`RateSource`]: `value` counts up from 0; `timestamp` is the time the row
/// was *scheduled* (start + value / rate), not when it was emitted, so a stalled
/// pipeline shows up as latency instead of being hidden (no coordinated omission).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateRow {
    /// Scheduled emission time.
    pub timestamp: Timestamp,
    /// 0, 1, 2, …
    pub value: u64,
}

/// Emits `rows_per_second` rows per second on an open-loop schedule: row `i` is due at
/// `start + i / rows_per_second`. A source that falls behind catches up at full speed.
#[derive(Debug, Clone)]
pub struct RateSource {
    rows_per_second: u64,
    limit: Option<u64>,
    next_value: u64,
    /// The value the schedule starts at (0, or the restored offset).
    first_value: u64,
    /// Rows due by the last clock read; rows below it are emitted without reading the
    /// clock again.
    due: u64,
    start: Option<(Instant, Timestamp)>,
}

impl RateSource {
    /// A source of `rows_per_second` rows per second, without end.
    ///
    /// # Panics
    ///
    /// If `rows_per_second` is 0 (the query builder refuses it earlier with an error).
    pub fn new(rows_per_second: u64) -> Self {
        assert!(rows_per_second > 0, "rows_per_second must be positive");
        RateSource {
            rows_per_second,
            limit: None,
            next_value: 0,
            first_value: 0,
            due: 0,
            start: None,
        }
    }

    /// Ends the stream after `rows` rows.
    pub fn with_limit(mut self, rows: u64) -> Self {
        self.limit = Some(rows);
        self
    }

    /// Offset of row `value` from the start.
    fn offset_of(&self, value: u64) -> Duration {
        let nanos = u128::from(value) * 1_000_000_000 / u128::from(self.rows_per_second);
        Duration::from_nanos(nanos.min(u128::from(u64::MAX)) as u64)
    }

    /// Rows due at `elapsed` after the start.
    fn due_at(&self, elapsed: Duration) -> u64 {
        let due = elapsed.as_nanos() * u128::from(self.rows_per_second) / 1_000_000_000 + 1;
        due.min(u128::from(u64::MAX)) as u64
    }
}

impl Source for RateSource {
    type Item = RateRow;

    #[inline]
    fn poll_next(&mut self) -> SourcePoll<RateRow> {
        if self.limit.is_some_and(|limit| self.next_value >= limit) {
            return SourcePoll::Exhausted;
        }
        let (start, wall_start) = *self
            .start
            .get_or_insert_with(|| (Instant::now(), Timestamp::now()));
        if self.next_value >= self.due {
            self.due = self.first_value + self.due_at(start.elapsed());
            if self.next_value >= self.due {
                return SourcePoll::Pending {
                    until: Some(start + self.offset_of(self.next_value - self.first_value)),
                };
            }
        }
        let value = self.next_value;
        self.next_value += 1;
        let offset = self.offset_of(value - self.first_value);
        SourcePoll::Ready(RateRow {
            timestamp: Timestamp(wall_start.0 + offset.as_micros() as i64),
            value,
        })
    }

    fn has_data(&self) -> bool {
        // Time, not a peer, makes rows due: the thread waits with a deadline instead.
        false
    }

    fn can_replay(&self) -> bool {
        true
    }

    fn checkpoint(&mut self, _epoch: Epoch) -> Result<Vec<u8>, BoxError> {
        Ok(codec::encode(&self.next_value)?)
    }

    /// Continues counting from the checkpointed value; the schedule restarts now (rows
    /// that were due while the query was down are not emitted in a burst).
    fn restore(&mut self, offset: &[u8]) -> Result<(), BoxError> {
        let next: u64 = codec::decode(offset)?;
        self.first_value = next;
        self.next_value = next;
        self.due = next;
        self.start = None;
        Ok(())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn follows_the_schedule_and_limit() {
        let mut source = RateSource::new(1_000).with_limit(20);
        let start = Instant::now();
        let mut values = Vec::new();
        loop {
            match source.poll_next() {
                SourcePoll::Ready(row) => values.push(row),
                SourcePoll::Pending { until } => {
                    let until = until.expect("rate source knows its next row");
                    std::thread::sleep(until.saturating_duration_since(Instant::now()));
                }
                SourcePoll::Exhausted => break,
                SourcePoll::Failed(error) => panic!("rate source failed: {error}"),
            }
        }
        // 20 rows at 1000/s: the last is due 19 ms after the first.
        assert!(start.elapsed() >= Duration::from_millis(19));
        assert_eq!(
            values.iter().map(|r| r.value).collect::<Vec<_>>(),
            (0..20).collect::<Vec<_>>()
        );
        let span = values[19].timestamp.0 - values[0].timestamp.0;
        assert_eq!(span, 19_000);
    }
}

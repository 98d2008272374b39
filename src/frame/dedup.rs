//! [`DataFrame::drop_duplicates`] and [`DataFrame::drop_duplicates_within_watermark`]:
//! Spark's streaming deduplication on rows, planned onto
//! [`KeyedStream::drop_duplicates`](crate::KeyedStream::drop_duplicates)'s operator.

use super::erased::DedupPlan;
use super::{DataFrame, FrameError};
use std::sync::Arc;

impl DataFrame {
    /// The first row of each combination of `columns`' values; later rows with the same
    /// values are dropped (Spark's `dropDuplicates(cols)`; no columns: all of them,
    /// Spark's `dropDuplicates()`). Null equals null here, as in Spark's grouping.
    ///
    /// * Without a watermark every key seen is kept in the state for the life of the
    ///   query: it grows with the number of distinct keys (as in Spark).
    /// * After [`with_watermark`](Self::with_watermark) rows at or behind the watermark
    ///   are dropped as late, and if the watermark's column is one of `columns`, a
    ///   key's state is evicted once the watermark reaches its time (Spark's
    ///   `withWatermark("eventTime", ..).dropDuplicates("guid", "eventTime")`). If it is
    ///   not, late rows are still dropped but keys are kept for ever, as in Spark; see
    ///   [`drop_duplicates_within_watermark`](Self::drop_duplicates_within_watermark).
    ///
    /// The rows keep their columns; the stream keeps its watermark. See
    /// [`DropDuplicates`](crate::state::DropDuplicates) for which watermark judges a
    /// micro-batch.
    ///
    /// ```
    /// use rivulet::expr::col;
    /// use rivulet::frame::DataFrame;
    /// use rivulet::row::{DataType, Field, Row, Schema, Value};
    /// use std::sync::Arc;
    ///
    /// let schema = Arc::new(Schema::new([
    ///     Field::new("guid", DataType::String),
    ///     Field::new("n", DataType::Long),
    /// ])?);
    /// let rows = [("a", 1), ("b", 2), ("a", 3)]
    ///     .map(|(guid, n)| Row::new(vec![Value::string(guid), Value::Long(n)]));
    /// let mut query = rivulet::Query::builder();
    /// let events = DataFrame::new(query.from_iter("events", rows), schema);
    /// let firsts = events.drop_duplicates(&["guid"])?.to_memory("firsts");
    /// query.start()?.await_termination()?;
    /// let ns: Vec<_> = firsts.rows().iter().map(|row| row.values()[1].clone()).collect();
    /// assert_eq!(ns, [Value::Long(1), Value::Long(2)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A column that does not exist (the message lists those that do).
    pub fn drop_duplicates(self, columns: &[&str]) -> Result<DataFrame, FrameError> {
        let keys = self.key_columns(columns)?;
        let time = self.watermark_column();
        let retain = match time {
            Some(column) if keys.contains(&column) => Some(0),
            _ => None,
        };
        self.deduplicate(DedupPlan {
            keys,
            time,
            retain,
            name: "drop_duplicates",
        })
    }

    /// Spark 3.5's `dropDuplicatesWithinWatermark(cols)`: the first row of each
    /// combination of `columns`' values, later ones dropped while the key's state
    /// lasts: until the watermark reaches the first row's event time plus the
    /// watermark's delay. Rows at or behind the watermark are dropped as late.
    /// `columns` need not include the event time (no columns: all of them).
    ///
    /// # Errors
    ///
    /// A frame without a watermark ([`with_watermark`](Self::with_watermark)), as
    /// Spark refuses it, or a column that does not exist.
    pub fn drop_duplicates_within_watermark(
        self,
        columns: &[&str],
    ) -> Result<DataFrame, FrameError> {
        let keys = self.key_columns(columns)?;
        let (Some(time), Some((_, delay))) = (self.watermark_column(), &self.event_time) else {
            return Err(FrameError::Invalid(
                "drop_duplicates_within_watermark needs a watermark: call \
                 with_watermark(column, delay) first (Spark refuses it without one)"
                    .to_string(),
            ));
        };
        let retain = i64::try_from(delay.as_micros()).unwrap_or(i64::MAX);
        self.deduplicate(DedupPlan {
            keys,
            time: Some(time),
            retain: Some(retain),
            name: "drop_duplicates_within_watermark",
        })
    }

    /// The positions of `columns` (all columns where none are given).
    fn key_columns(&self, columns: &[&str]) -> Result<Arc<[usize]>, FrameError> {
        if columns.is_empty() {
            return Ok((0..self.schema.len()).collect());
        }
        let mut keys = Vec::with_capacity(columns.len());
        for column in columns {
            let index = self.schema.index_of(column)?;
            if !keys.contains(&index) {
                keys.push(index);
            }
        }
        Ok(keys.into())
    }

    /// The position of the watermark's event-time column, if the frame has one.
    fn watermark_column(&self) -> Option<usize> {
        let (column, _) = self.event_time.as_ref()?;
        self.schema.find(column)
    }

    fn deduplicate(self, plan: DedupPlan) -> Result<DataFrame, FrameError> {
        let event_time = self.event_time.clone();
        let (stream, prelude, schema) = self.flush();
        let mut frame = DataFrame::from_erased(stream.drop_duplicates(prelude, plan), schema);
        frame.event_time = event_time;
        Ok(frame)
    }
}

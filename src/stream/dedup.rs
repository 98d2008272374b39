//! Deduplication on keyed streams: [`KeyedStream::drop_duplicates`] and its watermarked
//! forms (Spark's `dropDuplicates` and `dropDuplicatesWithinWatermark`). The operator
//! and its semantics are [`DropDuplicates`].

use super::{Chain, KeyedStream, Stream};
use crate::event::Timestamp;
use crate::operator::TimerKey;
use crate::plan::OperatorKind;
use crate::state::DropDuplicates;
use std::hash::Hash;
use std::time::Duration;

impl<S, F, K> KeyedStream<S, F>
where
    S: Chain,
    F: FnMut(&S::Out) -> K + Clone + Send + 'static,
    K: TimerKey + Hash + Eq,
{
    /// The first record of each key; later records of the key are dropped (Spark's
    /// `dropDuplicates` without a watermark). Every key seen stays in the operator's
    /// state, checkpointed with it, for the life of the query: the state grows with the
    /// number of distinct keys. On a watermarked stream use
    /// [`drop_duplicates_with_watermark`](Self::drop_duplicates_with_watermark) to bound it.
    ///
    /// Records keep their order per key; with parallelism > 1 they cross a keyed
    /// exchange, so each key's state is on one instance.
    ///
    /// ```
    /// let mut query = rivulet::Query::builder();
    /// let firsts = query
    ///     .from_iter("clicks", [("ann", 1), ("bob", 2), ("ann", 3), ("cid", 4), ("bob", 5)])
    ///     .key_by(|(user, _)| user.to_string())
    ///     .drop_duplicates()
    ///     .to_memory("firsts");
    /// query.start()?.await_termination()?;
    /// assert_eq!(firsts.rows(), [("ann", 1), ("bob", 2), ("cid", 4)]);
    /// # Ok::<(), rivulet::Error>(())
    /// ```
    pub fn drop_duplicates(self) -> Stream<impl Chain<Out = S::Out>> {
        let name = "drop_duplicates";
        self.route(name)
            .then(name, OperatorKind::Transform, DropDuplicates::new())
    }

    /// Spark's `withWatermark(..).dropDuplicates(cols)` with the event-time column among
    /// `cols`: the first record of each key, records at or behind the watermark dropped
    /// as late (counted as `rows_dropped_by_watermark`), and a key's state evicted once
    /// the watermark reaches the event time of its first record. `time` is the record's
    /// event time, as the stream's watermark measures it.
    ///
    /// For Spark's exact semantics the key includes the event time (as Spark requires
    /// for eviction), so that every record of a key has the same time. With a key
    /// without it, a key is forgotten once the watermark passes its first record, and a
    /// later record of the key that is not late is emitted again.
    ///
    /// The stream must have a watermark
    /// ([`with_watermark`](crate::stream::EventTimeStream::with_watermark)); `start()`
    /// refuses the query otherwise.
    ///
    /// ```
    /// use rivulet::{Query, Timestamp, Trigger};
    /// use std::time::Duration;
    ///
    /// // One record per micro-batch, so that the watermark moves between records.
    /// let mut query = Query::builder();
    /// query.trigger(Trigger::AvailableNow).max_batch_records(1);
    /// let firsts = query
    ///     .from_iter("events", [("a", 10i64), ("a", 10), ("b", 30), ("a", 10), ("c", 5)])
    ///     .with_event_time(|(_, t)| Timestamp(*t))
    ///     .with_watermark(Duration::from_micros(10))
    ///     .key_by(|(id, t)| (id.to_string(), *t))
    ///     .drop_duplicates_with_watermark(|(_, t)| Timestamp(*t))
    ///     .to_memory("firsts");
    /// query.start()?.await_termination()?;
    /// // The last batch judges by the watermark 30 − 10 = 20: ("c", 5) is late.
    /// assert_eq!(firsts.rows(), [("a", 10), ("b", 30)]);
    /// # Ok::<(), rivulet::Error>(())
    /// ```
    pub fn drop_duplicates_with_watermark<T>(self, time: T) -> Stream<impl Chain<Out = S::Out>>
    where
        T: FnMut(&S::Out) -> Timestamp + Clone + Send + 'static,
    {
        self.deduplicate("drop_duplicates", time, Some(0))
    }

    /// Spark 3.5's `dropDuplicatesWithinWatermark`: the first record of each key, later
    /// records of the key dropped while its state lasts, which is until the watermark
    /// reaches the first record's event time plus `delay` (Spark uses the watermark's
    /// delay; pass the one given to `with_watermark`). Records at or behind the
    /// watermark are dropped as late. The key need not contain the event time.
    ///
    /// The stream must have a watermark; `start()` refuses the query otherwise.
    ///
    /// ```
    /// use rivulet::{Query, Timestamp, Trigger};
    /// use std::time::Duration;
    ///
    /// let mut query = Query::builder();
    /// query.trigger(Trigger::AvailableNow).max_batch_records(1);
    /// let firsts = query
    ///     .from_iter("events", [("a", 10i64), ("a", 12), ("b", 30), ("a", 40), ("a", 41)])
    ///     .with_event_time(|(_, t)| Timestamp(*t))
    ///     .with_watermark(Duration::from_micros(5))
    ///     .key_by(|(id, _)| id.to_string())
    ///     .drop_duplicates_within_watermark(|(_, t)| Timestamp(*t), Duration::from_micros(5))
    ///     .to_memory("firsts");
    /// query.start()?.await_termination()?;
    /// // a's state lasts until the watermark reaches 10 + 5: ("a", 12) and ("a", 40)
    /// // are duplicates (the batch of 40 evicts a at its end, by watermark 25), ("a",
    /// // 41) is not.
    /// assert_eq!(firsts.rows(), [("a", 10), ("b", 30), ("a", 41)]);
    /// # Ok::<(), rivulet::Error>(())
    /// ```
    pub fn drop_duplicates_within_watermark<T>(
        self,
        time: T,
        delay: Duration,
    ) -> Stream<impl Chain<Out = S::Out>>
    where
        T: FnMut(&S::Out) -> Timestamp + Clone + Send + 'static,
    {
        let delay = i64::try_from(delay.as_micros()).unwrap_or(i64::MAX);
        self.deduplicate("drop_duplicates_within_watermark", time, Some(delay))
    }

    /// The deduplication operator by event time `time`, keys kept `retain` µs past
    /// their first record's time (`None`: for ever; late records are dropped either
    /// way). Notes a missing watermark for `start()` to refuse.
    pub(crate) fn deduplicate<T>(
        self,
        name: &str,
        time: T,
        retain: Option<i64>,
    ) -> Stream<impl Chain<Out = S::Out>>
    where
        T: FnMut(&S::Out) -> Timestamp + Clone + Send + 'static,
    {
        if !self.stream.watermarked {
            self.stream.graph.borrow_mut().errors.push(format!(
                "`{name}` by event time needs a watermark on its input; add \
                 with_event_time(..).with_watermark(delay) before key_by, or use \
                 drop_duplicates() (state kept for ever)"
            ));
        }
        self.route(name).then(
            name,
            OperatorKind::Transform,
            DropDuplicates::with_event_time(time, retain),
        )
    }
}

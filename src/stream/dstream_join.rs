//! Spark Streaming's (DStream) joins of two keyed streams per batch:
//! [`KeyedStream::join_per_batch`], [`KeyedStream::left_outer_join_per_batch`],
//! [`KeyedStream::right_outer_join_per_batch`], [`KeyedStream::full_outer_join_per_batch`]
//! and [`KeyedStream::cogroup_per_batch`]. The operator and its semantics (what an epoch
//! holds in each trigger and checkpoint mode) are in
//! [`operator::batch_join`](crate::operator::batch_join).
//!
//! Each connects the two keyed streams ([`KeyedStream::connect`]: both sides exchanged
//! by key onto the left's parallelism, which the right's must equal) and appends a
//! [`BatchJoin`] of kind [`OperatorKind::Join`]. The `_per_batch` suffix keeps them apart
//! from the stream–stream joins (event-time conditions, state kept across epochs).

use super::{Chain, KeyedStream, Stream};
use crate::operator::batch_join::{
    BatchJoin, BatchJoinKind, Cogroup, FullOuter, Inner, LeftOuter, RightOuter,
};
use crate::plan::OperatorKind;
use std::hash::Hash;

// The row types are spelled out in the signatures, where users read them.
#[allow(clippy::type_complexity)]
impl<S, F, K> KeyedStream<S, F>
where
    S: Chain,
    F: FnMut(&S::Out) -> K + Clone + Send + 'static,
    K: Hash + Eq + Clone + Send + 'static,
{
    /// Per epoch (micro-batch, or continuous checkpoint interval), every pair of a key's
    /// values from this stream and `other`, as `(key, (left, right))` (Spark Streaming's
    /// `join` of two pair DStreams). Nothing carries over from one epoch to the next: a
    /// value meets only the other side's values of its own epoch. Rows come out at the
    /// epoch's end; see [`operator::batch_join`](crate::operator::batch_join).
    ///
    /// ```
    /// use rivulet::Trigger;
    /// use std::time::Duration;
    ///
    /// let mut query = rivulet::Query::builder();
    /// query.trigger(Trigger::MicroBatch { interval: Duration::from_millis(10) });
    /// // (order id, item) and (order id, cents)
    /// let (orders, order_stream) = query.push_source::<(u32, String)>("orders");
    /// let (payments, payment_stream) = query.push_source::<(u32, u64)>("payments");
    /// let paid = order_stream
    ///     .key_by(|order: &(u32, String)| order.0)
    ///     .join_per_batch(payment_stream.key_by(|payment: &(u32, u64)| payment.0))
    ///     .map(|(id, ((_, item), (_, cents)))| (id, item, cents))
    ///     .to_memory("paid");
    /// // Both sides are pushed before the query starts: they are in its first batch.
    /// orders.push((1, "tea".to_string())).unwrap();
    /// orders.push((2, "cake".to_string())).unwrap();
    /// payments.push((1, 250)).unwrap();
    /// let running = query.start()?;
    /// paid.wait_for_len(1, Duration::from_secs(60));
    /// drop((orders, payments));
    /// running.await_termination()?;
    /// assert_eq!(paid.rows(), vec![(1, "tea".to_string(), 250)]);
    /// # Ok::<(), rivulet::Error>(())
    /// ```
    pub fn join_per_batch<S2, F2>(
        self,
        other: KeyedStream<S2, F2>,
    ) -> Stream<impl Chain<Out = (K, (S::Out, S2::Out))>>
    where
        S2: Chain,
        F2: FnMut(&S2::Out) -> K + Clone + Send + 'static,
        S::Out: Clone,
        S2::Out: Clone,
    {
        self.per_batch(other, "join_per_batch", Inner)
    }

    /// [`join_per_batch`](Self::join_per_batch), plus `(key, (left, None))` for each value
    /// of this stream whose key has no value of `other` in the epoch (Spark Streaming's
    /// `leftOuterJoin`).
    pub fn left_outer_join_per_batch<S2, F2>(
        self,
        other: KeyedStream<S2, F2>,
    ) -> Stream<impl Chain<Out = (K, (S::Out, Option<S2::Out>))>>
    where
        S2: Chain,
        F2: FnMut(&S2::Out) -> K + Clone + Send + 'static,
        S::Out: Clone,
        S2::Out: Clone,
    {
        self.per_batch(other, "left_outer_join_per_batch", LeftOuter)
    }

    /// [`join_per_batch`](Self::join_per_batch), plus `(key, (None, right))` for each
    /// value of `other` whose key has no value of this stream in the epoch (Spark
    /// Streaming's `rightOuterJoin`).
    pub fn right_outer_join_per_batch<S2, F2>(
        self,
        other: KeyedStream<S2, F2>,
    ) -> Stream<impl Chain<Out = (K, (Option<S::Out>, S2::Out))>>
    where
        S2: Chain,
        F2: FnMut(&S2::Out) -> K + Clone + Send + 'static,
        S::Out: Clone,
        S2::Out: Clone,
    {
        self.per_batch(other, "right_outer_join_per_batch", RightOuter)
    }

    /// [`join_per_batch`](Self::join_per_batch), plus the unmatched values of both sides
    /// with `None` for the missing one (Spark Streaming's `fullOuterJoin`).
    pub fn full_outer_join_per_batch<S2, F2>(
        self,
        other: KeyedStream<S2, F2>,
    ) -> Stream<impl Chain<Out = (K, (Option<S::Out>, Option<S2::Out>))>>
    where
        S2: Chain,
        F2: FnMut(&S2::Out) -> K + Clone + Send + 'static,
        S::Out: Clone,
        S2::Out: Clone,
    {
        self.per_batch(other, "full_outer_join_per_batch", FullOuter)
    }

    /// Per epoch, one `(key, (left values, right values))` for each key with a value on
    /// either side, values in arrival order (Spark Streaming's `cogroup`). Values are
    /// moved, never cloned.
    ///
    /// ```
    /// let mut query = rivulet::Query::builder();
    /// let views = query.from_iter("views", [("home", 1u32), ("cart", 2), ("home", 3)]);
    /// let buys = query.from_iter("buys", [("cart", 9.5f64)]);
    /// let groups = views
    ///     .key_by(|view| view.0)
    ///     .cogroup_per_batch(buys.key_by(|buy| buy.0))
    ///     .map(|(page, (views, buys))| (page, views.len(), buys.len()))
    ///     .to_memory("groups");
    /// query.start()?.await_termination()?;
    /// // Without a trigger the whole input is one epoch.
    /// let mut rows = groups.rows();
    /// rows.sort();
    /// assert_eq!(rows, vec![("cart", 1, 1), ("home", 2, 0)]);
    /// # Ok::<(), rivulet::Error>(())
    /// ```
    pub fn cogroup_per_batch<S2, F2>(
        self,
        other: KeyedStream<S2, F2>,
    ) -> Stream<impl Chain<Out = (K, (Vec<S::Out>, Vec<S2::Out>))>>
    where
        S2: Chain,
        F2: FnMut(&S2::Out) -> K + Clone + Send + 'static,
    {
        self.per_batch(other, "cogroup_per_batch", Cogroup)
    }

    /// Connects `self` and `other` by key into a [`BatchJoin`] of `kind` named `name`.
    fn per_batch<S2, F2, J>(
        self,
        other: KeyedStream<S2, F2>,
        name: &str,
        kind: J,
    ) -> Stream<impl Chain<Out = J::Out>>
    where
        S2: Chain,
        F2: FnMut(&S2::Out) -> K + Clone + Send + 'static,
        J: BatchJoinKind<K, S::Out, S2::Out>,
        J::Out: Send + 'static,
    {
        self.connect(other)
            .operator_of_kind(name, OperatorKind::Join, BatchJoin::new(kind))
    }
}

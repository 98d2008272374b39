//! Keyed streams: [`Stream::key_by`] and the keyed aggregates built on it (`count`,
//! `fold`, `reduce`, `count_by_value`, `agg` with the functions of
//! [`aggregate`](crate::aggregate), custom operators). The aggregate is chained onto
//! the upstream thread when both sides have one instance; otherwise the records cross a
//! keyed exchange (a thread boundary, in `boundary.rs`).

use super::{Chain, KeyedInput, Stream, Then};
use crate::aggregate::{Aggregate, Over};
use crate::operator::keyed::{KeyedAggregate, KeyedFold, KeyedReduce};
use crate::operator::stateless::KeyBy;
use crate::operator::Operator;
use crate::plan::OperatorKind;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::hash::Hash;

impl<S: Chain> Stream<S> {
    /// Partitions the stream by `key` for a keyed aggregate.
    ///
    /// Keys and aggregate values are serde types: keyed state is what checkpoints save.
    ///
    /// Every record with the same key goes to the same instance of the aggregate, which
    /// owns that key's state. The number of instances is the query's default parallelism
    /// ([`QueryBuilder::parallelism`](crate::QueryBuilder::parallelism)) unless
    /// [`KeyedStream::with_parallelism`] says otherwise. With one instance on both
    /// sides the aggregate is chained onto this stream's thread; otherwise records cross
    /// a keyed exchange: one ring per (upstream instance, aggregate instance) pair.
    pub fn key_by<K, F>(self, key: F) -> KeyedStream<S, F>
    where
        F: FnMut(&S::Out) -> K + Clone + Send + 'static,
        K: Hash + Eq + Clone + Send + 'static,
    {
        let parallelism = self.graph.borrow().config.parallelism;
        KeyedStream {
            stream: self,
            key,
            parallelism,
        }
    }

    /// Running count of each distinct record (Spark's `countByValue`): emits
    /// `(record, count so far)` for every record.
    pub fn count_by_value(self) -> Stream<impl Chain<Out = (S::Out, u64)>>
    where
        S::Out: Hash + Eq + Clone + Serialize + DeserializeOwned,
    {
        self.key_by(|record: &S::Out| record.clone()).aggregate(
            "count_by_value",
            KeyedFold::new(|| 0u64, |count: &mut u64, _record: S::Out| *count += 1),
        )
    }

    /// Adds the key on this thread (no exchange).
    fn local_key<K, F>(self, key: F) -> Stream<KeyedInput<S, F, K>>
    where
        F: FnMut(&S::Out) -> K + Clone + Send + 'static,
        K: Send + 'static,
    {
        let keyed = self.then("key_by", OperatorKind::Transform, KeyBy(key));
        Stream {
            graph: keyed.graph,
            chain: KeyedInput::Local(keyed.chain),
            group: keyed.group,
            parallelism: keyed.parallelism,
            last_op: keyed.last_op,
            upstream: keyed.upstream,
            watermarked: keyed.watermarked,
        }
    }
}

/// A stream partitioned by key, ready for a keyed aggregate. Created by
/// [`Stream::key_by`].
#[must_use = "a keyed stream needs an aggregate (count, fold, reduce)"]
pub struct KeyedStream<S, F> {
    pub(super) stream: Stream<S>,
    pub(super) key: F,
    pub(super) parallelism: usize,
}

impl<S, F> fmt::Debug for KeyedStream<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedStream")
            .field("parallelism", &self.parallelism)
            .finish_non_exhaustive()
    }
}

impl<S, F, K> KeyedStream<S, F>
where
    S: Chain,
    F: FnMut(&S::Out) -> K + Clone + Send + 'static,
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
{
    /// Runs the aggregate as `parallelism` instances (threads).
    pub fn with_parallelism(mut self, parallelism: usize) -> Self {
        self.parallelism = parallelism;
        self
    }

    /// Folds each key's records into an accumulator starting at `init`, emitting
    /// `(key, accumulator)` after every record.
    ///
    /// ```
    /// let mut query = rivulet::Query::builder();
    /// let sums = query
    ///     .from_iter("n", 1..=6u64)
    ///     .key_by(|x| x % 2)
    ///     .fold(0u64, |sum, x| *sum += x)
    ///     .to_memory("sums");
    /// query.start().unwrap().await_termination().unwrap();
    /// let last_even = sums.rows().into_iter().filter(|(k, _)| *k == 0).last();
    /// assert_eq!(last_even, Some((0, 2 + 4 + 6)));
    /// ```
    pub fn fold<A, G>(self, init: A, fold: G) -> Stream<impl Chain<Out = (K, A)>>
    where
        A: Clone + Send + Serialize + DeserializeOwned + 'static,
        G: FnMut(&mut A, S::Out) + Clone + Send + 'static,
    {
        let init = move || init.clone();
        self.aggregate("fold", KeyedFold::new(init, fold))
    }

    /// Running count per key: emits `(key, count so far)` for every record.
    pub fn count(self) -> Stream<impl Chain<Out = (K, u64)>> {
        self.aggregate(
            "count",
            KeyedFold::new(|| 0u64, |count: &mut u64, _record: S::Out| *count += 1),
        )
    }

    /// Combines each key's records with `reduce(&mut acc, record)` (Spark's
    /// `reduceByKey`), emitting `(key, acc)` after every record.
    pub fn reduce<G>(self, reduce: G) -> Stream<impl Chain<Out = (K, S::Out)>>
    where
        S::Out: Clone + Serialize + DeserializeOwned,
        G: FnMut(&mut S::Out, S::Out) + Clone + Send + 'static,
    {
        self.aggregate("reduce", KeyedReduce::new(reduce))
    }

    /// Runs the aggregate `agg` per key (Spark's `groupBy(..).agg(..)` on a stream): a
    /// built-in of [`rivulet::aggregate`](crate::aggregate), a user one, or a tuple of
    /// them, emitting `(key, result)` as [`count`](Self::count) and
    /// [`fold`](Self::fold) emit: in update mode a row per record (continuous) or per
    /// changed key per batch (micro-batch), in complete mode every key at each epoch
    /// end. The accumulators are the checkpointed state.
    ///
    /// ```
    /// use rivulet::aggregate::{avg, max, min};
    ///
    /// let mut query = rivulet::Query::builder();
    /// let stats = query
    ///     .from_iter("n", [3i32, -1, 4, 1, 5])
    ///     .key_by(|x| x % 2 == 0)
    ///     .agg((min(|x: &i32| *x), max(|x: &i32| *x), avg(|x: &i32| *x)))
    ///     .to_memory("stats");
    /// query.start()?.await_termination()?;
    /// let odd = stats.rows().into_iter().filter(|(even, _)| !even).last();
    /// assert_eq!(odd, Some((false, (-1, 5, 2.0))));
    /// # Ok::<(), rivulet::Error>(())
    /// ```
    pub fn agg<A>(self, agg: A) -> Stream<impl Chain<Out = (K, A::Out)>>
    where
        A: Aggregate<S::Out>,
    {
        self.aggregate("agg", KeyedAggregate::new(agg))
    }

    /// [`agg`](Self::agg) with the aggregate built by `build` from an [`Over`] of the
    /// stream's records, so the aggregates' closures need no type annotations.
    ///
    /// ```
    /// let mut query = rivulet::Query::builder();
    /// let stats = query
    ///     .from_iter("pairs", [("a", 2u32), ("b", 7), ("a", 5)])
    ///     .key_by(|(name, _)| name.to_string())
    ///     .agg_with(|over| (over.count(), over.sum(|(_, n)| *n), over.max(|(_, n)| *n)))
    ///     .to_memory("stats");
    /// query.start()?.await_termination()?;
    /// let a = stats.rows().into_iter().filter(|(name, _)| name == "a").last();
    /// assert_eq!(a, Some(("a".to_string(), (2, 7, 5))));
    /// # Ok::<(), rivulet::Error>(())
    /// ```
    pub fn agg_with<A, B>(self, build: B) -> Stream<impl Chain<Out = (K, A::Out)>>
    where
        A: Aggregate<S::Out>,
        B: FnOnce(Over<S::Out>) -> A,
    {
        let agg = build(Over::new());
        self.agg(agg)
    }

    /// Applies a custom keyed operator to the `(key, record)` pairs.
    pub fn aggregate<O>(self, name: &str, op: O) -> Stream<Then<KeyedInput<S, F, K>, O>>
    where
        O: Operator<(K, S::Out)> + Clone,
        O::Out: Send + 'static,
    {
        self.route(name).then(name, OperatorKind::Aggregate, op)
    }

    /// The `(key, record)` pairs where a keyed operator named `name` will read them:
    /// on this thread with one instance on each side, else behind a keyed exchange.
    pub(super) fn route(self, name: &str) -> Stream<KeyedInput<S, F, K>> {
        let KeyedStream {
            stream,
            key,
            parallelism,
        } = self;
        if parallelism == 0 {
            stream
                .graph
                .borrow_mut()
                .errors
                .push(format!("`{name}` has parallelism 0; it must be at least 1"));
            stream.local_key(key)
        } else if parallelism == 1 && stream.parallelism == 1 {
            stream.local_key(key)
        } else {
            stream.exchange(key, parallelism)
        }
    }
}

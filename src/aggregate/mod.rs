//! Aggregate functions: what a keyed running aggregate or a window computes over its
//! records (Spark's `agg(count, sum, min, max, avg, …)`).
//!
//! An [`Aggregate`] folds records into an accumulator (`init`, `add`), can combine two
//! accumulators (`merge`: what sliding windows need to combine their slices and session
//! windows to merge sessions), and turns an accumulator into its result. Tuples of 2 to
//! 8 aggregates are aggregates, so one operator computes several at once, and
//! [`KeyedStream::agg`](crate::KeyedStream::agg) runs one per key:
//!
//! ```
//! use rivulet::aggregate::{avg, count, max, min};
//! use rivulet::Query;
//!
//! #[derive(Clone)]
//! struct Reading {
//!     pump: u32,
//!     hz: f64,
//! }
//!
//! let readings = [(1, 50.0), (2, 61.0), (1, 48.0), (1, 49.0)]
//!     .map(|(pump, hz)| Reading { pump, hz });
//! let mut query = Query::builder();
//! let stats = query
//!     .from_iter("readings", readings)
//!     .key_by(|r: &Reading| r.pump)
//!     .agg((
//!         count(),
//!         max(|r: &Reading| r.hz),
//!         min(|r: &Reading| r.hz),
//!         avg(|r: &Reading| r.hz),
//!     ))
//!     .to_memory("stats");
//! query.start()?.await_termination()?;
//! // Update mode: a row per change; the last one of a key is its aggregate.
//! let pump_1 = stats.rows().into_iter().filter(|(pump, _)| *pump == 1).last();
//! assert_eq!(pump_1, Some((1, (3, 50.0, 48.0, 49.0))));
//! # Ok::<(), rivulet::Error>(())
//! ```
//!
//! A closure's parameter type must be known where the closure is written, so the
//! functions' closures name their record type (`|r: &Reading| r.hz`); the field types,
//! accumulators and results are inferred. [`Over`] (and
//! [`KeyedStream::agg_with`](crate::KeyedStream::agg_with)) offers the same functions with
//! the record type fixed, for closures without annotations.
//!
//! # The built-ins, and Spark
//!
//! | function | accumulator | result | Spark |
//! |---|---|---|---|
//! | [`count()`] | `u64` | `u64` | `count(*)`: long |
//! | [`sum(f)`](sum()) | [`Number::Sum`] | `i64`, `u64` or `f64` | `sum`: long for integers, double for floats |
//! | [`min(f)`](min()), [`max(f)`](max()) | `Option<V>` | `V` | `min`, `max`: NaN greater than every number |
//! | [`avg(f)`](avg()) | `(f64, u64)`: sum, count | `f64` | `avg` (`Average`): double sum and count |
//! | [`fold(init, add)`](fold()) | the fold's | the accumulator | (no merge: not for sliding or session windows) |
//! | [`aggregate(init, add, merge, result)`](aggregate()) | the user's | the user's | `Aggregator` |
//! | `(a, b, …)`, 2 to 8 aggregates | the tuple of theirs | the tuple of theirs | `agg(a, b, …)` |
//!
//! Where rivulet differs from Spark:
//!
//! * **Empty groups.** Spark's `sum`, `min`, `max` and `avg` of no rows are null. Keys
//!   and windows always hold records, so rivulet's results are plain values, and asking
//!   for the result of an accumulator no record was added to is the caller's mistake:
//!   `count` and `sum` give 0, `avg` NaN, and `min` and `max` panic.
//! * **Integer overflow.** Integer sums wrap, as Spark's long sum does with ANSI mode
//!   off (Spark 4 turns ANSI on by default and then fails the query). See [`Number`].
//! * **Unsigned sums** widen to `u64` (Spark has no unsigned types).
//!
//! # Merging
//!
//! Every built-in's `merge` agrees with adding the records one by one: exactly for
//! `count`, integer `sum`, and `min` and `max` (whatever the split, including empty
//! parts, and keeping the same one of equal values, such as `0.0` and `-0.0`); for
//! float `sum` and for `avg` the partial sums are added, which may differ from the
//! sequential sum by rounding (as Spark's partial aggregation may). `fold` cannot be
//! merged ([`Aggregate::mergeable`] is `false`).

use serde::de::DeserializeOwned;
use serde::Serialize;

/// An aggregate function over records of type `T`.
///
/// Accumulators are serde values: they are what checkpoints save.
pub trait Aggregate<T>: Clone + Send + 'static {
    /// The running state of the aggregate over some records.
    type Acc: Clone + Send + Serialize + DeserializeOwned + 'static;
    /// The result.
    type Out: Clone + Send + 'static;

    /// The accumulator of no records.
    fn init(&self) -> Self::Acc;

    /// Adds one record.
    fn add(&self, acc: &mut Self::Acc, record: &T);

    /// Whether [`merge`](Self::merge) is implemented. Sliding and session windows need
    /// it (they combine partial accumulators); tumbling windows and running aggregates
    /// do not.
    fn mergeable(&self) -> bool {
        true
    }

    /// Adds the records `other` accumulated to `acc`, as if they had been added one by
    /// one after those of `acc`.
    fn merge(&self, acc: &mut Self::Acc, other: &Self::Acc);

    /// The result over the records accumulated in `acc`.
    fn result(&self, acc: &Self::Acc) -> Self::Out;
}

mod builtin;
mod tuple;

pub use builtin::{
    aggregate, avg, count, fold, max, min, sum, Avg, Count, Custom, Fold, Max, Min, Number, Over,
    Sum,
};

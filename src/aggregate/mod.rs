//! Aggregate functions: what a keyed running aggregate or a window computes over its
//! records (Spark's `agg(count, sum, min, max, avg, …)`).
//!
//! An [`Aggregate`] folds records into an accumulator (`init`, `add`), can combine two
//! accumulators (`merge`: what sliding windows need to combine their slices and session
//! windows to merge sessions), and turns an accumulator into its result. Tuples of
//! aggregates are aggregates, so one operator computes several at once:
//!
//! ```ignore
//! key_by(|r| r.pump).agg((max(|r| r.hz), min(|r| r.hz), avg(|r| r.hz)))
//! ```

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

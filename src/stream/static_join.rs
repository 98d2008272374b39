//! Stream–static joins: [`Stream::join_static`], [`Stream::left_outer_join_static`] and
//! their combiner variants.
//!
//! Spark's rules for a stream–static join (Structured Streaming programming guide,
//! "Support matrix for joins in streaming queries") apply: with the stream on the left,
//! inner and left outer joins are supported and stateless; right and full outer joins are
//! not, since whether a table row matched no record of an unbounded stream is never
//! final. rivulet offers exactly the supported two (a left semi join is a `filter` on
//! [`StaticTable::contains_key`](crate::table::StaticTable::contains_key)).

use super::{Chain, Stream, Then};
use crate::operator::static_join::{Pair, StaticJoin, StaticLeftOuterJoin, With};
use crate::plan::OperatorKind;
use crate::table::JoinTable;
use std::borrow::Borrow;
use std::hash::Hash;

impl<S: Chain> Stream<S> {
    /// The inner join of this stream with a static table (Spark's stream–static inner
    /// join): every record is looked up under `key(&record)` and gives one `(record,
    /// row)` per matching row (one-to-many: a key with three rows gives three outputs), none
    /// if the table has no row for it. The record is cloned for every match but the last;
    /// the row is cloned. [`join_static_with`](Self::join_static_with) builds the output
    /// from references instead.
    ///
    /// `table` is a [`StaticTable`](crate::table::StaticTable), shared (not copied) by
    /// every instance, or a [`ReloadableTable`](crate::table::ReloadableTable), whose new
    /// versions take effect at epoch boundaries. `key` borrows the key from the record
    /// (`|r| &r.id`, `|r| r.name.as_str()` for a `String`-keyed table), so a lookup hashes
    /// it once and allocates nothing. The join is stateless and runs on the upstream's
    /// thread, like `map`.
    ///
    /// Keys compare with `Eq`: where Spark's join never matches a null key, an
    /// `Option` key `None` matches the table's `None` rows. Only the joins Spark supports
    /// for a stream and a static table exist: this one and
    /// [`left_outer_join_static`](Self::left_outer_join_static).
    ///
    /// ```
    /// use rivulet::table::StaticTable;
    ///
    /// let vendors = StaticTable::from_pairs([(1u32, "HydroPump"), (2, "Pumps Inc"), (2, "Acme")]);
    /// let mut query = rivulet::Query::builder();
    /// let joined = query
    ///     .from_iter("alerts", [(1u32, 0.2), (2, 0.4), (3, 0.1)])
    ///     .join_static(&vendors, |alert| &alert.0)
    ///     .to_memory("joined");
    /// query.start()?.await_termination()?;
    /// assert_eq!(
    ///     joined.rows(),
    ///     [((1, 0.2), "HydroPump"), ((2, 0.4), "Pumps Inc"), ((2, 0.4), "Acme")]
    /// );
    /// # Ok::<(), rivulet::Error>(())
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn join_static<J, Q, KF>(
        self,
        table: &J,
        key: KF,
    ) -> Stream<Then<S, StaticJoin<J::Source, KF, Pair, Q>>>
    where
        J: JoinTable,
        J::Key: Borrow<Q> + Hash + Eq,
        J::Row: Clone + Send + 'static,
        S::Out: Clone,
        Q: Hash + Eq + ?Sized + 'static,
        KF: FnMut(&S::Out) -> &Q + Clone + Send + 'static,
    {
        let source = table.join_source(self.parallelism);
        let op = StaticJoin::new(source, key, Pair);
        self.then("join_static", OperatorKind::Transform, op)
    }

    /// The inner join with a static table, each output made by `combine(&record, &row)`:
    /// as [`join_static`](Self::join_static), without cloning what `combine` does not
    /// need.
    ///
    /// ```
    /// use rivulet::table::StaticTable;
    ///
    /// let names = StaticTable::from_pairs([("p1".to_string(), "COHUTTA".to_string())]);
    /// let mut query = rivulet::Query::builder();
    /// let joined = query
    ///     .from_iter("alerts", [("p1".to_string(), 0.2), ("p9".to_string(), 0.3)])
    ///     .join_static_with(&names, |alert| alert.0.as_str(), |alert, name| format!("{name} {}", alert.1))
    ///     .to_memory("joined");
    /// query.start()?.await_termination()?;
    /// assert_eq!(joined.rows(), ["COHUTTA 0.2"]);
    /// # Ok::<(), rivulet::Error>(())
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn join_static_with<J, Q, KF, F, O>(
        self,
        table: &J,
        key: KF,
        combine: F,
    ) -> Stream<Then<S, StaticJoin<J::Source, KF, With<F>, Q>>>
    where
        J: JoinTable,
        J::Key: Borrow<Q> + Hash + Eq,
        Q: Hash + Eq + ?Sized + 'static,
        KF: FnMut(&S::Out) -> &Q + Clone + Send + 'static,
        F: FnMut(&S::Out, &J::Row) -> O + Clone + Send + 'static,
        O: Send + 'static,
    {
        let source = table.join_source(self.parallelism);
        let op = StaticJoin::new(source, key, With(combine));
        self.then("join_static", OperatorKind::Transform, op)
    }

    /// The left outer join of this stream with a static table (Spark's stream–static
    /// left outer join, the stream on the outer side): as
    /// [`join_static`](Self::join_static), and a record without a matching row gives one
    /// `(record, None)`.
    ///
    /// Spark's rules for stream–static joins apply (Structured Streaming programming
    /// guide, "Support matrix for joins in streaming queries"): with the stream on the
    /// left, inner and left outer joins are supported and stateless; right and full outer
    /// joins, where the static side is outer, are not, since that a table row matched no
    /// record of an unbounded stream is never final. A left semi join is a `filter` on
    /// [`StaticTable::contains_key`](crate::table::StaticTable::contains_key).
    ///
    /// ```
    /// use rivulet::table::StaticTable;
    ///
    /// let maint = StaticTable::from_pairs([("COHUTTA", "seal"), ("COHUTTA", "pump")]);
    /// let mut query = rivulet::Query::builder();
    /// let joined = query
    ///     .from_iter("alerts", ["COHUTTA", "MOJAVE"])
    ///     .left_outer_join_static(&maint, |alert: &&str| *alert)
    ///     .to_memory("joined");
    /// query.start()?.await_termination()?;
    /// assert_eq!(
    ///     joined.rows(),
    ///     [("COHUTTA", Some("seal")), ("COHUTTA", Some("pump")), ("MOJAVE", None)]
    /// );
    /// # Ok::<(), rivulet::Error>(())
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn left_outer_join_static<J, Q, KF>(
        self,
        table: &J,
        key: KF,
    ) -> Stream<Then<S, StaticLeftOuterJoin<J::Source, KF, Pair, Q>>>
    where
        J: JoinTable,
        J::Key: Borrow<Q> + Hash + Eq,
        J::Row: Clone + Send + 'static,
        S::Out: Clone,
        Q: Hash + Eq + ?Sized + 'static,
        KF: FnMut(&S::Out) -> &Q + Clone + Send + 'static,
    {
        let source = table.join_source(self.parallelism);
        let op = StaticLeftOuterJoin::new(source, key, Pair);
        self.then("left_outer_join_static", OperatorKind::Transform, op)
    }

    /// The left outer join with a static table, each output made by
    /// `combine(&record, Some(&row))`, or `combine(&record, None)` for a record without a
    /// match.
    #[allow(clippy::type_complexity)]
    pub fn left_outer_join_static_with<J, Q, KF, F, O>(
        self,
        table: &J,
        key: KF,
        combine: F,
    ) -> Stream<Then<S, StaticLeftOuterJoin<J::Source, KF, With<F>, Q>>>
    where
        J: JoinTable,
        J::Key: Borrow<Q> + Hash + Eq,
        Q: Hash + Eq + ?Sized + 'static,
        KF: FnMut(&S::Out) -> &Q + Clone + Send + 'static,
        F: FnMut(&S::Out, Option<&J::Row>) -> O + Clone + Send + 'static,
        O: Send + 'static,
    {
        let source = table.join_source(self.parallelism);
        let op = StaticLeftOuterJoin::new(source, key, With(combine));
        self.then("left_outer_join_static", OperatorKind::Transform, op)
    }
}

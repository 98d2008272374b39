//! Stream–static joins: every record looked up by key in a [`StaticTable`](crate::table::StaticTable)
//! held by the operator ([`StaticJoin`] inner, [`StaticLeftOuterJoin`] left outer), one
//! output per matching row. Stateless (the table is not state: nothing to snapshot), so
//! they chain onto the upstream thread like `map`. See
//! [`Stream::join_static`](crate::Stream::join_static).

use super::{Context, Operator};
use crate::event::Epoch;
use crate::table::TableSource;
use std::borrow::Borrow;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;

/// How an inner join builds an output from a record and one of its matching rows.
///
/// Implemented by [`Pair`] (`(record, row)`, cloning both) and [`With`] (a closure
/// `FnMut(&T, &V) -> O`).
pub trait Combine<T, V>: Clone + Send + 'static {
    /// The join's output.
    type Out;
    /// A match that is not the record's last.
    fn one(&mut self, record: &T, row: &V) -> Self::Out;
    /// The record's last match: the record can be moved into the output.
    fn last(&mut self, record: T, row: &V) -> Self::Out;
}

/// How a left outer join builds an output from a record and one of its matching rows,
/// or `None` when it has none.
///
/// Implemented by [`Pair`] (`(record, Option<row>)`) and [`With`] (a closure
/// `FnMut(&T, Option<&V>) -> O`).
pub trait CombineOuter<T, V>: Clone + Send + 'static {
    /// The join's output.
    type Out;
    /// A match that is not the record's last.
    fn one(&mut self, record: &T, row: Option<&V>) -> Self::Out;
    /// The record's last match, or `None` for a record without one: the record can be
    /// moved into the output.
    fn last(&mut self, record: T, row: Option<&V>) -> Self::Out;
}

/// Output `(record, row)`: the record cloned for every match but the last, which takes
/// it; the row cloned.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pair;

impl<T: Clone, V: Clone> Combine<T, V> for Pair {
    type Out = (T, V);
    #[inline(always)]
    fn one(&mut self, record: &T, row: &V) -> (T, V) {
        (record.clone(), row.clone())
    }
    #[inline(always)]
    fn last(&mut self, record: T, row: &V) -> (T, V) {
        (record, row.clone())
    }
}

impl<T: Clone, V: Clone> CombineOuter<T, V> for Pair {
    type Out = (T, Option<V>);
    #[inline(always)]
    fn one(&mut self, record: &T, row: Option<&V>) -> (T, Option<V>) {
        (record.clone(), row.cloned())
    }
    #[inline(always)]
    fn last(&mut self, record: T, row: Option<&V>) -> (T, Option<V>) {
        (record, row.cloned())
    }
}

/// Output what a closure makes of the record and the row (by reference: nothing is
/// cloned that the closure does not clone).
#[derive(Clone, Copy)]
pub struct With<F>(pub F);

impl<F> fmt::Debug for With<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("With(..)")
    }
}

impl<T, V, O, F> Combine<T, V> for With<F>
where
    F: FnMut(&T, &V) -> O + Clone + Send + 'static,
{
    type Out = O;
    #[inline(always)]
    fn one(&mut self, record: &T, row: &V) -> O {
        (self.0)(record, row)
    }
    #[inline(always)]
    fn last(&mut self, record: T, row: &V) -> O {
        (self.0)(&record, row)
    }
}

impl<T, V, O, F> CombineOuter<T, V> for With<F>
where
    F: FnMut(&T, Option<&V>) -> O + Clone + Send + 'static,
{
    type Out = O;
    #[inline(always)]
    fn one(&mut self, record: &T, row: Option<&V>) -> O {
        (self.0)(record, row)
    }
    #[inline(always)]
    fn last(&mut self, record: T, row: Option<&V>) -> O {
        (self.0)(&record, row)
    }
}

/// The inner stream–static join: for each record, one output per row of the table under
/// the record's key, none if there is none. See
/// [`Stream::join_static`](crate::Stream::join_static).
///
/// `Tab` is the table (or a reloadable table's view), `KF` the key function, borrowing
/// the key (of type `Q`) from the record, `C` how outputs are built.
pub struct StaticJoin<Tab, KF, C, Q: ?Sized> {
    table: Tab,
    key: KF,
    combine: C,
    _key: PhantomData<fn(&Q)>,
}

/// The left outer stream–static join: as [`StaticJoin`], and a record without a matching
/// row gives one output with `None`. See
/// [`Stream::left_outer_join_static`](crate::Stream::left_outer_join_static).
pub struct StaticLeftOuterJoin<Tab, KF, C, Q: ?Sized> {
    table: Tab,
    key: KF,
    combine: C,
    _key: PhantomData<fn(&Q)>,
}

macro_rules! join_common {
    ($join:ident) => {
        impl<Tab, KF, C, Q: ?Sized> $join<Tab, KF, C, Q> {
            /// The join of records keyed by `key` with `table`, outputs built by `combine`.
            pub fn new(table: Tab, key: KF, combine: C) -> Self {
                $join {
                    table,
                    key,
                    combine,
                    _key: PhantomData,
                }
            }

            /// The table this instance joins with (for tests: every instance shares the
            /// rows of one table, see [`StaticTable::ptr_eq`](crate::table::StaticTable::ptr_eq)).
            pub fn table_source(&self) -> &Tab {
                &self.table
            }
        }

        impl<Tab: Clone, KF: Clone, C: Clone, Q: ?Sized> Clone for $join<Tab, KF, C, Q> {
            fn clone(&self) -> Self {
                $join {
                    table: self.table.clone(),
                    key: self.key.clone(),
                    combine: self.combine.clone(),
                    _key: PhantomData,
                }
            }
        }

        impl<Tab: fmt::Debug, KF, C, Q: ?Sized> fmt::Debug for $join<Tab, KF, C, Q> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($join))
                    .field("table", &self.table)
                    .finish_non_exhaustive()
            }
        }
    };
}

join_common!(StaticJoin);
join_common!(StaticLeftOuterJoin);

impl<T, Tab, KF, C, Q> Operator<T> for StaticJoin<Tab, KF, C, Q>
where
    Tab: TableSource,
    Tab::Key: Borrow<Q> + Hash + Eq,
    Q: Hash + Eq + ?Sized + 'static,
    KF: FnMut(&T) -> &Q + Send + 'static,
    C: Combine<T, Tab::Row>,
{
    type Out = C::Out;
    type Key = ();
    type Side = ();

    #[inline(always)]
    fn on_record<X: Context<C::Out>>(&mut self, record: T, out: &mut X) {
        let rows = self.table.table().get((self.key)(&record));
        if let Some((last, rest)) = rows.split_last() {
            for row in rest {
                out.push(self.combine.one(&record, row));
            }
            out.push(self.combine.last(record, last));
        }
    }

    fn on_marker<X: Context<C::Out>>(&mut self, epoch: Epoch, _out: &mut X) {
        self.table.on_marker(epoch);
    }
}

impl<T, Tab, KF, C, Q> Operator<T> for StaticLeftOuterJoin<Tab, KF, C, Q>
where
    Tab: TableSource,
    Tab::Key: Borrow<Q> + Hash + Eq,
    Q: Hash + Eq + ?Sized + 'static,
    KF: FnMut(&T) -> &Q + Send + 'static,
    C: CombineOuter<T, Tab::Row>,
{
    type Out = C::Out;
    type Key = ();
    type Side = ();

    #[inline(always)]
    fn on_record<X: Context<C::Out>>(&mut self, record: T, out: &mut X) {
        let rows = self.table.table().get((self.key)(&record));
        match rows.split_last() {
            Some((last, rest)) => {
                for row in rest {
                    out.push(self.combine.one(&record, Some(row)));
                }
                out.push(self.combine.last(record, Some(last)));
            }
            None => out.push(self.combine.last(record, None)),
        }
    }

    fn on_marker<X: Context<C::Out>>(&mut self, epoch: Epoch, _out: &mut X) {
        self.table.on_marker(epoch);
    }
}

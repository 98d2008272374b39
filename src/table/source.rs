//! What a stream–static join reads its table through: [`JoinTable`] (what the join
//! combinators accept) and [`TableSource`] (what each join instance holds).

use super::StaticTable;
use crate::event::Epoch;

/// What each instance of a stream–static join holds to reach its table: the table to
/// look records up in, and a hook at every epoch boundary where a new version may take
/// effect.
///
/// The lookup path is [`table`](Self::table), an inlined field read; a version can change
/// only in [`on_marker`](Self::on_marker), never between two records of one epoch.
pub trait TableSource: Clone + Send + 'static {
    /// The table's key.
    type Key;
    /// The table's rows.
    type Row;

    /// The version to look records up in.
    fn table(&self) -> &StaticTable<Self::Key, Self::Row>;

    /// The marker of `epoch` passed the join: records after it belong to the next
    /// epoch. A reloadable table switches versions here; the default does nothing.
    fn on_marker(&mut self, epoch: Epoch) {
        let _ = epoch;
    }
}

impl<K, V> TableSource for StaticTable<K, V>
where
    K: Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    type Key = K;
    type Row = V;

    #[inline(always)]
    fn table(&self) -> &StaticTable<K, V> {
        self
    }
}

/// A table a stream can be joined with ([`Stream::join_static`](crate::Stream::join_static)
/// and its variants): a [`StaticTable`] (shared as it is) or a
/// [`ReloadableTable`](super::ReloadableTable) (each join gets a view that switches
/// versions at epoch boundaries).
pub trait JoinTable {
    /// The table's key.
    type Key;
    /// The table's rows.
    type Row;
    /// What each instance of the join holds.
    type Source: TableSource<Key = Self::Key, Row = Self::Row>;

    /// The source for one join of `parallelism` instances (cloned once per instance).
    fn join_source(&self, parallelism: usize) -> Self::Source;
}

impl<K, V> JoinTable for StaticTable<K, V>
where
    K: Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    type Key = K;
    type Row = V;
    type Source = StaticTable<K, V>;

    fn join_source(&self, _parallelism: usize) -> StaticTable<K, V> {
        self.clone()
    }
}

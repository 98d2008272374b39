//! Static tables for stream–static joins (Spark's stream–static join; Spark Streaming's
//! broadcast variables): [`StaticTable`], loaded once from a `Vec`, an iterator or a
//! CSV file ([`CsvTable`]) and shared read-only by every instance of every operator that
//! joins with it, and [`ReloadableTable`], whose new versions take effect at epoch
//! boundaries.
//!
//! ```
//! use rivulet::table::StaticTable;
//!
//! #[derive(Debug, Clone, PartialEq)]
//! struct Maint {
//!     pump: String,
//!     technician: String,
//! }
//! let maint = |pump: &str, technician: &str| Maint { pump: pump.into(), technician: technician.into() };
//!
//! // Several rows per key: a pump has several maintenance events.
//! let table = StaticTable::from_rows(
//!     vec![maint("COHUTTA", "J.Thomas"), maint("BUTTE", "T.Boone"), maint("COHUTTA", "W.Stevens")],
//!     |row| row.pump.clone(),
//! );
//! let events: Vec<&str> = table.get("COHUTTA").iter().map(|m| m.technician.as_str()).collect();
//! assert_eq!(events, ["J.Thomas", "W.Stevens"]); // in input order
//! assert!(table.get("MOJAVE").is_empty());
//! assert_eq!((table.len(), table.key_count()), (3, 2));
//!
//! // Joined with a stream: one output per matching row.
//! let mut query = rivulet::Query::builder();
//! let joined = query
//!     .from_iter("alerts", ["BUTTE", "COHUTTA", "MOJAVE"])
//!     .join_static_with(&table, |alert: &&str| *alert, |alert, m| format!("{alert}: {}", m.technician))
//!     .to_memory("joined");
//! query.start()?.await_termination()?;
//! assert_eq!(joined.rows(), ["BUTTE: T.Boone", "COHUTTA: J.Thomas", "COHUTTA: W.Stevens"]);
//! # Ok::<(), rivulet::Error>(())
//! ```
//!
//! ## Files
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | [`StaticTable`]: the rows grouped by key in one `Vec`, an `FxHashMap` from key to its rows' range, behind one `Arc` |
//! | `csv.rs` | [`CsvTable`]: loading a table from a CSV file with the project's decoder and malformed-row modes; [`TableError`], [`LoadReport`] |
//! | `reload.rs` | [`ReloadableTable`] and the per-join view that switches versions at epoch boundaries |
//! | `source.rs` | [`JoinTable`] and [`TableSource`]: what a join reads its table through |

mod csv;
mod reload;
mod source;

pub use self::csv::{CsvTable, LoadReport, TableError};
pub use reload::{ReloadView, ReloadableTable};
pub use source::{JoinTable, TableSource};

use rustc_hash::FxHashMap;
use std::borrow::Borrow;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

/// A read-only table of rows `V` by key `K`, several rows per key allowed, shared by
/// reference count: cloning it (as every instance of a join does) copies a pointer, never
/// the rows.
///
/// The rows sit in one `Vec`, grouped by key in the order they were given (rows of one
/// key keep their input order); an `FxHashMap` maps each key to its rows' range. A lookup
/// ([`get`](Self::get)) hashes the key once and returns a slice: no allocation. The key
/// can be looked up by any borrowed form (`&str` for a `String` key), as with
/// `HashMap::get`.
///
/// See the [module docs](self) for an example.
pub struct StaticTable<K, V> {
    inner: Arc<Inner<K, V>>,
}

struct Inner<K, V> {
    /// Key → its rows, `rows[start..end]`.
    index: FxHashMap<K, (usize, usize)>,
    /// The rows, grouped by key.
    rows: Vec<V>,
}

impl<K, V> Clone for StaticTable<K, V> {
    fn clone(&self) -> Self {
        StaticTable {
            inner: self.inner.clone(),
        }
    }
}

impl<K, V> fmt::Debug for StaticTable<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticTable")
            .field("keys", &self.inner.index.len())
            .field("rows", &self.inner.rows.len())
            .finish()
    }
}

impl<K: Hash + Eq, V> Default for StaticTable<K, V> {
    fn default() -> Self {
        StaticTable::from_pairs(std::iter::empty())
    }
}

impl<K: Hash + Eq, V> StaticTable<K, V> {
    /// A table of `rows`, each under the key `key` extracts from it.
    pub fn from_rows(rows: impl IntoIterator<Item = V>, mut key: impl FnMut(&V) -> K) -> Self {
        Self::from_pairs(rows.into_iter().map(|row| (key(&row), row)))
    }

    /// A table of `(key, row)` pairs (also [`FromIterator`]).
    ///
    /// ```
    /// use rivulet::table::StaticTable;
    ///
    /// let table: StaticTable<u32, &str> = [(1, "a"), (2, "b"), (1, "c")].into_iter().collect();
    /// assert_eq!(table.get(&1), ["a", "c"]);
    /// ```
    pub fn from_pairs(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        // Group by key keeping the input order within a key, then lay the groups out
        // one after another.
        let mut groups: FxHashMap<K, usize> = FxHashMap::default();
        let mut grouped: Vec<Vec<V>> = Vec::new();
        for (key, row) in pairs {
            match groups.get(&key) {
                Some(&group) => grouped[group].push(row),
                None => {
                    groups.insert(key, grouped.len());
                    grouped.push(vec![row]);
                }
            }
        }
        let mut order: Vec<(K, usize)> = groups.into_iter().collect();
        order.sort_unstable_by_key(|(_, group)| *group);
        let total = grouped.iter().map(Vec::len).sum();
        let mut rows = Vec::with_capacity(total);
        let mut index = FxHashMap::default();
        index.reserve(order.len());
        for ((key, _), group) in order.into_iter().zip(grouped) {
            let start = rows.len();
            rows.extend(group);
            index.insert(key, (start, rows.len()));
        }
        StaticTable {
            inner: Arc::new(Inner { index, rows }),
        }
    }

    /// The rows of `key`, in input order; empty if it has none. One hash lookup, no
    /// allocation.
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> &[V]
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self.inner.index.get(key) {
            Some(&(start, end)) => &self.inner.rows[start..end],
            None => &[],
        }
    }

    /// Whether `key` has rows.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.index.contains_key(key)
    }

    /// Every key with its rows (in no particular order of keys).
    pub fn iter(&self) -> impl Iterator<Item = (&K, &[V])> + '_ {
        self.inner
            .index
            .iter()
            .map(|(key, &(start, end))| (key, &self.inner.rows[start..end]))
    }
}

impl<K, V> StaticTable<K, V> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.inner.rows.len()
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.inner.rows.is_empty()
    }

    /// Number of distinct keys.
    pub fn key_count(&self) -> usize {
        self.inner.index.len()
    }

    /// Every row, grouped by key (rows of one key in input order).
    pub fn rows(&self) -> &[V] {
        &self.inner.rows
    }

    /// Whether `a` and `b` share their rows (one is a clone of the other): what every
    /// instance of a join holds.
    ///
    /// ```
    /// use rivulet::table::StaticTable;
    ///
    /// let table = StaticTable::from_rows(vec![1u8, 2, 3], |n| n % 2);
    /// assert!(StaticTable::ptr_eq(&table, &table.clone()));
    /// assert!(!StaticTable::ptr_eq(&table, &StaticTable::from_rows(vec![1u8, 2, 3], |n| n % 2)));
    /// ```
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.inner, &b.inner)
    }

    /// How many handles share these rows (the table itself, its clones, the joins'
    /// instances that hold it): `Arc::strong_count` of the shared rows.
    pub fn handle_count(&self) -> usize {
        Arc::strong_count(&self.inner)
    }
}

impl<K: Hash + Eq, V> FromIterator<(K, V)> for StaticTable<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        StaticTable::from_pairs(pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_grouped_by_key_in_input_order() {
        let pairs = [(3, 'a'), (1, 'b'), (3, 'c'), (2, 'd'), (1, 'e'), (3, 'f')];
        let table: StaticTable<u8, char> = pairs.into_iter().collect();
        for key in 0..5u8 {
            let want: Vec<char> = pairs
                .iter()
                .filter(|(k, _)| *k == key)
                .map(|(_, v)| *v)
                .collect();
            assert_eq!(table.get(&key), want.as_slice(), "key {key}");
            assert_eq!(table.contains_key(&key), !want.is_empty());
        }
        assert_eq!((table.len(), table.key_count()), (6, 3));
        let mut seen: Vec<(u8, usize)> = table.iter().map(|(k, v)| (*k, v.len())).collect();
        seen.sort();
        assert_eq!(seen, [(1, 2), (2, 1), (3, 3)]);
        assert_eq!(table.rows().len(), 6);
    }

    #[test]
    fn clones_share_the_rows() {
        let table = StaticTable::from_rows(vec!["a".to_string()], |s| s.clone());
        assert_eq!(table.handle_count(), 1);
        let copy = table.clone();
        assert_eq!(table.handle_count(), 2);
        assert!(std::ptr::eq(table.get("a"), copy.get("a")));
        drop(copy);
        assert_eq!(table.handle_count(), 1);
        let empty: StaticTable<String, String> = StaticTable::default();
        assert!(empty.is_empty() && empty.get("a").is_empty());
    }
}

//! Keyed running aggregates: state per key, updated and emitted one record at a time.
//!
//! Input records arrive as `(key, record)` pairs from a keyed exchange (see
//! [`Stream::key_by`](crate::Stream::key_by)), so every record of one key reaches the same
//! operator instance, and that instance owns the key's state. Each record emits the
//! key's updated aggregate (Spark's *update* output mode, continuously).

use super::{Collector, Operator};
use crate::checkpoint::codec;
use crate::error::BoxError;
use rustc_hash::FxHashMap;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::hash::Hash;

/// Folds the records of each key into an accumulator and emits `(key, accumulator)`
/// after every record. `count`, `fold` and `count_by_value` are built on it.
#[derive(Debug, Clone)]
pub struct KeyedFold<K, A, I, F> {
    state: FxHashMap<K, A>,
    init: I,
    fold: F,
}

impl<K, A, I, F> KeyedFold<K, A, I, F> {
    /// A fold that starts each key at `init()` and applies `fold(&mut acc, record)`.
    pub fn new(init: I, fold: F) -> Self {
        KeyedFold {
            state: FxHashMap::default(),
            init,
            fold,
        }
    }
}

impl<K, T, A, I, F> Operator<(K, T)> for KeyedFold<K, A, I, F>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    A: Clone + Send + Serialize + DeserializeOwned + 'static,
    I: FnMut() -> A + Send + 'static,
    F: FnMut(&mut A, T) + Send + 'static,
{
    type Out = (K, A);

    #[inline]
    fn on_record<C: Collector<(K, A)>>(&mut self, (key, record): (K, T), out: &mut C) {
        match self.state.get_mut(&key) {
            Some(acc) => {
                (self.fold)(acc, record);
                let acc = acc.clone();
                out.push((key, acc));
            }
            None => {
                let mut acc = (self.init)();
                (self.fold)(&mut acc, record);
                self.state.insert(key.clone(), acc.clone());
                out.push((key, acc));
            }
        }
    }

    fn snapshot(&self) -> Result<Option<Vec<u8>>, BoxError> {
        Ok(Some(codec::encode(&self.state)?))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), BoxError> {
        self.state = codec::decode(state)?;
        Ok(())
    }
}

/// Combines the records of each key pairwise (`reduce(&mut acc, record)`, the first record
/// of a key being its initial value) and emits `(key, acc)` after every record.
#[derive(Debug, Clone)]
pub struct KeyedReduce<K, T, F> {
    state: FxHashMap<K, T>,
    reduce: F,
}

impl<K, T, F> KeyedReduce<K, T, F> {
    /// A reduce applying `reduce(&mut acc, record)`.
    pub fn new(reduce: F) -> Self {
        KeyedReduce {
            state: FxHashMap::default(),
            reduce,
        }
    }
}

impl<K, T, F> Operator<(K, T)> for KeyedReduce<K, T, F>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    T: Clone + Send + Serialize + DeserializeOwned + 'static,
    F: FnMut(&mut T, T) + Send + 'static,
{
    type Out = (K, T);

    #[inline]
    fn on_record<C: Collector<(K, T)>>(&mut self, (key, record): (K, T), out: &mut C) {
        match self.state.get_mut(&key) {
            Some(acc) => {
                (self.reduce)(acc, record);
                let acc = acc.clone();
                out.push((key, acc));
            }
            None => {
                self.state.insert(key.clone(), record.clone());
                out.push((key, record));
            }
        }
    }

    fn snapshot(&self) -> Result<Option<Vec<u8>>, BoxError> {
        Ok(Some(codec::encode(&self.state)?))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), BoxError> {
        self.state = codec::decode(state)?;
        Ok(())
    }
}

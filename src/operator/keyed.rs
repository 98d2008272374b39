//! Keyed running aggregates: state per key, updated and emitted one record at a time.
//!
//! Input records arrive as `(key, record)` pairs from a keyed exchange (see
//! [`Stream::key_by`](crate::Stream::key_by)), so every record of one key reaches the same
//! operator instance, and that instance owns the key's state.
//!
//! What they emit follows the epoch's [`EmitMode`]:
//!
//! | output mode | continuous epoch | micro-batch epoch |
//! |---|---|---|
//! | update | `(key, aggregate)` after every record | each changed key once, at the batch end |
//! | complete | every key, at each epoch end | every key, at each batch end |
//!
//! and at end-of-stream whatever is still owed (the changed keys, or the whole table).

use super::{Collector, Context, Operator};
use crate::checkpoint::codec;
use crate::error::BoxError;
use crate::event::Epoch;
use crate::trigger::{EmitMode, ExecutionMode, OutputMode};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::hash::Hash;

/// Folds the records of each key into an accumulator and emits `(key, accumulator)`
/// after every record. `count`, `fold` and `count_by_value` are built on it.
#[derive(Debug, Clone)]
pub struct KeyedFold<K, A, I, F> {
    state: FxHashMap<K, A>,
    emit: Emission<K>,
    init: I,
    fold: F,
}

impl<K, A, I, F> KeyedFold<K, A, I, F> {
    /// A fold that starts each key at `init()` and applies `fold(&mut acc, record)`.
    pub fn new(init: I, fold: F) -> Self {
        KeyedFold {
            state: FxHashMap::default(),
            emit: Emission::default(),
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
    type Key = ();
    type Side = ();

    #[inline]
    fn on_record<C: Context<(K, A)>>(&mut self, (key, record): (K, T), out: &mut C) {
        if let Some(acc) = self.state.get_mut(&key) {
            (self.fold)(acc, record);
            self.emit.updated(key, acc, out);
        } else {
            let mut acc = (self.init)();
            (self.fold)(&mut acc, record);
            self.emit.updated(key.clone(), &acc, out);
            self.state.insert(key, acc);
        }
    }

    fn on_marker<C: Context<(K, A)>>(&mut self, _epoch: Epoch, out: &mut C) {
        self.emit.owed(&self.state, out);
    }

    fn on_end<C: Context<(K, A)>>(&mut self, out: &mut C) {
        self.emit.owed(&self.state, out);
    }

    fn set_emit_mode(&mut self, mode: EmitMode) {
        self.emit.mode = mode;
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
    emit: Emission<K>,
    reduce: F,
}

impl<K, T, F> KeyedReduce<K, T, F> {
    /// A reduce applying `reduce(&mut acc, record)`.
    pub fn new(reduce: F) -> Self {
        KeyedReduce {
            state: FxHashMap::default(),
            emit: Emission::default(),
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
    type Key = ();
    type Side = ();

    #[inline]
    fn on_record<C: Context<(K, T)>>(&mut self, (key, record): (K, T), out: &mut C) {
        if let Some(acc) = self.state.get_mut(&key) {
            (self.reduce)(acc, record);
            self.emit.updated(key, acc, out);
        } else {
            self.emit.updated(key.clone(), &record, out);
            self.state.insert(key, record);
        }
    }

    fn on_marker<C: Context<(K, T)>>(&mut self, _epoch: Epoch, out: &mut C) {
        self.emit.owed(&self.state, out);
    }

    fn on_end<C: Context<(K, T)>>(&mut self, out: &mut C) {
        self.emit.owed(&self.state, out);
    }

    fn set_emit_mode(&mut self, mode: EmitMode) {
        self.emit.mode = mode;
    }

    fn snapshot(&self) -> Result<Option<Vec<u8>>, BoxError> {
        Ok(Some(codec::encode(&self.state)?))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), BoxError> {
        self.state = codec::decode(state)?;
        Ok(())
    }
}

/// Which rows of a keyed aggregate are owed downstream, and when (see the module docs).
#[derive(Debug, Clone)]
struct Emission<K> {
    mode: EmitMode,
    /// Keys changed since the last epoch end (micro-batch update mode only).
    changed: FxHashSet<K>,
}

impl<K> Default for Emission<K> {
    fn default() -> Self {
        Emission {
            mode: EmitMode::default(),
            changed: FxHashSet::default(),
        }
    }
}

impl<K: Hash + Eq + Clone> Emission<K> {
    /// `key`'s aggregate is now `value`: emit it at once (continuous update), or
    /// remember that it changed (micro-batch update), or nothing (complete: the whole
    /// table goes out at the epoch end anyway).
    #[inline]
    fn updated<V: Clone, C: Collector<(K, V)>>(&mut self, key: K, value: &V, out: &mut C) {
        match (self.mode.output, self.mode.execution) {
            (OutputMode::Complete, _) => {}
            (_, ExecutionMode::Continuous) => out.push((key, value.clone())),
            (_, ExecutionMode::MicroBatch) => {
                self.changed.insert(key);
            }
        }
    }

    /// Emits what the ending epoch owes: every changed key, or the whole table (every
    /// instance, every epoch: whether the query had new data is not known here).
    fn owed<V: Clone, C: Collector<(K, V)>>(&mut self, state: &FxHashMap<K, V>, out: &mut C) {
        if self.mode.output == OutputMode::Complete {
            for (key, value) in state {
                out.push((key.clone(), value.clone()));
            }
            return;
        }
        for key in self.changed.drain() {
            if let Some(value) = state.get(&key) {
                out.push((key, value.clone()));
            }
        }
    }
}

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
//!
//! [`KeyedFold`] and [`KeyedReduce`] emit their accumulators; [`KeyedAggregate`] runs an
//! [`Aggregate`] (or a tuple of them) and emits its results.

use super::{Collector, Context, Operator};
use crate::aggregate::Aggregate;
use crate::checkpoint::codec;
use crate::error::BoxError;
use crate::event::Epoch;
use crate::metrics::StateMetrics;
use crate::trigger::{EmitMode, ExecutionMode, OutputMode};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;

/// Folds the records of each key into an accumulator and emits `(key, accumulator)`
/// after every record. `count`, `fold` and `count_by_value` are built on it.
#[derive(Debug, Clone)]
pub struct KeyedFold<K, A, I, F> {
    state: FxHashMap<K, A>,
    emit: Emission<K>,
    /// Row writes so far (for progress).
    writes: u64,
    init: I,
    fold: F,
}

impl<K, A, I, F> KeyedFold<K, A, I, F> {
    /// A fold that starts each key at `init()` and applies `fold(&mut acc, record)`.
    pub fn new(init: I, fold: F) -> Self {
        KeyedFold {
            state: FxHashMap::default(),
            emit: Emission::default(),
            writes: 0,
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
        self.writes += 1;
        if let Some(acc) = self.state.get_mut(&key) {
            (self.fold)(acc, record);
            self.emit.updated(key, || acc.clone(), out);
        } else {
            let mut acc = (self.init)();
            (self.fold)(&mut acc, record);
            self.emit.updated(key.clone(), || acc.clone(), out);
            self.state.insert(key, acc);
        }
    }

    fn on_marker<C: Context<(K, A)>>(&mut self, _epoch: Epoch, out: &mut C) {
        self.emit.owed(&self.state, Clone::clone, out);
    }

    fn on_end<C: Context<(K, A)>>(&mut self, out: &mut C) {
        self.emit.owed(&self.state, Clone::clone, out);
    }

    fn set_emit_mode(&mut self, mode: EmitMode) {
        self.emit.mode = mode;
    }

    fn state_metrics(&self) -> Option<StateMetrics> {
        Some(table_metrics::<K, A>(&self.state, self.writes))
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
    /// Row writes so far (for progress).
    writes: u64,
    reduce: F,
}

impl<K, T, F> KeyedReduce<K, T, F> {
    /// A reduce applying `reduce(&mut acc, record)`.
    pub fn new(reduce: F) -> Self {
        KeyedReduce {
            state: FxHashMap::default(),
            emit: Emission::default(),
            writes: 0,
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
        self.writes += 1;
        if let Some(acc) = self.state.get_mut(&key) {
            (self.reduce)(acc, record);
            self.emit.updated(key, || acc.clone(), out);
        } else {
            self.emit.updated(key.clone(), || record.clone(), out);
            self.state.insert(key, record);
        }
    }

    fn on_marker<C: Context<(K, T)>>(&mut self, _epoch: Epoch, out: &mut C) {
        self.emit.owed(&self.state, Clone::clone, out);
    }

    fn on_end<C: Context<(K, T)>>(&mut self, out: &mut C) {
        self.emit.owed(&self.state, Clone::clone, out);
    }

    fn set_emit_mode(&mut self, mode: EmitMode) {
        self.emit.mode = mode;
    }

    fn state_metrics(&self) -> Option<StateMetrics> {
        Some(table_metrics::<K, T>(&self.state, self.writes))
    }

    fn snapshot(&self) -> Result<Option<Vec<u8>>, BoxError> {
        Ok(Some(codec::encode(&self.state)?))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), BoxError> {
        self.state = codec::decode(state)?;
        Ok(())
    }
}

/// Runs an [`Aggregate`] per key: keeps each key's accumulator and emits
/// `(key, result)` as the output mode says (see the module docs), exactly as
/// [`KeyedFold`] emits its accumulators. [`KeyedStream::agg`](crate::KeyedStream::agg)
/// builds it.
///
/// The state, what checkpoints save, is the accumulators; results are computed only
/// for the rows that go out.
///
/// ```
/// use rivulet::aggregate::{max, sum};
/// use rivulet::operator::keyed::KeyedAggregate;
/// use rivulet::operator::Harness;
///
/// let mut harness = Harness::new(KeyedAggregate::new((
///     sum(|x: &i32| *x),
///     max(|x: &i32| *x),
/// )));
/// harness.push(('a', 3));
/// harness.push(('a', -7));
/// // Continuous update mode (the harness's default): a row per record.
/// assert_eq!(harness.take_output(), [('a', (3, 3)), ('a', (-4, 3))]);
/// ```
pub struct KeyedAggregate<K, T, A: Aggregate<T>> {
    state: FxHashMap<K, A::Acc>,
    emit: Emission<K>,
    /// Row writes so far (for progress).
    writes: u64,
    agg: A,
    _records: PhantomData<fn(&T)>,
}

impl<K, T, A: Aggregate<T>> KeyedAggregate<K, T, A> {
    /// An operator that aggregates each key's records with `agg`.
    pub fn new(agg: A) -> Self {
        KeyedAggregate {
            state: FxHashMap::default(),
            emit: Emission::default(),
            writes: 0,
            agg,
            _records: PhantomData,
        }
    }
}

impl<K: Clone, T, A: Aggregate<T>> Clone for KeyedAggregate<K, T, A> {
    fn clone(&self) -> Self {
        KeyedAggregate {
            state: self.state.clone(),
            emit: self.emit.clone(),
            writes: self.writes,
            agg: self.agg.clone(),
            _records: PhantomData,
        }
    }
}

impl<K, T, A: Aggregate<T>> fmt::Debug for KeyedAggregate<K, T, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedAggregate")
            .field("keys", &self.state.len())
            .field("mode", &self.emit.mode)
            .finish_non_exhaustive()
    }
}

impl<K, T, A> Operator<(K, T)> for KeyedAggregate<K, T, A>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    T: 'static,
    A: Aggregate<T>,
{
    type Out = (K, A::Out);
    type Key = ();
    type Side = ();

    #[inline]
    fn on_record<C: Context<(K, A::Out)>>(&mut self, (key, record): (K, T), out: &mut C) {
        self.writes += 1;
        let agg = &self.agg;
        if let Some(acc) = self.state.get_mut(&key) {
            agg.add(acc, &record);
            self.emit.updated(key, || agg.result(acc), out);
        } else {
            let mut acc = agg.init();
            agg.add(&mut acc, &record);
            self.emit.updated(key.clone(), || agg.result(&acc), out);
            self.state.insert(key, acc);
        }
    }

    fn on_marker<C: Context<(K, A::Out)>>(&mut self, _epoch: Epoch, out: &mut C) {
        let agg = &self.agg;
        self.emit.owed(&self.state, |acc| agg.result(acc), out);
    }

    fn on_end<C: Context<(K, A::Out)>>(&mut self, out: &mut C) {
        let agg = &self.agg;
        self.emit.owed(&self.state, |acc| agg.result(acc), out);
    }

    fn set_emit_mode(&mut self, mode: EmitMode) {
        self.emit.mode = mode;
    }

    fn state_metrics(&self) -> Option<StateMetrics> {
        Some(table_metrics::<K, A::Acc>(&self.state, self.writes))
    }

    fn snapshot(&self) -> Result<Option<Vec<u8>>, BoxError> {
        Ok(Some(codec::encode(&self.state)?))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), BoxError> {
        self.state = codec::decode(state)?;
        Ok(())
    }
}

/// What a keyed aggregate's table holds, for progress: its rows, the writes so far, the
/// table's allocation.
fn table_metrics<K, V>(state: &FxHashMap<K, V>, writes: u64) -> StateMetrics {
    StateMetrics {
        rows_total: state.len() as u64,
        rows_updated: writes,
        memory_used_bytes: StateMetrics::table_bytes::<K, V>(state.capacity()),
        ..StateMetrics::default()
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
    /// `value` computes the row's value (called only when the row goes out now).
    #[inline]
    fn updated<V, C: Collector<(K, V)>>(&mut self, key: K, value: impl FnOnce() -> V, out: &mut C) {
        match (self.mode.output, self.mode.execution) {
            (OutputMode::Complete, _) => {}
            (_, ExecutionMode::Continuous) => out.push((key, value())),
            (_, ExecutionMode::MicroBatch) => {
                self.changed.insert(key);
            }
        }
    }

    /// Emits what the ending epoch owes: every changed key, or the whole table (every
    /// instance, every epoch: whether the query had new data is not known here).
    /// `value` turns a key's state into its row's value.
    fn owed<S, V, C: Collector<(K, V)>>(
        &mut self,
        state: &FxHashMap<K, S>,
        value: impl Fn(&S) -> V,
        out: &mut C,
    ) {
        if self.mode.output == OutputMode::Complete {
            for (key, state) in state {
                out.push((key.clone(), value(state)));
            }
            return;
        }
        for key in self.changed.drain() {
            if let Some(state) = state.get(&key) {
                out.push((key, value(state)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{avg, count, max, sum};
    use crate::operator::Harness;
    use std::collections::BTreeMap;

    /// `(pump, hz)` records.
    type Reading = (u8, f64);

    /// What each key's row holds: count, sum, max, mean.
    type Stats = (u64, f64, f64, f64);

    fn stats_op() -> KeyedAggregate<u8, Reading, impl Aggregate<Reading, Out = Stats>> {
        KeyedAggregate::new((
            count(),
            sum(|r: &Reading| r.1),
            max(|r: &Reading| r.1),
            avg(|r: &Reading| r.1),
        ))
    }

    fn mode(execution: ExecutionMode, output: OutputMode) -> EmitMode {
        EmitMode { execution, output }
    }

    const INPUT: [Reading; 7] = [
        (1, 50.0),
        (2, -3.0),
        (1, 48.5),
        (1, f64::NAN),
        (2, 7.25),
        (3, 0.0),
        (2, -1.0),
    ];

    /// The reference: each key's stats after each prefix of `input`, computed with a
    /// plain loop (`stats[i]` is the table after `i + 1` records).
    fn reference(input: &[Reading]) -> Vec<BTreeMap<u8, Stats>> {
        let mut values: BTreeMap<u8, Vec<f64>> = BTreeMap::new();
        let mut tables = Vec::new();
        for &(key, hz) in input {
            values.entry(key).or_default().push(hz);
            let table = values
                .iter()
                .map(|(&key, v)| {
                    let total: f64 = v.iter().sum();
                    let highest = if v.iter().any(|x| x.is_nan()) {
                        f64::NAN
                    } else {
                        v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
                    };
                    (
                        key,
                        (v.len() as u64, total, highest, total / v.len() as f64),
                    )
                })
                .collect();
            tables.push(table);
        }
        tables
    }

    /// Stats with NaN replaced by a marker, so rows compare with `==`.
    fn comparable(rows: Vec<(u8, Stats)>) -> Vec<(u8, [u64; 4])> {
        rows.into_iter()
            .map(|(key, (n, s, m, a))| (key, [n, s.to_bits(), m.to_bits(), a.to_bits()]))
            .map(|(key, [n, s, m, a])| {
                let fix = |bits: u64| {
                    if f64::from_bits(bits).is_nan() {
                        u64::MAX
                    } else {
                        bits
                    }
                };
                (key, [n, fix(s), fix(m), fix(a)])
            })
            .collect()
    }

    fn sorted(mut rows: Vec<(u8, [u64; 4])>) -> Vec<(u8, [u64; 4])> {
        rows.sort_unstable();
        rows
    }

    fn table_rows(table: &BTreeMap<u8, Stats>, keys: &[u8]) -> Vec<(u8, [u64; 4])> {
        let rows = keys.iter().map(|key| (*key, table[key])).collect();
        sorted(comparable(rows))
    }

    #[test]
    fn continuous_update_emits_every_records_new_row() {
        let tables = reference(&INPUT);
        let mut harness = Harness::new(stats_op());
        for (i, record) in INPUT.iter().enumerate() {
            harness.push((record.0, *record));
            let key = record.0;
            assert_eq!(
                comparable(harness.take_output()),
                table_rows(&tables[i], &[key]),
                "after record {i}"
            );
        }
        harness.end_epoch();
        harness.end();
        assert!(harness.take_output().is_empty(), "nothing owed");
    }

    #[test]
    fn micro_batch_update_emits_each_changed_key_once_per_batch() {
        let tables = reference(&INPUT);
        let mut harness = Harness::new(stats_op());
        harness.set_emit_mode(mode(ExecutionMode::MicroBatch, OutputMode::Update));
        // Batch 1: records 0..4 (keys 1 and 2, key 1 three times).
        for record in &INPUT[..4] {
            harness.push((record.0, *record));
        }
        assert!(
            harness.take_output().is_empty(),
            "nothing before the batch ends"
        );
        harness.end_epoch();
        assert_eq!(
            sorted(comparable(harness.take_output())),
            table_rows(&tables[3], &[1, 2])
        );
        // An empty batch owes nothing.
        harness.end_epoch();
        assert!(harness.take_output().is_empty());
        // Batch 2: records 4..6 (keys 2 and 3); key 1 is unchanged.
        for record in &INPUT[4..6] {
            harness.push((record.0, *record));
        }
        harness.end_epoch();
        assert_eq!(
            sorted(comparable(harness.take_output())),
            table_rows(&tables[5], &[2, 3])
        );
        // The last record, then end of stream: owed at the end.
        harness.push((INPUT[6].0, INPUT[6]));
        harness.end();
        assert_eq!(
            sorted(comparable(harness.take_output())),
            table_rows(&tables[6], &[2])
        );
    }

    #[test]
    fn complete_mode_emits_the_whole_table_at_each_epoch_end() {
        let tables = reference(&INPUT);
        for execution in [ExecutionMode::Continuous, ExecutionMode::MicroBatch] {
            let mut harness = Harness::new(stats_op());
            harness.set_emit_mode(mode(execution, OutputMode::Complete));
            for record in &INPUT[..5] {
                harness.push((record.0, *record));
            }
            assert!(
                harness.take_output().is_empty(),
                "{execution:?}: per record"
            );
            harness.end_epoch();
            assert_eq!(
                sorted(comparable(harness.take_output())),
                table_rows(&tables[4], &[1, 2]),
                "{execution:?}"
            );
            // Unchanged: the same table again.
            harness.end_epoch();
            assert_eq!(
                sorted(comparable(harness.take_output())),
                table_rows(&tables[4], &[1, 2]),
                "{execution:?}"
            );
            for record in &INPUT[5..] {
                harness.push((record.0, *record));
            }
            harness.end();
            assert_eq!(
                sorted(comparable(harness.take_output())),
                table_rows(&tables[6], &[1, 2, 3]),
                "{execution:?}"
            );
        }
    }

    #[test]
    fn restored_accumulators_continue_where_the_snapshot_was_taken() {
        let tables = reference(&INPUT);
        for cut in 0..=INPUT.len() {
            let mut before = Harness::new(stats_op());
            for record in &INPUT[..cut] {
                before.push((record.0, *record));
            }
            before.end_epoch();
            let snapshot = before.snapshot().expect("snapshot");
            let mut after = Harness::restore(stats_op(), snapshot.as_deref()).expect("restore");
            after.set_emit_mode(mode(ExecutionMode::MicroBatch, OutputMode::Complete));
            for record in &INPUT[cut..] {
                after.push((record.0, *record));
            }
            after.end_epoch();
            assert_eq!(
                sorted(comparable(after.take_output())),
                table_rows(&tables[INPUT.len() - 1], &[1, 2, 3]),
                "snapshot after {cut} records"
            );
        }
    }

    #[test]
    fn restore_rejects_bytes_that_are_not_its_state() {
        let mut op = stats_op();
        assert!(op.restore(&[0xff, 0xff, 0xff]).is_err());
    }
}

//! [`UpdateStateByKey`]: Spark Streaming's `updateStateByKey`.

use super::keyed::KeyedState;
use crate::error::BoxError;
use crate::event::Epoch;
use crate::operator::{Context, Operator};
use rustc_hash::FxHashMap;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::hash::Hash;

/// Spark Streaming's `updateStateByKey`;
/// [`KeyedStream::update_state_by_key`](crate::KeyedStream::update_state_by_key) builds
/// it.
///
/// Records are collected per key during an epoch (a micro-batch, or a continuous epoch
/// between two markers). At the epoch's end, `f(new_values, state)` runs for every key
/// that has state or new values (new values in arrival order, an empty `Vec` for a key
/// with state only); its result is the key's new state, `None` removing the key. Then
/// the whole state goes out, `(key, state)` for every key that has one (Spark's DStream
/// of the state). At the end of the stream, records that arrived after the last epoch
/// end get one more such round.
///
/// ```
/// use rivulet::operator::Harness;
/// use rivulet::state::UpdateStateByKey;
///
/// // Running word counts; a word whose count reaches 3 is forgotten.
/// let op = UpdateStateByKey::new(|new: Vec<u32>, count: Option<u32>| {
///     let count = count.unwrap_or(0) + new.iter().sum::<u32>();
///     (count < 3).then_some(count)
/// });
/// let mut h = Harness::new(op);
/// for word in ["to", "be", "to"] {
///     h.push((word.to_string(), 1));
/// }
/// h.end_epoch();
/// let mut rows = h.take_output();
/// rows.sort();
/// assert_eq!(rows, [("be".to_string(), 1), ("to".to_string(), 2)]);
/// h.push(("to".to_string(), 1));
/// h.end_epoch();
/// assert_eq!(h.take_output(), [("be".to_string(), 1)], "`to` reached 3: removed");
/// ```
pub struct UpdateStateByKey<K, V, S, F> {
    state: KeyedState<K, S>,
    /// The epoch's new values per key.
    pending: FxHashMap<K, Vec<V>>,
    f: F,
    /// Calls of `f` since the operator started: what progress reports as rows updated.
    calls: u64,
}

impl<K, V, S, F> UpdateStateByKey<K, V, S, F> {
    /// The operator for `f(new_values, state) -> new state`.
    pub fn new(f: F) -> Self {
        UpdateStateByKey {
            state: KeyedState::default(),
            pending: FxHashMap::default(),
            f,
            calls: 0,
        }
    }

    /// The keys' states.
    pub fn state(&self) -> &KeyedState<K, S> {
        &self.state
    }
}

impl<K: Clone, V, S: Clone, F: Clone> Clone for UpdateStateByKey<K, V, S, F> {
    fn clone(&self) -> Self {
        UpdateStateByKey {
            state: self.state.clone(),
            pending: FxHashMap::default(),
            f: self.f.clone(),
            calls: self.calls,
        }
    }
}

impl<K, V, S, F> fmt::Debug for UpdateStateByKey<K, V, S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpdateStateByKey")
            .field("keys", &self.state.slot_count())
            .field("pending_keys", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl<K, V, S, F> UpdateStateByKey<K, V, S, F>
where
    K: Hash + Eq + Clone,
    S: Clone,
    F: FnMut(Vec<V>, Option<S>) -> Option<S>,
{
    /// One round: `f` for every key with state or new values, then the whole state out.
    fn round<C: Context<(K, S)>>(&mut self, ctx: &mut C) {
        let new_keys = self
            .pending
            .keys()
            .filter(|key| self.state.get(key).is_none())
            .count();
        self.calls += (self.state.len() + new_keys) as u64;
        let (pending, f) = (&mut self.pending, &mut self.f);
        self.state.update_each(|key, state| {
            let values = if pending.is_empty() {
                Vec::new()
            } else {
                pending.remove(key).unwrap_or_default()
            };
            *state = f(values, state.take());
        });
        for (key, values) in pending.drain() {
            if let Some(state) = f(values, None) {
                self.state.insert(key, state);
            }
        }
        for (key, state) in self.state.iter() {
            ctx.push((key.clone(), state.clone()));
        }
    }
}

impl<K, V, S, F> Operator<(K, V)> for UpdateStateByKey<K, V, S, F>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    V: Send + 'static,
    S: Clone + Send + Serialize + DeserializeOwned + 'static,
    F: FnMut(Vec<V>, Option<S>) -> Option<S> + Send + 'static,
{
    type Out = (K, S);
    type Key = ();
    type Side = ();

    #[inline]
    fn on_record<C: Context<(K, S)>>(&mut self, (key, value): (K, V), _ctx: &mut C) {
        self.pending.entry(key).or_default().push(value);
    }

    fn on_marker<C: Context<(K, S)>>(&mut self, _epoch: Epoch, ctx: &mut C) {
        self.round(ctx);
    }

    fn on_end<C: Context<(K, S)>>(&mut self, ctx: &mut C) {
        if !self.pending.is_empty() {
            self.round(ctx);
        }
    }

    fn state_metrics(&self) -> Option<crate::metrics::StateMetrics> {
        Some(crate::metrics::StateMetrics {
            rows_total: self.state.len() as u64,
            rows_updated: self.calls,
            memory_used_bytes: self.state.estimated_bytes() as u64,
            ..Default::default()
        })
    }

    fn snapshot(&self) -> Result<Option<Vec<u8>>, BoxError> {
        Ok(Some(self.state.snapshot()?))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), BoxError> {
        self.state.restore(state)?;
        Ok(())
    }
}

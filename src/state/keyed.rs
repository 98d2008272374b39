//! [`KeyedState`]: values per key, the keys changed this epoch, expiry by timer.

use crate::checkpoint::codec::{self, CodecError};
use crate::event::Timestamp;
use crate::operator::{Context, TimeDomain, Timer};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};
use std::collections::hash_map::Entry;
use std::fmt;
use std::hash::Hash;

/// When a key expires: a time on one of the two clocks of the
/// [timer service](crate::operator::timer).
///
/// An event-time expiry at `t` is due once the watermark reaches `t` (no record older
/// than `t` can arrive any more); a processing-time expiry once the clock reads `t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Expiry {
    /// The clock the expiry follows.
    pub domain: TimeDomain,
    /// When it is due.
    pub time: Timestamp,
}

impl Expiry {
    /// Due once the watermark reaches `time`.
    pub fn event_time(time: Timestamp) -> Self {
        Expiry {
            domain: TimeDomain::EventTime,
            time,
        }
    }

    /// Due once the processing-time clock reads `time`.
    pub fn processing_time(time: Timestamp) -> Self {
        Expiry {
            domain: TimeDomain::ProcessingTime,
            time,
        }
    }

    /// Registers this expiry's timer for `key` through `ctx`.
    fn register<K, O, D, C: Context<O, K, D>>(self, key: K, ctx: &mut C) {
        match self.domain {
            TimeDomain::EventTime => ctx.register_event_time_timer(key, self.time),
            TimeDomain::ProcessingTime => ctx.register_processing_time_timer(key, self.time),
        };
    }

    /// Deletes this expiry's timer for `key` through `ctx`.
    fn cancel<K, O, D, C: Context<O, K, D>>(self, key: &K, ctx: &mut C) {
        match self.domain {
            TimeDomain::EventTime => ctx.delete_event_time_timer(key, self.time),
            TimeDomain::ProcessingTime => ctx.delete_processing_time_timer(key, self.time),
        };
    }
}

/// A key's expiry changed from `old` to `new`: its timers to delete and register.
#[derive(Debug)]
pub(crate) struct Rearm<K> {
    key: K,
    old: Option<Expiry>,
    new: Option<Expiry>,
}

impl<K> Rearm<K> {
    /// Deletes the old expiry's timer and registers the new one through `ctx`.
    #[inline]
    pub(crate) fn apply<O, D, C: Context<O, K, D>>(self, ctx: &mut C) {
        if let Some(old) = self.old {
            old.cancel(&self.key, ctx);
        }
        if let Some(new) = self.new {
            new.register(self.key, ctx);
        }
    }
}

/// One key's value and its expiry, if any.
///
/// `value` is `Some` while the slot is in the map; the `Option` lets
/// [`KeyedState::update`] hand it out as an `Option` to clear, in place, with one lookup
/// (free for values with a niche: boxes, strings, vectors).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Slot<V> {
    value: Option<V>,
    expiry: Option<Expiry>,
}

impl<V> Slot<V> {
    #[inline]
    fn new(value: V) -> Self {
        Slot {
            value: Some(value),
            expiry: None,
        }
    }

    #[inline]
    fn value(&self) -> &V {
        self.value.as_ref().expect("a stored slot has a value")
    }

    #[inline]
    fn value_mut(&mut self) -> &mut V {
        self.value.as_mut().expect("a stored slot has a value")
    }

    #[inline]
    fn into_value(self) -> V {
        self.value.expect("a stored slot has a value")
    }
}

/// Keyed state: a value per key, the set of keys changed in the current epoch, and an
/// optional expiry per key through the operator's timers. The building block of the
/// stateful operators (`map_groups_with_state`, `update_state_by_key`) and of users' own.
///
/// * **Values** live in an `FxHashMap` (the keyed aggregates' map): [`get`](Self::get),
///   [`get_mut`](Self::get_mut), [`insert`](Self::insert), [`remove`](Self::remove),
///   [`update`](Self::update) (one lookup, the value as an `Option` to change or clear),
///   iteration, [`retain`](Self::retain).
/// * **Changed keys.** With [`tracking_changes`](Self::tracking_changes), every key
///   written ([`get_mut`](Self::get_mut), [`insert`](Self::insert),
///   [`remove`](Self::remove), …) joins [`changed`](Self::changed) until
///   [`take_changed`](Self::take_changed) or [`clear_changed`](Self::clear_changed) at
///   the epoch boundary: what update mode emits. A removed key is changed too, and
///   [`get`](Self::get) then says it has no value. Without tracking (the default) writes
///   cost one hash lookup, not two.
/// * **Expiry.** [`set_expiry`](Self::set_expiry) registers a timer for the key through
///   the operator's [`Context`] (deleting the one it replaces); removing the key deletes
///   its timer. When the timer fires, [`Operator::on_timer`](crate::operator::Operator::on_timer)
///   hands it to [`expire`](Self::expire), which removes and returns the key's value if
///   the timer is still the key's expiry. The stage checkpoints the timers; the state
///   checkpoints the values and expiries ([`snapshot`](Self::snapshot) /
///   [`restore`](Self::restore), or serde directly), so both come back together.
///
/// The changed set belongs to the epoch and is not part of the snapshot: clear it in
/// [`on_marker`](crate::operator::Operator::on_marker), which runs before the snapshot.
///
/// # Example: a user's operator that forgets idle keys
///
/// A running count per key that drops a key's count once no record of it arrived for
/// 10 units of event time, and emits the changed counts once per epoch:
///
/// ```
/// use rivulet::operator::{Context, Harness, Operator, Timer};
/// use rivulet::state::{Expiry, KeyedState};
/// use rivulet::{Epoch, Timestamp};
///
/// #[derive(Clone)]
/// struct IdleCount {
///     counts: KeyedState<char, u64>,
/// }
///
/// impl Operator<(char, Timestamp)> for IdleCount {
///     type Out = (char, Option<u64>);
///     type Key = char;
///     type Side = ();
///
///     fn on_record<C: Context<Self::Out, char>>(&mut self, (key, at): (char, Timestamp), ctx: &mut C) {
///         *self.counts.get_or_insert_with(key, || 0) += 1;
///         self.counts.set_expiry(&key, Some(Expiry::event_time(Timestamp(at.0 + 10))), ctx);
///     }
///
///     fn on_timer<C: Context<Self::Out, char>>(&mut self, timer: Timer<char>, _ctx: &mut C) {
///         self.counts.expire(&timer);
///     }
///
///     fn on_marker<C: Context<Self::Out, char>>(&mut self, _epoch: Epoch, ctx: &mut C) {
///         let changed: Vec<char> = self.counts.take_changed().collect();
///         for key in changed {
///             let count = self.counts.get(&key).copied();
///             ctx.push((key, count));
///         }
///     }
/// }
///
/// let mut h = Harness::new(IdleCount { counts: KeyedState::tracking_changes() });
/// h.push(('a', Timestamp(1)));
/// h.push(('b', Timestamp(5)));
/// h.push(('a', Timestamp(6)));
/// h.end_epoch();
/// let mut rows = h.take_output();
/// rows.sort();
/// assert_eq!(rows, [('a', Some(2)), ('b', Some(1))]);
/// // The watermark passes b's expiry (15), not a's (16): b is forgotten.
/// h.advance_watermark(Timestamp(15));
/// h.end_epoch();
/// assert_eq!(h.take_output(), [('b', None)]);
/// assert_eq!(h.operator().counts.len(), 1);
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Eq + Hash, V: Serialize",
    deserialize = "K: Deserialize<'de> + Eq + Hash, V: Deserialize<'de>"
))]
pub struct KeyedState<K, V> {
    slots: FxHashMap<K, Slot<V>>,
    #[serde(skip)]
    changed: FxHashSet<K>,
    #[serde(skip)]
    track: bool,
}

impl<K, V> Default for KeyedState<K, V> {
    fn default() -> Self {
        KeyedState {
            slots: FxHashMap::default(),
            changed: FxHashSet::default(),
            track: false,
        }
    }
}

impl<K, V> fmt::Debug for KeyedState<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedState")
            .field("keys", &self.slots.len())
            .field("changed", &self.changed.len())
            .field("tracking_changes", &self.track)
            .finish()
    }
}

impl<K, V> KeyedState<K, V> {
    /// The number of keys, without the bounds [`len`](Self::len) needs (for `Debug`).
    pub(crate) fn slot_count(&self) -> usize {
        self.slots.len()
    }
}

impl<K: Hash + Eq + Clone, V> KeyedState<K, V> {
    /// Empty state that does not track changed keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// Empty state that tracks the keys changed since the last
    /// [`take_changed`](Self::take_changed) or [`clear_changed`](Self::clear_changed).
    pub fn tracking_changes() -> Self {
        KeyedState {
            track: true,
            ..Self::default()
        }
    }

    /// Whether changed keys are tracked.
    pub fn tracks_changes(&self) -> bool {
        self.track
    }

    /// Starts or stops tracking changed keys (stopping forgets the changed set). A
    /// restored state does not know whether it tracked: set it again after
    /// [`restore`](Self::restore) or deserializing.
    pub fn set_tracking_changes(&mut self, track: bool) {
        self.track = track;
        if !track {
            self.changed = FxHashSet::default();
        }
    }

    #[inline]
    fn touched(&mut self, key: &K) {
        if self.track && !self.changed.contains(key) {
            self.changed.insert(key.clone());
        }
    }

    /// The value of `key`.
    #[inline]
    pub fn get(&self, key: &K) -> Option<&V> {
        self.slots.get(key).map(Slot::value)
    }

    /// The value of `key`, to change in place (the key counts as changed).
    #[inline]
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        if self.track && self.slots.contains_key(key) {
            self.touched(key);
        }
        self.slots.get_mut(key).map(Slot::value_mut)
    }

    /// Whether `key` has a value.
    #[inline]
    pub fn contains_key(&self, key: &K) -> bool {
        self.slots.contains_key(key)
    }

    /// Sets `key`'s value, returning the old one. The key keeps its expiry.
    #[inline]
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.touched(&key);
        match self.slots.entry(key) {
            Entry::Occupied(mut slot) => Some(std::mem::replace(slot.get_mut().value_mut(), value)),
            Entry::Vacant(slot) => {
                slot.insert(Slot::new(value));
                None
            }
        }
    }

    /// The value of `key`, inserted with `init()` first if it has none (the key counts
    /// as changed).
    #[inline]
    pub fn get_or_insert_with(&mut self, key: K, init: impl FnOnce() -> V) -> &mut V {
        self.touched(&key);
        self.slots
            .entry(key)
            .or_insert_with(|| Slot::new(init()))
            .value_mut()
    }

    /// Removes `key` and returns its value. If it had an [expiry](Self::set_expiry), its
    /// timer stays registered and is ignored by [`expire`](Self::expire) when it fires;
    /// [`remove_and_cancel`](Self::remove_and_cancel) deletes it at once.
    #[inline]
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let slot = self.slots.remove(key)?;
        self.touched(key);
        Some(slot.into_value())
    }

    /// Removes `key`, deletes its expiry's timer through `ctx`, and returns its value.
    pub fn remove_and_cancel<O, D, C: Context<O, K, D>>(
        &mut self,
        key: &K,
        ctx: &mut C,
    ) -> Option<V> {
        let slot = self.slots.remove(key)?;
        self.touched(key);
        if let Some(expiry) = slot.expiry {
            expiry.cancel(key, ctx);
        }
        Some(slot.into_value())
    }

    /// Looks `key` up once and hands `f` its value (`None` if it has none) and its expiry
    /// to change: a value left `None` removes the key (and the timer of its expiry); an
    /// expiry changed is registered (and the old one's timer deleted) through `ctx`. The
    /// key counts as changed. Returns what `f` returns.
    ///
    /// ```
    /// use rivulet::operator::{Harness, Operator, Context};
    /// use rivulet::state::{Expiry, KeyedState};
    /// use rivulet::Timestamp;
    ///
    /// /// Sums each key's values; a key whose sum goes negative is dropped.
    /// struct Sums(KeyedState<u8, i64>);
    /// impl Operator<(u8, i64)> for Sums {
    ///     type Out = (u8, Option<i64>);
    ///     type Key = u8;
    ///     type Side = ();
    ///     fn on_record<C: Context<Self::Out, u8>>(&mut self, (k, v): (u8, i64), ctx: &mut C) {
    ///         let row = self.0.update(k, ctx, |key, sum, _expiry| {
    ///             let next = sum.unwrap_or(0) + v;
    ///             *sum = (next >= 0).then_some(next);
    ///             (*key, *sum)
    ///         });
    ///         ctx.push(row);
    ///     }
    /// }
    /// let mut h = Harness::new(Sums(KeyedState::new()));
    /// for record in [(1, 5), (1, -7), (1, 2)] {
    ///     h.push(record);
    /// }
    /// assert_eq!(h.take_output(), [(1, Some(5)), (1, None), (1, Some(2))]);
    /// ```
    #[inline]
    pub fn update<O, D, C, R>(
        &mut self,
        key: K,
        ctx: &mut C,
        f: impl FnOnce(&K, &mut Option<V>, &mut Option<Expiry>) -> R,
    ) -> R
    where
        C: Context<O, K, D>,
    {
        let (result, rearm) = self.update_deferred(key, f);
        if let Some(rearm) = rearm {
            rearm.apply(ctx);
        }
        result
    }

    /// [`update`](Self::update) without a context: returns the timer change to apply
    /// afterwards, so `f` may read the context meanwhile.
    #[inline]
    pub(crate) fn update_deferred<R>(
        &mut self,
        key: K,
        f: impl FnOnce(&K, &mut Option<V>, &mut Option<Expiry>) -> R,
    ) -> (R, Option<Rearm<K>>) {
        if self.track && !self.changed.contains(&key) {
            self.changed.insert(key.clone());
        }
        // Present keys cost one lookup; a key inserted or removed, two.
        if let Some(slot) = self.slots.get_mut(&key) {
            let old = slot.expiry;
            let result = f(&key, &mut slot.value, &mut slot.expiry);
            let removed = slot.value.is_none();
            let new = if removed { None } else { slot.expiry };
            if removed {
                self.slots.remove(&key);
            }
            let rearm = (new != old).then_some(Rearm { key, old, new });
            return (result, rearm);
        }
        let mut value = None;
        let mut expiry = None;
        let result = f(&key, &mut value, &mut expiry);
        let mut rearm = None;
        if value.is_some() {
            if expiry.is_some() {
                rearm = Some(Rearm {
                    key: key.clone(),
                    old: None,
                    new: expiry,
                });
            }
            self.slots.insert(key, Slot { value, expiry });
        }
        (result, rearm)
    }

    /// Inserts `key` with `value` and `expiry` (registering its timer through `ctx`)
    /// unless it already has a value; returns whether it was inserted. One hash lookup
    /// either way (what deduplication needs: [`insert`](Self::insert) after
    /// [`contains_key`](Self::contains_key) costs two for a new key). A present key and
    /// its value and expiry are left as they were.
    #[inline]
    pub fn insert_if_absent<O, D, C: Context<O, K, D>>(
        &mut self,
        key: K,
        value: V,
        expiry: Option<Expiry>,
        ctx: &mut C,
    ) -> bool {
        if self.track && !self.slots.contains_key(&key) {
            self.touched(&key);
        }
        match self.slots.entry(key) {
            Entry::Occupied(_) => false,
            Entry::Vacant(slot) => {
                if let Some(expiry) = expiry {
                    expiry.register(slot.key().clone(), ctx);
                }
                slot.insert(Slot {
                    value: Some(value),
                    expiry,
                });
                true
            }
        }
    }

    /// The expiry of `key`, if it has a value and an expiry.
    pub fn expiry(&self, key: &K) -> Option<Expiry> {
        self.slots.get(key).and_then(|slot| slot.expiry)
    }

    /// Sets (or with `None` clears) when `key` expires, registering the timer through
    /// `ctx` and deleting the one it replaces. Returns `false` (and registers nothing) if
    /// `key` has no value.
    pub fn set_expiry<O, D, C: Context<O, K, D>>(
        &mut self,
        key: &K,
        expiry: Option<Expiry>,
        ctx: &mut C,
    ) -> bool {
        let Some(slot) = self.slots.get_mut(key) else {
            return false;
        };
        if slot.expiry != expiry {
            if let Some(old) = slot.expiry {
                old.cancel(key, ctx);
            }
            if let Some(new) = expiry {
                new.register(key.clone(), ctx);
            }
            slot.expiry = expiry;
        }
        true
    }

    /// Whether `timer` is the current expiry of its key (a timer left behind by
    /// [`remove`](Self::remove) or by an operator's own timers is not).
    pub fn is_expiry(&self, timer: &Timer<K>) -> bool {
        self.expiry(&timer.key)
            == Some(Expiry {
                domain: timer.domain,
                time: timer.time,
            })
    }

    /// Handles a fired timer: if it is its key's current expiry, removes the key and
    /// returns its value; otherwise `None` and nothing changes.
    pub fn expire(&mut self, timer: &Timer<K>) -> Option<V> {
        if !self.is_expiry(timer) {
            return None;
        }
        self.remove(&timer.key)
    }

    /// Keeps the keys for which `keep(key, &mut value)` returns `true`, changing values
    /// in place on the way; the keys removed count as changed, and their expiries' timers
    /// are left to be ignored (as by [`remove`](Self::remove)). The kept keys do not
    /// count as changed.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        let (track, changed) = (self.track, &mut self.changed);
        self.slots.retain(|key, slot| {
            let kept = keep(key, slot.value_mut());
            if !kept && track {
                changed.insert(key.clone());
            }
            kept
        });
    }

    /// Calls `f` for every key with its value as an `Option` to change, replace or clear
    /// (`None` removes the key; its expiry's timer is left to be ignored, as by
    /// [`remove`](Self::remove)). Every key counts as changed.
    pub fn update_each(&mut self, mut f: impl FnMut(&K, &mut Option<V>)) {
        let (track, changed) = (self.track, &mut self.changed);
        self.slots.retain(|key, slot| {
            f(key, &mut slot.value);
            if track && !changed.contains(key) {
                changed.insert(key.clone());
            }
            slot.value.is_some()
        });
    }

    /// The keys and values, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.slots.iter().map(|(key, slot)| (key, slot.value()))
    }

    /// The keys, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.slots.keys()
    }

    /// The values, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.slots.values().map(Slot::value)
    }

    /// The number of keys with a value.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no key has a value.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The keys changed since the changed set was last taken or cleared (removed keys
    /// included). Empty unless the state [tracks changes](Self::tracking_changes).
    pub fn changed(&self) -> impl Iterator<Item = &K> + '_ {
        self.changed.iter()
    }

    /// The number of changed keys.
    pub fn changed_len(&self) -> usize {
        self.changed.len()
    }

    /// Takes the changed keys (the set is empty afterwards, its memory kept).
    pub fn take_changed(&mut self) -> impl Iterator<Item = K> + '_ {
        self.changed.drain()
    }

    /// Forgets the changed keys (at an epoch boundary).
    pub fn clear_changed(&mut self) {
        self.changed.clear();
    }

    /// An estimate of the memory the state holds, in bytes: its tables' slots (with the
    /// hash table's spare capacity), not what keys and values own on the heap. Costs
    /// nothing to compute.
    pub fn estimated_bytes(&self) -> usize {
        // A SwissTable keeps one control byte per bucket besides the entry.
        self.slots.capacity() * (std::mem::size_of::<(K, Slot<V>)>() + 1)
            + self.changed.capacity() * (std::mem::size_of::<K>() + 1)
    }
}

impl<K, V> KeyedState<K, V>
where
    K: Hash + Eq + Clone + Serialize + serde::de::DeserializeOwned,
    V: Serialize + serde::de::DeserializeOwned,
{
    /// Encodes the values and expiries with the checkpoint codec (what
    /// [`Operator::snapshot`](crate::operator::Operator::snapshot) returns).
    ///
    /// # Errors
    ///
    /// If a key or value fails to serialize.
    pub fn snapshot(&self) -> Result<Vec<u8>, CodecError> {
        codec::encode(self)
    }

    /// Replaces the values and expiries with those of a [`snapshot`](Self::snapshot);
    /// the changed set is emptied, whether changes are tracked is kept.
    ///
    /// # Errors
    ///
    /// If `bytes` are not such a snapshot; the state is unchanged then.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), CodecError> {
        let restored: KeyedState<K, V> = codec::decode(bytes)?;
        self.slots = restored.slots;
        self.changed.clear();
        Ok(())
    }
}

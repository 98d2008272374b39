//! Session windows ([`SessionWindows`]): Spark's `session_window(col, gapDuration)` as a
//! [`WindowSpec`]; the semantics are documented on the type.

use super::lateness::Lateness;
use super::{micros, Window, WindowSpec, WindowSpecError};
use crate::aggregate::Aggregate;
use crate::checkpoint::codec;
use crate::error::BoxError;
use crate::event::{Epoch, Timestamp};
use crate::operator::{Context, Operator};
use crate::trigger::{EmitMode, ExecutionMode, OutputMode};
use rustc_hash::FxHashMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::time::Duration;

/// Session windows with a fixed gap (Spark's `session_window(col, gapDuration)`),
/// keyed (the key `()` gives global sessions).
///
/// A record at event time `t` opens the session `[t, t + gap)`. Sessions of one key that
/// overlap or touch merge into one, `[min start, max end)`, and so do their accumulators
/// ([`Aggregate::merge`]). The merge rule is Spark's: with sessions ordered by start, the
/// next one joins the current one when `next.start <= current.end`
/// (`MergingSessionsIterator` and `UpdatingSessionsIterator` in Spark's
/// `sql/core/.../execution/aggregate`), so a record exactly at a session's end joins it.
/// A record can bridge two sessions (never more: every session is at least `gap` long,
/// and the record's own session is exactly `gap` long).
///
/// # Late records
///
/// As in Spark's `SessionWindowStateStoreRestoreExec`, a record is late when its *own*
/// session `[t, t + gap)` ends at or before the late bound (`t + gap <= bound`): it is
/// dropped before merging, counted (`late_records` and `rows_dropped_by_watermark`) and
/// set aside on the side output. In complete mode nothing is dropped (Spark's complete
/// mode does not honour the watermark).
///
/// The late bound, and when sessions close, depend on the epoch's mode:
///
/// * **micro-batch, as Spark 3.4+**: records are judged by the watermark of the
///   *previous* batch (`eventTimeWatermarkForLateEvents`), and sessions close at the
///   batch's marker with the batch's own watermark (`eventTimeWatermarkForEviction`), after
///   the batch's records were merged (`SessionWindowStateStoreSaveExec` merges the batch
///   into the state before it evicts). With `wm(N)` the watermark batch `N` runs under, a
///   record of batch `N + 1` whose own session ends in `(wm(N), wm(N + 1)]` still opens
///   or extends a session, emitted with it at the end of batch `N + 1`; the same record
///   one batch later is late.
/// * **continuous, rivulet's own model**: records are judged by the current watermark,
///   and sessions close as it arrives.
///
/// Both watermarks are part of the snapshot, so a restored operator judges a replayed
/// batch as the original run did.
///
/// # Output
///
/// Rows are `(key, session, result)`; the session is the [`Window`] `[start, end)`.
///
/// | output mode | continuous epoch | micro-batch epoch |
/// |---|---|---|
/// | append | a session once, when the watermark reaches its end; then it is evicted | a session once, at the marker of the batch whose watermark reaches its end, after the batch's records; then it is evicted |
/// | update | the session a record changed (after merging), per record | each changed session once, at the marker (those about to be evicted included) |
/// | complete | every session of every key at each marker (nothing dropped or evicted) | the same |
///
/// In append and update mode a session whose end is at or before the closing watermark is
/// evicted (in update mode without further output). A record that is not late may still
/// lie within a session that is closed or about to be (`t <= end <= watermark`): while the
/// session is held (within its batch) the record extends it; once the session was evicted
/// it opens a new one, which may overlap the session already emitted. Spark does the same
/// across batches.
///
/// At end of stream the operator emits what a marker would (nothing for sessions the
/// watermark has not closed).
///
/// # Where rivulet differs from Spark
///
/// * **Update mode.** Spark refuses it for session windows ("Update output mode not
///   supported for session window", `UnsupportedOperationChecker`; the test "update mode -
///   session window" in `StreamingSessionWindowSuite`), because an emitted session can
///   later merge into another. rivulet allows it: when sessions merge it emits the merged
///   session and retracts nothing, so a sink that upserts by `(key, window)` keeps rows for
///   sessions that no longer exist.
/// * **Global sessions.** Spark refuses a session window without grouping key; here the
///   key `()` puts every session in one key (and one operator instance).
/// * **The gap** is one fixed duration, at least one microsecond. Spark also accepts an
///   expression per row, and a gap of zero or less there drops the row.
/// * **Continuous epochs** have no Spark counterpart (Spark's continuous processing runs
///   no stateful operator): they follow rivulet's own model (see *Late records*).
///
/// # Accumulator order
///
/// A record that joins one session is [added](Aggregate::add) to it; a record that bridges
/// two merges the later session into the earlier one, then is added. An order-sensitive
/// aggregate (collecting a list) therefore sees the sessions in start order, each in its
/// own order, and the bridging record last.
///
/// # State and cost
///
/// Per key, the sessions ordered by start in a deque (looked up by binary search), in a
/// slab of keys; and one ordered set of `(session end, key slot)` for all sessions, so a
/// watermark evicts the sessions it closes in `O(log n)` each, without visiting keys that
/// have nothing to evict. A key whose last session is evicted gives its slot back. In
/// complete mode nothing is evicted and the state grows with the stream.
///
/// # Example
///
/// ```
/// use rivulet::aggregate::Aggregate;
/// use rivulet::operator::Harness;
/// use rivulet::trigger::{EmitMode, ExecutionMode, OutputMode};
/// use rivulet::window::{SessionWindows, Window, WindowSpec};
/// use rivulet::Timestamp;
/// use std::time::Duration;
///
/// /// Counts records.
/// #[derive(Clone)]
/// struct Count;
///
/// impl Aggregate<i64> for Count {
///     type Acc = u64;
///     type Out = u64;
///     fn init(&self) -> u64 { 0 }
///     fn add(&self, acc: &mut u64, _: &i64) { *acc += 1 }
///     fn merge(&self, acc: &mut u64, other: &u64) { *acc += other }
///     fn result(&self, acc: &u64) -> u64 { *acc }
/// }
///
/// let sessions = SessionWindows::new(Duration::from_micros(10))?;
/// let mut harness = Harness::new(sessions.operator(Count, |t: &i64| Timestamp(*t)));
/// harness.set_emit_mode(EmitMode {
///     execution: ExecutionMode::Continuous,
///     output: OutputMode::Append,
/// });
/// // Sessions [0, 15) and [30, 40); 20 opens [20, 30), which touches [30, 40) and merges;
/// // 15 then bridges [0, 15) and [20, 40).
/// for t in [0, 5, 30, 20, 15] {
///     harness.push((1u32, t));
/// }
/// harness.advance_watermark(Timestamp(39));
/// assert!(harness.take_output().is_empty()); // the session ends at 40
/// harness.advance_watermark(Timestamp(40));
/// let session = Window { start: Timestamp(0), end: Timestamp(40) };
/// assert_eq!(harness.take_output(), vec![(1, session, 5)]);
/// # Ok::<(), rivulet::window::WindowSpecError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionWindows {
    gap: i64,
}

impl SessionWindows {
    /// Sessions that close after `gap` without records.
    ///
    /// # Errors
    ///
    /// A gap of zero, or one too large for microseconds in an `i64`.
    pub fn new(gap: Duration) -> Result<Self, WindowSpecError> {
        Ok(SessionWindows {
            gap: micros(gap, "session gap")?,
        })
    }

    /// The gap in microseconds.
    pub fn gap_micros(&self) -> i64 {
        self.gap
    }
}

impl WindowSpec for SessionWindows {
    fn needs_merge(&self) -> bool {
        true
    }

    fn operator_name(&self) -> &'static str {
        "session_window"
    }

    fn operator<K, T, A, F>(
        &self,
        agg: A,
        time: F,
    ) -> impl Operator<(K, T), Out = (K, Window, A::Out), Side = T> + Clone + use<K, T, A, F>
    where
        K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
        T: Send + 'static,
        A: Aggregate<T>,
        F: Fn(&T) -> Timestamp + Clone + Send + 'static,
    {
        SessionAggregate::new(self.gap, agg, time)
    }
}

/// One session of a key: `[start, end)` and the accumulator of its records.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session<Acc> {
    start: i64,
    end: i64,
    acc: Acc,
    /// Changed since the last marker (micro-batch update mode only).
    changed: bool,
}

impl<Acc> Session<Acc> {
    fn window(&self) -> Window {
        Window {
            start: Timestamp(self.start),
            end: Timestamp(self.end),
        }
    }
}

/// A key and its sessions, ordered by start; consecutive sessions never touch
/// (`next.start > previous.end`), so their ends increase too.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Slot<K, Acc> {
    key: K,
    sessions: VecDeque<Session<Acc>>,
    /// Listed in [`Store::dirty`] (micro-batch update mode only).
    dirty: bool,
}

/// What a snapshot holds: the slab of keys (slot numbers are part of the state, so
/// output order survives a restore), its free slots, the keys with changed sessions, and
/// the watermarks records are judged by.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Store<K, Acc> {
    lateness: Lateness,
    slots: Vec<Option<Slot<K, Acc>>>,
    free: Vec<u32>,
    /// Slots with changed sessions, in the order they first changed since the last
    /// marker (micro-batch update mode only; may list a slot freed or reused since).
    dirty: Vec<u32>,
}

impl<K, Acc> Default for Store<K, Acc> {
    fn default() -> Self {
        Store {
            lateness: Lateness::new(),
            slots: Vec::new(),
            free: Vec::new(),
            dirty: Vec::new(),
        }
    }
}

/// The session window aggregate that [`SessionWindows`] builds.
pub(crate) struct SessionAggregate<K, T, A: Aggregate<T>, F> {
    gap: i64,
    agg: A,
    time: F,
    mode: EmitMode,
    store: Store<K, A::Acc>,
    /// Each live key's slot (derived from `store`).
    slot_of: FxHashMap<K, u32>,
    /// The eviction index (derived from `store`): `(end, slot)` pairs, kept lazily so a
    /// record that extends a session costs no index update. Every live key has an entry
    /// at or before the end of its first session; an entry may be stale (its session
    /// since extended, merged away or evicted). Eviction pops entries in order and moves a
    /// stale one to its first session's true end, so sessions still leave in end order.
    by_end: BTreeSet<(i64, u32)>,
    /// Records added to sessions so far (for progress; not checkpointed).
    writes: u64,
    _records: PhantomData<fn(T)>,
}

impl<K, T, A, F> Clone for SessionAggregate<K, T, A, F>
where
    K: Clone,
    A: Aggregate<T>,
    F: Clone,
{
    fn clone(&self) -> Self {
        SessionAggregate {
            gap: self.gap,
            agg: self.agg.clone(),
            time: self.time.clone(),
            mode: self.mode,
            store: self.store.clone(),
            slot_of: self.slot_of.clone(),
            by_end: self.by_end.clone(),
            writes: self.writes,
            _records: PhantomData,
        }
    }
}

impl<K, T, A: Aggregate<T>, F> fmt::Debug for SessionAggregate<K, T, A, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionAggregate")
            .field("gap", &self.gap)
            .field("mode", &self.mode)
            .field("keys", &self.slot_of.len())
            .field("index_entries", &self.by_end.len())
            .finish_non_exhaustive()
    }
}

impl<K, T, A, F> SessionAggregate<K, T, A, F>
where
    K: Hash + Eq + Clone,
    A: Aggregate<T>,
{
    /// An aggregate of `agg` over sessions of `gap` microseconds (positive).
    pub(crate) fn new(gap: i64, agg: A, time: F) -> Self {
        debug_assert!(gap > 0);
        SessionAggregate {
            gap,
            agg,
            time,
            mode: EmitMode::default(),
            store: Store::default(),
            slot_of: FxHashMap::default(),
            by_end: BTreeSet::new(),
            writes: 0,
            _records: PhantomData,
        }
    }

    /// `key`'s slot, allocated if the key has no session yet.
    fn slot_of(&mut self, key: K) -> u32 {
        if let Some(&slot) = self.slot_of.get(&key) {
            return slot;
        }
        let entry = Slot {
            key: key.clone(),
            sessions: VecDeque::new(),
            dirty: false,
        };
        let slot = match self.store.free.pop() {
            Some(slot) => {
                self.store.slots[slot as usize] = Some(entry);
                slot
            }
            None => {
                let slot = u32::try_from(self.store.slots.len())
                    .expect("session windows hold at most 2^32 keys per instance");
                self.store.slots.push(Some(entry));
                slot
            }
        };
        self.slot_of.insert(key, slot);
        slot
    }

    /// Adds `record`, whose own session is `[t, end)`, to `slot`'s sessions, merging the
    /// sessions it overlaps or touches; returns the index of the session that holds it.
    fn add(&mut self, slot: u32, t: i64, end: i64, record: &T) -> usize {
        let sessions = &mut self.store.slots[slot as usize]
            .as_mut()
            .expect("a live key's slot is occupied")
            .sessions;
        // Sessions starting at or before `end`; of those, the ones ending at or after `t`
        // (a suffix, as ends increase with starts) meet the record's session.
        let hi = sessions.partition_point(|s| s.start <= end);
        let mut lo = hi;
        while lo > 0 && sessions[lo - 1].end >= t {
            lo -= 1;
        }
        if lo == hi {
            let mut acc = self.agg.init();
            self.agg.add(&mut acc, record);
            sessions.insert(
                hi,
                Session {
                    start: t,
                    end,
                    acc,
                    changed: false,
                },
            );
            if hi == 0 {
                // The key's new first session: it needs an entry by its end.
                self.by_end.insert((end, slot));
            }
            return hi;
        }
        debug_assert!(hi - lo <= 2, "a record bridges at most two sessions");
        let old_end = sessions[lo].end;
        let mut new_end = old_end.max(end);
        for _ in lo + 1..hi {
            let next = sessions.remove(lo + 1).expect("index within the deque");
            self.agg.merge(&mut sessions[lo].acc, &next.acc);
            new_end = new_end.max(next.end);
        }
        let session = &mut sessions[lo];
        session.start = session.start.min(t);
        self.agg.add(&mut session.acc, record);
        // Only ever later: the key's index entry stays at or before its first session's
        // end.
        session.end = new_end;
        lo
    }

    /// Evicts every session ending at or before `watermark`, in end order, emitting each
    /// if `emit` (append mode).
    fn evict<C>(&mut self, watermark: i64, emit: bool, ctx: &mut C)
    where
        C: Context<(K, Window, A::Out), (), T>,
    {
        while let Some(&(end, slot)) = self.by_end.first() {
            if end > watermark {
                break;
            }
            self.by_end.pop_first();
            let cell = &mut self.store.slots[slot as usize];
            let Some(entry) = cell.as_mut() else {
                // Stale: the key's sessions are all gone.
                continue;
            };
            let first_end = entry.sessions.front().map_or(i64::MAX, |s| s.end);
            if first_end > end {
                // Stale: the first session was extended (or the entry was another's).
                // Requeue it at its true end; if that is closed too, it comes up in turn.
                self.by_end.insert((first_end, slot));
                continue;
            }
            // A key's sessions leave in end order, which is their order.
            let session = entry
                .sessions
                .pop_front()
                .expect("a live key has a session");
            if let Some(next) = entry.sessions.front() {
                self.by_end.insert((next.end, slot));
            }
            if entry.sessions.is_empty() {
                let entry = cell.take().expect("checked above");
                self.slot_of.remove(&entry.key);
                self.store.free.push(slot);
                if emit {
                    let result = self.agg.result(&session.acc);
                    ctx.push((entry.key, session.window(), result));
                }
            } else if emit {
                let result = self.agg.result(&session.acc);
                ctx.push((entry.key.clone(), session.window(), result));
            }
        }
    }

    /// Emits what the ending epoch owes (every session in complete mode, the changed ones
    /// in micro-batch update mode, those about to be evicted included), then evicts what
    /// the epoch's watermark closed (emitting it in append mode).
    fn end_of_epoch<C>(&mut self, ctx: &mut C)
    where
        C: Context<(K, Window, A::Out), (), T>,
    {
        let watermark = self.store.lateness.end_epoch(ctx.watermark());
        match self.mode.output {
            OutputMode::Complete => {
                for entry in self.store.slots.iter().flatten() {
                    for session in &entry.sessions {
                        let result = self.agg.result(&session.acc);
                        ctx.push((entry.key.clone(), session.window(), result));
                    }
                }
                return;
            }
            OutputMode::Update => self.emit_changed(ctx),
            OutputMode::Append => {}
        }
        self.evict(watermark, self.mode.output == OutputMode::Append, ctx);
    }

    /// Emits the sessions changed since the last marker, key by key in the order keys
    /// first changed, each key's in start order.
    fn emit_changed<C>(&mut self, ctx: &mut C)
    where
        C: Context<(K, Window, A::Out), (), T>,
    {
        let mut dirty = std::mem::take(&mut self.store.dirty);
        for &slot in &dirty {
            let Some(entry) = self.store.slots[slot as usize].as_mut() else {
                continue;
            };
            if !entry.dirty {
                continue;
            }
            entry.dirty = false;
            for session in entry.sessions.iter_mut().filter(|s| s.changed) {
                session.changed = false;
                let result = self.agg.result(&session.acc);
                ctx.push((entry.key.clone(), session.window(), result));
            }
        }
        dirty.clear();
        self.store.dirty = dirty;
    }

    /// Rebuilds the key map and the end index from the slab (after a restore).
    fn rebuild(&mut self) -> Result<(), BoxError> {
        self.slot_of.clear();
        self.by_end.clear();
        for (slot, entry) in self.store.slots.iter().enumerate() {
            let Some(entry) = entry else { continue };
            let slot = u32::try_from(slot)?;
            if entry.sessions.is_empty() || self.slot_of.insert(entry.key.clone(), slot).is_some() {
                return Err("corrupt session window snapshot: empty or repeated key".into());
            }
            for session in &entry.sessions {
                self.by_end.insert((session.end, slot));
            }
        }
        if self
            .store
            .free
            .iter()
            .any(|&slot| !matches!(self.store.slots.get(slot as usize), Some(None)))
        {
            return Err("corrupt session window snapshot: a free slot is in use".into());
        }
        Ok(())
    }

    /// How many sessions are held.
    #[cfg(test)]
    pub(crate) fn live_sessions(&self) -> usize {
        self.store
            .slots
            .iter()
            .flatten()
            .map(|entry| entry.sessions.len())
            .sum()
    }

    /// How many keys hold sessions.
    #[cfg(test)]
    pub(crate) fn live_keys(&self) -> usize {
        self.slot_of.len()
    }

    /// How many key slots were ever allocated (live or free).
    #[cfg(test)]
    pub(crate) fn slot_capacity(&self) -> usize {
        self.store.slots.len()
    }

    /// Panics unless the state is consistent: sessions ordered, apart and at least a gap
    /// long, the key map and end index exactly what the slab says.
    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        let mut keys = 0;
        for (slot, entry) in self.store.slots.iter().enumerate() {
            let slot = slot as u32;
            let Some(entry) = entry else {
                assert!(self.store.free.contains(&slot), "slot {slot} leaked");
                continue;
            };
            keys += 1;
            assert_eq!(self.slot_of.get(&entry.key), Some(&slot));
            assert!(!entry.sessions.is_empty(), "slot {slot} holds no session");
            for session in &entry.sessions {
                assert!(session.end >= session.start.saturating_add(self.gap));
            }
            let first_end = entry.sessions[0].end;
            assert!(
                self.by_end
                    .iter()
                    .any(|&(end, s)| s == slot && end <= first_end),
                "slot {slot} has no eviction entry at or before its first session's end"
            );
            for pair in entry.sessions.iter().collect::<Vec<_>>().windows(2) {
                assert!(pair[1].start > pair[0].end, "sessions touch or overlap");
            }
        }
        assert_eq!(keys, self.slot_of.len());
    }
}

impl<K, T, A, F> Operator<(K, T)> for SessionAggregate<K, T, A, F>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    T: Send + 'static,
    A: Aggregate<T>,
    F: Fn(&T) -> Timestamp + Send + 'static,
{
    type Out = (K, Window, A::Out);
    type Key = ();
    type Side = T;

    fn on_record<C: Context<Self::Out, (), T>>(&mut self, (key, record): (K, T), ctx: &mut C) {
        let t = (self.time)(&record).0;
        let end = t.saturating_add(self.gap);
        let output = self.mode.output;
        if output != OutputMode::Complete && end <= self.store.lateness.bound(self.mode.execution) {
            ctx.count("late_records", 1);
            ctx.count("rows_dropped_by_watermark", 1);
            ctx.side_output(record);
            return;
        }
        self.writes += 1;
        let slot = self.slot_of(key);
        let index = self.add(slot, t, end, &record);
        if output != OutputMode::Update {
            return;
        }
        let entry = self.store.slots[slot as usize]
            .as_mut()
            .expect("a live key's slot is occupied");
        let session = &mut entry.sessions[index];
        match self.mode.execution {
            ExecutionMode::Continuous => {
                let result = self.agg.result(&session.acc);
                ctx.push((entry.key.clone(), session.window(), result));
            }
            ExecutionMode::MicroBatch => {
                session.changed = true;
                if !entry.dirty {
                    entry.dirty = true;
                    self.store.dirty.push(slot);
                }
            }
        }
    }

    fn on_watermark<C: Context<Self::Out, (), T>>(&mut self, watermark: Timestamp, ctx: &mut C) {
        // A micro-batch merges its records first and evicts at its marker.
        if self.store.lateness.observe(watermark)
            && Lateness::closes_on_watermark(self.mode.execution)
            && self.mode.output != OutputMode::Complete
        {
            self.evict(watermark.0, self.mode.output == OutputMode::Append, ctx);
        }
    }

    fn on_marker<C: Context<Self::Out, (), T>>(&mut self, _epoch: Epoch, ctx: &mut C) {
        self.end_of_epoch(ctx);
    }

    fn on_end<C: Context<Self::Out, (), T>>(&mut self, ctx: &mut C) {
        self.end_of_epoch(ctx);
    }

    fn set_emit_mode(&mut self, mode: EmitMode) {
        self.mode = mode;
    }

    fn state_metrics(&self) -> Option<crate::metrics::StateMetrics> {
        let sessions: usize = self
            .store
            .slots
            .iter()
            .flatten()
            .map(|slot| slot.sessions.len())
            .sum();
        let slot_bytes = std::mem::size_of::<Option<Slot<K, A::Acc>>>();
        let memory = (self.store.slots.capacity() * slot_bytes
            + sessions * std::mem::size_of::<Session<A::Acc>>()) as u64
            + crate::metrics::StateMetrics::table_bytes::<K, u32>(self.slot_of.capacity());
        Some(
            crate::metrics::StateMetrics {
                rows_total: sessions as u64,
                rows_updated: self.writes,
                memory_used_bytes: memory,
                ..Default::default()
            }
            .with_custom("keys", self.slot_of.len() as u64),
        )
    }

    fn snapshot(&self) -> Result<Option<Vec<u8>>, BoxError> {
        Ok(Some(codec::encode(&self.store)?))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), BoxError> {
        self.store = codec::decode(state)?;
        self.rebuild()
    }
}

#[cfg(test)]
mod tests;

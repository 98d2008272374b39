//! The tumbling and sliding window aggregate: [`TimeWindowAggregate`], the operator
//! [`TimeWindows`] builds as a [`WindowSpec`].

use super::lateness::Lateness;
use super::{TimeWindows, Window, WindowSpec};
use crate::aggregate::Aggregate;
use crate::checkpoint::codec;
use crate::error::BoxError;
use crate::event::{Epoch, Timestamp};
use crate::metrics::StateMetrics;
use crate::operator::{Context, Operator};
use crate::trigger::{EmitMode, ExecutionMode, OutputMode};
use rustc_hash::FxHashMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::ops::Range;

/// The counter of records none of whose windows was open (set aside as late).
pub const LATE_RECORDS: &str = "late_records";
/// The counter of (record, window) pairs not aggregated because the window was closed
/// (Spark's `numRowsDroppedByWatermark`).
pub const ROWS_DROPPED_BY_WATERMARK: &str = "rows_dropped_by_watermark";

/// Slice and window indices stay within `±LIMIT` (timestamps beyond ±2^62 µs, about
/// 146 000 years, are not supported).
const LIMIT: i64 = 1 << 62;

impl WindowSpec for TimeWindows {
    /// Sliding windows combine slices; tumbling windows are one slice each.
    fn needs_merge(&self) -> bool {
        !self.is_tumbling()
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
        TimeWindowAggregate::new(*self, agg, time)
    }
}

/// The event-time tumbling or sliding window aggregate of `(key, record)` pairs: emits
/// `(key, window, result)` rows as the output mode says and sets late records aside on
/// its side output.
///
/// # Slices, not copies
///
/// Records are aggregated per *slice*: a span of event time `gcd(length, slide)` wide,
/// aligned like the windows (offset included), so every window is a whole number of
/// slices and each slice belongs to about `length / slide` windows. A record updates one
/// accumulator (its key's in its slice) whatever the number of windows it belongs to; a
/// window's value is the merge of its slices in time order, computed only when the
/// window is emitted (an order-sensitive aggregate sees a window's records by slice, in
/// arrival order within a slice).
/// Tumbling windows are one slice each and never merge (so their aggregate need not be
/// [mergeable](Aggregate::mergeable)). When several windows of a key are emitted at once,
/// their values come from prefix and suffix merges within blocks of `length / gcd` slices,
/// so emitting `w` overlapping windows over `s` slices costs `O(w + s)` merges, not
/// `O(w · length / gcd)`.
///
/// Slices are kept by start time, only those holding data, so emission and eviction walk
/// what the state holds: a watermark jumping a year ahead visits the slices present, not
/// a year of empty windows.
///
/// # Late data
///
/// A record belongs to every window holding its event time. A (record, window) pair whose
/// `window.end <= late bound` is not aggregated (Spark's late-row predicate on the window
/// column); such pairs are counted as `rows_dropped_by_watermark` (Spark's
/// `numRowsDroppedByWatermark` counts the expanded rows). A record none of whose windows
/// is open is *late*: counted as `late_records` and set aside on the side output (rivulet
/// only; Spark drops it silently). A record with at least one open window counts in its
/// open windows only.
///
/// The late bound depends on the epoch's mode:
///
/// * **micro-batch, as Spark 3.4+**: the watermark of the *previous* batch (Spark's
///   `eventTimeWatermarkForLateEvents`), while windows close with the batch's own
///   watermark at its end (`eventTimeWatermarkForEviction`). With `wm(N)` the watermark
///   batch `N` runs under, a record of batch `N + 1` whose window ends in
///   `(wm(N), wm(N + 1)]` still counts, and the window is emitted with it at the end of
///   batch `N + 1`; the same record one batch later is late.
/// * **continuous, rivulet's own model**: the current watermark; windows close as it
///   arrives.
///
/// Both watermarks are kept in the snapshot, so a restored operator judges a replayed
/// batch as the original run did; a smaller watermark after a restore changes nothing,
/// and a window once closed stays closed.
///
/// # What is emitted, and when
///
/// | output mode | continuous epoch | micro-batch epoch | state dropped |
/// |---|---|---|---|
/// | append | each window once, final, when the watermark reaches its end | each window once, final, at the marker of the batch whose watermark reaches its end, after the batch's records (Spark's `StateStoreSaveExec`; a batch's watermark comes from the batches before it, so a window closed by batch `N`'s data is emitted at the end of batch `N + 1`, or of the batch without data that follows `N`) | windows the watermark closed |
/// | update | after each record, every open window it changed, with its new value | every window changed in the batch, once, at its marker, those the batch's watermark closes included (as Spark) | windows the watermark closed, without emitting them again |
/// | complete | every window of every key at each epoch end | same | nothing |
///
/// Within one call rows come out by window end (keys in no particular order).
///
/// *Complete mode* keeps the whole table as Spark does: no record is late, no window is
/// dropped, and the state grows with every window that ever held data.
///
/// *A watermark inside a micro-batch*: the engine moves the watermark only at batch
/// starts, so this does not happen in a query; should it happen (a harness), it changes
/// nothing until the marker.
///
/// *End of stream*: what a marker would emit (end of stream does not move the watermark:
/// append emits only windows the watermark closed; a generator that wants the last
/// windows out sends a final watermark, such as [`Timestamp::MAX`]); update emits the
/// windows changed since the last epoch end (micro-batch); complete emits the table.
///
/// A switch between continuous and micro-batch epochs (a trigger switch) keeps the state
/// as it is: changes recorded in a micro-batch epoch are emitted at its end whatever
/// the next epoch's mode, and the first micro-batch after a continuous epoch judges
/// records by the watermark that epoch ended with.
///
/// # Use
///
/// Built by [`TimeWindows`] as a [`WindowSpec`] (through
/// [`KeyedStream::window`](crate::KeyedStream::window)); also usable directly, with
/// [`Harness`](crate::operator::Harness) for instance.
///
/// ```
/// use rivulet::aggregate::Aggregate;
/// use rivulet::operator::Harness;
/// use rivulet::window::{TimeWindowAggregate, TimeWindows, Window};
/// use rivulet::trigger::{EmitMode, ExecutionMode, OutputMode};
/// use rivulet::Timestamp;
/// use std::time::Duration;
///
/// #[derive(Clone)]
/// struct Count;
/// impl Aggregate<i64> for Count {
///     type Acc = u64;
///     type Out = u64;
///     fn init(&self) -> u64 { 0 }
///     fn add(&self, acc: &mut u64, _: &i64) { *acc += 1 }
///     fn merge(&self, acc: &mut u64, other: &u64) { *acc += other }
///     fn result(&self, acc: &u64) -> u64 { *acc }
/// }
///
/// let windows = TimeWindows::sliding(Duration::from_micros(10), Duration::from_micros(5))?;
/// let mut h = Harness::new(TimeWindowAggregate::new(windows, Count, |t: &i64| Timestamp(*t)));
/// h.set_emit_mode(EmitMode { execution: ExecutionMode::Continuous, output: OutputMode::Append });
/// for t in [1, 7, 12] {
///     h.push(('k', t));
/// }
/// h.advance_watermark(Timestamp(10)); // closes [-5, 5) and [0, 10)
/// let w = |s| Window { start: Timestamp(s), end: Timestamp(s + 10) };
/// assert_eq!(h.take_output(), vec![('k', w(-5), 1), ('k', w(0), 2)]);
/// h.push(('k', 3)); // every window of 3 is closed: late
/// assert_eq!(h.take_side_output(), vec![3]);
/// h.advance_watermark(Timestamp(20));
/// assert_eq!(h.take_output(), vec![('k', w(5), 2), ('k', w(10), 1)]);
/// # Ok::<(), rivulet::window::WindowSpecError>(())
/// ```
pub struct TimeWindowAggregate<K, T, A: Aggregate<T>, F> {
    geometry: Geometry,
    agg: A,
    time: F,
    mode: EmitMode,
    state: State<K, A::Acc>,
    /// The first window (index) not closed yet: open at `state.closed`.
    first_open: i64,
    /// The first window (index) a record still counts in: open at the late bound of the
    /// epoch's mode, and never before `first_open` (a closed window stays closed).
    late_open: i64,
    /// Where in `state.slices` the previous record's slice was.
    hint: usize,
    /// Accumulator writes and evictions so far (for progress; not checkpointed).
    writes: u64,
    removed: u64,
    _input: PhantomData<fn(T)>,
}

/// What a snapshot saves.
#[derive(Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Hash + Eq, Acc: Serialize",
    deserialize = "K: DeserializeOwned + Hash + Eq, Acc: DeserializeOwned"
))]
struct State<K, Acc> {
    /// The watermarks records are judged by.
    lateness: Lateness,
    /// The watermark windows were closed (emitted in append mode, evicted) up to
    /// (`i64::MIN` before the first).
    closed: i64,
    /// The slices holding data, by index (start time), oldest first.
    slices: VecDeque<Slice<K, Acc>>,
    /// Whether some accumulator changed since the last epoch end (micro-batch update
    /// mode).
    pending: bool,
}

/// The accumulators of one slice, by key.
#[derive(Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Hash + Eq, Acc: Serialize",
    deserialize = "K: DeserializeOwned + Hash + Eq, Acc: DeserializeOwned"
))]
struct Slice<K, Acc> {
    /// `(start − offset) / gcd`.
    idx: i64,
    /// Whether some accumulator of the slice is marked changed.
    changed: bool,
    accs: FxHashMap<K, Entry<Acc>>,
}

#[derive(Clone, Serialize, Deserialize)]
struct Entry<Acc> {
    acc: Acc,
    /// Changed since the last epoch end (micro-batch update mode).
    changed: bool,
}

/// A row being emitted: window index, key, value.
type Row<K, V> = (i64, K, V);

impl<K, T, A, F> TimeWindowAggregate<K, T, A, F>
where
    K: Hash + Eq + Clone,
    A: Aggregate<T>,
    F: Fn(&T) -> Timestamp,
{
    /// The aggregate `agg` over `windows`, reading each record's event time with `time`.
    ///
    /// Sliding windows call [`Aggregate::merge`]; the stream builder refuses a sliding
    /// window over an aggregate that is not [mergeable](Aggregate::mergeable).
    pub fn new(windows: TimeWindows, agg: A, time: F) -> Self {
        let geometry = Geometry::new(&windows);
        TimeWindowAggregate {
            first_open: geometry.first_open(i64::MIN),
            late_open: geometry.first_open(i64::MIN),
            geometry,
            agg,
            time,
            mode: EmitMode::default(),
            state: State {
                lateness: Lateness::new(),
                closed: i64::MIN,
                slices: VecDeque::new(),
                pending: false,
            },
            hint: 0,
            writes: 0,
            removed: 0,
            _input: PhantomData,
        }
    }

    /// How many slices the operator holds (each one `gcd(length, slide)` of event time
    /// with data).
    pub fn stored_slices(&self) -> usize {
        self.state.slices.len()
    }

    /// How many accumulators the operator holds: one per (slice, key) with data.
    pub fn stored_accumulators(&self) -> usize {
        self.state.slices.iter().map(|s| s.accs.len()).sum()
    }

    /// The position of slice `idx` in `state.slices`, inserting it if it is new.
    #[inline]
    fn slice_position(&mut self, idx: i64) -> usize {
        let slices = &mut self.state.slices;
        if slices.get(self.hint).is_some_and(|s| s.idx == idx) {
            return self.hint;
        }
        let position = match slices.back() {
            Some(last) if last.idx == idx => slices.len() - 1,
            Some(last) if last.idx > idx => match slices.binary_search_by_key(&idx, |s| s.idx) {
                Ok(i) => i,
                Err(i) => {
                    slices.insert(i, Slice::new(idx));
                    i
                }
            },
            _ => {
                slices.push_back(Slice::new(idx));
                slices.len() - 1
            }
        };
        self.hint = position;
        position
    }

    /// The positions in `state.slices` of the slices with index in `[lo, hi)`.
    fn slice_range(&self, lo: i64, hi: i64) -> Range<usize> {
        let slices = &self.state.slices;
        let start = slices.partition_point(|s| s.idx < lo);
        let end = slices.partition_point(|s| s.idx < hi);
        start..end.max(start)
    }

    /// Every key's rows for the windows in `span` that hold data.
    fn rows_all(&self, span: Span) -> Vec<Row<K, A::Out>> {
        let g = &self.geometry;
        if span.is_empty() {
            return Vec::new();
        }
        let range = self.slice_range(span.lo, span.hi.saturating_add(g.n));
        let mut rows = Vec::new();
        if g.n == 1 {
            // Tumbling: a slice is a window; slices come in window order.
            for slice in self.state.slices.range(range) {
                for (key, entry) in &slice.accs {
                    rows.push((slice.idx, key.clone(), self.agg.result(&entry.acc)));
                }
            }
            return rows;
        }
        let mut by_key: FxHashMap<&K, Vec<(i64, &A::Acc)>> = FxHashMap::default();
        for slice in self.state.slices.range(range) {
            for (key, entry) in &slice.accs {
                by_key.entry(key).or_default().push((slice.idx, &entry.acc));
            }
        }
        let mut windows = Vec::new();
        for (key, entries) in &by_key {
            windows.clear();
            g.target_windows(entries.iter().map(|e| e.0), span, &mut windows);
            g.window_values(&self.agg, entries, &windows, |w, value| {
                rows.push((w, (*key).clone(), value))
            });
        }
        rows.sort_unstable_by_key(|row| row.0);
        rows
    }

    /// The rows of the windows in `span` that hold an accumulator marked changed.
    fn rows_changed(&self, span: Span) -> Vec<Row<K, A::Out>> {
        let g = &self.geometry;
        if span.is_empty() {
            return Vec::new();
        }
        // The changed slices of each key, in slice order.
        let mut seeds: FxHashMap<&K, Vec<i64>> = FxHashMap::default();
        for slice in self.state.slices.iter().filter(|s| s.changed) {
            for (key, _) in slice.accs.iter().filter(|(_, e)| e.changed) {
                seeds.entry(key).or_default().push(slice.idx);
            }
        }
        let mut jobs: Vec<(&K, Vec<i64>)> = Vec::with_capacity(seeds.len());
        for (key, seeds) in seeds {
            let mut windows = Vec::new();
            g.target_windows(seeds.into_iter(), span, &mut windows);
            if !windows.is_empty() {
                jobs.push((key, windows));
            }
        }
        let Some(lo) = jobs.iter().map(|(_, w)| w[0]).min() else {
            return Vec::new();
        };
        let hi = jobs
            .iter()
            .map(|(_, w)| w[w.len() - 1].saturating_add(g.n))
            .max()
            .unwrap_or(lo);
        // Gather each key's accumulators by lookups in the slices its windows cover, or
        // by one pass over the slices all windows cover: whichever touches less.
        let lookups: usize = jobs
            .iter()
            .map(|(_, w)| {
                self.slice_range(w[0], w[w.len() - 1].saturating_add(g.n))
                    .len()
            })
            .sum();
        let union = self.slice_range(lo, hi);
        let scanned: usize = self
            .state
            .slices
            .range(union.clone())
            .map(|s| s.accs.len())
            .sum();
        let mut entries: Vec<Vec<(i64, &A::Acc)>> = vec![Vec::new(); jobs.len()];
        if lookups <= scanned {
            for ((key, windows), entries) in jobs.iter().zip(&mut entries) {
                let last = windows[windows.len() - 1].saturating_add(g.n);
                let covered = self.slice_range(windows[0], last);
                for slice in self.state.slices.range(covered) {
                    if let Some(entry) = slice.accs.get(*key) {
                        entries.push((slice.idx, &entry.acc));
                    }
                }
            }
        } else {
            let index: FxHashMap<&K, usize> =
                jobs.iter().enumerate().map(|(i, (k, _))| (*k, i)).collect();
            for slice in self.state.slices.range(union) {
                for (key, entry) in &slice.accs {
                    if let Some(&i) = index.get(key) {
                        entries[i].push((slice.idx, &entry.acc));
                    }
                }
            }
        }
        let mut rows = Vec::new();
        for ((key, windows), entries) in jobs.iter().zip(&entries) {
            g.window_values(&self.agg, entries, windows, |w, value| {
                rows.push((w, (*key).clone(), value))
            });
        }
        rows.sort_unstable_by_key(|row| row.0);
        rows
    }

    /// Clears every changed mark.
    fn clear_changed(&mut self) {
        for slice in self.state.slices.iter_mut().filter(|s| s.changed) {
            slice.changed = false;
            for entry in slice.accs.values_mut() {
                entry.changed = false;
            }
        }
        self.state.pending = false;
    }

    /// Emits `key`'s value in each of the windows `[lo, hi]` (indices) after a record.
    fn emit_key_windows<C>(&self, key: &K, lo: i64, hi: i64, ctx: &mut C)
    where
        C: Context<(K, Window, A::Out), (), T>,
    {
        let g = &self.geometry;
        let covered = self.slice_range(lo, hi.saturating_add(g.n));
        let entries: Vec<(i64, &A::Acc)> = self
            .state
            .slices
            .range(covered)
            .filter_map(|slice| slice.accs.get(key).map(|e| (slice.idx, &e.acc)))
            .collect();
        let windows: Vec<i64> = (0..=(hi - lo) / g.m).map(|i| lo + i * g.m).collect();
        g.window_values(&self.agg, &entries, &windows, |w, value| {
            ctx.push((key.clone(), g.window(w), value))
        });
    }

    fn emit<C>(&self, rows: Vec<Row<K, A::Out>>, ctx: &mut C)
    where
        C: Context<(K, Window, A::Out), (), T>,
    {
        for (w, key, value) in rows {
            ctx.push((key, self.geometry.window(w), value));
        }
    }

    /// Drops the slices whose every window is closed.
    fn evict(&mut self) {
        let g = self.geometry;
        let slices = &mut self.state.slices;
        let mut dropped = 0;
        while slices
            .front()
            .is_some_and(|s| g.floor_m(s.idx) < self.first_open)
        {
            if let Some(slice) = slices.pop_front() {
                self.removed += slice.accs.len() as u64;
            }
            dropped += 1;
        }
        self.hint = self.hint.saturating_sub(dropped);
    }

    /// The late bound moved (a watermark, a marker, a mode, a restore): recomputes the
    /// first window a record still counts in.
    fn refresh_late_open(&mut self) {
        let bound = self.state.lateness.bound(self.mode.execution);
        self.late_open = self.geometry.first_open(bound).max(self.first_open);
    }

    /// Closes the windows ending at or before `watermark`: emits them (append mode) or
    /// the changed ones among them (update mode, changes a micro-batch left), then drops
    /// the slices no open window needs.
    fn close<C>(&mut self, watermark: i64, ctx: &mut C)
    where
        C: Context<(K, Window, A::Out), (), T>,
    {
        if watermark <= self.state.closed || self.mode.output == OutputMode::Complete {
            return;
        }
        self.state.closed = watermark;
        let was_open = self.first_open;
        self.first_open = self.geometry.first_open(watermark);
        if self.first_open == was_open {
            return;
        }
        let closing = Span {
            lo: was_open,
            hi: self.first_open - self.geometry.m,
        };
        let rows = match self.mode.output {
            OutputMode::Append => self.rows_all(closing),
            OutputMode::Update if self.state.pending => self.rows_changed(closing),
            _ => Vec::new(),
        };
        self.emit(rows, ctx);
        self.evict();
    }

    /// What an epoch end (or the end of the stream) owes: the whole table (complete
    /// mode) or the changed windows (update mode), including those about to close; then
    /// the windows the epoch's watermark closes (emitted in append mode).
    fn end_of_epoch<C>(&mut self, ctx: &mut C)
    where
        C: Context<(K, Window, A::Out), (), T>,
    {
        match self.mode.output {
            OutputMode::Complete => {
                let rows = self.rows_all(Span::ALL.aligned(self.geometry.m));
                self.emit(rows, ctx);
            }
            OutputMode::Update if self.state.pending => {
                let open = Span {
                    lo: self.first_open,
                    hi: Span::ALL.aligned(self.geometry.m).hi,
                };
                let rows = self.rows_changed(open);
                self.emit(rows, ctx);
                self.clear_changed();
            }
            OutputMode::Update | OutputMode::Append => {}
        }
        let watermark = self.state.lateness.end_epoch(ctx.watermark());
        self.close(watermark, ctx);
        self.refresh_late_open();
    }
}

impl<K, Acc> Slice<K, Acc> {
    fn new(idx: i64) -> Self {
        Slice {
            idx,
            changed: false,
            accs: FxHashMap::default(),
        }
    }
}

impl<K, T, A, F> Operator<(K, T)> for TimeWindowAggregate<K, T, A, F>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    T: Send + 'static,
    A: Aggregate<T>,
    F: Fn(&T) -> Timestamp + Send + 'static,
{
    type Out = (K, Window, A::Out);
    type Key = ();
    type Side = T;

    #[inline]
    fn on_record<C: Context<Self::Out, (), T>>(&mut self, (key, record): (K, T), ctx: &mut C) {
        let g = self.geometry;
        let idx = g.slice_of((self.time)(&record).0);
        let (lo, hi) = g.windows_of_slice(idx);
        let complete = self.mode.output == OutputMode::Complete;
        let open_lo = if complete { lo } else { lo.max(self.late_open) };
        if open_lo > lo {
            let total = (hi - lo) / g.m + 1;
            let open = if open_lo > hi {
                0
            } else {
                (hi - open_lo) / g.m + 1
            };
            ctx.count(ROWS_DROPPED_BY_WATERMARK, (total - open) as u64);
            if open == 0 {
                ctx.count(LATE_RECORDS, 1);
                ctx.side_output(record);
                return;
            }
        }
        self.writes += 1;
        let position = self.slice_position(idx);
        let slice = &mut self.state.slices[position];
        match (self.mode.output, self.mode.execution) {
            (OutputMode::Update, ExecutionMode::Continuous) => {
                // Tumbling: the one window's value, read while the accumulator is at hand.
                let tumbling = g.n == 1;
                let value = if let Some(entry) = slice.accs.get_mut(&key) {
                    self.agg.add(&mut entry.acc, &record);
                    tumbling.then(|| self.agg.result(&entry.acc))
                } else {
                    let mut acc = self.agg.init();
                    self.agg.add(&mut acc, &record);
                    let value = tumbling.then(|| self.agg.result(&acc));
                    slice.accs.insert(key.clone(), Entry::new(acc));
                    value
                };
                match value {
                    Some(value) => ctx.push((key, g.window(idx), value)),
                    None => self.emit_key_windows(&key, open_lo, hi, ctx),
                }
            }
            (OutputMode::Update, ExecutionMode::MicroBatch) => {
                let entry = slice
                    .accs
                    .entry(key)
                    .or_insert_with(|| Entry::new(self.agg.init()));
                self.agg.add(&mut entry.acc, &record);
                entry.changed = true;
                slice.changed = true;
                self.state.pending = true;
            }
            (OutputMode::Append | OutputMode::Complete, _) => {
                let entry = slice
                    .accs
                    .entry(key)
                    .or_insert_with(|| Entry::new(self.agg.init()));
                self.agg.add(&mut entry.acc, &record);
            }
        }
    }

    fn on_watermark<C: Context<Self::Out, (), T>>(&mut self, watermark: Timestamp, ctx: &mut C) {
        if !self.state.lateness.observe(watermark) {
            return;
        }
        if Lateness::closes_on_watermark(self.mode.execution) {
            self.close(watermark.0, ctx);
        }
        self.refresh_late_open();
    }

    fn on_marker<C: Context<Self::Out, (), T>>(&mut self, _epoch: Epoch, ctx: &mut C) {
        self.end_of_epoch(ctx);
    }

    fn on_end<C: Context<Self::Out, (), T>>(&mut self, ctx: &mut C) {
        self.end_of_epoch(ctx);
    }

    fn set_emit_mode(&mut self, mode: EmitMode) {
        self.mode = mode;
        self.refresh_late_open();
    }

    fn state_metrics(&self) -> Option<StateMetrics> {
        let slices = &self.state.slices;
        let memory = slices
            .iter()
            .map(|slice| StateMetrics::table_bytes::<K, Entry<A::Acc>>(slice.accs.capacity()))
            .sum();
        Some(
            StateMetrics {
                rows_total: self.stored_accumulators() as u64,
                rows_updated: self.writes,
                rows_removed: self.removed,
                memory_used_bytes: memory,
                ..StateMetrics::default()
            }
            .with_custom("slices", slices.len() as u64),
        )
    }

    fn snapshot(&self) -> Result<Option<Vec<u8>>, BoxError> {
        Ok(Some(codec::encode(&self.state)?))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), BoxError> {
        self.state = codec::decode(state)?;
        self.first_open = self.geometry.first_open(self.state.closed);
        self.refresh_late_open();
        self.hint = 0;
        Ok(())
    }
}

impl<K, T, A, F> Clone for TimeWindowAggregate<K, T, A, F>
where
    K: Clone,
    A: Aggregate<T>,
    F: Clone,
{
    fn clone(&self) -> Self {
        TimeWindowAggregate {
            geometry: self.geometry,
            agg: self.agg.clone(),
            time: self.time.clone(),
            mode: self.mode,
            state: self.state.clone(),
            first_open: self.first_open,
            late_open: self.late_open,
            hint: self.hint,
            writes: self.writes,
            removed: self.removed,
            _input: PhantomData,
        }
    }
}

impl<K, T, A: Aggregate<T>, F> fmt::Debug for TimeWindowAggregate<K, T, A, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeWindowAggregate")
            .field("geometry", &self.geometry)
            .field("mode", &self.mode)
            .field("lateness", &self.state.lateness)
            .field("closed", &self.state.closed)
            .field("slices", &self.state.slices.len())
            .finish_non_exhaustive()
    }
}

impl<Acc> Entry<Acc> {
    fn new(acc: Acc) -> Self {
        Entry {
            acc,
            changed: false,
        }
    }
}

/// Windows by index, `[lo, hi]` (both multiples of the slide in slices).
#[derive(Debug, Clone, Copy)]
struct Span {
    lo: i64,
    hi: i64,
}

impl Span {
    /// Every window (before alignment).
    const ALL: Span = Span {
        lo: -LIMIT,
        hi: LIMIT,
    };

    /// The span narrowed to window indices (multiples of `m`).
    fn aligned(self, m: i64) -> Span {
        Span {
            lo: self.lo + (-self.lo).rem_euclid(m),
            hi: self.hi - self.hi.rem_euclid(m),
        }
    }

    fn is_empty(&self) -> bool {
        self.lo > self.hi
    }
}

/// Slices and windows as integers: slice `p` is `[offset + p·g, offset + (p + 1)·g)`,
/// window `w` (a multiple of `m`) holds slices `w .. w + n`.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    offset: i64,
    length: i64,
    /// The slice width, `gcd(length, slide)`.
    g: i64,
    /// Slices per window.
    n: i64,
    /// Slices per slide.
    m: i64,
}

impl Geometry {
    fn new(windows: &TimeWindows) -> Self {
        let length = windows.length_micros();
        let slide = windows.slide_micros();
        let g = gcd(length, slide);
        Geometry {
            offset: windows.offset_micros(),
            length,
            g,
            n: length / g,
            m: slide / g,
        }
    }

    /// The slice holding `time`.
    #[inline]
    fn slice_of(&self, time: i64) -> i64 {
        let idx = match time.checked_sub(self.offset) {
            Some(since) => since.div_euclid(self.g),
            None => (time as i128 - self.offset as i128).div_euclid(self.g as i128) as i64,
        };
        idx.clamp(-LIMIT, LIMIT)
    }

    /// The largest window index at or before slice `idx`.
    #[inline]
    fn floor_m(&self, idx: i64) -> i64 {
        if self.m == 1 {
            idx
        } else {
            idx - idx.rem_euclid(self.m)
        }
    }

    /// The first and last window (indices) holding slice `idx`.
    #[inline]
    fn windows_of_slice(&self, idx: i64) -> (i64, i64) {
        (self.floor_m(idx - self.n) + self.m, self.floor_m(idx))
    }

    /// The first window whose end is after `watermark` (Spark's late predicate is
    /// `window.end <= watermark`).
    fn first_open(&self, watermark: i64) -> i64 {
        // end(w) = offset + w·g + length > watermark  ⇔  w > (watermark − offset − length) / g
        let bound = (watermark as i128 - self.offset as i128 - self.length as i128)
            .div_euclid(self.g as i128)
            .clamp(-(LIMIT as i128), LIMIT as i128) as i64;
        self.floor_m(bound) + self.m
    }

    /// Window `w` as event time.
    fn window(&self, w: i64) -> Window {
        let start = (self.offset as i128 + w as i128 * self.g as i128)
            .clamp(i64::MIN as i128, i64::MAX as i128) as i64;
        Window {
            start: Timestamp(start),
            end: Timestamp(start.saturating_add(self.length)),
        }
    }

    /// Appends to `out`, in order and once each, the windows in `span` holding one of the
    /// slices `seeds` (ascending).
    fn target_windows(&self, seeds: impl Iterator<Item = i64>, span: Span, out: &mut Vec<i64>) {
        let mut next = span.lo;
        for idx in seeds {
            let (first, last) = self.windows_of_slice(idx);
            let last = last.min(span.hi);
            let mut w = first.max(next);
            while w <= last {
                out.push(w);
                w += self.m;
            }
            next = next.max(last + self.m);
        }
    }

    /// Calls `out(w, value)` for each window `w` of `windows` (ascending) that holds one
    /// of `entries` (one key's accumulators by slice, ascending), in window order.
    fn window_values<T, A: Aggregate<T>>(
        &self,
        agg: &A,
        entries: &[(i64, &A::Acc)],
        windows: &[i64],
        mut out: impl FnMut(i64, A::Out),
    ) {
        let n = self.n;
        if entries.is_empty() || windows.is_empty() {
            return;
        }
        if n == 1 {
            let mut j = 0;
            for &w in windows {
                while j < entries.len() && entries[j].0 < w {
                    j += 1;
                }
                match entries.get(j) {
                    Some((idx, acc)) if *idx == w => out(w, agg.result(acc)),
                    Some(_) => {}
                    None => break,
                }
            }
            return;
        }
        let covered = |entries: &[(i64, &A::Acc)], w: i64| {
            entries.partition_point(|e| e.0 < w)
                ..entries.partition_point(|e| e.0 < w.saturating_add(n))
        };
        if let [w] = windows {
            let range = covered(entries, *w);
            if let Some(((_, first), rest)) = entries[range].split_first() {
                let mut acc = (*first).clone();
                for (_, other) in rest {
                    agg.merge(&mut acc, other);
                }
                out(*w, agg.result(&acc));
            }
            return;
        }
        // Blocks of n slices: a window crosses at most one block boundary, so its value
        // is a suffix of one block merged with a prefix of the next.
        let range =
            covered(entries, windows[0]).start..covered(entries, windows[windows.len() - 1]).end;
        let entries = &entries[range];
        let block = |idx: i64| idx.div_euclid(n);
        let mut prefix: Vec<A::Acc> = Vec::with_capacity(entries.len());
        for (i, (idx, acc)) in entries.iter().enumerate() {
            let value = match prefix.last() {
                Some(before) if block(entries[i - 1].0) == block(*idx) => {
                    let mut value = before.clone();
                    agg.merge(&mut value, acc);
                    value
                }
                _ => (*acc).clone(),
            };
            prefix.push(value);
        }
        let mut suffix: Vec<A::Acc> = Vec::with_capacity(entries.len());
        for (i, (idx, acc)) in entries.iter().enumerate().rev() {
            let mut value = (*acc).clone();
            if let Some(after) = suffix.last() {
                if block(entries[i + 1].0) == block(*idx) {
                    agg.merge(&mut value, after);
                }
            }
            suffix.push(value);
        }
        suffix.reverse();
        for &w in windows {
            let range = covered(entries, w);
            if range.is_empty() {
                continue;
            }
            let boundary = (block(w) + 1) * n;
            let head = (entries[range.start].0 < boundary).then(|| &suffix[range.start]);
            let tail = (entries[range.end - 1].0 >= boundary).then(|| &prefix[range.end - 1]);
            let value = match (head, tail) {
                (Some(head), Some(tail)) => {
                    let mut acc = head.clone();
                    agg.merge(&mut acc, tail);
                    agg.result(&acc)
                }
                (Some(only), None) | (None, Some(only)) => agg.result(only),
                (None, None) => continue,
            };
            out(w, value);
        }
    }
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::Harness;
    use std::time::Duration;

    /// Counts records.
    #[derive(Debug, Clone)]
    struct Count;

    impl<T> Aggregate<T> for Count {
        type Acc = u64;
        type Out = u64;
        fn init(&self) -> u64 {
            0
        }
        fn add(&self, acc: &mut u64, _: &T) {
            *acc += 1;
        }
        fn merge(&self, acc: &mut u64, other: &u64) {
            *acc += other;
        }
        fn result(&self, acc: &u64) -> u64 {
            *acc
        }
    }

    /// Keeps its records in the order they were added or merged (order-sensitive).
    #[derive(Debug, Clone)]
    struct Concat;

    impl Aggregate<i64> for Concat {
        type Acc = Vec<i64>;
        type Out = Vec<i64>;
        fn init(&self) -> Vec<i64> {
            Vec::new()
        }
        fn add(&self, acc: &mut Vec<i64>, record: &i64) {
            acc.push(*record);
        }
        fn merge(&self, acc: &mut Vec<i64>, other: &Vec<i64>) {
            acc.extend_from_slice(other);
        }
        fn result(&self, acc: &Vec<i64>) -> Vec<i64> {
            acc.clone()
        }
    }

    /// Counts, and cannot merge.
    #[derive(Debug, Clone)]
    struct CountNoMerge;

    impl Aggregate<i64> for CountNoMerge {
        type Acc = u64;
        type Out = u64;
        fn init(&self) -> u64 {
            0
        }
        fn add(&self, acc: &mut u64, _: &i64) {
            *acc += 1;
        }
        fn mergeable(&self) -> bool {
            false
        }
        fn merge(&self, _: &mut u64, _: &u64) {
            panic!("merge called on an aggregate that cannot merge");
        }
        fn result(&self, acc: &u64) -> u64 {
            *acc
        }
    }

    /// SplitMix64, for reproducible random cases.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> i64 {
            (self.next() % n) as i64
        }
    }

    const MIN: i64 = 60_000_000;

    fn at(h: i64, m: i64) -> i64 {
        (h * 60 + m) * MIN
    }

    fn mode(execution: ExecutionMode, output: OutputMode) -> EmitMode {
        EmitMode { execution, output }
    }

    type WordOp = TimeWindowAggregate<String, i64, Count, fn(&i64) -> Timestamp>;

    fn time_of(t: &i64) -> Timestamp {
        Timestamp(*t)
    }

    /// Spark's guide, "Handling Late Data and Watermarking": 10 min windows sliding every
    /// 5 min, a 10 min watermark delay, a trigger every 5 min. `(word, event time)`.
    fn spark_batches() -> Vec<Vec<(&'static str, i64)>> {
        vec![
            vec![("dog", at(12, 7)), ("owl", at(12, 8))],
            vec![("dog", at(12, 14)), ("cat", at(12, 9))],
            vec![
                ("cat", at(12, 15)),
                ("dog", at(12, 8)),
                ("owl", at(12, 13)),
                ("owl", at(12, 21)),
            ],
            vec![("donkey", at(12, 4)), ("owl", at(12, 17))],
        ]
    }

    fn spark_operator() -> WordOp {
        let windows =
            TimeWindows::sliding(Duration::from_secs(600), Duration::from_secs(300)).unwrap();
        TimeWindowAggregate::new(windows, Count, time_of as fn(&i64) -> Timestamp)
    }

    /// Runs Spark's batches in micro-batch epochs (the watermark of each batch, max event
    /// time seen − 10 min, arrives before its records), then, with `final_watermark`, a
    /// batch without data under it, and returns what each watermark and each batch end
    /// emitted, as `(window start h:m, word, count)` sorted.
    fn run_spark_example(
        output: OutputMode,
        final_watermark: Option<i64>,
    ) -> (Harness<(String, i64), WordOp>, Vec<Rows>) {
        let mut h = Harness::new(spark_operator());
        h.set_emit_mode(mode(ExecutionMode::MicroBatch, output));
        let mut emitted = Vec::new();
        let mut max_seen = i64::MIN;
        for batch in spark_batches() {
            if max_seen > i64::MIN {
                h.advance_watermark(Timestamp(max_seen - 10 * MIN));
            }
            let at_watermark = readable(h.take_output());
            for (word, t) in batch {
                h.push((word.to_string(), t));
                max_seen = max_seen.max(t);
            }
            h.end_epoch();
            emitted.push(at_watermark);
            emitted.push(readable(h.take_output()));
        }
        if let Some(watermark) = final_watermark {
            h.advance_watermark(Timestamp(watermark));
            emitted.push(readable(h.take_output()));
            h.end_epoch();
            emitted.push(readable(h.take_output()));
        }
        (h, emitted)
    }

    type Rows = Vec<(String, String, u64)>;

    fn hm(t: i64) -> String {
        format!("{}:{:02}", t / MIN / 60, t / MIN % 60)
    }

    /// Rows as `(start h:m, word, count)`, sorted; checks they came by window end and
    /// that every window is 10 min long.
    fn readable(rows: Vec<(String, Window, u64)>) -> Rows {
        assert!(
            rows.windows(2).all(|p| p[0].1.end <= p[1].1.end),
            "{rows:?}"
        );
        let mut out: Rows = rows
            .into_iter()
            .map(|(word, w, n)| {
                assert_eq!(w.end.0 - w.start.0, 10 * MIN);
                (hm(w.start.0), word, n)
            })
            .collect();
        out.sort();
        out
    }

    fn rows(expected: &[(&str, &str, u64)]) -> Rows {
        let mut out: Rows = expected
            .iter()
            .map(|(s, w, n)| (s.to_string(), w.to_string(), *n))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn sparks_worked_example_in_update_mode() {
        let (h, emitted) = run_spark_example(OutputMode::Update, None);
        let expected = [
            rows(&[]),
            rows(&[
                ("12:00", "dog", 1),
                ("12:00", "owl", 1),
                ("12:05", "dog", 1),
                ("12:05", "owl", 1),
            ]),
            rows(&[]),
            rows(&[
                ("12:00", "cat", 1),
                ("12:05", "cat", 1),
                ("12:05", "dog", 2),
                ("12:10", "dog", 1),
            ]),
            rows(&[]),
            rows(&[
                ("12:00", "dog", 2),
                ("12:05", "dog", 3),
                ("12:05", "owl", 2),
                ("12:10", "cat", 1),
                ("12:10", "owl", 1),
                ("12:15", "cat", 1),
                ("12:15", "owl", 1),
                ("12:20", "owl", 1),
            ]),
            // Batch 4 runs under watermark 12:11 and judges records by batch 3's, 12:04
            // (Spark 3.4+): "donkey" at 12:04 still counts in 11:55-12:05 and 12:00-12:10
            // (the guide, written for the older rule, calls it late). Both windows are
            // emitted with the batch's changes, then evicted by 12:11.
            rows(&[]),
            rows(&[
                ("11:55", "donkey", 1),
                ("12:00", "donkey", 1),
                ("12:10", "owl", 2),
                ("12:15", "owl", 2),
            ]),
        ];
        assert_eq!(emitted, expected);
        assert_eq!(h.counter(LATE_RECORDS), 0);
        assert_eq!(h.counter(ROWS_DROPPED_BY_WATERMARK), 0);
        let late: Vec<i64> = h.operator().state.slices.iter().map(|s| s.idx).collect();
        // Slices of 5 min left: 12:05 (in 12:05-12:15), 12:10, 12:15, 12:20.
        let first = (at(12, 5)) / (5 * MIN);
        assert_eq!(late, vec![first, first + 1, first + 2, first + 3]);
    }

    #[test]
    fn sparks_worked_example_in_complete_mode() {
        let (h, emitted) = run_spark_example(OutputMode::Complete, Some(i64::MAX));
        let b1 = [
            ("12:00", "dog", 1),
            ("12:00", "owl", 1),
            ("12:05", "dog", 1),
            ("12:05", "owl", 1),
        ];
        let b2 = [
            ("12:00", "cat", 1),
            ("12:00", "dog", 1),
            ("12:00", "owl", 1),
            ("12:05", "cat", 1),
            ("12:05", "dog", 2),
            ("12:05", "owl", 1),
            ("12:10", "dog", 1),
        ];
        let b3 = [
            ("12:00", "cat", 1),
            ("12:00", "dog", 2),
            ("12:00", "owl", 1),
            ("12:05", "cat", 1),
            ("12:05", "dog", 3),
            ("12:05", "owl", 2),
            ("12:10", "cat", 1),
            ("12:10", "dog", 1),
            ("12:10", "owl", 1),
            ("12:15", "cat", 1),
            ("12:15", "owl", 1),
            ("12:20", "owl", 1),
        ];
        // Complete mode drops nothing: "donkey" counts, 12:00-12:10 stays.
        let b4 = [
            ("11:55", "donkey", 1),
            ("12:00", "cat", 1),
            ("12:00", "dog", 2),
            ("12:00", "donkey", 1),
            ("12:00", "owl", 1),
            ("12:05", "cat", 1),
            ("12:05", "dog", 3),
            ("12:05", "owl", 2),
            ("12:10", "cat", 1),
            ("12:10", "dog", 1),
            ("12:10", "owl", 2),
            ("12:15", "cat", 1),
            ("12:15", "owl", 2),
            ("12:20", "owl", 1),
        ];
        let expected = [
            rows(&[]),
            rows(&b1),
            rows(&[]),
            rows(&b2),
            rows(&[]),
            rows(&b3),
            rows(&[]),
            rows(&b4),
            // The final batch's watermark closes everything, yet the table stays.
            rows(&[]),
            rows(&b4),
        ];
        assert_eq!(emitted, expected);
        assert_eq!(h.counter(LATE_RECORDS), 0);
        assert_eq!(h.counter(ROWS_DROPPED_BY_WATERMARK), 0);
        assert_eq!(h.operator().stored_accumulators(), 9);
    }

    #[test]
    fn sparks_worked_example_in_append_mode() {
        let (mut h, emitted) = run_spark_example(OutputMode::Append, Some(at(12, 30)));
        let expected = [
            rows(&[]),
            rows(&[]),
            rows(&[]),
            rows(&[]),
            rows(&[]),
            rows(&[]),
            // Batch 4 (watermark 12:11, late bound 12:04) adds "donkey" at 12:04, then
            // closes 11:55-12:05 and 12:00-12:10 at its end.
            rows(&[]),
            rows(&[
                ("11:55", "donkey", 1),
                ("12:00", "cat", 1),
                ("12:00", "dog", 2),
                ("12:00", "donkey", 1),
                ("12:00", "owl", 1),
            ]),
            // A batch without data under 12:30 closes the rest at its end.
            rows(&[]),
            rows(&[
                ("12:05", "cat", 1),
                ("12:05", "dog", 3),
                ("12:05", "owl", 2),
                ("12:10", "cat", 1),
                ("12:10", "dog", 1),
                ("12:10", "owl", 2),
                ("12:15", "cat", 1),
                ("12:15", "owl", 2),
                ("12:20", "owl", 1),
            ]),
        ];
        assert_eq!(emitted, expected);
        assert_eq!(h.counter(LATE_RECORDS), 0);
        assert!(h.take_side_output().is_empty());
        assert_eq!(h.operator().stored_slices(), 0);
    }

    /// One batch's output, `(window start, count)`, and late records.
    type BatchOut = (Vec<(i64, u64)>, Vec<i64>);

    /// Tumbling 10 µs windows, one key, counted; micro-batch epochs `(watermark, times)`.
    /// Returns each batch's output and late records.
    fn run_batches(output: OutputMode, batches: &[(i64, &[i64])]) -> Vec<BatchOut> {
        let windows = TimeWindows::tumbling(Duration::from_micros(10)).unwrap();
        let mut h = Harness::new(TimeWindowAggregate::new(windows, Count, time_of));
        h.set_emit_mode(mode(ExecutionMode::MicroBatch, output));
        batches
            .iter()
            .map(|(watermark, times)| {
                h.advance_watermark(Timestamp(*watermark));
                assert_eq!(h.take_output(), vec![], "nothing at the batch start");
                for t in *times {
                    h.push((0u8, *t));
                }
                h.end_epoch();
                let rows = h
                    .take_output()
                    .into_iter()
                    .map(|(_, w, n)| {
                        assert_eq!(w.end.0 - w.start.0, 10);
                        (w.start.0, n)
                    })
                    .collect();
                (rows, h.take_side_output())
            })
            .collect()
    }

    #[test]
    fn a_record_closed_only_by_its_own_batchs_watermark_still_counts() {
        // Batch 1 (watermark 0) holds 25: batch 2 runs under 25 − 5 = 20 and judges
        // records by 0. 3 lies in [0, 10): 10 <= 20, yet 10 > 0, so it counts (Spark 3.4+;
        // the older rule, judging by 20, dropped it) and [0, 10) goes out at the end of
        // batch 2 with both records. In batch 3 (judged by 20) the same time is late.
        let batches: [(i64, &[i64]); 3] = [(0, &[1, 25]), (20, &[3, 22]), (20, &[3, 27])];
        let got = run_batches(OutputMode::Append, &batches);
        assert_eq!(
            got,
            vec![(vec![], vec![]), (vec![(0, 2)], vec![]), (vec![], vec![3])]
        );
        // Update mode: batch 2 emits [0, 10) with the record, then evicts it.
        let got = run_batches(OutputMode::Update, &batches);
        assert_eq!(
            got,
            vec![
                (vec![(0, 1), (20, 1)], vec![]),
                (vec![(0, 2), (20, 2)], vec![]),
                (vec![(20, 3)], vec![3]),
            ]
        );
    }

    #[test]
    fn a_restored_operator_judges_the_replayed_batches_as_the_original() {
        // The snapshot after batch 1's marker; batches 2 and 3 of the test above then run
        // on the original and on a restored operator (whose stage starts without a
        // watermark, as after a restart) with the same results.
        let windows = TimeWindows::tumbling(Duration::from_micros(10)).unwrap();
        let micro_batch = mode(ExecutionMode::MicroBatch, OutputMode::Append);
        let mut h = Harness::new(TimeWindowAggregate::new(windows, Count, time_of));
        h.set_emit_mode(micro_batch);
        h.advance_watermark(Timestamp(0));
        h.push((0u8, 1));
        h.push((0u8, 25));
        h.end_epoch();
        let snapshot = h.snapshot().unwrap();
        let mut restored = Harness::restore(
            TimeWindowAggregate::new(windows, Count, time_of),
            snapshot.as_deref(),
        )
        .unwrap();
        restored.set_emit_mode(micro_batch);
        let w = |s: i64| Window {
            start: Timestamp(s),
            end: Timestamp(s + 10),
        };
        for h in [&mut h, &mut restored] {
            h.advance_watermark(Timestamp(20));
            h.push((0u8, 3));
            h.push((0u8, 22));
            h.end_epoch();
            assert_eq!(h.take_output(), vec![(0, w(0), 2)]);
            h.push((0u8, 3));
            h.push((0u8, 33));
            h.end_epoch();
            assert_eq!(h.take_output(), vec![]);
            assert_eq!(h.take_side_output(), vec![3]);
            // [20, 30) and [30, 40) are held.
            assert_eq!(h.operator().stored_accumulators(), 2);
        }
        assert_eq!(restored.counter(LATE_RECORDS), 1);
    }

    #[test]
    fn window_values_match_a_plain_fold_in_slice_order() {
        let mut rng = Rng(7);
        for case in 0..2000 {
            let m = 1 + rng.below(4);
            let n = m * (1 + rng.below(4)) + if rng.below(2) == 0 { 0 } else { rng.below(3) };
            let n = n.max(m);
            let g = Geometry {
                offset: 0,
                length: n,
                g: 1,
                n,
                m,
            };
            let accs: Vec<(i64, Vec<i64>)> = {
                let mut idx = rng.below(20) - 10;
                (0..rng.below(12))
                    .map(|i| {
                        idx += 1 + rng.below(3);
                        (idx, vec![idx * 100 + i])
                    })
                    .collect()
            };
            let entries: Vec<(i64, &Vec<i64>)> = accs.iter().map(|(i, a)| (*i, a)).collect();
            let windows: Vec<i64> = (-40..40)
                .filter(|w: &i64| w.rem_euclid(m) == 0 && rng.below(3) > 0)
                .collect();
            let mut got = Vec::new();
            g.window_values(&Concat, &entries, &windows, |w, v| got.push((w, v)));
            let expected: Vec<(i64, Vec<i64>)> = windows
                .iter()
                .filter_map(|&w| {
                    let v: Vec<i64> = accs
                        .iter()
                        .filter(|(i, _)| w <= *i && *i < w + n)
                        .flat_map(|(_, a)| a.clone())
                        .collect();
                    (!v.is_empty()).then_some((w, v))
                })
                .collect();
            assert_eq!(got, expected, "case {case}: n {n}, m {m}");
        }
    }

    #[test]
    fn tumbling_windows_never_merge() {
        for output in [OutputMode::Append, OutputMode::Update, OutputMode::Complete] {
            for execution in [ExecutionMode::Continuous, ExecutionMode::MicroBatch] {
                let windows = TimeWindows::tumbling(Duration::from_micros(10)).unwrap();
                let mut h = Harness::new(TimeWindowAggregate::new(windows, CountNoMerge, time_of));
                h.set_emit_mode(mode(execution, output));
                for t in [3, 5, 12, 1, 25, 19] {
                    h.push((0u8, t));
                }
                h.end_epoch();
                h.advance_watermark(Timestamp(30));
                h.end_epoch();
                h.end();
                let mut last = std::collections::BTreeMap::new();
                for (_, w, n) in h.take_output() {
                    last.insert(w.start.0, n);
                }
                let expected = [(0, 3), (10, 2), (20, 1)].into_iter().collect();
                assert_eq!(last, expected, "{output:?} {execution:?}");
            }
        }
    }

    #[test]
    fn a_watermark_a_year_ahead_visits_only_the_slices_held() {
        // One window per microsecond: a loop over the empty windows would not end.
        let windows =
            TimeWindows::sliding(Duration::from_micros(3), Duration::from_micros(1)).unwrap();
        let year = 365 * 24 * 3600 * 1_000_000i64;
        for execution in [ExecutionMode::Continuous, ExecutionMode::MicroBatch] {
            for output in [OutputMode::Append, OutputMode::Update] {
                let mut h = Harness::new(TimeWindowAggregate::new(windows, Count, time_of));
                h.set_emit_mode(mode(execution, output));
                h.push((0u8, 0));
                h.push((0u8, year));
                h.end_epoch();
                let _ = h.take_output();
                h.advance_watermark(Timestamp(2 * year));
                h.end_epoch();
                let out = h.take_output();
                let expected = if output == OutputMode::Append { 6 } else { 0 };
                assert_eq!(out.len(), expected);
                assert_eq!(h.operator().stored_slices(), 0);
                h.push((0u8, 2 * year + 5));
                h.end_epoch();
                let updates = if output == OutputMode::Append { 0 } else { 3 };
                assert_eq!(h.take_output().len(), updates);
            }
        }
    }

    #[test]
    fn a_watermark_inside_a_micro_batch_changes_nothing_until_the_marker() {
        let windows =
            TimeWindows::sliding(Duration::from_micros(10), Duration::from_micros(5)).unwrap();
        let mut h = Harness::new(TimeWindowAggregate::new(windows, Count, time_of));
        h.set_emit_mode(mode(ExecutionMode::MicroBatch, OutputMode::Update));
        h.push((0u8, 7)); // [0, 10) and [5, 15)
        h.advance_watermark(Timestamp(10)); // closes [0, 10), at the marker
        assert_eq!(h.take_output(), vec![]);
        h.push((0u8, 8)); // judged by the previous epoch's watermark: both windows
        h.end_epoch();
        let w = |s: i64| Window {
            start: Timestamp(s),
            end: Timestamp(s + 10),
        };
        // Every changed window, the closing one included; then [0, 10) is evicted.
        assert_eq!(h.take_output(), vec![(0, w(0), 2), (0, w(5), 2)]);
        assert_eq!(h.counter(ROWS_DROPPED_BY_WATERMARK), 0);
        h.push((0u8, 9)); // now [0, 10) is closed
        h.end_epoch();
        assert_eq!(h.take_output(), vec![(0, w(5), 3)]);
        assert_eq!(h.counter(ROWS_DROPPED_BY_WATERMARK), 1);
        h.end_epoch();
        assert_eq!(h.take_output(), vec![]);
    }

    #[test]
    fn a_window_closed_in_a_continuous_epoch_stays_closed_after_a_switch() {
        // A mode switch before the marker (not what the engine does): the micro-batch's
        // late bound would be older than the windows already emitted; they stay closed.
        let windows = TimeWindows::tumbling(Duration::from_micros(10)).unwrap();
        let mut h = Harness::new(TimeWindowAggregate::new(windows, Count, time_of));
        h.set_emit_mode(mode(ExecutionMode::Continuous, OutputMode::Append));
        h.push((0u8, 1));
        h.advance_watermark(Timestamp(10));
        assert_eq!(h.take_output().len(), 1);
        h.set_emit_mode(mode(ExecutionMode::MicroBatch, OutputMode::Append));
        h.push((0u8, 2));
        h.advance_watermark(Timestamp(30));
        h.end_epoch();
        assert_eq!(h.take_output(), vec![]);
        assert_eq!(h.take_side_output(), vec![2]);
    }

    #[test]
    fn append_emits_nothing_at_the_end_without_a_watermark() {
        let windows = TimeWindows::tumbling(Duration::from_micros(10)).unwrap();
        let mut h = Harness::new(TimeWindowAggregate::new(windows, Count, time_of));
        h.set_emit_mode(mode(ExecutionMode::Continuous, OutputMode::Append));
        h.push((0u8, 1));
        h.advance_watermark(Timestamp(5));
        h.end_epoch();
        h.end();
        assert_eq!(h.take_output(), vec![]);
        assert_eq!(h.operator().stored_slices(), 1);
    }

    #[test]
    fn offsets_shift_slices_and_windows() {
        // Spark's window(t, "7 us", "3 us", "1 us"): starts at 1 + 3k; slices of 1 µs.
        let windows = TimeWindows::sliding(Duration::from_micros(7), Duration::from_micros(3))
            .unwrap()
            .with_offset(Duration::from_micros(1))
            .unwrap();
        let mut h = Harness::new(TimeWindowAggregate::new(windows, Concat, time_of));
        h.set_emit_mode(mode(ExecutionMode::Continuous, OutputMode::Append));
        for t in [1, 7, 8, -2, 4] {
            h.push((0u8, t));
        }
        h.advance_watermark(Timestamp(i64::MAX));
        let got: Vec<(i64, Vec<i64>)> = h
            .take_output()
            .into_iter()
            .map(|(_, w, mut v)| {
                assert_eq!(w.end.0 - w.start.0, 7);
                v.sort();
                (w.start.0, v)
            })
            .collect();
        let expected = vec![
            (-8, vec![-2]),
            (-5, vec![-2, 1]),
            (-2, vec![-2, 1, 4]),
            (1, vec![1, 4, 7]),
            (4, vec![4, 7, 8]),
            (7, vec![7, 8]),
        ];
        assert_eq!(got, expected);
    }
}

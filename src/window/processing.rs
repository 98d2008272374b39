//! Processing-time windows: Spark Streaming's (DStream) window operations — `window`,
//! `countByWindow`, `reduceByKeyAndWindow` (plain and with an inverse function) and
//! `countByValueAndWindow` — as one operator, [`ProcessingWindows`], over `(key, record)`
//! pairs. The builder methods are
//! [`Stream::window_by_processing_time`](crate::Stream::window_by_processing_time),
//! [`Stream::count_by_window`](crate::Stream::count_by_window),
//! [`Stream::count_by_value_and_window`](crate::Stream::count_by_value_and_window),
//! [`KeyedStream::reduce_by_key_and_window`](crate::KeyedStream::reduce_by_key_and_window)
//! and
//! [`KeyedStream::reduce_by_key_and_window_inv`](crate::KeyedStream::reduce_by_key_and_window_inv).
//!
//! # Windows
//!
//! A window of `length` ends every `slide` and holds `[end − length, end)` of processing
//! time; ends are multiples of the slide from the Unix epoch (as event-time
//! [`TimeWindows`] are aligned). Spark Streaming aligns them to the
//! time its `StreamingContext` started instead; rivulet has no such instant that
//! survives a restart. Each window is emitted once, as soon as it is complete, and only
//! if it holds records: one row per key present in it (`(key, window, value)`), or one
//! row for the whole stream (`(window, value)`). Rows are final when emitted, whatever
//! the query's [`OutputMode`](crate::OutputMode) (which this operator ignores: Spark
//! Streaming has none).
//!
//! # State: slices, never a copy per window
//!
//! Processing time is cut into slices of `gcd(length, slide)`; each window is a run of
//! `length / gcd` whole slices. A slice keeps one accumulator per key
//! ([`SliceFold`]): the reduced value, a count, or (for `window_by_processing_time`, which
//! by definition hands out the window's records) the records themselves, each held once
//! and cloned only when a window holding it is emitted. Assembling a window merges its
//! slices; the incremental form ([`SliceFold::invertible`], Spark's `reduceByKeyAndWindow`
//! with `invReduceFunc`) keeps one running value per key instead, adds the slices that
//! enter and subtracts those that leave, and counts in how many of the window's slices
//! each key appears, so a key whose records all left is dropped (what Spark needs a
//! `filterFunc` for) and the rows equal the plain form's. Subtraction must undo the
//! reduction exactly (integers, not floating point) for that to hold. Slices no later
//! window needs are dropped.
//!
//! # Continuous epochs: arrival time
//!
//! A record belongs to the slice holding its arrival time, the query clock
//! ([`Context::processing_time`], read once per record). A processing-time timer at the
//! end of the next window that holds records emits it when the clock passes its end,
//! whether or not records arrive then.
//!
//! # Micro-batch epochs: batch time
//!
//! Spark Streaming's model: a batch is the unit of time. The window `length` and `slide`
//! must be multiples of the trigger interval `I` (the query refuses to start otherwise,
//! with the message Spark gives); a window covers exactly `length / I` batch slots and is
//! emitted at the end of the batch of its last slot, so the rows depend on batch
//! boundaries only, never on when within a batch a record arrived. A batch's slot comes
//! from its *batch time* ([`Context::processing_time`] in a micro-batch: the clock's
//! reading when the batch was planned, recorded in the offset log), read at its end
//! (the marker): with `h` the batch time rounded down to a multiple of `I`, the batch
//! fills the slot `[h − I, h)` (it holds what arrived during the interval before it
//! started, as Spark's batch of time `h` does) and then every window ending at or
//! before `h` is emitted.
//!
//! * **Skipped batches.** rivulet runs no batch when no source has data, so slots are
//!   counted by batch time, not batch number: a skipped batch is an empty slot and the
//!   window still spans `length` of processing time. The operator keeps a
//!   processing-time timer at the end of the next window holding records; a due timer
//!   makes the engine run a batch without data, whose end emits the window, so windows
//!   come out on time even when the input went quiet (Spark runs every batch anyway).
//! * **Batches off their slot.** A batch that overran its interval, or one that ends in
//!   the slot of the previous batch, fills the slot its end falls in; a slot whose
//!   windows were already emitted is never filled again: such a batch moves to the next
//!   open slot. No record is ever counted in only some of the windows of its slot, or
//!   twice in one window.
//! * **Trigger changes.** The operator reads the interval when the query starts. After
//!   [`Query::set_trigger`](crate::Query::set_trigger) it goes on counting slots of that
//!   interval (of `gcd(length, slide)` if the query started continuous, or a restored
//!   micro-batch was replayed under a continuous trigger): batches of another interval
//!   fill the slot their end falls in, and a window whose last slot no batch ends in is
//!   emitted by the timer's batch, at most one batch late. Switching to continuous
//!   epochs puts records in slices by arrival time from the next epoch on; switching
//!   back, by batch again. Windows already emitted never change.
//! * **Replays.** A batch replayed after a restore runs at the batch time the offset log
//!   recorded for it, so it fills the slot and emits the windows the original run did
//!   (a log of format 4 or older recorded none: the replay then reads the clock anew).
//!
//! # End of stream and checkpoints
//!
//! At end of stream the windows already due (their end passed) are emitted; later ones
//! are not, as in Spark Streaming, whose stop emits no window before its time. They stay
//! in the state, which checkpoints (slices, pending batch, running values and the
//! pending timer, which the runtime saves), so a restarted query carries them on.

use super::{TimeWindows, Window, WindowSpecError};
use crate::checkpoint::codec;
use crate::error::BoxError;
use crate::event::{Epoch, Timestamp};
use crate::operator::{Context, Operator, Timer};
use crate::trigger::{EmitMode, ExecutionMode, Trigger};
use rustc_hash::FxHashMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fmt;
use std::hash::Hash;
use std::time::Duration;

/// What a slice of a processing-time window keeps per key, and how slices combine.
///
/// A slice folds its records into one accumulator per key (`first`, then `add`); a
/// window merges the accumulators of its slices (`merge`). An invertible fold can also
/// take a slice's accumulator back out of a window's (`subtract`), which lets the
/// operator keep one running value per key and update it incrementally.
///
/// ```
/// use rivulet::window::processing::{Count, SliceFold};
///
/// let mut count = Count;
/// let mut slice = SliceFold::<&str>::first(&mut count, "a");
/// SliceFold::<&str>::add(&mut count, &mut slice, "b");
/// let mut window = 5;
/// SliceFold::<&str>::merge(&mut count, &mut window, slice);
/// assert_eq!(window, 7);
/// SliceFold::<&str>::subtract(&mut count, &mut window, 2);
/// assert_eq!(window, 5);
/// ```
pub trait SliceFold<T>: Clone + Send + 'static {
    /// The accumulator of one key over some records. Saved by checkpoints.
    type Acc: Clone + Send + Serialize + DeserializeOwned + 'static;

    /// The accumulator of one record.
    fn first(&mut self, record: T) -> Self::Acc;

    /// Adds one record.
    fn add(&mut self, acc: &mut Self::Acc, record: T);

    /// Adds the records `other` accumulated (all of them later than `acc`'s).
    fn merge(&mut self, acc: &mut Self::Acc, other: Self::Acc);

    /// Whether [`subtract`](Self::subtract) is implemented: the operator then keeps one
    /// running value per key instead of merging every slice of every window.
    fn invertible(&self) -> bool {
        false
    }

    /// Takes the records `other` accumulated back out of `acc` (Spark's
    /// `invReduceFunc`): `merge` then `subtract` of the same accumulator must leave `acc`
    /// as it was. Called only when [`invertible`](Self::invertible) says so.
    fn subtract(&mut self, acc: &mut Self::Acc, other: Self::Acc) {
        let _ = (acc, other);
        unreachable!("subtract is only called on an invertible fold")
    }
}

/// Reduces each key's records with `reduce(&mut acc, record)` (Spark's `reduceFunc`).
#[derive(Debug, Clone, Copy)]
pub struct Reduce<R>(pub R);

impl<T, R> SliceFold<T> for Reduce<R>
where
    T: Clone + Send + Serialize + DeserializeOwned + 'static,
    R: FnMut(&mut T, T) + Clone + Send + 'static,
{
    type Acc = T;

    #[inline]
    fn first(&mut self, record: T) -> T {
        record
    }

    #[inline]
    fn add(&mut self, acc: &mut T, record: T) {
        (self.0)(acc, record)
    }

    #[inline]
    fn merge(&mut self, acc: &mut T, other: T) {
        (self.0)(acc, other)
    }
}

/// Reduces with `reduce` and takes leaving values back out with `inverse(&mut acc,
/// leaving)` (Spark's `reduceByKeyAndWindow(reduceFunc, invReduceFunc, …)`).
#[derive(Debug, Clone, Copy)]
pub struct ReduceInv<R, I> {
    /// Adds a value to the accumulator.
    pub reduce: R,
    /// Takes a value, earlier added, back out of the accumulator.
    pub inverse: I,
}

impl<T, R, I> SliceFold<T> for ReduceInv<R, I>
where
    T: Clone + Send + Serialize + DeserializeOwned + 'static,
    R: FnMut(&mut T, T) + Clone + Send + 'static,
    I: FnMut(&mut T, T) + Clone + Send + 'static,
{
    type Acc = T;

    #[inline]
    fn first(&mut self, record: T) -> T {
        record
    }

    #[inline]
    fn add(&mut self, acc: &mut T, record: T) {
        (self.reduce)(acc, record)
    }

    #[inline]
    fn merge(&mut self, acc: &mut T, other: T) {
        (self.reduce)(acc, other)
    }

    fn invertible(&self) -> bool {
        true
    }

    #[inline]
    fn subtract(&mut self, acc: &mut T, other: T) {
        (self.inverse)(acc, other)
    }
}

/// Counts each key's records (incrementally: counts subtract exactly).
#[derive(Debug, Clone, Copy, Default)]
pub struct Count;

impl<T> SliceFold<T> for Count {
    type Acc = u64;

    #[inline]
    fn first(&mut self, _record: T) -> u64 {
        1
    }

    #[inline]
    fn add(&mut self, acc: &mut u64, _record: T) {
        *acc += 1;
    }

    #[inline]
    fn merge(&mut self, acc: &mut u64, other: u64) {
        *acc += other;
    }

    fn invertible(&self) -> bool {
        true
    }

    #[inline]
    fn subtract(&mut self, acc: &mut u64, other: u64) {
        *acc -= other;
    }
}

/// Keeps each key's records, in arrival order (Spark's `window`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Collect;

impl<T> SliceFold<T> for Collect
where
    T: Clone + Send + Serialize + DeserializeOwned + 'static,
{
    type Acc = Vec<T>;

    #[inline]
    fn first(&mut self, record: T) -> Vec<T> {
        vec![record]
    }

    #[inline]
    fn add(&mut self, acc: &mut Vec<T>, record: T) {
        acc.push(record);
    }

    #[inline]
    fn merge(&mut self, acc: &mut Vec<T>, mut other: Vec<T>) {
        acc.append(&mut other);
    }
}

/// How a window's result for one key becomes an output row.
pub trait RowShape<K, A>: Clone + Send + 'static {
    /// The output row.
    type Out: Send + 'static;

    /// The row of `key`'s `value` in `window`.
    fn row(&self, key: K, window: Window, value: A) -> Self::Out;
}

/// Rows `(key, window, value)`: one per key present in the window.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyedRows;

impl<K: Send + 'static, A: Send + 'static> RowShape<K, A> for KeyedRows {
    type Out = (K, Window, A);

    #[inline]
    fn row(&self, key: K, window: Window, value: A) -> (K, Window, A) {
        (key, window, value)
    }
}

/// Rows `(window, value)` of a window over the whole stream (the key is `()`).
#[derive(Debug, Clone, Copy, Default)]
pub struct WindowRows;

impl<A: Send + 'static> RowShape<(), A> for WindowRows {
    type Out = (Window, A);

    #[inline]
    fn row(&self, _key: (), window: Window, value: A) -> (Window, A) {
        (window, value)
    }
}

/// What the operator checkpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Hash + Eq, A: Serialize",
    deserialize = "K: Deserialize<'de> + Hash + Eq, A: Deserialize<'de>"
))]
struct State<K, A> {
    /// Slices by start, oldest first: `(start, accumulator per key)`, none empty.
    slices: VecDeque<(i64, FxHashMap<K, A>)>,
    /// The records of the micro-batch in progress (its slot is known at its end).
    pending: FxHashMap<K, A>,
    /// Incremental form: per key, the value over the window ending at `done` and in how
    /// many of its slices the key appears.
    running: FxHashMap<K, (A, u32)>,
    /// Every window ending at or before this has been emitted (or was empty); no record
    /// joins a slice before it. `None` until the first record.
    done: Option<i64>,
    /// The processing-time timer set (at the end of the next window holding records).
    timer: Option<i64>,
}

impl<K, A> Default for State<K, A> {
    fn default() -> Self {
        State {
            slices: VecDeque::new(),
            pending: FxHashMap::default(),
            running: FxHashMap::default(),
            done: None,
            timer: None,
        }
    }
}

/// Spark Streaming's window operations over `(key, record)` pairs, by processing time
/// (see the [module docs](self) for the semantics in both trigger modes).
///
/// `F` says what a slice keeps per key ([`Reduce`], [`ReduceInv`], [`Count`],
/// [`Collect`]), `S` how rows look ([`KeyedRows`]: `(key, window, value)`,
/// [`WindowRows`]: `(window, value)`). `A` is `F`'s accumulator.
///
/// ```
/// use rivulet::operator::Harness;
/// use rivulet::window::processing::ProcessingWindows;
/// use rivulet::window::Window;
/// use rivulet::Timestamp;
/// use std::time::Duration;
///
/// let s = |secs: i64| Timestamp(secs * 1_000_000);
/// // Word counts over the last 30 s, every 10 s (continuous epochs: arrival time).
/// let op = ProcessingWindows::reduce(
///     |a: &mut u64, b| *a += b,
///     Duration::from_secs(30),
///     Duration::from_secs(10),
/// )?;
/// let mut harness = Harness::new(op);
/// harness.set_processing_time(s(5));
/// harness.push(("spark".to_string(), 1));
/// harness.set_processing_time(s(12)); // the window [-20 s, 10 s) ended at 10 s
/// let first = Window { start: s(-20), end: s(10) };
/// assert_eq!(harness.take_output(), vec![("spark".to_string(), first, 1)]);
/// harness.push(("spark".to_string(), 1));
/// harness.set_processing_time(s(20)); // the window [-10 s, 20 s) ends
/// let second = Window { start: s(-10), end: s(20) };
/// assert_eq!(harness.take_output(), vec![("spark".to_string(), second, 2)]);
/// # Ok::<(), rivulet::window::WindowSpecError>(())
/// ```
#[derive(Clone)]
pub struct ProcessingWindows<K, A, F, S = KeyedRows> {
    fold: F,
    shape: S,
    /// Window length, slide and slice (their gcd), in µs.
    length: i64,
    slide: i64,
    slice: i64,
    /// The micro-batch interval in µs, if the query started with one.
    interval: Option<i64>,
    mode: ExecutionMode,
    state: State<K, A>,
    /// Reused to assemble a window (plain form).
    scratch: FxHashMap<K, A>,
}

impl<K, A, F, S> fmt::Debug for ProcessingWindows<K, A, F, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessingWindows")
            .field("length", &self.length)
            .field("slide", &self.slide)
            .field("interval", &self.interval)
            .field("slices", &self.state.slices.len())
            .field("done", &self.state.done)
            .finish_non_exhaustive()
    }
}

impl<K, A, F> ProcessingWindows<K, A, F, KeyedRows> {
    /// Windows of `length` ending every `slide`, each slice folded with `fold`, emitting
    /// `(key, window, value)` rows.
    ///
    /// # Errors
    ///
    /// A zero length or slide, or a slide longer than the length (a record would belong
    /// to no window; Spark Streaming allows it, rivulet refuses it as Spark's event-time
    /// windows do).
    pub fn new(fold: F, length: Duration, slide: Duration) -> Result<Self, WindowSpecError> {
        let spec = TimeWindows::sliding(length, slide)?;
        let (length, slide) = (spec.length_micros(), spec.slide_micros());
        Ok(ProcessingWindows {
            fold,
            shape: KeyedRows,
            length,
            slide,
            slice: gcd(length, slide),
            interval: None,
            mode: ExecutionMode::default(),
            state: State::default(),
            scratch: FxHashMap::default(),
        })
    }
}

impl<K, T, R> ProcessingWindows<K, T, Reduce<R>, KeyedRows> {
    /// Spark's `reduceByKeyAndWindow(reduceFunc, length, slide)`: each window's records
    /// of a key reduced with `reduce(&mut acc, record)`.
    ///
    /// # Errors
    ///
    /// As [`new`](ProcessingWindows::new).
    pub fn reduce(reduce: R, length: Duration, slide: Duration) -> Result<Self, WindowSpecError> {
        Self::new(Reduce(reduce), length, slide)
    }
}

impl<K, T, R, I> ProcessingWindows<K, T, ReduceInv<R, I>, KeyedRows> {
    /// Spark's `reduceByKeyAndWindow(reduceFunc, invReduceFunc, length, slide)`: the same
    /// rows as [`reduce`](ProcessingWindows::reduce), computed incrementally.
    ///
    /// # Errors
    ///
    /// As [`new`](ProcessingWindows::new).
    pub fn reduce_inv(
        reduce: R,
        inverse: I,
        length: Duration,
        slide: Duration,
    ) -> Result<Self, WindowSpecError> {
        Self::new(ReduceInv { reduce, inverse }, length, slide)
    }
}

impl<K> ProcessingWindows<K, u64, Count, KeyedRows> {
    /// The number of each key's records in each window (Spark's `countByValueAndWindow`
    /// when the key is the record).
    ///
    /// # Errors
    ///
    /// As [`new`](ProcessingWindows::new).
    pub fn count(length: Duration, slide: Duration) -> Result<Self, WindowSpecError> {
        Self::new(Count, length, slide)
    }
}

impl<K, T> ProcessingWindows<K, Vec<T>, Collect, KeyedRows> {
    /// Each window's records of a key, in arrival order (Spark's `window`).
    ///
    /// # Errors
    ///
    /// As [`new`](ProcessingWindows::new).
    pub fn collect(length: Duration, slide: Duration) -> Result<Self, WindowSpecError> {
        Self::new(Collect, length, slide)
    }
}

impl<A, F> ProcessingWindows<(), A, F, KeyedRows> {
    /// Emits `(window, value)` rows instead of `((), window, value)`: a window over the
    /// whole stream.
    pub fn without_key(self) -> ProcessingWindows<(), A, F, WindowRows> {
        ProcessingWindows {
            fold: self.fold,
            shape: WindowRows,
            length: self.length,
            slide: self.slide,
            slice: self.slice,
            interval: self.interval,
            mode: self.mode,
            state: self.state,
            scratch: self.scratch,
        }
    }
}

impl<K, A, F, S> ProcessingWindows<K, A, F, S> {
    /// Counts micro-batches of `interval` (the query's trigger interval; the builder
    /// sets it when the query starts).
    ///
    /// # Errors
    ///
    /// A zero interval, or a window length or slide that is not a multiple of it (Spark:
    /// "The window duration of windowed DStream must be a multiple of the slide duration
    /// of parent DStream").
    pub fn with_batch_interval(mut self, interval: Duration) -> Result<Self, WindowSpecError> {
        self.set_batch_interval(interval)?;
        Ok(self)
    }

    fn set_batch_interval(&mut self, interval: Duration) -> Result<(), WindowSpecError> {
        let micros = i64::try_from(interval.as_micros()).unwrap_or(i64::MAX);
        let (length, slide) = (self.length_duration(), self.slide_duration());
        if micros <= 0 {
            return Err(WindowSpecError(format!(
                "a processing-time window (length {length:?}, slide {slide:?}) in \
                 micro-batches needs a positive trigger interval, not {interval:?}"
            )));
        }
        let mut wrong = Vec::new();
        if self.length % micros != 0 {
            wrong.push(format!("the window length {length:?}"));
        }
        if self.slide % micros != 0 {
            wrong.push(format!("the slide {slide:?}"));
        }
        if !wrong.is_empty() {
            return Err(WindowSpecError(format!(
                "{} of a processing-time window (length {length:?}, slide {slide:?}) must \
                 be a multiple of the micro-batch interval {interval:?} (Spark: \"The \
                 window duration of windowed DStream must be a multiple of the slide \
                 duration of parent DStream\")",
                wrong.join(" and ")
            )));
        }
        self.interval = Some(micros);
        Ok(())
    }

    /// Fits the operator to the trigger the query starts with (`None`: no epochs).
    pub(crate) fn configure(&mut self, trigger: Option<Trigger>) -> Result<(), WindowSpecError> {
        match trigger {
            Some(Trigger::MicroBatch { interval }) => self.set_batch_interval(interval),
            Some(Trigger::AvailableNow) => Err(WindowSpecError(format!(
                "a processing-time window (length {:?}, slide {:?}) cannot run under an \
                 available-now trigger, whose batches run back to back with no interval \
                 to count time in; use a micro-batch or continuous trigger",
                self.length_duration(),
                self.slide_duration()
            ))),
            Some(Trigger::Continuous { .. }) | None => {
                self.interval = None;
                Ok(())
            }
        }
    }

    fn length_duration(&self) -> Duration {
        Duration::from_micros(self.length as u64)
    }

    fn slide_duration(&self) -> Duration {
        Duration::from_micros(self.slide as u64)
    }

    /// The window ending at `end`.
    fn window(&self, end: i64) -> Window {
        Window {
            start: Timestamp(end - self.length),
            end: Timestamp(end),
        }
    }

    /// The end of the next window (after `done`) that holds records.
    fn next_end(&self) -> Option<i64> {
        let done = self.state.done?;
        let next_start = done + self.slide - self.length;
        let (first, _) = self
            .state
            .slices
            .iter()
            .find(|(start, _)| *start >= next_start)?;
        Some((first.div_euclid(self.slide) * self.slide + self.slide).max(done + self.slide))
    }

    /// Keeps one processing-time timer, at the end of the next window holding records.
    fn set_timer<O, Side>(&mut self, ctx: &mut impl Context<O, (), Side>) {
        let want = self.next_end();
        if want != self.state.timer {
            if let Some(old) = self.state.timer {
                ctx.delete_processing_time_timer(&(), Timestamp(old));
            }
            if let Some(new) = want {
                ctx.register_processing_time_timer((), Timestamp(new));
            }
            self.state.timer = want;
        }
    }
}

impl<K: Hash + Eq, A> State<K, A> {
    /// The slice starting at `start` (not before `done`), created if missing; and
    /// whether it was. `slide` aligns `done` at the first record.
    fn slice_mut(&mut self, start: i64, slide: i64) -> (&mut FxHashMap<K, A>, bool) {
        let start = match self.done {
            Some(done) => start.max(done),
            None => {
                self.done = Some(start.div_euclid(slide) * slide);
                start
            }
        };
        let slices = &mut self.slices;
        // Usually the newest slice; the clock rarely steps back.
        let at = slices
            .iter()
            .rposition(|(s, _)| *s <= start)
            .map_or(0, |i| i + 1);
        if at > 0 && slices[at - 1].0 == start {
            return (&mut slices[at - 1].1, false);
        }
        slices.insert(at, (start, FxHashMap::default()));
        (&mut slices[at].1, true)
    }
}

/// `gcd(a, b)` for positive `a`, `b`.
fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl<K, A, F, S> ProcessingWindows<K, A, F, S>
where
    K: Hash + Eq + Clone,
    A: Clone,
{
    /// Adds `record` to `key`'s accumulator in `map`.
    #[inline]
    fn fold_into<T>(fold: &mut F, map: &mut FxHashMap<K, A>, key: K, record: T)
    where
        F: SliceFold<T, Acc = A>,
    {
        match map.get_mut(&key) {
            Some(acc) => fold.add(acc, record),
            None => {
                let acc = fold.first(record);
                map.insert(key, acc);
            }
        }
    }

    /// Puts the pending batch into the slot before `horizon` (see the module docs).
    fn close_batch<T>(&mut self, horizon: i64, interval: i64)
    where
        F: SliceFold<T, Acc = A>,
    {
        if self.state.pending.is_empty() {
            return;
        }
        let start = (horizon - interval).div_euclid(self.slice) * self.slice;
        let pending = std::mem::take(&mut self.state.pending);
        let (slice, created) = self.state.slice_mut(start, self.slide);
        if created {
            *slice = pending;
        } else {
            for (key, acc) in pending {
                match slice.get_mut(&key) {
                    Some(existing) => self.fold.merge(existing, acc),
                    None => {
                        slice.insert(key, acc);
                    }
                }
            }
        }
    }

    /// Emits every window holding records that ends at or before `horizon`, in order.
    fn emit_until<T, C>(&mut self, horizon: i64, ctx: &mut C)
    where
        F: SliceFold<T, Acc = A>,
        S: RowShape<K, A>,
        C: Context<S::Out>,
    {
        let incremental = self.fold.invertible();
        while let Some(end) = self.next_end().filter(|end| *end <= horizon) {
            if incremental {
                self.advance_running::<T>(end);
                let window = self.window(end);
                for (key, (value, _)) in &self.state.running {
                    ctx.push(self.shape.row(key.clone(), window, value.clone()));
                }
            } else {
                self.emit_merged::<T, C>(end, ctx);
                self.state.done = Some(end);
            }
            self.drop_slices::<T>();
        }
        // The windows up to the horizon hold no records: they are done too.
        let Some(done) = self.state.done else {
            return;
        };
        let aligned = horizon.div_euclid(self.slide) * self.slide;
        if aligned > done {
            if incremental {
                self.advance_running::<T>(aligned);
            } else {
                self.state.done = Some(aligned);
            }
            self.drop_slices::<T>();
        }
    }

    /// Plain form: merges the slices of the window ending at `end` and emits it.
    fn emit_merged<T, C>(&mut self, end: i64, ctx: &mut C)
    where
        F: SliceFold<T, Acc = A>,
        S: RowShape<K, A>,
        C: Context<S::Out>,
    {
        let start = end - self.length;
        let mut scratch = std::mem::take(&mut self.scratch);
        for (_, slice) in self
            .state
            .slices
            .iter()
            .filter(|(s, _)| (start..end).contains(s))
        {
            for (key, acc) in slice {
                match scratch.get_mut(key) {
                    Some(window_acc) => self.fold.merge(window_acc, acc.clone()),
                    None => {
                        scratch.insert(key.clone(), acc.clone());
                    }
                }
            }
        }
        let window = self.window(end);
        for (key, value) in scratch.drain() {
            ctx.push(self.shape.row(key, window, value));
        }
        self.scratch = scratch;
    }

    /// Incremental form: moves the running values from the window ending at `done` to
    /// the one ending at `end`, subtracting the slices that leave and adding those that
    /// enter; a key left in none of the window's slices is dropped.
    fn advance_running<T>(&mut self, end: i64)
    where
        F: SliceFold<T, Acc = A>,
    {
        let done = self.state.done.expect("advanced after the first record");
        let start = end - self.length;
        let state = &mut self.state;
        if start >= done {
            // The windows do not overlap: everything leaves.
            state.running.clear();
            while state.slices.front().is_some_and(|(s, _)| *s < start) {
                state.slices.pop_front();
            }
        } else {
            while state.slices.front().is_some_and(|(s, _)| *s < start) {
                let (_, leaving) = state.slices.pop_front().expect("checked");
                for (key, acc) in leaving {
                    let Some((value, present)) = state.running.get_mut(&key) else {
                        debug_assert!(false, "a leaving key was not in the window");
                        continue;
                    };
                    *present -= 1;
                    if *present == 0 {
                        state.running.remove(&key);
                    } else {
                        self.fold.subtract(value, acc);
                    }
                }
            }
        }
        let entering = start.max(done);
        for (_, slice) in state
            .slices
            .iter()
            .filter(|(s, _)| (entering..end).contains(s))
        {
            for (key, acc) in slice {
                match state.running.get_mut(key) {
                    Some((value, present)) => {
                        self.fold.merge(value, acc.clone());
                        *present += 1;
                    }
                    None => {
                        state.running.insert(key.clone(), (acc.clone(), 1));
                    }
                }
            }
        }
        state.done = Some(end);
    }

    /// Drops the slices no later window holds (the incremental form keeps those of the
    /// window ending at `done`, to subtract them later).
    fn drop_slices<T>(&mut self)
    where
        F: SliceFold<T, Acc = A>,
    {
        let Some(done) = self.state.done else {
            return;
        };
        let keep_from = if self.fold.invertible() {
            done - self.length
        } else {
            done + self.slide - self.length
        };
        while self
            .state
            .slices
            .front()
            .is_some_and(|(s, _)| *s < keep_from)
        {
            self.state.slices.pop_front();
        }
    }

    /// A batch ends at `now` (a marker, or the end of the stream): its records fill the
    /// slot before the horizon and, in micro-batch epochs, the windows up to the horizon
    /// are emitted; in continuous epochs, with `due`, the windows up to `now` (their
    /// timer is due but has not fired).
    fn end_batch<T, C>(&mut self, now: i64, due: bool, ctx: &mut C)
    where
        F: SliceFold<T, Acc = A>,
        S: RowShape<K, A>,
        C: Context<S::Out>,
    {
        let interval = self.interval.unwrap_or(self.slice);
        let horizon = now.div_euclid(interval) * interval;
        self.close_batch::<T>(horizon, interval);
        match self.mode {
            ExecutionMode::MicroBatch => self.emit_until::<T, C>(horizon, ctx),
            ExecutionMode::Continuous if due => self.emit_until::<T, C>(now, ctx),
            ExecutionMode::Continuous => {}
        }
        self.set_timer(ctx);
    }
}

impl<K, T, A, F, S> Operator<(K, T)> for ProcessingWindows<K, A, F, S>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    T: Send + 'static,
    A: Clone + Send + Serialize + DeserializeOwned + 'static,
    F: SliceFold<T, Acc = A>,
    S: RowShape<K, A>,
{
    type Out = S::Out;
    type Key = ();
    type Side = ();

    #[inline]
    fn on_record<C: Context<S::Out>>(&mut self, (key, record): (K, T), ctx: &mut C) {
        if self.mode == ExecutionMode::MicroBatch {
            Self::fold_into(&mut self.fold, &mut self.state.pending, key, record);
            return;
        }
        let now = ctx.processing_time().0;
        let start = now.div_euclid(self.slice) * self.slice;
        let (slice, created) = self.state.slice_mut(start, self.slide);
        Self::fold_into(&mut self.fold, slice, key, record);
        if created {
            self.set_timer(ctx);
        }
    }

    fn on_timer<C: Context<S::Out>>(&mut self, timer: Timer<()>, ctx: &mut C) {
        if self.state.timer == Some(timer.time.0) {
            self.state.timer = None;
        }
        // In a micro-batch the batch's end follows at once and emits (the timer only
        // made the engine run that batch).
        if self.mode == ExecutionMode::Continuous {
            let now = ctx.processing_time().0;
            self.emit_until::<T, C>(now, ctx);
            self.set_timer(ctx);
        }
    }

    fn on_marker<C: Context<S::Out>>(&mut self, _epoch: Epoch, ctx: &mut C) {
        let now = ctx.processing_time().0;
        self.end_batch::<T, C>(now, false, ctx);
    }

    fn on_end<C: Context<S::Out>>(&mut self, ctx: &mut C) {
        let now = ctx.processing_time().0;
        self.end_batch::<T, C>(now, true, ctx);
    }

    fn set_emit_mode(&mut self, mode: EmitMode) {
        self.mode = mode.execution;
    }

    fn state_metrics(&self) -> Option<crate::metrics::StateMetrics> {
        use crate::metrics::StateMetrics;
        let state = &self.state;
        let rows = state.slices.iter().map(|(_, map)| map.len()).sum::<usize>()
            + state.pending.len()
            + state.running.len();
        let memory = state
            .slices
            .iter()
            .map(|(_, map)| StateMetrics::table_bytes::<K, A>(map.capacity()))
            .sum::<u64>()
            + StateMetrics::table_bytes::<K, A>(state.pending.capacity())
            + StateMetrics::table_bytes::<K, (A, u32)>(state.running.capacity());
        Some(
            StateMetrics {
                rows_total: rows as u64,
                memory_used_bytes: memory,
                ..StateMetrics::default()
            }
            .with_custom("slices", state.slices.len() as u64),
        )
    }

    fn snapshot(&self) -> Result<Option<Vec<u8>>, BoxError> {
        Ok(Some(codec::encode(&self.state)?))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), BoxError> {
        self.state = codec::decode(state)?;
        Ok(())
    }
}

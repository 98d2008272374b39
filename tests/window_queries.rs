//! Event-time windows through real queries (source → watermark generator → key_by →
//! window aggregate → memory sink, late records to a side stream) against a plain
//! sequential reference.
//!
//! The inputs are seeded random streams, out of order, with duplicates, times exactly on
//! window boundaries and long gaps, over tumbling and sliding windows (with an offset).
//! What a window operator decides depends on the watermark it has when each record
//! arrives, which in continuous epochs depends on thread timing; so the query itself
//! reports it: a pass-through *tag* on the window operator's thread records, for every
//! record, the epoch, the epoch's execution mode and the watermark, and every watermark
//! and marker, in the order the window operator sees them:
//!
//! * with one instance everywhere, the tag is an operator chained right before `key_by`
//!   and the window (same thread, same events in the same order);
//! * with several source instances and two window instances, the tag wraps the real
//!   window operator ([`TaggedWindows`], a [`WindowSpec`] delegating every hook to the
//!   operator [`TimeWindows`] builds), so each window instance logs what it sees.
//!
//! From that log the reference decides, per (record, window) pair, whether it is late:
//!
//! * continuous epoch: `window.end <= the watermark when the record arrives`;
//! * micro-batch epoch (Spark 3.4+): `window.end <= the watermark the previous epoch ended
//!   with` (the previous batch's watermark), while the batch's own watermark closes windows
//!   at its end.
//!
//! It then says what each output mode owes: append — every window the final watermark
//! closed, once, with the count of its non-late pairs, nothing else; update — the last
//! value of every window is that count; complete — the count over every record, nothing
//! dropped. The late side output must be exactly the records all of whose pairs were
//! late (as a multiset), and the operator's `late_records` / `rows_dropped_by_watermark`
//! counters in `progress()` must match.
//!
//! Modes: continuous without epochs, continuous epochs, micro-batches (`max_batch_records`
//! forcing many), and trigger switches in the middle of a push source's input. With the
//! real, unwrapped window operator behind an exchange, the test checks what needs no
//! per-record watermark: exact counts in micro-batch mode (batches are global, so the
//! epochs tagged at the sources decide), and for tumbling windows in continuous mode that
//! every record is counted once or set aside as late. Finally Spark's guide example
//! ("Handling Late Data and Watermarking") runs batch by batch in update and append mode.

mod common;

use common::{finish_ok, sorted, wait_until, Rng};
use rivulet::aggregate::Aggregate;
use rivulet::error::BoxError;
use rivulet::operator::{partition_of, Context, Operator, Timer};
use rivulet::sink::MemoryTable;
use rivulet::source::{Source, SourceContext, SourcePoll, WakeHandle};
use rivulet::time::WatermarkConfig;
use rivulet::trigger::EmitMode;
use rivulet::window::{TimeWindows, Window, WindowSpec, LATE_RECORDS, ROWS_DROPPED_BY_WATERMARK};
use rivulet::{Epoch, ExecutionMode, OutputMode, Query, QueryProgress, Timestamp, Trigger};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::any::Any;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::hash::Hash;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A record: its key, its event time (µs) and an id (unique, except for exact duplicates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
struct Rec {
    key: u8,
    t: i64,
    id: u32,
}

fn event_time(record: &Rec) -> Timestamp {
    Timestamp(record.t)
}

fn key_of(record: &Rec) -> u8 {
    record.key
}

// ---------------------------------------------------------------------------------------
// Window specifications and the brute-force window assignment of the reference.

/// A window specification, in µs.
#[derive(Debug, Clone, Copy)]
struct Spec {
    length: i64,
    slide: i64,
    offset: i64,
}

impl Spec {
    fn random(rng: &mut Rng, tumbling: bool) -> Spec {
        let slide = 2 + rng.below(7) as i64;
        let length = if tumbling {
            slide
        } else if rng.below(2) == 0 {
            slide * (2 + rng.below(3) as i64)
        } else {
            slide + 1 + rng.below(2 * slide as u64) as i64
        };
        Spec {
            length,
            slide,
            offset: rng.below(slide as u64) as i64,
        }
    }

    fn windows(&self) -> TimeWindows {
        TimeWindows::sliding(
            Duration::from_micros(self.length as u64),
            Duration::from_micros(self.slide as u64),
        )
        .unwrap()
        .with_offset(Duration::from_micros(self.offset as u64))
        .unwrap()
    }

    /// The windows holding `t`, by brute force over slide positions.
    fn windows_of(&self, t: i64) -> Vec<Window> {
        let k = (t - self.offset).div_euclid(self.slide);
        let reach = self.length / self.slide + 2;
        (k - reach..=k + 1)
            .map(|k| self.offset + k * self.slide)
            .filter(|s| *s <= t && t < s + self.length)
            .map(|s| Window {
                start: Timestamp(s),
                end: Timestamp(s + self.length),
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// Random inputs.

/// One source instance's records: a clock rising by 0–2 µs per record (sometimes 10–100,
/// sometimes a gap of about a second), each record up to `spread` behind it, one in ten a
/// duplicate of the previous one, one in ten exactly on a window start or end.
fn random_records(rng: &mut Rng, spec: Spec, instance: u32, len: usize) -> Vec<Rec> {
    let spread = rng.below(4 * spec.length as u64 + 1) as i64;
    let mut base = rng.below(100) as i64 - 50;
    let mut records: Vec<Rec> = Vec::with_capacity(len);
    for i in 0..len {
        base += match rng.below(40) {
            0..=15 => 0,
            16..=33 => rng.below(3) as i64,
            34..=37 => 10 + rng.below(90) as i64,
            _ => 1_000_000 + rng.below(1 << 20) as i64, // a long gap
        };
        let id = instance * 100_000 + i as u32;
        let record = match (rng.below(10), records.last()) {
            // An exact duplicate: same key, time and id.
            (0, Some(previous)) if rng.below(2) == 0 => *previous,
            // The same key and time, another id.
            (0, Some(previous)) => Rec { id, ..*previous },
            (1, _) => {
                let t = base - rng.below(spread as u64 + 1) as i64;
                let start = spec.offset + (t - spec.offset).div_euclid(spec.slide) * spec.slide;
                let t = if rng.below(2) == 0 {
                    start
                } else {
                    start + spec.length
                };
                Rec {
                    key: rng.below(4) as u8,
                    t,
                    id,
                }
            }
            _ => Rec {
                key: rng.below(4) as u8,
                t: base - rng.below(spread as u64 + 1) as i64,
                id,
            },
        };
        records.push(record);
    }
    records
}

/// A random test case: windows, watermark settings and the inputs of each source instance.
#[derive(Debug, Clone)]
struct Case {
    seed: u64,
    spec: Spec,
    /// The watermark delay, µs.
    delay: i64,
    /// Continuous epochs: the watermark is sent every this many records.
    every: u32,
    sources: Vec<Vec<Rec>>,
}

impl Case {
    fn random(seed: u64, tumbling: bool, instances: u32, len: usize) -> Case {
        let mut rng = Rng::new(seed);
        let spec = Spec::random(&mut rng, tumbling);
        let delay = rng.below(3 * spec.length as u64 + 1) as i64;
        let every = 1 + rng.below(8) as u32;
        let sources = (0..instances)
            .map(|i| random_records(&mut rng, spec, i, len))
            .collect();
        Case {
            seed,
            spec,
            delay,
            every,
            sources,
        }
    }

    fn watermark(&self) -> WatermarkConfig {
        WatermarkConfig::new(Duration::from_micros(self.delay as u64))
            .emit_every_records(self.every)
    }

    fn all_records(&self) -> Vec<Rec> {
        self.sources.iter().flatten().copied().collect()
    }
}

// ---------------------------------------------------------------------------------------
// The tag: what the window operator sees, logged per instance.

/// One event as the window operator sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// A record, in `epoch` running in `mode`, with the watermark `ctx.watermark()`.
    Record {
        epoch: u64,
        mode: ExecutionMode,
        watermark: i64,
        record: Rec,
    },
    /// The watermark moved to `watermark`.
    Watermark { epoch: u64, watermark: i64 },
    /// The marker ending `epoch`, under `watermark`.
    Marker { epoch: u64, watermark: i64 },
}

/// The events of each tagged instance, in order.
#[derive(Debug, Default)]
struct Log {
    instances: Mutex<Vec<Vec<Seen>>>,
}

impl Log {
    fn take(&self) -> Vec<Vec<Seen>> {
        std::mem::take(&mut *self.instances.lock().unwrap())
    }
}

/// Appends to the log of its instance (a slot taken at its first event; a clone — a
/// new instance — takes a slot of its own).
#[derive(Debug)]
struct Recorder {
    log: Arc<Log>,
    slot: Option<usize>,
    mode: ExecutionMode,
}

impl Recorder {
    fn new(log: &Arc<Log>) -> Self {
        Recorder {
            log: log.clone(),
            slot: None,
            mode: ExecutionMode::Continuous,
        }
    }

    fn note(&mut self, seen: Seen) {
        let mut instances = self.log.instances.lock().unwrap();
        let slot = *self.slot.get_or_insert_with(|| {
            instances.push(Vec::new());
            instances.len() - 1
        });
        instances[slot].push(seen);
    }

    fn record(&mut self, record: Rec, epoch: Epoch, watermark: Timestamp) {
        let mode = self.mode;
        self.note(Seen::Record {
            epoch: epoch.0,
            mode,
            watermark: watermark.0,
            record,
        });
    }
}

impl Clone for Recorder {
    fn clone(&self) -> Self {
        Recorder {
            log: self.log.clone(),
            slot: None,
            mode: self.mode,
        }
    }
}

/// The pass-through tag chained before the window aggregate.
#[derive(Debug, Clone)]
struct Tag(Recorder);

impl Operator<Rec> for Tag {
    type Out = Rec;
    type Key = ();
    type Side = ();

    fn on_record<C: Context<Rec>>(&mut self, record: Rec, ctx: &mut C) {
        self.0.record(record, ctx.epoch(), ctx.watermark());
        ctx.push(record);
    }

    fn on_watermark<C: Context<Rec>>(&mut self, watermark: Timestamp, ctx: &mut C) {
        self.0.note(Seen::Watermark {
            epoch: ctx.epoch().0,
            watermark: watermark.0,
        });
    }

    fn on_marker<C: Context<Rec>>(&mut self, epoch: Epoch, ctx: &mut C) {
        self.0.note(Seen::Marker {
            epoch: epoch.0,
            watermark: ctx.watermark().0,
        });
    }

    fn set_emit_mode(&mut self, mode: EmitMode) {
        self.0.mode = mode.execution;
    }
}

/// [`TimeWindows`] whose operator logs what it sees: the real window operator, wrapped in
/// [`TaggedOp`], on the window's own thread (one log per instance).
#[derive(Debug, Clone)]
struct TaggedWindows {
    windows: TimeWindows,
    log: Arc<Log>,
}

impl WindowSpec for TaggedWindows {
    fn needs_merge(&self) -> bool {
        self.windows.needs_merge()
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
        TaggedOp {
            inner: self.windows.operator::<K, T, A, F>(agg, time),
            tag: Recorder::new(&self.log),
        }
    }
}

/// A window operator that logs every event before handing it on.
#[derive(Debug, Clone)]
struct TaggedOp<O> {
    inner: O,
    tag: Recorder,
}

impl<K, T, O> Operator<(K, T)> for TaggedOp<O>
where
    O: Operator<(K, T)>,
    T: 'static,
{
    type Out = O::Out;
    type Key = O::Key;
    type Side = O::Side;

    fn on_record<C: Context<Self::Out, Self::Key, Self::Side>>(
        &mut self,
        record: (K, T),
        ctx: &mut C,
    ) {
        let rec = *(&record.1 as &dyn Any)
            .downcast_ref::<Rec>()
            .expect("the tagged windows see Rec records");
        self.tag.record(rec, ctx.epoch(), ctx.watermark());
        self.inner.on_record(record, ctx);
    }

    fn on_timer<C: Context<Self::Out, Self::Key, Self::Side>>(
        &mut self,
        timer: Timer<Self::Key>,
        ctx: &mut C,
    ) {
        self.inner.on_timer(timer, ctx);
    }

    fn on_watermark<C: Context<Self::Out, Self::Key, Self::Side>>(
        &mut self,
        watermark: Timestamp,
        ctx: &mut C,
    ) {
        self.tag.note(Seen::Watermark {
            epoch: ctx.epoch().0,
            watermark: watermark.0,
        });
        self.inner.on_watermark(watermark, ctx);
    }

    fn on_marker<C: Context<Self::Out, Self::Key, Self::Side>>(
        &mut self,
        epoch: Epoch,
        ctx: &mut C,
    ) {
        self.tag.note(Seen::Marker {
            epoch: epoch.0,
            watermark: ctx.watermark().0,
        });
        self.inner.on_marker(epoch, ctx);
    }

    fn on_commit(&mut self, epoch: Epoch) {
        self.inner.on_commit(epoch);
    }

    fn set_emit_mode(&mut self, mode: EmitMode) {
        self.tag.mode = mode.execution;
        self.inner.set_emit_mode(mode);
    }

    fn on_end<C: Context<Self::Out, Self::Key, Self::Side>>(&mut self, ctx: &mut C) {
        self.inner.on_end(ctx);
    }

    fn snapshot(&self) -> Result<Option<Vec<u8>>, BoxError> {
        self.inner.snapshot()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), BoxError> {
        self.inner.restore(state)
    }
}

// ---------------------------------------------------------------------------------------
// The reference.

type WindowKey = (u8, Window);

/// What the window operator owes, computed from the tag logs.
#[derive(Debug, Default)]
struct Expected {
    /// Per (key, window): the pairs that were not late.
    counted: BTreeMap<WindowKey, u64>,
    /// Per (key, window): every pair.
    all: BTreeMap<WindowKey, u64>,
    /// The counted windows the final watermark of their instance closed.
    closed: BTreeMap<WindowKey, u64>,
    /// Records all of whose pairs were late.
    late: Vec<Rec>,
    /// Late (record, window) pairs.
    dropped: u64,
    /// Records seen, per execution mode.
    records_by_mode: HashMap<ExecutionMode, usize>,
    /// Epochs that held records.
    epochs: BTreeSet<u64>,
}

/// Replays each instance's log with the late rules of the module docs.
fn reference(spec: Spec, logs: &[Vec<Seen>]) -> Expected {
    let mut expected = Expected::default();
    for log in logs {
        let mut watermark = i64::MIN;
        // The watermark the last epoch ended with (the previous batch's watermark).
        let mut previous = i64::MIN;
        let mut batch_watermarks: BTreeMap<u64, i64> = BTreeMap::new();
        let mut counted_here: BTreeSet<WindowKey> = BTreeSet::new();
        for seen in log {
            match *seen {
                Seen::Watermark { watermark: w, .. } => {
                    assert!(
                        w > watermark,
                        "watermarks only move forward: {w} after {watermark}"
                    );
                    watermark = w;
                }
                Seen::Marker { watermark: w, .. } => {
                    assert_eq!(w, watermark, "the marker's watermark is the last one seen");
                    previous = watermark;
                }
                Seen::Record {
                    epoch,
                    mode,
                    watermark: w,
                    record,
                } => {
                    assert_eq!(w, watermark, "ctx.watermark() is the last watermark seen");
                    let bound = match mode {
                        ExecutionMode::Continuous => watermark,
                        ExecutionMode::MicroBatch => {
                            let batch = *batch_watermarks.entry(epoch).or_insert(watermark);
                            assert_eq!(batch, watermark, "a batch's watermark does not move");
                            previous
                        }
                    };
                    *expected.records_by_mode.entry(mode).or_default() += 1;
                    expected.epochs.insert(epoch);
                    let mut any_open = false;
                    for window in spec.windows_of(record.t) {
                        *expected.all.entry((record.key, window)).or_default() += 1;
                        if window.end.0 <= bound {
                            expected.dropped += 1;
                        } else {
                            any_open = true;
                            *expected.counted.entry((record.key, window)).or_default() += 1;
                            counted_here.insert((record.key, window));
                        }
                    }
                    if !any_open {
                        expected.late.push(record);
                    }
                }
            }
        }
        for window in counted_here {
            if window.1.end.0 <= watermark {
                expected.closed.insert(window, expected.counted[&window]);
            }
        }
    }
    expected
}

/// Panics, listing the first differences, if `got` is not `expected`.
fn assert_same(
    what: &str,
    name: &str,
    got: &BTreeMap<WindowKey, u64>,
    expected: &BTreeMap<WindowKey, u64>,
) {
    if got == expected {
        return;
    }
    let keys: BTreeSet<&WindowKey> = got.keys().chain(expected.keys()).collect();
    let differences: Vec<String> = keys
        .into_iter()
        .filter(|k| got.get(k) != expected.get(k))
        .map(|(key, window)| {
            format!(
                "key {key} {window}: got {:?}, expected {:?}",
                got.get(&(*key, *window)),
                expected.get(&(*key, *window))
            )
        })
        .collect();
    panic!(
        "{what}: {name}: {} of {} windows differ; first ones:\n{}",
        differences.len(),
        expected.len(),
        differences[..differences.len().min(8)].join("\n")
    );
}

/// What a query produced.
#[derive(Debug)]
struct Outcome {
    rows: Vec<(u8, Window, u64)>,
    late: Vec<Rec>,
    log: Vec<Vec<Seen>>,
    progress: QueryProgress,
}

impl Outcome {
    fn counter(&self, name: &str) -> u64 {
        self.progress
            .operator("window")
            .expect("the window operator")
            .counters
            .get(name)
            .copied()
            .unwrap_or(0)
    }
}

/// Checks `outcome` against the reference for `output`; returns the reference.
fn check(what: &str, spec: Spec, output: OutputMode, outcome: &Outcome) -> Expected {
    let expected = reference(spec, &outcome.log);
    let tagged: usize = expected.records_by_mode.values().sum();
    match output {
        OutputMode::Append => {
            let mut got: BTreeMap<WindowKey, u64> = BTreeMap::new();
            for (key, window, count) in &outcome.rows {
                let previous = got.insert((*key, *window), *count);
                assert!(
                    previous.is_none(),
                    "{what}: window {key} {window} emitted twice ({previous:?}, then {count})"
                );
            }
            assert_same(what, "append output", &got, &expected.closed);
        }
        OutputMode::Update => {
            let mut last: BTreeMap<WindowKey, u64> = BTreeMap::new();
            for (key, window, count) in &outcome.rows {
                last.insert((*key, *window), *count);
            }
            assert_same(what, "last value of every window", &last, &expected.counted);
        }
        OutputMode::Complete => {
            let mut table: BTreeMap<WindowKey, u64> = BTreeMap::new();
            for (key, window, count) in &outcome.rows {
                assert!(
                    table.insert((*key, *window), *count).is_none(),
                    "{what}: complete table has {key} {window} twice"
                );
            }
            assert_same(what, "complete table", &table, &expected.all);
            assert!(
                outcome.late.is_empty(),
                "{what}: complete mode drops nothing"
            );
            assert_eq!(outcome.counter(LATE_RECORDS), 0, "{what}");
            assert_eq!(outcome.counter(ROWS_DROPPED_BY_WATERMARK), 0, "{what}");
            return expected;
        }
    }
    assert_eq!(
        sorted(outcome.late.clone()),
        sorted(expected.late.clone()),
        "{what}: late records"
    );
    assert_eq!(
        outcome.counter(LATE_RECORDS),
        expected.late.len() as u64,
        "{what}: late_records counter"
    );
    assert_eq!(
        outcome.counter(ROWS_DROPPED_BY_WATERMARK),
        expected.dropped,
        "{what}: rows_dropped_by_watermark counter"
    );
    assert!(tagged > 0, "{what}: nothing tagged");
    expected
}

// ---------------------------------------------------------------------------------------
// Queries over finite sources.

/// A finite source over `records` that pauses for `pause` after every `every` records,
/// so that continuous epochs (and the watermark's emit interval) fall inside the input.
struct Paced {
    records: Vec<Rec>,
    next: usize,
    every: usize,
    pause: Duration,
    resume: Option<Instant>,
}

impl Paced {
    fn new(records: Vec<Rec>, every: usize) -> Self {
        Paced {
            records,
            next: 0,
            every,
            pause: Duration::from_micros(300),
            resume: None,
        }
    }
}

impl Source for Paced {
    type Item = Rec;

    fn poll_next(&mut self) -> SourcePoll<Rec> {
        if let Some(at) = self.resume {
            if Instant::now() < at {
                return SourcePoll::Pending { until: Some(at) };
            }
            self.resume = None;
        }
        match self.records.get(self.next) {
            Some(record) => {
                self.next += 1;
                if self.next.is_multiple_of(self.every) {
                    self.resume = Some(Instant::now() + self.pause);
                }
                SourcePoll::Ready(*record)
            }
            None => SourcePoll::Exhausted,
        }
    }

    fn can_replay(&self) -> bool {
        true
    }

    fn checkpoint(&mut self, _epoch: Epoch) -> Result<Vec<u8>, BoxError> {
        Ok((self.next as u64).to_le_bytes().to_vec())
    }

    fn restore(&mut self, offset: &[u8]) -> Result<(), BoxError> {
        self.next = u64::from_le_bytes(offset.try_into()?) as usize;
        Ok(())
    }
}

/// Where the tag goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// One source instance, everything chained: source → generator → tag → key_by → window.
    Chained,
    /// The case's source instances, an exchange onto two window instances that log.
    Parallel,
}

/// Runs `case` through a query and returns what it produced.
fn run(
    case: &Case,
    layout: Layout,
    trigger: Option<Trigger>,
    max_batch: usize,
    output: OutputMode,
) -> Outcome {
    let log = Arc::new(Log::default());
    let mut query = Query::builder();
    query.output_mode(output).max_batch_records(max_batch);
    if let Some(trigger) = trigger {
        query.trigger(trigger);
    }
    let sources = case.sources.clone();
    // Available-now ends at the first pause (all the data available at its start).
    let every = match trigger {
        Some(Trigger::AvailableNow) => usize::MAX,
        _ => 20 + (case.seed % 40) as usize,
    };
    let instances = match layout {
        Layout::Chained => 1,
        Layout::Parallel => sources.len(),
    };
    let input = query
        .source_instances("records", instances, move |i| {
            Paced::new(sources[i].clone(), every)
        })
        .with_event_time(event_time)
        .with_watermark_config(case.watermark());
    let late = Rc::new(RefCell::new(None));
    let late_table = late.clone();
    let keep_late = move |stream: rivulet::Stream<_>| {
        *late_table.borrow_mut() = Some(stream.to_memory("late"));
    };
    let rows: MemoryTable<(u8, Window, u64)> = match layout {
        Layout::Chained => input
            .operator("tag", Tag(Recorder::new(&log)))
            .key_by(key_of)
            .with_parallelism(1)
            .window(case.spec.windows(), event_time)
            .late_records(keep_late)
            .count()
            .to_memory("rows"),
        Layout::Parallel => input
            .key_by(key_of)
            .with_parallelism(2)
            .window(
                TaggedWindows {
                    windows: case.spec.windows(),
                    log: log.clone(),
                },
                event_time,
            )
            .late_records(keep_late)
            .count()
            .to_memory("rows"),
    };
    let running = query.start().expect("start");
    finish_ok(&running, "window query");
    let late: MemoryTable<Rec> = late.borrow_mut().take().expect("the late stream");
    let outcome = Outcome {
        rows: rows.rows(),
        late: late.rows(),
        log: log.take(),
        progress: running.progress(),
    };
    let tagged: usize = outcome
        .log
        .iter()
        .map(|l| {
            l.iter()
                .filter(|s| matches!(s, Seen::Record { .. }))
                .count()
        })
        .sum();
    let expected_records = match layout {
        Layout::Chained => case.sources[0].len(),
        Layout::Parallel => case.all_records().len(),
    };
    assert_eq!(tagged, expected_records, "every record tagged once");
    outcome
}

/// The case's description in failure messages.
fn describe(case: &Case, layout: Layout, trigger: Option<Trigger>, max_batch: usize) -> String {
    format!(
        "seed {}, {:?}, delay {}, every {}, {layout:?}, {trigger:?}, max batch {max_batch}",
        case.seed, case.spec, case.delay, case.every
    )
}

/// Totals over several cases, to make sure the cases exercised what they should.
#[derive(Debug, Default)]
struct Coverage {
    late: usize,
    dropped: u64,
    closed: usize,
    counted: usize,
    epochs: usize,
}

impl Coverage {
    fn add(&mut self, expected: &Expected) {
        self.late += expected.late.len();
        self.dropped += expected.dropped;
        self.closed += expected.closed.len();
        self.counted += expected.counted.len();
        self.epochs = self.epochs.max(expected.epochs.len());
    }
}

const MICRO_BATCH: Trigger = Trigger::MicroBatch {
    interval: Duration::ZERO,
};
const CONTINUOUS_EPOCHS: Trigger = Trigger::Continuous {
    checkpoint_interval: Duration::from_millis(1),
};

/// Runs seeds `seeds` over both window kinds and both layouts under `trigger`.
fn run_cases(
    seeds: std::ops::Range<u64>,
    trigger: Option<Trigger>,
    output: OutputMode,
) -> Coverage {
    let mut coverage = Coverage::default();
    for seed in seeds {
        for (tumbling, layout) in [
            (true, Layout::Chained),
            (false, Layout::Chained),
            (seed % 2 == 0, Layout::Parallel),
        ] {
            let instances = if layout == Layout::Parallel {
                2 + (seed % 2) as u32
            } else {
                1
            };
            let case = Case::random(seed * 31 + u64::from(tumbling), tumbling, instances, 300);
            let max_batch = 3 + (seed % 29) as usize;
            let outcome = run(&case, layout, trigger, max_batch, output);
            let what = describe(&case, layout, trigger, max_batch);
            let expected = check(&what, case.spec, output, &outcome);
            coverage.add(&expected);
            if trigger.is_some_and(|t| t.mode() == ExecutionMode::MicroBatch) {
                assert_eq!(
                    expected.records_by_mode.get(&ExecutionMode::Continuous),
                    None,
                    "{what}"
                );
                let batches = case.sources.iter().map(|s| s.len()).max().unwrap() / max_batch;
                assert!(
                    expected.epochs.len() >= batches,
                    "{what}: {} epochs",
                    expected.epochs.len()
                );
            }
        }
    }
    eprintln!("{trigger:?} {output:?}: {coverage:?}");
    coverage
}

#[test]
fn append_mode_in_continuous_mode_without_epochs() {
    let coverage = run_cases(0..16, None, OutputMode::Append);
    assert!(
        coverage.late > 0 && coverage.dropped > coverage.late as u64,
        "{coverage:?}"
    );
    assert!(coverage.closed > 100, "{coverage:?}");
}

#[test]
fn append_mode_in_continuous_epochs() {
    let coverage = run_cases(100..116, Some(CONTINUOUS_EPOCHS), OutputMode::Append);
    assert!(coverage.late > 0 && coverage.closed > 100, "{coverage:?}");
}

#[test]
fn append_mode_in_micro_batches() {
    let coverage = run_cases(200..216, Some(MICRO_BATCH), OutputMode::Append);
    assert!(coverage.late > 0 && coverage.closed > 100, "{coverage:?}");
    assert!(coverage.epochs > 10, "{coverage:?}");
}

#[test]
fn append_mode_available_now() {
    let coverage = run_cases(300..306, Some(Trigger::AvailableNow), OutputMode::Append);
    assert!(coverage.late > 0 && coverage.closed > 50, "{coverage:?}");
}

#[test]
fn update_mode_ends_at_the_reference() {
    let mut coverage = Coverage::default();
    for (seeds, trigger) in [
        (400..406, None),
        (406..412, Some(CONTINUOUS_EPOCHS)),
        (412..420, Some(MICRO_BATCH)),
    ] {
        let c = run_cases(seeds, trigger, OutputMode::Update);
        coverage.late += c.late;
        coverage.counted += c.counted;
    }
    assert!(coverage.late > 0 && coverage.counted > 100, "{coverage:?}");
}

#[test]
fn complete_mode_counts_every_record() {
    for (seeds, trigger) in [
        (600..603, None),
        (603..606, Some(CONTINUOUS_EPOCHS)),
        (606..609, Some(MICRO_BATCH)),
    ] {
        run_cases(seeds, trigger, OutputMode::Complete);
    }
}

// ---------------------------------------------------------------------------------------
// Trigger switches while a push source is fed.

#[test]
fn trigger_switches_in_the_middle_of_the_input() {
    let mut mixed = 0;
    for seed in 0..6u64 {
        for (layout, output) in [
            (Layout::Chained, OutputMode::Append),
            (Layout::Parallel, OutputMode::Append),
            (Layout::Chained, OutputMode::Update),
        ] {
            let tumbling = seed % 2 == 0;
            let case = Case::random(1000 + seed, tumbling, 1, 600);
            let log = Arc::new(Log::default());
            let mut query = Query::builder();
            query
                .output_mode(output)
                .max_batch_records(7 + seed as usize)
                .trigger(CONTINUOUS_EPOCHS);
            let (handle, input) = query.push_source::<Rec>("records");
            let input = input
                .with_event_time(event_time)
                .with_watermark_config(case.watermark());
            let late = Rc::new(RefCell::new(None));
            let late_table = late.clone();
            let keep_late = move |stream: rivulet::Stream<_>| {
                *late_table.borrow_mut() = Some(stream.to_memory("late"));
            };
            let (rows, watched) = match layout {
                Layout::Chained => (
                    input
                        .operator("tag", Tag(Recorder::new(&log)))
                        .key_by(key_of)
                        .with_parallelism(1)
                        .window(case.spec.windows(), event_time)
                        .late_records(keep_late)
                        .count()
                        .to_memory("rows"),
                    "tag",
                ),
                Layout::Parallel => (
                    input
                        .key_by(key_of)
                        .with_parallelism(2)
                        .window(
                            TaggedWindows {
                                windows: case.spec.windows(),
                                log: log.clone(),
                            },
                            event_time,
                        )
                        .late_records(keep_late)
                        .count()
                        .to_memory("rows"),
                    "window",
                ),
            };
            let running = query.start().expect("start");
            let mut rng = Rng::new(seed ^ 0x5717c4);
            let records = &case.sources[0];
            let mut pushed = 0;
            let mut micro_batch = false;
            let mut switches = 0;
            for chunk in records.chunks(40) {
                for record in chunk {
                    handle.push(*record).expect("push");
                }
                pushed += chunk.len() as u64;
                if rng.below(3) != 0 {
                    // Let this chunk run in the current mode before switching.
                    wait_until("the chunk is processed", || {
                        running.progress().operator(watched).unwrap().records_in >= pushed
                    });
                }
                if rng.below(2) == 0 {
                    micro_batch = !micro_batch;
                    switches += 1;
                    let trigger = if micro_batch {
                        Trigger::MicroBatch {
                            interval: Duration::from_micros(200),
                        }
                    } else {
                        CONTINUOUS_EPOCHS
                    };
                    running.set_trigger(trigger).expect("switch");
                    // Until the coordinator adopts it, a later switch would replace it.
                    wait_until("the switch is adopted", || {
                        running.progress().checkpoint.unwrap().trigger == trigger.to_string()
                    });
                    // Let the epoch that was running when it was adopted end (not needed
                    // for correctness: it makes the next chunk likely to run in the new
                    // mode).
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            drop(handle);
            finish_ok(&running, "trigger switches");
            let late: MemoryTable<Rec> = late.borrow_mut().take().unwrap();
            let outcome = Outcome {
                rows: rows.rows(),
                late: late.rows(),
                log: log.take(),
                progress: running.progress(),
            };
            let what = format!(
                "{}, {switches} switches, {output:?}",
                describe(&case, layout, None, 7 + seed as usize)
            );
            let expected = check(&what, case.spec, output, &outcome);
            assert_eq!(
                expected.records_by_mode.values().sum::<usize>(),
                records.len(),
                "{what}"
            );
            mixed += usize::from(expected.records_by_mode.len() == 2);
        }
    }
    // Switches take effect at epoch boundaries, so which records run in which mode is up
    // to timing; over all cases both modes must have been mixed.
    assert!(mixed > 0, "no case ran records in both modes");
}

// ---------------------------------------------------------------------------------------
// The real window operator behind an exchange, unwrapped.

/// Two or three source instances, tagged at the sources (after the generator), an
/// exchange onto two instances of the plain window operator. Micro-batch: batches are
/// global, so the tags' epochs give the exact reference. Continuous, tumbling windows:
/// every record is counted in its window or set aside as late, once.
#[test]
fn plain_windows_behind_an_exchange() {
    for seed in 0..12u64 {
        for trigger in [None, Some(MICRO_BATCH)] {
            let tumbling = trigger.is_none() || seed % 2 == 0;
            let instances = 2 + (seed % 2) as u32;
            let case = Case::random(2000 + seed, tumbling, instances, 300);
            let max_batch = 5 + seed as usize * 3;
            let what = describe(&case, Layout::Parallel, trigger, max_batch);
            let log = Arc::new(Log::default());
            let mut query = Query::builder();
            query
                .output_mode(OutputMode::Append)
                .max_batch_records(max_batch);
            if let Some(trigger) = trigger {
                query.trigger(trigger);
            }
            let sources = case.sources.clone();
            let late = Rc::new(RefCell::new(None));
            let late_table = late.clone();
            let rows = query
                .source_instances("records", instances as usize, move |i| {
                    Paced::new(sources[i].clone(), 30)
                })
                .with_event_time(event_time)
                .with_watermark_config(case.watermark())
                .operator("tag", Tag(Recorder::new(&log)))
                .key_by(key_of)
                .with_parallelism(WINDOW_INSTANCES)
                .window(case.spec.windows(), event_time)
                .late_records(move |stream| {
                    *late_table.borrow_mut() = Some(stream.to_memory("late"));
                })
                .count()
                .to_memory("rows");
            let running = query.start().expect("start");
            finish_ok(&running, "plain windows");
            let late: MemoryTable<Rec> = late.borrow_mut().take().unwrap();
            let outcome = Outcome {
                rows: rows.rows(),
                late: late.rows(),
                log: log.take(),
                progress: running.progress(),
            };
            match trigger {
                Some(_) => check_global_batches(&what, &case, &outcome),
                None => check_tumbling_invariants(&what, &case, &outcome),
            }
        }
    }
}

/// Micro-batches tagged at every source instance: the batch watermark is global, the
/// same at every instance; the reference replays the records by epoch.
fn check_global_batches(what: &str, case: &Case, outcome: &Outcome) {
    // Per epoch: its records (from every instance) and its watermark.
    let mut records: BTreeMap<u64, Vec<Rec>> = BTreeMap::new();
    let mut watermarks: BTreeMap<u64, i64> = BTreeMap::new();
    for log in &outcome.log {
        for seen in log {
            match *seen {
                Seen::Record {
                    epoch,
                    watermark,
                    record,
                    mode,
                } => {
                    assert_eq!(mode, ExecutionMode::MicroBatch, "{what}");
                    records.entry(epoch).or_default().push(record);
                    let w = *watermarks.entry(epoch).or_insert(watermark);
                    assert_eq!(w, watermark, "{what}: epoch {epoch}'s watermark is global");
                }
                Seen::Marker { epoch, watermark } => {
                    let w = *watermarks.entry(epoch).or_insert(watermark);
                    assert_eq!(w, watermark, "{what}: epoch {epoch}'s watermark is global");
                }
                Seen::Watermark { .. } => {}
            }
        }
    }
    assert_eq!(
        records.values().map(Vec::len).sum::<usize>(),
        case.all_records().len(),
        "{what}"
    );
    // Spark's rule, from the records alone: batch e's watermark is the largest event time
    // of the batches before it minus the delay.
    let mut max_before = i64::MIN;
    for (epoch, watermark) in &watermarks {
        let expected = if max_before == i64::MIN {
            i64::MIN
        } else {
            max_before - case.delay
        };
        assert_eq!(*watermark, expected, "{what}: epoch {epoch}'s watermark");
        if let Some(batch) = records.get(epoch) {
            max_before = max_before.max(batch.iter().map(|r| r.t).max().unwrap());
        }
    }
    let final_watermark = watermarks.values().copied().max().unwrap_or(i64::MIN);
    let mut counted: BTreeMap<WindowKey, u64> = BTreeMap::new();
    let mut late = Vec::new();
    let mut dropped = 0;
    for (epoch, batch) in &records {
        let bound = watermarks
            .range(..*epoch)
            .next_back()
            .map_or(i64::MIN, |(_, w)| *w);
        for record in batch {
            let mut any_open = false;
            for window in case.spec.windows_of(record.t) {
                if window.end.0 <= bound {
                    dropped += 1;
                } else {
                    any_open = true;
                    *counted.entry((record.key, window)).or_default() += 1;
                }
            }
            if !any_open {
                late.push(*record);
            }
        }
    }
    let closed: BTreeMap<WindowKey, u64> = counted
        .into_iter()
        .filter(|((_, window), _)| window.end.0 <= final_watermark)
        .collect();
    let mut got: BTreeMap<WindowKey, u64> = BTreeMap::new();
    for (key, window, count) in &outcome.rows {
        assert!(
            got.insert((*key, *window), *count).is_none(),
            "{what}: {key} {window} emitted twice"
        );
    }
    assert_same(what, "append output", &got, &closed);
    assert_eq!(sorted(outcome.late.clone()), sorted(late.clone()), "{what}");
    assert_eq!(outcome.counter(LATE_RECORDS), late.len() as u64, "{what}");
    assert_eq!(
        outcome.counter(ROWS_DROPPED_BY_WATERMARK),
        dropped,
        "{what}"
    );
    assert!(records.len() > 3, "{what}: {} batches", records.len());
}

/// The window instances behind the exchange of [`plain_windows_behind_an_exchange`].
const WINDOW_INSTANCES: usize = 2;

/// Continuous, tumbling windows, without per-record watermarks: each record is counted
/// in its one window or set aside as late; a window is emitted once, when the watermark
/// closed it. Every instance sends its own `max − delay` at its end and the window takes
/// the minimum over the inputs that have not ended, so the final watermark lies between
/// the smallest and the largest of those, at least at the end of every emitted window;
/// every window ending before it was emitted or is all late.
fn check_tumbling_invariants(what: &str, case: &Case, outcome: &Outcome) {
    assert_eq!(case.spec.length, case.spec.slide);
    let window_of = |record: &Rec| (record.key, case.spec.windows_of(record.t)[0]);
    let mut all: BTreeMap<WindowKey, u64> = BTreeMap::new();
    for record in case.all_records() {
        *all.entry(window_of(&record)).or_default() += 1;
    }
    let mut late: BTreeMap<WindowKey, u64> = BTreeMap::new();
    for record in &outcome.late {
        *late.entry(window_of(record)).or_default() += 1;
    }
    let finals: Vec<i64> = case
        .sources
        .iter()
        .map(|s| s.iter().map(|r| r.t).max().unwrap() - case.delay)
        .collect();
    let highest = *finals.iter().max().unwrap();
    let mut emitted: BTreeMap<WindowKey, u64> = BTreeMap::new();
    for (key, window, count) in &outcome.rows {
        assert!(
            emitted.insert((*key, *window), *count).is_none(),
            "{what}: {key} {window} emitted twice"
        );
    }
    // Per window instance (each key lives on one): at least the smallest final, and
    // the end of every window it emitted.
    let lowest = *finals.iter().min().unwrap();
    let mut closed_at_least = [lowest; WINDOW_INSTANCES];
    for (key, window) in emitted.keys() {
        let instance = partition_of(key, WINDOW_INSTANCES);
        closed_at_least[instance] = closed_at_least[instance].max(window.end.0);
    }
    for (window, total) in &all {
        let late = late.get(window).copied().unwrap_or(0);
        match emitted.get(window) {
            Some(count) => {
                assert!(
                    window.1.end.0 <= highest,
                    "{what}: {window:?} emitted, not closed"
                );
                assert_eq!(count + late, *total, "{what}: {window:?}: counted + late");
            }
            None if window.1.end.0
                <= closed_at_least[partition_of(&window.0, WINDOW_INSTANCES)] =>
            {
                assert_eq!(
                    late, *total,
                    "{what}: {window:?} closed, not emitted: all late"
                )
            }
            None => assert!(
                late == 0 || late == *total,
                "{what}: {window:?} not emitted, yet {late} of its {total} records late"
            ),
        }
        if late > 0 {
            assert!(
                window.1.end.0 <= highest,
                "{what}: {window:?}: late, not closed"
            );
        }
    }
    assert!(emitted.keys().all(|w| all.contains_key(w)), "{what}");
    let late_total: u64 = late.values().sum();
    assert_eq!(outcome.counter(LATE_RECORDS), late_total, "{what}");
    assert_eq!(
        outcome.counter(ROWS_DROPPED_BY_WATERMARK),
        late_total,
        "{what}"
    );
    assert!(late_total > 0 || case.delay > 0, "{what}");
}

// ---------------------------------------------------------------------------------------
// Spark's guide example, batch by batch.

/// A source the test releases batch by batch: a batch is handed over in one step, so the
/// micro-batch planner (which takes what the source holds) takes all of it or none.
struct Gate {
    shared: Arc<Mutex<GateState>>,
}

#[derive(Default)]
struct GateState {
    queue: VecDeque<(String, i64)>,
    closed: bool,
    wake: Option<WakeHandle>,
}

impl Gate {
    fn release(shared: &Mutex<GateState>, batch: &[(&str, i64)]) {
        let mut state = shared.lock().unwrap();
        state
            .queue
            .extend(batch.iter().map(|(word, t)| (word.to_string(), *t)));
        if let Some(wake) = &state.wake {
            wake.notify();
        }
    }

    fn close(shared: &Mutex<GateState>) {
        let mut state = shared.lock().unwrap();
        state.closed = true;
        if let Some(wake) = &state.wake {
            wake.notify();
        }
    }
}

impl Source for Gate {
    type Item = (String, i64);

    fn open(&mut self, context: &SourceContext) -> Result<(), BoxError> {
        self.shared.lock().unwrap().wake = Some(context.wake.clone());
        Ok(())
    }

    fn poll_next(&mut self) -> SourcePoll<(String, i64)> {
        let mut state = self.shared.lock().unwrap();
        match state.queue.pop_front() {
            Some(item) => SourcePoll::Ready(item),
            None if state.closed => SourcePoll::Exhausted,
            None => SourcePoll::Pending { until: None },
        }
    }

    fn has_data(&self) -> bool {
        let state = self.shared.lock().unwrap();
        !state.queue.is_empty() || state.closed
    }
}

const MIN: i64 = 60_000_000;

/// 12:mm as µs since the epoch.
fn at(h: i64, m: i64) -> i64 {
    (h * 60 + m) * MIN
}

/// The guide's input, by trigger: `(word, event time)`.
fn spark_batches() -> [Vec<(&'static str, i64)>; 4] {
    [
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

type WordRow = (String, Window, u64);

/// A window row as the guide writes it: `(start h:mm, word, count)`.
type SparkRow = (String, String, u64);

/// `(start h:mm, word, count)`, sorted.
fn readable(rows: &[WordRow]) -> Vec<SparkRow> {
    let mut out: Vec<SparkRow> = rows
        .iter()
        .map(|(word, window, count)| {
            assert_eq!(window.end.0 - window.start.0, 10 * MIN);
            let start = window.start.0 / MIN;
            (
                format!("{}:{:02}", start / 60, start % 60),
                word.clone(),
                *count,
            )
        })
        .collect();
    out.sort();
    out
}

fn spark_rows(rows: &[(&str, &str, u64)]) -> Vec<SparkRow> {
    sorted(
        rows.iter()
            .map(|(start, word, count)| (start.to_string(), word.to_string(), *count))
            .collect(),
    )
}

/// Runs the guide's example in micro-batches of 10 min windows sliding every 5 min with a
/// 10 min watermark delay, one trigger's input at a time, and returns what each trigger
/// emitted. After a trigger whose data moves the watermark, the batch without data that
/// follows it (Spark's no-data batch) runs before the next input is released, and its
/// output counts as the trigger's.
fn run_spark_example(output: OutputMode) -> (Vec<Vec<SparkRow>>, QueryProgress) {
    let gate = Arc::new(Mutex::new(GateState::default()));
    let mut query = Query::builder();
    query.output_mode(output).trigger(Trigger::MicroBatch {
        interval: Duration::from_millis(1),
    });
    let windows = TimeWindows::sliding(Duration::from_secs(600), Duration::from_secs(300)).unwrap();
    let rows: MemoryTable<WordRow> = query
        .source(
            "words",
            Gate {
                shared: gate.clone(),
            },
        )
        .with_event_time(|(_, t): &(String, i64)| Timestamp(*t))
        .with_watermark(Duration::from_secs(600))
        .key_by(|(word, _): &(String, i64)| word.clone())
        .window(windows, |(_, t): &(String, i64)| Timestamp(*t))
        .count()
        .to_memory("counts");
    let running = query.start().expect("start");
    let mut emitted = Vec::new();
    let mut seen_rows = 0;
    let mut last_epoch = 0;
    let mut max_time = i64::MIN;
    for batch in spark_batches() {
        Gate::release(&gate, &batch);
        let moves = batch.iter().map(|(_, t)| *t).max().unwrap() > max_time;
        max_time = max_time.max(batch.iter().map(|(_, t)| *t).max().unwrap());
        let size = batch.len() as u64;
        let mut data_epoch = 0;
        wait_until("the trigger's batch completes", || {
            let progress = running.progress();
            let checkpoint = progress.checkpoint.expect("epochs");
            match checkpoint
                .recent
                .iter()
                .find(|epoch| epoch.epoch > last_epoch && epoch.input_rows == Some(size))
            {
                Some(epoch) => {
                    data_epoch = epoch.epoch;
                    true
                }
                None => false,
            }
        });
        assert_eq!(
            running.progress().operator("window").unwrap().records_in,
            spark_batches()
                .iter()
                .take(emitted.len() + 1)
                .map(|b| b.len() as u64)
                .sum::<u64>(),
            "the whole input of the trigger ran in one batch"
        );
        last_epoch = data_epoch;
        if moves {
            wait_until("the batch without data after it", || {
                let progress = running.progress();
                progress.checkpoint.unwrap().last_complete_epoch >= Some(data_epoch + 1)
            });
            last_epoch = data_epoch + 1;
        }
        let rows = rows.rows();
        emitted.push(readable(&rows[seen_rows..]));
        seen_rows = rows.len();
    }
    Gate::close(&gate);
    finish_ok(&running, "Spark's example");
    assert_eq!(
        rows.len(),
        seen_rows,
        "nothing more at the end of the input"
    );
    (emitted, running.progress())
}

/// Spark's guide, "Handling Late Data and Watermarking", update mode: the updated rows of
/// each trigger, as in the guide's figure. Trigger 4's "donkey" (12:04) is late: the
/// batch without data after trigger 3 ran under watermark 12:11 (12:21 − 10 min), so
/// both its windows (11:55–12:05, 12:00–12:10) end at or before the previous batch's
/// watermark. (In Spark, which runs a batch without data only at its next trigger,
/// trigger 4 would judge by 12:04, trigger 3's watermark, and count the donkey; the
/// figure predates Spark 3.4's two watermarks.)
#[test]
fn sparks_late_data_example_in_update_mode() {
    let (emitted, progress) = run_spark_example(OutputMode::Update);
    let expected = vec![
        spark_rows(&[
            ("12:00", "dog", 1),
            ("12:00", "owl", 1),
            ("12:05", "dog", 1),
            ("12:05", "owl", 1),
        ]),
        spark_rows(&[
            ("12:00", "cat", 1),
            ("12:05", "cat", 1),
            ("12:05", "dog", 2),
            ("12:10", "dog", 1),
        ]),
        spark_rows(&[
            ("12:00", "dog", 2),
            ("12:05", "dog", 3),
            ("12:05", "owl", 2),
            ("12:10", "cat", 1),
            ("12:10", "owl", 1),
            ("12:15", "cat", 1),
            ("12:15", "owl", 1),
            ("12:20", "owl", 1),
        ]),
        spark_rows(&[("12:10", "owl", 2), ("12:15", "owl", 2)]),
    ];
    assert_eq!(emitted, expected);
    let window = progress.operator("window").unwrap();
    assert_eq!(window.counters.get(LATE_RECORDS), Some(&1), "the donkey");
    assert_eq!(window.counters.get(ROWS_DROPPED_BY_WATERMARK), Some(&2));
}

/// The same in append mode (the guide's second figure): 12:00–12:10 comes out once, final,
/// when the watermark reaches 12:11 — in rivulet at the end of the batch without data
/// after trigger 3, so with trigger 3's output; the donkey does not change it. Nothing else
/// is final by the end of the input.
#[test]
fn sparks_late_data_example_in_append_mode() {
    let (emitted, progress) = run_spark_example(OutputMode::Append);
    let expected = vec![
        spark_rows(&[]),
        spark_rows(&[]),
        spark_rows(&[
            ("12:00", "cat", 1),
            ("12:00", "dog", 2),
            ("12:00", "owl", 1),
        ]),
        spark_rows(&[]),
    ];
    assert_eq!(emitted, expected);
    let window = progress.operator("window").unwrap();
    assert_eq!(window.counters.get(LATE_RECORDS), Some(&1), "the donkey");
    assert_eq!(window.counters.get(ROWS_DROPPED_BY_WATERMARK), Some(&2));
}

// ---------------------------------------------------------------------------------------
// A finite input in micro-batches.

/// The same finite input in micro-batches of different sizes ends with the same append
/// output: once the data is exhausted, the batch without data that the moved watermark
/// calls for runs, so every window `max event time − delay` closes is emitted.
///
/// Found failing at first: the batch without data ran only when the source reported its
/// end in a plan of its own (the last batch was full); when the plan that took the last
/// records also met the end, the query ended with the last batch's watermark. Now every
/// operator downstream of a generator applies the final watermark at end of stream in a
/// micro-batch epoch (`Stage::end_batches`), as that batch would have.
#[test]
fn a_finite_input_closes_the_same_windows_whatever_the_batch_size() {
    let length = 20;
    let delay = 5;
    let records: Vec<Rec> = (0..95u32)
        .map(|id| Rec {
            key: (id % 3) as u8,
            t: i64::from(id) * 10,
            id,
        })
        .collect();
    let final_watermark = records.iter().map(|r| r.t).max().unwrap() - delay;
    let mut expected: BTreeMap<WindowKey, u64> = BTreeMap::new();
    for record in &records {
        let start = record.t.div_euclid(length) * length;
        if start + length <= final_watermark {
            let window = Window {
                start: Timestamp(start),
                end: Timestamp(start + length),
            };
            *expected.entry((record.key, window)).or_default() += 1;
        }
    }
    for max_batch in [5, 10, 19, 95] {
        let mut query = Query::builder();
        query
            .output_mode(OutputMode::Append)
            .trigger(MICRO_BATCH)
            .max_batch_records(max_batch);
        let rows = query
            .from_iter("records", records.clone())
            .with_event_time(event_time)
            .with_watermark(Duration::from_micros(delay as u64))
            .key_by(key_of)
            .window(
                TimeWindows::tumbling(Duration::from_micros(length as u64)).unwrap(),
                event_time,
            )
            .count()
            .to_memory("rows");
        finish_ok(&query.start().expect("start"), "finite input");
        let got: BTreeMap<WindowKey, u64> = rows
            .rows()
            .into_iter()
            .map(|(key, window, count)| ((key, window), count))
            .collect();
        assert_same(
            &format!("max_batch_records({max_batch})"),
            "append output",
            &got,
            &expected,
        );
    }
}

//! Tumbling and sliding event-time windows against a plain sequential reference.
//!
//! Random out-of-order streams (delays, duplicates, times exactly on window boundaries,
//! long gaps, negative times) run through the window operator in a [`Harness`] with a
//! watermark model (watermark = max event time seen − delay, advanced every few records
//! in continuous epochs, at each batch start in micro-batches). The reference is written
//! here without the engine's window code: it lists a record's windows by brute force and
//! keeps for every (key, window) the ids of the records it holds, with the rules of each
//! epoch mode:
//!
//! * micro-batch (Spark 3.4+): a (record, window) pair counts only while
//!   `window.end > ` the watermark the *previous* epoch ended with; windows close with the
//!   batch's own watermark at the batch's end, after its records;
//! * continuous (rivulet's own model): the pair counts while `window.end >` the current
//!   watermark, and windows close as the watermark arrives.
//!
//! After every input event the test compares exactly what the operator emitted and set
//! aside with what the reference says each output mode owes at that point:
//!
//! * append: the windows closed (at the watermark, or at the batch end), each once, with
//!   their final ids;
//! * update, continuous: after each record, every open window of the record;
//! * update, micro-batch: at each batch end, every window changed in the batch (those the
//!   batch's watermark closes included);
//! * update, switching between the two at batch ends;
//! * complete: the whole table at each batch end, nothing ever dropped.
//!
//! Then: a snapshot taken mid-stream and restored into a fresh operator continues
//! identically; state stays bounded over an unbounded key space; end to end through a
//! query (complete and update mode, keyed and global, which need no watermark), with
//! append refused without a watermark and sliding windows refused over an aggregate that
//! cannot merge; and Spark 4's micro-batch rules end to end (append mode, a watermark,
//! batches fed one at a time through a push source), against rows written by hand.

mod common;

use common::{finish_ok, Rng};
use rivulet::aggregate::Aggregate;
use rivulet::operator::Harness;
use rivulet::source::{Source, SourceContext, SourcePoll};
use rivulet::trigger::EmitMode;
use rivulet::window::{
    TimeWindowAggregate, TimeWindows, Window, LATE_RECORDS, ROWS_DROPPED_BY_WATERMARK,
};
use rivulet::{ExecutionMode, OutputMode, Query, Timestamp, Trigger};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// A record: its event time and an id unique in its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Rec {
    t: i64,
    id: u32,
}

/// The ids of a window's records, sorted: says exactly which records a window counted.
#[derive(Debug, Clone)]
struct Ids;

impl Aggregate<Rec> for Ids {
    type Acc = Vec<u32>;
    type Out = Vec<u32>;
    fn init(&self) -> Vec<u32> {
        Vec::new()
    }
    fn add(&self, acc: &mut Vec<u32>, record: &Rec) {
        acc.push(record.id);
    }
    fn merge(&self, acc: &mut Vec<u32>, other: &Vec<u32>) {
        acc.extend_from_slice(other);
    }
    fn result(&self, acc: &Vec<u32>) -> Vec<u32> {
        let mut ids = acc.clone();
        ids.sort_unstable();
        ids
    }
}

/// Sums the ids; cannot merge.
#[derive(Debug, Clone)]
struct SumNoMerge;

impl Aggregate<Rec> for SumNoMerge {
    type Acc = u64;
    type Out = u64;
    fn init(&self) -> u64 {
        0
    }
    fn add(&self, acc: &mut u64, record: &Rec) {
        *acc += u64::from(record.id);
    }
    fn mergeable(&self) -> bool {
        false
    }
    fn merge(&self, _: &mut u64, _: &u64) {
        unreachable!("not mergeable")
    }
    fn result(&self, acc: &u64) -> u64 {
        *acc
    }
}

fn time_of(record: &Rec) -> Timestamp {
    Timestamp(record.t)
}

type Op = TimeWindowAggregate<u8, Rec, Ids, fn(&Rec) -> Timestamp>;
type Row = (u8, Window, Vec<u32>);

/// A window specification, in µs.
#[derive(Debug, Clone, Copy)]
struct Spec {
    length: i64,
    slide: i64,
    offset: i64,
}

impl Spec {
    fn random(rng: &mut Rng) -> Spec {
        let slide = 1 + rng.below(6) as i64;
        let length = match rng.below(3) {
            0 => slide,                                                              // tumbling
            1 => slide * (2 + rng.below(3) as i64), // a multiple of the slide
            _ => slide * (1 + rng.below(3) as i64) + rng.below(slide as u64) as i64, // any
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

    /// The starts of the windows holding `t`, by brute force over slide positions.
    fn starts_of(&self, t: i64) -> Vec<i64> {
        let k = (t - self.offset).div_euclid(self.slide);
        let reach = self.length / self.slide + 2;
        (k - reach..=k + 1)
            .map(|k| self.offset + k * self.slide)
            .filter(|s| *s <= t && t < s + self.length)
            .collect()
    }
}

/// One input event of a test stream.
#[derive(Debug, Clone, Copy)]
enum Ev {
    Record(u8, Rec),
    Watermark(i64),
    /// The end of an epoch (a micro-batch).
    EndEpoch,
}

/// How the events of a stream come: watermarks inside epochs (continuous) or only at
/// epoch starts (micro-batch).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    Continuous,
    MicroBatch,
}

/// A random stream: out of order by up to `spread`, with duplicates, times on window
/// boundaries and long gaps; the watermark is `max seen − delay`, every `every` records.
fn stream(rng: &mut Rng, spec: Spec, shape: Shape, len: usize) -> Vec<Ev> {
    let spread = rng.below(4 * spec.length as u64 + 1) as i64;
    let delay = rng.below(3 * spec.length as u64 + 1) as i64;
    let every = 1 + rng.below(6) as usize;
    let mut base = rng.below(100) as i64 - 50;
    let mut max_seen = i64::MIN;
    let mut events = Vec::new();
    let mut last: Option<(u8, i64)> = None;
    for i in 0..len {
        base += match rng.below(20) {
            0..=7 => 0,
            8..=16 => rng.below(3) as i64,
            17 | 18 => 10 + rng.below(100) as i64,
            _ => 1_000_000_000 + rng.below(1 << 40) as i64, // a long gap
        };
        let (key, t) = match (rng.below(10), last) {
            (0, Some(previous)) => previous, // a duplicate
            (1, _) => {
                // Exactly on a window start or end.
                let t = base - rng.below(spread as u64 + 1) as i64;
                let start = spec.offset + (t - spec.offset).div_euclid(spec.slide) * spec.slide;
                let t = if rng.below(2) == 0 {
                    start
                } else {
                    start + spec.length
                };
                (rng.below(3) as u8, t)
            }
            _ => (
                rng.below(3) as u8,
                base - rng.below(spread as u64 + 1) as i64,
            ),
        };
        last = Some((key, t));
        max_seen = max_seen.max(t);
        events.push(Ev::Record(key, Rec { t, id: i as u32 }));
        if (i + 1) % every == 0 {
            match shape {
                Shape::Continuous => {
                    events.push(Ev::Watermark(max_seen - delay));
                    if rng.below(4) == 0 {
                        events.push(Ev::EndEpoch);
                    }
                }
                Shape::MicroBatch => {
                    // A batch's watermark is the previous batch's max − delay, known
                    // before its records.
                    events.push(Ev::EndEpoch);
                    events.push(Ev::Watermark(max_seen - delay));
                }
            }
        }
    }
    events.push(Ev::EndEpoch);
    if rng.below(2) == 0 {
        events.push(Ev::Watermark(max_seen + spec.length)); // closes every window
    }
    events
}

/// The reference: Spark's semantics as a plain sequential computation.
///
/// A (record, window) pair counts while `window.end > late bound`: in a micro-batch epoch
/// the watermark the previous epoch ended with (Spark 3.4+'s watermark for late events),
/// in a continuous epoch the current watermark. Windows close (are emitted in append mode,
/// forgotten) with the current watermark: in a continuous epoch as it arrives, in a
/// micro-batch at the epoch's end, after its records.
#[derive(Debug, Default)]
struct Reference {
    spec: Option<Spec>,
    complete: bool,
    /// The current watermark.
    watermark: Option<i64>,
    /// The watermark the last epoch ended with.
    previous: Option<i64>,
    /// The watermark windows were closed with.
    closed: Option<i64>,
    /// (key, window start) → ids of the records it counts, in arrival order.
    table: BTreeMap<(u8, i64), Vec<u32>>,
    /// Windows changed since the last epoch end (micro-batch update mode).
    changed: BTreeSet<(u8, i64)>,
    late: u64,
    dropped: u64,
}

impl Reference {
    fn new(spec: Spec, complete: bool) -> Self {
        Reference {
            spec: Some(spec),
            complete,
            ..Reference::default()
        }
    }

    fn spec(&self) -> Spec {
        self.spec.unwrap()
    }

    /// Whether a record of an epoch running in `execution` counts in the window at
    /// `start`.
    fn counts(&self, start: i64, execution: ExecutionMode) -> bool {
        let bound = match execution {
            ExecutionMode::Continuous => self.watermark,
            ExecutionMode::MicroBatch => self.previous,
        };
        self.complete || bound.is_none_or(|w| start + self.spec().length > w)
    }

    /// Whether the window at `start` is still held (not closed).
    fn held(&self, start: i64) -> bool {
        self.complete || self.closed.is_none_or(|w| start + self.spec().length > w)
    }

    /// Adds a record; returns the windows it counts in (empty: late).
    fn record(&mut self, key: u8, record: Rec, execution: ExecutionMode) -> Vec<i64> {
        let all = self.spec().starts_of(record.t);
        let open: Vec<i64> = all
            .iter()
            .copied()
            .filter(|s| self.counts(*s, execution))
            .collect();
        self.dropped += (all.len() - open.len()) as u64;
        if open.is_empty() {
            self.late += 1;
        }
        for start in &open {
            assert!(self.held(*start), "a closed window never takes records");
            self.table.entry((key, *start)).or_default().push(record.id);
            self.changed.insert((key, *start));
        }
        open
    }

    fn row(&self, key: u8, start: i64) -> Row {
        let mut ids = self.table[&(key, start)].clone();
        ids.sort_unstable();
        let window = Window {
            start: Timestamp(start),
            end: Timestamp(start + self.spec().length),
        };
        (key, window, ids)
    }

    /// The watermark moves (if later).
    fn watermark(&mut self, watermark: i64) {
        if self.watermark.is_none_or(|w| watermark > w) {
            self.watermark = Some(watermark);
        }
    }

    /// Closes the windows the current watermark closes; returns those (with data) that
    /// were held until now.
    fn close(&mut self) -> Vec<(u8, i64)> {
        let Some(watermark) = self.watermark else {
            return Vec::new();
        };
        if self.complete || self.closed.is_some_and(|c| watermark <= c) {
            return Vec::new();
        }
        let before = self.closed;
        self.closed = Some(watermark);
        let length = self.spec().length;
        self.table
            .keys()
            .copied()
            .filter(|(_, s)| s + length <= watermark && before.is_none_or(|b| s + length > b))
            .collect()
    }

    /// What an epoch end (or the end of the stream) owes in `output` mode: the whole table
    /// (complete), the changed windows (update: those the epoch's watermark closes
    /// included), then the windows the watermark closes (append).
    fn end_epoch(&mut self, output: OutputMode) -> Vec<Row> {
        let owed = match output {
            OutputMode::Append => Vec::new(),
            OutputMode::Update => {
                let changed: Vec<(u8, i64)> = self.changed.iter().copied().collect();
                changed
            }
            OutputMode::Complete => self.table.keys().copied().collect(),
        };
        let mut rows = expected_rows(self, owed);
        self.changed.clear();
        let closed = self.close();
        if output == OutputMode::Append {
            rows.extend(expected_rows(self, closed));
        }
        self.previous = self.watermark;
        rows
    }
}

/// Rows sorted by (window, key), after checking they came out by window end.
fn by_window(rows: Vec<Row>) -> Vec<Row> {
    assert!(
        rows.windows(2).all(|p| p[0].1.end <= p[1].1.end),
        "rows not in window end order: {rows:?}"
    );
    let mut rows = rows;
    rows.sort_by_key(|r| (r.1, r.0));
    rows
}

fn expected_rows(reference: &Reference, windows: impl IntoIterator<Item = (u8, i64)>) -> Vec<Row> {
    let mut rows: Vec<Row> = windows
        .into_iter()
        .map(|(key, start)| reference.row(key, start))
        .collect();
    rows.sort_by_key(|r| (r.1, r.0));
    rows
}

/// The emit mode after each epoch end: fixed, or switching at random (update mode).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Modes {
    Fixed(EmitMode),
    SwitchingUpdate,
}

/// Runs `events` through the operator and the reference side by side, comparing what
/// the operator emits after every event with what the reference says is owed.
fn check_stream(seed: u64, spec: Spec, events: &[Ev], modes: Modes, rng: &mut Rng) {
    let first = match modes {
        Modes::Fixed(mode) => mode,
        Modes::SwitchingUpdate => EmitMode {
            execution: ExecutionMode::MicroBatch,
            output: OutputMode::Update,
        },
    };
    let mut mode = first;
    let mut h: Harness<(u8, Rec), Op> = Harness::new(TimeWindowAggregate::new(
        spec.windows(),
        Ids,
        time_of as fn(&Rec) -> Timestamp,
    ));
    h.set_emit_mode(mode);
    let mut reference = Reference::new(spec, mode.output == OutputMode::Complete);
    let context = |i: usize| {
        format!(
            "seed {seed}, {spec:?}, {modes:?}, event {i}: {:?}",
            events[i]
        )
    };
    for (i, event) in events.iter().enumerate() {
        let expected = match *event {
            Ev::Record(key, record) => {
                let open = reference.record(key, record, mode.execution);
                let side = h.take_side_output();
                assert!(side.is_empty());
                h.push((key, record));
                let late: Vec<Rec> = if open.is_empty() {
                    vec![record]
                } else {
                    vec![]
                };
                assert_eq!(h.take_side_output(), late, "{}", context(i));
                if (mode.output, mode.execution) == (OutputMode::Update, ExecutionMode::Continuous)
                {
                    reference.changed.clear();
                    // Exactly the record's open windows, by window end (one key).
                    let rows: Vec<Row> = open.iter().map(|s| reference.row(key, *s)).collect();
                    assert_eq!(h.take_output(), rows, "{}", context(i));
                    continue;
                }
                if mode.output != OutputMode::Update {
                    reference.changed.clear();
                }
                Vec::new()
            }
            Ev::Watermark(watermark) => {
                h.advance_watermark(Timestamp(watermark));
                reference.watermark(watermark);
                if mode.execution == ExecutionMode::Continuous {
                    // Continuous update mode has no changes pending (they went out with
                    // their records).
                    let closed = reference.close();
                    match mode.output {
                        OutputMode::Append => expected_rows(&reference, closed),
                        _ => Vec::new(),
                    }
                } else {
                    Vec::new() // a micro-batch closes windows at its end
                }
            }
            Ev::EndEpoch => {
                h.end_epoch();
                let owed = reference.end_epoch(mode.output);
                if modes == Modes::SwitchingUpdate && rng.below(3) == 0 {
                    mode.execution = match mode.execution {
                        ExecutionMode::Continuous => ExecutionMode::MicroBatch,
                        ExecutionMode::MicroBatch => ExecutionMode::Continuous,
                    };
                    h.set_emit_mode(mode);
                }
                owed
            }
        };
        assert_eq!(
            by_window(h.take_output()),
            by_window(expected),
            "{}",
            context(i)
        );
    }
    assert_eq!(h.counter(LATE_RECORDS), reference.late, "seed {seed}");
    assert_eq!(
        h.counter(ROWS_DROPPED_BY_WATERMARK),
        reference.dropped,
        "seed {seed}"
    );
    // The end of the stream owes what an epoch end would.
    h.end();
    let owed = reference.end_epoch(mode.output);
    assert_eq!(
        by_window(h.take_output()),
        by_window(owed),
        "seed {seed}: end"
    );
    // Append and update keep only slices some open window needs.
    if mode.output != OutputMode::Complete {
        if let Some(closed) = reference.closed {
            let needed = reference
                .table
                .keys()
                .filter(|(_, s)| s + spec.length > closed)
                .count();
            if needed == 0 {
                assert_eq!(h.operator().stored_slices(), 0, "seed {seed}");
            }
        }
    }
}

fn emit_mode(execution: ExecutionMode, output: OutputMode) -> EmitMode {
    EmitMode { execution, output }
}

const SEEDS: u64 = 300;

#[test]
fn append_mode_emits_each_window_once_when_the_watermark_passes_it() {
    for seed in 0..SEEDS {
        let mut rng = Rng::new(seed);
        let spec = Spec::random(&mut rng);
        for (shape, execution) in [
            (Shape::Continuous, ExecutionMode::Continuous),
            (Shape::MicroBatch, ExecutionMode::MicroBatch),
        ] {
            let events = stream(&mut rng, spec, shape, 150);
            let mode = Modes::Fixed(emit_mode(execution, OutputMode::Append));
            check_stream(seed, spec, &events, mode, &mut rng);
        }
    }
}

#[test]
fn update_mode_emits_the_changed_open_windows() {
    for seed in 0..SEEDS {
        let mut rng = Rng::new(seed ^ 0x5eed);
        let spec = Spec::random(&mut rng);
        for (shape, execution) in [
            (Shape::Continuous, ExecutionMode::Continuous),
            (Shape::MicroBatch, ExecutionMode::MicroBatch),
            // A watermark inside a micro-batch epoch (not what the engine does, but the
            // operator must not lose updates when it happens).
            (Shape::Continuous, ExecutionMode::MicroBatch),
        ] {
            let events = stream(&mut rng, spec, shape, 150);
            let mode = Modes::Fixed(emit_mode(execution, OutputMode::Update));
            check_stream(seed, spec, &events, mode, &mut rng);
        }
    }
}

#[test]
fn update_mode_survives_trigger_switches() {
    for seed in 0..SEEDS {
        let mut rng = Rng::new(seed ^ 0xc0ffee);
        let spec = Spec::random(&mut rng);
        let events = stream(&mut rng, spec, Shape::MicroBatch, 150);
        check_stream(seed, spec, &events, Modes::SwitchingUpdate, &mut rng);
    }
}

#[test]
fn complete_mode_emits_the_whole_table_and_drops_nothing() {
    for seed in 0..SEEDS {
        let mut rng = Rng::new(seed ^ 0xab);
        let spec = Spec::random(&mut rng);
        for (shape, execution) in [
            (Shape::Continuous, ExecutionMode::Continuous),
            (Shape::MicroBatch, ExecutionMode::MicroBatch),
        ] {
            let events = stream(&mut rng, spec, shape, 80);
            let mode = Modes::Fixed(emit_mode(execution, OutputMode::Complete));
            check_stream(seed, spec, &events, mode, &mut rng);
        }
    }
}

/// Runs `events` on `h`, returning everything it emitted and set aside, per event.
fn drive(h: &mut Harness<(u8, Rec), Op>, events: &[Ev]) -> Vec<(Vec<Row>, Vec<Rec>)> {
    events
        .iter()
        .map(|event| {
            match *event {
                Ev::Record(key, record) => h.push((key, record)),
                Ev::Watermark(w) => h.advance_watermark(Timestamp(w)),
                Ev::EndEpoch => h.end_epoch(),
            }
            // Within one call rows come by window end, keys in no particular order.
            (by_window(h.take_output()), h.take_side_output())
        })
        .collect()
}

#[test]
fn a_restored_snapshot_continues_identically() {
    for seed in 0..SEEDS {
        let mut rng = Rng::new(seed ^ 0x5a);
        let spec = Spec::random(&mut rng);
        for output in [OutputMode::Append, OutputMode::Update, OutputMode::Complete] {
            for (shape, execution) in [
                (Shape::Continuous, ExecutionMode::Continuous),
                (Shape::MicroBatch, ExecutionMode::MicroBatch),
            ] {
                let events = stream(&mut rng, spec, shape, 100);
                let mode = emit_mode(execution, output);
                let cut = rng.below(events.len() as u64) as usize;
                let make = || {
                    TimeWindowAggregate::new(spec.windows(), Ids, time_of as fn(&Rec) -> Timestamp)
                };
                let mut original = Harness::new(make());
                original.set_emit_mode(mode);
                drive(&mut original, &events[..cut]);
                let snapshot = original.snapshot().unwrap();
                let mut restored = Harness::restore(make(), snapshot.as_deref()).unwrap();
                restored.set_emit_mode(mode);
                let a = drive(&mut original, &events[cut..]);
                let b = drive(&mut restored, &events[cut..]);
                assert_eq!(a, b, "seed {seed}, {spec:?}, {mode:?}, cut at {cut}");
                original.end();
                restored.end();
                assert_eq!(
                    by_window(original.take_output()),
                    by_window(restored.take_output())
                );
                assert_eq!(
                    original.operator().stored_accumulators(),
                    restored.operator().stored_accumulators()
                );
            }
        }
    }
}

#[test]
fn state_stays_bounded_over_an_unbounded_key_space() {
    // 1 ms windows sliding every 100 µs, a record every 10 µs (up to 300 µs late) with a
    // key never seen before, the watermark 500 µs behind the newest record, advanced
    // every 10 records: an open window needs at most ~1 ms + 500 µs + 300 µs + 100 µs of
    // slices, each record one accumulator.
    let windows =
        TimeWindows::sliding(Duration::from_micros(1000), Duration::from_micros(100)).unwrap();
    let run = |mode: EmitMode, epochs: bool| {
        let mut h = Harness::new(TimeWindowAggregate::new(
            windows,
            Ids,
            time_of as fn(&Rec) -> Timestamp,
        ));
        h.set_emit_mode(mode);
        let mut rng = Rng::new(9);
        let mut max_seen = 0;
        let (mut most_slices, mut most_accumulators, mut emitted) = (0, 0, 0);
        for i in 0..20_000u32 {
            let t = i64::from(i) * 10 - rng.below(300) as i64;
            max_seen = max_seen.max(t);
            h.push((u64::from(i), Rec { t, id: i }));
            if i % 10 == 9 {
                if epochs {
                    h.end_epoch();
                }
                h.advance_watermark(Timestamp(max_seen - 500));
            }
            emitted += h.take_output().len();
            if i % 10 == 0 || i == 19_999 {
                most_slices = most_slices.max(h.operator().stored_slices());
                most_accumulators = most_accumulators.max(h.operator().stored_accumulators());
            }
        }
        (emitted, most_slices, most_accumulators)
    };
    for output in [OutputMode::Append, OutputMode::Update] {
        for execution in [ExecutionMode::Continuous, ExecutionMode::MicroBatch] {
            let (emitted, slices, accumulators) = run(emit_mode(execution, output), true);
            // Every record is in 10 windows; none is late (300 µs < 500 µs).
            assert!(
                emitted >= 20_000 * 10 * 9 / 10,
                "{output:?} {execution:?}: {emitted}"
            );
            assert!(slices <= 20, "{output:?} {execution:?}: {slices} slices");
            assert!(
                accumulators <= 200,
                "{output:?} {execution:?}: {accumulators} accumulators"
            );
        }
    }
    // Complete mode keeps everything (as Spark): the bound above is not a coincidence.
    // (Without epoch ends: emitting the whole table every 10 records would be slow.)
    let complete = emit_mode(ExecutionMode::MicroBatch, OutputMode::Complete);
    let (_, slices, accumulators) = run(complete, false);
    assert!(
        slices >= 2000 && accumulators == 20_000,
        "{slices} {accumulators}"
    );
}

impl Aggregate<(u8, Rec)> for Ids {
    type Acc = Vec<u32>;
    type Out = Vec<u32>;
    fn init(&self) -> Vec<u32> {
        Vec::new()
    }
    fn add(&self, acc: &mut Vec<u32>, (_, record): &(u8, Rec)) {
        acc.push(record.id);
    }
    fn merge(&self, acc: &mut Vec<u32>, other: &Vec<u32>) {
        acc.extend_from_slice(other);
    }
    fn result(&self, acc: &Vec<u32>) -> Vec<u32> {
        let mut ids = acc.clone();
        ids.sort_unstable();
        ids
    }
}

impl Aggregate<(u8, Rec)> for SumNoMerge {
    type Acc = u64;
    type Out = u64;
    fn init(&self) -> u64 {
        0
    }
    fn add(&self, acc: &mut u64, (_, record): &(u8, Rec)) {
        *acc += u64::from(record.id);
    }
    fn mergeable(&self) -> bool {
        false
    }
    fn merge(&self, _: &mut u64, _: &u64) {
        unreachable!("not mergeable")
    }
    fn result(&self, acc: &u64) -> u64 {
        *acc
    }
}

/// `n` keyed records, out of order, with duplicates of times and keys.
fn keyed_records(seed: u64, n: u32) -> Vec<(u8, Rec)> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|id| {
            let t = i64::from(id) * 3 - rng.below(40) as i64;
            (rng.below(4) as u8, Rec { t, id })
        })
        .collect()
}

/// Every (key, window start) → sorted ids, with nothing dropped (no watermark).
fn full_table(spec: Spec, records: &[(u8, Rec)]) -> BTreeMap<(u8, i64), Vec<u32>> {
    let mut table: BTreeMap<(u8, i64), Vec<u32>> = BTreeMap::new();
    for (key, record) in records {
        for start in spec.starts_of(record.t) {
            table.entry((*key, start)).or_default().push(record.id);
        }
    }
    for ids in table.values_mut() {
        ids.sort_unstable();
    }
    table
}

fn key_time(record: &(u8, Rec)) -> Timestamp {
    Timestamp(record.1.t)
}

const SPECS: [Spec; 3] = [
    Spec {
        length: 10,
        slide: 10,
        offset: 0,
    },
    Spec {
        length: 30,
        slide: 10,
        offset: 3,
    },
    Spec {
        length: 25,
        slide: 10,
        offset: 0,
    },
];

fn triggers() -> [Option<Trigger>; 2] {
    [None, Some(Trigger::AvailableNow)]
}

#[test]
fn complete_mode_end_to_end_keyed_and_global() {
    for spec in SPECS {
        for trigger in triggers() {
            let records = keyed_records(1, 500);
            let mut query = Query::builder();
            if let Some(trigger) = trigger {
                query.trigger(trigger);
            }
            query
                .output_mode(OutputMode::Complete)
                .parallelism(2)
                .max_batch_records(37);
            let [keyed, global] = query
                .from_iter("records", records.clone())
                .fan_out(2)
                .try_into()
                .unwrap();
            let keyed = keyed
                .key_by(|(key, _)| *key)
                .window(spec.windows(), key_time)
                .agg(Ids)
                .to_memory("keyed");
            let late = std::rc::Rc::new(std::cell::RefCell::new(None));
            let late_table = late.clone();
            let global = global
                .window(spec.windows(), key_time)
                .late_records(move |stream| {
                    *late_table.borrow_mut() = Some(stream.to_memory("late"));
                })
                .agg(Ids)
                .to_memory("global");
            let running = query
                .start()
                .expect("complete mode starts without a watermark");
            finish_ok(&running, "complete mode windows");
            let what = format!("{spec:?}, {trigger:?}");
            let expected = full_table(spec, &records);
            let mut got: Vec<((u8, i64), Vec<u32>)> = keyed
                .rows()
                .into_iter()
                .map(|(key, w, ids)| {
                    assert_eq!(w.end.0 - w.start.0, spec.length);
                    ((key, w.start.0), ids)
                })
                .collect();
            got.sort();
            assert_eq!(
                got,
                expected.clone().into_iter().collect::<Vec<_>>(),
                "{what}"
            );
            let mut merged: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
            for ((_, start), ids) in expected {
                merged.entry(start).or_default().extend(ids);
            }
            for ids in merged.values_mut() {
                ids.sort_unstable();
            }
            let mut got: Vec<(i64, Vec<u32>)> = global
                .rows()
                .into_iter()
                .map(|(w, ids)| (w.start.0, ids))
                .collect();
            got.sort();
            assert_eq!(got, merged.into_iter().collect::<Vec<_>>(), "{what}");
            let late = late.borrow_mut().take().unwrap();
            assert!(
                late.rows().is_empty(),
                "{what}: complete mode drops nothing"
            );
        }
    }
}

#[test]
fn update_mode_end_to_end_ends_at_the_reference() {
    for spec in SPECS {
        for trigger in triggers() {
            let records = keyed_records(2, 500);
            let mut query = Query::builder();
            if let Some(trigger) = trigger {
                query.trigger(trigger);
            }
            query
                .output_mode(OutputMode::Update)
                .parallelism(2)
                .max_batch_records(37);
            let rows = query
                .from_iter("records", records.clone())
                .key_by(|(key, _)| *key)
                .window(spec.windows(), key_time)
                .agg(Ids)
                .to_memory("rows");
            let running = query
                .start()
                .expect("update mode starts without a watermark");
            finish_ok(&running, "update mode windows");
            // The last value of each window is the reference; every update is a prefix.
            let expected = full_table(spec, &records);
            let mut last: BTreeMap<(u8, i64), Vec<u32>> = BTreeMap::new();
            for (key, w, ids) in rows.rows() {
                let previous = last.insert((key, w.start.0), ids.clone());
                if let Some(previous) = previous {
                    assert!(previous.iter().all(|id| ids.contains(id)));
                }
            }
            assert_eq!(last, expected, "{spec:?}, {trigger:?}");
        }
    }
}

/// One instance's share of a list of records (instance `i` takes every `n`-th).
struct Share {
    records: Vec<(u8, Rec)>,
    next: usize,
    step: usize,
}

impl Source for Share {
    type Item = (u8, Rec);
    fn open(&mut self, context: &SourceContext) -> Result<(), rivulet::error::BoxError> {
        self.next = context.instance;
        self.step = context.instances;
        Ok(())
    }
    fn poll_next(&mut self) -> SourcePoll<(u8, Rec)> {
        match self.records.get(self.next) {
            Some(record) => {
                self.next += self.step;
                SourcePoll::Ready(*record)
            }
            None => SourcePoll::Exhausted,
        }
    }
}

#[test]
fn global_windows_after_a_parallel_upstream() {
    let spec = SPECS[1];
    let records = keyed_records(3, 400);
    let mut query = Query::builder();
    query.output_mode(OutputMode::Complete);
    let source = query.source_instances("records", 3, |_| Share {
        records: records.clone(),
        next: 0,
        step: 1,
    });
    assert_eq!(source.parallelism(), 3);
    let counts = source
        .window(spec.windows(), key_time)
        .agg(Ids)
        .to_memory("counts");
    let running = query.start().unwrap();
    finish_ok(&running, "global windows");
    let mut expected: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
    for (_, record) in &records {
        for start in spec.starts_of(record.t) {
            expected.entry(start).or_default().push(record.id);
        }
    }
    let mut got: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
    for (w, ids) in counts.rows() {
        assert!(got.insert(w.start.0, ids).is_none(), "one row per window");
    }
    for ids in expected.values_mut() {
        ids.sort_unstable();
    }
    assert_eq!(got, expected);
    let progress = running.progress();
    assert!(progress.operator("window").is_some());
}

#[test]
fn append_mode_without_a_watermark_is_refused() {
    let mut query = Query::builder();
    query.output_mode(OutputMode::Append);
    let _rows = query
        .from_iter("records", keyed_records(4, 10))
        .key_by(|(key, _)| *key)
        .window(SPECS[0].windows(), key_time)
        .count()
        .to_memory("rows");
    let error = query.start().map(|_| ()).unwrap_err().to_string();
    assert!(error.contains("watermark"), "{error}");
    assert!(error.contains("`window`"), "{error}");
}

#[test]
fn sliding_windows_refuse_an_aggregate_that_cannot_merge() {
    let mut query = Query::builder();
    query.output_mode(OutputMode::Complete);
    let _rows = query
        .from_iter("records", keyed_records(5, 10))
        .key_by(|(key, _)| *key)
        .window(SPECS[1].windows(), key_time)
        .agg(SumNoMerge)
        .to_memory("rows");
    let error = query.start().map(|_| ()).unwrap_err().to_string();
    assert!(
        error.contains("`window`") && error.contains("mergeable"),
        "{error}"
    );

    // Tumbling windows never merge: the same aggregate runs.
    let records = keyed_records(5, 200);
    let mut query = Query::builder();
    query.output_mode(OutputMode::Complete);
    let rows = query
        .from_iter("records", records.clone())
        .key_by(|(key, _)| *key)
        .window(SPECS[0].windows(), key_time)
        .agg(SumNoMerge)
        .to_memory("rows");
    finish_ok(&query.start().unwrap(), "tumbling, not mergeable");
    let expected: BTreeMap<(u8, i64), u64> = full_table(SPECS[0], &records)
        .into_iter()
        .map(|(k, ids)| (k, ids.iter().map(|id| u64::from(*id)).sum()))
        .collect();
    let got: BTreeMap<(u8, i64), u64> = rows
        .rows()
        .into_iter()
        .map(|(key, w, sum)| ((key, w.start.0), sum))
        .collect();
    assert_eq!(got, expected);
}

/// Holds a micro-batch's records on the source's thread until the test lets them pass,
/// so that the test can queue the next batch's records while this batch's plan is fixed
/// and before the next batch is planned (which happens once this one is complete): batch
/// boundaries are then exactly where the test puts them, with no batch without data
/// between two batches with data.
#[derive(Default)]
struct Gate {
    /// (records seen, records allowed through, the epoch of each record seen).
    state: std::sync::Mutex<(u64, u64, Vec<u64>)>,
    changed: std::sync::Condvar,
}

impl Gate {
    /// Waits (hang guard) until `n` records reached the gate.
    fn wait_seen(&self, n: u64) {
        let deadline = std::time::Instant::now() + common::HANG_GUARD;
        let mut state = self.state.lock().unwrap();
        while state.0 < n {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            assert!(!left.is_zero(), "{n} records never reached the gate (hang)");
            state = self.changed.wait_timeout(state, left).unwrap().0;
        }
    }

    /// Lets the first `n` records through.
    fn allow(&self, n: u64) {
        self.state.lock().unwrap().1 = n;
        self.changed.notify_all();
    }

    /// The epochs the records ran in, in order.
    fn epochs(&self) -> Vec<u64> {
        self.state.lock().unwrap().2.clone()
    }
}

/// The operator in front of the gate: notes the record's epoch, waits to be let through.
#[derive(Clone)]
struct GateOp(std::sync::Arc<Gate>);

impl rivulet::operator::Operator<Rec> for GateOp {
    type Out = Rec;
    type Key = ();
    type Side = ();

    fn on_record<C: rivulet::operator::Context<Rec>>(&mut self, record: Rec, ctx: &mut C) {
        let gate = &self.0;
        let mut state = gate.state.lock().unwrap();
        state.0 += 1;
        state.2.push(ctx.epoch().0);
        let me = state.0;
        gate.changed.notify_all();
        // A hang guard too: a failed test must not leave the query stuck here.
        let deadline = std::time::Instant::now() + common::HANG_GUARD;
        while state.1 < me {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            state = gate.changed.wait_timeout(state, left).unwrap().0;
        }
        drop(state);
        ctx.push(record);
    }
}

/// Tags each row with the epoch that emitted it.
#[derive(Clone)]
struct TagEpoch;

impl rivulet::operator::Operator<(Window, Vec<u32>)> for TagEpoch {
    type Out = (u64, Window, Vec<u32>);
    type Key = ();
    type Side = ();

    fn on_record<C: rivulet::operator::Context<Self::Out>>(
        &mut self,
        (window, ids): (Window, Vec<u32>),
        ctx: &mut C,
    ) {
        ctx.push((ctx.epoch().0, window, ids));
    }
}

/// Spark 4's micro-batch rules end to end, through a query: tumbling windows of 10 µs,
/// a watermark 5 µs behind the largest event time, append mode, batches fed one at a time
/// through a push source. Batch `b` runs under `wm(b)` = the largest event time of the
/// batches before it − 5, judges records late by `wm(b − 1)`, and emits the windows with
/// `end <= wm(b)` at its end. Written out by hand:
///
/// | batch | records (id: time) | watermark | late bound | emitted at its end |
/// |---|---|---|---|---|
/// | 0 | 0: 1, 1: 21 | none | none | |
/// | 1 | 2: 3, 3: 12 | 16 | none | [0, 10) {0, 2} (3 counts: 10 > none) |
/// | 2 | 4: 4, 5: 35 | 16 | 16 | (4 is late: 10 <= 16) |
/// | 3 | 6: 15, 7: 45 | 30 | 16 | [10, 20) {3, 6}, [20, 30) {1} (15 counts: 20 > 16) |
/// | 4, without data | | 40 | 30 | [30, 40) {5} |
///
/// [40, 50) {7} stays open: nothing moves the watermark past 40. The rule Spark used
/// before 3.4 (and rivulet before this change), judging by the batch's own watermark,
/// would have dropped records 2 and 6 as late and emitted [0, 10) at the start of batch 1.
#[test]
fn micro_batches_follow_spark_4_end_to_end() {
    let rec = |id: u32, t: i64| Rec { t, id };
    let batches: [Vec<Rec>; 4] = [
        vec![rec(0, 1), rec(1, 21)],
        vec![rec(2, 3), rec(3, 12)],
        vec![rec(4, 4), rec(5, 35)],
        vec![rec(6, 15), rec(7, 45)],
    ];
    let gate = std::sync::Arc::new(Gate::default());
    let mut query = Query::builder();
    query
        .output_mode(OutputMode::Append)
        .trigger(Trigger::MicroBatch {
            interval: Duration::ZERO,
        });
    let (handle, records) = query.push_source::<Rec>("records");
    let late = std::rc::Rc::new(std::cell::RefCell::new(None));
    let late_table = late.clone();
    let rows = records
        .operator("gate", GateOp(gate.clone()))
        .with_event_time(time_of)
        .with_watermark(Duration::from_micros(5))
        .window(SPECS[0].windows(), time_of)
        .late_records(move |stream| {
            *late_table.borrow_mut() = Some(stream.to_memory("late"));
        })
        .agg(Ids)
        .operator("tag", TagEpoch)
        .to_memory("rows");
    // Batch 0 is queued before the start: the first batch, planned at once, takes it.
    for record in &batches[0] {
        handle.push(*record).unwrap();
    }
    let running = query.start().expect("append mode with a watermark starts");
    let mut through = 0;
    for (b, batch) in batches.iter().enumerate() {
        // Batch `b` is released (its first record reached the gate): queue the next one,
        // which its plan cannot take any more, then let batch `b` finish.
        gate.wait_seen(through + 1);
        if let Some(next) = batches.get(b + 1) {
            for record in next {
                handle.push(*record).unwrap();
            }
        }
        through += batch.len() as u64;
        gate.allow(through);
    }
    gate.wait_seen(through);
    let epochs = gate.epochs();
    let first = epochs[0];
    let batch_epochs: Vec<u64> = (0..4).map(|b| first + b).collect();
    let expected_epochs: Vec<u64> = batch_epochs.iter().flat_map(|e| [*e, *e]).collect();
    assert_eq!(
        epochs, expected_epochs,
        "two records per batch, batches back to back"
    );
    // The batch without data after batch 3 (its watermark moved from 30 to 40).
    let no_data = first + 4;
    common::wait_until("the batch without data completes", || {
        let progress = running.progress();
        let checkpoint = progress.checkpoint.as_ref().expect("epoch stats");
        checkpoint
            .last_complete_epoch
            .is_some_and(|epoch| epoch >= no_data)
    });
    let progress = running.progress();
    let checkpoint = progress.checkpoint.as_ref().unwrap();
    let input_rows: Vec<(u64, Option<u64>)> = checkpoint
        .recent
        .iter()
        .map(|report| (report.epoch, report.input_rows))
        .filter(|(epoch, _)| (first..=no_data).contains(epoch))
        .collect();
    assert_eq!(
        input_rows,
        vec![
            (first, Some(2)),
            (first + 1, Some(2)),
            (first + 2, Some(2)),
            (first + 3, Some(2)),
            (no_data, Some(0)),
        ]
    );
    let window = progress.operator("window").expect("the window operator");
    assert_eq!(window.records_in, 8);
    assert_eq!(window.counters.get(LATE_RECORDS), Some(&1));
    assert_eq!(window.counters.get(ROWS_DROPPED_BY_WATERMARK), Some(&1));
    drop(handle);
    finish_ok(&running, "Spark 4 micro-batches");

    let w = |start: i64| Window {
        start: Timestamp(start),
        end: Timestamp(start + 10),
    };
    assert_eq!(
        rows.rows(),
        vec![
            (first + 1, w(0), vec![0, 2]),
            (first + 3, w(10), vec![3, 6]),
            (first + 3, w(20), vec![1]),
            (no_data, w(30), vec![5]),
        ]
    );
    let late = late.borrow_mut().take().unwrap();
    assert_eq!(late.rows(), vec![rec(4, 4)]);
}

//! Spark Streaming's (DStream) window operations by processing time, against sequential
//! references.
//!
//! * Through [`Harness`], on schedules of records, clock moves and markers: the rows of
//!   `reduce_by_key_and_window` equal a plain computation over the records' arrival times
//!   (continuous epochs) or batch slots (micro-batch epochs), step by step, so a window
//!   comes out exactly when its end passes (timer) or at the end of the batch of its last
//!   slot. The incremental form (`_inv`) gives the same rows as the plain one on random
//!   schedules that also switch modes, put batches in already closed slots and restore
//!   from snapshots; a snapshot/restore round trip changes nothing.
//! * Batches that share a slot, skipped batches (the timer's batch without data emits
//!   the window), refusal of durations that are not multiples of the micro-batch
//!   interval (at `start()`, whenever the trigger was set), of an available-now trigger
//!   and of invalid windows.
//! * Running queries on a `ManualClock`: Spark's windowed word count
//!   (`reduceByKeyAndWindow(_ + _, Seconds(30), Seconds(10))`), in continuous and
//!   micro-batch mode, `count_by_window`, `window_by_processing_time`,
//!   `count_by_value_and_window`, and a checkpointed stop and restart that carries an
//!   open window over.
//!
//! Waits are hang guards only (see `common`).

mod common;

use common::{finish_ok, wait_until, HANG_GUARD};
use proptest::prelude::*;
use rivulet::checkpoint::{CheckpointConfig, Durability};
use rivulet::error::BoxError;
use rivulet::operator::{Harness, Operator};
use rivulet::sink::{EpochCommit, Sink};
use rivulet::time::ManualClock;
use rivulet::trigger::EmitMode;
use rivulet::window::processing::{KeyedRows, ProcessingWindows, SliceFold};
use rivulet::window::Window;
use rivulet::{Epoch, ExecutionMode, OutputMode, Query, Timestamp, Trigger};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Row = (u32, Window, i64);

fn us(micros: u64) -> Duration {
    Duration::from_micros(micros)
}

fn window(end: i64, length: i64) -> Window {
    Window {
        start: Timestamp(end - length),
        end: Timestamp(end),
    }
}

fn add(a: &mut i64, b: i64) {
    *a += b;
}

fn sub(a: &mut i64, b: i64) {
    *a -= b;
}

/// One step of a harness schedule.
#[derive(Debug, Clone)]
enum Step {
    /// Processing time moves to (at least) this.
    Clock(i64),
    /// A record `(key, value)` arrives.
    Record(u32, i64),
    /// The epoch (batch) ends.
    Marker,
    /// The following epochs run in micro-batches (`true`) or continuously.
    Mode(bool),
    /// The operator is snapshotted and replaced by a restored copy.
    Restore,
}

fn emit_mode(micro_batch: bool) -> EmitMode {
    EmitMode {
        execution: if micro_batch {
            ExecutionMode::MicroBatch
        } else {
            ExecutionMode::Continuous
        },
        output: OutputMode::Update,
    }
}

/// Runs `steps` on the operator `make` builds, starting in micro-batch epochs if
/// `micro_batch`; returns the rows emitted at each step, sorted within the step.
fn run<F>(
    make: impl Fn() -> ProcessingWindows<u32, i64, F, KeyedRows>,
    micro_batch: bool,
    steps: &[Step],
) -> Vec<Vec<Row>>
where
    ProcessingWindows<u32, i64, F, KeyedRows>: Operator<(u32, i64), Out = Row, Key = ()>,
{
    let mut harness = Harness::new(make());
    let mut mode = micro_batch;
    harness.set_emit_mode(emit_mode(mode));
    let mut now = i64::MIN;
    let mut out = Vec::new();
    for step in steps {
        match step {
            Step::Clock(t) => {
                now = now.max(*t);
                harness.set_processing_time(Timestamp(*t));
            }
            Step::Record(key, value) => harness.push((*key, *value)),
            Step::Marker => harness.end_epoch(),
            Step::Mode(micro) => {
                mode = *micro;
                harness.set_emit_mode(emit_mode(mode));
            }
            Step::Restore => {
                let snapshot = harness.snapshot().unwrap();
                harness = Harness::restore(make(), snapshot.as_deref()).unwrap();
                harness.set_emit_mode(emit_mode(mode));
                if now > i64::MIN {
                    harness.set_processing_time(Timestamp(now));
                }
            }
        }
        let mut rows = harness.take_output();
        rows.sort();
        out.push(rows);
    }
    out
}

/// The plain sequential reference of a schedule without batches in closed slots: every
/// record has a time (its arrival time in continuous epochs, the start of its batch's
/// slot in micro-batch epochs); a window `[end − length, end)`, `end` a multiple of
/// `slide`, is emitted once, with per key the sum of its records, at the first step at
/// which the horizon (the clock in continuous epochs; a marker's time rounded down to the
/// interval in micro-batch ones) reaches `end`, if it holds records.
fn reference(
    steps: &[Step],
    micro_batch: bool,
    length: i64,
    slide: i64,
    interval: i64,
) -> Vec<Vec<Row>> {
    let mut timed: Vec<(i64, u32, i64)> = Vec::new();
    let mut batch: Vec<(u32, i64)> = Vec::new();
    let mut now = 0; // where the harness's clock starts
    let mut reached = i64::MIN; // windows ending at or before this were handled
    let mut out = Vec::new();
    for step in steps {
        let mut horizon = None;
        match step {
            Step::Clock(t) => {
                now = now.max(*t);
                if !micro_batch {
                    horizon = Some(now);
                }
            }
            Step::Record(key, value) => {
                if micro_batch {
                    batch.push((*key, *value));
                } else {
                    timed.push((now, *key, *value));
                }
            }
            Step::Marker => {
                if micro_batch {
                    let h = now.div_euclid(interval) * interval;
                    timed.extend(batch.drain(..).map(|(k, v)| (h - interval, k, v)));
                    horizon = Some(h);
                }
            }
            Step::Mode(_) | Step::Restore => unreachable!("not in reference schedules"),
        }
        let mut rows = Vec::new();
        if let Some(h) = horizon {
            if h > reached {
                let first = if reached == i64::MIN {
                    timed.iter().map(|(t, _, _)| *t).min().unwrap_or(h)
                } else {
                    reached
                };
                let mut end = first.div_euclid(slide) * slide + slide;
                while end <= h {
                    if end > reached {
                        let mut sums: BTreeMap<u32, i64> = BTreeMap::new();
                        for (t, k, v) in &timed {
                            if end - length <= *t && *t < end {
                                *sums.entry(*k).or_default() += v;
                            }
                        }
                        rows.extend(sums.into_iter().map(|(k, v)| (k, window(end, length), v)));
                    }
                    end += slide;
                }
                reached = h;
            }
        }
        rows.sort();
        out.push(rows);
    }
    out
}

fn plain(length: i64, slide: i64, interval: Option<i64>) -> impl Fn() -> PlainOp {
    move || {
        let op = ProcessingWindows::reduce(
            add as fn(&mut i64, i64),
            us(length as u64),
            us(slide as u64),
        )
        .unwrap();
        match interval {
            Some(i) => op.with_batch_interval(us(i as u64)).unwrap(),
            None => op,
        }
    }
}

fn incremental(length: i64, slide: i64, interval: Option<i64>) -> impl Fn() -> InvOp {
    move || {
        let op = ProcessingWindows::reduce_inv(
            add as fn(&mut i64, i64),
            sub as fn(&mut i64, i64),
            us(length as u64),
            us(slide as u64),
        )
        .unwrap();
        match interval {
            Some(i) => op.with_batch_interval(us(i as u64)).unwrap(),
            None => op,
        }
    }
}

type PlainOp = ProcessingWindows<u32, i64, rivulet::window::processing::Reduce<fn(&mut i64, i64)>>;
type InvOp = ProcessingWindows<
    u32,
    i64,
    rivulet::window::processing::ReduceInv<fn(&mut i64, i64), fn(&mut i64, i64)>,
>;

// ---------------------------------------------------------------------------------------
// Harness: fixed schedules.

/// Spark's windowed word count shape (30 s windows every 10 s; seconds here are 1 µs)
/// in continuous epochs: a window comes out when the clock passes its end, by timer, with
/// no record arriving then; records at exactly a window's end belong to the next ones.
#[test]
fn continuous_windows_follow_arrival_time_and_fire_by_timer() {
    use Step::*;
    let steps = [
        Clock(3),
        Record(1, 1),
        Record(2, 1),
        Clock(10), // window [-20, 10) ends
        Record(1, 1),
        Clock(25),
        Record(3, 1),
        Clock(30),
        Clock(55),
        Clock(100),
    ];
    let got = run(plain(30, 10, None), false, &steps);
    let expected = reference(&steps, false, 30, 10, 1);
    assert_eq!(got, expected);
    let w = |end| window(end, 30);
    assert_eq!(got[3], vec![(1, w(10), 1), (2, w(10), 1)]);
    assert_eq!(got[5], vec![(1, w(20), 2), (2, w(20), 1)]);
    assert_eq!(got[7], vec![(1, w(30), 2), (2, w(30), 1), (3, w(30), 1)]);
    assert_eq!(got[8], vec![(1, w(40), 1), (3, w(40), 1), (3, w(50), 1)]);
    assert!(got[9].is_empty(), "an empty window emitted: {:?}", got[9]);
    assert_eq!(run(incremental(30, 10, None), false, &steps), got);
}

/// Micro-batch epochs with an interval of 10: a batch fills the slot before its marker's
/// time rounded down to the interval, and the window ending there comes out at that
/// marker, whatever the clock read when its records arrived.
#[test]
fn micro_batch_windows_follow_batch_slots() {
    use Step::*;
    let steps = [
        Clock(12),
        Record(1, 5),
        Clock(19), // arrival times do not matter
        Record(2, 7),
        Clock(21),
        Marker, // h = 20: slot [10, 20); window [-10, 20) ends at this batch
        Clock(38),
        Record(1, 1),
        Marker, // h = 30: slot [20, 30)
        Clock(45),
        Marker, // no data, h = 40: window [10, 40)
        Clock(200),
        Marker, // h = 200: windows ending at 50 and 60 hold records
    ];
    let got = run(plain(30, 10, Some(10)), true, &steps);
    assert_eq!(got, reference(&steps, true, 30, 10, 10));
    let w = |end| window(end, 30);
    assert_eq!(got[5], vec![(1, w(20), 5), (2, w(20), 7)]);
    assert_eq!(got[8], vec![(1, w(30), 6), (2, w(30), 7)]);
    assert_eq!(got[10], vec![(1, w(40), 6), (2, w(40), 7)]);
    assert_eq!(got[12], vec![(1, w(50), 1)]);
    assert_eq!(run(incremental(30, 10, Some(10)), true, &steps), got);
}

/// Skipped batches: with no data, no batch runs; the operator's timer at the next
/// window's end makes the engine run one without data, whose end emits the window.
#[test]
fn the_timer_asks_for_a_batch_without_data_at_each_window_end() {
    let mut harness = Harness::new(plain(20, 10, Some(5))());
    harness.set_emit_mode(emit_mode(true));
    harness.set_processing_time(Timestamp(7));
    harness.push((1, 1));
    harness.end_epoch(); // h = 5: slot [0, 5)
    assert!(harness.take_output().is_empty());
    assert_eq!(harness.timers().processing_time_len(), 1);
    assert_eq!(
        harness.timers().next_processing_time(),
        Some(Timestamp(10)),
        "a timer at the next window's end"
    );
    // The clock passes 10 with no batch; the timer is due (in a micro-batch epoch the
    // engine fires it at the end of the batch it runs for it).
    harness.set_processing_time(Timestamp(11));
    assert!(harness.take_output().is_empty(), "emitted outside a batch");
    harness.end_epoch();
    assert_eq!(harness.take_output(), vec![(1, window(10, 20), 1)]);
    harness.set_processing_time(Timestamp(23));
    harness.end_epoch();
    assert_eq!(harness.take_output(), vec![(1, window(20, 20), 1)]);
    assert_eq!(harness.timers().len(), 0, "no window left with records");
}

/// Two batches in one slot: the second joins the first's slot unless that slot's
/// windows were already emitted, in which case it moves to the next slot (never counted
/// in only some of the windows of its slot).
#[test]
fn batches_sharing_a_slot() {
    use Step::*;
    let steps = [
        Clock(12),
        Record(1, 1),
        Marker, // h = 10, slot [0, 10): the window ending at 10 is emitted
        Record(1, 10),
        Marker, // same slot, already emitted: moves to [10, 20)
        Clock(15),
        Record(1, 100),
        Marker, // h = 10 again: [10, 20) too
        Clock(40),
        Marker,
    ];
    let got = run(plain(20, 10, Some(10)), true, &steps);
    let w = |end| window(end, 20);
    assert_eq!(got[2], vec![(1, w(10), 1)]);
    assert!(got[4].is_empty() && got[7].is_empty());
    assert_eq!(got[9], vec![(1, w(20), 111), (1, w(30), 110)]);
    assert_eq!(run(incremental(20, 10, Some(10)), true, &steps), got);
}

/// A gap of many slots: the windows with records come out at the next batch, those
/// without none; the new batch's own windows follow.
#[test]
fn a_long_gap_emits_only_windows_with_records() {
    use Step::*;
    let steps = [
        Clock(15),
        Record(7, 2),
        Marker, // slot [0, 10), emits the window ending at 10
        Clock(1_005),
        Record(7, 3),
        Marker, // h = 1000: windows 20, 30 (slot 0), then [970, 1000) with slot [990, 1000)
    ];
    let got = run(plain(30, 10, Some(10)), true, &steps);
    assert_eq!(got, reference(&steps, true, 30, 10, 10));
    let w = |end| window(end, 30);
    assert_eq!(got[5], vec![(7, w(20), 2), (7, w(30), 2), (7, w(1_000), 3)]);
    assert_eq!(run(incremental(30, 10, Some(10)), true, &steps), got);
}

/// `window_by_processing_time`'s operator keeps each record once per slice and hands out
/// the window's records, in arrival order, at each slide.
#[test]
fn collected_windows_hold_their_records_in_arrival_order() {
    let op = ProcessingWindows::collect(us(20), us(10))
        .unwrap()
        .without_key();
    let mut harness = Harness::new(op);
    for (t, record) in [(1, "a"), (4, "b"), (12, "c"), (19, "d")] {
        harness.set_processing_time(Timestamp(t));
        harness.push(((), record.to_string()));
    }
    harness.set_processing_time(Timestamp(40));
    let rows = harness.take_output();
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        rows,
        vec![
            (window(10, 20), strings(&["a", "b"])),
            (window(20, 20), strings(&["a", "b", "c", "d"])),
            (window(30, 20), strings(&["c", "d"])),
        ]
    );
}

/// Snapshot and restore mid-window, in both modes: the restored operator (slices,
/// running values, pending batch, timer) emits what the original would have.
#[test]
fn snapshot_restore_round_trip() {
    use Step::*;
    for micro in [false, true] {
        let steps = [
            Clock(3),
            Record(1, 1),
            Record(2, 2),
            Restore, // pending batch in micro-batch mode
            Clock(14),
            Record(1, 4),
            Marker,
            Restore, // slices, running values, the timer
            Clock(26),
            Record(2, 8),
            Marker,
            Clock(61),
            Marker,
        ];
        let without: Vec<Step> = steps
            .iter()
            .filter(|s| !matches!(s, Restore))
            .cloned()
            .collect();
        let interval = micro.then_some(5);
        for inv in [false, true] {
            let (with, plain_run) = if inv {
                (
                    run(incremental(30, 10, interval), micro, &steps),
                    run(incremental(30, 10, interval), micro, &without),
                )
            } else {
                (
                    run(plain(30, 10, interval), micro, &steps),
                    run(plain(30, 10, interval), micro, &without),
                )
            };
            let flat = |v: Vec<Vec<Row>>| v.into_iter().flatten().collect::<Vec<_>>();
            let with = flat(with);
            assert!(!with.is_empty());
            assert_eq!(
                with,
                flat(plain_run),
                "micro-batch {micro}, incremental {inv}"
            );
        }
    }
}

/// Durations that are not multiples of the batch interval are refused, naming both
/// durations and the interval; so are a zero interval and invalid windows.
#[test]
fn the_operator_refuses_what_spark_refuses() {
    let op =
        ProcessingWindows::<u32, u64, _>::count(Duration::from_secs(30), Duration::from_secs(10))
            .unwrap();
    let error = op
        .clone()
        .with_batch_interval(Duration::from_secs(7))
        .unwrap_err()
        .to_string();
    for part in [
        "window length 30s",
        "slide 10s",
        "7s",
        "multiple",
        "DStream",
    ] {
        assert!(error.contains(part), "{part:?} not in {error:?}");
    }
    let error = op
        .clone()
        .with_batch_interval(Duration::from_secs(3))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("the slide 10s") && !error.contains("the window length 30s"),
        "{error}"
    );
    assert!(op.clone().with_batch_interval(Duration::ZERO).is_err());
    assert!(op.with_batch_interval(Duration::from_secs(5)).is_ok());
    assert!(ProcessingWindows::<u32, u64, _>::count(us(10), us(20)).is_err());
    assert!(ProcessingWindows::<u32, u64, _>::count(Duration::ZERO, us(20)).is_err());
}

// ---------------------------------------------------------------------------------------
// Harness: random schedules.

/// Reference schedules: continuous ones with increasing arrival times, or micro-batch
/// ones in which every batch ends in a later slot than the one before (so no batch lands
/// in a closed slot).
fn reference_schedule(micro_batch: bool) -> impl Strategy<Value = Vec<Step>> {
    let event = (0u8..10, 0u32..4, -3i64..6);
    prop::collection::vec(event, 1..60).prop_map(move |events| {
        let mut steps = Vec::new();
        let mut now = 0i64;
        for (kind, key, value) in events {
            match kind {
                0..=5 => steps.push(Step::Record(key, value)),
                6 | 7 => {
                    now += value.abs() * 3 + 1;
                    steps.push(Step::Clock(now));
                }
                _ => {
                    steps.push(Step::Marker);
                    if micro_batch {
                        // The next batch ends in a later slot.
                        now = (now.div_euclid(5) + 1) * 5 + value.abs();
                        steps.push(Step::Clock(now));
                    }
                }
            }
        }
        steps.push(Step::Clock(now + 200));
        steps.push(Step::Marker);
        steps
    })
}

/// Free schedules: anything, including mode switches, batches in closed slots, clock
/// steps of zero and restores.
fn free_schedule() -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        6 => (0u32..5, -4i64..5).prop_map(|(k, v)| Step::Record(k, v)),
        2 => (0i64..15).prop_map(Step::Clock),
        2 => Just(Step::Marker),
        1 => any::<bool>().prop_map(Step::Mode),
        1 => Just(Step::Restore),
    ];
    prop::collection::vec(step, 1..80).prop_map(|steps| {
        // Clock steps are increments here.
        let mut now = 0;
        steps
            .into_iter()
            .map(|step| match step {
                Step::Clock(by) => {
                    now += by;
                    Step::Clock(now)
                }
                other => other,
            })
            .collect()
    })
}

/// Window length and slide as multiples of the interval 5, slide ≤ length.
fn durations() -> impl Strategy<Value = (i64, i64)> {
    (1i64..5, 0i64..5).prop_map(|(slide, extra)| (slide * 5, (slide + extra) * 5))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The plain form against the sequential reference, step by step, continuous.
    #[test]
    fn plain_matches_the_reference_in_continuous_epochs(
        (slide, length) in (1i64..8, 0i64..12).prop_map(|(s, e)| (s, s + e)),
        steps in reference_schedule(false),
    ) {
        let got = run(plain(length, slide, None), false, &steps);
        prop_assert_eq!(got, reference(&steps, false, length, slide, 1));
    }

    /// The plain form against the sequential reference, step by step, micro-batches of 5.
    #[test]
    fn plain_matches_the_reference_in_micro_batches(
        (slide, length) in durations(),
        steps in reference_schedule(true),
    ) {
        let got = run(plain(length, slide, Some(5)), true, &steps);
        prop_assert_eq!(got, reference(&steps, true, length, slide, 5));
    }

    /// The incremental form emits exactly the plain form's rows, at the same steps, on
    /// any schedule.
    #[test]
    fn incremental_equals_plain(
        (slide, length) in durations(),
        micro_batch in any::<bool>(),
        steps in free_schedule(),
    ) {
        let interval = micro_batch.then_some(5);
        let expected = run(plain(length, slide, interval), micro_batch, &steps);
        let got = run(incremental(length, slide, interval), micro_batch, &steps);
        prop_assert_eq!(got, expected);
    }
}

// ---------------------------------------------------------------------------------------
// Running queries.

/// 1 s in µs.
const SEC: i64 = 1_000_000;

fn words(line: &str) -> Vec<(String, u64)> {
    line.split_whitespace()
        .map(|w| (w.to_string(), 1))
        .collect()
}

/// Spark's windowed word count over `(arrival second, line)`: per window ending at a
/// multiple of 10 s up to `until`, the count of each word that arrived in its 30 s.
fn word_count_reference(lines: &[(i64, &str)], until: i64) -> Vec<(String, i64, u64)> {
    let mut rows = Vec::new();
    let mut end = 10;
    while end <= until {
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for (t, line) in lines {
            if end - 30 <= *t && *t < end {
                for (word, n) in words(line) {
                    *counts.entry(word).or_default() += n;
                }
            }
        }
        rows.extend(counts.into_iter().map(|(w, n)| (w, end, n)));
        end += 10;
    }
    rows.sort();
    rows
}

const LINES: [(i64, &str); 6] = [
    (1, "to be or not to be"),
    (4, "that is the question"),
    (12, "to be"),
    (25, "or not"),
    (33, "the question"),
    (58, "be"),
];

/// Spark's `reduceByKeyAndWindow(_ + _, Seconds(30), Seconds(10))` word count, running
/// continuously on a manual clock: lines arrive at their seconds (each handed to the
/// operator before the clock moves on: the operator runs on the source's thread and
/// `flush` returns once the source polled past the line), windows come out by timer.
#[test]
fn windowed_word_count_continuous() {
    for incremental in [false, true] {
        let clock = ManualClock::new(Timestamp(0));
        let mut query = Query::builder();
        query.clock(clock.clock());
        let (input, lines) = query.push_source::<String>("lines");
        let pairs = lines
            .flat_map(|line: String| words(&line))
            .key_by(|(word, _)| word.clone());
        let reduce = |acc: &mut (String, u64), (_, n): (String, u64)| acc.1 += n;
        let inverse = |acc: &mut (String, u64), (_, n): (String, u64)| acc.1 -= n;
        let (thirty, ten) = (Duration::from_secs(30), Duration::from_secs(10));
        let counts = if incremental {
            pairs
                .reduce_by_key_and_window_inv(reduce, inverse, thirty, ten)
                .map(|(word, w, (_, n))| (word, w, n))
                .to_memory("counts")
        } else {
            pairs
                .reduce_by_key_and_window(reduce, thirty, ten)
                .map(|(word, w, (_, n))| (word, w, n))
                .to_memory("counts")
        };
        let running = query.start().unwrap();
        for (t, line) in LINES {
            clock.set(Timestamp(t * SEC));
            input.push(line.to_string()).unwrap();
            assert!(input.flush(HANG_GUARD), "the line was not taken");
        }
        let until = 90;
        clock.set(Timestamp(until * SEC));
        let expected = word_count_reference(&LINES, until);
        counts.wait_for_len(expected.len(), HANG_GUARD);
        drop(input);
        finish_ok(&running, "windowed word count");
        let mut rows: Vec<(String, i64, u64)> = counts
            .rows()
            .into_iter()
            .map(|(word, w, n)| {
                assert_eq!(w.end.0 - w.start.0, 30 * SEC);
                (word, w.end.0 / SEC, n)
            })
            .collect();
        rows.sort();
        assert_eq!(rows, expected, "incremental: {incremental}");
    }
}

/// A sink that keeps its rows and, at each epoch's marker, how many input records a
/// counter before the window had seen by then (the marker passed the window after them).
#[derive(Clone)]
struct MarkingSink<T> {
    rows: Arc<Mutex<Vec<T>>>,
    seen: Arc<AtomicU64>,
    marked: Arc<AtomicU64>,
}

impl<T: Send + 'static> Sink<T> for MarkingSink<T> {
    fn write(&mut self, record: T) -> Result<(), BoxError> {
        self.rows.lock().unwrap().push(record);
        Ok(())
    }

    fn prepare_commit(&mut self, _epoch: Epoch) -> Result<Option<EpochCommit>, BoxError> {
        self.marked
            .store(self.seen.load(Ordering::SeqCst), Ordering::SeqCst);
        Ok(None)
    }
}

/// The word count in micro-batches of 10 ms of the manual clock (batches run every 10 ms
/// of real time; the slots follow the manual clock at each batch's end). Each step moves
/// the clock, pushes its lines and waits until a batch's marker passed them, so every
/// batch holding them read that clock. Lines of one step may split over two batches; the
/// steps' slots are never a window's last, so both land in the same slot. Steps without
/// lines move the clock to a window's end: the operator's timer makes the engine run a
/// batch without data, which emits the window.
#[test]
fn windowed_word_count_in_micro_batches() {
    const MS: i64 = 1_000;
    let clock = ManualClock::new(Timestamp(0));
    let mut query = Query::builder();
    query.clock(clock.clock()).trigger(Trigger::MicroBatch {
        interval: Duration::from_millis(10),
    });
    let (input, lines) = query.push_source::<String>("lines");
    let seen = Arc::new(AtomicU64::new(0));
    let sink = MarkingSink {
        rows: Arc::new(Mutex::new(Vec::new())),
        seen: seen.clone(),
        marked: Arc::new(AtomicU64::new(0)),
    };
    let counted = seen.clone();
    lines
        .inspect(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
        })
        .flat_map(|line: String| words(&line))
        .key_by(|(word, _)| word.clone())
        .reduce_by_key_and_window(
            |acc: &mut (String, u64), (_, n): (String, u64)| acc.1 += n,
            Duration::from_millis(60),
            Duration::from_millis(20),
        )
        .sink("counts", sink.clone());
    let running = query.start().unwrap();
    // (clock in ms at the batch's end, lines); slot = [h − 10, h), h = clock rounded
    // down to 10 ms; windows of 60 ms end at multiples of 20 ms. Only the first step's
    // slot is a window's last: it has one line (one batch), and no timer is pending yet.
    let steps: [(i64, &[&str]); 8] = [
        (25, &["d"]),        // slot [10, 20): the window [-40, 20) ends with this batch
        (33, &["a b", "a"]), // slot [20, 30)
        (53, &["b c"]),      // slot [40, 50); the window [-20, 40) ends (timer or batch)
        (75, &["c c", "a"]), // slot [60, 70); windows [0, 60)
        (80, &[]),           // window [20, 80), by the timer's batch
        (100, &[]),          // window [40, 100)
        (120, &[]),          // window [60, 120)
        (140, &[]),          // window [80, 140): no records, nothing
    ];
    let mut pushed = 0;
    let mut reference: BTreeMap<(i64, String), u64> = BTreeMap::new();
    for (at, step_lines) in steps {
        clock.set(Timestamp(at * MS));
        for line in step_lines {
            input.push(line.to_string()).unwrap();
            pushed += 1;
            let slot = (at / 10) * 10 - 10;
            for end in (20..=140).step_by(20) {
                if end - 60 <= slot && slot < end {
                    for (word, n) in words(line) {
                        *reference.entry((end, word)).or_default() += n;
                    }
                }
            }
        }
        let expected = reference.keys().filter(|(end, _)| *end <= at).count();
        wait_until("the batch ends and its windows come out", || {
            sink.marked.load(Ordering::SeqCst) == pushed
                && sink.rows.lock().unwrap().len() >= expected
        });
    }
    drop(input);
    finish_ok(&running, "micro-batch word count");
    let mut rows: Vec<((i64, String), u64)> = sink
        .rows
        .lock()
        .unwrap()
        .iter()
        .map(|(word, w, (_, n))| {
            assert_eq!(w.end.0 - w.start.0, 60 * MS);
            ((w.end.0 / MS, word.clone()), *n)
        })
        .collect();
    rows.sort();
    let expected: Vec<((i64, String), u64)> = reference.into_iter().collect();
    assert_eq!(rows, expected);
}

/// `count_by_window`, `window_by_processing_time` and `count_by_value_and_window` on a
/// running query (continuous, manual clock), against the same schedule computed here.
#[test]
fn stream_windows_on_a_running_query() {
    let schedule: [(i64, &[&str]); 4] = [
        (2, &["x", "y"]),
        (7, &["x"]),
        (13, &["z", "x"]),
        (31, &["y"]),
    ];
    let (length, slide) = (Duration::from_secs(20), Duration::from_secs(10));
    let until = 60;
    // Reference: the records of each window ending at a multiple of 10 up to `until`.
    let mut expected_windows: Vec<(i64, Vec<String>)> = Vec::new();
    for end in (10..=until).step_by(10) {
        let records: Vec<String> = schedule
            .iter()
            .filter(|(t, _)| end - 20 <= *t && *t < end)
            .flat_map(|(_, r)| r.iter().map(|s| s.to_string()))
            .collect();
        if !records.is_empty() {
            expected_windows.push((end, records));
        }
    }

    let run_query = |which: u8| -> Vec<(i64, String)> {
        let clock = ManualClock::new(Timestamp(0));
        let mut query = Query::builder();
        query.clock(clock.clock());
        let (input, records) = query.push_source::<String>("records");
        let table = match which {
            0 => records
                .count_by_window(length, slide)
                .map(|(w, n)| (w, format!("{n}")))
                .to_memory("out"),
            1 => records
                .window_by_processing_time(length, slide)
                .map(|(w, r)| (w, r.join(",")))
                .to_memory("out"),
            _ => records
                .count_by_value_and_window(length, slide)
                .map(|(r, w, n)| (w, format!("{r}={n}")))
                .to_memory("out"),
        };
        let running = query.start().unwrap();
        for (t, batch) in schedule {
            clock.set(Timestamp(t * SEC));
            for record in batch.iter() {
                input.push(record.to_string()).unwrap();
            }
            assert!(input.flush(HANG_GUARD));
        }
        clock.set(Timestamp(until * SEC));
        let expected_len = match which {
            0 | 1 => expected_windows.len(),
            _ => expected_windows
                .iter()
                .map(|(_, r)| {
                    let mut r = r.clone();
                    r.sort();
                    r.dedup();
                    r.len()
                })
                .sum(),
        };
        table.wait_for_len(expected_len, HANG_GUARD);
        drop(input);
        finish_ok(&running, "stream windows");
        let mut rows: Vec<(i64, String)> = table
            .rows()
            .into_iter()
            .map(|(w, s)| {
                assert_eq!(w.end.0 - w.start.0, 20 * SEC);
                (w.end.0 / SEC, s)
            })
            .collect();
        rows.sort();
        rows
    };

    let counts: Vec<(i64, String)> = expected_windows
        .iter()
        .map(|(end, r)| (*end, r.len().to_string()))
        .collect();
    assert_eq!(run_query(0), counts);
    let records: Vec<(i64, String)> = expected_windows
        .iter()
        .map(|(end, r)| (*end, r.join(",")))
        .collect();
    assert_eq!(run_query(1), records);
    let mut by_value: Vec<(i64, String)> = Vec::new();
    for (end, r) in &expected_windows {
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        for record in r {
            *counts.entry(record).or_default() += 1;
        }
        by_value.extend(counts.into_iter().map(|(r, n)| (*end, format!("{r}={n}"))));
    }
    by_value.sort();
    assert_eq!(run_query(2), by_value);
}

/// Micro-batch triggers whose interval does not divide the window length and slide are
/// refused at `start()`, even when the trigger is set after the window; available-now
/// is refused; a fitting interval starts.
#[test]
fn start_refuses_intervals_that_do_not_divide_the_window() {
    let start = |trigger: Option<Trigger>, trigger_after: bool| {
        let mut query = Query::builder();
        if let (Some(trigger), false) = (trigger, trigger_after) {
            query.trigger(trigger);
        }
        query
            .from_iter("words", ["a", "b"].map(String::from))
            .key_by(|w| w.clone())
            .reduce_by_key_and_window(
                |_: &mut String, _| {},
                Duration::from_secs(30),
                Duration::from_secs(10),
            )
            .for_each(|_| {});
        if let (Some(trigger), true) = (trigger, trigger_after) {
            query.trigger(trigger);
        }
        query
            .start()
            .map(|running| finish_ok(&running, "a fitting trigger"))
    };
    let seven = Trigger::MicroBatch {
        interval: Duration::from_secs(7),
    };
    for after in [false, true] {
        let error = start(Some(seven), after).unwrap_err().to_string();
        for part in [
            "reduce_by_key_and_window",
            "window length 30s",
            "slide 10s",
            "interval 7s",
            "must be a multiple",
        ] {
            assert!(error.contains(part), "{part:?} not in {error:?}");
        }
    }
    let error = start(Some(Trigger::AvailableNow), false)
        .unwrap_err()
        .to_string();
    assert!(error.contains("available-now"), "{error}");
    start(
        Some(Trigger::MicroBatch {
            interval: Duration::from_millis(500),
        }),
        false,
    )
    .unwrap();
    start(None, false).unwrap();
    // Invalid windows are refused whatever the trigger.
    let mut query = Query::builder();
    query
        .from_iter("n", 0..3u64)
        .count_by_window(Duration::from_secs(5), Duration::from_secs(10))
        .for_each(|_| {});
    let error = query.start().unwrap_err().to_string();
    assert!(
        error.contains("count_by_window") && error.contains("slide"),
        "{error}"
    );
}

/// A checkpointed query stopped in the middle of a window keeps the window's slices (the
/// final checkpoint after the end of stream) and its timer: the restarted query emits
/// the window with the records of both runs.
#[test]
fn an_open_window_survives_a_stop_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp(0));
    let run = |records: &[(i64, &str)], until: Option<i64>| -> Vec<(i64, String, u64)> {
        let mut query = Query::builder();
        query.clock(clock.clock()).checkpoint(
            CheckpointConfig::new(dir.path())
                .interval(Duration::from_millis(10))
                .durability(Durability::OsBuffered),
        );
        let (input, words) = query.push_source::<String>("words");
        let table = words
            .count_by_value_and_window(Duration::from_secs(20), Duration::from_secs(10))
            .map(|(word, w, n)| (w.end.0 / SEC, word, n))
            .to_memory("counts");
        let running = query.start().unwrap();
        for (t, word) in records {
            clock.set(Timestamp(t * SEC));
            input.push(word.to_string()).unwrap();
            assert!(input.flush(HANG_GUARD));
        }
        if let Some(until) = until {
            clock.set(Timestamp(until * SEC));
            table.wait_for_len(2, HANG_GUARD);
        }
        running.stop().unwrap();
        drop(input);
        finish_ok(&running, "a run");
        let mut rows = table.rows();
        rows.sort();
        rows
    };
    // Run 1: "a" at 11 s and 12 s; stopped at 12 s, before any window ended.
    assert!(run(&[(11, "a"), (12, "a")], None).is_empty());
    // Run 2: "a" at 15 s; the windows ending at 20 s and 30 s hold all three.
    let rows = run(&[(15, "a")], Some(30));
    assert_eq!(
        rows,
        vec![(20, "a".to_string(), 3), (30, "a".to_string(), 3)],
        "run 2"
    );
}

/// The folds' own laws: merge then subtract restores, counting slices is order-free.
#[test]
fn count_fold_laws() {
    use rivulet::window::processing::Count;
    let mut count = Count;
    let mut acc = SliceFold::<u8>::first(&mut count, 0);
    SliceFold::<u8>::add(&mut count, &mut acc, 0);
    SliceFold::<u8>::merge(&mut count, &mut acc, 5);
    assert_eq!(acc, 7);
    SliceFold::<u8>::subtract(&mut count, &mut acc, 5);
    assert_eq!(acc, 2);
    assert!(SliceFold::<u8>::invertible(&count));
}
